//! The kubernetes state backend against fake-apiserver: round trips, chunking (and the old
//! chunks' cleanup), a reader racing a writer, 409 on a write behind the lock's back, and the
//! Lease lock (held, renewed, expired and taken over, force-unlocked).

use std::time::Duration;

use raystack::kind::{Kind, ObjectRef};
use raystack::state::{
    Backend, KubernetesBackend, LeaseClock, LockHolder, ResourceState, State, StateError,
};
use serde_json::json;

use crate::support::Fake;

const NS: &str = "raystack-system";

async fn backend(fake: &Fake, stack: &str) -> KubernetesBackend {
    let cluster = raystack::cluster::connect(Some(&fake.kubeconfig), None)
        .await
        .unwrap();
    KubernetesBackend::new(cluster, NS, stack)
}

fn start() -> (tempfile::TempDir, Fake) {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start(dir.path(), &[]);
    (dir, fake)
}

/// A state with `n` records whose hashes are random, so gzip cannot shrink them much.
fn big_state(stack: &str, n: usize, tag: &str) -> State {
    let mut state = State::new(stack);
    for i in 0..n {
        let name = format!("cm-{i}");
        let object = ObjectRef::new(Kind::ConfigMap, Some("ray"), &name);
        state.upsert_resource(ResourceState {
            address: object.address(),
            object,
            uid: uuid::Uuid::new_v4().to_string(),
            resource_version: tag.to_owned(),
            applied_hash: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        });
    }
    state
}

