//! `raystack import`, the pure half: the live objects of a Ray cluster a team already runs (the
//! RayCluster, and through its Redis address the Service, StatefulSet, PVC, the ConfigMap holding
//! `redis.conf` and the password Secret) → the text of a stack file that reproduces them under
//! their existing names, with `#` comments wherever something could not be expressed, and the
//! `[[import.adopt]]` entries (kind, name, UID) that let its first apply adopt exactly these
//! objects. Or why it cannot be done. The engine (`crate::engine`) reads the objects; nothing
//! here does I/O. No secret value is ever written: the password is only compared.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::durability::REDIS_DATA_DIR;
use crate::plan::ownership::{self, STACK_LABEL};
use crate::render::REDIS_PASSWORD_KEY;
use crate::stack::KubeRayVersion;

/// Everything `raystack import` read from the cluster.
#[derive(Debug, Clone)]
pub struct Found {
    pub namespace: String,
    pub ray_cluster: Value,
    pub service: Value,
    pub stateful_set: Value,
    pub pvc: Value,
    pub config_map: Value,
    pub secret: Value,
    /// The oldest KubeRay whose RayCluster CRD has the fields the installed one has, and how
    /// that was told.
    pub kuberay: (KubeRayVersion, String),
}

/// Where the RayCluster keeps its GCS, as its spec says (KubeRay >= 1.3 options, or the
/// pre-1.3 annotation and head environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRef {
    /// The Service's name (the first label of the address's host).
    pub service: String,
    /// The Secret and key holding the password, when the spec names one.
    pub password: Option<(String, String)>,
    /// `true`: `gcsFaultToleranceOptions`; `false`: the `ray.io/ft-enabled` annotation.
    pub options: bool,
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn name(v: &Value) -> &str {
    s(v, "/metadata/name").unwrap_or("?")
}

fn head_container(rc: &Value) -> Option<&Value> {
    rc.pointer("/spec/headGroupSpec/template/spec/containers/0")
}

fn env_ref<'a>(container: &'a Value, var: &str) -> Option<&'a Value> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(var))
}

/// The RayCluster's Redis, from `gcsFaultToleranceOptions.redisAddress` (and
/// `redisPassword.valueFrom.secretKeyRef`), else from the `ray.io/ft-enabled: "true"`
/// annotation with the head container's `RAY_REDIS_ADDRESS` (and `REDIS_PASSWORD` from a
/// Secret), as KubeRay v1.3.0 reads them (`utils.IsGCSFaultToleranceEnabled`,
/// `RAY_REDIS_ADDRESS`, `REDIS_PASSWORD`).
pub fn redis_of(rc: &Value, namespace: &str) -> Result<RedisRef, String> {
    let rc_name = name(rc);
    if let Some(ft) = rc.pointer("/spec/gcsFaultToleranceOptions") {
        if s(ft, "/backend").is_some_and(|b| b != "redis") {
            return Err(format!(
                "RayCluster `{rc_name}` keeps its GCS in KubeRay's embedded store (gcsFaultToleranceOptions.backend), not in a Redis: import adopts a Redis-backed GCS only"
            ));
        }
        let address = s(ft, "/redisAddress").ok_or_else(|| {
            format!("RayCluster `{rc_name}` has gcsFaultToleranceOptions without a redisAddress")
        })?;
        let password = ft
            .pointer("/redisPassword/valueFrom/secretKeyRef")
            .and_then(|r| Some((s(r, "/name")?.to_string(), s(r, "/key")?.to_string())));
        if password.is_none() && ft.pointer("/redisPassword/value").is_some() {
            return Err(format!(
                "RayCluster `{rc_name}` carries the Redis password in plain text (gcsFaultToleranceOptions.redisPassword.value): put it in a Secret and reference it with redisPassword.valueFrom.secretKeyRef first; raystack never writes a password into a stack file"
            ));
        }
        return Ok(RedisRef {
            service: service_of(address, namespace, rc_name)?,
            password,
            options: true,
        });
    }
    let enabled = s(rc, "/metadata/annotations/ray.io~1ft-enabled") == Some("true");
    let head = head_container(rc);
    let address = head
        .and_then(|h| env_ref(h, "RAY_REDIS_ADDRESS"))
        .and_then(|e| s(e, "/value"));
    match (enabled, address) {
        (true, Some(address)) => Ok(RedisRef {
            service: service_of(address, namespace, rc_name)?,
            password: head
                .and_then(|h| env_ref(h, "REDIS_PASSWORD"))
                .and_then(|e| e.pointer("/valueFrom/secretKeyRef"))
                .and_then(|r| Some((s(r, "/name")?.to_string(), s(r, "/key")?.to_string()))),
            options: false,
        }),
        (true, None) => Err(format!(
            "RayCluster `{rc_name}` has ray.io/ft-enabled but its head container sets no RAY_REDIS_ADDRESS"
        )),
        (false, _) => Err(format!(
            "RayCluster `{rc_name}` has no GCS fault tolerance (neither gcsFaultToleranceOptions nor the ray.io/ft-enabled annotation): there is no Redis to adopt; write a stack for it with `raystack` directly"
        )),
    }
}

