//! Located errors in stack files: file, line, column, key, what is wrong and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// One problem in a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column; `0` when the problem has no position (e.g. unreadable file).
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `redis.storage` or `ray.workers[1].max_replicas`; empty for
    /// file-level problems such as TOML syntax errors.
    pub key: String,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", shorten(&self.key))?;
        }
        f.write_str(&shorten(&self.message))?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {}", shorten(help))?;
        }
        Ok(())
    }
}

/// Longest word (run of non-whitespace) a diagnostic echoes whole, and the longest message.
const MAX_WORD: usize = 80;
const MAX_TEXT: usize = 2000;

/// Cuts echoed values down to size: a diagnostic quotes what it found, and what it found may be
/// a 50 MB `stack.name`. Each word longer than [`MAX_WORD`] characters keeps its start and says
/// how long it was; the whole text is capped at [`MAX_TEXT`] characters.
pub fn shorten(text: &str) -> String {
    let mut out = String::new();
    let mut out_chars = 0usize;
    for piece in text.split_inclusive(char::is_whitespace) {
        let (word, space) = match piece.char_indices().last() {
            Some((i, c)) if c.is_whitespace() => piece.split_at(i),
            _ => (piece, ""),
        };
        let n = word.chars().count();
        if n > MAX_WORD {
            let start: String = word.chars().take(MAX_WORD / 2).collect();
            out.push_str(&format!("{start}… ({n} characters)"));
            out_chars += MAX_WORD / 2 + 24;
        } else {
            out.push_str(word);
            out_chars += n;
        }
        out.push_str(space);
        out_chars += 1;
        if out_chars > MAX_TEXT {
            let kept: String = out.chars().take(MAX_TEXT).collect();
            return format!("{kept}… (cut at {MAX_TEXT} characters)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_values_are_cut_and_short_text_is_kept() {
        assert_eq!(shorten("must be at most 40"), "must be at most 40");
        let long = format!("\"{}\" is too long", "a".repeat(50_000_000));
        let short = shorten(&long);
        assert_eq!(
            short,
            format!("\"{}… (50000002 characters) is too long", "a".repeat(39))
        );
        let many = "word ".repeat(10_000);
        assert!(shorten(&many).ends_with("… (cut at 2000 characters)"));
        assert!(shorten(&many).chars().count() < 2100);
    }
}

/// Every problem found in one stack file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
