//! Plans (docs/design.md §6): the plan model, the pure diff engine, ordering, ownership and plan
//! files. Nothing here talks to a cluster or prints; its only I/O is reading and writing a plan
//! file (`model`). `crate::engine` gathers the inputs, `crate::output` renders.

pub mod autoscaler;
pub mod binding;
pub mod compare;
pub mod diff;
pub mod hidden;
pub mod kuberay;
pub mod model;
pub mod ownership;
pub mod project;
pub mod review;

pub use compare::compare;
pub use diff::{
    DryRun, FIELD_MANAGER, ObjectInputs, PASSWORD_DRIFT_REASON, PasswordFacts, classify,
    execution_order,
};
pub use model::{
    Action, Binding, FORMAT_VERSION, Plan, PlanFileError, ResourceChange, Summary,
    looks_like_plan_file, read_plan_file, write_plan_file,
};
