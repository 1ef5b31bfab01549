//! The pod keys shared by `[ray.head]`, each `[[ray.workers]]` and `[redis]` (placement:
//! `node_selector`, `tolerations`, `affinity`; identity: `service_account`, `env`,
//! `env_from_secret`, `labels`, `annotations`, `priority_class`, `image_pull_secrets`),
//! `[stack] labels/annotations`, the Ray images (GPU default, version and GPU warnings), and the table of derived object
//! names checked against Kubernetes' and KubeRay's length limits. Every check is located.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::DeValue;

use super::{Cx, Table, did_you_mean, is_dns_subdomain, type_name};
use crate::stack::{
    Affinity, NodeExpression, PodSettings, ProviderConfig, Stack, Toleration, WorkerGroup,
};

/// Which pod the keys are read for: decides which values raystack owns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Head,
    Worker,
    Redis,
}

/// Label and annotation prefixes that belong to raystack and KubeRay.
const OWNED_PREFIXES: &[&str] = &["raystack.dev/", "ray.io/"];

/// Environment variables raystack or KubeRay set for GCS fault tolerance and the Redis
/// password wiring (KubeRay's `ray-operator/controllers/ray/utils/constant.go`).
const OWNED_RAY_ENV: &[&str] = &[
    "RAY_REDIS_ADDRESS",
    "REDIS_PASSWORD",
    "REDIS_USERNAME",
    "REDISCLI_AUTH",
    "RAY_external_storage_namespace",
    "RAY_gcs_rpc_server_reconnect_timeout_s",
    "RAY_gcs_server_request_timeout_seconds",
];
const OWNED_REDIS_ENV: &[&str] = &["REDIS_PASSWORD", "REDISCLI_AUTH"];

const TOLERATION_KEYS: &[&str] = &["key", "operator", "value", "effect", "toleration_seconds"];
const AFFINITY_KEYS: &[&str] = &["required", "preferred", "zone", "same_zone_as_redis"];
const EXPRESSION_KEYS: &[&str] = &["key", "operator", "values"];
const PREFERRED_KEYS: &[&str] = &["weight", "key", "operator", "values"];

/// The pod keys of `t` (a section whose keys were already checked).
pub(super) fn pod_settings(cx: &mut Cx<'_>, t: &Table<'_, '_>, role: Role) -> PodSettings {
    let node_selector = string_map(
        cx,
        t,
        "node_selector",
        "{ \"karpenter.sh/nodepool\" = \"gpu\" }",
    )
    .into_iter()
    .filter_map(|(k, v, kspan, vspan)| {
        let path = format!("{}.{k}", t.key("node_selector"));
        (check_label_key(cx, &path, &k, kspan) & check_label_value(cx, &path, &v, vspan))
            .then_some((k, v))
    })
    .collect();
    let tolerations = tolerations(cx, t);
    let affinity = affinity(cx, t, role);
    let service_account = name_ref(cx, t, "service_account", "ray-workers");
    let priority_class = name_ref(cx, t, "priority_class", "high-priority");
    let owned_env = if role == Role::Redis {
        OWNED_REDIS_ENV
    } else {
        OWNED_RAY_ENV
    };
    let mut env = BTreeMap::new();
    for (k, v, kspan, _) in string_map(cx, t, "env", "{ NCCL_DEBUG = \"INFO\" }") {
        let path = format!("{}.{k}", t.key("env"));
        if check_env_name(cx, &path, &k, kspan.clone(), owned_env) {
            env.insert(k, v);
        }
    }
    let mut env_from_secret = BTreeMap::new();
    for (k, v, kspan, vspan) in string_map(
        cx,
        t,
        "env_from_secret",
        "{ HF_TOKEN = \"hf-token/token\" }",
    ) {
        let path = format!("{}.{k}", t.key("env_from_secret"));
        if !check_env_name(cx, &path, &k, kspan, owned_env) {
            continue;
        }
        if env.contains_key(&k) {
            cx.error(
                vspan.clone(),
                &path,
                format!("`{k}` is set both in `env` and in `env_from_secret`"),
                "keep one of them",
            );
            continue;
        }
        match v.split_once('/') {
            Some((secret, key))
                if is_dns_subdomain(secret)
                    && !key.is_empty()
                    && key.len() <= 253
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) =>
            {
                env_from_secret.insert(k, (secret.to_string(), key.to_string()));
            }
            _ => cx.error(
                vspan,
                &path,
                // The value is not echoed: a value that is no reference may be the secret itself.
                "is not a Secret reference".to_string(),
                "write \"SECRET/KEY\": the name of a Secret in the stack's namespace and the key in it, e.g. \"hf-token/token\" (the value itself never belongs in a stack file)",
            ),
        }
    }
    let labels = labels(cx, t, "labels");
    let annotations = annotations(cx, t, "annotations");
    let image_pull_secrets = image_pull_secrets(cx, t);
    PodSettings {
        image_pull_secrets,
        node_selector,
        tolerations,
        affinity,
        service_account,
        env,
        env_from_secret,
        labels,
        annotations,
        priority_class,
    }
}

