//! How the simulated controllers are set up and what they have running, as the store holds it:
//! the KubeRay cleanup Job's behaviour ([`CleanupJob`]) and the pod delete hooks
//! (`--on-pod-delete SELECTOR:COMMAND`, [`Hook`]) with the ones started ([`Lifecycle`]).
//! Plain data and child processes only: the controllers that act on the store
//! ([`crate::controllers`], [`crate::controllers::kuberay`], [`crate::controllers::lifecycle`], [`crate::controllers::namespaces`],
//! [`crate::controllers::pvc_protection`], [`crate::controllers::autoscaler`]) sit above the store.

use crate::store::key::Key;
use crate::util::{get, get_str, warn};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the simulated KubeRay cleanup Job behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupJob {
    /// How long the Job runs before it completes (or fails).
    pub delay: Duration,
    /// The Job fails instead of completing (Redis unreachable, wrong password, ...).
    pub fail: bool,
}

impl Default for CleanupJob {
    fn default() -> CleanupJob {
        CleanupJob {
            delay: Duration::from_millis(200),
            fail: false,
        }
    }
}

/// One `--on-pod-delete SELECTOR:COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Equality requirements (`k=v,k2=v2`), the selector form hooks need.
    pub selector: Vec<(String, String)>,
    pub command: String,
}

impl std::str::FromStr for Hook {
    type Err = String;
    fn from_str(s: &str) -> Result<Hook, String> {
        let usage = || format!("expected LABEL=VALUE[,LABEL=VALUE]:COMMAND, got {s:?}");
        // Label keys and values cannot hold ':', so the first one ends the selector.
        let (sel, command) = s.split_once(':').ok_or_else(usage)?;
        let selector = sel
            .split(',')
            .map(|req| {
                req.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(usage)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if command.trim().is_empty() {
            return Err(usage());
        }
        Ok(Hook {
            selector,
            command: command.to_string(),
        })
    }
}

impl Hook {
    fn matches(&self, pod: &Value) -> bool {
        let labels = get(pod, &["metadata", "labels"]).and_then(Value::as_object);
        self.selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str()))
    }
}

/// A hook that was started and the owner whose pod it replaces.
#[derive(Debug)]
struct Running {
    owner: Option<Key>,
    pod: String,
    child: Option<Child>,
    /// `Some(success)` once it exited.
    done: Option<bool>,
}

/// The configured hooks and the ones running.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub hooks: Vec<Hook>,
    running: Vec<Running>,
}

impl Lifecycle {
    /// Notes finished hooks (non-blocking).
    pub fn poll(&mut self) {
        for r in &mut self.running {
            if r.done.is_some() {
                continue;
            }
            if let Some(child) = r.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                if !status.success() {
                    warn(format_args!(
                        "the delete hook of pod {} exited with {status}; its replacement stays not ready",
                        r.pod
                    ));
                }
                r.done = Some(status.success());
            }
        }
        // Forget succeeded hooks; failed ones keep blocking their owner.
        self.running.retain(|r| r.done != Some(true));
    }

    /// No hook is running (or failed and still holding its owner back).
    pub fn idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Whether a hook still holds back `owner`'s replacement pod.
    pub fn blocks(&self, owner: &Key) -> bool {
        self.running.iter().any(|r| r.owner.as_ref() == Some(owner))
    }

    /// Starts every hook whose selector matches the deleted `pod` (`sh -c COMMAND` with
    /// `POD_NAMESPACE`, `POD_NAME` and `POD_UID` set), on behalf of its controller `owner`.
    pub fn run_hooks(&mut self, pod: &Value, owner: Option<Key>) {
        let field = |f: &str| {
            get_str(pod, &["metadata", f])
                .unwrap_or_default()
                .to_string()
        };
        let (ns, name, uid) = (field("namespace"), field("name"), field("uid"));
        for h in self.hooks.iter().filter(|h| h.matches(pod)) {
            let child = Command::new("sh")
                .arg("-c")
                .arg(&h.command)
                .env("POD_NAMESPACE", &ns)
                .env("POD_NAME", &name)
                .env("POD_UID", &uid)
                .stdin(Stdio::null())
                .spawn();
            let (child, done) = match child {
                Ok(c) => (Some(c), None),
                Err(e) => {
                    warn(format_args!(
                        "cannot run the delete hook of pod {name}: {e}"
                    ));
                    (None, Some(false))
                }
            };
            self.running.push(Running {
                owner: owner.clone(),
                pod: format!("{ns}/{name}"),
                child,
                done,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hooks_parse() {
        let h: Hook = "app.kubernetes.io/name=redis,tier=db:kill -9 $(cat pid) && ./start"
            .parse()
            .unwrap();
        assert_eq!(
            h.selector,
            vec![
                ("app.kubernetes.io/name".to_string(), "redis".to_string()),
                ("tier".to_string(), "db".to_string())
            ]
        );
        assert_eq!(h.command, "kill -9 $(cat pid) && ./start");
        assert!("noselector".parse::<Hook>().is_err());
        assert!("a=b:".parse::<Hook>().is_err());
        assert!(h.matches(
            &json!({"metadata": {"labels": {"app.kubernetes.io/name": "redis", "tier": "db"}}})
        ));
        assert!(!h.matches(&json!({"metadata": {"labels": {"app.kubernetes.io/name": "redis"}}})));
    }
}
