//! Rendered objects as YAML: one multi-document stream for stdout, or one file per object.

use super::object::Desired;

/// Multi-document YAML, each object preceded by `---`. Deterministic: keys keep the order the
/// renderer built them in.
pub fn manifests(objects: &[Desired]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&document(o));
    }
    out
}

/// One object as a YAML document (no `---`), ending in a newline.
pub fn document(o: &Desired) -> String {
    // Serializing a serde_json::Value cannot fail: every key is a string.
    let mut s = serde_saphyr::to_string(&o.manifest).expect("a JSON value serializes to YAML");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// `NN-kind-name.yaml` for the object at `index` (0-based) in apply order, so a directory
/// listing shows the apply order.
pub fn file_name(index: usize, o: &Desired) -> String {
    format!(
        "{:02}-{}-{}.yaml",
        index + 1,
        o.kind().to_ascii_lowercase(),
        o.name()
    )
}
