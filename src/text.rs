//! Text rules every layer shares: how long a line raystack prints may be. Lives at the bottom of
//! the house so that `cluster` (its error messages) and `output` (every error it prints) apply
//! the same cut without either importing the other.

/// The longest line of an error raystack prints; longer lines (a 50 MB value echoed by a
/// library or an API server) are cut, saying how much was left out.
pub const MAX_LINE: usize = 1000;

/// `text` cut to [`MAX_LINE`] bytes (at a character boundary), saying how much was cut.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_LINE {
        return text.to_string();
    }
    let mut end = MAX_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}