fn secret_names(fake: &Fake, stack: &str) -> Vec<String> {
    let mut names = fake.list_names(&format!(
        "/api/v1/namespaces/{NS}/secrets?labelSelector=raystack.dev%2Fstack%3D{stack}"
    ));
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_state_round_trips_in_one_labelled_secret_in_a_namespace_it_creates() {
    let (_dir, fake) = start();
    let b = backend(&fake, "small").await;
    assert_eq!(b.read().await.unwrap(), None);
    let mut lock = b.lock("apply").await.unwrap();
    assert!(lock.notes().is_empty());
    assert_eq!(lock.read().await.unwrap(), None);
    let mut state = big_state("small", 3, "1");
    state.set_secret_fingerprint("redis-password", b"never-stored-value");
    lock.write(&mut state).await.unwrap();
    lock.write(&mut state).await.unwrap();
    assert_eq!(state.serial, 2);
    assert_eq!(b.read().await.unwrap().as_ref(), Some(&state));

    assert_eq!(secret_names(&fake, "small"), ["raystack-state-small"]);
    let head = fake
        .get(&format!(
            "/api/v1/namespaces/{NS}/secrets/raystack-state-small"
        ))
        .unwrap();
    assert_eq!(head["metadata"]["labels"]["raystack.dev/state"], "head");
    assert_eq!(head["metadata"]["labels"]["raystack.dev/stack"], "small");
    assert_eq!(head["metadata"]["annotations"]["raystack.dev/serial"], "2");
    assert_eq!(
        head["metadata"]["annotations"]["raystack.dev/lineage"],
        json!(state.lineage)
    );
    assert!(!head.to_string().contains("never-stored-value"));
    let ns = fake.get(&format!("/api/v1/namespaces/{NS}")).unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "raystack"
    );
    lock.release().await.unwrap();
    assert!(
        fake.get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/raystack-lock-small"
        ))
        .is_none(),
        "release deletes the lease"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_over_one_mebibyte_is_chunked_and_old_chunks_are_removed() {
    let (_dir, fake) = start();
    let b = backend(&fake, "big").await;
    let mut lock = b.lock("apply").await.unwrap();
    // ~20,000 records with random hashes: well over 1 MiB even gzip'd.
    let mut state = big_state("big", 20_000, "1");
    lock.write(&mut state).await.unwrap();
    let first = secret_names(&fake, "big");
    assert!(
        first.len() >= 3,
        "expected the head and at least two chunks: {first:?}"
    );
    assert_eq!(b.read().await.unwrap().as_ref(), Some(&state));

    for r in &mut state.resources {
        r.resource_version = "2".into();
    }
    lock.write(&mut state).await.unwrap();
    let second = secret_names(&fake, "big");
    assert_eq!(second.len(), first.len());
    let old_chunks: Vec<_> = first
        .iter()
        .filter(|n| *n != "raystack-state-big")
        .collect();
    assert!(
        old_chunks.iter().all(|n| !second.contains(n)),
        "old chunks deleted: {first:?} -> {second:?}"
    );
    assert_eq!(b.read().await.unwrap().as_ref(), Some(&state));
    lock.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_racing_a_writer_never_sees_a_mix_of_versions() {
    let (_dir, fake) = start();
    // Small chunks: every version spans many Secrets, so a mixed read would be easy to get.
    let b = backend(&fake, "race").await.with_chunk_bytes(2_000);
    let mut lock = b.lock("apply").await.unwrap();
    let mut state = big_state("race", 300, "v0");
    lock.write(&mut state).await.unwrap();
    let writer = tokio::spawn(async move {
        for version in 1..=25 {
            for r in &mut state.resources {
                r.resource_version = format!("v{version}");
            }
            lock.write(&mut state).await.unwrap();
        }
        lock.release().await.unwrap();
    });
    let mut reads = 0;
    let mut versions = std::collections::BTreeSet::new();
    while !writer.is_finished() && reads < 2_000 {
        let read = b.read().await.unwrap().expect("state exists");
        let tags: std::collections::BTreeSet<_> = read
            .resources
            .iter()
            .map(|r| r.resource_version.clone())
            .collect();
        assert_eq!(
            tags.len(),
            1,
            "a mixed read at serial {}: {tags:?}",
            read.serial
        );
        versions.extend(tags);
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    assert!(
        versions.len() > 1,
        "the reader saw only {versions:?} in {reads} reads; the race was not exercised"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_after_someone_else_wrote_fails_with_409_and_overwrites_nothing() {
    let (_dir, fake) = start();
    let b = backend(&fake, "cas").await;
    let mut lock = b.lock("apply").await.unwrap();
    let mut state = big_state("cas", 2, "1");
    lock.write(&mut state).await.unwrap();
    // Someone ignores the lock and changes the head.
    let path = format!("/api/v1/namespaces/{NS}/secrets/raystack-state-cas");
    assert_eq!(
        fake.merge_patch(&path, &json!({"metadata": {"labels": {"touched": "yes"}}})),
        200
    );
    let before = fake.get(&path).unwrap();
    state.upsert_resource(big_state("cas", 1, "x").resources.remove(0));
    let err = lock.write(&mut state).await.unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("409 Conflict"), "{msg}");
    assert!(msg.contains("rerun the command"), "{msg}");
    assert_eq!(state.serial, 1, "serial unchanged on error");
    assert_eq!(fake.get(&path).unwrap(), before, "nothing overwritten");
    lock.release().await.unwrap();
}

fn lease_path(stack: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/raystack-lock-{stack}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lease_is_renewed_and_stops_a_second_run_naming_its_holder() {
    let (_dir, fake) = start();
    let b = backend(&fake, "held").await.with_lease_seconds(3);
    let lock = b.lock("apply").await.unwrap();
    let first = fake.get(&lease_path("held")).unwrap();
    assert_eq!(first["spec"]["leaseDurationSeconds"], 3);
    let identity = first["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    assert!(
        identity.ends_with(&format!(" pid {} (apply)", std::process::id())),
        "{identity}"
    );
    assert!(identity.contains('@'), "{identity}");
    // Outlive the duration: wait (bounded) until a renewal lands a whole lease duration after
    // the first one. The lease is then held on the renewals alone, and the second lock is
    // tried right after one of them, not after a fixed sleep that a busy machine could stretch
    // past the lease.
    let time = |lease: &serde_json::Value| -> k8s_openapi::jiff::Timestamp {
        lease["spec"]["renewTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let outlived = time(&first) + k8s_openapi::jiff::SignedDuration::from_secs(3);
    let mut polls = 0;
    while time(&fake.get(&lease_path("held")).unwrap()) < outlived {
        polls += 1;
        assert!(polls < 1_200, "the lease was not renewed for a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = match b.lock("plan").await {
        Err(err) => err,
        Ok(_) => panic!("a second lock was granted"),
    };
    let StateError::LeaseHeld { holder, .. } = &err else {
        panic!("expected LeaseHeld, got {err:?}");
    };
    assert_eq!(holder.id, lock.holder().id);
    assert_eq!(holder.who, identity);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "stack `held` is locked: lease `{NS}/raystack-lock-held` is held by {identity} since "
        )),
        "{msg}"
    );
    assert!(msg.contains(", and expires at "), "{msg}");
    assert!(
        msg.ends_with(&format!("run `raystack force-unlock STACK {}`", holder.id)),
        "{msg}"
    );
    lock.release().await.unwrap();
    b.lock("plan").await.unwrap().release().await.unwrap();
}

/// Writes a Lease as a dead run would have left it: renewed `age` seconds ago.
fn plant_lease(fake: &Fake, stack: &str, age_secs: u64, duration: u32) {
    let renewed = std::time::SystemTime::now() - Duration::from_secs(age_secs);
    let secs = renewed
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = k8s_openapi::jiff::Timestamp::from_second(secs as i64).unwrap();
    let time = format!("{}", ts.strftime("%Y-%m-%dT%H:%M:%S.000000Z"));
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("raystack-lock-{stack}"), "namespace": NS,
                     "annotations": {"raystack.dev/lock-id": "dead-beef",
                                     "raystack.dev/operation": "apply"}},
        "spec": {"holderIdentity": "bob@ci-runner pid 4242 (apply)",
                 "leaseDurationSeconds": duration, "acquireTime": time, "renewTime": time}
    });
    let (code, text) = fake.request(
        "POST",
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(code, 201, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_taken_over_with_a_warning_naming_the_previous_holder() {
    let (_dir, fake) = start();
    let b = backend(&fake, "stale").await;
    b.lock("apply").await.unwrap().release().await.unwrap(); // creates the namespace
    plant_lease(&fake, "stale", 120, 60);
    assert_eq!(
        b.holder().await.unwrap(),
        None,
        "an expired lease holds nothing"
    );
    let lock = b.lock("apply").await.unwrap();
    let notes = lock.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "took over the expired lock of stack `stale`: bob@ci-runner pid 4242 (apply) since "
        ),
        "{notes:?}"
    );
    assert!(
        notes[0].contains("(lock ID dead-beef) stopped renewing it"),
        "{notes:?}"
    );
    let lease = fake.get(&lease_path("stale")).unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    lock.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn force_unlock_refuses_a_wrong_id_and_releases_the_right_one() {
    let (_dir, fake) = start();
    let b = backend(&fake, "stuck").await;
    b.lock("apply").await.unwrap().release().await.unwrap();
    plant_lease(&fake, "stuck", 0, 600);
    let holder: LockHolder = b.holder().await.unwrap().expect("held");
    assert_eq!(holder.id, "dead-beef");
    let err = b.force_unlock("not-it").await.unwrap_err();
    assert!(matches!(err, StateError::WrongLockId { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "refusing to unlock: lock ID `not-it` is not the current lock, which is bob@ci-runner pid 4242 (apply) since "
        ),
        "{err}"
    );
    assert!(fake.get(&lease_path("stuck")).is_some());
    let released = b.force_unlock("dead-beef").await.unwrap();
    assert_eq!(released, holder);
    assert!(fake.get(&lease_path("stuck")).is_none());
    let err = b.force_unlock("dead-beef").await.unwrap_err();
    assert!(matches!(err, StateError::NotLocked(_)), "{err:?}");
    b.lock("apply").await.unwrap().release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_that_was_force_unlocked_stops_writing() {
    let (_dir, fake) = start();
    let clock = LeaseClock::default();
    let b = backend(&fake, "lost")
        .await
        .with_lease_seconds(1)
        .with_lease_clock(clock.clone());
    let mut lock = b.lock("apply").await.unwrap();
    let mut state = big_state("lost", 1, "1");
    lock.write(&mut state).await.unwrap();
    let id = lock.holder().id.clone();
    b.force_unlock(&id).await.unwrap();
    // Time passing is the input here, not a wait for something: the last renewal came before
    // the force-unlock (none can succeed after it), so once the lease clock is more than a
    // lease duration past it the write refuses whether or not the renewer has noticed yet (a
    // lapsed lease counts as lost).
    clock.advance(Duration::from_millis(1_200));
    let err = lock.write(&mut state).await.unwrap_err();
    assert!(matches!(err, StateError::LockLost(_)), "{err:?}");
    assert_eq!(b.read().await.unwrap().unwrap().serial, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_that_is_gone_for_good_is_reported_as_missing_not_as_a_race() {
    let (_dir, fake) = start();
    let b = backend(&fake, "lostchunk").await.with_chunk_bytes(2_000);
    let mut lock = b.lock("apply").await.unwrap();
    let mut state = big_state("lostchunk", 100, "1");
    lock.write(&mut state).await.unwrap();
    lock.release().await.unwrap();
    let chunks: Vec<String> = secret_names(&fake, "lostchunk")
        .into_iter()
        .filter(|n| n != "raystack-state-lostchunk")
        .collect();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let gone = &chunks[1];
    let (code, text) = fake.request(
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/secrets/{gone}"),
        "application/json",
        "",
    );
    assert_eq!(code, 200, "{text}");
    let err = b.read().await.unwrap_err();
    assert!(matches!(err, StateError::StoredCorrupt { .. }), "{err:?}");
    assert_eq!(
        err.to_string()
            .replace(fake.url.trim_end_matches('/'), "URL"),
        format!(
            "state Secret `{NS}/raystack-state-lostchunk` (on URL/) is corrupted: its chunk Secret \
             `{gone}` is missing though the head Secret still names it; `raystack state pull` on \
             a copy, or restore it from a backup of the namespace"
        )
    );
}