/// The Service a Redis address names: `[redis://]host[:port]`, the host `svc`, `svc.ns`,
/// `svc.ns.svc` or `svc.ns.svc.<cluster domain>`, in `namespace`.
fn service_of(address: &str, namespace: &str, rc: &str) -> Result<String, String> {
    let rest = address
        .strip_prefix("redis://")
        .or_else(|| address.strip_prefix("rediss://"))
        .unwrap_or(address);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    let mut labels = host.split('.');
    let service = labels.next().unwrap_or_default().to_string();
    let ns = labels.next();
    if service.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "RayCluster `{rc}`'s Redis address `{address}` names no Service: import follows a Service to the Redis behind it"
        ));
    }
    if let Some(ns) = ns
        && ns != namespace
    {
        return Err(format!(
            "RayCluster `{rc}`'s Redis is in namespace `{ns}`, not `{namespace}`: a stack keeps its RayCluster and its Redis in one namespace"
        ));
    }
    Ok(service)
}

/// Whether `labels` has every pair of `selector`.
pub fn selects(selector: &serde_json::Map<String, Value>, labels: Option<&Value>) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `redis.conf` as directives: the last value of each one-valued directive, every `save` rule.
struct Conf {
    single: BTreeMap<String, String>,
    save: Vec<(u64, u64)>,
    save_disabled: bool,
    /// Directive names in file order (values are never shown: `requirepass` is one).
    names: Vec<String>,
}

fn parse_conf(text: &str) -> Conf {
    let mut c = Conf {
        single: BTreeMap::new(),
        save: Vec::new(),
        save_disabled: false,
        names: Vec::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let key = key.to_ascii_lowercase();
        let value = value.trim().trim_matches('"').to_string();
        if !c.names.contains(&key) {
            c.names.push(key.clone());
        }
        if key == "save" {
            let nums: Vec<u64> = value
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            if value.is_empty() {
                c.save_disabled = true;
                c.save.clear();
            }
            for pair in nums.chunks(2) {
                if let [secs, changes] = pair {
                    c.save.push((*secs, *changes));
                }
            }
        } else {
            c.single.insert(key, value);
        }
    }
    c
}

/// Directives raystack writes itself (from `[durability]`) or that only restate a default it
/// keeps; anything else in the imported `redis.conf` is named in a comment as dropped.
const CONF_EXPRESSED: &[&str] = &[
    "dir",
    "port",
    "dbfilename",
    "appendonly",
    "appendfsync",
    "appendfilename",
    "appenddirname",
    "save",
    "requirepass",
    "no-appendfsync-on-rewrite",
    "aof-use-rdb-preamble",
    "stop-writes-on-bgsave-error",
    "maxmemory-policy",
];

fn quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

fn seconds(secs: u64) -> String {
    if secs.is_multiple_of(3600) && secs >= 3600 {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) && secs >= 60 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A container's cpu and memory as raystack's one value each (requests = limits): the requests
/// where set, else the limits; what differs is returned as a comment.
fn resources(c: &Value, what: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let get = |kind: &str, r: &str| s(c, &format!("/resources/{kind}/{r}")).map(str::to_string);
    let mut notes = Vec::new();
    let mut one = |r: &str| {
        let (req, lim) = (get("requests", r), get("limits", r));
        if let (Some(q), Some(l)) = (&req, &lim)
            && q != l
        {
            notes.push(format!(
                "{what}: {r} limit {l} differs from its request {q}; raystack sets limit = request ({q})"
            ));
        }
        req.or(lim)
    };
    let cpu = one("cpu");
    let memory = one("memory");
    (cpu, memory, notes)
}

/// The keys of `v` (an object) not in `known`, each as `prefix.key`: what the stack file cannot
/// say, named in a comment.
fn extra_keys(v: Option<&Value>, known: &[&str], prefix: &str) -> Vec<String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !is_default(k, v))
        .map(|(k, _)| format!("{prefix}.{k}"))
        .collect()
}

