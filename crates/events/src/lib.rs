//! The events that can wake capstan's evaluator, read into [`Trigger`]s: no AWS SDK and no
//! I/O, so that what reads untrusted input can be tested and fuzzed on its own.
//!
//! The accepted kinds:
//!
//! - EventBridge "CloudWatch Alarm State Change" (`detail-type`, alarm in `detail`);
//! - a CloudWatch alarm's direct Lambda action (`alarmData`);
//! - an SNS notification carrying a CloudWatch alarm (`Records[].Sns.Message`);
//!
//!   the alarm of any of these three may be a metric alarm, a metric math or anomaly detection
//!   alarm (it names every metric its expressions read) or a composite alarm (it names its rule
//!   and no metric);
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

use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmData};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::{CloudWatchAlarmPayload, CloudWatchDimension, SnsEvent};
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use capstan_runner::{AlarmMetric, AlarmTrigger, ShardTrigger, Trigger};

/// Why an event could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The event has none of the shapes the evaluator accepts.
    #[error(
        "unrecognised event ({seen}); expected an EventBridge alarm state change or scheduled event, a CloudWatch alarm action, an SNS alarm notification or SQS shard messages"
    )]
    Unrecognised {
        /// What it was: its first top-level keys, or what else than an object it was.
        seen: String,
    },
    /// The event looked like one of the accepted kinds but did not parse as it.
    #[error("malformed {kind} event: {reason}")]
    Malformed {
        /// The kind of event it looked like.
        kind: &'static str,
        /// The parse error, cut to [`ECHOED_CHARS`].
        reason: String,
    },
}

/// How much of what was received an error repeats: enough to recognise it, while an error
/// about an event of any size (Lambda takes up to 6 MB) stays one short log line.
pub const ECHOED_CHARS: usize = 200;

/// How many top-level keys of an unrecognised event its error names.
const ECHOED_KEYS: usize = 10;

/// The longest alarm name CloudWatch accepts, in characters.
const MAX_ALARM_NAME_CHARS: usize = 255;

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
    /// The delivery of `alarm`, read from an event of `kind`, whose name must be one CloudWatch
    /// allows: 1 to [`MAX_ALARM_NAME_CHARS`] characters. The name goes into the event's key.
    fn alarm(kind: &'static str, alarm: AlarmTrigger) -> Result<Self, EventError> {
        let chars = alarm.name.chars().count();
        if !(1..=MAX_ALARM_NAME_CHARS).contains(&chars) {
            return Err(malformed(
                kind,
                format!(
                    "an alarm name of {chars} characters (CloudWatch's are 1 to {MAX_ALARM_NAME_CHARS}): `{}`",
                    alarm.name
                ),
            ));
        }
        let key = alarm
            .changed_at
            .map(|at| format!("alarm#{}#{}", alarm.name, at.to_rfc3339()));
        Ok(Self {
            trigger: Trigger::Alarm(alarm),
            key,
            message_id: None,
        })
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
                const KIND: &str = "EventBridge alarm state change";
                let event: EventBridgeEvent<CloudWatchAlarmData<Value>> = typed(KIND, event)?;
                Ok(vec![Delivery::alarm(KIND, from_alarm_data(event.detail))?].into())
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
        const KIND: &str = "CloudWatch alarm action";
        let alarm: CloudWatchAlarm<Value> = typed(KIND, event)?;
        return Ok(vec![Delivery::alarm(KIND, from_alarm_data(alarm.alarm_data))?].into());
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
                const KIND: &str = "SNS alarm notification";
                let payload: CloudWatchAlarmPayload = serde_json::from_str(&record.sns.message)
                    .map_err(|e| malformed(KIND, e.to_string()))?;
                Delivery::alarm(KIND, from_sns_payload(payload))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Batch::from);
    }
    Err(EventError::Unrecognised {
        seen: describe(&event),
    })
}

