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

/// AWS's SQS sample carrying `messages` (message id, body), as an event source mapping
/// delivers them from the shard queue.
pub fn sqs(messages: &[(String, String)]) -> Value {
    let mut event = sample("sqs.json");
    let record = event["Records"][0].clone();
    event["Records"] = messages
        .iter()
        .map(|(id, body)| {
            let mut record = record.clone();
            record["messageId"] = json!(id);
            record["body"] = json!(body);
            record
        })
        .collect();
    event
}
