//! An in-memory Kubernetes API server over loopback HTTP, for raystack's tests and benchmarks.
//!
//! [`faults::FaultProxy`] is a small proxy to put between a client and this server that delays,
//! drops, blackholes or answers errors for chosen requests.
//!
//! Start one with [`Server::bind`] and [`Server::serve`] (the `fake-apiserver` binary is a thin wrapper
//! around them), or, in a test, with [`testing::FakeApiServer`].
//!
//! # Layout
//! Three wings over two shared helpers (`error`, `util`): `http/` (what a client talks to),
//! `ops/` (the verbs, as a real apiserver's registry runs them), `controllers/` (the simulated
//! controllers) and `store/` (admission, field ownership and the stored objects), each
//! depending only on the ones after it; `faults` and `testing` are tools for tests.
//!
//! # What it emulates
//! - The REST surface for the kinds raystack uses: Namespace, Secret, ConfigMap, PersistentVolumeClaim,
//!   Service, Pod, StatefulSet, NetworkPolicy, StorageClass, Lease and CustomResourceDefinition, plus every
//!   kind a stored CRD defines (RayCluster from KubeRay's CRD). Discovery (`/api`, `/apis`, ...), `/version`,
//!   and the OpenAPI documents (`/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/<group>/<version>`) that
//!   `kubectl apply`, `diff`, `explain` and client-side validation read.
//! - get, list (label and field selectors), create (`generateName` too), replace, delete (preconditions,
//!   orphan or cascading propagation: namespace contents, owned objects, a CRD's instances),
//!   deletecollection, and the status subresource.
//! - Every patch type: server-side apply with managedFields, field ownership, conflicts and `force`;
//!   JSON merge, strategic merge and JSON patch. `dryRun=All`, `fieldValidation`, `fieldManager`.
//! - What a real apiserver's registry adds: uid, resourceVersion, generation, creationTimestamp; built-in
//!   defaulting (Service IPs and node ports, pod and StatefulSet template defaults, default StorageClass);
//!   CRD structural pruning, schema defaults and validation; immutable fields; PVC resize admission;
//!   no-op writes that keep the resourceVersion; Status error bodies with the real reasons and messages.
//! - Simulated controllers, run lazily before each request after a configurable delay: PVC binding
//!   (Immediate and WaitForFirstConsumer) and expansion, a scheduler (a pod whose claim is missing or
//!   being deleted waits unscheduled), the StatefulSet controller (pods, claims from templates,
//!   status), the namespace controller (a deleted namespace is `Terminating` until its contents are
//!   gone through their finalizers; creates in it are refused), `kubernetes.io/pvc-protection`, and
//!   the KubeRay operator (head pod, head Service, RayCluster status, the Redis cleanup finalizer with
//!   its Job on deletion, 1.7's `<cluster>-gcs-pvc` for the embedded GCS per `deletionPolicy`, and
//!   `upgradeStrategy: Recreate`), and, when asked for ([`Options::simulate_autoscaler`]), the Ray
//!   autoscaler scaling autoscaled worker groups.
//! - A CRD's `x-kubernetes-validations` CEL rules, transition rules (`oldSelf`) included, answering
//!   422 as kube-apiserver does.
//! - The services/proxy subresource (`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/...`),
//!   forwarded to a local URL per Service port ([`Options::service_proxy`], `--service-proxy`), with a
//!   real API server's 404 (no Service) and 503 (no ready pod behind it).
//! - Pod delete hooks ([`Options::on_pod_delete`], `--on-pod-delete`): a command run when a matching pod
//!   is deleted, so a test can kill and restart the local process the pod stands for; the pod's
//!   controller reports not ready at once and recreates the pod, ready once the command exits 0.
//! - Size limits: a request body over 3 MiB (413), Secret or ConfigMap data over 1 MiB (422), an object over
//!   etcd's 1.5 MiB (500), as a real apiserver answers them.
//! - An audit log (`--audit-log-path`): one `audit.k8s.io/v1` Event per request (verb, URI, user,
//!   response code) as JSON lines, for tests that assert which requests a client made.
//! - Watch (`?watch=true`): ADDED, MODIFIED and DELETED events as chunked JSON lines, until
//!   `timeoutSeconds`; `kubectl get --watch` and `kubectl wait` work.
//! - One RBAC rule: the kubeconfig's `fake-readonly` context carries a token that may only get, list and
//!   watch (403 Forbidden otherwise, with the real message).
//!
//! # What it does not
//! - No watch history: a watch compares snapshots of the store (`src/ops/watch.rs`), so two writes
//!   between its looks are one MODIFIED event. No authentication or authorization beyond the read-only
//!   token (any other bearer token is accepted), no TLS, no HTTP/2. Request bodies are JSON (YAML for
//!   apply), or protobuf for the kinds kubectl's typed `create` subcommands send (Namespace, ConfigMap,
//!   Secret, Service); no CBOR. Responses are always JSON.
//! - No version conversion beyond the `apiVersion` field, no admission webhooks. Finalizers hold an
//!   object with a `deletionTimestamp` until a write removes the last one; the simulated controllers
//!   remove their own (KubeRay's Redis cleanup, `kubernetes.io/pvc-protection`, a namespace's
//!   `kubernetes`), others wait for a client. No garbage collector beyond the cascade at delete
//!   time, no kubelet or real containers: pods are marked running once scheduled.
//! - Only the kinds listed above; other built-in kinds are unknown resources (404).
//! - OpenAPI documents are JSON only: kubectl's request for `/openapi/v2` in protobuf gets 406 Not
//!   Acceptable, which it tolerates (it reads `/openapi/v3`, served in JSON, for everything it needs).

mod controllers;
mod error;
pub mod faults;
mod http;
mod ops;
mod store;
pub mod testing;
mod util;

pub use controllers::kuberay;
pub use http::authz::{READ_ONLY_TOKEN, READ_ONLY_USER};
pub use http::proxy::Route as ProxyRoute;
pub use http::server::{Error, Options, Server, kubeconfig};
pub use store::controller_state::Hook as PodHook;
