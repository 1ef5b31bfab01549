//! The state views: `raystack state list` (one address per line) and `raystack state show` (a
//! header, a resource table, secret fingerprints). Secret values are never printed: state holds
//! only fingerprints.

use std::fmt::Write as _;

use crate::state::State;

/// One address per line, in apply order.
pub fn list_text(state: &State) -> String {
    state
        .resources
        .iter()
        .map(|r| format!("{}\n", r.address))
        .collect()
}

/// A readable summary: header, a resource table, secret fingerprints.
/// `place` is the label and value of the line saying where the state is stored.
pub fn show_text(state: &State, place: (&str, String)) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Stack:   {}", state.stack);
    let _ = writeln!(out, "{} {}", place.0, place.1);
    let _ = writeln!(out, "Format:  {}", state.format_version);
    let _ = writeln!(out, "Lineage: {}", state.lineage);
    let _ = writeln!(out, "Serial:  {}", state.serial);
    out.push('\n');
    if state.resources.is_empty() {
        out.push_str("Resources: none\n");
    } else {
        let _ = writeln!(out, "Resources ({}):", state.resources.len());
        let mut rows = vec![[
            "KIND".to_owned(),
            "NAMESPACE".to_owned(),
            "NAME".to_owned(),
            "UID".to_owned(),
            "RESOURCE VERSION".to_owned(),
        ]];
        rows.extend(state.resources.iter().map(|r| {
            [
                r.object.kind.to_string(),
                r.object.namespace.clone().unwrap_or_else(|| "-".to_owned()),
                r.object.name.clone(),
                r.uid.clone(),
                r.resource_version.clone(),
            ]
        }));
        push_table(&mut out, &rows);
    }
    out.push('\n');
    if state.secrets.is_empty() {
        out.push_str("Secrets: none\n");
    } else {
        let _ = writeln!(
            out,
            "Secrets ({}; fingerprints only, values are never stored):",
            state.secrets.len()
        );
        let rows: Vec<[String; 2]> = state
            .secrets
            .iter()
            .map(|s| [s.name.clone(), s.fingerprint.clone()])
            .collect();
        push_table(&mut out, &rows);
    }
    out
}

/// Left-aligned columns, two spaces apart, indented by two; no trailing spaces.
fn push_table<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{Kind, ObjectRef};
    use crate::state::ResourceState;

    fn sample() -> State {
        let mut state = State::new("prod");
        state.lineage = "6f1c2a7e-0c1b-4e8f-9a55-3f7d2b1c9e40".into();
        state.serial = 7;
        for (kind, ns, name, uid, rv) in [
            (Kind::Namespace, None, "ray-prod", "a1", "101"),
            (
                Kind::Secret,
                Some("ray-prod"),
                "prod-redis-auth",
                "b22",
                "2040",
            ),
            (Kind::RayCluster, Some("ray-prod"), "prod", "c333", "99"),
        ] {
            let object = ObjectRef::new(kind, ns, name);
            state.upsert_resource(ResourceState {
                address: object.address(),
                object,
                uid: uid.into(),
                resource_version: rv.into(),
                applied_hash: "00".repeat(32),
            });
        }
        state.set_secret_fingerprint("redis-password", b"do-not-print-me");
        state
    }

    #[test]
    fn list_prints_addresses_in_apply_order() {
        assert_eq!(
            list_text(&sample()),
            "Namespace/ray-prod\nSecret/ray-prod/prod-redis-auth\nRayCluster/ray-prod/prod\n"
        );
        assert_eq!(list_text(&State::new("empty")), "");
    }

    #[test]
    fn show_summarizes_without_secret_values() {
        let state = sample();
        let fingerprint = state.secret("redis-password").unwrap().fingerprint.clone();
        let text = show_text(&state, ("File:   ", ".raystack/prod.state.json".into()));
        let expected = format!(
            "\
Stack:   prod
File:    .raystack/prod.state.json
Format:  1
Lineage: 6f1c2a7e-0c1b-4e8f-9a55-3f7d2b1c9e40
Serial:  7

Resources (3):
  KIND        NAMESPACE  NAME             UID   RESOURCE VERSION
  Namespace   -          ray-prod         a1    101
  Secret      ray-prod   prod-redis-auth  b22   2040
  RayCluster  ray-prod   prod             c333  99

Secrets (1; fingerprints only, values are never stored):
  redis-password  {fingerprint}
"
        );
        assert_eq!(text, expected);
        assert!(!text.contains("do-not-print-me"));
    }

    #[test]
    fn show_of_an_empty_state() {
        let mut state = State::new("dev");
        state.lineage = "l".into();
        assert_eq!(
            show_text(&state, ("File:   ", "s.json".into())),
            "Stack:   dev\nFile:    s.json\nFormat:  1\nLineage: l\nSerial:  0\n\nResources: none\n\nSecrets: none\n"
        );
    }
}