/// What an event that is not one the evaluator accepts was, in a few words: its first
/// [`ECHOED_KEYS`] top-level keys (cut as [`echo`] cuts) and how many it has, or what else than
/// an object it was.
fn describe(event: &Value) -> String {
    match event {
        Value::Object(map) => {
            let first: Vec<&str> = map.keys().take(ECHOED_KEYS).map(String::as_str).collect();
            let more = if map.len() > ECHOED_KEYS {
                format!(", ... {} keys in all", map.len())
            } else {
                String::new()
            };
            format!("top-level keys: {}{more}", echo(&first.join(", ")))
        }
        Value::Array(items) => format!("not an object but an array of {} items", items.len()),
        Value::String(text) => format!("not an object but a string of {} bytes", text.len()),
        Value::Number(number) => format!("not an object but the number {number}"),
        Value::Bool(value) => format!("not an object but `{value}`"),
        Value::Null => "not an object but null".into(),
    }
}

/// `text`, cut to [`ECHOED_CHARS`] characters and saying so.
fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHOED_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}... ({} bytes in all)", &text[..cut], text.len()),
    }
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
        reason: echo(&reason.into()),
    }
}

/// The alarm of an EventBridge event or a direct alarm action, whose `configuration` is
/// [`AlarmConfiguration`]: a configuration of another shape names no metric.
fn from_alarm_data(data: CloudWatchAlarmData<Value>) -> AlarmTrigger {
    let configuration: AlarmConfiguration =
        serde_json::from_value(data.configuration).unwrap_or_default();
    AlarmTrigger {
        name: data.alarm_name,
        state: data
            .state
            .as_ref()
            .map(|s| state_name(&s.value))
            .unwrap_or_default(),
        changed_at: data.state.map(|s| s.timestamp),
        metrics: configuration
            .metrics
            .into_iter()
            .filter_map(|query| query.metric_stat)
            .map(|stat| AlarmMetric {
                namespace: stat.metric.namespace,
                name: stat.metric.name,
                dimensions: stat.metric.dimensions,
            })
            .collect(),
        rule: configuration.alarm_rule,
    }
}

/// An alarm's `configuration` as CloudWatch sends it, read for what wakes policies:
///
/// - a metric alarm lists its metrics (one `metricStat`);
/// - a metric math or anomaly detection alarm lists its queries: `expression`s beside the
///   `metricStat`s of the metrics they read, whether or not each returns data;
/// - a composite alarm has an `alarmRule` over other alarms and no metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmConfiguration {
    #[serde(default)]
    metrics: Vec<MetricQuery>,
    alarm_rule: Option<String>,
}

/// One of an alarm's queries: a metric, or an expression (no `metricStat`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricQuery {
    metric_stat: Option<MetricStat>,
}

/// The metric a query reads; its statistic and period do not matter here.
#[derive(Debug, Deserialize)]
struct MetricStat {
    metric: Metric,
}

