//! Reading the evaluator's answer to an invocation: each policy's outcome and its decision.

use serde_json::Value;

/// `policy`'s outcome in `answer`, if it has one.
pub fn find<'a>(answer: &'a Value, policy: &str) -> Option<&'a Value> {
    answer["outcomes"]
        .as_array()?
        .iter()
        .find(|outcome| outcome["policy"] == policy)
}

/// `policy`'s outcome in `answer`.
///
/// # Panics
///
/// When it has none, showing the answer.
pub fn outcome<'a>(answer: &'a Value, policy: &str) -> &'a Value {
    find(answer, policy).unwrap_or_else(|| panic!("no outcome for {policy} in {answer:#}"))
}

/// Whether the decision of `outcome` was clamped by a guard of this `kind`.
pub fn clamped_by(outcome: &Value, kind: &str) -> bool {
    outcome["decision"]["explanation"]["clamps"]
        .as_array()
        .is_some_and(|clamps| clamps.iter().any(|clamp| clamp["kind"] == kind))
}
