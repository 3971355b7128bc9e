//! Metric reads through CloudWatch `GetMetricData`: the latest windows a pass decides on, and
//! the history a backtest replays.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat, ScanBy, StatusCode,
};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use capstan_engine::model::MetricQuery;
use capstan_engine::{Datapoint, MetricData, Observations};
use capstan_runner::ports::MetricSource;

use crate::error::AwsError;
use crate::rate::{Category, RateLimits};

const GET_METRIC_DATA: &str = "cloudwatch:GetMetricData";

/// Reads metrics with as few `GetMetricData` calls as possible: each distinct query is asked
/// once, up to [`CloudWatchReader::MAX_QUERIES_PER_CALL`] per call, up to
/// [`CloudWatchReader::CALLS_IN_FLIGHT`] calls at once, and every `NextToken` page is followed.
/// The query of an expression metric is sent as its `Expression` in the same call as its
/// members, whose data is not returned unless asked for directly; they count toward the limit.
///
/// A query CloudWatch could not answer (status `InternalError` or `Forbidden`, or a message
/// attached to its result) comes back as [`MetricData::Unavailable`] while the others are read;
/// so does every query of a call that failed as a whole, with the call's error (an answer that
/// could not be read among them), while the other calls' queries are read.
///
/// Datapoints are given to the engine in time order, once each, whatever order the answer
/// gave them in; a query given two different values for one timestamp is unavailable, naming
/// the timestamp and both values (see `Collected::finish`).
#[derive(Debug, Clone)]
pub struct CloudWatchReader {
    client: Client,
    limits: RateLimits,
}

/// What the pages of one call said about one query.
#[derive(Debug, Default)]
struct Collected {
    datapoints: Vec<Datapoint>,
    answered: bool,
    problems: Vec<String>,
}

impl CloudWatchReader {
    /// The most `MetricDataQuery` entries CloudWatch accepts in one `GetMetricData` call.
    pub const MAX_QUERIES_PER_CALL: usize = 500;

    /// The most `GetMetricData` calls of one read in flight at once: a read of up to 2,000
    /// distinct queries takes one round trip.
    pub const CALLS_IN_FLIGHT: usize = 4;

    /// The most datapoints one `GetMetricData` answer holds (CloudWatch's `MaxDatapoints`
    /// default); a longer answer is paged.
    pub const MAX_DATAPOINTS_PER_CALL: u64 = 100_800;

    /// A reader on the given client, within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            limits: RateLimits::default(),
        }
    }

    /// The same reader, within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// Reads the history of `queries` from `start` to `end`, as [`MetricSource::read`] reads a
    /// window (batched, paged, a failed query unavailable while the others are read), in time
    /// windows short enough that each call's queries hold at most
    /// [`Self::MAX_DATAPOINTS_PER_CALL`] datapoints: 14 days of one-minute data (20,160
    /// datapoints a query) take one window for up to 5 queries, two for up to 10. Each query's
    /// series is the windows' joined; a query unavailable in any window is unavailable.
    pub async fn read_history(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, AwsError> {
        let per_call = queries.len().clamp(1, Self::MAX_QUERIES_PER_CALL) as u64;
        let shortest = queries.iter().map(|q| q.period_secs).min().unwrap_or(60);
        let window_secs = (Self::MAX_DATAPOINTS_PER_CALL / per_call).max(1) * u64::from(shortest);
        let window = chrono::TimeDelta::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX));
        let mut history = Observations::new();
        let mut from = start;
        while from < end {
            let to = (from + window).min(end);
            for (query, data) in self.read(queries, from, to).await? {
                join(
                    history
                        .entry(query)
                        .or_insert(MetricData::Series(Vec::new())),
                    data,
                );
            }
            from = to;
        }
        Ok(history)
    }

    /// Reads one call's worth of queries, following `NextToken` until the last page.
    async fn read_batch(
        &self,
        batch: &[&MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, AwsError> {
        tracing::debug!(queries = batch.len(), %start, %end, "GetMetricData");
        let resource = format!("{} metric queries", batch.len());
        let mut collected: Vec<Collected> = batch.iter().map(|_| Collected::default()).collect();
        let mut pages = self
            .client
            .get_metric_data()
            .set_metric_data_queries(Some(data_queries(batch)))
            .start_time(smithy_time(start))
            .end_time(smithy_time(end))
            .scan_by(ScanBy::TimestampAscending)
            .into_paginator()
            .send();
        self.limits
            .take(Category::GetMetricData, GET_METRIC_DATA, &resource)
            .await?;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|error| AwsError::from_sdk(GET_METRIC_DATA, &resource, error))?;
            for message in page.messages() {
                tracing::warn!(
                    code = message.code(),
                    message = message.value(),
                    "GetMetricData message"
                );
            }
            for result in page.metric_data_results() {
                match result
                    .id()
                    .and_then(query_index)
                    .and_then(|i| collected.get_mut(i))
                {
                    Some(entry) => entry.add(result),
                    None => tracing::warn!(
                        id = result.id(),
                        "GetMetricData returned a result for no query"
                    ),
                }
            }
            self.limits
                .take_next_page(
                    page.next_token(),
                    Category::GetMetricData,
                    GET_METRIC_DATA,
                    &resource,
                )
                .await?;
        }
        Ok(batch
            .iter()
            .map(|query| (*query).clone())
            .zip(collected.into_iter().map(Collected::finish))
            .collect())
    }
}

