//! The kubernetes backend's storage: the state document in Secrets, read and written by the
//! backend and by a held [`KubernetesLock`] (whose lease is in `lease`).
//!
//! Layout. The head Secret `raystack-state-<stack>` (labels `raystack.dev/stack`,
//! `raystack.dev/state: head`) carries the lineage, serial and SHA-256 of the gzip'd state
//! document (the same JSON the local backend writes). A document that fits in one chunk is stored
//! in the head itself; a larger one is split into chunk Secrets
//! `raystack-state-<stack>-<serial>-<nonce>-<i>` (label `raystack.dev/state: chunk`) that the
//! head lists by name.
//!
//! Why a reader never sees a mix of two versions: chunk Secrets are written once and never
//! changed (each write makes new names), the head is switched to them in one write, and the old
//! chunks are deleted only after that. A reader reads the head, then the chunks it names; if a
//! chunk is gone, a writer switched the head meanwhile, and the reader starts over from the new
//! head (a head read again unchanged means the chunk is gone for good: the state is reported
//! corrupted, naming the chunk, rather than as a race to retry). What it assembles is checked
//! against the head's digest before it is parsed.
//!
//! Concurrency. Every head write carries the resourceVersion read (create when there was none),
//! so a write racing another fails with 409 Conflict and overwrites nothing; the lease keeps
//! honest runs from getting there, the precondition catches everything else. A write or a
//! retire first checks the lease is still held (`check_held`).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use sha2::{Digest, Sha256};

use super::{
    ANN_CHUNKS, ANN_DIGEST, ANN_LINEAGE, ANN_SERIAL, DATA_KEY, KubernetesBackend, KubernetesLock,
    LABEL_STACK, LABEL_STATE, READ_ATTEMPTS, SECRET_TYPE,
};
use crate::cluster::{ClusterError, Retry};
use crate::state::{State, StateError};

/// What the head said when it was read.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) resource_version: String,
    pub(super) lineage: String,
    pub(super) serial: u64,
    pub(super) chunks: Vec<String>,
}

impl KubernetesBackend {
    /// The head Secret as it is, if any.
    pub(super) async fn get_head(&self) -> Result<Option<Secret>, ClusterError> {
        self.cluster
            .send(
                "read",
                &self.secret_address(self.head_name()),
                Retry::BusyOrDropped,
                || self.secrets().get_opt(self.head_name()),
            )
            .await
    }

    /// The head and the document it names, read consistently (see the module doc).
    pub(super) async fn read_consistent(&self) -> Result<Option<(Head, State)>, StateError> {
        let location = self.head_location();
        // A chunk the head names that was missing, and the head's resourceVersion then: a
        // writer deletes a version's chunks only after switching the head, so the same head
        // read again means the chunk is gone for good, not that a writer raced this read.
        let mut missing: Option<(String, String)> = None;
        for _ in 0..READ_ATTEMPTS {
            let head = self
                .get_head()
                .await
                .map_err(|e| self.kube_err("read state", location.clone(), e))?;
            let Some(head) = head else {
                return Ok(None);
            };
            let parsed = self.parse_head(&head)?;
            if let Some((version, chunk)) = &missing
                && *version == parsed.resource_version
            {
                return Err(self.corrupt(format!(
                    "its chunk Secret `{chunk}` is missing though the head Secret still names it"
                )));
            }
            let digest = annotation(&head, ANN_DIGEST).unwrap_or_default();
            let bytes = if parsed.chunks.is_empty() {
                secret_data(&head)
                    .ok_or_else(|| self.corrupt("the head Secret has no data".into()))?
            } else {
                let mut bytes = Vec::new();
                let mut complete = true;
                for name in &parsed.chunks {
                    let chunk = self
                        .cluster
                        .send(
                            "read",
                            &self.secret_address(name),
                            Retry::BusyOrDropped,
                            || self.secrets().get_opt(name),
                        )
                        .await
                        .map_err(|e| self.kube_err("read state", location.clone(), e))?;
                    match chunk.as_ref().and_then(secret_data) {
                        Some(data) => bytes.extend_from_slice(&data),
                        None => {
                            missing = Some((parsed.resource_version.clone(), name.clone()));
                            complete = false;
                            break;
                        }
                    }
                }
                if !complete {
                    // A writer switched the head and removed these chunks: read the new head.
                    continue;
                }
                bytes
            };
            if hex::encode(Sha256::digest(&bytes)) != digest {
                if parsed.chunks.is_empty() {
                    return Err(self.corrupt("its content does not match its digest".into()));
                }
                continue;
            }
            let json = gunzip(&bytes).map_err(|e| self.corrupt(format!("it is not gzip ({e})")))?;
            let state = crate::state::local::parse_document(Path::new(&location), &json).map_err(
                |err| match err {
                    StateError::Corrupt { detail, .. } => self.corrupt(detail),
                    other => other,
                },
            )?;
            return Ok(Some((parsed, state)));
        }
        Err(StateError::Unstable(location))
    }

