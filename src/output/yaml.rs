//! A small, deterministic YAML writer for JSON values, used for plan diffs: keys in document
//! order, multi-line strings as block literals (so a changed redis.conf line diffs as one line),
//! anything ambiguous double-quoted.

use serde_json::Value;

/// `v` as a YAML document (no leading `---`), ending with a newline unless empty.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_document(&mut out, v);
    out
}

/// Calls `f` with `v` as YAML (as [`to_yaml`] writes it), written into a buffer reused by
/// each call on this thread: a plan writes every object it shows, and growing a fresh string
/// to each object's size cost more than writing it.
pub fn with_yaml<R>(v: &Value, f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut out) => {
            out.clear();
            write_document(&mut out, v);
            f(&out)
        }
        // Called again from inside `f`: that call gets a string of its own.
        Err(_) => f(&to_yaml(v)),
    })
}

fn write_document(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        other => {
            write_scalar(out, other, 0);
            out.push('\n');
        }
    }
}

// The writers below append to one buffer; none allocates a string of its own except to
// double-quote a string (rare in manifests).

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            pad(out, indent);
        }
        first = false;
        write_plain_or_quoted(out, k);
        out.push(':');
        write_value_after_key(out, v, indent);
    }
}

fn write_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            pad(out, indent);
            write_seq(out, a, indent);
        }
        other => {
            out.push(' ');
            write_scalar(out, other, indent + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    let mut first = true;
    for v in a {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            other => {
                write_scalar(out, other, indent + 2);
                out.push('\n');
            }
        }
    }
}

fn write_scalar(out: &mut String, v: &Value, indent: usize) {
    use std::fmt::Write;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Writing to a String cannot fail.
        Value::Number(n) => write!(out, "{n}").expect("write to a String"),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        Value::String(s) if s.contains('\n') && !s.contains('\r') && !s.contains('\t') => {
            let (body, chomp) = match s.strip_suffix('\n') {
                Some(b) if !b.ends_with('\n') => (b, "|"),
                Some(_) => (s.as_str(), "|+"),
                None => (s.as_str(), "|-"),
            };
            if body.lines().next().is_some_and(|l| l.starts_with(' ')) {
                return write_quoted(out, s);
            }
            out.push_str(chomp);
            for line in body.split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    pad(out, indent);
                    out.push_str(line);
                }
            }
        }
        Value::String(s) => write_plain_or_quoted(out, s),
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

/// YAML words that read as null or a boolean (compared without regard to ASCII case).
const RESERVED: [&str; 11] = [
    "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n",
];

fn needs_quotes(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return true;
    };
    let first_ok =
        first.is_ascii_alphanumeric() || matches!(first, b'/' | b'.' | b'_' | b'$' | b'(');
    // Byte checks: every allowed character is ASCII, so a non-ASCII byte means quotes.
    let chars_ok = bytes.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b' ' | b'-'
                    | b'_'
                    | b'.'
                    | b'/'
                    | b':'
                    | b'='
                    | b'@'
                    | b'+'
                    | b','
                    | b'$'
                    | b'('
                    | b')'
            )
    });
    if !first_ok || !chars_ok {
        return true;
    }
    let ambiguous =
        bytes.windows(2).any(|w| w == b": " || w == b" #") || s.ends_with(':') || s.ends_with(' ');
    let reserved = RESERVED.iter().any(|w| s.eq_ignore_ascii_case(w));
    // `f64::from_str` accepts an optional sign, then a digit, a `.`, `inf`/`infinity` or `nan`
    // (any case): nothing else can parse, so only those are tried.
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let may_parse = unsigned
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'i' | b'I' | b'n' | b'N'));
    let numeric =
        (may_parse && s.parse::<f64>().is_ok()) || s.starts_with("0x") || s.starts_with("0o");
    ambiguous || reserved || numeric
}

fn write_plain_or_quoted(out: &mut String, s: &str) {
    if needs_quotes(s) {
        write_quoted(out, s);
    } else {
        out.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The quoting rule as first written (allocating, char by char); the faster one must agree.
    fn needs_quotes_reference(s: &str) -> bool {
        let reserved = matches!(
            s.to_ascii_lowercase().as_str(),
            "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
        let numeric = s.parse::<f64>().is_ok() || s.starts_with("0x") || s.starts_with("0o");
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '$' | '('));
        let chars_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_./:=@+,$()".contains(c));
        let ambiguous =
            s.contains(": ") || s.ends_with(':') || s.contains(" #") || s.ends_with(' ');
        reserved || numeric || !first_ok || !chars_ok || ambiguous
    }

    #[test]
    fn quoting_agrees_with_the_reference_rule() {
        let samples = [
            "",
            "~",
            "NULL",
            "True",
            "no",
            "Y",
            "on",
            "8",
            "-1",
            "+2.5",
            ".5",
            "1e3",
            "1E-3",
            "inf",
            "-Infinity",
            "NaN",
            "nan1",
            "info",
            "0x1f",
            "0o7",
            "1_000",
            "1.2.3",
            "abc",
            "a: b",
            "a:b",
            "a:",
            "a #b",
            "a#b",
            "a ",
            " a",
            "-a",
            "/tmp/ray",
            "$(X)",
            "(x)",
            "redis:7.4.0",
            "250m",
            "2Gi",
            "é",
            "aé",
            "a\tb",
            "a\"b",
            "ray.io/v1",
            "@x",
            "x@y",
            "a,b",
            "a=b",
            "a+b",
            "_x",
            ".x",
            "$x",
            "1Gi",
            "10001",
            "0.0.0.0",
            "e5",
            "+",
            "-",
            ".",
            "+.",
            "+inf",
            "-nan",
            "infinity",
            "INFINITY",
            "in",
            "i",
        ];
        for s in samples {
            assert_eq!(needs_quotes(s), needs_quotes_reference(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn quoting_agrees_with_the_reference_rule_on_any_string(s in "[-+. :#a-zA-Z0-9_/$()@,=~é\t]{0,8}") {
            proptest::prop_assert_eq!(needs_quotes(&s), needs_quotes_reference(&s));
        }
    }

    #[test]
    fn writes_readable_yaml() {
        let v = json!({"kind": "ConfigMap", "metadata": {"labels": {"a": "true"}},
                       "data": {"redis.conf": "appendonly yes\nsave 60 1\n"},
                       "list": [{"name": "x", "port": 6379}, "plain"], "empty": {}, "size": "8"});
        assert_eq!(with_yaml(&v, str::to_string), to_yaml(&v));
        assert_eq!(
            to_yaml(&v),
            "kind: ConfigMap\nmetadata:\n  labels:\n    a: \"true\"\ndata:\n  redis.conf: |\n    appendonly yes\n    save 60 1\nlist:\n- name: x\n  port: 6379\n- plain\nempty: {}\nsize: \"8\"\n"
        );
    }
}
