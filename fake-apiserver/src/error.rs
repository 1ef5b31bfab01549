//! API errors rendered as `kind: Status` bodies, with the reasons and messages a real apiserver uses.

use serde_json::{Value, json};

/// One field-level cause of a 422 Invalid error.
#[derive(Debug, Clone)]
pub struct Cause {
    pub field: String,
    /// Machine reason, e.g. `FieldValueForbidden`.
    pub reason: &'static str,
    /// Human text after the field, e.g. `Forbidden: updates to parameters are forbidden.`.
    pub message: String,
}

impl Cause {
    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            field: field.into(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
        }
    }
    pub fn required(field: &str, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause {
            field: field.into(),
            reason: "FieldValueRequired",
            message,
        }
    }
    /// `value` is shown as Go would print it; strings are quoted by the caller.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Cause {
        Cause {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
        }
    }
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause {
            field: field.into(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

/// `plural` or `plural.group`, as used in NotFound/AlreadyExists messages.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    pub fn not_found(plural: &str, group: &str, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} {name:?} not found", qualified(plural, group)),
            details: details(name, group, plural),
        }
    }
    pub fn no_resource() -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: json!({}),
        }
    }
    pub fn already_exists(plural: &str, group: &str, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} {name:?} already exists", qualified(plural, group)),
            details: details(name, group, plural),
        }
    }
    pub fn conflict_modified(plural: &str, group: &str, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                qualified(plural, group)
            ),
            details: details(name, group, plural),
        }
    }
    pub fn conflict(message: String, details: Value) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message,
            details,
        }
    }
    /// 422 with `Kind[.group] "name" is invalid: field: detail[, ...]`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let qkind = qualified(kind, group);
        let parts: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{qkind} {name:?} is invalid: {joined}"),
            details: d,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: json!({}),
        }
    }
    pub fn forbidden(plural: &str, group: &str, name: &str, why: &str) -> ApiError {
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!("{} {name:?} is forbidden: {why}", qualified(plural, group)),
            details: details(name, group, plural),
        }
    }
    /// kube-apiserver's NamespaceLifecycle admission: no new content in a namespace being deleted.
    pub fn namespace_terminating(plural: &str, group: &str, name: &str, ns: &str) -> ApiError {
        let mut e = ApiError::forbidden(
            plural,
            group,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        );
        e.details["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace",
        }]);
        e
    }
    pub fn method_not_allowed() -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: json!({}),
        }
    }
    pub fn unsupported_media_type(ct: &str) -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
            details: json!({}),
        }
    }

    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        })
    }
}
