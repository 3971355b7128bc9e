//! `CloudWatchReader` against moto (through the CBOR bridge): batching, deduplication and the
//! values read back. Run with `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_cloudwatch::`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataInput;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{TimeDelta, Utc};

use capstan_aws::CloudWatchReader;
use capstan_engine::model::{MetricQuery, Statistic};
use capstan_engine::{Datapoint, MetricData};
use capstan_runner::ports::MetricSource;
use capstan_tests::fleet::{MetricId, last_complete_minutes, put_metric};
use capstan_tests::{sdk_config, unique};

/// Counts the `GetMetricData` calls made by the client it is installed on: one per execution
/// (each page of a paginated call is one), not one per retry attempt. Client interceptors run
/// `read_before_execution` before the operation's own configuration (its name) is loaded, so the
/// call is recognised by its input's type.
#[derive(Debug, Clone, Default)]
struct GetMetricDataCalls(Arc<AtomicUsize>);

impl GetMetricDataCalls {
    /// The calls counted since the last `take`.
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for GetMetricDataCalls {
    fn name(&self) -> &'static str {
        "GetMetricDataCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .input()
            .downcast_ref::<GetMetricDataInput>()
            .is_some()
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn distinct_queries_are_batched_by_500_and_duplicates_asked_once() {
    const METRICS: usize = 600;
    let config = sdk_config().await;
    let counter = GetMetricDataCalls::default();
    let client = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .interceptor(counter.clone())
            .build(),
    );
    let namespace = unique("capstan/aws-cloudwatch");
    // moto ignores the namespace of a query with dimensions, so the name is unique too.
    let name = unique("Depth");
    let [minute] = last_complete_minutes(Utc::now(), 1)[..] else {
        panic!("one minute")
    };
    let value = |i: usize| i as f64 + 0.5;

    let data = (0..METRICS).map(|i| {
        MetricDatum::builder()
            .metric_name(&name)
            .dimensions(
                Dimension::builder()
                    .name("Queue")
                    .value(format!("q{i}"))
                    .build(),
            )
            .timestamp(aws_smithy_types::DateTime::from_secs(minute.timestamp()))
            .value(value(i))
            .build()
    });
    client
        .put_metric_data()
        .namespace(&namespace)
        .set_metric_data(Some(data.collect()))
        .send()
        .await
        .expect("PutMetricData");
    let queries: Vec<MetricQuery> = (0..METRICS)
        .map(|i| MetricQuery {
            namespace: namespace.clone(),
            name: name.clone(),
            dimensions: BTreeMap::from([("Queue".to_owned(), format!("q{i}"))]),
            stat: Statistic::Sum,
            period_secs: 60,
            math: None,
        })
        .collect();
    let expected = |i: usize| {
        MetricData::Series(vec![Datapoint {
            timestamp: minute,
            value: value(i),
        }])
    };
    let reader = CloudWatchReader::new(client);
    let (start, end) = (minute, minute + TimeDelta::minutes(1));
    counter.take();

    let observations = reader
        .read(&queries, start, end)
        .await
        .expect("reading 600 metrics");

    assert_eq!(
        counter.take(),
        2,
        "600 distinct queries take two GetMetricData calls"
    );
    assert_eq!(observations.len(), METRICS);
    for (i, query) in queries.iter().enumerate() {
        assert_eq!(observations[query], expected(i), "{query}");
    }

    let twice: Vec<MetricQuery> = queries.iter().chain(&queries).cloned().collect();
    let again = reader
        .read(&twice, start, end)
        .await
        .expect("reading 600 metrics, each asked twice");

    assert_eq!(counter.take(), 2, "duplicates are asked once");
    assert_eq!(again, observations);
}

#[tokio::test(flavor = "multi_thread")]
async fn datapoints_put_out_of_order_and_twice_for_a_minute_are_read_in_order_once_each() {
    let config = sdk_config().await;
    let client = aws_sdk_cloudwatch::Client::new(&config);
    let metric = MetricId {
        namespace: unique("capstan/aws-cloudwatch"),
        name: unique("Latency"),
        dimensions: vec![("Service".into(), "orders".into())],
    };
    let [first, second, third] = last_complete_minutes(Utc::now(), 3)[..] else {
        panic!("three minutes")
    };
    // Newest first, and the first minute twice: CloudWatch (and moto) keep every sample and
    // answer one statistic per minute.
    put_metric(
        &client,
        &metric,
        &[(third, 30.0), (first, 10.0), (second, 20.0), (first, 50.0)],
    )
    .await;
    let query = MetricQuery {
        namespace: metric.namespace.clone(),
        name: metric.name.clone(),
        dimensions: BTreeMap::from([("Service".to_owned(), "orders".to_owned())]),
        stat: Statistic::Average,
        period_secs: 60,
        math: None,
    };

    let observations = CloudWatchReader::new(client)
        .read(
            std::slice::from_ref(&query),
            first,
            third + TimeDelta::minutes(1),
        )
        .await
        .expect("reading the metric");

    let point = |timestamp, value| Datapoint { timestamp, value };
    assert_eq!(
        observations[&query],
        MetricData::Series(vec![
            point(first, 30.0),
            point(second, 20.0),
            point(third, 30.0)
        ])
    );
}