/// `image_pull_secrets = ["regcred"]`: Secret names, each once.
fn image_pull_secrets(cx: &mut Cx<'_>, t: &Table<'_, '_>) -> Vec<String> {
    let Some((items, _)) = t.typed(
        cx,
        "image_pull_secrets",
        "an array of Secret names",
        |v| match v {
            DeValue::Array(a) => Some(a),
            _ => None,
        },
        || "e.g. image_pull_secrets = [\"regcred\"]".into(),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", t.key("image_pull_secrets"));
        match item.get_ref() {
            DeValue::String(s) if is_dns_subdomain(s) && !s.is_empty() => {
                if out.iter().any(|o| o == s.as_ref()) {
                    cx.error(
                        item.span(),
                        &path,
                        format!("\"{s}\" is listed twice"),
                        "list each Secret once",
                    );
                } else {
                    out.push(s.to_string());
                }
            }
            DeValue::String(s) => cx.error(
                item.span(),
                &path,
                format!("\"{s}\" is not a valid Secret name"),
                "Secret names are DNS-1123 subdomains, e.g. \"regcred\"",
            ),
            other => cx.error(
                item.span(),
                &path,
                format!("must be a string, found {}", type_name(other)),
                "e.g. image_pull_secrets = [\"regcred\"]",
            ),
        }
    }
    out
}

/// `labels = { … }`: label keys and values by Kubernetes' syntax, none that raystack owns.
pub(super) fn labels(cx: &mut Cx<'_>, t: &Table<'_, '_>, key: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v, kspan, vspan) in string_map(cx, t, key, "{ team = \"ml\" }") {
        let path = format!("{}.{k}", t.key(key));
        if !(check_label_key(cx, &path, &k, kspan.clone())
            & check_label_value(cx, &path, &v, vspan))
        {
            continue;
        }
        if owned(&k, true) {
            cx.error(
                kspan,
                &path,
                format!("label `{k}` is set by raystack or KubeRay and cannot be overridden"),
                "use a label of your own (raystack's labels select its pods and find its objects)",
            );
            continue;
        }
        out.insert(k, v);
    }
    out
}

/// `annotations = { … }`: keys by label-key syntax, values any string; none that raystack
/// or KubeRay owns.
pub(super) fn annotations(
    cx: &mut Cx<'_>,
    t: &Table<'_, '_>,
    key: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v, kspan, _) in string_map(cx, t, key, "{ \"karpenter.sh/do-not-disrupt\" = \"true\" }")
    {
        let path = format!("{}.{k}", t.key(key));
        if !check_label_key(cx, &path, &k, kspan.clone()) {
            continue;
        }
        if owned(&k, false) {
            cx.error(
                kspan,
                &path,
                format!("annotation `{k}` is set by raystack or KubeRay and cannot be overridden"),
                "use an annotation of your own",
            );
            continue;
        }
        out.insert(k, v);
    }
    out
}

/// `selector = { … }`: the labels of an existing pod, any valid label (raystack's own keys too:
/// an adopted StatefulSet's selector is whatever it was created with).
pub(super) fn selector(cx: &mut Cx<'_>, t: &Table<'_, '_>, key: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v, kspan, vspan) in string_map(cx, t, key, "{ app = \"redis\" }") {
        let path = format!("{}.{k}", t.key(key));
        if check_label_key(cx, &path, &k, kspan) & check_label_value(cx, &path, &v, vspan) {
            out.insert(k, v);
        }
    }
    out
}

