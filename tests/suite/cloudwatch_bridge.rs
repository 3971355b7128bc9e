//! The Rust CloudWatch client against moto, through the RPC v2 CBOR bridge in
//! `tests/emulator/bridge.py`. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite cloudwatch_bridge::`.

use std::time::SystemTime;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy, StandardUnit,
    Statistic,
};
use aws_smithy_types::DateTime;
use capstan_tests::{sdk_config, unique};

async fn client() -> Client {
    Client::new(&sdk_config().await)
}

/// Start of a whole minute ten minutes ago, in epoch seconds.
fn minute_ten_minutes_ago() -> i64 {
    (DateTime::from(SystemTime::now()).secs() / 60 - 10) * 60
}

fn sum_per_minute(namespace: &str, metric_name: &str) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(metric_name)
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(60)
        .stat("Sum")
        .build();
    MetricDataQuery::builder()
        .id("depth")
        .metric_stat(stat)
        .build()
}

#[tokio::test]
async fn put_metric_data_then_get_metric_data_returns_values_and_timestamps() {
    let client = client().await;
    let namespace = unique("capstan/bridge");
    let start = minute_ten_minutes_ago();
    // Offsets in seconds: 59.75 belongs to the first minute only if its fraction survives.
    let points = [(59.75, 1.5), (60.25, 2.0), (61.5, 4.0)];
    for (offset, value) in points {
        let datum = MetricDatum::builder()
            .metric_name("QueueDepth")
            .timestamp(DateTime::from_secs_f64(start as f64 + offset))
            .value(value)
            .unit(StandardUnit::Count)
            .build();
        client
            .put_metric_data()
            .namespace(&namespace)
            .metric_data(datum)
            .send()
            .await
            .expect("PutMetricData");
    }

    let output = client
        .get_metric_data()
        .metric_data_queries(sum_per_minute(&namespace, "QueueDepth"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start + 120))
        .scan_by(ScanBy::TimestampAscending)
        .send()
        .await
        .expect("GetMetricData");

    let [result] = output.metric_data_results() else {
        panic!("expected one result, got {output:?}");
    };
    assert_eq!(result.id(), Some("depth"));
    assert_eq!(result.values(), [1.5, 6.0]);
    assert_eq!(
        result.timestamps(),
        [DateTime::from_secs(start), DateTime::from_secs(start + 60)]
    );
}

#[tokio::test]
async fn put_metric_alarm_then_describe_alarms_returns_the_alarm() {
    let client = client().await;
    let name = unique("capstan-bridge-alarm");
    let before = DateTime::from(SystemTime::now()).secs();
    client
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("capstan/bridge")
        .metric_name("QueueDepth")
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(2)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");

    let output = client
        .describe_alarms()
        .alarm_names(&name)
        .send()
        .await
        .expect("DescribeAlarms");

    let [alarm] = output.metric_alarms() else {
        panic!("expected one alarm, got {output:?}");
    };
    assert_eq!(alarm.alarm_name(), Some(name.as_str()));
    assert_eq!(alarm.threshold(), Some(5.0));
    assert_eq!(alarm.evaluation_periods(), Some(2));
    assert_eq!(
        alarm.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold)
    );
    let updated = alarm
        .state_updated_timestamp()
        .expect("StateUpdatedTimestamp")
        .secs();
    assert!(
        (before - 1..=before + 60).contains(&updated),
        "state updated at {updated}, alarm created at about {before}"
    );
}

#[tokio::test]
async fn rejected_metric_data_is_a_typed_service_error() {
    let client = client().await;
    // moto, like CloudWatch, refuses a datum that has both Value and Values.
    let datum = MetricDatum::builder()
        .metric_name("QueueDepth")
        .value(1.0)
        .values(2.0)
        .build();

    let error = client
        .put_metric_data()
        .namespace(unique("capstan/bridge"))
        .metric_data(datum)
        .send()
        .await
        .expect_err("Value and Values together must be rejected");

    let service_error = error
        .as_service_error()
        .unwrap_or_else(|| panic!("expected a service error, got {error:?}"));
    assert!(
        matches!(
            service_error,
            PutMetricDataError::InvalidParameterValueException(_)
        ),
        "got {service_error:?}"
    );
    assert_eq!(service_error.code(), Some("InvalidParameterValue"));
    assert!(
        service_error
            .message()
            .is_some_and(|message| message.contains("mutually exclusive")),
        "got {service_error:?}"
    );
}

#[tokio::test]
async fn end_time_before_start_time_is_a_service_error_with_a_code() {
    let client = client().await;
    let start = minute_ten_minutes_ago();

    let error = client
        .get_metric_data()
        .metric_data_queries(sum_per_minute(&unique("capstan/bridge"), "QueueDepth"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start - 600))
        .send()
        .await
        .expect_err("EndTime before StartTime must be rejected");

    let service_error = error
        .as_service_error()
        .unwrap_or_else(|| panic!("expected a service error, got {error:?}"));
    assert_eq!(service_error.code(), Some("ValidationError"));
    assert!(
        service_error
            .message()
            .is_some_and(|message| message.contains("EndTime")),
        "got {service_error:?}"
    );
}
