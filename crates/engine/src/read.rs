//! What the caller must read before calling [`crate::decide()`]: which metric queries, and over
//! which time range.
//!
//! CloudWatch `GetMetricData` cuts a series into periods counted from the request's start time,
//! so the engine's periods (whole multiples of the period since the epoch, see [`crate::decide()`])
//! only line up with the datapoints returned when the read starts on a period boundary. Queries
//! of different periods therefore get separate reads ([`reads`]), each aligned to its own period
//! and ending where the current, incomplete period starts, so nothing is read that the engine
//! would ignore.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use capstan_policy::model::{MetricQuery, Policy};

use crate::window::Periods;

/// One read for the caller to make through [`crate::ports::MetricSource::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRead {
    /// Distinct queries, sorted, all with the same period.
    pub queries: Vec<MetricQuery>,
    /// Start of the oldest period any rule on these queries looks at (inclusive), on a period
    /// boundary.
    pub start: DateTime<Utc>,
    /// Start of the current, incomplete period (exclusive).
    pub end: DateTime<Utc>,
}

/// Every query a rule reads, with the number of periods that rule looks at.
fn rule_windows(policy: &Policy) -> impl Iterator<Item = (&MetricQuery, u32)> {
    let rules = policy
        .rules()
        .map(|rule| (policy.metric(&rule.when.metric), rule.when.window.window));
    let tracks = policy
        .track
        .iter()
        .map(|track| (policy.metric(&track.metric), track.window));
    let quiet = policy
        .replicas
        .iter()
        .filter_map(|plan| plan.quiet.as_ref())
        .map(|quiet| (policy.metric(&quiet.metric), quiet.window.window));
    rules.chain(tracks).chain(quiet)
}

/// The reads that give [`crate::decide()`] every datapoint it looks at for `policies` at `now`:
/// one per distinct period, shortest period first, each starting on a boundary of its period
/// and covering the longest window among the rules on its queries.
pub fn reads<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    now: DateTime<Utc>,
) -> Vec<MetricRead> {
    let mut by_period: BTreeMap<u32, (u32, BTreeSet<&MetricQuery>)> = BTreeMap::new();
    for (query, window) in policies.into_iter().flat_map(rule_windows) {
        let (longest, queries) = by_period.entry(query.period_secs).or_default();
        *longest = (*longest).max(window);
        queries.insert(query);
    }
    by_period
        .into_iter()
        .map(|(period_secs, (longest, queries))| {
            let periods = Periods::before(now, period_secs, longest);
            MetricRead {
                queries: queries.into_iter().cloned().collect(),
                start: periods.first,
                end: periods.end,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Step, Threshold};

    use super::*;
    use crate::testing::{now, policy, query, rule, secs};

    fn with_rules(rules: &[(&str, u32)]) -> Policy {
        let mut policy = policy();
        policy
            .metrics
            .insert("requests".into(), query("RequestCount", 300));
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
            .insert("latency".into(), query("TargetResponseTime", 60));
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
    fn no_rules_no_reads() {
        assert_eq!(reads([&policy()], now()), []);
    }
}
