//! End to end: the real evaluator binary learns a forecast floor from two days of requests it
//! reads from CloudWatch, raises an ECS service ahead of the forecast peak, and keeps the
//! history in the state table, read again only after an hour.

use std::collections::BTreeSet;
use std::fs;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};

use capstan_engine::ResourceState;
use capstan_tests::events::tick;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::LambdaEvaluator;
use capstan_tests::state_table;

/// The remembered state of the one resource in `table`.
async fn saved_state(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> ResourceState {
    let items = state_table::scan(dynamodb, table).await;
    let memory = items
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|sk| sk.as_s().ok())
                .map(String::as_str)
                == Some("state")
        })
        .find_map(|item| item.get("memory")?.as_s().ok())
        .expect("a saved state");
    serde_json::from_str(memory).expect("the state's JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forecast_floor_is_learnt_from_cloudwatch_and_its_history_kept_in_the_state_table() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("forecast");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    fleet::steady_ecs_service(&ecs, &cluster, "shop", 2).await;
    let requests = MetricId {
        namespace: capstan_tests::unique("Shop/Requests"),
        name: "RequestCount".into(),
        dimensions: vec![("Service".into(), "shop".into())],
    };
    let policies = tempfile::tempdir().expect("tempdir");
    fs::write(
        policies.path().join("shop.yaml"),
        format!(
            "version: 1
name: shop
target: {{ ecs_service: {{ cluster: {cluster}, service: shop }} }}
capacity: {{ min: 1, max: 20 }}
metrics:
  requests: {{ namespace: {namespace}, name: RequestCount, dimensions: {{ Service: shop }}, stat: Sum, period: 1m }}
forecast: {{ metric: requests, per_replica: 100, history: 2d, lead: 10m }}
",
            namespace = requests.namespace
        ),
    )
    .expect("writing the policy");

    // Two days of 500 requests a minute, 900 in the hours of the day that now and ten minutes
    // on fall in.
    let now = Utc::now();
    let hour = |at: DateTime<Utc>| at.duration_trunc(TimeDelta::hours(1)).expect("an hour");
    let busy = [now.hour(), (now + TimeDelta::minutes(10)).hour()];
    let points: Vec<(DateTime<Utc>, f64)> = fleet::last_complete_minutes(now, 2 * 24 * 60)
        .into_iter()
        .map(|at| {
            (
                at,
                if busy.contains(&at.hour()) {
                    900.0
                } else {
                    500.0
                },
            )
        })
        .collect();
    fleet::put_metric(&cloudwatch, &requests, &points).await;

    let evaluator = LambdaEvaluator::replaying(policies.path(), &table, &[]);

    let answer = evaluator.invoke(&tick(now)).expect("a tick");
    assert_eq!(
        fleet::ecs_desired(&ecs, &cluster, "shop").await,
        9,
        "{answer:#}"
    );
    let first = saved_state(&dynamodb, &table).await;
    let history = first.history.expect("the history is kept");
    let hours: BTreeSet<DateTime<Utc>> = points.iter().map(|(at, _)| hour(*at)).collect();
    assert_eq!(history.peaks.len(), hours.len(), "{:?}", history.peaks);

    // A minute later the history is not read again: the state keeps the first read.
    let later = now + TimeDelta::minutes(1);
    evaluator.invoke(&tick(later)).expect("a second tick");
    let second = saved_state(&dynamodb, &table).await;
    assert_eq!(second.history.map(|h| h.read_at), Some(history.read_at));
}
