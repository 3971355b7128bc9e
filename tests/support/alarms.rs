//! The alarm sync in the emulator: a policy with threshold rules, the alarm-sync function
//! started on it, and the alarms found in CloudWatch.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic, Tag};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tempfile::TempDir;

use capstan_alarm_sync::{App, Settings};
use capstan_engine::alarms::AlarmNamespace;

use crate::{endpoint, unique};

/// A policy `web` with three threshold rules; `with_latency` keeps the second scale-out rule.
pub fn policy(cpu_above: u32, with_latency: bool) -> String {
    let latency = if with_latency {
        "  - { when: { metric: latency, above: 250, datapoints: 3 of 5 }, add: 1 }\n"
    } else {
        ""
    };
    format!(
        "version: 1
name: web
target: {{ ecs_service: {{ cluster: shop, service: web }} }}
capacity: {{ min: 1, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ClusterName: shop, ServiceName: web }}, stat: Average, period: 1m }}
  latency: {{ namespace: Shop/Web, name: Latency, stat: p99, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: {cpu_above}, for: 5m }}, add: 2 }}
{latency}scale_in:
  - {{ when: {{ metric: cpu, below: 30, for: 15m }}, remove: 1 }}
"
    )
}

/// A temporary directory holding `text` as `web.yaml`.
pub fn policy_dir(text: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_policy(dir.path(), text);
    dir
}

/// Writes `text` as the policy file `web.yaml` of `dir`.
pub fn write_policy(dir: &Path, text: &str) {
    fs::write(dir.join("web.yaml"), text).expect("writing the policy");
}

/// A prefix no other test uses: moto keeps its alarms between tests.
pub fn prefix() -> String {
    unique("capstan-it")
}

/// The stack the tests' alarm-sync belongs to unless a test names another.
pub const STACK: &str = "capstan-it";

/// The alarms of `stack` under `prefix`.
pub fn namespace(prefix: &str, stack: &str) -> AlarmNamespace {
    AlarmNamespace::new(prefix, stack).unwrap_or_else(|error| panic!("{error}"))
}

/// The alarm-sync function of [`STACK`] against the emulator, with `prefix` as its default and
/// the policies of `policies`.
pub async fn app(prefix: &str, policies: &Path) -> App {
    stack_app(STACK, prefix, policies).await
}

/// The alarm-sync function of `stack` against the emulator, with `prefix` as its default and
/// the policies of `policies`.
pub async fn stack_app(stack: &str, prefix: &str, policies: &Path) -> App {
    App::start(Settings {
        alarm_prefix: prefix.to_owned(),
        stack: Some(stack.to_owned()),
        aws_endpoint: Some(endpoint()),
        policy_dir: Some(policies.display().to_string()),
    })
    .await
    .expect("the function starts")
}

/// Runs the scheduled sync and returns its summary.
pub async fn sync(app: &App) -> Value {
    app.handle(
        json!({ "capstan": "sync-alarms" }),
        Utc::now() + TimeDelta::minutes(5),
    )
    .await
    .unwrap_or_else(|error| panic!("sync failed: {error}"))
}

/// The metric alarms whose names start with `prefix`, by name.
pub async fn alarms(client: &Client, prefix: &str) -> BTreeMap<String, MetricAlarm> {
    let output = client
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .send()
        .await
        .expect("DescribeAlarms");
    output
        .metric_alarms()
        .iter()
        .map(|alarm| {
            (
                alarm.alarm_name().unwrap_or_default().to_owned(),
                alarm.clone(),
            )
        })
        .collect()
}

/// Puts an alarm on `AWS/ECS CPUUtilization`, with `tags`, as someone other than capstan would.
pub async fn put_foreign_alarm(client: &Client, name: &str, tags: &[(&str, &str)]) {
    client
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(99.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .set_tags(Some(
            tags.iter()
                .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
                .collect(),
        ))
        .send()
        .await
        .expect("PutMetricAlarm");
}

/// The names in a summary's list.
pub fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of names, got {value}"))
        .iter()
        .map(|name| name.as_str().expect("a name"))
        .collect()
}
