//! The generic located reader under the stack schema: the diagnostic collector [`Cx`] (byte
//! offset → line/column, errors and warnings sorted by position, capped at [`MAX_DIAGNOSTICS`]),
//! the typed TOML [`Table`] reader (typed/section/string/integer/boolean/quantity/duration/
//! choice, unknown keys with a did-you-mean), the duplicate-key message, and DNS-name checks.
//! It knows no stack key: the schema walk (`parse.rs`) says which keys exist and what they mean.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::stack::diagnostic::{Diagnostic, Diagnostics};
use crate::stack::units::{Quantity, parse_duration};

/// Past this many problems a file is clearly not a stack file; the rest are summarised.
const MAX_DIAGNOSTICS: usize = 50;

/// "duplicate key `namespace` in `[stack]`": the TOML parser says only "duplicate key" and
/// where; name the key (the text at that place) and the table whose header precedes it, or the
/// table itself when the place is a header ("table `[stack]` is defined twice").
pub(super) fn duplicate_key_message(text: &str, span: Range<usize>) -> String {
    // The place is in a table header (`[stack]` a second time): the table is the duplicate.
    let before = text.get(..span.start).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default().trim();
    if line.starts_with('[') {
        let header = line.split('#').next().unwrap_or(line).trim();
        return format!(
            "table `{}` is defined twice; write each table once",
            crate::stack::diagnostic::shorten(header)
        );
    }
    let key = text
        .get(span.clone())
        .map(|k| k.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|k| !k.is_empty() && !k.contains('\n'));
    let table = text
        .get(..span.start)
        .unwrap_or_default()
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| h.split('#').next().unwrap_or(h).trim().to_string());
    let key = key
        .map(|k| format!(" `{}`", crate::stack::diagnostic::shorten(k)))
        .unwrap_or_default();
    match table {
        Some(t) => format!("duplicate key{key} in `{t}`"),
        None if key.is_empty() => "duplicate key".into(),
        None => format!("duplicate key{key} at the top level"),
    }
}

