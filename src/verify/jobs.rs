//! Ray's job submission REST API (the dashboard's `/api/jobs/`), spoken through the API
//! server's service proxy. Shapes as Ray 2.x serves them: `POST /api/jobs/` with
//! `{entrypoint, submission_id, metadata}`, `GET /api/jobs/{id}` (a job's details, `status` one
//! of PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED), `GET /api/jobs/{id}/logs` (`{"logs": …}`),
//! `DELETE /api/jobs/{id}` (a finished job's record), `GET /api/version` (`ray_version`).
//! Every request has a deadline; waits are bounded by the caller's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::VerifyError;
use crate::cluster::Cluster;
use crate::cluster::live::{ProxyResponse, ServicePort};

/// The deadline of one request through the proxy.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(1);

/// A job's state as the job API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub status: String,
    pub message: String,
}

impl JobInfo {
    pub fn terminal(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED" | "STOPPED")
    }
}

/// The head's job API behind the service proxy.
pub struct Jobs<'a> {
    pub cluster: &'a Cluster,
    pub dashboard: ServicePort,
}

/// The first line of a response body, shortened: Ray answers errors with tracebacks.
pub fn brief(body: &str) -> String {
    let line = body
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    }
}

impl Jobs<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ProxyResponse, VerifyError> {
        match tokio::time::timeout(
            REQUEST_DEADLINE,
            self.cluster.proxy(&self.dashboard, method, path, body),
        )
        .await
        {
            Ok(r) => Ok(r?),
            Err(_) => Err(VerifyError::Deadline {
                what: format!("an answer to {method} {}", self.dashboard.proxy_path(path)),
                after: REQUEST_DEADLINE,
            }),
        }
    }

    fn unexpected(&self, what: &str, r: &ProxyResponse) -> VerifyError {
        VerifyError::Ray {
            what: what.to_string(),
            status: r.status,
            body: brief(&r.body),
        }
    }

    /// The Ray version the dashboard reports, or the failed answer.
    pub async fn version(&self) -> Result<Result<String, ProxyResponse>, VerifyError> {
        let r = self.call("GET", "/api/version", None).await?;
        if !r.ok() {
            return Ok(Err(r));
        }
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        Ok(Ok(v
            .get("ray_version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()))
    }

    /// Whether the job API answers (it needs the GCS): `GET /api/jobs/` is 200.
    pub async fn answering(&self) -> Result<bool, VerifyError> {
        Ok(self.call("GET", "/api/jobs/", None).await?.ok())
    }

    /// Submits a job, retrying until `deadline` while the head is not ready for it: the
    /// proxy's 502/503 while the head has no ready endpoint, and Ray's 500 "No available agent
    /// to submit job" while a new head's job agent registers.
    pub async fn submit(
        &self,
        id: &str,
        entrypoint: &str,
        run: &str,
        deadline: Instant,
    ) -> Result<(), VerifyError> {
        let body = json!({
            "entrypoint": entrypoint,
            "submission_id": id,
            "metadata": {"raystack.dev/verify": run},
        });
        loop {
            let r = match self.call("POST", "/api/jobs/", Some(&body)).await {
                Ok(r) => r,
                // A head still starting can hold the request while its job agent registers;
                // ask again (a retry that finds the job says so below).
                Err(VerifyError::Deadline { .. }) if Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            };
            // The run id is random: an existing job of this id is an earlier attempt's.
            if r.ok() || (r.status == 400 && r.body.contains("already exists")) {
                return Ok(());
            }
            let retry = matches!(r.status, 502..=504)
                || (r.status == 500 && r.body.contains("No available agent"));
            if !retry {
                return Err(self.unexpected(&format!("submitting job `{id}`"), &r));
            }
            if Instant::now() >= deadline {
                return Err(VerifyError::Deadline {
                    what: format!(
                        "the job API to accept job `{id}` (last answer: {} {})",
                        r.status,
                        brief(&r.body)
                    ),
                    after: Duration::ZERO,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The job's record, or `None` when the job API does not know it (404).
    pub async fn status(&self, id: &str) -> Result<Option<JobInfo>, VerifyError> {
        let r = self.call("GET", &format!("/api/jobs/{id}"), None).await?;
        if r.status == 404 {
            return Ok(None);
        }
        if !r.ok() {
            return Err(self.unexpected(&format!("reading job `{id}`"), &r));
        }
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        Ok(Some(JobInfo {
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_string(),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// The job's record, asking again until `deadline` while the proxy has no head to reach
    /// (502–504: a head container restarting after its GCS lost Redis, say).
    pub async fn status_until(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<JobInfo>, VerifyError> {
        loop {
            match self.status(id).await {
                Err(VerifyError::Ray { status, .. })
                    if matches!(status, 502..=504) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL).await
                }
                other => return other,
            }
        }
    }

    /// Waits until the job has finished, or `deadline`.
    pub async fn wait_finished(&self, id: &str, deadline: Instant) -> Result<JobInfo, VerifyError> {
        let started = Instant::now();
        loop {
            let last = match self.status(id).await {
                Ok(Some(info)) if info.terminal() => return Ok(info),
                Ok(Some(info)) => info.status,
                Ok(None) => "not found".to_string(),
                // The proxy answers 503 for a moment while the head changes: keep waiting.
                Err(VerifyError::Ray { status, .. }) if matches!(status, 502..=504) => {
                    format!("{status}")
                }
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(VerifyError::Deadline {
                    what: format!("job `{id}` to finish (last status: {last})"),
                    after: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The job's logs (its driver's output).
    pub async fn logs(&self, id: &str) -> Result<String, VerifyError> {
        let r = self
            .call("GET", &format!("/api/jobs/{id}/logs"), None)
            .await?;
        if !r.ok() {
            return Err(self.unexpected(&format!("reading the logs of job `{id}`"), &r));
        }
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        Ok(v.get("logs")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Deletes a finished job's record; `false` when there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, VerifyError> {
        let r = self
            .call("DELETE", &format!("/api/jobs/{id}"), None)
            .await?;
        match r.status {
            404 => Ok(false),
            _ if r.ok() => Ok(true),
            _ => Err(self.unexpected(&format!("deleting job `{id}`"), &r)),
        }
    }

    /// Stops a job that is still running (best effort, before deleting its record).
    pub async fn stop(&self, id: &str) -> Result<(), VerifyError> {
        let r = self
            .call("POST", &format!("/api/jobs/{id}/stop"), None)
            .await?;
        if r.ok() || r.status == 404 {
            Ok(())
        } else {
            Err(self.unexpected(&format!("stopping job `{id}`"), &r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_keeps_the_last_line_of_a_traceback() {
        let tb = "Traceback (most recent call last):\n  File \"x\"\nValueError: bad\n\n";
        assert_eq!(brief(tb), "ValueError: bad");
        assert_eq!(brief(&"x".repeat(300)).chars().count(), 201);
    }
}
