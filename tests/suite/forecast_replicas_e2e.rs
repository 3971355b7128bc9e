//! End to end: the real evaluator binary learns two days of a database's read requests from
//! CloudWatch, with a daily peak hour, and its `rds_replicas` policy planned `ahead_of:
//! forecast` creates a read replica in moto in the quiet hour before the peak and retires it
//! after; a source busy all through that hour gets no replica, and the blocked decision saying
//! so is published to the decisions topic. With a read-only ECS service on the database, the
//! replica's connection budget lets the service grow once the replica is available, and the
//! replica is retired only once the service's connections fit the source again.

use std::fs;
use std::path::Path;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use serde_json::Value;

use capstan_tests::answers::{self, clamped_by};
use capstan_tests::events::tick;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::LambdaEvaluator;
use capstan_tests::topic::ObservedTopic;

/// A database `db` in moto, its read requests (`MetricId`) with two days of history ending
/// now: 900 a minute in the hour `peak` starts every day, 100 in the others; and its replica
/// policy, written to `dir`: up to 3 replicas, 500 reads a minute each (the source serving as
/// one), wanted an hour before the peak, created while the source's CPU has been below 40 for
/// 10 minutes, retired 30 minutes after the peak's hour.
async fn database(
    config: &aws_config::SdkConfig,
    dir: &Path,
    peak: DateTime<Utc>,
) -> (String, MetricId) {
    let rds = aws_sdk_rds::Client::new(config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let db = capstan_tests::unique("orders-db");
    fleet::rds_source(&rds, &db, 1).await;
    let reads = MetricId {
        namespace: capstan_tests::unique("Orders/Reads"),
        name: "ReadRequests".into(),
        dimensions: vec![("DBInstanceIdentifier".into(), db.clone())],
    };
    let now = Utc::now();
    let minutes = (now - peak + TimeDelta::days(2) + TimeDelta::hours(2)).num_minutes();
    let points: Vec<(DateTime<Utc>, f64)> = fleet::last_complete_minutes(now, minutes)
        .into_iter()
        .map(|at| {
            (
                at,
                if at.hour() == peak.hour() {
                    900.0
                } else {
                    100.0
                },
            )
        })
        .collect();
    fleet::put_metric(&cloudwatch, &reads, &points).await;
    fs::write(
        dir.join("replicas.yaml"),
        format!(
            "version: 1
name: {db}-replicas
target: {{ rds_replicas: {{ source: {db} }} }}
capacity: {{ min: 0, max: 3 }}
metrics:
  source_cpu: {{ namespace: AWS/RDS, name: CPUUtilization, dimensions: {{ DBInstanceIdentifier: {db} }}, stat: Average, period: 1m }}
  reads: {{ namespace: {namespace}, name: ReadRequests, dimensions: {{ DBInstanceIdentifier: {db} }}, stat: Sum, period: 1m }}
forecast: {{ metric: reads, per_replica: 500, history: 2d }}
replicas:
  ahead_of: forecast
  lead: 1h
  retire_after: 30m
  quiet: {{ metric: source_cpu, below: 40, for: 10m }}
",
            namespace = reads.namespace
        ),
    )
    .expect("writing the policy");
    (db, reads)
}

/// The source's CPU at `value` over the ten minutes a quiet window at `at` reads.
async fn source_cpu(config: &aws_config::SdkConfig, db: &str, at: DateTime<Utc>, value: f64) {
    let points: Vec<(DateTime<Utc>, f64)> = fleet::window_minutes(at, 10)
        .into_iter()
        .map(|minute| (minute, value))
        .collect();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    fleet::put_metric(&cloudwatch, &MetricId::rds_cpu(db), &points).await;
}

/// The evaluator in replay over the policies in `dir`, keeping its state in a new table, with
/// the settings `more`.
async fn evaluator(
    config: &aws_config::SdkConfig,
    dir: &Path,
    more: &[(&str, &str)],
) -> LambdaEvaluator {
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&aws_sdk_dynamodb::Client::new(config), &table)
        .await
        .expect("creating the state table");
    LambdaEvaluator::replaying(dir, &table, more)
}

/// The one outcome of a tick's answer.
fn outcome(answer: &Value) -> &Value {
    &answer["outcomes"][0]
}

/// The summary of the outcome's decision.
fn summary(answer: &Value) -> &str {
    outcome(answer)["decision"]["explanation"]["summary"]
        .as_str()
        .unwrap_or_else(|| panic!("a decision: {answer:#}"))
}

/// The start of the hour five hours ago: every tick around it is in the past.
fn peak_hour() -> DateTime<Utc> {
    (Utc::now() - TimeDelta::hours(5))
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour")
}