/// Positions and collected diagnostics for one file.
pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    line_starts: Vec<usize>,
    pub(super) diags: Vec<(usize, Diagnostic)>,
    pub(super) warnings: Vec<(usize, Diagnostic)>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Cx {
            file,
            text,
            line_starts,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// A diagnostic at `span`, keyed by its byte offset (diagnostics are sorted by it).
    fn located(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> (usize, Diagnostic) {
        let (line, column) = self.position(span.start);
        let diagnostic = Diagnostic {
            file: self.file.into(),
            line,
            column,
            key: key.into(),
            message,
            help,
        };
        (span.start, diagnostic)
    }

    pub(super) fn push(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let d = self.located(span, key, message.into(), help);
        self.diags.push(d);
    }

    /// A located warning: valid, but probably not what the author meant.
    pub(super) fn warn(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        help: &str,
    ) {
        let d = self.located(span, key, message.into(), Some(help.into()));
        self.warnings.push(d);
    }

    pub(super) fn error(
        &mut self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(span, key, message, Some(help.into()));
    }

    pub(super) fn finish(mut self) -> Diagnostics {
        self.diags.sort_by_key(|(offset, _)| *offset);
        let total = self.diags.len();
        let mut out: Vec<Diagnostic> = self
            .diags
            .into_iter()
            .take(MAX_DIAGNOSTICS)
            .map(|(_, d)| d)
            .collect();
        if total > MAX_DIAGNOSTICS {
            out.push(Diagnostic {
                file: self.file.into(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("{} more problems not shown", total - MAX_DIAGNOSTICS),
                help: Some(
                    "is this a raystack stack file? see `stacks/local.toml` for an example".into(),
                ),
            });
        }
        Diagnostics(out)
    }
}

/// A table being read: its dotted path, its span (where "missing key" errors point), and the
/// table itself (`None` when absent or not a table: every key then reads as missing).
pub(super) struct Table<'t, 'i> {
    pub(super) path: String,
    pub(super) span: Range<usize>,
    pub(super) table: Option<&'t DeTable<'i>>,
}

pub(super) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'t, 'i> Table<'t, 'i> {
    pub(super) fn root(root: &'t Spanned<DeTable<'i>>) -> Self {
        Table {
            path: String::new(),
            span: 0..0,
            table: Some(root.get_ref()),
        }
    }

    pub(super) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table?.get(key)
    }

    pub(super) fn is_present(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The span of `key`'s value, or of this table when the key is absent.
    pub(super) fn span_of(&self, key: &str) -> Range<usize> {
        self.get(key).map_or(self.span.clone(), |v| v.span())
    }

    /// The one typed getter: `key`'s value as `T` with its span, `None` when absent. `take`
    /// accepts the value or declines it; a declined value is reported once, here, as "must be
    /// {what}, found {its type}" with `help`.
    pub(super) fn typed<T>(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        what: &str,
        take: impl FnOnce(&'t DeValue<'i>) -> Option<T>,
        help: impl FnOnce() -> String,
    ) -> Option<(T, Range<usize>)> {
        let v = self.get(key)?;
        match take(v.get_ref()) {
            Some(t) => Some((t, v.span())),
            None => {
                cx.error(
                    v.span(),
                    &self.key(key),
                    format!("must be {what}, found {}", type_name(v.get_ref())),
                    help(),
                );
                None
            }
        }
    }

    /// The tables of the array of tables `key` (`[[key]]`), each viewed as a [`Table`] at
    /// `key[i]`; a value that is not an array, or an item that is not a table, is reported
    /// with `help` and skipped.
    pub(super) fn tables(&self, cx: &mut Cx<'_>, key: &str, help: &str) -> Vec<Table<'t, 'i>> {
        let Some((items, _)) = self.typed(
            cx,
            key,
            "an array of tables",
            |v| match v {
                DeValue::Array(a) => Some(a),
                _ => None,
            },
            || help.to_string(),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match item.get_ref() {
                DeValue::Table(m) => out.push(Table {
                    path,
                    span: item.span(),
                    table: Some(m),
                }),
                other => cx.error(
                    item.span(),
                    &path,
                    format!("must be a table, found {}", type_name(other)),
                    help,
                ),
            }
        }
        out
    }

    /// Reports every key not in `allowed`, with a "did you mean" for near misses.
    pub(super) fn check_keys(&self, cx: &mut Cx<'_>, allowed: &[&str]) {
        let Some(table) = self.table else { return };
        for (k, _) in table.iter() {
            let name: &str = k.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let help = match did_you_mean(name, allowed) {
                Some(s) => format!(
                    "did you mean `{s}`? valid keys here: {}",
                    allowed.join(", ")
                ),
                None => format!("valid keys here: {}", allowed.join(", ")),
            };
            let where_ = if self.path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in [{}]", self.path)
            };
            cx.error(
                k.span(),
                &self.key(name),
                format!("unknown key `{name}` {where_}"),
                help,
            );
        }
    }

    /// A sub-table (`[a.b]` or inline) with its keys checked against `allowed`; absent, or
    /// not a table, it reads as an empty table placed at its value's (or this table's) span.
    pub(super) fn section(&self, cx: &mut Cx<'_>, key: &str, allowed: &[&str]) -> Table<'t, 'i> {
        let path = self.key(key);
        let table = self
            .typed(
                cx,
                key,
                "a table",
                |v| match v {
                    DeValue::Table(t) => Some(t),
                    _ => None,
                },
                || format!("write it as a [{path}] section"),
            )
            .map(|(t, _)| t);
        let t = Table {
            span: self.span_of(key),
            path,
            table,
        };
        t.check_keys(cx, allowed);
        t
    }

    /// A string value with its span.
    pub(super) fn string(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        example: &str,
    ) -> Option<(String, Range<usize>)> {
        self.typed(
            cx,
            key,
            "a string",
            |v| match v {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            },
            || format!("write it in quotes, e.g. {key} = \"{example}\""),
        )
    }

    /// A string the stack cannot do without; missing, it is reported at this table.
    pub(super) fn required_string(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        example: &str,
        why: &str,
    ) -> Option<(String, Range<usize>)> {
        if !self.is_present(key) {
            let section = if self.path.is_empty() {
                "the top level".to_string()
            } else {
                format!("[{}]", self.path)
            };
            cx.error(
                self.span.clone(),
                &self.key(key),
                format!("is required{why}"),
                format!("add `{key} = \"{example}\"` to {section}"),
            );
            return None;
        }
        self.string(cx, key, example)
    }

    /// The required string, or "" once its absence is reported (the stack is then not built).
    pub(super) fn required(&self, cx: &mut Cx<'_>, key: &str, example: &str, why: &str) -> String {
        self.required_string(cx, key, example, why)
            .map(|(s, _)| s)
            .unwrap_or_default()
    }

    pub(super) fn boolean(&self, cx: &mut Cx<'_>, key: &str, default: bool) -> bool {
        self.typed(
            cx,
            key,
            "true or false",
            |v| match v {
                DeValue::Boolean(b) => Some(*b),
                _ => None,
            },
            || format!("write {key} = true or {key} = false, without quotes"),
        )
        .map_or(default, |(b, _)| b)
    }

    /// A non-negative integer within `range`.
    pub(super) fn integer(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<(u64, Range<usize>)> {
        let v = self.get(key)?;
        let key_path = self.key(key);
        let whole = || {
            format!(
                "use a whole number from {} to {}",
                range.start(),
                range.end()
            )
        };
        // A number in quotes gets its own fix: remove the quotes.
        if let DeValue::String(s) = v.get_ref()
            && s.trim().parse::<u64>().is_ok()
        {
            cx.error(
                v.span(),
                &key_path,
                format!("must be an integer, found the string \"{s}\""),
                format!("remove the quotes: {key} = {}", s.trim()),
            );
            return None;
        }
        let (i, span) = self.typed(
            cx,
            key,
            "an integer",
            |v| match v {
                DeValue::Integer(i) => Some(i),
                _ => None,
            },
            whole,
        )?;
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if n >= 0 && range.contains(&(n as u64)) => Some((n as u64, span)),
            _ => {
                cx.error(
                    span,
                    &key_path,
                    format!("{} is out of range", i.as_str()),
                    whole(),
                );
                None
            }
        }
    }

    /// A quantity and, when it was written and valid, its span (for further checks).
    pub(super) fn quantity(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        default: &str,
        example: &str,
    ) -> (Quantity, Option<Range<usize>>) {
        let fallback = || {
            (
                Quantity::parse(default).expect("defaults are valid quantities"),
                None,
            )
        };
        let Some((s, span)) = self.string(cx, key, example) else {
            return fallback();
        };
        match Quantity::parse(&s) {
            Ok(q) if q.millis() == 0 => {
                cx.error(
                    span,
                    &self.key(key),
                    format!("\"{s}\" must be greater than zero"),
                    format!("e.g. {key} = \"{example}\""),
                );
                fallback()
            }
            Ok(q) => (q, Some(span)),
            Err(msg) => {
                cx.error(
                    span,
                    &self.key(key),
                    format!("\"{s}\" is not a valid quantity: {msg}"),
                    format!("write a Kubernetes quantity, e.g. {key} = \"{example}\""),
                );
                fallback()
            }
        }
    }

    pub(super) fn duration(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        default: &str,
    ) -> (Duration, Range<usize>) {
        let fallback = parse_duration(default).expect("defaults are valid durations");
        let Some((s, span)) = self.string(cx, key, default) else {
            return (fallback, self.span_of(key));
        };
        match parse_duration(&s) {
            Ok(d) => (d, span),
            Err(msg) => {
                cx.error(
                    span.clone(),
                    &self.key(key),
                    format!("\"{s}\" is not a valid duration: {msg}"),
                    format!("e.g. {key} = \"{default}\""),
                );
                (fallback, span)
            }
        }
    }

    /// A string that must name one of `choices`, read as its value; the first choice is the
    /// default (also when the value is invalid, after reporting it).
    pub(super) fn choice<T: Copy>(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> (T, Range<usize>) {
        let (value, span) = self.checked_choice(cx, key, choices);
        (value.unwrap_or(choices[0].1), span)
    }

    /// Like [`Table::choice`], but `None` when the value was given and is not one of
    /// `choices` (already reported), so checks that depend on it can be skipped.
    pub(super) fn checked_choice<T: Copy>(
        &self,
        cx: &mut Cx<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> (Option<T>, Range<usize>) {
        let (default_name, default) = choices[0];
        let span_or_table = self.span_of(key);
        let given = self.is_present(key);
        let Some((s, span)) = self.string(cx, key, default_name) else {
            return ((!given).then_some(default), span_or_table);
        };
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == s) {
            return (Some(*value), span);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let help = match did_you_mean(&s, &names) {
            Some(c) => format!("did you mean \"{c}\"? choose one of: {}", names.join(", ")),
            None => format!("choose one of: {}", names.join(", ")),
        };
        cx.error(
            span.clone(),
            &self.key(key),
            format!("\"{s}\" is not a valid value"),
            help,
        );
        (None, span)
    }
}

/// The closest allowed word, if close enough to be a likely typo.
pub(super) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting an adjacent transposition as one edit (optimal string alignment), so
/// `nmae` is one edit from `name`, closer than from `image`.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX / 2;
    }
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric.
pub(super) fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|l| is_dns_label(l, 63))
}