fn owned(key: &str, label: bool) -> bool {
    (label && crate::stack::OWNED_LABEL_KEYS.contains(&key))
        || OWNED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// An inline table of strings: (key, value, key span, value span) in file order. A value of
/// another type is reported.
fn string_map(
    cx: &mut Cx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    example: &str,
) -> Vec<(String, String, Range<usize>, Range<usize>)> {
    let Some((table, _)) = t.typed(
        cx,
        key,
        "a table of strings",
        |v| match v {
            DeValue::Table(m) => Some(m),
            _ => None,
        },
        || format!("e.g. {key} = {example}"),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in table.iter() {
        let name: &str = k.get_ref();
        match v.get_ref() {
            DeValue::String(s) => out.push((name.to_string(), s.to_string(), k.span(), v.span())),
            other => cx.error(
                v.span(),
                &format!("{}.{name}", t.key(key)),
                format!("must be a string, found {}", type_name(other)),
                "write the value in quotes",
            ),
        }
    }
    out
}

/// A name of another object (ServiceAccount, PriorityClass): a DNS-1123 subdomain.
fn name_ref(cx: &mut Cx<'_>, t: &Table<'_, '_>, key: &str, example: &str) -> Option<String> {
    let (v, span) = t.string(cx, key, example)?;
    if !is_dns_subdomain(&v) || v.is_empty() {
        cx.error(
            span,
            &t.key(key),
            format!("\"{v}\" is not a valid object name"),
            format!("names are DNS-1123 subdomains (lowercase letters, digits, '-' and '.'), e.g. \"{example}\""),
        );
        return None;
    }
    Some(v)
}

/// A label name: at most 63 characters, alphanumerics with '-', '_', '.' inside.
fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// `[prefix/]name`, the prefix a DNS subdomain.
pub(super) fn is_label_key(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty() && is_dns_subdomain(prefix) && is_label_name(name)
        }
        None => is_label_name(k),
    }
}

fn check_label_key(cx: &mut Cx<'_>, path: &str, k: &str, span: Range<usize>) -> bool {
    if is_label_key(k) {
        return true;
    }
    cx.error(
        span,
        path,
        format!("\"{k}\" is not a valid label key"),
        "a key is an optional DNS subdomain prefix and '/', then a name of at most 63 characters (letters, digits, '-', '_', '.', starting and ending with a letter or digit), e.g. \"karpenter.sh/nodepool\"",
    );
    false
}

fn check_label_value(cx: &mut Cx<'_>, path: &str, v: &str, span: Range<usize>) -> bool {
    if v.is_empty() || is_label_name(v) {
        return true;
    }
    cx.error(
        span,
        path,
        format!("\"{v}\" is not a valid label value"),
        "a label value has at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit",
    );
    false
}

fn check_env_name(
    cx: &mut Cx<'_>,
    path: &str,
    name: &str,
    span: Range<usize>,
    owned: &[&str],
) -> bool {
    let valid = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        cx.error(
            span,
            path,
            format!("\"{name}\" is not a valid environment variable name"),
            "use letters, digits, '_', '-' and '.', not starting with a digit, e.g. NCCL_DEBUG",
        );
        return false;
    }
    if owned.contains(&name) {
        cx.error(
            span,
            path,
            format!("`{name}` is set by raystack or KubeRay (GCS fault tolerance and the Redis password wiring) and cannot be overridden"),
            "remove it; raystack wires the GCS to its Redis itself",
        );
        return false;
    }
    true
}

/// Array-of-tables items of `key`, with an example of one in the help.
fn items<'t, 'i>(
    cx: &mut Cx<'_>,
    t: &Table<'t, 'i>,
    key: &str,
    example: &str,
) -> Vec<Table<'t, 'i>> {
    t.tables(cx, key, &format!("e.g. {key} = [{example}]"))
}