    pub(super) fn corrupt(&self, detail: String) -> StateError {
        StateError::StoredCorrupt {
            location: self.head_location(),
            detail,
        }
    }

    pub(super) fn parse_head(&self, head: &Secret) -> Result<Head, StateError> {
        let serial = annotation(head, ANN_SERIAL)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.corrupt(format!("the head has no `{ANN_SERIAL}` annotation")))?;
        let chunks = annotation(head, ANN_CHUNKS)
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Head {
            resource_version: head.metadata.resource_version.clone().unwrap_or_default(),
            lineage: annotation(head, ANN_LINEAGE).unwrap_or_default(),
            serial,
            chunks,
        })
    }

    /// Writes `state` (its serial already incremented) as the version after `previous`.
    /// Returns the new head.
    pub(super) async fn store(
        &self,
        previous: Option<&Head>,
        state: &State,
    ) -> Result<Head, StateError> {
        let location = self.head_location();
        let mut json = serde_json::to_vec_pretty(state).map_err(|e| StateError::Kube {
            action: "encode state".into(),
            location: location.clone(),
            code: None,
            message: e.to_string(),
        })?;
        json.push(b'\n');
        let gz = gzip(&json);
        let digest = hex::encode(Sha256::digest(&gz));
        let mut chunk_names = Vec::new();
        if gz.len() > self.chunk_bytes {
            let nonce = &uuid::Uuid::new_v4().simple().to_string()[..8];
            for (i, part) in gz.chunks(self.chunk_bytes).enumerate() {
                let name = format!("{}-{}-{nonce}-{i}", self.head_name(), state.serial);
                let mut labels = self.labels("chunk");
                labels.insert(ANN_SERIAL.to_owned(), state.serial.to_string());
                let chunk = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    type_: Some(SECRET_TYPE.to_owned()),
                    immutable: Some(true),
                    data: Some(BTreeMap::from([(
                        DATA_KEY.to_owned(),
                        ByteString(part.to_vec()),
                    )])),
                    ..Default::default()
                };
                // A create is not repeated after a dropped connection (it may have gone
                // through); a chunk that did is swept later.
                let pp = PostParams::default();
                let created = self
                    .cluster
                    .send("create", &self.secret_address(&name), Retry::Busy, || {
                        self.secrets().create(&pp, &chunk)
                    })
                    .await
                    .map_err(|e| self.kube_err("write a state chunk of", location.clone(), e));
                if let Err(err) = created {
                    self.delete_chunks(&chunk_names).await;
                    return Err(err);
                }
                chunk_names.push(name);
            }
        }
        let head = Secret {
            metadata: ObjectMeta {
                name: Some(self.head.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels("head")),
                annotations: Some(BTreeMap::from([
                    (ANN_LINEAGE.to_owned(), state.lineage.clone()),
                    (ANN_SERIAL.to_owned(), state.serial.to_string()),
                    (ANN_DIGEST.to_owned(), digest.clone()),
                    (ANN_CHUNKS.to_owned(), chunk_names.join(",")),
                ])),
                resource_version: previous.map(|h| h.resource_version.clone()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_owned()),
            data: chunk_names
                .is_empty()
                .then(|| BTreeMap::from([(DATA_KEY.to_owned(), ByteString(gz.clone()))])),
            ..Default::default()
        };
        let pp = PostParams::default();
        let address = self.secret_address(self.head_name());
        // A replace carries the resourceVersion read, so repeating it after a dropped
        // connection overwrites nothing: it answers 409 if the first attempt went through,
        // which `written_by_us` then tells from another writer's.
        let written = match previous {
            None => {
                self.cluster
                    .send("create", &address, Retry::BusyOrDropped, || {
                        self.secrets().create(&pp, &head)
                    })
                    .await
            }
            Some(_) => {
                self.cluster
                    .send("write", &address, Retry::BusyOrDropped, || {
                        self.secrets().replace(self.head_name(), &pp, &head)
                    })
                    .await
            }
        };
        let written = match written {
            Ok(secret) => secret,
            Err(ClusterError::Api { code: 409, .. }) => {
                match self.written_by_us(state, &digest).await {
                    Some(secret) => secret,
                    None => {
                        self.delete_chunks(&chunk_names).await;
                        return Err(StateError::Conflict(location));
                    }
                }
            }
            Err(e) => {
                self.delete_chunks(&chunk_names).await;
                return Err(self.kube_err("write state", location, e));
            }
        };
        // The new version is in place; the previous chunks belong to nobody now.
        if let Some(previous) = previous {
            self.delete_chunks(&previous.chunks).await;
        }
        Ok(Head {
            resource_version: written.metadata.resource_version.unwrap_or_default(),
            lineage: state.lineage.clone(),
            serial: state.serial,
            chunks: chunk_names,
        })
    }

    /// The head as it is, when it holds exactly the version `state` with `digest`: a write
    /// answered 409 went through on an attempt whose answer was lost.
    pub(super) async fn written_by_us(&self, state: &State, digest: &str) -> Option<Secret> {
        let head = self.get_head().await.ok()??;
        let ours = annotation(&head, ANN_LINEAGE).as_deref() == Some(state.lineage.as_str())
            && annotation(&head, ANN_SERIAL) == Some(state.serial.to_string())
            && annotation(&head, ANN_DIGEST).as_deref() == Some(digest);
        ours.then_some(head)
    }

    /// Best effort: a chunk left behind only wastes space, and `sweep` removes it later.
    pub(super) async fn delete_chunks(&self, names: &[String]) {
        let dp = DeleteParams::default();
        for name in names {
            let _ = self
                .cluster
                .send(
                    "delete",
                    &self.secret_address(name),
                    Retry::BusyOrDropped,
                    || self.secrets().delete(name, &dp),
                )
                .await;
        }
    }

    /// Removes chunk Secrets the head does not name (left by a writer that died between writing
    /// chunks and switching the head, or by a failed cleanup). Only runs under the lock.
    pub(super) async fn sweep(&self, head: Option<&Head>) {
        let selector = format!("{LABEL_STACK}={},{LABEL_STATE}=chunk", self.stack);
        let params = ListParams::default().labels(&selector);
        let address = format!("secrets -l {selector} in {}", self.namespace);
        let Ok(list) = self
            .cluster
            .send("list", &address, Retry::BusyOrDropped, || {
                self.secrets().list(&params)
            })
            .await
        else {
            return;
        };
        let orphans: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .filter(|n| head.is_none_or(|h| !h.chunks.contains(n)))
            .collect();
        self.delete_chunks(&orphans).await;
    }
}