/// `minutes` (and 30 seconds) after `peak`.
fn at(peak: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    peak + TimeDelta::minutes(minutes) + TimeDelta::seconds(30)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_is_created_in_the_quiet_hour_before_a_forecast_peak_and_retired_after_it() {
    let config = capstan_tests::sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let peak = peak_hour();
    let (db, _) = database(&config, dir.path(), peak).await;
    let evaluator = evaluator(&config, dir.path(), &[]).await;

    // 55 minutes before the peak: wanted, but the source is busy, so nothing is created.
    source_cpu(&config, &db, at(peak, -55), 80.0).await;
    let busy = evaluator.invoke(&tick(at(peak, -55))).expect("a tick");
    assert_eq!(outcome(&busy)["result"]["status"], "unchanged", "{busy:#}");
    assert!(
        summary(&busy).starts_with("resource busy (the source is not quiet"),
        "{busy:#}"
    );
    assert!(fleet::rds_replicas(&rds, &db).await.is_empty());

    // 40 minutes before: quiet for ten minutes, so one replica is created, tagged as capstan's.
    source_cpu(&config, &db, at(peak, -40), 12.0).await;
    let quiet = evaluator.invoke(&tick(at(peak, -40))).expect("a tick");
    assert_eq!(outcome(&quiet)["result"]["status"], "applied", "{quiet:#}");
    let hour = peak.format("%H:%M UTC").to_string();
    assert!(
        summary(&quiet).contains(&format!(
            "replicas ahead of forecast: 1 wanted, source quiet (source_cpu below 40 for 10 of 10 datapoints, 0 missing); forecast of reads 900.0 at {hour}"
        )),
        "{quiet:#}"
    );
    let replicas = fleet::rds_replicas(&rds, &db).await;
    let [(name, tags)] = replicas.as_slice() else {
        panic!("one replica: {replicas:?}");
    };
    assert!(fleet::capstan_created(tags), "{name}: {tags:?}");
    assert!(
        tags.iter().any(|t| t.key() == Some("capstan:policy")
            && t.value() == Some(format!("{db}-replicas").as_str())),
        "{tags:?}"
    );

    // During the peak's hour and up to 30 minutes after it, the replica stays.
    let during = evaluator.invoke(&tick(at(peak, 80))).expect("a tick");
    assert_eq!(
        outcome(&during)["result"]["status"],
        "unchanged",
        "{during:#}"
    );
    assert_eq!(fleet::rds_replicas(&rds, &db).await.len(), 1);

    // 35 minutes after the peak's hour: the forecast has fallen, and the replica is retired.
    source_cpu(&config, &db, at(peak, 95), 12.0).await;
    let after = evaluator.invoke(&tick(at(peak, 95))).expect("a tick");
    assert_eq!(outcome(&after)["result"]["status"], "applied", "{after:#}");
    assert_eq!(
        outcome(&after)["decision"]["explanation"]["fired"],
        "replicas.retire",
        "{after:#}"
    );
    assert!(fleet::rds_replicas(&rds, &db).await.is_empty());
    assert_eq!(fleet::rds_status(&rds, &db).await, "available");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_busy_all_the_hour_before_a_forecast_peak_gets_no_replica_and_it_is_published() {
    let config = capstan_tests::sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = ObservedTopic::create(&config, &capstan_tests::unique("decisions")).await;
    let peak = peak_hour();
    let (db, _) = database(&config, dir.path(), peak).await;
    let evaluator = evaluator(
        &config,
        dir.path(),
        &[("CAPSTAN_DECISIONS_TOPIC", &topic.arn)],
    )
    .await;

    for minutes in [-50, -30, -10, 10] {
        source_cpu(&config, &db, at(peak, minutes), 85.0).await;
        let answer = evaluator.invoke(&tick(at(peak, minutes))).expect("a tick");
        assert_eq!(
            outcome(&answer)["result"]["status"],
            "unchanged",
            "{answer:#}"
        );
        assert!(
            fleet::rds_replicas(&rds, &db).await.is_empty(),
            "{answer:#}"
        );
    }

    // Every blocked decision was published; the last, in the peak's hour, says the source was
    // not quiet before it.
    let received = topic.received().await;
    assert_eq!(received.len(), 4, "{received:#?}");
    let subject = format!("capstan: {db}-replicas blocked by resource_busy");
    assert!(
        received
            .iter()
            .all(|notice| notice["Subject"] == subject.as_str()),
        "{received:#?}"
    );
    let last: Value = serde_json::from_str(received[3]["Message"].as_str().expect("a message"))
        .expect("the message is JSON");
    assert_eq!(last["reason"], "blocked", "{last:#}");
    assert_eq!(last["blocked_by"]["kind"], "resource_busy", "{last:#}");
    let hour = peak.format("%H:%M UTC").to_string();
    let detail = last["blocked_by"]["detail"].as_str().expect("a detail");
    assert!(
        detail.starts_with(&format!(
            "the source was not quiet before the forecast peak at {hour} began, nor is it now (source_cpu below 40 for 0 of 10 datapoints, 0 missing): no replica is created from a busy source"
        )),
        "{last:#}"
    );
}

/// The read-only ECS service `readers` of `cluster` on `db` at 25 connections a task, of a
/// budget of 100 (4 tasks on the source alone), its policy written to `dir`: 1 to 10 tasks,
/// set to 8 when its CPU is above 70 for 5 minutes and to 2 when below 30.
async fn readers(config: &aws_config::SdkConfig, dir: &Path, db: &str) -> (String, MetricId) {
    let cluster = capstan_tests::unique("readers");
    fleet::steady_ecs_service(&aws_sdk_ecs::Client::new(config), &cluster, "readers", 2).await;
    let cpu = MetricId::ecs_cpu(&cluster, "readers");
    fs::write(
        dir.join("readers.yaml"),
        format!(
            "version: 1
name: {db}-readers
target: {{ ecs_service: {{ cluster: {cluster}, service: readers }} }}
capacity: {{ min: 1, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ClusterName: {cluster}, ServiceName: readers }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: 70, for: 5m }}, set: 8 }}
scale_in:
  - {{ when: {{ metric: cpu, below: 30, for: 5m }}, set: 2 }}
connections: {{ database: {db}, per_task: 25, read_only: true }}
databases:
  {db}: {{ max_connections: 100, reserve: 0 }}
"
        ),
    )
    .expect("writing the readers' policy");
    (cluster, cpu)
}

