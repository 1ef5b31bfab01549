//! Binary-level tests of team state: the real `raystack` against fake-apiserver with
//! `[state] backend = "kubernetes"`: migration local → kubernetes → local (with a state over
//! 1 MiB, so it travels in chunks), `state pull`, `force-unlock` on both backends, two applies
//! from two machines, a SIGKILLed apply, a 409 on the state write, and plan with read-only
//! credentials.

use std::path::Path;

use raystack::kind::{Kind, ObjectRef};
use raystack::state::{LocalBackend, ResourceState, State};
use serde_json::{Value, json};

use crate::support::*;

const STATE_NS: &str = "raystack-system";

fn kubernetes_stack() -> String {
    stack_toml(&worker("cpu", 1), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    )
}

fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{STATE_NS}/leases/raystack-lock-{NAME}")
}

fn state_secrets(env: &Env) -> Vec<String> {
    let mut names = env.fake.list_names(&format!(
        "/api/v1/namespaces/{STATE_NS}/secrets?labelSelector=raystack.dev%2Fstack%3D{NAME}"
    ));
    names.sort();
    names
}

/// `raystack ARGS --kubeconfig <fake>` for commands whose kubeconfig flag `Env::cmd` omits.
fn run_k(env: &Env, args: &[&str]) -> Run {
    let mut full: Vec<&str> = args.to_vec();
    let kubeconfig = env.fake.kubeconfig.to_str().unwrap().to_owned();
    full.extend(["--kubeconfig", kubeconfig.as_str()]);
    env.run(&full)
}

/// A local state with `n` records whose hashes are random (so gzip cannot shrink it below 1 MiB
/// for large `n`), written the way apply writes it.
fn write_local_state(path: &Path, n: usize) -> State {
    let backend = LocalBackend::new(path);
    let mut lock = backend.lock("apply").unwrap();
    let mut state = State::new(NAME);
    for i in 0..n {
        let name = format!("cm-{i}");
        let object = ObjectRef::new(Kind::ConfigMap, Some(NAME), &name);
        state.upsert_resource(ResourceState {
            address: object.address(),
            object,
            uid: uuid::Uuid::new_v4().to_string(),
            resource_version: i.to_string(),
            applied_hash: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        });
    }
    state.set_secret_fingerprint("e2e-redis-auth", b"not-a-real-password");
    lock.write(&mut state).unwrap();
    state
}

#[test]
fn migration_local_to_kubernetes_and_back_keeps_lineage_and_every_resource_through_chunks() {
    let env = Env::new(&[]);
    let original = write_local_state(&env.state_path(), 20_000);
    let size = std::fs::metadata(env.state_path()).unwrap().len();
    assert!(size > 2 * 1024 * 1024, "state file is {size} bytes");

    let r = run_k(
        &env,
        &["state", "migrate", env.stack_arg(), "--to", "kubernetes"],
    );
    assert_eq!(r.code, 0, "{r}");
    let migrated = env.state_path().with_extension("json.migrated");
    assert!(
        !env.state_path().exists(),
        "the local state was moved aside"
    );
    assert_eq!(
        serde_json::from_slice::<State>(&std::fs::read(&migrated).unwrap()).unwrap(),
        original,
        "the .migrated backup is the state as it was"
    );
    assert!(
        r.stderr.starts_with(&format!(
            "Moved the state of stack `{NAME}` (lineage {}, serial 1 -> 2) from `{}` to Secret `{STATE_NS}/raystack-state-{NAME}` (on ",
            original.lineage,
            env.state_path().display()
        )),
        "{r}"
    );
    assert!(
        r.stderr.ends_with(&format!(
            "; the local file is kept as `{}`.\nNow set `[state] backend = \"kubernetes\"` in `{}`.\n",
            migrated.display(),
            env.stack_arg()
        )),
        "{r}"
    );
    let secrets = state_secrets(&env);
    assert!(secrets.len() >= 3, "head and chunks: {secrets:?}");
    assert!(
        env.fake.get(&lease_path()).is_none(),
        "the migration released its lock"
    );

    env.write_stack(&kubernetes_stack());
    let pulled = run_k(&env, &["state", "pull", env.stack_arg()]);
    assert_eq!(pulled.code, 0, "{pulled}");
    let pulled: State = serde_json::from_str(&pulled.stdout).unwrap();
    let mut expected = original.clone();
    expected.serial = 2;
    assert_eq!(pulled, expected);

    let r = run_k(
        &env,
        &["state", "migrate", env.stack_arg(), "--to", "local"],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.ends_with(
            &("Now set `[state] backend = \"local\"` in `".to_owned() + env.stack_arg() + "`.\n")
        ),
        "{r}"
    );
    assert!(state_secrets(&env).is_empty(), "kubernetes state removed");
    let back: State = serde_json::from_slice(&std::fs::read(env.state_path()).unwrap()).unwrap();
    expected.serial = 3;
    assert_eq!(back, expected);
    assert_eq!(back.lineage, original.lineage);
    assert_eq!(back.resources, original.resources);
    assert_eq!(back.secrets, original.secrets);
}

