//! The forecast history a policy's `forecast` learns from: read through the metric source when
//! the engine says it is due ([`capstan_engine::forecast::history_read`], at most hourly), and
//! kept in the resource's state, so that CloudWatch is asked for days of datapoints once an
//! hour, not at every evaluation.

use chrono::{DateTime, Utc};

use capstan_engine::forecast::{History, history_read};
use capstan_engine::{MetricData, ResourceState};
use capstan_policy::model::Policy;

use crate::ports::MetricSource;

/// Refreshes the forecast history in `state` when it is due at `now`, as the hourly peaks of
/// what `source` reads. A read that fails leaves the history as it was (none, or the last one
/// read) and is retried at the next evaluation; the warning returned says so.
pub(crate) async fn refresh<M: MetricSource>(
    policy: &Policy,
    state: &mut ResourceState,
    source: &M,
    now: DateTime<Utc>,
) -> Option<String> {
    let read = history_read(policy, state, now)?;
    let failed = |why: String| {
        Some(format!(
            "the forecast history of {} could not be read, so the forecast uses what it had: {why}",
            read.queries[0]
        ))
    };
    let answer = match source.read(&read.queries, read.start, read.end).await {
        Ok(mut observations) => observations.remove(&read.queries[0]),
        Err(error) => return failed(error.to_string()),
    };
    match answer {
        Some(MetricData::Series(points)) => {
            state.history = Some(History::of(&points, now));
            None
        }
        Some(MetricData::Unavailable(why)) => failed(why),
        None => failed("the source did not answer for it".into()),
    }
}
