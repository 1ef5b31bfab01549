//! Unit tests of the renderer on hand-built stacks.

use serde_json::{Value, json};

use super::testing::{aws, azure, gcp, stack};
use super::*;
use crate::kind::Kind;
use crate::stack::{
    AwsVolumeType, AzureDiskSku, GcpDisk, KubeRayVersion, ProviderConfig, Stack, VolumeKind,
};

fn kinds(s: &Stack) -> Vec<String> {
    render(s)
        .objects
        .iter()
        .map(|o| o.kind().to_string())
        .collect()
}

fn find<'a>(r: &'a Rendered, kind: &str) -> &'a Value {
    &r.objects
        .iter()
        .find(|o| o.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .manifest
}

#[test]
fn objects_come_in_apply_order() {
    let mut s = stack();
    assert_eq!(
        kinds(&s),
        [
            "Namespace",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            "StatefulSet",
            "Service",
            "NetworkPolicy",
            "RayCluster"
        ]
    );
    s.cluster.provider = ProviderConfig::Aws(aws());
    s.meta.create_namespace = false;
    assert_eq!(
        kinds(&s),
        [
            "StorageClass",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            "StatefulSet",
            "Service",
            "NetworkPolicy",
            "RayCluster"
        ]
    );
}

#[test]
fn every_object_is_labelled_and_namespaced_objects_have_the_namespace() {
    let mut s = stack();
    s.cluster.provider = ProviderConfig::Aws(aws());
    for o in render(&s).objects {
        let labels = &o.manifest["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "raystack",
            "{}",
            o.address()
        );
        assert_eq!(labels["raystack.dev/stack"], "ray-prod", "{}", o.address());
        let kind = Kind::parse(o.kind()).unwrap();
        assert_eq!(
            o.namespace().is_some(),
            kind.namespaced(),
            "{}",
            o.address()
        );
        assert!(o.name().starts_with("ray-prod"), "{}", o.address());
    }
}

/// Every object raystack renders (Redis and embedded backends, every provider) is of a kind
/// the vocabulary knows, at the API version it names, scoped as it says, in its apply order.
#[test]
fn every_rendered_kind_is_in_the_vocabulary() {
    let mut stacks = Vec::new();
    for provider in [
        None,
        Some(ProviderConfig::Aws(aws())),
        Some(ProviderConfig::Gcp(gcp(GcpDisk::PremiumRwo))),
        Some(ProviderConfig::Azure(azure(AzureDiskSku::PremiumLrs))),
    ] {
        for mut s in [stack(), embedded(true)] {
            if let Some(p) = &provider {
                s.cluster.provider = p.clone();
            }
            stacks.push(s);
        }
    }
    for s in &stacks {
        let r = render(s);
        let mut last = 0;
        for o in &r.objects {
            let kind = Kind::parse(o.kind())
                .unwrap_or_else(|| panic!("{} is not in the vocabulary", o.address()));
            assert_eq!(o.api_version(), kind.api_version(), "{}", o.address());
            assert_eq!(
                o.namespace().is_some(),
                kind.namespaced(),
                "{}",
                o.address()
            );
            assert!(kind.apply_rank() >= last, "{} out of order", o.address());
            last = kind.apply_rank();
        }
    }
}

