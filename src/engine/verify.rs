//! `verify`: getting a stack ready for the drill. Plans the stack (pending changes refuse the
//! drill), runs the drill's preflight, and holds the state lock until the drill ends, so no
//! apply changes the stack while its pods are disrupted. The drill itself is `crate::verify`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::{Engine, Mode};
use crate::cluster::Cluster;
use crate::plan::Action;
use crate::state::Lock;
use crate::verify::preflight::{self, Preflight};
use crate::verify::probe::Probe;
use crate::verify::report::{Disrupt, Report};
use crate::verify::{Options, Progress};

/// A stack ready for the drill: its preflight, the drill's options, the probe it will submit.
pub struct VerifyPrepared {
    pub preflight: Preflight,
    pub options: Options,
    pub probe: Probe,
    cluster: Cluster,
    /// Held until the drill ends.
    _lock: Option<Box<dyn Lock>>,
}

impl VerifyPrepared {
    /// Whether preflight found an error that forbids the drill.
    pub fn blocked(&self) -> bool {
        !self.preflight.blocking().is_empty()
    }

    /// Exactly what the drill would do, step by step (`--dry-run`).
    pub fn steps(&self) -> Vec<String> {
        crate::verify::dry_run_steps(&self.preflight, &self.options, &self.probe)
    }

    /// Runs the drill; a report comes back whether it passed, failed or broke off.
    pub async fn drill(self, progress: &mut dyn Progress) -> Report {
        crate::verify::drill(
            &self.cluster,
            self.preflight,
            self.options,
            self.probe,
            progress,
        )
        .await
    }
}

impl Engine {
    /// Plans the stack at `path` and runs the drill's preflight, under the state lock.
    pub async fn prepare_verify(
        &self,
        path: &Path,
        disrupt: Disrupt,
        timeout: Duration,
    ) -> anyhow::Result<VerifyPrepared> {
        let loaded = crate::render::load_with_bytes(path)?;
        // An embedded-backend stack has no Redis pod: `both` means the head there.
        let disrupt = crate::verify::disrupt_for(&loaded.0, disrupt)?;
        let prepared = self
            .prepare_listed(
                path,
                loaded,
                Mode::Plan { offline: false },
                "verify",
                None,
                true,
            )
            .await
            .with_context(|| format!("failed to plan `{}`", path.display()))?;
        let stack = prepared.stack;
        let plan = prepared.plan;
        let cluster = prepared.cluster.context("verify needs a cluster")?;
        let mut pending: Vec<String> = plan
            .resource_changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .map(|c| c.address.clone())
            .collect();
        pending.extend(plan.blocking_problems());
        let preflight = preflight::run(&cluster, &stack, disrupt, &pending).await;
        Ok(VerifyPrepared {
            preflight,
            options: Options { disrupt, timeout },
            probe: Probe::new(),
            cluster,
            _lock: prepared.lock,
        })
    }
}
