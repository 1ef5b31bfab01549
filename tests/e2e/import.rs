//! `raystack import`: a Ray cluster made with the real `kubectl apply -f` of KubeRay's
//! persistent-Redis sample (and of its pre-1.3 form) against fake-apiserver is imported, planned
//! (no replace, no delete, no DATA LOSS), applied without `--adopt` (the file's `[import]` UIDs
//! are the proof), and then: the same RayCluster and PVC (UIDs), no field left to kubectl's
//! client-side apply, no password in any ConfigMap, the password unchanged, and no changes.
//! Refusals: a Helm-managed object without `--take-ownership`, `--out` over an existing file,
//! and an object recreated since the import.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{CRD, Fake, Run, raystack_bin};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kuberay/ray-cluster.persistent-redis.sample.yaml"
);
const SAMPLE_PRE_1_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/import/ray-cluster.persistent-redis.pre-1.3.yaml"
);
const CRD_1_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kuberay/ray.io_rayclusters.v1.2.2.yaml"
);
const NS: &str = "ray";
const RC: &str = "raycluster-external-redis";
/// The sample's password (its Secret and its redis.conf).
const PASSWORD: &str = "5241590000000000";

struct Team {
    dir: tempfile::TempDir,
    fake: Fake,
}

impl Team {
    /// A fake cluster with the CRD `crd`, where a team ran `kubectl apply -f sample`.
    fn new(crd: &str, sample: &str) -> Team {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::start_with_crd(dir.path(), crd, &[]);
        let team = Team { dir, fake };
        team.kubectl(&["create", "namespace", NS]);
        team.kubectl(&["apply", "-n", NS, "-f", sample]);
        team
    }

    /// The real kubectl against the fake.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&self.fake.kubeconfig)
            .args(args)
            .output()
            .expect("run /usr/bin/kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn get(&self, kind: &str, name: &str) -> Value {
        let text = self.kubectl(&[
            "get",
            "-n",
            NS,
            kind,
            name,
            "-o",
            "json",
            "--show-managed-fields",
        ]);
        serde_json::from_str(&text).unwrap()
    }