#[test]
fn a_stack_switched_to_kubernetes_without_migrating_is_refused() {
    let env = Env::new(&[]);
    write_local_state(&env.state_path(), 2);
    env.write_stack(&kubernetes_stack());
    let r = run_k(&env, &["state", "list", env.stack_arg()]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("unmigrated_local_state_stderr", env.scrub(&r.stderr));
}

#[test]
fn migrating_onto_an_existing_state_changes_nothing() {
    let env = Env::new(&[]);
    let first = write_local_state(&env.state_path(), 2);
    assert_eq!(
        run_k(
            &env,
            &["state", "migrate", env.stack_arg(), "--to", "kubernetes"]
        )
        .code,
        0
    );
    let second = write_local_state(&env.state_path(), 3);
    let r = run_k(
        &env,
        &["state", "migrate", env.stack_arg(), "--to", "kubernetes"],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!(
        "migrate_onto_existing_state_stderr",
        env.scrub(&r.stderr)
            .replace(&first.lineage, "[LINEAGE-1]")
            .replace(&second.lineage, "[LINEAGE-2]")
    );
    assert_eq!(
        LocalBackend::new(env.state_path()).read().unwrap(),
        Some(second)
    );
}

/// A Lease as a run that died would leave it, renewed `age` seconds ago.
fn plant_lease(env: &Env, age_secs: u64, duration: u32) {
    // Make sure the namespace exists (a first run creates it).
    env.fake.request(
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STATE_NS}})
            .to_string(),
    );
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - age_secs;
    let ts = k8s_openapi::jiff::Timestamp::from_second(secs as i64).unwrap();
    let time = ts.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string();
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("raystack-lock-{NAME}"), "namespace": STATE_NS,
                     "annotations": {"raystack.dev/lock-id": "0f0e0d0c",
                                     "raystack.dev/operation": "apply"}},
        "spec": {"holderIdentity": "bob@ci-runner pid 4242 (apply)",
                 "leaseDurationSeconds": duration, "acquireTime": time, "renewTime": time}
    });
    let (code, text) = env.fake.request(
        "POST",
        &format!("/apis/coordination.k8s.io/v1/namespaces/{STATE_NS}/leases"),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(code, 201, "{text}");
}

#[test]
fn force_unlock_on_kubernetes_needs_the_right_id_and_a_confirmation() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack());
    plant_lease(&env, 0, 600);

    let r = run_k(
        &env,
        &["force-unlock", env.stack_arg(), "wrong-id", "--force"],
    );
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.starts_with(
            "error: refusing to unlock: lock ID `wrong-id` is not the current lock, which is bob@ci-runner pid 4242 (apply) since "
        ),
        "{r}"
    );
    let r = run_k(&env, &["force-unlock", env.stack_arg(), "0f0e0d0c"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.ends_with(
            "error: refusing to continue without confirmation: stdin is not a terminal; pass --auto-approve\n"
        ),
        "{r}"
    );
    assert!(env.fake.get(&lease_path()).is_some(), "still locked");

    let r = run_k(
        &env,
        &["force-unlock", env.stack_arg(), "0f0e0d0c", "--force"],
    );
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.ends_with(&format!(
            "Released the lock on stack `{NAME}` (was held by bob@ci-runner pid 4242 (apply) since {} (lock ID 0f0e0d0c)).\n",
            r.stderr.split(" since ").nth(1).unwrap().split(' ').next().unwrap()
        )),
        "{r}"
    );
    assert!(env.fake.get(&lease_path()).is_none());
    let r = run_k(
        &env,
        &["force-unlock", env.stack_arg(), "0f0e0d0c", "--force"],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("force_unlock_not_locked_stderr", env.scrub(&r.stderr));
}

