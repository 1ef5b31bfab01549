//! Small shared helpers: timestamps, random names, JSON path access and storage quantities, and
//! the server's one diagnostic line on stderr ([`warn`]).

use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The library's one way to say something outside an HTTP answer: a line on stderr, for what
/// a test author must see that no client is told (a pod delete hook that failed). The print
/// macros stay in the binary (the workspace lints deny them in the library).
pub fn warn(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    // Nothing to do if stderr is gone.
    let _ = writeln!(std::io::stderr().lock(), "fake-apiserver: {line}");
}

/// The current time as a Kubernetes RFC 3339 timestamp with second precision (`2025-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_rfc3339(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch of a `YYYY-MM-DDTHH:MM:SSZ` time (the form the server writes).
pub fn parse_rfc3339(t: &str) -> Option<u64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    if t.len() != 20 || !t.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `format_rfc3339`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    // Only YAML 1.2 booleans (`true`, `false`): `name: y` stays a string.
    o.strict_booleans = true;
    o.with_snippet = false;
    o
}

/// Parses one YAML document into JSON.
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str_with_options::<Value>(text, yaml_options()).map_err(|e| e.to_string())
}

/// Parses a multi-document YAML stream into JSON values (empty documents skipped).
pub fn parse_yaml_multi(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple_with_options::<Value>(text, yaml_options())
        .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
        .map_err(|e| e.to_string())
}

/// A random lowercase suffix like the ones Kubernetes controllers use for generated names.
pub fn rand_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
        }
    }
    out
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Follows object keys; `None` when any step is missing or not an object.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(*p)?;
    }
    Some(cur)
}

pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// Returns the object at `path`, creating empty objects along the way (replacing non-objects).
pub fn obj_at<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let mut cur = v;
    for p in path {
        let m = cur.as_object_mut().expect("checked object");
        let next = m
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next;
    }
    cur.as_object_mut().expect("checked object")
}

/// Sets `key` in the object at `path` only when it is absent.
pub fn default_at(v: &mut Value, path: &[&str], key: &str, val: Value) {
    let m = obj_at(v, path);
    if !m.contains_key(key) {
        m.insert(key.to_string(), val);
    }
}

/// Parses a Kubernetes resource quantity ("10Gi", "500M", "1.5Gi", "100m") into a number of base units.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let idx = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(idx);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// Quantity as it appears in JSON: a string or a bare number.
pub fn quantity_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for secs in [0, 1_700_000_000, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)), Some(secs));
        }
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z"), None);
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert!(parse_quantity("2Gi").unwrap() > parse_quantity("1500Mi").unwrap());
        assert_eq!(parse_quantity("abc"), None);
    }

    #[test]
    fn yaml_keeps_y_as_string() {
        let v = parse_yaml("metadata:\n  name: y\nflag: true\n").unwrap();
        assert_eq!(v["metadata"]["name"], "y");
        assert_eq!(v["flag"], true);
        assert_eq!(parse_yaml_multi("---\na: 1\n---\nb: 2\n").unwrap().len(), 2);
    }

    #[test]
    fn suffix_len() {
        assert_eq!(rand_suffix(5).len(), 5);
    }
}
