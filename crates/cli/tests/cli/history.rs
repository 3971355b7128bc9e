//! `capstan history` after a real evaluator run against moto: the evaluator binary scales an
//! ECS service on a tick and is held back by its cooldown on the next; the history shows both,
//! newest first, from the state table's decision log.

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use capstan_tests::events::tick;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::LambdaEvaluator;

/// Runs `capstan history` with `args` against the emulator.
fn history(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("history")
        .args(["--endpoint", &capstan_tests::endpoint()])
        .args(args)
        .output()
        .expect("running capstan history")
}

#[tokio::test(flavor = "multi_thread")]
async fn history_prints_an_evaluators_decisions_newest_first() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("history");
    let table = capstan_tests::unique("history-state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    fleet::steady_ecs_service(&ecs, &cluster, "hot", 2).await;
    fleet::steady_ecs_service(&ecs, &cluster, "idle", 2).await;
    let now = Utc::now();
    let minutes = fleet::window_minutes(now, 6);
    let trace: Vec<_> = minutes.iter().map(|at| (*at, 90.0)).collect();
    fleet::put_metric(&cloudwatch, &MetricId::ecs_cpu(&cluster, "hot"), &trace).await;

    let policies = tempfile::tempdir().expect("tempdir");
    let dir = policies.path().to_str().expect("UTF-8 path");
    fs::write(
        policies.path().join("hot.yaml"),
        fleet::ecs_cpu_policy(&cluster, "hot", "10m"),
    )
    .expect("writing a policy");
    // `idle` is not in the evaluator's set: nothing is logged for it.
    let idle = tempfile::tempdir().expect("tempdir");
    fs::write(
        idle.path().join("idle.yaml"),
        fleet::ecs_cpu_policy(&cluster, "idle", "10m"),
    )
    .expect("writing a policy");

    let evaluator = LambdaEvaluator::over(policies.path(), &table, &[]);
    // Two ticks: 2 -> 4, then the cooldown holds the next scale-out back.
    for at in [now, now + Duration::from_secs(1)] {
        let answer = evaluator.invoke(&tick(at)).expect("tick");
        assert_eq!(
            answer["outcomes"].as_array().map(Vec::len),
            Some(1),
            "{answer:#}"
        );
    }
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, "hot").await, 4);

    let idle_dir = idle.path().to_str().expect("UTF-8 path");
    let output = history(&[dir, idle_dir, "--state-table", &table]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines[0],
        format!("hot (ecs_service {cluster}/hot)"),
        "{stdout}"
    );
    let rows: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    // Newest first: the cooldown's block, then the change.
    // Each row: time, change, status, rule, evaluator.
    let fields = |row: &str| {
        let words: Vec<&str> = row.split(' ').collect();
        assert!(words[words.len() - 1].starts_with("invocation-"), "{row}");
        words[1..words.len() - 1].join(" ")
    };
    assert_eq!(
        fields(rows[0]),
        "4 -> 4 blocked by cooldown scale_out[0]",
        "{stdout}"
    );
    assert_eq!(fields(rows[1]), "2 -> 4 applied scale_out[0]", "{stdout}");
    assert!(
        stdout.contains("scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 4"),
        "{stdout}"
    );
    assert!(stdout.contains("clamp cooldown: "), "{stdout}");
    assert!(
        lines.contains(&format!("idle (ecs_service {cluster}/idle)"))
            && lines.contains(&"no decisions in the last 2h".to_owned()),
        "{stdout}"
    );

    // The same as JSON, with each outcome in full.
    let output = history(&[dir, "--state-table", &table, "--output", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let entries = &json[0]["entries"];
    assert_eq!(entries.as_array().map(Vec::len), Some(2), "{json:#}");
    assert_eq!(entries[0]["status"], "blocked by cooldown", "{json:#}");
    assert_eq!(entries[1]["status"], "applied", "{json:#}");
    assert_eq!(
        (&entries[1]["current"], &entries[1]["desired"]),
        (&2.into(), &4.into())
    );
    assert_eq!(
        entries[1]["outcome"]["result"]["status"], "applied",
        "{json:#}"
    );
    assert!(
        entries[0]["at"].as_str() > entries[1]["at"].as_str(),
        "{json:#}"
    );

    // A table that does not exist: an error naming the read, exit 1.
    let output = history(&[dir, "--state-table", "no-such-table"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reading the decision log of hot"),
        "{stderr}"
    );
    assert!(stderr.contains("dynamodb:Query"), "{stderr}");
}
