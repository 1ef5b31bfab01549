//! Provider preflight checks (DESIGN §3): the cloud side through each provider crate (behind
//! its cargo feature) and the cluster side through the Kubernetes API. Returns plain findings;
//! never prints. (Interface fixed; implementation in progress.)

pub use raystack_provider::{Finding, Severity};

use crate::stack::Stack;

/// Runs every check that applies to `stack`. `kube` is `None` when planning offline or when no
/// cluster is reachable; cloud calls are skipped when `offline` is true (a finding says so).
pub async fn run(stack: &Stack, kube: Option<&kube::Client>, offline: bool) -> Vec<Finding> {
    let _ = (stack, kube);
    if offline {
        return vec![Finding::warning(
            stack.cluster.provider.name(),
            "offline",
            "planned offline: cloud and cluster checks were skipped",
            "run `raystack plan` without --offline to run them",
        )];
    }
    Vec::new()
}
