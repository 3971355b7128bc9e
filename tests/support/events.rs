//! AWS's sample events of `tests/fixtures/events/`, as the evaluator is woken by them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::fleet::MetricId;
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

/// One state change of a CloudWatch alarm that watches one metric.
#[derive(Debug, Clone)]
pub struct AlarmChange {
    /// The alarm's name.
    pub alarm: String,
    /// The state it entered: `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: &'static str,
    /// When it entered it (CloudWatch stamps state changes to the millisecond).
    pub at: DateTime<Utc>,
    /// The metric it watches.
    pub metric: MetricId,
}

impl AlarmChange {
    /// The key every delivery of this state change is claimed under (see the evaluator's
    /// `Delivery::key`).
    pub fn key(&self) -> String {
        format!("alarm#{}#{}", self.alarm, self.at.to_rfc3339())
    }

    /// The metric as an alarm's `metricStat.metric` names it.
    fn metric_stat_metric(&self) -> Value {
        let dimensions: serde_json::Map<String, Value> = self
            .metric
            .dimensions
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        json!({ "namespace": self.metric.namespace, "name": self.metric.name, "dimensions": dimensions })
    }

    /// AWS's EventBridge sample, carrying this state change.
    pub fn eventbridge(&self) -> Value {
        let mut event = sample("eventbridge-alarm.json");
        event["time"] = json!(self.at.to_rfc3339());
        let detail = &mut event["detail"];
        detail["alarmName"] = json!(self.alarm);
        detail["state"]["value"] = json!(self.state);
        detail["state"]["timestamp"] = json!(self.at.to_rfc3339());
        detail["configuration"]["metrics"][0]["metricStat"]["metric"] = self.metric_stat_metric();
        event
    }

    /// AWS's sample of an alarm invoking Lambda directly, carrying this state change.
    pub fn alarm_action(&self) -> Value {
        let mut event = sample("alarm-action.json");
        event["time"] = json!(self.at.to_rfc3339());
        let data = &mut event["alarmData"];
        data["alarmName"] = json!(self.alarm);
        data["state"]["value"] = json!(self.state);
        data["state"]["timestamp"] = json!(self.at.to_rfc3339());
        data["configuration"]["metrics"][0]["metricStat"]["metric"] = self.metric_stat_metric();
        event
    }

    /// AWS's SNS sample, its message carrying this state change.
    pub fn sns(&self) -> Value {
        let mut event = sample("sns-alarm.json");
        let record = &mut event["Records"][0]["Sns"];
        let mut message: Value = serde_json::from_str(record["Message"].as_str().expect("message"))
            .expect("message JSON");
        message["AlarmName"] = json!(self.alarm);
        message["NewStateValue"] = json!(self.state);
        message["StateChangeTime"] = json!(self.at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string());
        let trigger = &mut message["Trigger"];
        trigger["Namespace"] = json!(self.metric.namespace);
        trigger["MetricName"] = json!(self.metric.name);
        trigger["Dimensions"] = json!(
            self.metric
                .dimensions
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>()
        );
        record["Message"] = json!(message.to_string());
        event
    }
}