/// Whether `key: value` is what the API server (or KubeRay's CRD) fills in by default: not
/// something the team wrote, so nothing is lost by not carrying it.
fn is_default(key: &str, value: &Value) -> bool {
    let default = match key {
        "restartPolicy" => json!("Always"),
        "dnsPolicy" => json!("ClusterFirst"),
        "schedulerName" => json!("default-scheduler"),
        "terminationGracePeriodSeconds" => json!(30),
        "securityContext" => json!({}),
        "terminationMessagePath" => json!("/dev/termination-log"),
        "terminationMessagePolicy" => json!("File"),
        "imagePullPolicy" => json!("IfNotPresent"),
        "numOfHosts" => json!(1),
        _ => return false,
    };
    *value == default
}

/// What a Ray pod's template holds beyond what raystack renders from the stack file (pod
/// settings such as node selectors are not carried over by import): named, as dropped.
fn dropped_from_ray_pod(template: Option<&Value>, what: &str) -> Vec<String> {
    let spec = template.and_then(|t| t.get("spec"));
    let mut out = extra_keys(spec, &["containers", "volumes"], &format!("{what}.spec"));
    out.extend(extra_keys(
        spec.and_then(|s| s.pointer("/containers/0")),
        &["name", "image", "resources", "volumeMounts", "ports", "env"],
        &format!("{what}.containers[0]"),
    ));
    let env: Vec<String> = spec
        .and_then(|s| s.pointer("/containers/0/env"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .filter(|n| !["RAY_REDIS_ADDRESS", "REDIS_PASSWORD"].contains(n))
        .map(|n| format!("{what}.containers[0].env {n}"))
        .collect();
    out.extend(env);
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if containers > 1 {
        out.push(format!("{what}: {} more container(s)", containers - 1));
    }
    out.extend(extra_keys(
        template.and_then(|t| t.get("metadata")),
        &[],
        &format!("{what}.metadata"),
    ));
    out
}

fn comment_lines(out: &mut String, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "# {l}");
    }
}