/// One of `choices`, spelled exactly as Kubernetes spells it; `None` when absent.
fn enum_value(
    cx: &mut Cx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    choices: &[&str],
) -> Option<(String, Range<usize>)> {
    let (v, span) = t.string(cx, key, choices[0])?;
    if choices.contains(&v.as_str()) {
        return Some((v, span));
    }
    let help = match did_you_mean(&v, choices) {
        Some(c) => format!(
            "did you mean \"{c}\"? Kubernetes accepts: {}",
            choices.join(", ")
        ),
        None => format!("Kubernetes accepts: {}", choices.join(", ")),
    };
    cx.error(
        span,
        &t.key(key),
        format!("\"{v}\" is not a valid value"),
        help,
    );
    None
}

const TOLERATION_EXAMPLE: &str =
    "{ key = \"nvidia.com/gpu\", operator = \"Exists\", effect = \"NoSchedule\" }";

fn tolerations(cx: &mut Cx<'_>, t: &Table<'_, '_>) -> Vec<Toleration> {
    let mut out = Vec::new();
    for tt in items(cx, t, "tolerations", TOLERATION_EXAMPLE) {
        tt.check_keys(cx, TOLERATION_KEYS);
        let key = tt
            .string(cx, "key", "nvidia.com/gpu")
            .and_then(|(k, span)| {
                (k.is_empty() || check_label_key(cx, &tt.key("key"), &k, span)).then_some(k)
            });
        let key = key.filter(|k| !k.is_empty());
        let operator = enum_value(cx, &tt, "operator", &["Equal", "Exists"]);
        let op = operator.as_ref().map_or("Equal", |(o, _)| o.as_str());
        let value = tt.string(cx, "value", "true").and_then(|(v, span)| {
            if op == "Exists" && !v.is_empty() {
                cx.error(
                    span,
                    &tt.key("value"),
                    "must be empty when operator is \"Exists\"",
                    "remove `value`, or use operator = \"Equal\"",
                );
                return None;
            }
            check_label_value(cx, &tt.key("value"), &v, span).then_some(v)
        });
        if key.is_none() && op != "Exists" {
            cx.error(
                tt.span.clone(),
                &tt.key("key"),
                "is required unless operator is \"Exists\" (an empty key with Exists tolerates every taint)",
                "add key = \"nvidia.com/gpu\" (or the taint's key)",
            );
        }
        let effect = enum_value(
            cx,
            &tt,
            "effect",
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        );
        let seconds = tt
            .integer(cx, "toleration_seconds", 0..=(i64::MAX as u64))
            .map(|(n, span)| {
                if effect.as_ref().is_none_or(|(e, _)| e != "NoExecute") {
                    cx.error(
                        span,
                        &tt.key("toleration_seconds"),
                        "only applies to effect = \"NoExecute\" (how long the pod stays on a node after the taint appears)",
                        "remove it, or set effect = \"NoExecute\"",
                    );
                }
                n as i64
            });
        out.push(Toleration {
            key,
            operator: op.to_string(),
            value: value.filter(|v| !v.is_empty()),
            effect: effect.map(|(e, _)| e),
            toleration_seconds: seconds,
        });
    }
    out
}

