//! The integration tests of the `raystack` crate, as one test binary with a module per area.
//!
//! Every integration test binary links the whole dependency tree (kube, aws-lc, the cloud
//! SDKs), and on two cores linking dominates the build; sixteen binaries linked it sixteen
//! times, one binary links it once (build and test times: BENCHMARKS.md, "Build and test
//! cost"). So a new area is a new module here, not a new file in `tests/`. Run one area with a
//! filter, e.g. `cargo test --test e2e render_golden`.
//!
//! Insta snapshots live in `tests/e2e/snapshots/`, named `e2e__<module>__<name>.snap`.
//! The live suite (`live`) is `#[ignore]`d unless run on purpose, see `live.rs`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "tests report what they skip and what they saw"
)]

/// The fakes these tests start run in this process: they allocate as the `fake-apiserver`
/// binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Shared harnesses.
mod ray_support;
mod render_support;
mod support;

// Stack files: validation, input bounds, the diff command; usage errors.
mod diff_cli;
mod help_text;
mod input_bounds;
mod stack_validation;

// The source tree itself: module docs name paths that exist.
mod module_docs;
mod usage_exit;

// Rendering: golden YAML, schema and type validity, storage classes.
mod provider_storage;
mod render_alerts;
mod render_crd;
mod render_golden;
mod render_k8s_types;
mod render_node_pools;

// Redis and Ray on real processes.
mod ray_gcs_failover;
mod redis_conf;
mod redis_durability;

// README.md's transcripts, regenerated from the binary.
mod readme;

// The real binary against fake-apiserver.
mod autoscaler;
mod ci_state;
mod controllers;
mod examples;
mod faults;
mod fencing;
mod gcs_store;
mod import;
mod integrity;
mod interrupt;
mod kill;
mod kuberay;
mod ownership;
mod plan_apply;
mod preflight;
mod resilience;
mod review;
mod review_parity;
mod saved_plans;
mod state_cli;
mod state_fork;
mod state_kubernetes;
mod status_cli;
mod team;
mod verify_cli;

// Ray and Redis on real processes behind fake-apiserver: `raystack verify`.
mod verify_drill;

// The real binary against a real cluster (ignored unless RAYSTACK_LIVE_KUBECONFIG is set).
mod live;