impl MetricSource for CloudWatchReader {
    type Error = AwsError;

    async fn read(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, AwsError> {
        let distinct: Vec<&MetricQuery> = queries
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let batches = batches(&distinct);
        let calls: Vec<_> = batches
            .iter()
            .map(|batch| self.read_batch(batch, start, end))
            .collect();
        let answers: Vec<_> = stream::iter(calls)
            .buffered(Self::CALLS_IN_FLIGHT)
            .collect()
            .await;
        let mut observations = Observations::new();
        for (batch, answer) in batches.into_iter().zip(answers) {
            match answer {
                Ok(read) => observations.extend(read),
                Err(error) => {
                    let reason = error.to_string();
                    observations.extend(
                        batch.iter().map(|query| {
                            ((*query).clone(), MetricData::Unavailable(reason.clone()))
                        }),
                    );
                }
            }
        }
        Ok(observations)
    }
}

/// Appends a later window's `data` to `earlier`; unavailable in either is unavailable.
fn join(earlier: &mut MetricData, data: MetricData) {
    match (earlier, data) {
        (MetricData::Series(points), MetricData::Series(more)) => points.extend(more),
        (MetricData::Unavailable(_), _) => {}
        (earlier, unavailable) => *earlier = unavailable,
    }
}

impl Collected {
    fn add(&mut self, result: &MetricDataResult) {
        self.answered = true;
        match result.status_code() {
            Some(StatusCode::Complete | StatusCode::PartialData) => {}
            Some(status) => self.problems.push(format!("CloudWatch status {status}")),
            None => self.problems.push("CloudWatch gave no status".to_owned()),
        }
        for message in result.messages() {
            self.problems.push(format!(
                "{}: {}",
                message.code().unwrap_or("message"),
                message.value().unwrap_or("")
            ));
        }
        if result.timestamps().len() != result.values().len() {
            self.problems.push(format!(
                "CloudWatch returned {} timestamps for {} values",
                result.timestamps().len(),
                result.values().len()
            ));
        }
        for (timestamp, &value) in result.timestamps().iter().zip(result.values()) {
            match chrono_time(timestamp) {
                Some(timestamp) => self.datapoints.push(Datapoint { timestamp, value }),
                None => self
                    .problems
                    .push(format!("timestamp {timestamp} is out of range")),
            }
        }
    }