/// A metric by identity.
#[derive(Debug, Deserialize)]
struct Metric {
    #[serde(default)]
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

/// The state as CloudWatch spells it (`ALARM`, `OK`, `INSUFFICIENT_DATA`).
fn state_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The alarm of an SNS notification: a metric alarm names its metric in the `Trigger`, a metric
/// math alarm lists its queries in `Trigger.Metrics`, as in [`AlarmConfiguration`].
fn from_sns_payload(payload: CloudWatchAlarmPayload) -> AlarmTrigger {
    let trigger = payload.trigger;
    let dimensions = |dimensions: Vec<CloudWatchDimension>| {
        dimensions
            .into_iter()
            .map(|d| (d.name, d.value))
            .collect::<BTreeMap<_, _>>()
    };
    let single = match (trigger.namespace, trigger.metric_name) {
        (Some(namespace), Some(name)) => Some(AlarmMetric {
            namespace,
            name,
            dimensions: dimensions(trigger.dimensions),
        }),
        _ => None,
    };
    let queried = trigger.metrics.into_iter().filter_map(|query| {
        let metric = query.metric_stat?.metric;
        Some(AlarmMetric {
            namespace: metric.namespace.unwrap_or_default(),
            name: metric.metric_name?,
            dimensions: dimensions(metric.dimensions),
        })
    });
    let metrics = single.into_iter().chain(queried).collect();
    AlarmTrigger {
        name: payload.alarm_name,
        state: payload.new_state_value,
        changed_at: DateTime::parse_from_str(&payload.state_change_time, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        metrics,
        rule: None,
    }
}

#[cfg(test)]
mod tests {
    use capstan_policy::{PolicySet, Source};

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

    /// The metrics an alarm event names, as `namespace/name` with its dimensions.
    fn metric_names(alarm: &AlarmTrigger) -> Vec<String> {
        alarm
            .metrics
            .iter()
            .map(|m| format!("{}/{} {:?}", m.namespace, m.name, m.dimensions))
            .collect()
    }

    const NETWORK_IN_OUT: [&str; 2] = [
        r#"AWS/EC2/NetworkIn {"InstanceId": "i-12345678901234567"}"#,
        r#"AWS/EC2/NetworkOut {"InstanceId": "i-12345678901234567"}"#,
    ];

    #[test]
    fn eventbridge_metric_math_alarm_names_every_metric_its_expression_reads() {
        let alarm = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-metric-math-alarm.json"
        ))));
        assert_eq!(alarm.name, "TotalNetworkTrafficTooHigh");
        assert_eq!(alarm.state, "ALARM");
        assert_eq!(alarm.rule, None);
        assert_eq!(metric_names(&alarm), NETWORK_IN_OUT);
    }

    #[test]
    fn direct_action_of_a_metric_math_alarm_names_every_metric_its_expression_reads() {
        // The action's `alarmData` is the EventBridge event's `detail`: the metric math alarm's
        // configuration put into the direct action sample.
        let math = sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-metric-math-alarm.json"
        ));
        let mut action = sample(include_str!(
            "../../../tests/fixtures/events/alarm-action.json"
        ));
        action["alarmData"]["configuration"] = math["detail"]["configuration"].clone();
        let alarm = only_alarm(deliveries(action));
        assert_eq!(alarm.name, "lambda-demo-metric-alarm");
        assert_eq!(metric_names(&alarm), NETWORK_IN_OUT);
    }

    #[test]
    fn sns_notification_of_a_metric_math_alarm_names_the_metric_its_expression_reads() {
        let alarms = deliveries(sample(include_str!(
            "../../../tests/fixtures/events/sns-metric-math-alarm.json"
        )));
        assert_eq!(alarms.len(), 2, "one delivery per record");
        let alarm = only_alarm(alarms[..1].to_vec());
        assert_eq!(alarm.name, "EXAMPLE");
        assert_eq!(
            metric_names(&alarm),
            [r#"AWS/EC2/NetworkOut {"InstanceId": "TestInstance"}"#]
        );
    }

    #[test]
    fn composite_alarms_name_their_rule_and_no_metric_however_delivered() {
        let eventbridge = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-composite-alarm.json"
        ))));
        assert_eq!(eventbridge.name, "ServiceAggregatedAlarm");
        assert_eq!(eventbridge.state, "ALARM");
        assert_eq!(
            eventbridge.changed_at.map(|t| t.to_rfc3339()),
            Some("2022-07-22T15:57:45.394+00:00".into())
        );
        assert_eq!(
            eventbridge.rule.as_deref(),
            Some("ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)")
        );
        assert!(eventbridge.metrics.is_empty());

        let action = only_alarm(deliveries(sample(include_str!(
            "../../../tests/fixtures/events/alarm-action-composite.json"
        ))));
        assert_eq!(action.name, "CompositeDemo.Main");
        assert_eq!(
            action.rule.as_deref(),
            Some("ALARM(CompositeDemo.FirstChild) OR ALARM(CompositeDemo.SecondChild)")
        );
        assert!(action.metrics.is_empty());
    }

    #[test]
    fn a_composite_alarm_sent_as_a_tick_is_a_tick_at_its_state_change() {
        // What the input transformer of docs/alarms.md#composite-alarms makes of the
        // composite alarm's EventBridge event.
        let composite = sample(include_str!(
            "../../../tests/fixtures/events/eventbridge-composite-alarm.json"
        ));
        let tick = serde_json::json!({
            "detail-type": "Scheduled Event",
            "source": "capstan.composite-alarm",
            "time": composite["time"],
            "detail": {},
        });
        assert_eq!(
            deliveries(tick),
            [Delivery {
                trigger: Trigger::Tick {
                    at: "2022-07-22T15:57:45Z".parse().unwrap()
                },
                key: Some("tick#2022-07-22T15:57:45+00:00".into()),
                message_id: None,
            }]
        );
    }

    #[test]
    fn a_metric_math_alarm_wakes_the_policies_of_its_metrics_and_a_composite_alarm_none() {
        let policy = |name: &str, metric: &str| Source {
            path: format!("{name}.yaml"),
            text: format!(
                "version: 1\nname: {name}\ntarget: {{ autoscaling_group: {{ name: {name} }} }}\n\
                 capacity: {{ min: 1, max: 4 }}\nmetrics:\n  m: {{ namespace: AWS/EC2, name: {metric}, \
                 dimensions: {{ InstanceId: i-12345678901234567 }}, stat: Maximum, period: 5m }}\n\
                 scale_out:\n  - {{ when: {{ metric: m, above: 10000 }}, add: 1 }}\n"
            ),
        };
        let set = PolicySet::from_sources(vec![
            policy("ingest", "NetworkIn"),
            policy("egress", "NetworkOut"),
            policy("compute", "CPUUtilization"),
        ])
        .unwrap_or_else(|report| panic!("{report}"));
        let woken = |event: &str| {
            let [delivery] = <[Delivery; 1]>::try_from(deliveries(sample(event))).unwrap();
            delivery
                .trigger
                .select(set.policies())
                .iter()
                .map(|policy| policy.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            woken(include_str!(
                "../../../tests/fixtures/events/eventbridge-metric-math-alarm.json"
            )),
            ["ingest", "egress"]
        );
        assert_eq!(
            woken(include_str!(
                "../../../tests/fixtures/events/eventbridge-alarm.json"
            )),
            ["compute"]
        );
        assert!(
            woken(include_str!(
                "../../../tests/fixtures/events/eventbridge-composite-alarm.json"
            ))
            .is_empty()
        );
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

/// Hostile events (docs/testing.md, "Hostile input"): each is refused with a short error saying
/// what was received, and yields no trigger, so nothing acts.
#[cfg(test)]
mod hostile {
    use serde_json::json;

    use super::*;

    /// The longest an error may be: the echo, plus the words around it.
    const SHORT: usize = ECHOED_CHARS + 500;

    /// Reads `bytes` as the Lambda runtime does (serde_json, into a `Value`), then as an event:
    /// the error either step gives.
    fn read(bytes: &[u8]) -> Result<Batch, String> {
        let event: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        parse(event).map_err(|e| e.to_string())
    }

    fn refused(bytes: &[u8]) -> String {
        let error = read(bytes).expect_err("refused");
        assert!(error.len() <= SHORT, "{} bytes: {error}", error.len());
        error
    }

    fn alarm_named(name: &str) -> Vec<u8> {
        let mut event = serde_json::from_str::<Value>(include_str!(
            "../../../tests/fixtures/events/eventbridge-alarm.json"
        ))
        .expect("JSON");
        event["detail"]["alarmName"] = json!(name);
        event.to_string().into_bytes()
    }

    #[test]
    fn a_6_mb_alarm_name_is_refused_in_a_short_error() {
        let event = alarm_named(&"x".repeat(6 * 1024 * 1024));
        assert!(event.len() > 6 * 1024 * 1024);
        let error = refused(&event);
        assert!(
            error.starts_with(
                "malformed EventBridge alarm state change event: an alarm name of 6291456 characters (CloudWatch's are 1 to 255): `xxx"
            ),
            "{error}"
        );
        assert!(error.ends_with("... (6291523 bytes in all)"), "{error}");
        assert!(refused(&alarm_named("")).contains("an alarm name of 0 characters"));
        let longest = "x".repeat(MAX_ALARM_NAME_CHARS);
        assert!(read(&alarm_named(&longest)).is_ok());
    }

    #[test]
    fn a_6_mb_event_of_no_known_shape_names_its_first_keys_and_their_count() {
        let keys: serde_json::Map<String, Value> = (0..300_000)
            .map(|i| (format!("key{i:07}"), json!("value")))
            .collect();
        let event = Value::Object(keys).to_string();
        assert!(event.len() > 6_000_000, "{}", event.len());
        let error = refused(event.as_bytes());
        assert!(
            error.starts_with(
                "unrecognised event (top-level keys: key0000000, key0000001, key0000002, key0000003, \
                 key0000004, key0000005, key0000006, key0000007, key0000008, key0000009, ... 300000 keys in all); expected"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_6_mb_string_where_a_number_belongs_is_echoed_in_part() {
        let mut event = serde_json::from_str::<Value>(include_str!(
            "../../../tests/fixtures/events/eventbridge-alarm.json"
        ))
        .expect("JSON");
        event["detail"]["state"]["timestamp"] = json!("9".repeat(6 * 1024 * 1024));
        let error = refused(event.to_string().as_bytes());
        assert!(
            error.starts_with("malformed EventBridge alarm state change event: "),
            "{error}"
        );
    }

    #[test]
    fn events_that_are_not_objects_say_what_they_are() {
        for (event, seen) in [
            ("[1, 2]", "not an object but an array of 2 items"),
            ("\"tick\"", "not an object but a string of 4 bytes"),
            ("1e300", "not an object but the number 1e+300"),
            ("true", "not an object but `true`"),
            ("null", "not an object but null"),
            ("{}", "top-level keys: "),
        ] {
            let error = refused(event.as_bytes());
            assert!(
                error.starts_with(&format!("unrecognised event ({seen})")),
                "{event}: {error}"
            );
        }
    }

    #[test]
    fn events_of_other_services_are_refused() {
        let s3 = json!({ "Records": [{ "eventSource": "aws:s3", "s3": {} }] });
        let error = refused(s3.to_string().as_bytes());
        assert!(error.starts_with("malformed SNS event: "), "{error}");
        let ec2 = json!({ "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {} });
        assert_eq!(
            refused(ec2.to_string().as_bytes()),
            "malformed EventBridge event: unsupported detail-type `EC2 Instance State-change Notification`"
        );
    }

    #[test]
    fn nesting_100000_deep_never_reaches_the_parser() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let error = refused(deep.as_bytes());
        assert!(error.starts_with("recursion limit exceeded"), "{error}");
        // Within the runtime's limit of 128, inside an accepted shape: malformed.
        let nested = format!(
            r#"{{"detail-type": "CloudWatch Alarm State Change", "detail": {}{}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        );
        assert!(
            refused(nested.as_bytes())
                .starts_with("malformed EventBridge alarm state change event: ")
        );
    }

    #[test]
    fn invalid_utf8_and_non_json_numbers_never_reach_the_parser() {
        let mut event = include_bytes!("../../../tests/fixtures/events/scheduled.json").to_vec();
        let at = event.iter().position(|&b| b == b'S').expect("a capital S");
        event[at] = 0xff;
        assert!(refused(&event).starts_with("invalid unicode code point"));
        for number in ["NaN", "Infinity", "-Infinity"] {
            let event = format!(r#"{{"detail-type": "Scheduled Event", "time": {number}}}"#);
            let error = refused(event.as_bytes());
            assert!(
                error.starts_with("expected value") || error.starts_with("invalid number"),
                "{number}: {error}"
            );
        }
    }

    #[test]
    fn shard_numbers_beyond_their_type_refuse_their_message_alone() {
        let mut event =
            serde_json::from_str::<Value>(include_str!("../../../tests/fixtures/events/sqs.json"))
                .expect("JSON");
        for (record, index) in ["18446744073709551616", "-1"].iter().enumerate() {
            event["Records"][record]["body"] = json!(format!(
                r#"{{"tick": "2026-03-06T17:00:00Z", "index": {index}, "of": 1, "policies": []}}"#
            ));
        }
        let batch = read(event.to_string().as_bytes()).expect("a batch");
        assert!(batch.deliveries.is_empty());
        assert_eq!(batch.refused.len(), 2);
        for (_, error) in &batch.refused {
            let error = error.to_string();
            assert!(error.contains("expected usize"), "{error}");
            assert!(error.len() <= SHORT, "{error}");
        }
    }
}
