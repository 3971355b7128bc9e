//! `capstan backtest` run as a pull request's pipeline would, against moto: 14 days of an ECS
//! service's CPU and Container Insights task counts written to CloudWatch, with a known peak
//! every day, replayed with the policy running now and a proposed one scaling out sooner; an
//! Auto Scaling group's capacity read from its group metrics, and one's read back from capstan's
//! decision log; 20 days read as five-minute datapoints; and bad input refused.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::Value;

use capstan_aws::DynamoStateStore;
use capstan_aws::state::Decision;
use capstan_engine::model::Target;
use capstan_tests::fleet::{self, MetricId};

/// Runs `capstan backtest` with `args` against the emulator.
fn backtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("backtest")
        .args(["--endpoint", &capstan_tests::endpoint()])
        .args(args)
        .output()
        .expect("running capstan backtest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The service's CPU `minute` minutes into a day of the trace: 25% but for a peak from 12:00
/// into the day, rising 6 points a minute for 10 minutes, saturated (96%) for 10, then falling
/// 2 points a minute.
fn cpu(minute: i64) -> f64 {
    match minute % 1440 - 720 {
        m @ 0..10 => 25.0 + 6.0 * m as f64,
        10..20 => 96.0,
        m @ 20..50 => 85.0 - 2.0 * (m - 20) as f64,
        _ => 25.0,
    }
}

/// A policy of the service adding a task when CPU is above `above` for 3 minutes.
fn policy(cluster: &str, above: u32) -> String {
    format!(
        "version: 1
name: web
target:
  ecs_service: {{ cluster: {cluster}, service: web }}
capacity: {{ min: 2, max: 8 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ClusterName: {cluster}, ServiceName: web }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: {above}, for: 3m }}, add: 1 }}
scale_in:
  - {{ when: {{ metric: cpu, below: 30, for: 10m }}, remove: 1 }}
guards:
  cooldown: {{ out: 3m, in: 10m }}
"
    )
}

fn write(dir: &Path, name: &str, yaml: &str) {
    fs::write(dir.join(format!("{name}.yaml")), yaml).expect("writing a policy");
}

/// The container insights task count `name` of the service.
fn task_count(cluster: &str, name: &str) -> MetricId {
    MetricId {
        namespace: "ECS/ContainerInsights".into(),
        name: name.into(),
        dimensions: vec![
            ("ClusterName".into(), cluster.into()),
            ("ServiceName".into(), "web".into()),
        ],
    }
}

