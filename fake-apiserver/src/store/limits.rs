//! Size limits a real apiserver enforces, with its codes and messages: a request body over 3 MiB
//! is refused before decoding (413 RequestEntityTooLarge, "Request entity too large: limit is
//! 3145728"); a Secret or ConfigMap whose data add up to more than 1 MiB fails validation (422
//! Invalid, "data: Too long: must have at most 1048576 bytes" for a Secret, "[]: Too long: ..." for
//! a ConfigMap); an object over etcd's default request limit of 1.5 MiB fails at the storage layer
//! with "etcdserver: request is too large", which kube-apiserver still reports as a 500. The
//! stored size is measured here as compact JSON, where etcd sees protobuf (a little smaller).

use crate::error::{ApiError, Cause};
use base64::Engine as _;
use serde_json::Value;

/// kube-apiserver's `MaxRequestBodyBytes`.
pub const MAX_REQUEST_BODY: usize = 3 * 1024 * 1024;
/// Kubernetes' `MaxSecretSize`, also applied to ConfigMaps.
pub const MAX_DATA: usize = 1024 * 1024;
/// etcd's default `--max-request-bytes`.
pub const MAX_STORED: usize = 3 * 512 * 1024;

pub fn request_body(len: usize) -> Result<(), ApiError> {
    if len > MAX_REQUEST_BODY {
        return Err(ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: limit is {MAX_REQUEST_BODY}"),
            details: serde_json::json!({}),
        });
    }
    Ok(())
}

/// The validation cause of a Secret's or ConfigMap's data over [`MAX_DATA`] bytes.
pub fn data_size(group: &str, kind: &str, obj: &Value) -> Option<Cause> {
    let (maps, field): (&[(&str, bool)], &str) = match (group, kind) {
        // Secret data is base64 on the wire; the limit counts decoded bytes.
        ("", "Secret") => (&[("data", true), ("stringData", false)], "data"),
        ("", "ConfigMap") => (&[("data", false), ("binaryData", true)], "[]"),
        _ => return None,
    };
    let mut total = 0usize;
    for (key, encoded) in maps {
        let Some(map) = obj.get(*key).and_then(Value::as_object) else {
            continue;
        };
        for v in map.values() {
            let s = v.as_str().unwrap_or_default();
            total += if *encoded {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(|b| b.len())
                    .unwrap_or(s.len())
            } else {
                s.len()
            };
        }
    }
    (total > MAX_DATA).then(|| Cause {
        field: field.into(),
        reason: "FieldValueTooLong",
        message: format!("Too long: must have at most {MAX_DATA} bytes"),
    })
}

/// etcd's refusal of an object too large to store.
pub fn stored_size(obj: &Value) -> Result<(), ApiError> {
    let len = serde_json::to_vec(obj).map(|v| v.len()).unwrap_or(0);
    if len > MAX_STORED {
        return Err(ApiError {
            code: 500,
            reason: "InternalError",
            message: "etcdserver: request is too large".into(),
            details: serde_json::json!({}),
        });
    }
    Ok(())
}
