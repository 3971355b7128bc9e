//! A `track` rule names a defined metric, has exactly one goal (`target` or `per_replica`), a
//! finite positive one, a `for` that is whole periods of its metric, and Kafka keys
//! (`partitions`, `allow_idle_consumers`) only with `per_replica`.
//!
//! Why: a goal of 0 divides by zero and a negative one inverts scaling; `target` and
//! `per_replica` mean different formulas, so both at once is ambiguous; a partition cap on a
//! utilisation metric has no meaning, and `partitions: 0` would cap consumers at nothing.
//!
//! Example: `{ metric: lag, target: 50, per_replica: 1000 }` is rejected at `per_replica`;
//! `{ metric: cpu, target: 0 }` at `0`.

use super::{amounts, metric_refs, windows};
use crate::model::{self, MetricQuery, TrackGoal};
use crate::raw::{Spanned, Track};
use crate::validate::Findings;

/// The rule as the engine sees it, or `None` after recording every problem. `query` is the
/// metric's query, `None` when it is undefined or invalid (reported elsewhere).
pub(crate) fn check<'a>(
    track: &Spanned<Track>,
    defined: impl Iterator<Item = &'a str> + Clone,
    query: Option<&MetricQuery>,
    out: &mut Findings<'_>,
) -> Option<model::Track> {
    let rule = &track.value;
    metric_refs::check(&rule.metric, defined, out);
    let goal = goal(track, out);
    let window = window(rule, query, out);
    let partitions = partitions(rule, goal, out);
    let idle = rule.allow_idle_consumers.as_ref().is_some_and(|a| a.value);
    Some(model::Track {
        metric: rule.metric.value.clone(),
        goal: goal?,
        window: window?,
        partitions: partitions?,
        topic: rule
            .topic
            .as_ref()
            .filter(|_| !idle)
            .map(|topic| topic.value.clone()),
    })
}

/// Exactly one finite, positive goal.
fn goal(track: &Spanned<Track>, out: &mut Findings<'_>) -> Option<TrackGoal> {
    let (value, goal) = match (&track.value.target, &track.value.per_replica) {
        (Some(target), None) => (target, TrackGoal::Target(target.value)),
        (None, Some(per)) => (per, TrackGoal::PerReplica(per.value)),
        (None, None) => {
            out.error_with_help(
                track.referenced,
                "track rule has no goal",
                "add `target: <number>` (a utilisation) or `per_replica: <number>` (a total)",
            );
            return None;
        }
        (Some(_), Some(per)) => {
            out.error_with_help(
                per.referenced,
                "track rule has both `target` and `per_replica`",
                "`target` holds a utilisation, `per_replica` shares a total; keep one",
            );
            return None;
        }
    };
    if !(value.value.is_finite() && value.value > 0.0) {
        out.error(
            value.referenced,
            format!("track goal must be a positive number, not {}", value.value),
        );
        return None;
    }
    Some(goal)
}

/// The number of datapoints averaged: 1 without `for`.
fn window(rule: &Track, query: Option<&MetricQuery>, out: &mut Findings<'_>) -> Option<u32> {
    match &rule.for_ {
        None => Some(1),
        Some(duration) => windows::periods_of(duration, &rule.metric.value, query?, out),
    }
}

/// The partition cap: `Some(None)` for none (not given, or idle consumers allowed).
fn partitions(
    rule: &Track,
    goal: Option<TrackGoal>,
    out: &mut Findings<'_>,
) -> Option<Option<u32>> {
    let mut valid = true;
    if let Some(TrackGoal::Target(_)) = goal {
        for (key, at) in [
            ("partitions", rule.partitions.as_ref().map(|p| p.referenced)),
            ("topic", rule.topic.as_ref().map(|t| t.referenced)),
            (
                "allow_idle_consumers",
                rule.allow_idle_consumers.as_ref().map(|a| a.referenced),
            ),
        ] {
            if let Some(at) = at {
                out.error_with_help(
                    at,
                    format!("`{key}` needs `per_replica`"),
                    "a partition cap applies to consumers tracking a total such as lag",
                );
                valid = false;
            }
        }
    }
    if let (Some(_), Some(topic)) = (&rule.partitions, &rule.topic) {
        out.error_with_help(
            topic.referenced,
            "track rule has both `partitions` and `topic`",
            "`topic` reads the partition count from the topic's policy; keep one",
        );
        valid = false;
    }
    let cap = match &rule.partitions {
        Some(partitions) => Some(amounts::check("partitions", partitions, out)?),
        None => None,
    };
    let idle = rule.allow_idle_consumers.as_ref().is_some_and(|a| a.value);
    valid.then_some(cap.filter(|_| !idle))
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};
    use crate::model::TrackGoal;

    fn with_track(track: &str) -> String {
        EXAMPLE.replace("schedule:\n", &format!("track:\n  - {track}\nschedule:\n"))
    }

    #[test]
    fn a_target_and_a_per_replica_rule_become_the_model() {
        let policy = valid(&with_track(
            "{ metric: cpu, target: 50 }\n  - { metric: conns_free, per_replica: 1000, for: 3m, partitions: 12 }",
        ));
        assert_eq!(policy.track[0].goal, TrackGoal::Target(50.0));
        assert_eq!(policy.track[0].window, 1);
        assert_eq!(policy.track[1].goal, TrackGoal::PerReplica(1000.0));
        assert_eq!(
            (policy.track[1].window, policy.track[1].partitions),
            (3, Some(12))
        );
        assert!((policy.tolerance.get() - 0.2).abs() < f64::EPSILON);
    }

    #[test]
    fn idle_consumers_lift_the_partition_cap() {
        let policy = valid(&with_track(
            "{ metric: cpu, per_replica: 10, partitions: 4, allow_idle_consumers: true }",
        ));
        assert_eq!(policy.track[0].partitions, None);
    }

    #[test]
    fn tolerance_is_a_percentage_or_a_number() {
        let text = with_track("{ metric: cpu, target: 50 }");
        let percent = valid(&text.replace("paused: false", "tolerance: 5%\npaused: false"));
        let number = valid(&text.replace("paused: false", "tolerance: 0.05\npaused: false"));
        assert!((percent.tolerance.get() - 0.05).abs() < 1e-12);
        assert!((number.tolerance.get() - 0.05).abs() < 1e-12);
    }

    #[test]
    fn a_bad_tolerance_is_rejected_where_it_stands() {
        let text = with_track("{ metric: cpu, target: 50 }")
            .replace("paused: false", "tolerance: 150%\npaused: false");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("23:12: invalid fraction `150%`"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_goals_windows_and_caps_are_each_reported() {
        let text = with_track(
            "{ metric: cpu, target: 0 }\n  - { metric: cpu, target: 50, per_replica: 5 }\n  - { metric: cpuu, per_replica: 5, for: 90s, partitions: 0 }\n  - { metric: cpu, target: 50, partitions: 3 }\n  - { metric: cpu }",
        );
        assert_eq!(
            errors(&text),
            [
                "16:28: track goal must be a positive number, not 0",
                "17:45: track rule has both `target` and `per_replica`",
                "18:15: undefined metric `cpuu`",
                "18:59: `partitions` must be at least 1",
                "19:44: `partitions` needs `per_replica`",
                "20:5: track rule has no goal",
            ]
        );
    }

    #[test]
    fn a_for_that_is_not_whole_periods_is_rejected() {
        let errors = errors(&with_track("{ metric: cpu, target: 50, for: 90s }"));
        assert_eq!(
            errors,
            ["16:37: `for: 1m30s` is not a positive whole multiple of metric `cpu`'s period (1m)"]
        );
    }
}