#[test]
fn the_secret_carries_no_values() {
    let r = render(&stack());
    let secret = find(&r, "Secret");
    assert_eq!(secret["metadata"]["name"], "ray-prod-redis-auth");
    assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
    // The password reaches Redis only through the environment and the start script's config
    // include: no rendered object carries a `requirepass` value or a `-a` argument.
    let yaml = manifests(&r.objects);
    assert!(!yaml.contains("--requirepass"), "{yaml}");
    assert!(!yaml.contains(" -a "), "{yaml}");
    assert_eq!(
        yaml.matches("requirepass").count(),
        1,
        "only the start script names requirepass:\n{yaml}"
    );
    let script = find(&r, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        script
            .contains("printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" > /run/redis-auth/auth.conf"),
        "{script}"
    );
}

#[test]
fn storage_class_per_provider() {
    let mut s = stack();
    let cases: Vec<(ProviderConfig, Option<&str>, bool)> = vec![
        (ProviderConfig::Local, None, false),
        (ProviderConfig::Aws(aws()), Some("ray-prod-gp3"), true),
        (
            ProviderConfig::Aws(crate::stack::AwsConfig {
                volume_type: AwsVolumeType::Io2,
                iops: Some(4000),
                ..aws()
            }),
            Some("ray-prod-io2"),
            true,
        ),
        (
            ProviderConfig::Gcp(gcp(GcpDisk::StandardRwo)),
            Some("standard-rwo"),
            false,
        ),
        (
            ProviderConfig::Gcp(gcp(GcpDisk::PremiumRwo)),
            Some("premium-rwo"),
            false,
        ),
        (
            ProviderConfig::Gcp(gcp(GcpDisk::Regional)),
            Some("ray-prod-regional-pd"),
            true,
        ),
        (
            ProviderConfig::Azure(azure(AzureDiskSku::StandardSsdLrs)),
            Some("managed-csi"),
            false,
        ),
        (
            ProviderConfig::Azure(azure(AzureDiskSku::PremiumLrs)),
            Some("managed-csi-premium"),
            false,
        ),
        (
            ProviderConfig::Azure(azure(AzureDiskSku::PremiumZrs)),
            Some("ray-prod-premium-zrs"),
            true,
        ),
        (
            ProviderConfig::Azure(azure(AzureDiskSku::StandardSsdZrs)),
            Some("ray-prod-standardssd-zrs"),
            true,
        ),
    ];
    for (provider, class, owned) in cases {
        s.cluster.provider = provider.clone();
        assert_eq!(storage_class_name(&s).as_deref(), class, "{provider:?}");
        let r = render(&s);
        let pvc = find(&r, "PersistentVolumeClaim");
        assert_eq!(
            pvc["spec"]["storageClassName"].as_str(),
            class,
            "{provider:?}"
        );
        let sc = r.objects.iter().find(|o| o.kind() == "StorageClass");
        assert_eq!(sc.is_some(), owned, "{provider:?}");
        if let Some(sc) = sc {
            assert_eq!(Some(sc.name()), class);
            assert_eq!(sc.manifest["reclaimPolicy"], "Retain");
            assert_eq!(sc.manifest["volumeBindingMode"], "WaitForFirstConsumer");
            assert_eq!(sc.manifest["allowVolumeExpansion"], true);
        }
        let Summary::Redis(sum) = summarize(&s) else {
            panic!("a Redis stack has a Redis summary")
        };
        assert_eq!(sum.storage_class, class.unwrap_or("(cluster default)"));
    }
}

#[test]
fn aws_storage_class_parameters() {
    let mut s = stack();
    s.cluster.provider = ProviderConfig::Aws(crate::stack::AwsConfig {
        iops: Some(4000),
        throughput: Some(250),
        kms_key_id: Some("arn:aws:kms:us-west-2:1:key/abc".into()),
        ..aws()
    });
    let r = render(&s);
    let sc = find(&r, "StorageClass");
    assert_eq!(sc["provisioner"], "ebs.csi.aws.com");
    assert_eq!(
        sc["parameters"],
        json!({"type": "gp3", "encrypted": "true", "iops": "4000", "throughput": "250", "kmsKeyId": "arn:aws:kms:us-west-2:1:key/abc"})
    );
}

#[test]
fn storage_class_override_wins_and_no_class_is_created() {
    let mut s = stack();
    s.cluster.provider = ProviderConfig::Aws(aws());
    s.redis.storage_class = Some("fast-ssd".into());
    let r = render(&s);
    assert!(r.objects.iter().all(|o| o.kind() != "StorageClass"));
    assert_eq!(
        find(&r, "PersistentVolumeClaim")["spec"]["storageClassName"],
        "fast-ssd"
    );
}

#[test]
fn redis_pod_mounts_the_pvc_and_takes_the_password_from_the_secret() {
    let r = render(&stack());
    let sts = find(&r, "StatefulSet");
    let pod = &sts["spec"]["template"]["spec"];
    assert!(sts["spec"].get("volumeClaimTemplates").is_none());
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "ray-prod-redis-data"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/data");
    assert_eq!(
        c["env"][0]["valueFrom"]["secretKeyRef"],
        json!({"name": "ray-prod-redis-auth", "key": "password"})
    );
    assert_eq!(
        c["env"][1],
        json!({"name": "REDISCLI_AUTH", "valueFrom": {"secretKeyRef": {"name": "ray-prod-redis-auth", "key": "password"}}})
    );
    assert_eq!(
        c["command"][2],
        "set -e; umask 077; printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" > /run/redis-auth/auth.conf; \
         unset REDIS_PASSWORD REDISCLI_AUTH; \
         exec redis-server /etc/redis/redis.conf --include /run/redis-auth/auth.conf"
    );
    assert_eq!(
        c["readinessProbe"]["exec"]["command"][2],
        "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG"
    );
    assert_eq!(
        c["volumeMounts"][2],
        json!({"name": "auth", "mountPath": "/run/redis-auth"})
    );
    assert_eq!(
        pod["volumes"][2],
        json!({"name": "auth", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    // The Service and NetworkPolicy select exactly the pods the StatefulSet selects.
    let selector = &sts["spec"]["selector"]["matchLabels"];
    assert_eq!(&find(&r, "Service")["spec"]["selector"], selector);
    assert_eq!(
        &find(&r, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        selector
    );
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&sts["spec"]["template"]["metadata"]["labels"][k], v);
    }
}

#[test]
fn a_config_change_rolls_the_redis_pod() {
    let mut s = stack();
    let before = render(&s);
    s.durability.max_data_loss = std::time::Duration::ZERO;
    let after = render(&s);
    let hash = |r: &Rendered| {
        find(r, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
            [REDIS_CONF_HASH_ANNOTATION]
            .clone()
    };
    assert_ne!(hash(&before), hash(&after));
    assert!(
        find(&after, "ConfigMap")["data"]["redis.conf"]
            .as_str()
            .unwrap()
            .contains("appendfsync always")
    );
}

#[test]
fn network_policy_admits_only_this_ray_cluster() {
    // The Redis port: this RayCluster's pods only. The metrics port: any source (a scraper's
    // namespace is not known, and the API server's service proxy is not a pod).
    let r = render(&stack());
    let np = find(&r, "NetworkPolicy");
    assert_eq!(
        np["spec"]["ingress"],
        json!([
            { "from": [{ "podSelector": { "matchLabels": { "ray.io/cluster": "ray-prod" } } }], "ports": [{ "protocol": "TCP", "port": 6379 }] },
            { "ports": [{ "protocol": "TCP", "port": 9121 }] },
        ])
    );
    let mut s = stack();
    s.redis.metrics = false;
    let r = render(&s);
    assert_eq!(
        find(&r, "NetworkPolicy")["spec"]["ingress"],
        json!([{ "from": [{ "podSelector": { "matchLabels": { "ray.io/cluster": "ray-prod" } } }], "ports": [{ "protocol": "TCP", "port": 6379 }] }])
    );
}

#[test]
fn the_exporter_sidecar_takes_the_password_from_the_secret_and_can_be_turned_off() {
    let r = render(&stack());
    let containers = &find(&r, "StatefulSet")["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 2);
    let exporter = &containers[1];
    assert_eq!(
        exporter,
        &json!({
            "name": "redis-exporter",
            "image": "oliver006/redis_exporter:v1.67.0",
            "env": [
                { "name": "REDIS_ADDR", "value": "redis://127.0.0.1:6379" },
                { "name": "REDIS_PASSWORD", "valueFrom": { "secretKeyRef": { "name": "ray-prod-redis-auth", "key": "password" } } },
            ],
            "ports": [{ "name": "metrics", "containerPort": 9121, "protocol": "TCP" }],
            "resources": {
                "requests": { "cpu": "50m", "memory": "64Mi" },
                "limits": { "cpu": "50m", "memory": "64Mi" },
            },
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": { "drop": ["ALL"] },
            },
        })
    );
    assert_eq!(
        find(&r, "Service")["spec"]["ports"],
        json!([
            { "name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP" },
            { "name": "metrics", "port": 9121, "targetPort": "metrics", "protocol": "TCP" },
        ])
    );

    let mut s = stack();
    s.redis.metrics = false;
    let r = render(&s);
    let containers = &find(&r, "StatefulSet")["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 1);
    assert_eq!(
        find(&r, "Service")["spec"]["ports"],
        json!([{ "name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP" }])
    );
}

#[test]
fn gcs_ft_options_from_kuberay_1_3() {
    let mut s = stack();
    s.ray.external_storage_namespace = Some("ray-prod-gcs".into());
    let r = render(&s);
    let rc = find(&r, "RayCluster");
    assert_eq!(
        rc["spec"]["gcsFaultToleranceOptions"],
        json!({
            "redisAddress": "ray-prod-redis.ray-prod.svc:6379",
            "redisPassword": { "valueFrom": { "secretKeyRef": { "name": "ray-prod-redis-auth", "key": "password" } } },
            "externalStorageNamespace": "ray-prod-gcs",
        })
    );
    assert!(rc["metadata"].get("annotations").is_none());
    let head = &rc["spec"]["headGroupSpec"];
    assert!(
        head["template"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    assert!(head["rayStartParams"].get("redis-password").is_none());
}

#[test]
fn annotation_form_before_kuberay_1_3() {
    let mut s = stack();
    s.ray.kuberay = KubeRayVersion::new(1, 2, 2);
    let r = render(&s);
    let rc = find(&r, "RayCluster");
    assert!(rc["spec"].get("gcsFaultToleranceOptions").is_none());
    assert_eq!(
        rc["metadata"]["annotations"],
        json!({ "ray.io/ft-enabled": "true" })
    );
    let head = &rc["spec"]["headGroupSpec"];
    assert_eq!(head["rayStartParams"]["redis-password"], "$REDIS_PASSWORD");
    assert_eq!(
        head["template"]["spec"]["containers"][0]["env"],
        json!([
            { "name": "RAY_REDIS_ADDRESS", "value": "ray-prod-redis.ray-prod.svc:6379" },
            { "name": "REDIS_PASSWORD", "valueFrom": { "secretKeyRef": { "name": "ray-prod-redis-auth", "key": "password" } } },
        ])
    );
    s.ray.external_storage_namespace = Some("gcs-ns".into());
    let rc = find(&render(&s), "RayCluster").clone();
    assert_eq!(
        rc["metadata"]["annotations"]["ray.io/external-storage-namespace"],
        "gcs-ns"
    );
}

#[test]
fn worker_groups_gpus_and_autoscaling() {
    let mut s = stack();
    let mut gpu = s.ray.workers[0].clone();
    gpu.group = "gpu".into();
    gpu.gpu = Some(2);
    gpu.replicas = 2;
    gpu.min_replicas = 2;
    gpu.max_replicas = 2;
    s.ray.workers.push(gpu);
    let rc = find(&render(&s), "RayCluster").clone();
    let groups = rc["spec"]["workerGroupSpecs"].as_array().unwrap();
    assert_eq!(rc["spec"]["enableInTreeAutoscaling"], true);
    // The scaling group leaves replicas to the autoscaler; the fixed group pins it.
    assert!(groups[0].get("replicas").is_none());
    assert_eq!(groups[1]["replicas"], 2);
    let limits = &groups[1]["template"]["spec"]["containers"][0]["resources"]["limits"];
    assert_eq!(limits["nvidia.com/gpu"], "2");
    assert!(
        groups[0]["template"]["spec"]["containers"][0]["resources"]["limits"]
            .get("nvidia.com/gpu")
            .is_none()
    );
    assert_eq!(
        rc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"],
        "0"
    );

    s.ray.workers.remove(0);
    assert!(!autoscaling_enabled(&s));
    s.ray.workers.clear();
    assert_eq!(head_num_cpus(&s), None);
}

#[test]
fn object_fuse_on_gke_asks_for_the_fuse_sidecar() {
    let mut s = stack();
    s.durability.volume = VolumeKind::ObjectFuse;
    s.durability.max_data_loss = std::time::Duration::from_secs(300);
    s.cluster.provider = ProviderConfig::Gcp(gcp(GcpDisk::StandardRwo));
    s.redis.storage_class = Some("gcsfuse".into());
    let r = render(&s);
    let ann = &find(&r, "StatefulSet")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["gke-gcsfuse/volumes"], "true");
    assert!(
        find(&r, "ConfigMap")["data"]["redis.conf"]
            .as_str()
            .unwrap()
            .contains("appendonly no")
    );
}

#[test]
fn summary_shape() {
    let mut s = stack();
    s.durability.max_data_loss = std::time::Duration::from_secs(300);
    let Summary::Redis(sum) = summarize(&s) else {
        panic!("a Redis stack has a Redis summary")
    };
    assert_eq!(sum.max_data_loss, "5m");
    assert!(!sum.appendonly);
    assert_eq!(sum.appendfsync, None);
    assert_eq!(sum.save, ["300 1", "60 1000"]);
    assert_eq!(sum.volume, "disk");
    assert_eq!(sum.storage_class, "(cluster default)");
    assert_eq!(sum.storage, "8Gi");
    assert!(sum.protect_volume);
    assert!(
        sum.explanation
            .iter()
            .any(|l| l.starts_with("`save 300 1` added"))
    );
    let json = serde_json::to_value(&sum).unwrap();
    assert_eq!(
        serde_json::from_value::<DurabilitySummary>(json).unwrap(),
        sum
    );
}

#[test]
fn yaml_is_deterministic_and_round_trips() {
    let mut s = stack();
    s.cluster.provider = ProviderConfig::Aws(aws());
    let r = render(&s);
    let yaml = manifests(&r.objects);
    assert_eq!(yaml, manifests(&render(&s).objects));
    assert!(
        yaml.starts_with("---\napiVersion: v1\nkind: Namespace\n"),
        "{yaml}"
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let back: Vec<Value> = r.objects.iter().map(|o| o.manifest.clone()).collect();
    assert_eq!(docs, back);
    assert_eq!(
        file_name(4, &r.objects[4]),
        "05-persistentvolumeclaim-ray-prod-redis-data.yaml"
    );
}

fn embedded(protect: bool) -> crate::stack::Stack {
    let mut s = stack();
    s.ray.kuberay = crate::stack::KubeRayVersion::new(1, 7, 0);
    s.ray.upgrade_strategy = Some(crate::stack::UpgradeStrategy::Recreate);
    s.durability.backend = crate::stack::GcsBackend::Embedded;
    s.durability.embedded_storage = Some(crate::stack::Quantity::parse("2Gi").unwrap());
    s.durability.protect_volume = protect;
    s
}

#[test]
fn embedded_backend_renders_no_redis_objects() {
    let r = render(&embedded(true));
    let kinds: Vec<&str> = r.objects.iter().map(|o| o.kind()).collect();
    assert_eq!(kinds, ["Namespace", "RayCluster"]);
    let rc = &r.objects[1].manifest;
    assert_eq!(
        rc["spec"]["gcsFaultToleranceOptions"],
        json!({"backend": "rocksdb", "storage": {"size": "2Gi", "accessModes": ["ReadWriteOnce"], "deletionPolicy": "Retain"}})
    );
    let head = &rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0];
    assert!(head.get("env").is_none(), "no Redis address or password");
    assert!(
        rc["spec"]["headGroupSpec"]["rayStartParams"]
            .get("redis-password")
            .is_none()
    );
    let unprotected = render(&embedded(false));
    assert_eq!(
        unprotected.objects[1].manifest["spec"]["gcsFaultToleranceOptions"]["storage"]["deletionPolicy"],
        "DeleteWithCluster"
    );
}

#[test]
fn embedded_backend_uses_the_providers_block_storage_class() {
    let mut s = embedded(true);
    s.cluster.provider = ProviderConfig::Aws(aws());
    let r = render(&s);
    let kinds: Vec<&str> = r.objects.iter().map(|o| o.kind()).collect();
    assert_eq!(kinds, ["Namespace", "StorageClass", "RayCluster"]);
    assert_eq!(
        r.objects[2].manifest["spec"]["gcsFaultToleranceOptions"]["storage"]["storageClassName"],
        r.objects[1].manifest["metadata"]["name"]
    );
}

#[test]
fn upgrade_strategy_is_rendered_only_when_set() {
    let mut s = stack();
    let rc = |s: &crate::stack::Stack| render(s).objects.last().unwrap().manifest.clone();
    assert!(rc(&s)["spec"].get("upgradeStrategy").is_none());
    s.ray.kuberay = crate::stack::KubeRayVersion::new(1, 6, 0);
    s.ray.upgrade_strategy = Some(crate::stack::UpgradeStrategy::Recreate);
    assert_eq!(
        rc(&s)["spec"]["upgradeStrategy"],
        json!({"type": "Recreate"})
    );
    s.ray.upgrade_strategy = Some(crate::stack::UpgradeStrategy::None);
    assert_eq!(rc(&s)["spec"]["upgradeStrategy"], json!({"type": "None"}));
}

#[test]
fn embedded_summary_says_what_the_backend_promises() {
    let Summary::Embedded(sum) = summarize(&embedded(true)) else {
        panic!("an embedded stack has an embedded summary")
    };
    assert_eq!(sum.volume, "ray-prod-gcs-pvc");
    assert_eq!(sum.deletion_policy, "Retain");
    assert_eq!(sum.storage, "2Gi");
    assert!(
        sum.explanation
            .iter()
            .any(|l| l.starts_with("not replicated"))
    );
    assert!(
        sum.explanation
            .iter()
            .any(|l| l.starts_with("single writer"))
    );
    // Untagged: the JSON round-trips to the same variant.
    let json = serde_json::to_value(summarize(&embedded(true))).unwrap();
    assert_eq!(json["backend"], "embedded");
    assert_eq!(
        serde_json::from_value::<Summary>(json).unwrap(),
        Summary::Embedded(sum)
    );
}

#[test]
fn named_redis_objects_are_rendered_under_their_existing_names() {
    let mut s = stack();
    s.redis.objects = crate::stack::RedisObjects {
        name: Some("redis".into()),
        service_name: Some(String::new()),
        selector: Some([("app".to_string(), "redis".to_string())].into()),
        pvc: Some("redis-data".into()),
        config_map: Some("redis-config".into()),
        password_secret: Some("redis-password-secret".into()),
    };
    let r = render(&s);
    let sts = find(&r, "StatefulSet");
    assert_eq!(sts["metadata"]["name"], "redis");
    assert_eq!(
        sts["spec"]["selector"],
        json!({ "matchLabels": { "app": "redis" } })
    );
    assert_eq!(
        sts["spec"].get("serviceName"),
        None,
        "the adopted StatefulSet has none"
    );
    assert_eq!(
        sts["spec"]["template"]["metadata"]["labels"]["app"],
        "redis"
    );
    let volumes = &sts["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[0]["persistentVolumeClaim"]["claimName"],
        "redis-data"
    );
    assert_eq!(volumes[1]["configMap"]["name"], "redis-config");
    let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(
        env["valueFrom"]["secretKeyRef"]["name"],
        "redis-password-secret"
    );
    let svc = find(&r, "Service");
    assert_eq!(svc["metadata"]["name"], "redis");
    assert_eq!(svc["spec"]["selector"], json!({ "app": "redis" }));
    assert_eq!(
        find(&r, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        json!({ "app": "redis" })
    );
    assert_eq!(
        find(&r, "PersistentVolumeClaim")["metadata"]["name"],
        "redis-data"
    );
    assert_eq!(find(&r, "ConfigMap")["metadata"]["name"], "redis-config");
    assert_eq!(
        find(&r, "Secret")["metadata"]["name"],
        "redis-password-secret"
    );
    let rc = find(&r, "RayCluster").to_string();
    assert!(
        rc.contains("redis-password-secret"),
        "the head reads the existing Secret"
    );
    assert!(
        !rc.contains(&format!("{}-redis", s.meta.name)),
        "no raystack-named Redis object is referenced: {rc}"
    );
    // Without names, raystack's own, with a governing Service of the same name.
    s.redis.objects = Default::default();
    let sts = find(&render(&s), "StatefulSet").clone();
    assert_eq!(sts["spec"]["serviceName"], sts["metadata"]["name"]);
}
