//! What the caller must read before calling [`crate::decide()`]: which metric queries, and over
//! which time range.
//!
//! CloudWatch `GetMetricData` cuts a series into periods counted from the request's start time,
//! so the engine's periods (whole multiples of the period since the epoch, see [`crate::decide()`])
//! only line up with the datapoints returned when the read starts on a period boundary. Queries
//! of different periods therefore get separate reads ([`reads`]), each aligned to its own period
//! and ending where the newest window on its queries ends (each window ends its metric's `delay`
//! before `now`), so nothing is read that the engine would ignore for every rule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use capstan_policy::model::{MetricQuery, Policy};

use crate::window::Periods;

/// One read for the caller to make, e.g. through `capstan_runner::ports::MetricSource::read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRead {
    /// Distinct queries, sorted, all with the same period.
    pub queries: Vec<MetricQuery>,
    /// Start of the oldest period any rule on these queries looks at (inclusive), on a period
    /// boundary.
    pub start: DateTime<Utc>,
    /// End of the newest period any rule on these queries looks at (exclusive), on a period
    /// boundary.
    pub end: DateTime<Utc>,
}

/// Every metric a rule reads, by name, with the number of periods that rule looks at.
fn rule_windows(policy: &Policy) -> impl Iterator<Item = (&str, u32)> {
    let rules = policy
        .rules()
        .map(|rule| (rule.when.metric.as_str(), rule.when.window.window));
    let tracks = policy
        .track
        .iter()
        .map(|track| (track.metric.as_str(), track.window));
    let quiet = policy
        .replicas
        .iter()
        .filter_map(|plan| plan.quiet.as_ref())
        .map(|quiet| (quiet.metric.as_str(), quiet.window.window));
    rules.chain(tracks).chain(quiet)
}

/// The reads that give [`crate::decide()`] every datapoint it looks at for `policies` at `now`:
/// one per distinct period, shortest period first, each starting on a boundary of its period
/// and covering every window of the rules on its queries.
pub fn reads<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    now: DateTime<Utc>,
) -> Vec<MetricRead> {
    type Range = (DateTime<Utc>, DateTime<Utc>);
    let mut by_period: BTreeMap<u32, (Option<Range>, BTreeSet<&MetricQuery>)> = BTreeMap::new();
    for policy in policies {
        for (metric, window) in rule_windows(policy) {
            let query = policy.metric(metric);
            let periods = Periods::of(policy, metric, window, now);
            let (range, queries) = by_period.entry(query.period_secs).or_default();
            *range = Some(match *range {
                None => (periods.first, periods.end),
                Some((start, end)) => (start.min(periods.first), end.max(periods.end)),
            });
            queries.insert(query);
        }
    }
    by_period
        .into_values()
        .filter_map(|(range, queries)| {
            let (start, end) = range?;
            Some(MetricRead {
                queries: queries.into_iter().cloned().collect(),
                start,
                end,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Step, Threshold};

    use super::*;
    use crate::testing::{metric, now, policy, query, rule, secs};

    fn with_rules(rules: &[(&str, u32)]) -> Policy {
        let mut policy = policy();
        policy
            .metrics
            .insert("requests".into(), metric("RequestCount", 300));
        for &(metric, window) in rules {
            policy
                .scale_out
                .push(rule(metric, Threshold::Above(1.0), 1, window, Step::Add(1)));
        }
        policy
    }

    #[test]
    fn reads_are_per_period_aligned_and_end_at_the_current_period() {
        let first = with_rules(&[("cpu", 5), ("requests", 2)]);
        let mut second = with_rules(&[("cpu", 12)]);
        second
            .metrics
            .insert("latency".into(), metric("TargetResponseTime", 60));
        second.scale_in.push(rule(
            "latency",
            Threshold::Below(1.0),
            1,
            3,
            Step::Remove(1),
        ));
        // now() is 12:01:30.
        let minute = now() - secs(30);
        let five_minutes = now() - secs(90);
        assert_eq!(
            reads([&first, &second], now()),
            [
                MetricRead {
                    queries: vec![query("CPUUtilization", 60), query("TargetResponseTime", 60)],
                    start: minute - secs(12 * 60),
                    end: minute,
                },
                MetricRead {
                    queries: vec![query("RequestCount", 300)],
                    start: five_minutes - secs(600),
                    end: five_minutes
                },
            ]
        );
    }

    #[test]
    fn a_read_shared_by_metrics_of_different_delays_covers_every_window() {
        let prompt = with_rules(&[("cpu", 5)]);
        let mut late = with_rules(&[("cpu", 3)]);
        late.metrics.get_mut("cpu").expect("cpu").delay =
            capstan_policy::model::Duration::from_secs(150);
        // now() is 12:01:30: with no delay the window ends at 12:01; 150 s back is 11:59:00,
        // so the late window ends there, and its 3 periods start at 11:56.
        let minute = now() - secs(30);
        assert_eq!(
            reads([&prompt, &late], now()),
            [MetricRead {
                queries: vec![query("CPUUtilization", 60)],
                start: minute - secs(5 * 60),
                end: minute,
            }]
        );
        assert_eq!(
            reads([&late], now()),
            [MetricRead {
                queries: vec![query("CPUUtilization", 60)],
                start: minute - secs(5 * 60),
                end: minute - secs(2 * 60),
            }]
        );
    }

    #[test]
    fn no_rules_no_reads() {
        assert_eq!(reads([&policy()], now()), []);
    }
}
