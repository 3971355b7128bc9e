//! The events that can wake capstan's evaluator, read into [`Trigger`]s: no AWS SDK and no
//! I/O, so that what reads untrusted input can be tested and fuzzed on its own.
//!
//! The accepted kinds:
//!
//! - EventBridge "CloudWatch Alarm State Change" (`detail-type`, alarm in `detail`);
//! - a CloudWatch alarm's direct Lambda action (`alarmData`);
//! - an SNS notification carrying a CloudWatch alarm (`Records[].Sns.Message`);
//! - an EventBridge scheduled event (`detail-type: Scheduled Event`): the tick;
//! - a batch of SQS messages from the shard queue (`Records[].eventSource: aws:sqs`), each a
//!   [`ShardTrigger`] in JSON: the shards of a fanned-out tick.
//!
//! Anything else is a [`EventError`] naming what was received; it never leads to an action. In
//! an SQS batch, a message that is not a shard is refused alone ([`Batch::refused`]), so that
//! SQS delivers it again and in the end moves it to the queue's dead-letter queue.
//!
//! Each trigger comes with the key that recognises a later delivery of the same event (see
//! [`Delivery::key`]).

use std::collections::BTreeMap;

use aws_lambda_events::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchMetricAlarmConfiguration,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::{CloudWatchAlarmPayload, SnsEvent};
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use capstan_runner::{AlarmMetric, AlarmTrigger, ShardTrigger, Trigger};

/// Why an event could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The event has none of the shapes the evaluator accepts.
    #[error(
        "unrecognised event (top-level keys: {keys}); expected an EventBridge alarm state change or scheduled event, a CloudWatch alarm action, or an SNS alarm notification"
    )]
    Unrecognised {
        /// The event's top-level keys, for the log.
        keys: String,
    },
    /// The event looked like one of the accepted kinds but did not parse as it.
    #[error("malformed {kind} event: {reason}")]
    Malformed {
        /// The kind of event it looked like.
        kind: &'static str,
        /// The parse error.
        reason: String,
    },
}

/// One trigger as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// What woke the evaluator.
    pub trigger: Trigger,
    /// What every delivery of the same event shares: `alarm#<name>#<state change time>` for an
    /// alarm (however it was delivered), `tick#<scheduled time>` for a scheduled event (the
    /// same for every attempt of one scheduled invocation, whereas EventBridge Scheduler gives
    /// each attempt its own id), `shard#<scheduled time>#<index>/<count>` for a shard of a
    /// tick. `None` for an alarm event without its state change time, which is then evaluated
    /// on every delivery.
    pub key: Option<String>,
    /// The id of the SQS message it came in, for a shard: a shard that cannot be handled now is
    /// reported by it, and SQS delivers that message again.
    pub message_id: Option<String>,
}

impl Delivery {
    fn alarm(alarm: AlarmTrigger) -> Self {
        let key = alarm
            .changed_at
            .map(|at| format!("alarm#{}#{}", alarm.name, at.to_rfc3339()));
        Self {
            trigger: Trigger::Alarm(alarm),
            key,
            message_id: None,
        }
    }

    fn shard(shard: ShardTrigger, message_id: String) -> Self {
        let key = format!(
            "shard#{}#{}/{}",
            shard.tick.to_rfc3339(),
            shard.index,
            shard.of
        );
        Self {
            trigger: Trigger::Shard(shard),
            key: Some(key),
            message_id: Some(message_id),
        }
    }
}

/// An event, read: what it delivers, and the messages of an SQS batch refused one by one.
#[derive(Debug)]
pub struct Batch {
    /// The triggers delivered, in the order of the event.
    pub deliveries: Vec<Delivery>,
    /// The SQS messages that are not shards, by message id, with why.
    pub refused: Vec<(String, EventError)>,
}

impl From<Vec<Delivery>> for Batch {
    fn from(deliveries: Vec<Delivery>) -> Self {
        Self {
            deliveries,
            refused: Vec::new(),
        }
    }
}

