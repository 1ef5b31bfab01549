//! The Redis password: generated once, at the first apply that finds the Secret without one,
//! and kept only in the Secret. The value is written under its own field manager
//! (`raystack-secret`) so that raystack's regular applies, which never carry `data`, neither own
//! nor prune it. State records a fingerprint; the value never leaves this file.

use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError};

/// The key of the password in the Secret's `data` (the renderer's, which the pods read).
pub use crate::render::REDIS_PASSWORD_KEY as PASSWORD_KEY;

/// The field manager that owns the Secret's `data`.
pub const SECRET_MANAGER: &str = "raystack-secret";

/// The password in a live Secret, if it holds one.
pub fn live_password(live: &Value) -> Option<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    live.pointer(&format!("/data/{PASSWORD_KEY}"))
        .and_then(Value::as_str)
        .and_then(|v| b64.decode(v).ok())
        .filter(|b| !b.is_empty())
}

/// Whether the live Secret `name` holds a password other than the one whose fingerprint state
/// recorded (false when nothing is recorded, or the Secret has no password yet).
pub fn password_changed(state: Option<&crate::state::State>, name: &str, live: &Value) -> bool {
    let Some(state) = state else {
        return false;
    };
    state.secret(name).is_some()
        && live_password(live).is_some_and(|p| !state.secret_matches(name, &p))
}

/// A fresh password: 32 random bytes from the OS-seeded CSPRNG, hex-encoded (64 characters,
/// safe in shells and Redis arguments).
fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Makes sure the applied Secret `live` holds a password, generating one only when it has none.
/// Returns the live Secret and the password bytes (for the state fingerprint only).
pub async fn ensure_password(
    cluster: &Cluster,
    live: Value,
) -> Result<(Value, Vec<u8>), ClusterError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(existing) = live
        .pointer(&format!("/data/{PASSWORD_KEY}"))
        .and_then(Value::as_str)
        && let Ok(bytes) = b64.decode(existing)
        && !bytes.is_empty()
    {
        return Ok((live, bytes));
    }
    let password = generate();
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": live.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "namespace": live.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
        },
        "data": { PASSWORD_KEY: b64.encode(password.as_bytes()) },
    });
    let live = cluster.apply(&patch, SECRET_MANAGER, false).await?;
    Ok((live, password.into_bytes()))
}