fn affinity(cx: &mut Cx<'_>, t: &Table<'_, '_>, role: Role) -> Affinity {
    if !t.is_present("affinity") {
        return Affinity::default();
    }
    let a = t.section(cx, "affinity", AFFINITY_KEYS);
    let mut out = Affinity::default();
    for e in items(
        cx,
        &a,
        "required",
        "{ key = \"karpenter.k8s.aws/instance-gpu-name\", operator = \"In\", values = [\"a10g\"] }",
    ) {
        e.check_keys(cx, EXPRESSION_KEYS);
        if let Some(x) = expression(cx, &e) {
            out.required.push(x);
        }
    }
    for e in items(
        cx,
        &a,
        "preferred",
        "{ weight = 50, key = \"karpenter.sh/capacity-type\", operator = \"In\", values = [\"on-demand\"] }",
    ) {
        e.check_keys(cx, PREFERRED_KEYS);
        let weight = e.integer(cx, "weight", 1..=100);
        if weight.is_none() && !e.is_present("weight") {
            cx.error(
                e.span.clone(),
                &e.key("weight"),
                "is required for a preferred term",
                "add weight = 50 (1 to 100; higher wins)",
            );
        }
        if let (Some((w, _)), Some(x)) = (weight, expression(cx, &e)) {
            out.preferred.push((w as i32, x));
        }
    }
    if let Some((z, span)) = a.string(cx, "zone", "us-west-2a") {
        if check_label_value(cx, &a.key("zone"), &z, span.clone()) && !z.is_empty() {
            out.zone = Some(z);
        } else if z.is_empty() {
            cx.error(
                span,
                &a.key("zone"),
                "must not be empty",
                "e.g. zone = \"us-west-2a\"",
            );
        }
    }
    if a.is_present("same_zone_as_redis") {
        out.same_zone_as_redis = a.boolean(cx, "same_zone_as_redis", false);
        if role == Role::Redis {
            cx.error(
                a.span_of("same_zone_as_redis"),
                &a.key("same_zone_as_redis"),
                "places a Ray pod next to the Redis volume; on [redis] itself it means nothing",
                "remove it; pin the Redis pod (and so its volume) with zone = \"…\"",
            );
        }
        if out.same_zone_as_redis && out.zone.is_some() {
            cx.error(
                a.span_of("same_zone_as_redis"),
                &a.key("same_zone_as_redis"),
                "conflicts with `zone` in the same affinity",
                "keep one: zone = \"…\" names the zone, same_zone_as_redis follows the Redis volume",
            );
        }
    }
    out
}

fn expression(cx: &mut Cx<'_>, e: &Table<'_, '_>) -> Option<NodeExpression> {
    let key = e
        .required_string(
            cx,
            "key",
            "karpenter.sh/nodepool",
            ": it names the node label",
        )
        .and_then(|(k, span)| check_label_key(cx, &e.key("key"), &k, span).then_some(k));
    let operator = if e.is_present("operator") {
        enum_value(
            cx,
            e,
            "operator",
            &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
        )
    } else {
        cx.error(
            e.span.clone(),
            &e.key("operator"),
            "is required",
            "add operator = \"In\" (or NotIn, Exists, DoesNotExist, Gt, Lt)",
        );
        None
    };
    let mut values = Vec::new();
    let values_span = e.span_of("values");
    if let Some((vs, _)) = e.typed(
        cx,
        "values",
        "an array of strings",
        |v| match v {
            DeValue::Array(a) => Some(a),
            _ => None,
        },
        || "e.g. values = [\"gpu\"]".into(),
    ) {
        for (i, v) in vs.iter().enumerate() {
            let path = format!("{}[{i}]", e.key("values"));
            match v.get_ref() {
                DeValue::String(s) => {
                    if check_label_value(cx, &path, s, v.span()) {
                        values.push(s.to_string());
                    }
                }
                other => cx.error(
                    v.span(),
                    &path,
                    format!("must be a string, found {}", type_name(other)),
                    "write the value in quotes",
                ),
            }
        }
    }
    let (operator, _) = operator?;
    let problem = match operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Some("needs at least one value"),
        "Exists" | "DoesNotExist" if !values.is_empty() || e.is_present("values") => {
            Some("takes no values")
        }
        "Gt" | "Lt" if values.len() != 1 || values[0].parse::<i64>().is_err() => {
            Some("needs exactly one value, an integer")
        }
        _ => None,
    };
    if let Some(p) = problem {
        cx.error(
            values_span,
            &e.key("values"),
            format!("operator \"{operator}\" {p}"),
            "In/NotIn take one or more values, Exists/DoesNotExist none, Gt/Lt one integer",
        );
        return None;
    }
    Some(NodeExpression {
        key: key?,
        operator,
        values,
    })
}

/// Ray's image for a version: `rayproject/ray:<version>`, or `rayproject/ray:<version>-gpu`
/// for a group with GPUs. Ray publishes `{version}[-py{XY}][-{cpu|cuXY|gpu}]` for every release
/// (docker/ray/README.md and ci/ray_ci/docker_container.py in Ray's repository); `-gpu` is the
/// alias of the CUDA build Ray recommends for that release.
pub(crate) fn default_ray_image(version: &str, gpu: bool) -> String {
    if gpu {
        format!("rayproject/ray:{version}-gpu")
    } else {
        format!("rayproject/ray:{version}")
    }
}

