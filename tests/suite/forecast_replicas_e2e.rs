//! End to end: the real evaluator binary learns two days of a database's read requests from
//! CloudWatch, with a daily peak hour, and its `rds_replicas` policy planned `ahead_of:
//! forecast` creates a read replica in moto in the quiet hour before the peak and retires it
//! after; a source busy all through that hour gets no replica, and the blocked decision saying
//! so is published to the decisions topic.

use std::fs;
use std::path::Path;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use serde_json::Value;

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