/// Reads `event` as one of the accepted kinds.
pub fn parse(event: Value) -> Result<Batch, EventError> {
    if let Some(detail_type) = event.get("detail-type").and_then(Value::as_str) {
        return match detail_type {
            "CloudWatch Alarm State Change" => {
                let event: EventBridgeEvent<CloudWatchAlarmData<Value>> =
                    typed("EventBridge alarm state change", event)?;
                Ok(vec![Delivery::alarm(from_alarm_data(event.detail))].into())
            }
            "Scheduled Event" => {
                const KIND: &str = "EventBridge scheduled";
                let event: EventBridgeEvent<Value> = typed(KIND, event)?;
                let at = event
                    .time
                    .ok_or_else(|| malformed(KIND, "missing `time`"))?;
                Ok(vec![Delivery {
                    trigger: Trigger::Tick { at },
                    key: Some(format!("tick#{}", at.to_rfc3339())),
                    message_id: None,
                }]
                .into())
            }
            other => Err(malformed(
                "EventBridge",
                format!("unsupported detail-type `{other}`"),
            )),
        };
    }
    if event.get("alarmData").is_some() {
        let alarm: CloudWatchAlarm<Value> = typed("CloudWatch alarm action", event)?;
        return Ok(vec![Delivery::alarm(from_alarm_data(alarm.alarm_data))].into());
    }
    let from_sqs = event
        .pointer("/Records/0/eventSource")
        .is_some_and(|source| source == "aws:sqs");
    if from_sqs {
        return sqs_shards(event);
    }
    if event.get("Records").is_some() {
        let sns: SnsEvent = typed("SNS", event)?;
        return sns
            .records
            .into_iter()
            .map(|record| {
                let payload: CloudWatchAlarmPayload = serde_json::from_str(&record.sns.message)
                    .map_err(|e| malformed("SNS alarm notification", e.to_string()))?;
                Ok(Delivery::alarm(from_sns_payload(payload)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Batch::from);
    }
    let keys = match &event {
        Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join(", "),
        other => format!("not an object: {other}"),
    };
    Err(EventError::Unrecognised { keys })
}

/// The shards of an SQS batch. A record without a message id refuses the whole batch (it could
/// not be reported alone); a body that is not a shard refuses its message alone.
fn sqs_shards(event: Value) -> Result<Batch, EventError> {
    const KIND: &str = "SQS shard message";
    let sqs: SqsEvent = typed("SQS", event)?;
    let mut batch = Batch::from(Vec::new());
    for (at, record) in sqs.records.into_iter().enumerate() {
        let message_id = record
            .message_id
            .ok_or_else(|| malformed("SQS", format!("record {at} has no messageId")))?;
        let shard = serde_json::from_str::<ShardTrigger>(record.body.as_deref().unwrap_or(""))
            .map_err(|e| malformed(KIND, format!("message {message_id}: {e}")));
        match shard {
            Ok(shard) => batch.deliveries.push(Delivery::shard(shard, message_id)),
            Err(error) => batch.refused.push((message_id, error)),
        }
    }
    Ok(batch)
}

fn typed<T: DeserializeOwned>(kind: &'static str, event: Value) -> Result<T, EventError> {
    serde_json::from_value(event).map_err(|e| malformed(kind, e.to_string()))
}

fn malformed(kind: &'static str, reason: impl Into<String>) -> EventError {
    EventError::Malformed {
        kind,
        reason: reason.into(),
    }
}

/// The alarm of an EventBridge event or a direct alarm action. The configuration is read as a
/// metric alarm's; a composite alarm has no metrics and so wakes no policy by metric.
fn from_alarm_data(data: CloudWatchAlarmData<Value>) -> AlarmTrigger {
    let configuration: Option<CloudWatchMetricAlarmConfiguration> =
        serde_json::from_value(data.configuration).ok();
    let metrics = configuration
        .map(|configuration| {
            configuration
                .metrics
                .into_iter()
                .map(|definition| AlarmMetric {
                    namespace: definition.metric_stat.metric.namespace.unwrap_or_default(),
                    name: definition.metric_stat.metric.name,
                    dimensions: definition
                        .metric_stat
                        .metric
                        .dimensions
                        .into_iter()
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    AlarmTrigger {
        name: data.alarm_name,
        state: data
            .state
            .as_ref()
            .map(|s| state_name(&s.value))
            .unwrap_or_default(),
        changed_at: data.state.map(|s| s.timestamp),
        metrics,
    }
}

/// The state as CloudWatch spells it (`ALARM`, `OK`, `INSUFFICIENT_DATA`).
fn state_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

fn from_sns_payload(payload: CloudWatchAlarmPayload) -> AlarmTrigger {
    let trigger = payload.trigger;
    let metrics = match (trigger.namespace, trigger.metric_name) {
        (Some(namespace), Some(name)) => vec![AlarmMetric {
            namespace,
            name,
            dimensions: trigger
                .dimensions
                .into_iter()
                .map(|d| (d.name, d.value))
                .collect::<BTreeMap<_, _>>(),
        }],
        _ => Vec::new(),
    };
    AlarmTrigger {
        name: payload.alarm_name,
        state: payload.new_state_value,
        changed_at: DateTime::parse_from_str(&payload.state_change_time, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample is JSON")
    }

    /// The deliveries of an event that is read whole.
    fn deliveries(event: Value) -> Vec<Delivery> {
        let batch = parse(event).expect("the event is read");
        assert!(batch.refused.is_empty(), "{:?}", batch.refused);
        batch.deliveries
    }

    fn only_alarm(deliveries: Vec<Delivery>) -> AlarmTrigger {
        match <[Delivery; 1]>::try_from(deliveries) {
            Ok(
                [
                    Delivery {
                        trigger: Trigger::Alarm(alarm),
                        key,
                        message_id: None,
                    },
                ],
            ) => {
                assert_eq!(
                    key,
                    alarm
                        .changed_at
                        .map(|at| format!("alarm#{}#{}", alarm.name, at.to_rfc3339()))
                );
                alarm
            }
            other => panic!("expected one alarm trigger, got {other:?}"),
        }
    }

    #[test]
    fn eventbridge_alarm_state_change_names_its_metric() {
        let alarm = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-alarm.json"
        ))));
        assert_eq!(alarm.name, "ServerCpuTooHigh");
        assert_eq!(alarm.state, "ALARM");
        assert_eq!(
            alarm.changed_at.map(|t| t.to_rfc3339()),
            Some("2019-10-02T17:04:40.989+00:00".into())
        );
        assert_eq!(
            alarm.metrics,
            [AlarmMetric {
                namespace: "AWS/EC2".into(),
                name: "CPUUtilization".into(),
                dimensions: BTreeMap::from([("InstanceId".into(), "i-12345678901234567".into())]),
            }]
        );
    }

    #[test]
    fn direct_alarm_action_names_its_metric() {
        let alarm = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/alarm-action.json"
        ))));
        assert_eq!(alarm.name, "lambda-demo-metric-alarm");
        assert_eq!(alarm.state, "ALARM");
        assert_eq!(alarm.metrics[0].namespace, "AWS/Logs");
        assert_eq!(alarm.metrics[0].name, "CallCount");
    }

    #[test]
    fn sns_alarm_notification_names_its_metric() {
        let alarm = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/sns-alarm.json"
        ))));
        assert_eq!(alarm.name, "EXAMPLE");
        assert_eq!(alarm.state, "ALARM");
        assert_eq!(
            alarm.changed_at.map(|t| t.to_rfc3339()),
            Some("2015-06-03T17:43:27.123+00:00".into())
        );
        assert_eq!(alarm.metrics[0].name, "NetworkOut");
        assert_eq!(alarm.metrics[0].dimensions["InstanceId"], "TestInstance");
    }

    #[test]
    fn scheduled_event_is_a_tick_at_its_time() {
        let triggers = deliveries(sample(include_str!(
            "../../../tests/fixtures/events/scheduled.json"
        )));
        assert_eq!(
            triggers,
            [Delivery {
                trigger: Trigger::Tick {
                    at: "2015-10-08T16:53:06Z".parse().unwrap()
                },
                key: Some("tick#2015-10-08T16:53:06+00:00".into()),
                message_id: None,
            }]
        );
    }

    #[test]
    fn scheduler_tick_of_the_template_is_a_tick_at_its_scheduled_time() {
        let triggers = deliveries(sample(include_str!(
            "../../../tests/fixtures/events/scheduler-tick.json"
        )));
        assert_eq!(
            triggers,
            [Delivery {
                trigger: Trigger::Tick {
                    at: "2026-03-06T17:00:00Z".parse().unwrap()
                },
                key: Some("tick#2026-03-06T17:00:00+00:00".into()),
                message_id: None,
            }]
        );
    }

    #[test]
    fn sqs_messages_are_shards_each_refused_alone_when_it_is_not_one() {
        let mut event = sample(include_str!("../../../tests/fixtures/events/sqs.json"));
        let shard = ShardTrigger {
            tick: "2026-03-06T17:00:00Z".parse().unwrap(),
            index: 2,
            of: 3,
            policies: vec!["web".into(), "orders-db".into()],
        };
        event["Records"][0]["body"] = serde_json::json!(serde_json::to_string(&shard).unwrap());
        let batch = parse(event).unwrap();
        assert_eq!(
            batch.deliveries,
            [Delivery {
                trigger: Trigger::Shard(shard),
                key: Some("shard#2026-03-06T17:00:00+00:00#2/3".into()),
                message_id: Some("059f36b4-87a3-44ab-83d2-661975830a7d".into()),
            }]
        );
        let [(message_id, error)] = <[_; 1]>::try_from(batch.refused).unwrap();
        assert_eq!(message_id, "2e1424d4-f796-459a-8184-9c92662be6da");
        assert!(
            error.to_string().starts_with(
                "malformed SQS shard message event: message 2e1424d4-f796-459a-8184-9c92662be6da: "
            ),
            "{error}"
        );

        let mut unknown_field = sample(include_str!("../../../tests/fixtures/events/sqs.json"));
        unknown_field["Records"][0]["body"] = serde_json::json!(
            r#"{"tick": "2026-03-06T17:00:00Z", "index": 0, "of": 1, "policies": [], "extra": 1}"#
        );
        assert_eq!(parse(unknown_field).unwrap().refused.len(), 2);

        let mut anonymous = sample(include_str!("../../../tests/fixtures/events/sqs.json"));
        anonymous["Records"][1]
            .as_object_mut()
            .unwrap()
            .remove("messageId");
        let error = parse(anonymous).unwrap_err();
        assert!(
            error.to_string().contains("record 1 has no messageId"),
            "{error}"
        );
    }

    #[test]
    fn one_alarm_state_change_has_one_key_however_it_is_delivered() {
        let eventbridge = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-alarm.json"
        ))));
        let mut action = sample(include_str!(
            "../../../tests/fixtures/events/alarm-action.json"
        ));
        action["alarmData"]["alarmName"] = serde_json::json!(eventbridge.name);
        action["alarmData"]["state"]["timestamp"] = serde_json::json!("2019-10-02T17:04:40.989Z");
        let key =
            |deliveries: Vec<Delivery>| deliveries.into_iter().map(|d| d.key).collect::<Vec<_>>();
        assert_eq!(
            key(deliveries(action)),
            [Some(
                "alarm#ServerCpuTooHigh#2019-10-02T17:04:40.989+00:00".into()
            )]
        );
    }

    #[test]
    fn unknown_and_malformed_events_are_refused_with_what_was_seen() {
        let error = parse(serde_json::json!({ "hello": 1, "world": 2 })).unwrap_err();
        assert!(
            error.to_string().contains("top-level keys: hello, world"),
            "{error}"
        );

        let error = parse(serde_json::json!({ "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": 7 }))
            .unwrap_err();
        assert!(
            matches!(
                error,
                EventError::Malformed {
                    kind: "EventBridge alarm state change",
                    ..
                }
            ),
            "{error}"
        );

        let error = parse(serde_json::json!({ "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {} }))
            .unwrap_err();
        assert!(
            error.to_string().contains("unsupported detail-type"),
            "{error}"
        );

        let error = parse(serde_json::json!({ "Records": [{ "Sns": { "Message": "not json" } }] }))
            .unwrap_err();
        assert!(matches!(error, EventError::Malformed { .. }), "{error}");

        let error = parse(serde_json::json!([1, 2])).unwrap_err();
        assert!(error.to_string().contains("not an object"), "{error}");
    }
}
