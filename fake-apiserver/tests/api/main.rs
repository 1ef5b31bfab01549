//! fake-apiserver's integration tests, one test binary (one link instead of eight): each module
//! drives a server started in-process through `common` (or the real kubectl, `kubectl`).

mod common;

mod autoscaler;
mod cluster;
mod crd_rules;
mod kubectl;
mod kuberay_finalizer;
mod kuberay_gcs_storage;
mod kuberay_recreate;
mod lifecycle;
mod limits_authz;
mod namespaces;
mod openapi;
mod pvc_protection;
mod rules;
mod ssa;
mod watch;