/// An image that carries CUDA: a `-gpu` or `-cuXY` tag, a name mentioning gpu or cuda, or
/// `rayproject/ray-ml` without `-cpu` (its untagged platform is the GPU build).
pub(crate) fn looks_like_gpu_image(image: &str) -> bool {
    let lower = image.to_ascii_lowercase();
    let (name, tag) = split_tag(&lower);
    let tag_gpu = tag.is_some_and(|t| {
        t.split('-').any(|p| {
            p == "gpu"
                || p.starts_with("cuda")
                || (p.starts_with("cu") && p[2..].starts_with(|c: char| c.is_ascii_digit()))
        })
    });
    tag_gpu
        || name.contains("gpu")
        || name.contains("cuda")
        || (name.ends_with("rayproject/ray-ml") && !tag.is_some_and(|t| t.contains("cpu")))
}

/// `(name, tag)` of an image reference; a digest (`@sha256:…`) is not a tag.
fn split_tag(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            Some(&without_digest[last_slash + i + 1..]),
        ),
        None => (without_digest, None),
    }
}

/// The Ray version an image tag names (`2.46.0` of `rayproject/ray:2.46.0-py311-gpu`), if it
/// starts with one.
pub(crate) fn tag_version(image: &str) -> Option<String> {
    let (_, tag) = split_tag(image);
    let v: String = tag?
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    (v.split('.').count() == 3 && v.split('.').all(|p| !p.is_empty())).then(|| v.to_string())
}

/// An `image` key: its value and span when given.
pub(super) fn image(cx: &mut Cx<'_>, t: &Table<'_, '_>) -> Option<(String, Range<usize>)> {
    let (v, span) = t.string(cx, "image", "rayproject/ray:2.45.0")?;
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        cx.error(
            span,
            &t.key("image"),
            format!("\"{v}\" is not an image reference"),
            "e.g. image = \"rayproject/ray:2.45.0-gpu\"",
        );
        return None;
    }
    Some((v, span))
}

/// Warns when an image's tag names another Ray version than `[ray] version`: head and
/// workers must run the same Ray, and `rayVersion` tells KubeRay which one that is.
pub(super) fn warn_version(
    cx: &mut Cx<'_>,
    key: &str,
    image: &str,
    span: Range<usize>,
    version: &str,
) {
    if let Some(v) = tag_version(image)
        && v != version
    {
        cx.warn(
            span,
            key,
            format!("image \"{image}\" is Ray {v}, but [ray] version is \"{version}\"; the head and every worker must run the same Ray version"),
            "use an image of the stack's Ray version, or change `[ray] version`",
        );
    }
}

/// Warns when a GPU group's image does not look like a CUDA build.
pub(super) fn warn_gpu_image(
    cx: &mut Cx<'_>,
    key: &str,
    image: &str,
    span: Range<usize>,
    version: &str,
) {
    if !looks_like_gpu_image(image) {
        cx.warn(
            span,
            key,
            format!("the group asks for GPUs, but image \"{image}\" does not look like a GPU (CUDA) image"),
            &format!("Ray's GPU images are tagged -gpu or -cuXY, e.g. \"{}\"; ignore this if your image carries CUDA", default_ray_image(version, true)),
        );
    }
}

/// True when `tolerations` lets a pod onto a node tainted with `key`.
fn tolerates(tolerations: &[Toleration], key: &str) -> bool {
    tolerations
        .iter()
        .any(|t| t.key.as_deref() == Some(key) || (t.key.is_none() && t.operator == "Exists"))
}

