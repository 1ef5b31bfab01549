//! `[monitoring] prometheus_rules`: the rendered `PrometheusRule` of every example stack (with
//! the option turned on) validates against prometheus-operator's CRD
//! (tests/fixtures/prometheus-operator, a copy of the official CRD of v0.93.0), every
//! expression parses as PromQL, and the rules of one stack are pinned whole.

use crate::render_crd::{to_json_schema, unknown_fields};
use crate::render_support as support;

use std::path::Path;

use raystack::render::render;
use serde_json::Value;

fn crd_schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/prometheus-operator/monitoring.coreos.com_prometheusrules.v0.93.0.yaml",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let v1 = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("a v1 version");
    v1["schema"]["openAPIV3Schema"].clone()
}

/// The example stacks with a Redis backend, with `prometheus_rules = true`.
fn stacks_with_rules() -> Vec<(String, raystack::stack::Stack)> {
    support::examples()
        .into_iter()
        .filter(|(_, s)| s.durability.backend == raystack::stack::GcsBackend::Redis)
        .map(|(name, mut s)| {
            s.monitoring.prometheus_rules = true;
            (name, s)
        })
        .collect()
}

fn prometheus_rule(stack: &raystack::stack::Stack) -> Value {
    let rendered = render(stack);
    let rules: Vec<&Value> = rendered
        .objects
        .iter()
        .filter(|o| o.kind() == "PrometheusRule")
        .map(|o| &o.manifest)
        .collect();
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    rules[0].clone()
}

/// Problems of `rule` against the CRD, or of its expressions against a PromQL parser.
fn problems(rule: &Value, schema: &Value, validator: &jsonschema::Validator) -> Vec<String> {
    let mut out: Vec<String> = validator
        .iter_errors(rule)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    let mut unknown = Vec::new();
    unknown_fields(rule, schema, "", &mut unknown);
    out.extend(unknown.into_iter().map(|p| format!("{p}: unknown field")));
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            let expr = r["expr"].as_str().unwrap();
            if let Err(e) = promql_parser::parser::parse(expr) {
                out.push(format!("{}: `{expr}` does not parse: {e}", r["alert"]));
            }
            for key in ["summary", "runbook"] {
                if r["annotations"][key].as_str().is_none_or(str::is_empty) {
                    out.push(format!("{}: no {key}", r["alert"]));
                }
            }
            if !r["annotations"]["runbook"]
                .as_str()
                .unwrap_or_default()
                .contains("raystack status")
            {
                out.push(format!(
                    "{}: the runbook does not point at raystack status",
                    r["alert"]
                ));
            }
        }
    }
    out
}

#[test]
fn every_rendered_prometheus_rule_validates_and_its_expressions_parse() {
    let schema = crd_schema();
    let validator =
        jsonschema::validator_for(&to_json_schema(&schema)).expect("the CRD schema compiles");
    let mut checked = 0;
    for (name, stack) in stacks_with_rules() {
        let rule = prometheus_rule(&stack);
        let p = problems(&rule, &schema, &validator);
        assert!(p.is_empty(), "{name}:\n{}", p.join("\n"));
        checked += 1;
    }
    assert!(checked >= 8, "checked {checked} stacks");
}

/// The check can fail: a wrong type, an unknown field and a broken expression are reported.
#[test]
fn the_check_catches_schema_and_promql_errors() {
    let schema = crd_schema();
    let validator =
        jsonschema::validator_for(&to_json_schema(&schema)).expect("the CRD schema compiles");
    let (_, stack) = stacks_with_rules().into_iter().next().unwrap();
    let mut rule = prometheus_rule(&stack);
    rule["spec"]["groups"][0]["rules"][0]["expr"] = Value::from("redis_up{ == 0");
    rule["spec"]["groups"][0]["rules"][0]["severity"] = Value::from("critical");
    rule["spec"]["groups"][0]["interval"] = Value::from(30);
    let p = problems(&rule, &schema, &validator);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p[0].starts_with("/spec/groups/0/interval: 30 is not of type \"string\""),
        "{p:#?}"
    );
    assert_eq!(p[1], ".spec.groups[0].rules[0].severity: unknown field");
    assert!(
        p[2].starts_with("\"RedisAofWriteFailing\": `redis_up{ == 0` does not parse"),
        "{p:#?}"
    );
}

/// The whole rule group of an `everysec` stack and of an RDB-only stack, pinned; without
/// `prometheus_rules` nothing is rendered.
#[test]
fn the_rules_of_an_everysec_and_an_rdb_only_stack() {
    let stacks = stacks_with_rules();
    let get = |n: &str| stacks.iter().find(|(name, _)| name == n).unwrap().1.clone();
    let yaml = |s: &raystack::stack::Stack| serde_saphyr::to_string(&prometheus_rule(s)).unwrap();
    insta::assert_snapshot!("local", yaml(&get("local")));
    insta::assert_snapshot!("rdb_only", yaml(&get("rdb-only")));
    let mut off = get("local");
    off.monitoring.prometheus_rules = false;
    assert!(
        render(&off)
            .objects
            .iter()
            .all(|o| o.kind() != "PrometheusRule")
    );
}