impl KubernetesLock {
    pub(super) async fn read_locked(&mut self) -> Result<Option<State>, StateError> {
        let read = self.backend.read_consistent().await?;
        self.read_done = true;
        match read {
            Some((head, state)) => {
                self.backend.sweep(Some(&head)).await;
                self.head = Some(head);
                Ok(Some(state))
            }
            None => {
                self.head = None;
                Ok(None)
            }
        }
    }

    pub(super) async fn write_locked(&mut self, state: &mut State) -> Result<(), StateError> {
        self.check_held()?;
        if !self.read_done {
            self.read_locked().await?;
        }
        let location = self.backend.head_location();
        if let Some(head) = &self.head {
            if head.lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    path: location.into(),
                    ours: state.lineage.clone(),
                    on_disk: head.lineage.clone(),
                });
            }
            if head.serial > state.serial {
                return Err(StateError::StaleSerial {
                    path: location.into(),
                    ours: state.serial,
                    on_disk: head.serial,
                });
            }
        }
        state.serial += 1;
        match self.backend.store(self.head.as_ref(), state).await {
            Ok(head) => {
                self.head = Some(head);
                Ok(())
            }
            Err(err) => {
                state.serial -= 1;
                Err(err)
            }
        }
    }

    pub(super) async fn retire_locked(&mut self) -> Result<Option<std::path::PathBuf>, StateError> {
        self.check_held()?;
        if !self.read_done {
            self.read_locked().await?;
        }
        let Some(head) = self.head.take() else {
            return Ok(None);
        };
        let location = self.backend.head_location();
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(head.resource_version.clone()),
                uid: None,
            }),
            ..Default::default()
        };
        let api = self.backend.secrets();
        let address = self.backend.secret_address(self.backend.head_name());
        let deleted = self
            .backend
            .cluster
            .send("delete", &address, Retry::BusyOrDropped, || {
                api.delete(self.backend.head_name(), &dp)
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(ClusterError::Api { code: 409, .. }) => {
                self.head = Some(head);
                return Err(StateError::Conflict(location));
            }
            Err(ClusterError::Api { code: 404, .. }) => {}
            Err(e) => {
                self.head = Some(head);
                return Err(self.backend.kube_err("remove state", location, e));
            }
        }
        self.backend.delete_chunks(&head.chunks).await;
        Ok(None)
    }
}

pub(super) fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

pub(super) fn secret_data(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .map(|b| b.0.clone())
}

pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

pub(super) fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        let data = b"{\"format_version\": \"1\"}\n".repeat(1000);
        let gz = gzip(&data);
        assert!(gz.len() < data.len() / 10);
        assert_eq!(gunzip(&gz).unwrap(), data);
        assert!(gunzip(b"not gzip").is_err());
    }
}
