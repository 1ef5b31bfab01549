//! raystack: provision a fault-tolerant Ray cluster with a durable Redis on Kubernetes.
//!
//! The pipeline, one module per stage, dependencies pointing down only (the floors are in
//! `docs/design.md` §12): `stack` (parse, validate; no I/O) → `durability` (goals → Redis
//! settings) → `render` (stack → desired objects) → `plan` (pure diff, actions, ordering, plan
//! files) → `apply` (execute a plan, persist state after every step) and `verify` (the
//! fault-tolerance drill). `kind` is the vocabulary of object kinds (API names, scope, apply
//! order, immutable fields) that every stage shares; `cluster` holds all Kubernetes I/O,
//! `state` the state format, backends and locks, `revision` a stack file at a git revision
//! (the one room that runs `git`), `preflight` the provider checks, `memo` values computed once
//! per command. `engine` runs
//! each command from start to end without printing; `output` is every byte a user sees; `cli`
//! parses arguments and picks a view.

pub mod apply;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line writes what its views made"
)]
pub mod cli;
pub mod cluster;
pub mod durability;
pub mod engine;
pub mod import;
pub mod kind;
pub mod memo;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "every byte a user sees is written here"
)]
pub mod output;
pub mod plan;
pub mod preflight;
pub mod render;
pub mod revision;
pub mod stack;
pub mod state;
pub mod text;
pub mod verify;
