//! The JSON plan (docs/design.md §6): the plan model as serialized, minus the manifests that only
//! `apply PLANFILE` needs. Key order is the model's field order, so output is deterministic.

use serde_json::Value;

use crate::plan::Plan;

pub fn render(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(&value(plan)).expect("plans serialize");
    s.push('\n');
    s
}

/// The JSON plan as a value (an element of the array that several stacks print).
pub fn value(plan: &Plan) -> Value {
    let mut v = plan.to_json();
    if let Some(changes) = v.get_mut("resource_changes").and_then(Value::as_array_mut) {
        for c in changes {
            if let Some(m) = c.as_object_mut() {
                m.remove("manifest");
            }
        }
    }
    v
}
