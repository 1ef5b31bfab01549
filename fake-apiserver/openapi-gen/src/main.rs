//! Prints fake-apiserver's built-in OpenAPI schemas as JSON: the JSON Schema (draft 7 flavour, references
//! under `#/definitions/`) of every built-in kind fake-apiserver serves and everything they refer to, as
//! k8s-openapi describes the Kubernetes 1.33 API types. fake-apiserver adds the Kubernetes extensions and
//! the OpenAPI 3 form at run time.

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use schemars::generate::SchemaSettings;
use serde_json::json;

fn main() {
    let mut g = SchemaSettings::draft07().into_generator();
    g.subschema_for::<api::core::v1::Namespace>();
    g.subschema_for::<api::core::v1::Secret>();
    g.subschema_for::<api::core::v1::ConfigMap>();
    g.subschema_for::<api::core::v1::PersistentVolumeClaim>();
    g.subschema_for::<api::core::v1::Service>();
    g.subschema_for::<api::core::v1::Pod>();
    g.subschema_for::<api::apps::v1::StatefulSet>();
    g.subschema_for::<api::networking::v1::NetworkPolicy>();
    g.subschema_for::<api::storage::v1::StorageClass>();
    g.subschema_for::<api::coordination::v1::Lease>();
    g.subschema_for::<apiext::CustomResourceDefinition>();
    let definitions = g.take_definitions(true);
    let doc = json!({
        "generatedBy": "fake-apiserver/openapi-gen from k8s-openapi 0.29 (feature v1_33)",
        "definitions": definitions,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON values serialize")
    );
}