#[test]
fn force_unlock_on_the_local_backend_releases_a_hung_holder() {
    let env = Env::new(&[]);
    write_local_state(&env.state_path(), 1);
    let held = LocalBackend::new(env.state_path()).lock("apply").unwrap();
    let id = held.info().id.clone();
    let r = env.run(&["force-unlock", env.stack_arg(), "nope", "--force"]);
    assert_eq!(r.code, 1, "{r}");
    // The holder (pid, host, start time) varies from run to run.
    let text = env.scrub(&r.stderr).replace(&id, "[LOCK-ID]");
    let (head, rest) = text.split_once("which is ").unwrap();
    let (_, tail) = rest.split_once(" (lock ID ").unwrap();
    insta::assert_snapshot!(
        "force_unlock_local_wrong_id_stderr",
        format!("{head}which is [HOLDER] (lock ID {tail}")
    );
    let r = env.run(&["force-unlock", env.stack_arg(), &id, "--force"]);
    assert_eq!(r.code, 0, "{r}");
    // The holder's pid, host and start time vary from run to run: only the ID is checked.
    assert!(r.stderr.contains(&format!("(lock ID {id})")), "{r}");
    assert!(LocalBackend::new(env.state_path()).lock("apply").is_ok());
    drop(held);
}

#[test]
fn state_pull_needs_only_read_access() {
    let env = Env::new(&[]);
    write_local_state(&env.state_path(), 2);
    assert_eq!(
        run_k(
            &env,
            &["state", "migrate", env.stack_arg(), "--to", "kubernetes"]
        )
        .code,
        0
    );
    env.write_stack(&kubernetes_stack());
    let r = run_k(
        &env,
        &[
            "state",
            "pull",
            env.stack_arg(),
            "--context",
            "fake-readonly",
        ],
    );
    assert_eq!(r.code, 0, "{r}");
    let state: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(state["serial"], 2);
    // An absence check: the state's password never reaches the pulled JSON.
    assert!(!r.stdout.contains("not-a-real-password"));
    // The same credentials cannot take the lock.
    let r = run_k(
        &env,
        &[
            "state",
            "migrate",
            env.stack_arg(),
            "--to",
            "local",
            "--context",
            "fake-readonly",
        ],
    );
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("migrate_read_only_forbidden_stderr", env.scrub(&r.stderr));
}

/// Polls (bounded) until the fake holds `path`.
fn wait_for(env: &Env, path: &str, what: &str) {
    for _ in 0..600 {
        if env.fake.get(path).is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} never appeared");
}

/// Two stacks of one name in different namespaces share the head Secret: the second is refused,
/// and the refusal names that Secret (where the state is), not a local path.
#[test]
fn another_stack_of_the_same_name_is_refused_naming_the_state_secret() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack());
    env.apply();
    let other = env.dir.path().join("other.toml");
    std::fs::write(
        &other,
        kubernetes_stack().replace(&format!("namespace = \"{NAME}\""), "namespace = \"other\""),
    )
    .unwrap();
    let o = other.to_str().unwrap();
    for args in [
        vec!["plan", o],
        vec!["apply", o, "--auto-approve"],
        vec!["destroy", o, "--auto-approve", "--allow-data-loss"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {r}");
        assert!(r.stdout.is_empty(), "{args:?} planned anyway: {r}");
        let refusal = r
            .stderr
            .lines()
            .find(|l| l.contains("belongs to stack"))
            .unwrap_or_else(|| panic!("{args:?}: no refusal: {r}"))
            .replace(&env.fake.url, "<fake>");
        insta::assert_snapshot!("kubernetes_state_of_another_stack", refusal);
    }
    assert_converged_k(&env);
}

