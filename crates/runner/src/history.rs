//! The forecast history a policy's `forecast` learns from: read through the metric source when
//! the engine says it is due ([`capstan_engine::forecast::history_read`], at most hourly), and
//! kept in the resource's state, so that CloudWatch is asked for days of datapoints once an
//! hour, not at every evaluation. The histories due in a pass are read together: one read per
//! span (policies with the same `history` and period share one), which the source batches and
//! pages as any read, so that a hundred forecasts due at once cost the calls their datapoints
//! need, not a call each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use capstan_engine::forecast::{History, history_read};
use capstan_engine::{MetricData, Observations, ResourceState};
use capstan_policy::model::{MetricQuery, Policy};

use crate::ports::MetricSource;

/// A read's time span: its start and end.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Refreshes the forecast history in each state whose policy's is due at `now`, as the hourly
/// peaks of what `source` reads, and returns a warning per entry of `due`, in its order. A read
/// that fails leaves the history as it was (none, or the last one read) and is retried at the
/// next evaluation; the warning says so.
pub(crate) async fn refresh<M: MetricSource>(
    due: &mut [(&Policy, &mut ResourceState)],
    source: &M,
    now: DateTime<Utc>,
) -> Vec<Option<String>> {
    // The queries of each span, with the index of the entry of `due` each refreshes.
    let mut spans: BTreeMap<Span, Vec<(usize, MetricQuery)>> = BTreeMap::new();
    for (index, (policy, state)) in due.iter().enumerate() {
        if let Some(read) = history_read(policy, state, now) {
            let query = read.queries.into_iter().next();
            spans
                .entry((read.start, read.end))
                .or_default()
                .extend(query.map(|query| (index, query)));
        }
    }
    let mut warnings = vec![None; due.len()];
    for ((start, end), members) in spans {
        let queries: Vec<MetricQuery> = members.iter().map(|(_, query)| query.clone()).collect();
        let answer: Result<Observations, String> = source
            .read(&queries, start, end)
            .await
            .map_err(|error| error.to_string());
        for (index, query) in members {
            let found = match &answer {
                Ok(observations) => match observations.get(&query) {
                    Some(MetricData::Series(points)) => Ok(points),
                    Some(MetricData::Unavailable(why)) => Err(why.clone()),
                    None => Err("the source did not answer for it".to_owned()),
                },
                Err(why) => Err(why.clone()),
            };
            match found {
                Ok(points) => due[index].1.history = Some(History::of(points, now)),
                Err(why) => {
                    warnings[index] = Some(format!(
                        "the forecast history of {query} could not be read, so the forecast uses \
                         what it had: {why}"
                    ));
                }
            }
        }
    }
    warnings
}
