//! End to end: a policy scaling an ECS service on an expression metric (the busier of its CPU
//! and memory, `MAX([cpu, memory])`), woken by a metric-math alarm on it, read in one batched
//! GetMetricData call through the emulator (whose metric math is `tests/emulator/fast_moto.py`'s
//! extension, see docs/testing.md), and `capstan simulate` deciding the same on the same data.

use std::fs;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use capstan_policy::{PolicySet, Source};
use capstan_sim::simulate::{DEFAULT_INGESTION, Settings, simulate};
use capstan_sim::trace::Trace;
use capstan_tests::events;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::{LambdaEvaluator, emulator_settings};
use capstan_tests::proxy::Proxy;

const SERVICE: &str = "orders";

/// A utilization metric of the ECS service `service` of `cluster`.
fn utilization(cluster: &str, name: &str) -> MetricId {
    MetricId {
        name: name.into(),
        ..MetricId::ecs_cpu(cluster, SERVICE)
    }
}

/// The policy: when the busier of CPU and memory is above 70 for five minutes, add 2.
fn policy_yaml(cluster: &str) -> String {
    let dimensions = format!("{{ ClusterName: {cluster}, ServiceName: {SERVICE} }}");
    format!(
        "version: 1
name: {SERVICE}
target: {{ ecs_service: {{ cluster: {cluster}, service: {SERVICE} }} }}
capacity: {{ min: 1, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {dimensions}, stat: Average, period: 1m }}
  memory: {{ namespace: AWS/ECS, name: MemoryUtilization, dimensions: {dimensions}, stat: Average, period: 1m }}
  busy: {{ expression: 'MAX([cpu, memory])', period: 1m }}
scale_out:
  - {{ when: {{ metric: busy, above: 70, for: 5m }}, add: 2 }}
"
    )
}

/// AWS's EventBridge sample of a metric-math alarm, its members pointed at `members`, going
/// into `ALARM` at `at`.
fn metric_math_alarm(members: [&MetricId; 2], at: DateTime<Utc>) -> Value {
    let mut event = events::sample("eventbridge-metric-math-alarm.json");
    event["time"] = json!(at.to_rfc3339());
    let detail = &mut event["detail"];
    detail["alarmName"] = json!("capstan-orders-busy");
    detail["state"]["timestamp"] = json!(at.to_rfc3339());
    detail["configuration"]["metrics"][0]["expression"] = json!("MAX([m1, m2])");
    for (i, member) in members.into_iter().enumerate() {
        let dimensions: serde_json::Map<String, Value> = member
            .dimensions
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        detail["configuration"]["metrics"][i + 1]["metricStat"]["metric"] = json!({
            "namespace": member.namespace, "name": member.name, "dimensions": dimensions
        });
    }
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expression_metric_wakes_reads_in_one_call_and_scales_as_simulate_decides() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("math");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    fleet::steady_ecs_service(&ecs, &cluster, SERVICE, 2).await;
    let policies = tempfile::tempdir().expect("tempdir");
    let yaml = policy_yaml(&cluster);
    fs::write(policies.path().join("orders.yaml"), &yaml).expect("writing the policy");

    // CPU at 50 alone would not scale; memory at 90 makes the service busy.
    let (cpu, memory) = (
        utilization(&cluster, "CPUUtilization"),
        utilization(&cluster, "MemoryUtilization"),
    );
    let now = Utc::now();
    let minutes = fleet::window_minutes(now, 6);
    let trace = |value: f64| minutes.iter().map(|at| (*at, value)).collect::<Vec<_>>();
    fleet::put_metric(&cloudwatch, &cpu, &trace(50.0)).await;
    fleet::put_metric(&cloudwatch, &memory, &trace(90.0)).await;

    let proxy = Proxy::start(&capstan_tests::endpoint());
    let url = proxy.url();
    let settings = emulator_settings(policies.path(), &table, &url, &[("CAPSTAN_REPLAY", "true")]);
    let evaluator = LambdaEvaluator::start(&settings);
    let answer = evaluator
        .invoke(&metric_math_alarm([&cpu, &memory], now))
        .expect("metric-math alarm");

    let outcomes = answer["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 1, "the alarm wakes the policy: {answer:#}");
    let decision = &outcomes[0]["decision"];
    assert_eq!(outcomes[0]["result"]["status"], "applied", "{answer:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, SERVICE).await, 4);
    let stats = proxy.stats();
    assert_eq!(
        stats.invocations.get("GetMetricData"),
        Some(&1),
        "the expression and its members in one call: {stats:#?}"
    );

    // `capstan simulate` over the same minutes from the same two tasks: its first action is the
    // same scale-out, for the same reason.
    let set = PolicySet::from_sources(vec![Source {
        path: "orders.yaml".into(),
        text: yaml,
    }])
    .expect("the policy is valid");
    let csv: String = minutes
        .iter()
        .chain(&fleet::window_minutes(now + TimeDelta::minutes(4), 4))
        .map(|at| format!("{},50,90\n", at.to_rfc3339()))
        .collect();
    let trace =
        Trace::from_csv("orders.csv", &format!("timestamp,cpu,memory\n{csv}")).expect("a trace");
    let settings = Settings {
        load: None,
        warmup: TimeDelta::minutes(3),
        ingestion: DEFAULT_INGESTION,
        initial: Some(2),
        utilization: Vec::new(),
    };
    let runs = simulate(&trace, set.policies(), &settings, || {});
    let first = runs[0]
        .steps
        .iter()
        .find(|step| step.action.is_some())
        .unwrap_or_else(|| panic!("simulate never acts: {:#?}", runs[0].steps));
    assert_eq!(first.desired, 4, "{first:#?}");
    assert_eq!(
        first.why,
        decision["explanation"]["summary"]
            .as_str()
            .unwrap_or_default(),
        "{answer:#}"
    );
}