/// Converged on the kubernetes backend: no changes, every object once in the cluster and in
/// the state `state pull` prints, the password's fingerprint recorded, no lock left.
fn assert_converged_k(env: &Env) {
    env.assert_no_changes();
    let pulled = run_k(env, &["state", "pull", env.stack_arg()]);
    assert_eq!(pulled.code, 0, "{pulled}");
    let state: Value = serde_json::from_str(&pulled.stdout).unwrap();
    let addrs: std::collections::BTreeSet<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs.len(), 8, "state: {addrs:?}");
    assert_eq!(state["resources"].as_array().unwrap().len(), 8);
    for (path, name) in all_objects() {
        let names = env.fake.list_names(&path);
        assert_eq!(
            names.iter().filter(|n| **n == name).count(),
            1,
            "{path}: {names:?}"
        );
    }
    assert_eq!(state["secrets"].as_array().unwrap().len(), 1, "{state}");
    assert!(
        !env.state_path().exists(),
        "no local state file was written"
    );
    assert!(
        env.fake.get(&lease_path()).is_none(),
        "the lock was released"
    );
}

/// A kubernetes-backend stack on a fake slow enough that an apply runs for seconds.
///
/// The tests that use it keep `contains`: the lock holder they name (pid, host, start and
/// expiry times) and the progress an interrupted apply printed differ on every run.
fn slow_env() -> Env {
    let env = Env::new(&["--latency-ms", "20", "--readiness-delay-ms", "1500"]);
    env.write_stack(&kubernetes_stack());
    env
}

#[test]
fn two_applies_from_two_machines_one_proceeds_the_other_fails_at_once_naming_the_holder() {
    let env = slow_env();
    // The second "machine": another checkout of the same stack, with no state of its own.
    let other = tempfile::tempdir().unwrap();
    let other_stack = other.path().join("stack.toml");
    std::fs::write(&other_stack, kubernetes_stack()).unwrap();

    let mut first = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&env, &lease_path(), "the first apply's lease");
    let second = env
        .cmd(&["apply", other_stack.to_str().unwrap(), "--auto-approve"])
        .current_dir(other.path())
        .output()
        .unwrap();
    let second = Run::from(second);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the second apply waited for the first to finish instead of failing at once"
    );
    assert_eq!(second.code, 1, "{second}");
    assert!(
        second.stdout.is_empty(),
        "the locked apply planned anyway:\n{second}"
    );
    assert!(
        second.stderr.contains(&format!(
            "caused by: stack `{NAME}` is locked: lease `{STATE_NS}/raystack-lock-{NAME}` is held by "
        )),
        "{second}"
    );
    assert!(
        second
            .stderr
            .contains(&format!(" pid {} (apply) since ", first.id())),
        "{second}"
    );
    let status = first.wait().unwrap();
    assert!(status.success());
    assert!(!other.path().join(".raystack").exists());
    assert_converged_k(&env);
}

fn lock_id_in(stderr: &str) -> String {
    stderr
        .split("(lock ID ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no lock ID in {stderr}"))
        .to_owned()
}

/// Starts an apply with a `lease`-second lease, SIGKILLs it once it holds the lock and has
/// recorded something, and returns its pid.
fn kill_an_apply(env: &Env, lease: &str) -> u32 {
    let mut child = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_LEASE_SECONDS", lease)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        env,
        &format!("/api/v1/namespaces/{STATE_NS}/secrets/raystack-state-{NAME}"),
        "the first state write",
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    child.id()
}

#[test]
fn a_killed_apply_holds_the_stack_until_its_lease_expires_or_force_unlock() {
    let env = slow_env();
    let dead = kill_an_apply(&env, "600");
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(&format!(" pid {dead} (apply) since ")),
        "{r}"
    );
    assert!(r.stderr.contains(", and expires at "), "{r}");
    let id = lock_id_in(&r.stderr);
    let unlocked = run_k(&env, &["force-unlock", env.stack_arg(), &id, "--force"]);
    assert_eq!(unlocked.code, 0, "{unlocked}");
    assert_eq!(
        env.run(&["apply", env.stack_arg(), "--auto-approve"]).code,
        0
    );
    assert_converged_k(&env);
}