    /// The series the pages gave, or why there is none. Datapoints come back in time order
    /// whatever order CloudWatch gave them in, and one datapoint given twice counts once; two
    /// different values for one timestamp make the series unavailable, naming both: capstan
    /// cannot tell which CloudWatch meant, so the rules on the metric hold.
    fn finish(mut self) -> MetricData {
        if !self.answered {
            return MetricData::Unavailable(
                "CloudWatch returned no result for this query".to_owned(),
            );
        }
        self.datapoints.sort_by(|a, b| {
            a.timestamp
                .cmp(&b.timestamp)
                .then(a.value.total_cmp(&b.value))
        });
        self.datapoints.dedup_by(|later, first| {
            later.timestamp == first.timestamp && later.value.total_cmp(&first.value).is_eq()
        });
        for pair in self.datapoints.windows(2) {
            if pair[0].timestamp == pair[1].timestamp {
                self.problems.push(format!(
                    "CloudWatch returned two values for {}: {} and {}",
                    pair[0].timestamp, pair[0].value, pair[1].value
                ));
            }
        }
        if self.problems.is_empty() {
            MetricData::Series(self.datapoints)
        } else {
            MetricData::Unavailable(self.problems.join("; "))
        }
    }
}

/// The entries of one call: each of `batch` with id `q<index>`, its data returned, then each
/// member of their metric math not among them with id `m<index>`, its data not returned (only
/// the expression needs it). A member shared by several expressions is one entry.
pub(crate) fn data_queries(batch: &[&MetricQuery]) -> Vec<MetricDataQuery> {
    let mut ids: BTreeMap<&MetricQuery, String> = batch
        .iter()
        .enumerate()
        .map(|(i, query)| (*query, format!("q{i}")))
        .collect();
    let mut members = Vec::new();
    let mut entries: Vec<MetricDataQuery> = batch
        .iter()
        .enumerate()
        .map(|(i, query)| data_query(format!("q{i}"), query, true, &mut ids, &mut members))
        .collect();
    entries.extend(members);
    entries
}

/// The entry `id` for `query`; for metric math, its expression names its members by their
/// entries' ids, and the members without one yet (in `ids`) are added to `members`.
fn data_query<'q>(
    id: String,
    query: &'q MetricQuery,
    returned: bool,
    ids: &mut BTreeMap<&'q MetricQuery, String>,
    members: &mut Vec<MetricDataQuery>,
) -> MetricDataQuery {
    // Validation keeps periods small; one too large for the API still reaches CloudWatch, whose
    // refusal then names the problem.
    let period = i32::try_from(query.period_secs).unwrap_or(i32::MAX);
    let built = MetricDataQuery::builder()
        .id(id)
        .period(period)
        .return_data(returned);
    let Some(math) = &query.math else {
        return built.metric_stat(metric_stat(query, period)).build();
    };
    let mut renamed = BTreeMap::new();
    for (name, member) in &math.members {
        let member_id = match ids.get(member) {
            Some(id) => id.clone(),
            None => {
                let id = format!("m{}", ids.len());
                ids.insert(member, id.clone());
                let entry = data_query(id.clone(), member, false, ids, members);
                members.push(entry);
                id
            }
        };
        renamed.insert(name.as_str(), member_id);
    }
    // A validated expression always parses; should one not, CloudWatch is sent it as written
    // and its refusal names the problem.
    let expression = math.parse().map_or_else(
        |_| math.expression.clone(),
        |parsed| parsed.render(&|name| renamed.get(name).cloned().unwrap_or_default()),
    );
    built.expression(expression).build()
}

/// The dimensions of the series `query` reads, as CloudWatch takes them.
pub(crate) fn dimensions(query: &MetricQuery) -> Vec<Dimension> {
    query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect()
}

/// The series `query` reads, at `period`.
fn metric_stat(query: &MetricQuery, period: i32) -> MetricStat {
    let metric = Metric::builder()
        .namespace(&query.namespace)
        .metric_name(&query.name)
        .set_dimensions(Some(dimensions(query)))
        .build();
    MetricStat::builder()
        .metric(metric)
        .period(period)
        .stat(query.stat.to_string())
        .build()
}

/// How many entries `query` takes in a call at most: its own and its members'.
fn entries(query: &MetricQuery) -> usize {
    let members = query.math.iter().flat_map(|math| math.members.values());
    1 + members.map(entries).sum::<usize>()
}

