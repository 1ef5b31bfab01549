//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which
//! kubectl's typed clients send (e.g. `kubectl create namespace`, `create configmap`, `create secret`,
//! `create service`): the `k8s\0` envelope around a `runtime.Unknown`, and the messages of the kinds
//! those commands create, decoded into the JSON a client would have sent. Zero values are dropped, as Go's
//! `omitempty` does when the same object is encoded as JSON. Responses are always JSON (clients accept it).
//!
//! Message layouts (field numbers and types) are those of the `generated.proto` files of the Kubernetes
//! API types; only the messages below are known, any other kind is refused as an unsupported media type.

use base64::Engine;
use serde_json::{Map, Value, json};

/// How one field is encoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [Field]),
    /// `metav1.Time`: seconds and nanos, shown as RFC 3339.
    Time,
    /// `intstr.IntOrString`.
    IntOrString,
    MapStr,
    MapBytes,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn list(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(5, "apiVersion", Ty::Str),
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    list(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Ty::Str),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[list(1, "finalizers", Ty::Str)])),
    f(3, "status", Ty::Msg(&[f(1, "phase", Ty::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(4, "immutable", Ty::Bool),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(5, "immutable", Ty::Bool),
    f(2, "data", Ty::MapBytes),
    f(4, "stringData", Ty::MapStr),
    f(3, "type", Ty::Str),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(6, "appProtocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::Int),
];

const SERVICE_SPEC: &[Field] = &[
    list(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    list(18, "clusterIPs", Ty::Str),
    f(4, "type", Ty::Str),
    list(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    list(9, "loadBalancerSourceRanges", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(12, "healthCheckNodePort", Ty::Int),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    list(19, "ipFamilies", Ty::Str),
    f(17, "ipFamilyPolicy", Ty::Str),
    f(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    f(21, "loadBalancerClass", Ty::Str),
    f(22, "internalTrafficPolicy", Ty::Str),
    f(23, "trafficDistribution", Ty::Str),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];

/// The message layout of a kind (core group, v1), if known.
fn layout(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "Service") => Some(SERVICE),
        _ => None,
    }
}

/// Why a protobuf body could not be read.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// Well-formed, but of a kind this server has no layout for.
    UnknownKind(String),
    Malformed(String),
}

const MAGIC: &[u8] = b"k8s\0";

/// Decodes an enveloped object into JSON (with apiVersion and kind from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| Error::Malformed("missing the k8s protobuf prefix".into()))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut r = Reader(inner);
    while let Some((num, wire)) = r.key()? {
        match (num, wire) {
            (1, 2) => {
                let mut tm = Reader(r.bytes()?);
                while let Some((n, w)) = tm.key()? {
                    match (n, w) {
                        (1, 2) => api_version = tm.string()?,
                        (2, 2) => kind = tm.string()?,
                        _ => tm.skip(w)?,
                    }
                }
            }
            (2, 2) => raw = r.bytes()?,
            _ => r.skip(wire)?,
        }
    }
    let fields = layout(&api_version, &kind)
        .ok_or_else(|| Error::UnknownKind(format!("{api_version}/{kind}")))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    if let Value::Object(m) = message(raw, fields)? {
        obj.extend(m);
    }
    Ok(Value::Object(obj))
}

fn message(buf: &[u8], fields: &[Field]) -> Result<Value, Error> {
    let mut out = Map::new();
    let mut r = Reader(buf);
    while let Some((num, wire)) = r.key()? {
        let Some(fd) = fields.iter().find(|f| f.num == num) else {
            r.skip(wire)?;
            continue;
        };
        let v = match fd.ty {
            Ty::Str => json!(r.string()?),
            Ty::Int => json!(r.varint()? as i64),
            Ty::Bool => json!(r.varint()? != 0),
            Ty::Msg(inner) => message(r.bytes()?, inner)?,
            Ty::Time => time(r.bytes()?)?,
            Ty::IntOrString => int_or_string(r.bytes()?)?,
            Ty::MapStr | Ty::MapBytes => {
                let (k, v) = map_entry(r.bytes()?, matches!(fd.ty, Ty::MapBytes))?;
                out.entry(fd.name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("map fields are objects")
                    .insert(k, v);
                continue;
            }
        };
        if fd.repeated {
            if let Some(a) = out
                .entry(fd.name)
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                a.push(v);
            }
        } else {
            out.insert(fd.name.into(), v);
        }
    }
    // Go's `omitempty`: zero values are not part of the JSON form.
    out.retain(|_, v| !is_zero(v));
    Ok(Value::Object(out))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn map_entry(buf: &[u8], bytes: bool) -> Result<(String, Value), Error> {
    let mut r = Reader(buf);
    let mut key = String::new();
    let mut val = json!("");
    while let Some((num, wire)) = r.key()? {
        match (num, wire) {
            (1, 2) => key = r.string()?,
            (2, 2) if bytes => {
                val = json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?))
            }
            (2, 2) => val = json!(r.string()?),
            _ => r.skip(wire)?,
        }
    }
    Ok((key, val))
}

fn time(buf: &[u8]) -> Result<Value, Error> {
    let mut r = Reader(buf);
    let mut secs = 0u64;
    while let Some((num, wire)) = r.key()? {
        match (num, wire) {
            (1, 0) => secs = r.varint()?,
            _ => r.skip(wire)?,
        }
    }
    Ok(if secs == 0 {
        Value::Null
    } else {
        json!(crate::util::format_rfc3339(secs))
    })
}

fn int_or_string(buf: &[u8]) -> Result<Value, Error> {
    let mut r = Reader(buf);
    let (mut ty, mut int, mut s) = (0u64, 0i64, String::new());
    while let Some((num, wire)) = r.key()? {
        match (num, wire) {
            (1, 0) => ty = r.varint()?,
            (2, 0) => int = r.varint()? as i32 as i64,
            (3, 2) => s = r.string()?,
            _ => r.skip(wire)?,
        }
    }
    Ok(if ty == 1 { json!(s) } else { json!(int) })
}

/// A cursor over protobuf wire-format bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn malformed() -> Error {
        Error::Malformed("truncated or invalid protobuf".into())
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or_else(Self::malformed)?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Self::malformed())
    }

    /// The next field number and wire type, `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, Error> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.varint()?).map_err(|_| Self::malformed())?;
        if n > self.0.len() {
            return Err(Self::malformed());
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    fn string(&mut self) -> Result<String, Error> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| Error::Malformed("a string field is not UTF-8".into()))
    }

    fn skip(&mut self, wire: u8) -> Result<(), Error> {
        let n = match wire {
            0 => return self.varint().map(|_| ()),
            1 => 8,
            2 => return self.bytes().map(|_| ()),
            5 => 4,
            _ => return Err(Self::malformed()),
        };
        if n > self.0.len() {
            return Err(Self::malformed());
        }
        self.0 = &self.0[n..];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kubectl 1.33 sends for `kubectl create namespace foo`.
    const CREATE_NAMESPACE_FOO: &[u8] = &[
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61, 0x6d,
        0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a, 0x13, 0x0a, 0x03, 0x66, 0x6f, 0x6f,
        0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12,
        0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
    ];

    #[test]
    fn kubectl_create_namespace() {
        assert_eq!(
            decode(CREATE_NAMESPACE_FOO).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_refused() {
        let mut body = CREATE_NAMESPACE_FOO.to_vec();
        body[12..21].copy_from_slice(b"Nonsense!");
        assert_eq!(
            decode(&body),
            Err(Error::UnknownKind("v1/Nonsense!".into()))
        );
        assert!(matches!(decode(b"{}"), Err(Error::Malformed(_))));
        assert!(matches!(
            decode(&CREATE_NAMESPACE_FOO[..30]),
            Err(Error::Malformed(_))
        ));
    }
}