/// `metric` at `value` over the five minutes a window at `at` reads.
async fn five_minutes(
    config: &aws_config::SdkConfig,
    metric: &MetricId,
    at: DateTime<Utc>,
    value: f64,
) {
    let points: Vec<(DateTime<Utc>, f64)> = fleet::window_minutes(at, 5)
        .into_iter()
        .map(|minute| (minute, value))
        .collect();
    fleet::put_metric(&aws_sdk_cloudwatch::Client::new(config), metric, &points).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forecast_replica_lets_the_read_only_users_grow_and_is_retired_once_their_connections_fit_the_source()
 {
    let config = capstan_tests::sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let peak = peak_hour();
    let (db, _) = database(&config, dir.path(), peak).await;
    let (cluster, cpu) = readers(&config, dir.path(), &db).await;
    let evaluator = evaluator(&config, dir.path(), &[]).await;
    let (replicas, readers) = (format!("{db}-replicas"), format!("{db}-readers"));
    // A tick `minutes` after the peak's hour starts, the source quiet and the readers' CPU at
    // `readers_cpu`.
    let quiet_tick = async |minutes: i64, readers_cpu: f64| {
        source_cpu(&config, &db, at(peak, minutes), 12.0).await;
        five_minutes(&config, &cpu, at(peak, minutes), readers_cpu).await;
        evaluator.invoke(&tick(at(peak, minutes))).expect("a tick")
    };
    // The replica stays, held by the readers' connections.
    let kept_for_the_readers = async |answer: &Value| {
        let kept = answers::outcome(answer, &replicas);
        assert_eq!(kept["decision"]["desired"], 1, "{answer:#}");
        assert!(clamped_by(kept, "connection_budget"), "{answer:#}");
        assert_eq!(fleet::rds_replicas(&rds, &db).await.len(), 1);
    };

    // 40 minutes before the peak, the source quiet and the readers busy: the replica is created,
    // but while it is creating the readers get the source's budget only, 4 tasks of the 8 they
    // want.
    let creating = quiet_tick(-40, 90.0).await;
    assert_eq!(
        answers::outcome(&creating, &replicas)["result"]["status"],
        "applied",
        "{creating:#}"
    );
    assert_eq!(fleet::rds_replicas(&rds, &db).await.len(), 1);
    let held = answers::outcome(&creating, &readers);
    assert_eq!(held["decision"]["desired"], 4, "{creating:#}");
    assert!(clamped_by(held, "connection_budget"), "{creating:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, "readers").await, 4);

    // In the peak's hour the replica is available: its budget lets the readers reach 8.
    let grown = quiet_tick(20, 90.0).await;
    let grown_readers = answers::outcome(&grown, &readers);
    assert_eq!(grown_readers["decision"]["desired"], 8, "{grown:#}");
    assert!(!clamped_by(grown_readers, "connection_budget"), "{grown:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, "readers").await, 8);

    // 35 minutes after the peak's hour the plan would retire the replica, but 8 readers hold 200
    // connections, more than the source's 100: it stays.
    kept_for_the_readers(&quiet_tick(95, 90.0).await).await;

    // The readers quieten and go back to 2. The 6 tasks removed may hold their connections
    // until they have drained, so the replica still stays.
    let draining = quiet_tick(100, 10.0).await;
    assert_eq!(
        answers::outcome(&draining, &readers)["decision"]["desired"],
        2,
        "{draining:#}"
    );
    kept_for_the_readers(&draining).await;

    // Once they have drained, the readers' 50 connections fit the source: the replica is
    // retired.
    let retired = quiet_tick(110, 10.0).await;
    assert_eq!(
        answers::outcome(&retired, &replicas)["decision"]["explanation"]["fired"],
        "replicas.retire",
        "{retired:#}"
    );
    assert!(fleet::rds_replicas(&rds, &db).await.is_empty());
}