/// `queries` cut into the calls that ask for them: in order, as many to a call as fit
/// [`CloudWatchReader::MAX_QUERIES_PER_CALL`] entries, members of metric math counted.
fn batches<'q>(queries: &[&'q MetricQuery]) -> Vec<Vec<&'q MetricQuery>> {
    let mut batches: Vec<Vec<&MetricQuery>> = Vec::new();
    let mut used = 0;
    for query in queries {
        let size = entries(query);
        match batches.last_mut() {
            Some(batch) if used + size <= CloudWatchReader::MAX_QUERIES_PER_CALL => {
                batch.push(query);
                used += size;
            }
            _ => {
                batches.push(vec![query]);
                used = size;
            }
        }
    }
    batches
}

/// The index in the batch of a query's id made by [`data_queries`].
fn query_index(id: &str) -> Option<usize> {
    id.strip_prefix('q')?.parse().ok()
}

fn smithy_time(time: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(time.timestamp(), time.timestamp_subsec_nanos())
}

fn chrono_time(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
    use aws_sdk_cloudwatch::types::MessageData;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use chrono::TimeZone;

    use capstan_engine::model::Statistic;

    use super::*;

    fn query(name: &str) -> MetricQuery {
        MetricQuery {
            namespace: "Shop".into(),
            name: name.into(),
            dimensions: BTreeMap::from([("Service".into(), "orders".into())]),
            stat: Statistic::Percentile("p99".into()),
            period_secs: 60,
            math: None,
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, minute, 0)
            .single()
            .unwrap_or_default()
    }

    fn result(id: &str, status: StatusCode, points: &[(u32, f64)]) -> MetricDataResult {
        MetricDataResult::builder()
            .id(id)
            .status_code(status)
            .set_timestamps(Some(
                points
                    .iter()
                    .map(|&(minute, _)| smithy_time(at(minute)))
                    .collect(),
            ))
            .set_values(Some(points.iter().map(|&(_, value)| value).collect()))
            .build()
    }

    fn series(points: &[(u32, f64)]) -> MetricData {
        MetricData::Series(
            points
                .iter()
                .map(|&(minute, value)| Datapoint {
                    timestamp: at(minute),
                    value,
                })
                .collect(),
        )
    }

    #[test]
    fn queries_carry_the_statistic_period_and_dimensions() {
        let latency = query("Latency");
        let built = data_queries(&[&query("Other"), &latency]).remove(1);
        assert_eq!(built.id(), Some("q1"));
        assert_eq!(built.return_data(), Some(true));
        let stat = built
            .metric_stat()
            .and_then(|stat| Some((stat.stat()?, stat.period()?, stat.metric()?)));
        let (stat, period, metric) = stat.unwrap_or_else(|| panic!("incomplete query: {built:?}"));
        assert_eq!((stat, period), ("p99", 60));
        assert_eq!(
            (metric.namespace(), metric.metric_name()),
            (Some("Shop"), Some("Latency"))
        );
        assert_eq!(metric.dimensions()[0].name(), Some("Service"));
        assert_eq!(metric.dimensions()[0].value(), Some("orders"));
        assert_eq!(query_index("q7"), Some(7));
    }

    /// The query of the metric math `expression` over `members` (id, query), per minute.
    fn math(expression: &str, members: &[(&str, MetricQuery)]) -> MetricQuery {
        let members = members
            .iter()
            .map(|(id, query)| ((*id).to_owned(), query.clone()))
            .collect();
        MetricQuery::math(
            capstan_engine::model::MathQuery {
                expression: expression.into(),
                members,
            },
            60,
        )
    }

    #[tokio::test]
    async fn expression_queries_are_sent_in_the_batched_request_mocked_cloudwatch() {
        // Shaped after the GetMetricData API reference: an expression is a MetricDataQuery with
        // `Expression` and `Period` instead of `MetricStat`, naming other entries by `Id`.
        let free = math("(100 * (1 - (conns / 400)))", &[("conns", query("Conns"))]);
        let busy = math(
            "(a + conns)",
            &[("a", query("A")), ("conns", query("Conns"))],
        );
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sent.clone();
        let rule = mock!(Client::get_metric_data)
            .match_requests(move |request| {
                let mut seen = seen.lock().expect("not poisoned");
                seen.extend(request.metric_data_queries().iter().cloned());
                true
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("q0", StatusCode::Complete, &[(0, 75.0)]))
                    .metric_data_results(result("q1", StatusCode::Complete, &[(0, 5.0)]))
                    .metric_data_results(result("q2", StatusCode::Complete, &[(0, 1.0)]))
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&rule]);

        let observations = CloudWatchReader::new(client)
            .read(&[busy.clone(), query("A"), free.clone()], at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!(
            rule.num_calls(),
            1,
            "one call for the expressions and members"
        );
        let sent = sent.lock().expect("not poisoned");
        let entry = |entry: &MetricDataQuery| {
            (
                entry.id().unwrap_or_default().to_owned(),
                entry.expression().map(str::to_owned),
                entry
                    .metric_stat()
                    .and_then(|stat| stat.metric()?.metric_name())
                    .map(str::to_owned),
                entry.period(),
                entry.return_data(),
            )
        };
        let text = |s: &str| Some(s.to_owned());
        // Queries in order (expressions first, as the queries sort), then the member no query
        // asks for directly, once though both expressions use it, its data not returned; `A`
        // is asked for directly, so `busy` names its entry.
        assert_eq!(
            sent.iter().map(entry).collect::<Vec<_>>(),
            [
                (
                    "q0".into(),
                    text("(100 * (1 - (m3 / 400)))"),
                    None,
                    Some(60),
                    Some(true)
                ),
                ("q1".into(), text("(q2 + m3)"), None, Some(60), Some(true)),
                ("q2".into(), None, text("A"), Some(60), Some(true)),
                ("m3".into(), None, text("Conns"), Some(60), Some(false)),
            ]
        );
        assert_eq!(observations.len(), 3, "members are not observations");
        assert_eq!(observations[&free], series(&[(0, 75.0)]));
        assert_eq!(observations[&busy], series(&[(0, 5.0)]));
        assert_eq!(observations[&query("A")], series(&[(0, 1.0)]));
    }

    #[test]
    fn expressions_count_their_members_toward_the_queries_of_a_call() {
        let plain: Vec<MetricQuery> = (0..498).map(|i| query(&format!("M{i:03}"))).collect();
        let pair = math("(x + y)", &[("x", query("X")), ("y", query("Y"))]);
        let mut queries: Vec<&MetricQuery> = plain.iter().collect();
        queries.push(&pair);
        let sizes: Vec<usize> = batches(&queries).iter().map(Vec::len).collect();
        assert_eq!(sizes, [498, 1], "498 + 3 entries exceed 500");
        assert_eq!(data_queries(&batches(&queries)[1]).len(), 3);
        queries.remove(0);
        queries.remove(0);
        assert_eq!(batches(&queries).len(), 1, "496 + 3 entries fit");
    }

    #[tokio::test]
    async fn next_token_pages_are_followed_and_joined() {
        let first = mock!(Client::get_metric_data)
            .match_requests(|request| request.next_token().is_none())
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result(
                        "q0",
                        StatusCode::PartialData,
                        &[(0, 1.0), (1, 2.0)],
                    ))
                    .metric_data_results(result("q1", StatusCode::PartialData, &[(0, 10.0)]))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::get_metric_data)
            .match_requests(|request| {
                request.next_token() == Some("page-2")
                    && request.scan_by() == Some(&ScanBy::TimestampAscending)
                    && request.metric_data_queries().len() == 2
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("q0", StatusCode::Complete, &[(2, 3.0)]))
                    .metric_data_results(result("q1", StatusCode::Complete, &[(1, 11.0)]))
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&first, &second]);

        let observations = CloudWatchReader::new(client)
            .read(&[query("A"), query("B"), query("A")], at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        assert_eq!(observations.len(), 2);
        assert_eq!(
            observations[&query("A")],
            series(&[(0, 1.0), (1, 2.0), (2, 3.0)])
        );
        assert_eq!(observations[&query("B")], series(&[(0, 10.0), (1, 11.0)]));
    }

    #[tokio::test]
    async fn a_failed_query_is_unavailable_and_the_others_are_read() {
        let rule = mock!(Client::get_metric_data).then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("q0", StatusCode::Complete, &[(0, 1.0)]))
                .metric_data_results(result("q1", StatusCode::Forbidden, &[]))
                .metric_data_results(result("q2", StatusCode::InternalError, &[]))
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("q3")
                        .status_code(StatusCode::Complete)
                        .messages(
                            MessageData::builder()
                                .code("MaxDatapointsExceeded")
                                .value("too many")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&rule]);
        let queries = [query("A"), query("B"), query("C"), query("D"), query("E")];

        let observations = CloudWatchReader::new(client)
            .read(&queries, at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!(observations[&query("A")], series(&[(0, 1.0)]));
        let unavailable = |reason: &str| MetricData::Unavailable(reason.to_owned());
        assert_eq!(
            observations[&query("B")],
            unavailable("CloudWatch status Forbidden")
        );
        assert_eq!(
            observations[&query("C")],
            unavailable("CloudWatch status InternalError")
        );
        assert_eq!(
            observations[&query("D")],
            unavailable("MaxDatapointsExceeded: too many")
        );
        assert_eq!(
            observations[&query("E")],
            unavailable("CloudWatch returned no result for this query")
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_standard_retry() {
        let rule = mock!(Client::get_metric_data)
            .sequence()
            .error(|| {
                GetMetricDataError::generic(
                    ErrorMetadata::builder()
                        .code("Throttling")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("q0", StatusCode::Complete, &[(0, 1.0)]))
                    .build()
            })
            .build();
        let client = mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::Sequential,
            [&rule],
            |config| {
                config.retry_config(
                    crate::retry_config().with_initial_backoff(std::time::Duration::from_millis(1)),
                )
            }
        );

        let observations = CloudWatchReader::new(client)
            .read(&[query("A")], at(0), at(5))
            .await;

        assert_eq!(rule.num_calls(), 2);
        assert_eq!(
            observations.map(|o| o[&query("A")].clone()),
            Ok(series(&[(0, 1.0)]))
        );
    }

    #[tokio::test]
    async fn a_failed_call_makes_its_own_queries_unavailable_and_no_others() {
        let queries: Vec<MetricQuery> = (0..=CloudWatchReader::MAX_QUERIES_PER_CALL)
            .map(|i| query(&format!("M{i:03}")))
            .collect();
        let full = mock!(Client::get_metric_data)
            .match_requests(|request| request.metric_data_queries().len() == 500)
            .then_output(|| {
                let results =
                    (0..500).map(|i| result(&format!("q{i}"), StatusCode::Complete, &[(0, 1.0)]));
                GetMetricDataOutput::builder()
                    .set_metric_data_results(Some(results.collect()))
                    .build()
            });
        let refused = mock!(Client::get_metric_data)
            .match_requests(|request| request.metric_data_queries().len() == 1)
            .then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("a status"),
                    aws_smithy_types::body::SdkBody::empty(),
                )
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&full, &refused]);

        let observations = CloudWatchReader::new(client)
            .read(&queries, at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((full.num_calls(), refused.num_calls()), (1, 1));
        assert_eq!(observations.len(), 501);
        let (last, read) = queries.split_last().expect("queries");
        assert!(read.iter().all(|q| observations[q] == series(&[(0, 1.0)])));
        let MetricData::Unavailable(why) = &observations[last] else {
            panic!("{:?}", observations[last]);
        };
        assert!(
            why.starts_with("cloudwatch:GetMetricData on 1 metric queries failed"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn history_is_read_in_windows_of_at_most_100800_datapoints_a_call() {
        // 10 queries of 14 days of one-minute data: 201,600 datapoints, two windows of 7 days.
        let (start, week) = (at(0), chrono::Duration::days(7));
        let answer = |time: DateTime<Utc>| {
            let results = (0..10).map(|i| {
                MetricDataResult::builder()
                    .id(format!("q{i}"))
                    .status_code(StatusCode::Complete)
                    .timestamps(smithy_time(time))
                    .values(f64::from(i))
                    .build()
            });
            GetMetricDataOutput::builder()
                .set_metric_data_results(Some(results.collect()))
                .build()
        };
        let window = |from: DateTime<Utc>, to: DateTime<Utc>| {
            mock!(Client::get_metric_data)
                .match_requests(move |request| {
                    request.start_time() == Some(&smithy_time(from))
                        && request.end_time() == Some(&smithy_time(to))
                        && request.metric_data_queries().len() == 10
                })
                .then_output(move || answer(from))
        };
        let (first, second) = (
            window(start, start + week),
            window(start + week, start + week * 2),
        );
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
        let queries: Vec<MetricQuery> = (0..10).map(|i| query(&format!("M{i}"))).collect();

        let history = CloudWatchReader::new(client)
            .read_history(&queries, start, start + week * 2)
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let points = |value: f64| {
            MetricData::Series(vec![
                Datapoint {
                    timestamp: start,
                    value,
                },
                Datapoint {
                    timestamp: start + week,
                    value,
                },
            ])
        };
        assert_eq!(history[&queries[3]], points(3.0));
    }

    #[test]
    fn times_convert_both_ways() {
        let time = at(3) + chrono::Duration::milliseconds(250);
        assert_eq!(chrono_time(&smithy_time(time)), Some(time));
    }

    #[test]
    fn datapoints_come_in_time_order_once_each_and_two_values_for_one_time_are_refused() {
        let read = |points: &[(u32, f64)]| {
            let mut collected = Collected::default();
            collected.add(&result("q0", StatusCode::Complete, points));
            collected.finish()
        };
        assert_eq!(
            read(&[(3, 3.0), (1, 1.0), (2, 2.0), (1, 1.0)]),
            series(&[(1, 1.0), (2, 2.0), (3, 3.0)]),
            "sorted, and the same datapoint twice counted once"
        );
        assert_eq!(
            read(&[(1, 91.0), (2, 90.0), (1, 40.0)]),
            MetricData::Unavailable(
                "CloudWatch returned two values for 2025-03-01 12:01:00 UTC: 40 and 91".into()
            )
        );
        // Across pages as within one.
        let mut paged = Collected::default();
        paged.add(&result("q0", StatusCode::PartialData, &[(2, 2.0)]));
        paged.add(&result("q0", StatusCode::Complete, &[(1, 1.0), (2, 2.5)]));
        assert_eq!(
            paged.finish(),
            MetricData::Unavailable(
                "CloudWatch returned two values for 2025-03-01 12:02:00 UTC: 2 and 2.5".into()
            )
        );
    }

    /// A client whose every GetMetricData call is answered `body`, as Smithy RPC v2 CBOR.
    fn answering_cbor(body: Vec<u8>) -> Client {
        let rule = mock!(Client::get_metric_data).then_http_response(move || {
            let mut answer = crate::raw_answer("application/cbor", body.clone());
            answer
                .headers_mut()
                .insert("smithy-protocol", "rpc-v2-cbor");
            answer
        });
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule])
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_read_makes_the_queries_of_its_call_unavailable_mocked() {
        // A map holding a key cut short: the SDK's CBOR deserializer reads it; no emulator cuts
        // its answers.
        let cut = [0xa1, 0x71, b'm', b'e', b't', b'r', b'i', b'c'];

        let observations = CloudWatchReader::new(answering_cbor(cut.to_vec()))
            .read(&[query("A"), query("B")], at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        let unreadable = MetricData::Unavailable(
            "cloudwatch:GetMetricData on 2 metric queries failed: Malformed: the answer could not \
             be read: end of input bytes; received HTTP 200 with 8 bytes of application/cbor"
                .into(),
        );
        assert_eq!(observations[&query("A")], unreadable);
        assert_eq!(observations[&query("B")], unreadable);
    }

    #[tokio::test]
    async fn a_list_of_the_wrong_type_is_no_result_for_any_query_mocked() {
        // `{"metricDataResults": 5}`: the SDK's CBOR deserializer skips a member of the wrong
        // type, so the answer reads as one without results; no emulator writes it.
        let mut body = vec![0xa1, 0x71];
        body.extend_from_slice(b"metricDataResults");
        body.push(0x05);

        let observations = CloudWatchReader::new(answering_cbor(body))
            .read(&[query("A")], at(0), at(5))
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!(
            observations[&query("A")],
            MetricData::Unavailable("CloudWatch returned no result for this query".into())
        );
    }
}