    fn uid(&self, kind: &str, name: &str) -> String {
        self.get(kind, name)["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn raystack(&self, args: &[&str]) -> Run {
        let out = Command::new(raystack_bin())
            .current_dir(self.dir.path())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.fake.kubeconfig)
            .env("NO_COLOR", "1")
            .env("RAYSTACK_WAIT_TIMEOUT", "60")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run raystack");
        Run::from(out)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn import(&self, extra: &[&str]) -> Run {
        let mut args = vec!["import", "--namespace", NS, "--raycluster", RC];
        args.extend_from_slice(extra);
        self.raystack(&args)
    }
}

/// The stack file with its UIDs (new on every run) as `[UID]`.
fn scrub_uids(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("uid = ") {
                "uid = \"[UID]\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The whole flow on one sample, as a user runs it in the directory of `ray.toml`; returns the
/// imported stack file (UIDs scrubbed) and the transcript README's "Adopting an existing
/// cluster" shows.
fn adopt_in_place(team: &Team) -> (String, String) {
    let rc_uid = team.uid("raycluster", RC);
    let pvc_uid = team.uid("pvc", "redis-data");
    let imported = team.import(&["--out", "ray.toml"]);
    assert_eq!(imported.code, 0, "{imported}");
    assert_eq!(imported.stderr, "wrote ray.toml\n");
    let file = std::fs::read_to_string(team.path("ray.toml")).unwrap();
    let stack_arg = "ray.toml";
    let mut transcript = format!(
        "$ raystack import --namespace {NS} --raycluster {RC} --out ray.toml\n{}$ cat ray.toml\n{file}",
        imported.stderr
    );
    let text_plan = team.raystack(&["plan", stack_arg]);
    assert_eq!(text_plan.code, 0, "{text_plan}");
    transcript.push_str("$ raystack plan ray.toml | grep -E '^  [-+~] |^Plan:'\n");
    for line in text_plan.stdout.lines() {
        let t = line.strip_prefix("  ").unwrap_or("");
        if t.starts_with("~ ")
            || t.starts_with("+ ")
            || t.starts_with("- ")
            || line.starts_with("Plan:")
        {
            transcript.push_str(line);
            transcript.push('\n');
        }
    }

    // The plan: every object updated in place or created; nothing replaced, deleted or lost.
    let plan = team.raystack(&["plan", stack_arg, "--format", "json"]);
    assert_eq!(plan.code, 0, "{plan}");
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let changes = plan["resource_changes"].as_array().unwrap();
    let actions: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().into(),
                c["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("Secret/ray/redis-password-secret", "update"),
            ("ConfigMap/ray/redis-config", "update"),
            ("PersistentVolumeClaim/ray/redis-data", "update"),
            ("StatefulSet/ray/redis", "update"),
            ("Service/ray/redis", "update"),
            ("NetworkPolicy/ray/redis", "create"),
            ("RayCluster/ray/raycluster-external-redis", "update"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for c in changes {
        assert_eq!(c["data_loss"], false, "{c}");
        if c["action"] == "update" {
            assert_eq!(c["adopt"]["import"], "imported", "{c}");
            assert!(
                c["notes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n.as_str().unwrap().contains(
                        "moves field ownership from kubectl-client-side-apply to raystack"
                    )),
                "the plan says ownership moves: {c}"
            );
        }
    }
    let sts = changes
        .iter()
        .find(|c| c["address"] == "StatefulSet/ray/redis")
        .unwrap();
    assert!(
        sts["rollout"]
            .as_str()
            .unwrap()
            .contains("the Redis pod restarts"),
        "{sts}"
    );
    assert!(
        !plan.to_string().contains(PASSWORD),
        "the plan shows no password"
    );

    // Applied without --adopt: the recorded UIDs are the consent.
    let applied = team.raystack(&["apply", stack_arg, "--auto-approve"]);
    assert_eq!(applied.code, 0, "{applied}");
    transcript.push_str(&format!(
        "$ raystack apply ray.toml --auto-approve | tail -1\n{}\n",
        applied.stdout.lines().last().unwrap_or_default()
    ));
    assert!(!applied.stdout.contains(PASSWORD) && !applied.stderr.contains(PASSWORD));

    assert_eq!(
        team.uid("raycluster", RC),
        rc_uid,
        "the RayCluster (its GCS namespace) is the same"
    );
    assert_eq!(
        team.uid("pvc", "redis-data"),
        pvc_uid,
        "the Redis volume is the same"
    );
    for (kind, name) in [
        ("raycluster", RC),
        ("service", "redis"),
        ("statefulset", "redis"),
        ("pvc", "redis-data"),
        ("configmap", "redis-config"),
        ("secret", "redis-password-secret"),
    ] {
        let obj = team.get(kind, name);
        let managers: Vec<&str> = obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert!(
            !managers.iter().any(|m| m.starts_with("kubectl")),
            "{kind}/{name}: {managers:?}"
        );
        assert!(
            managers.contains(&"raystack"),
            "{kind}/{name}: {managers:?}"
        );
        assert!(
            obj["metadata"]["annotations"]
                .get("kubectl.kubernetes.io/last-applied-configuration")
                .is_none(),
            "{kind}/{name} keeps kubectl's last-applied annotation"
        );
        assert_eq!(
            obj["metadata"]["labels"]["raystack.dev/stack"], RC,
            "{kind}/{name}"
        );
    }
    let config_maps = team.kubectl(&["get", "configmaps", "-A", "-o", "json"]);
    assert!(
        !config_maps.contains(PASSWORD) && !config_maps.contains("requirepass"),
        "a password is left in a ConfigMap"
    );
    let secret = team.get("secret", "redis-password-secret");
    assert_eq!(
        secret["data"]["password"], "NTI0MTU5MDAwMDAwMDAwMA==",
        "the password is unchanged"
    );
    let sts = team.get("statefulset", "redis");
    let mounts = sts
        .pointer("/spec/template/spec/containers/0/volumeMounts")
        .unwrap()
        .to_string();
    assert!(
        !mounts.contains("/usr/local/etc/redis"),
        "kubectl's old mount was pruned: {mounts}"
    );

    let next = team.raystack(&["plan", stack_arg, "--detailed-exitcode"]);
    assert_eq!(next.code, 0, "{next}");
    assert!(next.stdout.contains("No changes."), "{next}");
    transcript.push_str(&format!(
        "$ raystack plan ray.toml --detailed-exitcode | tail -1; echo \"exit ${{PIPESTATUS[0]}}\"\n{}\nexit {}\n",
        next.stdout.lines().last().unwrap_or_default(),
        next.code
    ));
    (scrub_uids(&file), transcript)
}

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// Replaces the body of README's marked code block with `transcript`.
fn bless_readme(transcript: &str) {
    let readme = std::fs::read_to_string(README).unwrap();
    let start = readme
        .find("<!-- transcript: import -->\n")
        .expect("README marks the transcript");
    let fence_end = start + readme[start..].find("```").unwrap();
    let body_start = fence_end + readme[fence_end..].find('\n').unwrap() + 1;
    let body_end = body_start + readme[body_start..].find("\n```").unwrap() + 1;
    let out = format!(
        "{}{transcript}{}",
        &readme[..body_start],
        &readme[body_end..]
    );
    std::fs::write(README, out).unwrap();
}

/// The code block README.md marks `<!-- transcript: import -->`, UIDs scrubbed.
fn readme_transcript() -> String {
    let readme = std::fs::read_to_string(README).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| *l != "<!-- transcript: import -->")
        .skip(1);
    let fence = lines
        .next()
        .expect("a code block follows the transcript marker");
    assert!(fence.starts_with("```"), "{fence}");
    let body: Vec<&str> = lines.take_while(|l| *l != "```").collect();
    scrub_uids(&(body.join("\n") + "\n"))
}

#[test]
fn the_kuberay_sample_is_adopted_in_place() {
    let team = Team::new(CRD, SAMPLE);
    let (file, transcript) = adopt_in_place(&team);
    insta::assert_snapshot!("kuberay_sample_stack", file);
    // README's transcript is this run's output (UIDs aside); RAYSTACK_BLESS=1 rewrites it.
    if std::env::var_os("RAYSTACK_BLESS").is_some() {
        bless_readme(&transcript);
    }
    assert_eq!(
        readme_transcript(),
        scrub_uids(&transcript),
        "README.md's import transcript is stale; rerun with RAYSTACK_BLESS=1 and review the diff"
    );
}

#[test]
fn the_pre_1_3_sample_is_adopted_in_place() {
    let team = Team::new(CRD_1_2, SAMPLE_PRE_1_3);
    insta::assert_snapshot!("pre_1_3_sample_stack", adopt_in_place(&team).0);
}

#[test]
fn a_helm_managed_object_is_refused_without_take_ownership() {
    let team = Team::new(CRD, SAMPLE);
    team.kubectl(&[
        "label",
        "-n",
        NS,
        "statefulset",
        "redis",
        "app.kubernetes.io/managed-by=Helm",
    ]);
    team.kubectl(&[
        "annotate",
        "-n",
        NS,
        "statefulset",
        "redis",
        "meta.helm.sh/release-name=redis",
    ]);
    let r = team.import(&["--out", "stack.toml"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("StatefulSet/redis (managed by Helm (release `redis`))")
            && r.stderr.contains("--take-ownership"),
        "{r}"
    );
    assert!(!team.path("stack.toml").exists(), "nothing is written");
    let r = team.import(&["--out", "stack.toml", "--take-ownership"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn out_over_an_existing_file_is_refused() {
    let team = Team::new(CRD, SAMPLE);
    std::fs::write(team.path("stack.toml"), "mine\n").unwrap();
    let r = team.import(&["--out", "stack.toml"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("refusing to overwrite stack.toml: it exists"),
        "{r}"
    );
    assert_eq!(
        std::fs::read_to_string(team.path("stack.toml")).unwrap(),
        "mine\n"
    );
}

#[test]
fn an_object_recreated_since_the_import_is_not_adopted() {
    let team = Team::new(CRD, SAMPLE);
    let r = team.import(&["--out", "stack.toml"]);
    assert_eq!(r.code, 0, "{r}");
    // Someone deletes and recreates the ConfigMap: same name, another object.
    team.kubectl(&["delete", "-n", NS, "configmap", "redis-config"]);
    team.kubectl(&["apply", "-n", NS, "-f", SAMPLE]);
    let stack = team.path("stack.toml");
    let r = team.raystack(&["apply", stack.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("ConfigMap/ray/redis-config (managed by kubectl-client-side-apply) (recreated since import)"),
        "{r}"
    );
    let cm = team.get("configmap", "redis-config");
    assert!(
        cm["metadata"]["labels"].get("raystack.dev/stack").is_none(),
        "nothing was adopted"
    );
}

/// After the import, the adopted objects are the stack's: destroy deletes them by the names the
/// stack file declares (the volume stays: `protect_volume`), and leaves the namespace alone.
#[test]
fn destroy_of_an_imported_stack_deletes_what_it_adopted_but_the_volume() {
    let team = Team::new(CRD, SAMPLE);
    let r = team.import(&["--out", "ray.toml"]);
    assert_eq!(r.code, 0, "{r}");
    let r = team.raystack(&["apply", "ray.toml", "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    let r = team.raystack(&["destroy", "ray.toml", "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stdout.contains("Left alone"), "{r}");
    let left = team.kubectl(&[
        "get",
        "-n",
        NS,
        "raycluster,statefulset,service,configmap,secret,networkpolicy,pvc",
        "-o",
        "name",
    ]);
    let mut left: Vec<&str> = left
        .lines()
        .filter(|l| !l.contains("kube-root-ca.crt"))
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["persistentvolumeclaim/redis-data"],
        "only the protected volume stays"
    );
    team.kubectl(&["get", "namespace", NS]);
}