pub(super) fn check_label(
    cx: &mut Cx<'_>,
    key: &str,
    value: &str,
    span: Range<usize>,
    max: usize,
) -> bool {
    if is_dns_label(value, max) {
        return true;
    }
    let suggestion: String = value
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(max)
        .collect();
    let reason = if value.len() > max {
        format!("is {} characters long; the limit is {max}", value.len())
    } else {
        "is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)".into()
    };
    let help = if is_dns_label(&suggestion, max) {
        format!("e.g. \"{suggestion}\"")
    } else {
        "e.g. \"ray-prod\"".into()
    };
    cx.error(span, key, format!("\"{value}\" {reason}"), help);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as if from `stack.toml` and hands its root table to `read`.
    fn read<T>(
        text: &str,
        read: impl FnOnce(&mut Cx<'_>, &Table<'_, '_>) -> T,
    ) -> (T, Vec<Diagnostic>) {
        let path = Path::new("stack.toml");
        let mut cx = Cx::new(path, text);
        let (root, errors) = DeTable::parse_recoverable(text);
        assert!(errors.is_empty(), "valid TOML expected: {errors:?}");
        let out = read(&mut cx, &Table::root(&root));
        (out, cx.finish().0)
    }

    #[test]
    fn typed_reads_take_each_value_with_its_span() {
        let text = "[a]\nname = \"x\"\ncount = 3\non = true\nsize = \"2Gi\"\nwait = \"5s\"\nmode = \"b\"\n";
        let (got, diags) = read(text, |cx, top| {
            let a = top.section(cx, "a", &["name", "count", "on", "size", "wait", "mode"]);
            let (name, span) = a.string(cx, "name", "x").unwrap();
            (
                name,
                &text[span],
                a.integer(cx, "count", 0..=10).map(|(n, _)| n),
                a.boolean(cx, "on", false),
                a.quantity(cx, "size", "1Gi", "1Gi").0.to_string(),
                a.duration(cx, "wait", "1s").0,
                a.choice(cx, "mode", &[("a", 1), ("b", 2)]).0,
                a.boolean(cx, "absent", true),
            )
        });
        assert_eq!(diags, vec![]);
        assert_eq!(
            got,
            (
                "x".to_string(),
                "\"x\"",
                Some(3),
                true,
                "2Gi".to_string(),
                Duration::from_secs(5),
                2,
                true
            )
        );
    }

    #[test]
    fn a_wrong_type_is_reported_at_the_value_with_line_and_column() {
        let (got, diags) = read("[a]\n\ncount =   \"many\"\n", |cx, top| {
            top.section(cx, "a", &["count"]).integer(cx, "count", 0..=5)
        });
        assert_eq!(got, None);
        assert_eq!(diags.len(), 1);
        let d = &diags[0];
        assert_eq!((d.line, d.column, d.key.as_str()), (3, 11, "a.count"));
        assert_eq!(d.message, "must be an integer, found a string");
        assert_eq!(d.help.as_deref(), Some("use a whole number from 0 to 5"));
    }

    #[test]
    fn a_quoted_number_is_told_to_lose_its_quotes() {
        let (_, diags) = read("n = \"4\"\n", |cx, top| top.integer(cx, "n", 0..=9));
        assert_eq!(
            diags[0].message,
            "must be an integer, found the string \"4\""
        );
        assert_eq!(diags[0].help.as_deref(), Some("remove the quotes: n = 4"));
    }

    #[test]
    fn an_unknown_key_gets_a_did_you_mean_and_its_position() {
        let (_, diags) = read("[redis]\nnmae = \"x\"\n", |cx, top| {
            top.section(cx, "redis", &["name", "pvc"]);
        });
        assert_eq!(diags.len(), 1);
        let d = &diags[0];
        assert_eq!((d.line, d.column, d.key.as_str()), (2, 1, "redis.nmae"));
        assert_eq!(d.message, "unknown key `nmae` in [redis]");
        assert_eq!(
            d.help.as_deref(),
            Some("did you mean `name`? valid keys here: name, pvc")
        );
    }

    #[test]
    fn an_invalid_choice_names_the_closest_one() {
        let (got, diags) = read("mode = \"alwyas\"\n", |cx, top| {
            top.checked_choice(cx, "mode", &[("always", 1), ("never", 2)])
                .0
        });
        assert_eq!(got, None);
        assert_eq!(diags[0].message, "\"alwyas\" is not a valid value");
        assert_eq!(
            diags[0].help.as_deref(),
            Some("did you mean \"always\"? choose one of: always, never")
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let (_, diags) = read(
            "s = \"é\" ; n = true\n".replace(" ; ", "\n").as_str(),
            |cx, top| {
                top.integer(cx, "n", 0..=1);
            },
        );
        assert_eq!((diags[0].line, diags[0].column), (2, 5));
        let (_, diags) = read("a = { \"é\" = 1, n = true }\n", |cx, top| {
            top.section(cx, "a", &["é", "n"]).integer(cx, "n", 0..=1);
        });
        assert_eq!((diags[0].line, diags[0].column), (1, 20));
    }

    #[test]
    fn a_duplicate_table_and_a_duplicate_key_are_named() {
        let text = "[stack]\nname = \"a\"\n[stack]\n";
        let (_, errors) = DeTable::parse_recoverable(text);
        let span = errors[0].span().unwrap();
        assert_eq!(
            duplicate_key_message(text, span),
            "table `[stack]` is defined twice; write each table once"
        );
        let text = "[stack]\nname = \"a\"\nname = \"b\"\n";
        let (_, errors) = DeTable::parse_recoverable(text);
        let span = errors[0].span().unwrap();
        assert_eq!(
            duplicate_key_message(text, span),
            "duplicate key `name` in `[stack]`"
        );
    }

    #[test]
    fn did_you_mean_only_suggests_near_misses() {
        assert_eq!(
            did_you_mean("Namspace", &["namespace", "name"]),
            Some("namespace")
        );
        assert_eq!(did_you_mean("zzzzzz", &["namespace", "name"]), None);
        // A transposition is one edit: `nmae` is `name`, not `image` (two substitutions).
        assert_eq!(did_you_mean("nmae", &["image", "name"]), Some("name"));
    }

    #[test]
    fn dns_labels_are_checked_with_a_suggestion() {
        assert!(is_dns_label("ray-prod", 63));
        assert!(!is_dns_label("-ray", 63));
        assert!(is_dns_subdomain("a.b-c"));
        let (ok, diags) = read("", |cx, _| {
            check_label(cx, "stack.name", "Ray_Prod", 0..0, 63)
        });
        assert!(!ok);
        assert_eq!(diags[0].help.as_deref(), Some("e.g. \"ray-prod\""));
    }

    #[test]
    fn past_the_cap_the_rest_are_summarised() {
        let (_, diags) = read("", |cx, _| {
            for _ in 0..MAX_DIAGNOSTICS + 3 {
                cx.error(0..0, "k", "bad", "fix");
            }
        });
        assert_eq!(diags.len(), MAX_DIAGNOSTICS + 1);
        assert_eq!(diags[MAX_DIAGNOSTICS].message, "3 more problems not shown");
    }
}