/// Warns when a GPU group on a cloud provider has no toleration for the GPU taint the
/// provider's GPU pools usually carry, saying what that provider needs.
pub(super) fn warn_gpu_placement(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    path: &str,
    provider: &ProviderConfig,
    g: &WorkerGroup,
) {
    let p = &g.pod;
    let (message, help) = match provider {
        ProviderConfig::Local => return,
        ProviderConfig::Aws(_) if !tolerates(&p.tolerations, "nvidia.com/gpu") => (
            "the group asks for GPUs but tolerates no `nvidia.com/gpu` taint; EKS GPU node pools are usually tainted, and its pods would stay Pending",
            "on EKS, GPU NodePools (Karpenter) and GPU managed node groups are usually tainted `nvidia.com/gpu:NoSchedule`: add tolerations = [{ key = \"nvidia.com/gpu\", operator = \"Exists\", effect = \"NoSchedule\" }], and pick the pool with node_selector = { \"karpenter.sh/nodepool\" = \"gpu\" } (Karpenter) or { \"eks.amazonaws.com/nodegroup\" = \"gpu\" } (managed node group)",
        ),
        ProviderConfig::Gcp(_)
            if !tolerates(&p.tolerations, "nvidia.com/gpu")
                && !p
                    .node_selector
                    .contains_key("cloud.google.com/gke-accelerator") =>
        {
            (
                "the group asks for GPUs but neither tolerates `nvidia.com/gpu` nor selects a GPU type; GKE schedules it on any GPU node pool, or none",
                "on GKE, GPU node pools are tainted `nvidia.com/gpu=present:NoSchedule` and GKE adds the matching toleration to pods that request nvidia.com/gpu; what is usually needed is the accelerator: node_selector = { \"cloud.google.com/gke-accelerator\" = \"nvidia-l4\" } (and with node auto-provisioning that selector is what creates the pool)",
            )
        }
        ProviderConfig::Azure(_)
            if !tolerates(&p.tolerations, "nvidia.com/gpu")
                && !tolerates(&p.tolerations, "sku") =>
        {
            (
                "the group asks for GPUs but tolerates neither `sku` nor `nvidia.com/gpu`; AKS GPU node pools are usually tainted, and its pods would stay Pending",
                "on AKS, GPU node pools are usually created with the taint `sku=gpu:NoSchedule`: add tolerations = [{ key = \"sku\", operator = \"Equal\", value = \"gpu\", effect = \"NoSchedule\" }] and node_selector = { \"kubernetes.azure.com/agentpool\" = \"gpupool\" } (the pool's name)",
            )
        }
        _ => return,
    };
    cx.warn(span, path, message, help);
}

/// One derived name: what carries it, the name, its limit and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedName {
    pub object: String,
    pub name: String,
    pub limit: usize,
    pub why: &'static str,
    /// The worker group (index) the name derives from; `None` for names of the stack.
    pub group: Option<usize>,
}

/// Every name derived from the stack name and its group names, with the limit that name has
/// to stay within (Kubernetes' object and label limits, and the lengths past which KubeRay
/// silently cuts a name: `utils.CheckName` keeps 50 characters, `PodGenerateName` 50).
pub fn derived_names(stack: &Stack) -> Vec<DerivedName> {
    let n = &stack.meta.name;
    let mut out = Vec::new();
    let mut push = |object: &str, name: String, limit: usize, why: &'static str, group| {
        out.push(DerivedName {
            object: object.into(),
            name,
            limit,
            why,
            group,
        })
    };
    push(
        "RayCluster",
        n.clone(),
        53,
        "KubeRay (>= 1.4) refuses longer RayCluster names (MaxRayClusterNameLength), and the name is the `ray.io/cluster` label of every pod",
        None,
    );
    push(
        "Service (KubeRay's head service)",
        format!("{n}-head-svc"),
        50,
        "KubeRay cuts longer names from the front (utils.CheckName), so the head service would not carry the cluster's name",
        None,
    );
    push(
        "Pod (head, generateName)",
        format!("{n}-head-"),
        56,
        "KubeRay cuts the prefix to 50 characters (PodGenerateName) and adds 5 random ones; the pod name is also its hostname (63)",
        None,
    );
    if stack.durability.backend == crate::stack::GcsBackend::Redis {
        let redis = stack.redis.objects.name(n);
        push(
            "StatefulSet",
            redis.clone(),
            52,
            "a StatefulSet's pods carry the label controller-revision-hash = <name>-<10-character hash>, which must fit a 63-character label value",
            None,
        );
        push(
            "Pod (Redis)",
            format!("{redis}-0"),
            63,
            "the pod name is its hostname, a DNS label",
            None,
        );
        push(
            "Service",
            redis.clone(),
            63,
            "Service names are DNS-1035 labels",
            None,
        );
        push(
            "Job (KubeRay's Redis cleanup)",
            format!("{n}-redis-cleanup"),
            63,
            "KubeRay cuts longer names from the front (utils.TrimJobName)",
            None,
        );
    }
    for (i, g) in stack.ray.workers.iter().enumerate() {
        push(
            "Pod (worker, generateName)",
            format!("{n}-{}-worker-", g.group),
            58,
            "KubeRay cuts `<cluster>-<group>` to 50 characters (PodGenerateName) before `-worker-` and 5 random characters, so pods of groups that share the first 50 would be indistinguishable",
            Some(i),
        );
    }
    out
}