/// The stack file for what `found` holds, or why raystack must not adopt it. `command` is the
/// command line that wrote it (for the header); `take_ownership` allows objects a deployment
/// tool manages.
pub fn stack_file(found: &Found, take_ownership: bool, command: &str) -> Result<String, String> {
    let ns = &found.namespace;
    let rc = &found.ray_cluster;
    let stack_name = name(rc).to_string();
    let redis = redis_of(rc, ns)?;
    let objects: [(&str, &Value); 6] = [
        ("RayCluster", rc),
        ("Service", &found.service),
        ("StatefulSet", &found.stateful_set),
        ("PersistentVolumeClaim", &found.pvc),
        ("ConfigMap", &found.config_map),
        ("Secret", &found.secret),
    ];
    // Ownership first: another stack's object is never taken; a deployment tool's only when asked.
    let mut tools = Vec::new();
    for (kind, obj) in &objects {
        if let Some(other) = s(
            obj,
            &format!("/metadata/labels/{}", STACK_LABEL.replace('/', "~1")),
        ) {
            return Err(format!(
                "{kind}/{} already belongs to raystack stack `{other}` (label {STACK_LABEL}): there is nothing to import",
                name(obj)
            ));
        }
        if let Some(tool) = ownership::owner(obj).tool {
            tools.push(format!("{kind}/{} (managed by {tool})", name(obj)));
        }
    }
    if !tools.is_empty() && !take_ownership {
        return Err(format!(
            "refusing to import: these objects are managed by another deployment tool, which would fight raystack over them:\n  {}\nremove them from that tool first, or rerun with --take-ownership to take them over",
            tools.join("\n  ")
        ));
    }
    if crate::stack::RESERVED_NAMESPACES.contains(&ns.as_str()) {
        return Err(format!(
            "the RayCluster is in namespace `{ns}`, which raystack refuses for a stack (Kubernetes' own; destroy deletes a stack's namespace): move the cluster to a namespace of its own first"
        ));
    }

    // The Redis: StatefulSet, its data volume, its config, the password.
    let sts = &found.stateful_set;
    let pod = sts
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(Value::Null);
    if sts
        .pointer("/spec/volumeClaimTemplates")
        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
    {
        return Err(format!(
            "StatefulSet `{}` keeps its data in volumeClaimTemplates; raystack mounts one plain PVC (its own object, guarded against deletion): not adoptable in place",
            name(sts)
        ));
    }
    let containers = pod
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let redis_c = containers
        .iter()
        .find(|c| s(c, "/name") == Some("redis"))
        .or_else(|| containers.first())
        .cloned()
        .unwrap_or(Value::Null);
    let volumes = pod
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mount_of = |volume: &str| {
        redis_c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .and_then(|m| m.iter().find(|m| s(m, "/name") == Some(volume)))
            .and_then(|m| s(m, "/mountPath"))
            .map(str::to_string)
    };
    let pvc_name = name(&found.pvc).to_string();
    if let Some(v) = volumes
        .iter()
        .find(|v| s(v, "/persistentVolumeClaim/claimName") == Some(pvc_name.as_str()))
    {
        let vol = s(v, "/name").unwrap_or_default();
        let mount = mount_of(vol);
        if mount.as_deref() != Some(REDIS_DATA_DIR) {
            return Err(format!(
                "the Redis container mounts PVC `{pvc_name}` at {}, raystack's Redis reads its data from {REDIS_DATA_DIR}: Redis would start empty (GCS state lost)",
                mount.as_deref().unwrap_or("nowhere")
            ));
        }
    }
    let conf_text = s(&found.config_map, "/data/redis.conf").unwrap_or_default();
    let conf = parse_conf(conf_text);
    let get = |k: &str| conf.single.get(k).map(String::as_str);
    if get("dir").is_some_and(|d| d.trim_end_matches('/') != REDIS_DATA_DIR) {
        return Err(format!(
            "redis.conf in ConfigMap `{}` keeps the data in `dir {}`, raystack's Redis in {REDIS_DATA_DIR}: Redis would start empty (GCS state lost)",
            name(&found.config_map),
            get("dir").unwrap_or_default()
        ));
    }
    for (key, default) in [
        ("dbfilename", "dump.rdb"),
        ("appendfilename", "appendonly.aof"),
        ("appenddirname", "appendonlydir"),
    ] {
        if let Some(v) = get(key)
            && v != default
        {
            return Err(format!(
                "redis.conf sets `{key} {v}`; raystack's Redis reads `{default}`: it would start without the existing data (GCS state lost)"
            ));
        }
    }
    let (secret_name, secret_key) = redis.password.clone().unwrap_or_else(|| {
        (
            name(&found.secret).to_string(),
            REDIS_PASSWORD_KEY.to_string(),
        )
    });
    if secret_key != REDIS_PASSWORD_KEY {
        return Err(format!(
            "the RayCluster reads the Redis password from key `{secret_key}` of Secret `{secret_name}`; raystack reads key `{REDIS_PASSWORD_KEY}`: add the password under `{REDIS_PASSWORD_KEY}` and point the RayCluster at it first"
        ));
    }
    let secret_password = {
        use base64::Engine;
        s(&found.secret, &format!("/data/{REDIS_PASSWORD_KEY}"))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|p| !p.is_empty())
    };
    if secret_password.is_none() {
        return Err(format!(
            "Secret `{secret_name}` holds no password under `{REDIS_PASSWORD_KEY}`: raystack would generate a new one, which the running Redis does not know"
        ));
    }
    if let Some(conf_pass) = get("requirepass")
        && Some(conf_pass.as_bytes()) != secret_password.as_deref()
    {
        return Err(format!(
            "the `requirepass` in ConfigMap `{}` is not the password in Secret `{secret_name}` (neither is shown): fix whichever is wrong first; raystack keeps the Secret's",
            name(&found.config_map)
        ));
    }

    let mut out = String::new();
    let _ = writeln!(out, "# Written by `{command}`");
    out.push_str("# from the live cluster. Its first apply adopts in place exactly the objects listed under\n# [import] (each only while it still has the UID recorded there), adds raystack's labels and takes\n# over their fields. Review every comment before applying.\n\n");

    // [stack]
    let _ = writeln!(out, "[stack]\nname = {}", quote(&stack_name));
    let _ = writeln!(out, "namespace = {}", quote(ns));
    out.push_str("create_namespace = false         # the namespace exists and raystack did not create it: never adopted, never deleted\n\n");

    out.push_str("[cluster]\nprovider = \"local\"               # import cannot tell the cloud; name it (and its identity) for raystack's cloud checks\n\n");

    // [durability] from redis.conf.
    out.push_str("[durability]\n");
    let appendonly = get("appendonly") == Some("yes");
    let fsync = get("appendfsync").unwrap_or("everysec");
    let mut dur_notes = Vec::new();
    if appendonly {
        match fsync {
            "always" => out.push_str("max_data_loss = \"0s\"             # redis.conf: appendonly yes, appendfsync always\n"),
            "everysec" => out.push_str("max_data_loss = \"2s\"             # redis.conf: appendonly yes, appendfsync everysec: Redis may postpone a write\n                                 # while a slow fsync runs, so everysec can lose about 2 s (\"1s\" is refused, docs/design.md §2)\n"),
            other => {
                out.push_str("max_data_loss = \"2s\"             # see the note below\n");
                dur_notes.push(format!("NOTE: redis.conf has `appendfsync {other}`: the OS decides when the AOF reaches the disk (about 30 s on Linux), a promise raystack does not make; it will fsync every second (everysec) instead"));
            }
        }
    } else if let Some(min) = conf.save.iter().map(|(secs, _)| *secs).min() {
        let rpo = min.max(60);
        let _ = writeln!(
            out,
            "max_data_loss = {}            # redis.conf: no AOF, RDB snapshots only (shortest save interval {})",
            quote(&seconds(rpo)),
            seconds(min)
        );
        if min < 60 {
            dur_notes.push(format!(
                "NOTE: the shortest save interval is {}; raystack's RDB-only promise starts at 1m",
                seconds(min)
            ));
        }
        dur_notes.push("NOTE: a save rule only fires after its number of writes: the live Redis promised less than this; raystack adds `save <max_data_loss> 1`".into());
    } else {
        out.push_str("max_data_loss = \"2s\"             # see the WARNING below\n");
        dur_notes.push("WARNING: this Redis persists NOTHING today (appendonly no and no save rule): a restart of its pod loses the whole GCS.".into());
        dur_notes.push("WARNING: raystack turns the append-only file on (everysec); until the first apply, nothing is durable.".into());
    }
    if let Some((secs, writes)) = conf.save.first() {
        let _ = writeln!(out, "snapshot_every = {}", quote(&seconds(*secs)));
        let _ = writeln!(out, "snapshot_min_writes = {writes}");
        if conf.save.len() > 1 {
            let rest: Vec<String> = conf.save[1..]
                .iter()
                .map(|(a, b)| format!("{a} {b}"))
                .collect();
            dur_notes.push(format!(
                "dropped: redis.conf's other save rules ({}); raystack writes one cadence rule",
                rest.join(", ")
            ));
        }
    }
    comment_lines(&mut out, &dur_notes);
    out.push('\n');

    // [redis]
    out.push_str("[redis]\n");
    let _ = writeln!(
        out,
        "name = {}                    # the existing StatefulSet and Service",
        quote(name(sts))
    );
    let service_name = s(sts, "/spec/serviceName").unwrap_or("");
    if service_name != name(sts) {
        let _ = writeln!(
            out,
            "service_name = {}                # the StatefulSet's spec.serviceName as it is (immutable)",
            quote(service_name)
        );
    }
    if name(&found.service) != name(sts) {
        return Err(format!(
            "Service `{}` and StatefulSet `{}` have different names; raystack names both with `[redis] name`",
            name(&found.service),
            name(sts)
        ));
    }
    let selector = sts
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if sts.pointer("/spec/selector/matchExpressions").is_some() {
        return Err(format!(
            "StatefulSet `{}` selects its pods with matchExpressions; raystack renders matchLabels only, and the selector is immutable",
            name(sts)
        ));
    }
    let pairs: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{} = {}", quote(k), quote(v.as_str().unwrap_or_default())))
        .collect();
    let _ = writeln!(
        out,
        "selector = {{ {} }}   # the StatefulSet's spec.selector (immutable)",
        pairs.join(", ")
    );
    let _ = writeln!(out, "pvc = {}", quote(&pvc_name));
    let _ = writeln!(
        out,
        "config_map = {}           # raystack rewrites its redis.conf (without the password)",
        quote(name(&found.config_map))
    );
    let _ = writeln!(
        out,
        "password_secret = {}   # used as it is: the password is not rotated",
        quote(&secret_name)
    );
    if let Some(image) = s(&redis_c, "/image") {
        let _ = writeln!(out, "image = {}", quote(image));
    }
    if let Some(size) = s(&found.pvc, "/spec/resources/requests/storage") {
        let _ = writeln!(out, "storage = {}", quote(size));
    }
    if let Some(class) = s(&found.pvc, "/spec/storageClassName") {
        let _ = writeln!(out, "storage_class = {}", quote(class));
    }
    let (cpu, memory, mut redis_notes) = resources(&redis_c, "Redis");
    match (&cpu, &memory) {
        (Some(c), Some(m)) => {
            let _ = writeln!(out, "cpu = {}\nmemory = {}", quote(c), quote(m));
        }
        _ => redis_notes.push("the Redis container sets no cpu/memory; raystack's defaults (500m, 1Gi, request = limit) apply".into()),
    }
    let dropped: Vec<&str> = conf
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| !CONF_EXPRESSED.contains(n))
        .collect();
    if !dropped.is_empty() {
        redis_notes.push(format!(
            "dropped from redis.conf (raystack writes its own): {}",
            dropped.join(", ")
        ));
    }
    if get("requirepass").is_some() {
        redis_notes.push("redis.conf holds the password in plain text: apply removes it from the ConfigMap (the Redis container reads it from the Secret)".into());
    }
    let redis_template = sts.pointer("/spec/template");
    let mut redis_dropped = extra_keys(
        redis_template.and_then(|t| t.get("spec")),
        &["containers", "volumes"],
        "StatefulSet template.spec",
    );
    redis_dropped.extend(extra_keys(
        Some(&redis_c),
        &[
            "name",
            "image",
            "command",
            "args",
            "ports",
            "volumeMounts",
            "resources",
        ],
        "the Redis container",
    ));
    if containers.len() > 1 {
        redis_dropped.push(format!(
            "{} more container(s) in the Redis pod",
            containers.len() - 1
        ));
    }
    if !redis_dropped.is_empty() {
        redis_notes.push(format!("dropped: {}", redis_dropped.join(", ")));
    }
    redis_notes.push(
        "apply restarts the Redis pod once: its configuration, command and pod template change"
            .into(),
    );
    comment_lines(&mut out, &redis_notes);
    out.push('\n');

    // [ray]
    let version = s(rc, "/spec/rayVersion").unwrap_or("");
    out.push_str("[ray]\n");
    let _ = writeln!(out, "version = {}", quote(version));
    let _ = writeln!(
        out,
        "kuberay = {}                # {}",
        quote(&found.kuberay.0.to_string()),
        found.kuberay.1
    );
    let mut ray_notes = Vec::new();
    if let Some(ns) = rc
        .pointer("/spec/gcsFaultToleranceOptions/externalStorageNamespace")
        .and_then(Value::as_str)
        .or_else(|| {
            s(
                rc,
                "/metadata/annotations/ray.io~1external-storage-namespace",
            )
        })
    {
        let _ = writeln!(out, "external_storage_namespace = {}", quote(ns));
    } else {
        ray_notes.push("no external_storage_namespace: KubeRay keeps using the RayCluster's UID, which adoption keeps".into());
    }
    if redis.options != found.kuberay.0.has_gcs_ft_options() {
        ray_notes.push(format!(
            "NOTE: the RayCluster uses the {} form of GCS fault tolerance, the installed CRD the other: apply rewrites it",
            if redis.options { "gcsFaultToleranceOptions" } else { "ray.io/ft-enabled annotation" }
        ));
    }
    comment_lines(&mut out, &ray_notes);
    out.push('\n');

    // [ray.head]
    let head = head_container(rc).cloned().unwrap_or(Value::Null);
    out.push_str("[ray.head]\n");
    let (cpu, memory, mut head_notes) = resources(&head, "head");
    if let Some(c) = cpu {
        let _ = writeln!(out, "cpu = {}", quote(&c));
    }
    if let Some(m) = memory {
        let _ = writeln!(out, "memory = {}", quote(&m));
    }
    let default_image = format!("rayproject/ray:{version}");
    if let Some(image) = s(&head, "/image")
        && image != default_image
    {
        let _ = writeln!(out, "image = {}", quote(image));
    }
    let params = rc
        .pointer("/spec/headGroupSpec/rayStartParams")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .filter(|k| !["num-cpus", "dashboard-host", "redis-password"].contains(&k.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !params.is_empty() {
        head_notes.push(format!(
            "dropped: head rayStartParams {}",
            params.join(", ")
        ));
    }
    let mut head_dropped = extra_keys(
        rc.get("spec"),
        &[
            "rayVersion",
            "gcsFaultToleranceOptions",
            "headGroupSpec",
            "workerGroupSpecs",
            "enableInTreeAutoscaling",
            "upgradeStrategy",
        ],
        "spec",
    );
    head_dropped.extend(extra_keys(
        rc.pointer("/spec/headGroupSpec"),
        &["rayStartParams", "template"],
        "headGroupSpec",
    ));
    head_dropped.extend(dropped_from_ray_pod(
        rc.pointer("/spec/headGroupSpec/template"),
        "head template",
    ));
    if !head_dropped.is_empty() {
        head_notes.push(format!("dropped: {}", head_dropped.join(", ")));
    }
    head_notes.push(
        "the head pod restarts once: raystack's labels, ports and settings change its template"
            .into(),
    );
    comment_lines(&mut out, &head_notes);

    // [[ray.workers]]
    let autoscaler = rc
        .pointer("/spec/enableInTreeAutoscaling")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for g in rc
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str("\n[[ray.workers]]\n");
        let _ = writeln!(
            out,
            "group = {}",
            quote(s(g, "/groupName").unwrap_or("workers"))
        );
        let n = |k: &str| g.get(k).and_then(Value::as_u64);
        let (replicas, min, max) = (n("replicas"), n("minReplicas"), n("maxReplicas"));
        let mut notes = Vec::new();
        if let (Some(min), Some(max)) = (min, max)
            && min != max
        {
            let _ = writeln!(out, "min_replicas = {min}\nmax_replicas = {max}");
            if !autoscaler {
                notes.push(format!(
                    "NOTE: min != max: raystack turns KubeRay's autoscaler on (enableInTreeAutoscaling is off today, {} replica(s) run); it adds a sidecar to the head. For a fixed size write min_replicas = max_replicas",
                    replicas.unwrap_or(min)
                ));
            }
        } else {
            let r = replicas.or(min).unwrap_or(1);
            let _ = writeln!(
                out,
                "replicas = {r}\nmin_replicas = {r}\nmax_replicas = {r}"
            );
        }
        let c = g
            .pointer("/template/spec/containers/0")
            .cloned()
            .unwrap_or(Value::Null);
        let (cpu, memory, more) = resources(&c, "worker");
        notes.extend(more);
        let mut dropped = extra_keys(
            Some(g),
            &[
                "groupName",
                "replicas",
                "minReplicas",
                "maxReplicas",
                "rayStartParams",
                "template",
            ],
            "the group",
        );
        dropped.extend(
            g.get("rayStartParams")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| format!("rayStartParams {k}")),
        );
        dropped.extend(dropped_from_ray_pod(g.get("template"), "template"));
        if !dropped.is_empty() {
            notes.push(format!("dropped: {}", dropped.join(", ")));
        }
        if let Some(v) = cpu {
            let _ = writeln!(out, "cpu = {}", quote(&v));
        }
        if let Some(v) = memory {
            let _ = writeln!(out, "memory = {}", quote(&v));
        }
        if let Some(gpu) = s(&c, "/resources/limits/nvidia.com~1gpu") {
            let _ = writeln!(out, "gpu = {gpu}");
        }
        if let Some(image) = s(&c, "/image")
            && image != default_image
        {
            let _ = writeln!(out, "image = {}", quote(image));
        }
        comment_lines(&mut out, &notes);
    }

    // [import]: the adoption proof.
    out.push_str("\n# The objects this file adopts, by the UID they had when imported: a recreated object\n# (another UID) is not adopted without --adopt.\n[import]\n");
    for (kind, obj) in &objects {
        let uid = s(obj, "/metadata/uid").unwrap_or_default();
        let _ = writeln!(
            out,
            "\n[[import.adopt]]\nkind = {}\nname = {}\nuid = {}",
            quote(kind),
            quote(name(obj)),
            quote(uid)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redis_is_found_from_either_form() {
        let v13 = json!({"metadata": {"name": "rc"}, "spec": {"gcsFaultToleranceOptions": {
            "redisAddress": "redis:6379",
            "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}}
        }}});
        assert_eq!(
            redis_of(&v13, "ray").unwrap(),
            RedisRef {
                service: "redis".into(),
                password: Some(("pw".into(), "password".into())),
                options: true
            }
        );
        let v12 = json!({"metadata": {"name": "rc", "annotations": {"ray.io/ft-enabled": "true"}},
        "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "ray-head", "env": [
            {"name": "RAY_REDIS_ADDRESS", "value": "redis.ray.svc.cluster.local:6379"},
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}}
        ]}]}}}}});
        assert_eq!(redis_of(&v12, "ray").unwrap().service, "redis");
        assert!(!redis_of(&v12, "ray").unwrap().options);
        let elsewhere = json!({"metadata": {"name": "rc"}, "spec": {"gcsFaultToleranceOptions": {"redisAddress": "redis.db:6379"}}});
        assert!(
            redis_of(&elsewhere, "ray")
                .unwrap_err()
                .contains("namespace `db`")
        );
        let none = json!({"metadata": {"name": "rc"}, "spec": {}});
        assert!(
            redis_of(&none, "ray")
                .unwrap_err()
                .contains("no GCS fault tolerance")
        );
    }

    #[test]
    fn what_a_ray_pod_holds_beyond_the_stack_is_named() {
        let t = json!({"metadata": {"labels": {"a": "b"}}, "spec": {
        "nodeSelector": {"pool": "gpu"}, "volumes": [],
        "containers": [
            {"name": "ray-head", "image": "i", "securityContext": {"privileged": true}, "env": [
                {"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}, {"name": "NCCL_DEBUG", "value": "1"}]},
            {"name": "sidecar"}
        ]}});
        assert_eq!(
            dropped_from_ray_pod(Some(&t), "head template"),
            [
                "head template.spec.nodeSelector",
                "head template.containers[0].securityContext",
                "head template.containers[0].env NCCL_DEBUG",
                "head template: 1 more container(s)",
                "head template.metadata.labels",
            ]
        );
    }

    /// The KubeRay sample, as read from a cluster, in namespace `ns`.
    fn sample(ns: &str, conf: &str) -> Found {
        let meta =
            |name: &str| json!({"name": name, "namespace": ns, "uid": format!("uid-{name}")});
        Found {
            namespace: ns.into(),
            ray_cluster: json!({"metadata": meta("rc"), "spec": {"rayVersion": "2.52.0",
                "gcsFaultToleranceOptions": {"redisAddress": "redis:6379", "redisPassword": {
                    "valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}}},
                "headGroupSpec": {"template": {"spec": {"containers": [{"name": "ray-head"}]}}}}}),
            service: json!({"metadata": meta("redis"), "spec": {"selector": {"app": "redis"}}}),
            stateful_set: json!({"metadata": meta("redis"), "spec": {
                "selector": {"matchLabels": {"app": "redis"}},
                "template": {"spec": {
                    "containers": [{"name": "redis", "image": "redis:7.4.0",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}}]}}}}),
            pvc: json!({"metadata": meta("redis-data"), "spec": {"resources": {"requests": {"storage": "8Gi"}}}}),
            config_map: json!({"metadata": meta("redis-config"), "data": {"redis.conf": conf}}),
            // "5241590000000000"
            secret: json!({"metadata": meta("pw"), "data": {"password": "NTI0MTU5MDAwMDAwMDAwMA=="}}),
            kuberay: (KubeRayVersion::new(1, 3, 0), "from the CRD".into()),
        }
    }

    #[test]
    fn what_the_new_redis_would_not_find_is_refused_and_no_password_is_shown() {
        let ok = "dir /data\nappendonly yes\nappendfsync always\nrequirepass 5241590000000000\n";
        let text = stack_file(&sample("ray", ok), false, "raystack import").unwrap();
        assert!(text.contains("max_data_loss = \"0s\""), "{text}");
        assert!(!text.contains("5241590000000000"), "{text}");
        let refused =
            |ns: &str, conf: &str| stack_file(&sample(ns, conf), false, "import").unwrap_err();
        assert!(refused("ray", "dir /var/lib/redis\n").contains("Redis would start empty"));
        assert!(refused("ray", "dir /data\ndbfilename gcs.rdb\n").contains("`dbfilename gcs.rdb`"));
        let wrong = refused("ray", "requirepass other\n");
        assert!(
            wrong.contains("is not the password in Secret `pw`")
                && !wrong.contains("other")
                && !wrong.contains("5241590000000000"),
            "{wrong}"
        );
        assert!(refused("default", ok).contains("namespace `default`"));
        let mut helm = sample("ray", ok);
        helm.pvc["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "Helm"});
        let e = stack_file(&helm, false, "import").unwrap_err();
        assert!(
            e.contains("PersistentVolumeClaim/redis-data (managed by Helm"),
            "{e}"
        );
        assert!(stack_file(&helm, true, "import").is_ok());
    }

    #[test]
    fn persistence_is_read_back_from_redis_conf() {
        let goal = |conf: &str| {
            let text = stack_file(&sample("ray", conf), false, "import").unwrap();
            text.lines()
                .find(|l| l.starts_with("max_data_loss"))
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            goal("appendonly yes\nappendfsync everysec\n"),
            "max_data_loss = \"2s\""
        );
        assert_eq!(
            goal("appendonly no\nsave 300 10\nsave 900 1\n"),
            "max_data_loss = \"5m\""
        );
        let none = stack_file(
            &sample("ray", "appendonly no\nsave \"\"\n"),
            false,
            "import",
        )
        .unwrap();
        assert!(
            none.contains("WARNING: this Redis persists NOTHING today"),
            "{none}"
        );
    }

    #[test]
    fn redis_conf_directives_and_save_rules_are_read() {
        let c = parse_conf(
            "dir /data\n# comment\nsave 60 1000\nsave 300 10\nappendonly yes\nrequirepass x\n",
        );
        assert_eq!(c.save, vec![(60, 1000), (300, 10)]);
        assert_eq!(c.single.get("appendonly").map(String::as_str), Some("yes"));
        assert_eq!(c.names, ["dir", "save", "appendonly", "requirepass"]);
        assert!(parse_conf("save \"\"\n").save_disabled);
    }
}
