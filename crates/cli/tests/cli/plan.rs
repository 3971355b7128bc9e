//! `capstan plan` run as an operator would, against moto: an ECS service and an Auto Scaling
//! group with CPU written to CloudWatch. It prints and exits 2 when something would change, 0
//! when nothing would, 1 when a resource cannot be read, and it never changes anything.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{TimeDelta, Utc};
use serde_json::Value;

use capstan_aws::DynamoStateStore;
use capstan_engine::model::Target;
use capstan_engine::{Change, Direction, ResourceState};
use capstan_runner::ports::StateStore;
use capstan_tests::fleet::{self, MetricId};

/// Runs `capstan plan` with `args` against the emulator.
fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("plan")
        .args(["--endpoint", &capstan_tests::endpoint()])
        .args(args)
        .output()
        .expect("running capstan plan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A policy adding 2 when `metric` is above 70 for 5 minutes, with a 10 minute cooldown.
fn policy(name: &str, target: &str, metric: &MetricId) -> String {
    fleet::cpu_policy(name, target, "{ min: 1, max: 10 }", metric, 2, "10m")
}

fn write(dir: &Path, name: &str, yaml: &str) {
    fs::write(dir.join(format!("{name}.yaml")), yaml).expect("writing a policy");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_reports_changes_and_changes_nothing() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let cluster = capstan_tests::unique("plan");
    let group = capstan_tests::unique("plan-web");
    fleet::steady_ecs_service(&ecs, &cluster, "hot", 2).await;
    fleet::autoscaling_group(&asg, &group, 1, 5, 2).await;

    let hot_cpu = MetricId::ecs_cpu(&cluster, "hot");
    let group_cpu = MetricId::asg_cpu(&group);
    // Nine minutes ending with the newest a window holds three minutes from now (with the
    // default delay), so that the five-minute windows stay full if a minute ends while the
    // test runs.
    let now = Utc::now();
    let minutes = fleet::window_minutes(now + TimeDelta::minutes(3), 9);
    let trace = |value: f64| minutes.iter().map(|at| (*at, value)).collect::<Vec<_>>();
    fleet::put_metric(&cloudwatch, &hot_cpu, &trace(90.0)).await;
    fleet::put_metric(&cloudwatch, &group_cpu, &trace(40.0)).await;

    let hot_target = format!("ecs_service: {{ cluster: {cluster}, service: hot }}");
    let all = tempfile::tempdir().expect("tempdir");
    write(all.path(), "hot", &policy("hot", &hot_target, &hot_cpu));
    let group_policy = policy(
        "web",
        &format!("autoscaling_group: {{ name: {group} }}"),
        &group_cpu,
    );
    write(all.path(), "web", &group_policy);
    let quiet = tempfile::tempdir().expect("tempdir");
    write(quiet.path(), "web", &group_policy);
    let dir = |d: &tempfile::TempDir| d.path().to_str().expect("UTF-8 path").to_owned();

    // A breach: exit 2, the change and the rule behind it, for every policy.
    let output = plan(&[&dir(&all)]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let row = |policy: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{policy} ")))
            .unwrap_or_else(|| panic!("no row for {policy}: {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("hot"),
        format!("hot ecs_service {cluster}/hot 2 -> 4 tasks scale_out[0] -")
    );
    assert_eq!(
        row("web"),
        format!("web autoscaling_group {group} 2 -> 2 instances - -")
    );
    assert!(
        stdout.contains("no --state-table: assuming no earlier actions"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hot: scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 to change, 1 unchanged, 0 failed"),
        "{stdout}"
    );

    // The same as JSON.
    let output = plan(&[&dir(&all), "--output", "json"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["changes"], 1, "{json:#}");
    let hot = &json["policies"][0];
    assert_eq!(
        (
            &hot["policy"],
            &hot["status"],
            &hot["current"],
            &hot["desired"],
            &hot["unit"]
        ),
        (
            &"hot".into(),
            &"change".into(),
            &2.into(),
            &4.into(),
            &"tasks".into()
        ),
        "{json:#}"
    );
    assert_eq!(
        hot["outcome"]["result"]["status"], "would_apply",
        "{json:#}"
    );
    assert_eq!(json["policies"][1]["status"], "no_change", "{json:#}");

    // Nothing to change: exit 0.
    let output = plan(&[&dir(&quiet)]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    // With the state table, a scale-out a minute ago holds hot in its cooldown: exit 0.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = capstan_tests::unique("plan-state");
    capstan_aws::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    let hot_service = Target::EcsService {
        cluster: cluster.clone(),
        service: "hot".into(),
    };
    let action = Change {
        at: Utc::now() - TimeDelta::minutes(1),
        direction: Direction::Out,
        from: 1,
        to: 2,
    };
    let state = ResourceState {
        changes: vec![action],
        ..ResourceState::default()
    };
    let store = DynamoStateStore::new(dynamodb, &table);
    store
        .acquire_lease(&hot_service, "earlier-evaluation")
        .await
        .expect("taking the lease");
    store
        .save(&hot_service, "earlier-evaluation", &state)
        .await
        .expect("saving the state");
    let output = plan(&[&dir(&all), "--state-table", &table]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("cooldown state from {table}")),
        "{stdout}"
    );
    assert!(stdout.contains("cooldown 4->2"), "{stdout}");

    // A service that does not exist: exit 1, naming it, after the plan of the others.
    let missing = tempfile::tempdir().expect("tempdir");
    let gone = format!("ecs_service: {{ cluster: {cluster}, service: gone }}");
    write(missing.path(), "gone", &policy("gone", &gone, &hot_cpu));
    write(missing.path(), "web", &group_policy);
    let output = plan(&[&dir(&missing)]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{cluster}/gone")), "{stdout}");
    assert!(
        stderr.contains("1 of 2 policies could not be evaluated"),
        "{stderr}"
    );

    // Plan changed nothing.
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, "hot").await, 2);
    assert_eq!(fleet::asg_desired(&asg, &group).await, 2);
}
