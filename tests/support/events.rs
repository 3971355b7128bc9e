//! AWS's sample events of `tests/fixtures/events/`, as the evaluator is woken by them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::lambda::workspace_root;

/// The sample event `name` (such as `scheduled.json`).
pub fn sample(name: &str) -> Value {
    let path = workspace_root().join("tests/fixtures/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("reading a sample event"))
        .expect("sample is JSON")
}

/// AWS's scheduled-event sample stamped `at`: a tick.
pub fn tick(at: DateTime<Utc>) -> Value {
    let mut event = sample("scheduled.json");
    event["time"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    event
}
