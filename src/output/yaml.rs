//! A small, deterministic YAML writer for JSON values, used for plan diffs: keys in document
//! order, multi-line strings as block literals (so a changed redis.conf line diffs as one line),
//! anything ambiguous double-quoted.

use serde_json::Value;

/// `v` as a YAML document (no leading `---`), ending with a newline unless empty.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

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
        out.push_str(&plain_or_quoted(k));
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
            out.push_str(&scalar(other, indent + 2));
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
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) if s.contains('\n') && !s.contains('\r') && !s.contains('\t') => {
            let (body, chomp) = match s.strip_suffix('\n') {
                Some(b) if !b.ends_with('\n') => (b, "|"),
                Some(_) => (s.as_str(), "|+"),
                None => (s.as_str(), "|-"),
            };
            if body.lines().next().is_some_and(|l| l.starts_with(' ')) {
                return quoted(s);
            }
            let mut out = chomp.to_string();
            for line in body.split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    out.extend(std::iter::repeat_n(' ', indent));
                    out.push_str(line);
                }
            }
            out
        }
        Value::String(s) => plain_or_quoted(s),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn plain_or_quoted(s: &str) -> String {
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
    let ambiguous = s.contains(": ") || s.ends_with(':') || s.contains(" #") || s.ends_with(' ');
    if reserved || numeric || !first_ok || !chars_ok || ambiguous {
        quoted(s)
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_readable_yaml() {
        let v = json!({"kind": "ConfigMap", "metadata": {"labels": {"a": "true"}},
                       "data": {"redis.conf": "appendonly yes\nsave 60 1\n"},
                       "list": [{"name": "x", "port": 6379}, "plain"], "empty": {}, "size": "8"});
        assert_eq!(
            to_yaml(&v),
            "kind: ConfigMap\nmetadata:\n  labels:\n    a: \"true\"\ndata:\n  redis.conf: |\n    appendonly yes\n    save 60 1\nlist:\n- name: x\n  port: 6379\n- plain\nempty: {}\nsize: \"8\"\n"
        );
    }
}