#[test]
fn a_killed_apply_is_taken_over_after_its_lease_expires_and_converges() {
    let env = slow_env();
    // A lease far longer than the test: the rerun within it fails however slow the machine.
    let dead = kill_an_apply(&env, "600");
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 1, "a rerun within the lease must fail:\n{r}");
    assert!(
        r.stderr.contains(&format!(" pid {dead} (apply) since ")),
        "{r}"
    );
    // Its expiry, without waiting for it: the dead run's last renewal moved an hour back.
    let lease = env.fake.get(&lease_path()).expect("the dead run's lease");
    let renewed: k8s_openapi::jiff::Timestamp = lease["spec"]["renewTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let old = renewed - k8s_openapi::jiff::SignedDuration::from_secs(3600);
    let old = old.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string();
    let code = env.fake.merge_patch(
        &lease_path(),
        &serde_json::json!({"spec": {"renewTime": old, "acquireTime": old}}),
    );
    assert_eq!(code, 200);
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains(&format!(
            "warning: took over the expired lock of stack `{NAME}`: "
        )),
        "{r}"
    );
    assert!(
        r.stderr.contains(&format!(" pid {dead} (apply) since ")),
        "{r}"
    );
    assert_converged_k(&env);
}

#[test]
fn a_409_on_the_state_write_stops_apply_keeps_what_it_applied_and_a_rerun_recovers() {
    let env = slow_env();
    let child = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let head = format!("/api/v1/namespaces/{STATE_NS}/secrets/raystack-state-{NAME}");
    wait_for(&env, &head, "the first state write");
    // Someone writes the state behind the lock's back (an old raystack, kubectl edit, ...).
    assert_eq!(
        env.fake.merge_patch(
            &head,
            &json!({"metadata": {"labels": {"edited-by": "hand"}}})
        ),
        200
    );
    let out = Run::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 1, "{out}");
    // The apply's progress on stderr depends on how far it got before the conflict: only the
    // refusal's parts are checked.
    assert!(out.stderr.contains("(409 Conflict)"), "{out}");
    assert!(out.stderr.contains("nothing was overwritten"), "{out}");
    assert!(
        out.stderr
            .contains("rerun the command, which records them from the cluster"),
        "{out}"
    );
    assert_eq!(
        env.fake.get(&head).unwrap()["metadata"]["labels"]["edited-by"],
        "hand",
        "the other writer's version was not overwritten"
    );
    // What apply did before the conflict is in the cluster.
    assert!(
        env.fake
            .get(&format!("/api/v1/namespaces/{NAME}"))
            .is_some()
    );
    let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
    assert_eq!(r.code, 0, "{r}");
    assert_converged_k(&env);
}

#[test]
fn plan_with_read_only_credentials_reads_state_without_the_lock_and_says_so() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack());
    env.apply();
    let r = env.run(&[
        "plan",
        env.stack_arg(),
        "--detailed-exitcode",
        "--context",
        "fake-readonly",
    ]);
    assert_eq!(r.code, 0, "{r}");
    insta::assert_snapshot!("plan_read_only_stdout", env.scrub(&r.stdout));
    insta::assert_snapshot!("plan_read_only_stderr", env.scrub(&r.stderr));
    // A change is planned too, with the same credentials.
    env.write_stack(&kubernetes_stack().replace("replicas = 1", "replicas = 2"));
    let r = env.run(&[
        "plan",
        env.stack_arg(),
        "--detailed-exitcode",
        "--context",
        "fake-readonly",
    ]);
    assert_eq!(r.code, 2, "{r}");
    // And an apply with them fails on the lock, naming the missing permission.
    let r = env.run(&[
        "apply",
        env.stack_arg(),
        "--auto-approve",
        "--context",
        "fake-readonly",
    ]);
    assert_eq!(r.code, 1, "{r}");
    insta::assert_snapshot!("apply_read_only_forbidden_stderr", env.scrub(&r.stderr));
}