/// Refuses every derived name over its limit, located at the group name or the stack name.
pub(super) fn check_derived_names(
    cx: &mut Cx<'_>,
    stack: &Stack,
    name_span: Range<usize>,
    group_spans: &[Range<usize>],
) {
    // One error per stack or group name: the derived name furthest over its limit (fixing
    // that one fixes the others it derives).
    let mut worst: Vec<DerivedName> = Vec::new();
    for d in derived_names(stack) {
        if d.name.len() <= d.limit {
            continue;
        }
        match worst.iter_mut().find(|w| w.group == d.group) {
            Some(w) if w.name.len() - w.limit >= d.name.len() - d.limit => {}
            Some(w) => *w = d,
            None => worst.push(d),
        }
    }
    for d in worst {
        let (span, key, shorten) = match d.group {
            Some(i) => (
                group_spans.get(i).cloned().unwrap_or(name_span.clone()),
                format!("ray.workers[{i}].group"),
                "shorten the group name (or the stack name)",
            ),
            None => (
                name_span.clone(),
                "stack.name".to_string(),
                "shorten the stack name",
            ),
        };
        cx.error(
            span,
            &key,
            format!(
                "derives the {} name `{}`, {} characters; the limit is {}: {}",
                d.object,
                d.name,
                d.name.len(),
                d.limit,
                d.why
            ),
            match d.name.len() - d.limit {
                1 => format!("{shorten} by 1 character"),
                n => format!("{shorten} by {n} characters"),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_images_are_recognised() {
        for gpu in [
            "rayproject/ray:2.45.0-gpu",
            "rayproject/ray:2.45.0-py311-gpu",
            "rayproject/ray:2.45.0-py311-cu121",
            "rayproject/ray:2.45.0-cu128",
            "rayproject/ray-ml:2.45.0",
            "nvcr.io/nvidia/cuda:12.4.0-runtime",
            "registry.local:5000/ml/ray-gpu:2.45.0",
        ] {
            assert!(looks_like_gpu_image(gpu), "{gpu}");
        }
        for cpu in [
            "rayproject/ray:2.45.0",
            "rayproject/ray:2.45.0-py311-cpu",
            "rayproject/ray-ml:2.45.0-cpu",
            "registry.local:5000/ml/ray:2.45.0",
            "rayproject/ray@sha256:0123",
        ] {
            assert!(!looks_like_gpu_image(cpu), "{cpu}");
        }
    }

    #[test]
    fn tag_versions() {
        assert_eq!(
            tag_version("rayproject/ray:2.46.0-py311-gpu").as_deref(),
            Some("2.46.0")
        );
        assert_eq!(
            tag_version("registry:5000/ray:2.45.0").as_deref(),
            Some("2.45.0")
        );
        assert_eq!(tag_version("registry:5000/ray").as_deref(), None);
        assert_eq!(tag_version("rayproject/ray:latest-gpu").as_deref(), None);
        assert_eq!(tag_version("rayproject/ray:nightly").as_deref(), None);
    }

    #[test]
    fn label_keys() {
        assert!(is_label_key("karpenter.sh/nodepool"));
        assert!(is_label_key("team"));
        assert!(is_label_key("cloud.google.com/gke-accelerator"));
        assert!(!is_label_key("Bad Key"));
        assert!(!is_label_key("/name"));
        assert!(!is_label_key("a/b/c"));
        assert!(!is_label_key(&"x".repeat(64)));
        assert!(!is_label_key("-x"));
    }
}