/// The `set` row of a human report: under, cap-h, actions, flaps, reversals.
fn row(stdout: &str, set: &str) -> (u64, f64, u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{set} ")))
        .unwrap_or_else(|| panic!("no {set} row: {stdout}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| cells[i].parse::<f64>().expect("a number");
    (
        number(1) as u64,
        number(2),
        number(3) as u64,
        number(4) as u64,
        number(5) as u64,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn backtest_compares_the_sets_on_written_history() {
    let config = capstan_tests::sdk_config().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let cluster = capstan_tests::unique("backtest");
    let minutes: Vec<DateTime<Utc>> =
        fleet::last_complete_minutes(Utc::now() - TimeDelta::minutes(1), 14 * 1440);
    // The days of the trace start so that each peak starts on the hour: predictive scaling
    // acts per clock hour, so its figures would otherwise depend on when the test runs.
    let to_the_hour = i64::from((60 - minutes[0].minute()) % 60);
    let series = |value: &dyn Fn(i64) -> f64| {
        minutes
            .iter()
            .zip(0..)
            .map(|(at, i)| (*at, value(i - to_the_hour)))
            .collect::<Vec<_>>()
    };
    // Four tasks ran throughout: the work is CPU x 4 (100 at 25%, 384 saturated).
    fleet::put_metric(
        &cloudwatch,
        &MetricId::ecs_cpu(&cluster, "web"),
        &series(&cpu),
    )
    .await;
    for name in ["RunningTaskCount", "DesiredTaskCount"] {
        fleet::put_metric(&cloudwatch, &task_count(&cluster, name), &series(&|_| 4.0)).await;
    }
    let current = tempfile::tempdir().expect("tempdir");
    write(current.path(), "web", &policy(&cluster, 80));
    let proposed = tempfile::tempdir().expect("tempdir");
    write(proposed.path(), "web", &policy(&cluster, 60));
    let dir = |d: &tempfile::TempDir| d.path().to_str().expect("UTF-8 path").to_owned();
    let plot = current.path().join("web.svg");

    let output = backtest(&[
        &dir(&current),
        "--against",
        &dir(&proposed),
        "--plot",
        plot.to_str().expect("UTF-8 path"),
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("1-minute datapoints (CloudWatch keeps them 15 days)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("capacity history: ECS/ContainerInsights RunningTaskCount, DesiredTaskCount"),
        "{stdout}"
    );
    // 10 saturated minutes a day for 14 days.
    assert!(
        stdout.contains(
            "demand: cpu (AWS/ECS/CPUUtilization) x capacity in service; 140 saturated minutes"
        ),
        "{stdout}"
    );
    // Each day, the ramp outruns 3 tasks at 300 from its 10th minute: above 80% from the 7th,
    // the current policy's tasks serve from the 15th (5 minutes short); above 60% from the 5th,
    // the proposed policy's from the 13th (3 short).
    let (current_under, current_hours, current_actions, _, _) = row(&stdout, "current");
    let (proposed_under, proposed_hours, _, _, _) = row(&stdout, "proposed");
    let actual = row(&stdout, "actual");
    assert_eq!((current_under, proposed_under), (70, 42), "{stdout}");
    assert!(
        current_actions >= 28,
        "a scale-out and a scale-in a day at least: {stdout}"
    );
    assert!(proposed_hours > current_hours, "{stdout}");
    // Four tasks for 14 days, never changed, saturated 140 minutes.
    assert_eq!(actual, (140, 4.0 * 14.0 * 24.0, 0, 0, 0), "{stdout}");
    // The baselines on the same demand, at the current policy's scale-out threshold.
    assert!(
        stdout.contains(
            "(baselines: at target 80, from the policy's scale_out on the demand metric)"
        ),
        "{stdout}"
    );
    let baselines: Vec<(u64, u64, u64, u64)> = ["target-tracking", "step", "hpa", "predictive"]
        .iter()
        .map(|name| {
            let (under, _, actions, flaps, reversals) = row(&stdout, name);
            (under, actions, flaps, reversals)
        })
        .collect();
    // Target tracking at 80% (3 minutes above it) adds capacity later than the current policy
    // and misses 7 minutes of each peak, step scaling (alarm at 90%) 8, the HPA (no alarm to
    // wait for) 5; predictive scaling forecasts each peak from the second day on and misses only
    // the first day's 7 minutes. Each scales out and back in once a day at least (28
    // reversals), one a day within the hour of the action before (14 flaps).
    assert_eq!(
        baselines,
        [
            (98, 99, 14, 28),
            (112, 114, 14, 28),
            (70, 113, 14, 28),
            (7, 34, 14, 28)
        ],
        "{stdout}"
    );

    let svg = fs::read_to_string(&plot).expect("the plot was written");
    for series in [
        "demand (units needed)",
        "current desired",
        "proposed in service",
        "actual desired",
    ] {
        assert!(svg.contains(series), "{series} not in the plot");
    }

    // The same as JSON and CSV.
    let output = backtest(&[&dir(&current), "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let web = &json["policies"][0];
    assert_eq!(web["saturated_minutes"], 140, "{json:#}");
    assert_eq!(web["summaries"][0]["set"], "current", "{json:#}");
    assert_eq!(
        web["summaries"][0]["summary"]["under_provisioned"], current_under,
        "{json:#}"
    );
    assert_eq!(json["resolution"]["period_secs"], 60, "{json:#}");
    let output = backtest(&[&dir(&current), "--output", "csv"]);
    let csv = text(&output.stdout);
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("web,current,20160,{current_under},"))),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_reason() {
    let cluster = capstan_tests::unique("backtest-none");
    let policies = tempfile::tempdir().expect("tempdir");
    write(policies.path(), "web", &policy(&cluster, 80));
    let dir = policies.path().to_str().expect("UTF-8 path");

    // No capacity history: said, and the exit status is 1.
    let output = backtest(&[dir, "--since", "1h"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("not replayed: current: no capacity history: ECS/ContainerInsights"),
        "{stdout}"
    );
    assert!(stderr.contains("no policy could be replayed"), "{stderr}");

    let output = backtest(&[dir, "--since", "70d"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--since 70d is beyond CloudWatch's retention"),
        "{}",
        text(&output.stderr)
    );

    let output = backtest(&[dir, "--output", "xml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown output `xml`"));

    let output = backtest(&[dir, "--against", "/nonexistent/policies"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--against /nonexistent/policies: not a readable directory"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_capacity_metrics_the_decision_log_is_read() {
    let config = capstan_tests::sdk_config().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let group = capstan_tests::unique("backtest-group");
    let table = capstan_tests::unique("backtest-state");
    capstan_aws::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    // A day of 30% CPU; the group had 2 instances for its first half and 5 for its second, as
    // the evaluations every 5 minutes found them (no group metrics were collected).
    let minutes = fleet::last_complete_minutes(Utc::now() - TimeDelta::minutes(1), 1440);
    let cpu = MetricId::asg_cpu(&group);
    let trace: Vec<_> = minutes.iter().map(|at| (*at, 30.0)).collect();
    fleet::put_metric(&cloudwatch, &cpu, &trace).await;
    let target = Target::AutoscalingGroup {
        name: group.clone(),
    };
    let decisions: Vec<Decision<'_>> = minutes
        .iter()
        .step_by(5)
        .zip(0..)
        .map(|(at, i)| Decision {
            target: &target,
            policy: "batch",
            at: *at + TimeDelta::seconds(30),
            evaluator: "test",
            outcome: serde_json::json!({
                "policy": "batch",
                "decision": { "current": if i < 144 { 2 } else { 5 } },
            })
            .to_string(),
        })
        .collect();
    let store = DynamoStateStore::new(dynamodb, &table);
    for written in store.log_decisions(&decisions).await {
        written.expect("logging a decision");
    }
    let policies = tempfile::tempdir().expect("tempdir");
    let yaml = fleet::cpu_policy(
        "batch",
        &format!("autoscaling_group: {{ name: {group} }}"),
        "{ min: 1, max: 10 }",
        &cpu,
        1,
        "5m",
    );
    write(policies.path(), "batch", &yaml);
    let dir = policies.path().to_str().expect("UTF-8 path");

    let output = backtest(&[dir, "--since", "1d", "--state-table", &table]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("capacity history: capstan's decision log"),
        "{stdout}"
    );
    let (saturated, hours, actions, flaps, _) = row(&stdout, "actual");
    assert_eq!((saturated, actions, flaps), (0, 1, 0), "{stdout}");
    // 2 instances for about 12 hours and 5 for about 12.
    assert!((83.0..=85.0).contains(&hours), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_scaling_group_is_read_from_its_group_metrics() {
    let config = capstan_tests::sdk_config().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let group = capstan_tests::unique("backtest-metrics");
    // A day of 30% CPU; the group was asked for 5 instances instead of 2 halfway through, and
    // they served 4 minutes later.
    let minutes = fleet::last_complete_minutes(Utc::now() - TimeDelta::minutes(1), 1440);
    let series = |value: &dyn Fn(usize) -> f64| {
        minutes
            .iter()
            .enumerate()
            .map(|(i, at)| (*at, value(i)))
            .collect::<Vec<_>>()
    };
    let cpu = MetricId::asg_cpu(&group);
    fleet::put_metric(&cloudwatch, &cpu, &series(&|_| 30.0)).await;
    let group_metric = |name: &str| MetricId {
        namespace: "AWS/AutoScaling".into(),
        name: name.into(),
        dimensions: vec![("AutoScalingGroupName".into(), group.clone())],
    };
    let step = |at: usize| move |i: usize| if i < at { 2.0 } else { 5.0 };
    fleet::put_metric(
        &cloudwatch,
        &group_metric("GroupDesiredCapacity"),
        &series(&step(720)),
    )
    .await;
    fleet::put_metric(
        &cloudwatch,
        &group_metric("GroupInServiceInstances"),
        &series(&step(724)),
    )
    .await;
    let policies = tempfile::tempdir().expect("tempdir");
    let yaml = fleet::cpu_policy(
        "batch",
        &format!("autoscaling_group: {{ name: {group} }}"),
        "{ min: 1, max: 10 }",
        &cpu,
        1,
        "5m",
    );
    write(policies.path(), "batch", &yaml);

    let output = backtest(&[
        policies.path().to_str().expect("UTF-8 path"),
        "--since",
        "1d",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "capacity history: AWS/AutoScaling GroupInServiceInstances, GroupDesiredCapacity"
        ),
        "{stdout}"
    );
    let (saturated, hours, actions, flaps, _) = row(&stdout, "actual");
    assert_eq!((saturated, actions, flaps), (0, 1, 0), "{stdout}");
    assert!((83.0..=85.0).contains(&hours), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_15_days_five_minute_datapoints_are_read() {
    let config = capstan_tests::sdk_config().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let cluster = capstan_tests::unique("backtest-20d");
    // 20 days of five-minute datapoints: 25% CPU on 4 tasks.
    let now = fleet::minute_start(Utc::now());
    let points = |value: f64| {
        (1..=20 * 288)
            .rev()
            .map(|back| (now - TimeDelta::minutes(5 * back), value))
            .collect::<Vec<_>>()
    };
    fleet::put_metric(
        &cloudwatch,
        &MetricId::ecs_cpu(&cluster, "web"),
        &points(25.0),
    )
    .await;
    for name in ["RunningTaskCount", "DesiredTaskCount"] {
        fleet::put_metric(&cloudwatch, &task_count(&cluster, name), &points(4.0)).await;
    }
    let policies = tempfile::tempdir().expect("tempdir");
    write(policies.path(), "web", &policy(&cluster, 80));

    let output = backtest(&[
        policies.path().to_str().expect("UTF-8 path"),
        "--since",
        "20d",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("5-minute datapoints (CloudWatch keeps them 63 days)"),
        "{stdout}"
    );
    let (saturated, hours, actions, _, _) = row(&stdout, "actual");
    assert_eq!((saturated, actions), (0, 0), "{stdout}");
    // Each five-minute datapoint fills its five minutes: 4 tasks throughout.
    assert_eq!(hours, 4.0 * 20.0 * 24.0, "{stdout}");
    // 100 units of work: 2 tasks at 50%, the policy's minimum, after scaling in from 4.
    let (under, replayed_hours, _, _, _) = row(&stdout, "current");
    assert_eq!(under, 0, "{stdout}");
    assert!(replayed_hours < hours, "{stdout}");
}
