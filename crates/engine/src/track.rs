//! Target tracking: one `track` rule's recommendation.
//!
//! - **Value.** The average of the datapoints present in the rule's window (the latest complete
//!   datapoint alone without `for`), over the same complete periods as threshold rules (see the
//!   `window` module).
//! - **Units measured.** A utilisation is the average over the units *in service*, so the rule
//!   scales from them: `in_service` below is the resource's count of units serving (ECS tasks
//!   running, Auto Scaling instances `InService`, replicas available), or its desired capacity
//!   when it does not tell them apart.
//! - **`target: T`** (a utilisation such as CPU): ratio = value / T and desired =
//!   ceil(in_service × ratio). At 0 units there is nothing to measure and the rule asks for 0.
//! - **`per_replica: R`** (a total such as queue depth or lag, shared by the units): desired =
//!   ceil(value / R), and ratio = value / (R × in_service) when in_service > 0.
//! - **Launches warming up.** While fewer units serve than are desired, a recommendation that
//!   those already launched cover (no more than desired) holds ([`TrackOutcome::WarmingUp`]):
//!   the rule neither launches again for load the warming units will take, nor scales in before
//!   they serve. This is AWS target tracking's rule with instance warm-up (scale-out counts the
//!   warming instances, scale-in waits for them) and the HPA's for unready pods; without it a
//!   rule asks again every minute while its launches warm up (4 tasks asking for 5, 7, 8, then
//!   10 in the worldcup scenario, brought back to 5 once they served).
//! - **Tolerance.** When |ratio − 1| ≤ `tolerance` (20% by default, see
//!   [`DEFAULT_TOLERANCE`](capstan_policy::model::DEFAULT_TOLERANCE)) the rule asks for no
//!   change ([`TrackOutcome::WithinTolerance`]), as Kubernetes' HPA does, so a metric hovering
//!   around its target does not make capacity flap.
//! - **Partitions.** With `partitions: P` (Kafka consumers), the recommendation never exceeds P:
//!   a consumer beyond the partition count would sit idle. `allow_idle_consumers: true` lifts
//!   the cap (validation then drops it from the model).
//! - **Missing data.** No datapoint in the window, or an unreadable metric, makes the rule hold.
//!   A window with gaps may still scale out on the datapoints present, but never in: such a
//!   rule is [`TrackOutcome::MissingData`] unless it asks for more than the current capacity.
//!
//! Ceilings and the tolerance band are compared with a slack of 1e-9, so float noise never
//! adds a unit (4 × 60 / 48 = 5.000000000000001 asks for 5) and 55 against a target of 50 is
//! exactly at a 10% tolerance.

use chrono::{DateTime, Utc};

use capstan_policy::model::{Fraction, Policy, Threshold, Track, TrackGoal};

use crate::decision::{TrackEvaluation, TrackOutcome};
use crate::observe::{CurrentCapacity, MetricData, Observations};
use crate::window::{Periods, Reading};

/// Evaluates `track`, identified as `rule_id`, at capacity `current`.
pub(crate) fn evaluate(
    policy: &Policy,
    rule_id: String,
    track: &Track,
    observations: &Observations,
    current: &CurrentCapacity,
    now: DateTime<Utc>,
) -> TrackEvaluation {
    let desired = current.desired;
    let in_service = current.in_service.unwrap_or(desired);
    let query = policy.metric(&track.metric);
    let periods = Periods::of(policy, &track.metric, track.window, now);
    let mut evaluation = TrackEvaluation {
        rule: rule_id,
        metric: track.metric.clone(),
        goal: track.goal,
        window: track.window,
        window_end: periods.end,
        datapoints: Vec::new(),
        missing: track.window,
        value: None,
        ratio: None,
        outcome: TrackOutcome::MissingData,
    };
    let series = match observations.get(query) {
        Some(MetricData::Series(series)) => series,
        Some(MetricData::Unavailable(reason)) => {
            evaluation.outcome = TrackOutcome::Unavailable {
                reason: reason.clone(),
            };
            return evaluation;
        }
        None => {
            evaluation.outcome = TrackOutcome::Unavailable {
                reason: format!("{query} was not read"),
            };
            return evaluation;
        }
    };
    // The threshold is irrelevant here; only the datapoints and the gaps are used.
    let reading = Reading::of(series, Threshold::Above(f64::INFINITY), &periods);
    evaluation.missing = reading.missing;
    evaluation.datapoints = reading.datapoints;
    if evaluation.datapoints.is_empty() {
        return evaluation;
    }
    let count = evaluation.datapoints.len() as f64;
    let value = evaluation.datapoints.iter().map(|p| p.value).sum::<f64>() / count;
    evaluation.value = Some(value);
    let (ratio, outcome) = recommend(track, policy.tolerance, value, in_service);
    evaluation.ratio = ratio;
    evaluation.outcome = match outcome {
        TrackOutcome::Proposed { proposed, .. } if reading.missing > 0 && proposed <= desired => {
            TrackOutcome::MissingData
        }
        TrackOutcome::WithinTolerance if reading.missing > 0 => TrackOutcome::MissingData,
        TrackOutcome::Proposed { proposed, .. } if in_service < desired && proposed <= desired => {
            TrackOutcome::WarmingUp {
                proposed,
                in_service,
            }
        }
        outcome => outcome,
    };
    evaluation
}

/// The ratio of value to goal, and what the rule asks for, from complete data measured over
/// `in_service` units.
pub(crate) fn recommend(
    track: &Track,
    tolerance: Fraction,
    value: f64,
    in_service: u32,
) -> (Option<f64>, TrackOutcome) {
    if !value.is_finite() {
        return (None, TrackOutcome::MissingData);
    }
    let value = value.max(0.0);
    let (ratio, desired) = match track.goal {
        TrackGoal::Target(target) => {
            let ratio = value / target;
            (Some(ratio), f64::from(in_service) * ratio)
        }
        TrackGoal::PerReplica(per) => {
            let ratio = (in_service > 0).then(|| value / (per * f64::from(in_service)));
            (ratio, value / per)
        }
    };
    if let Some(ratio) = ratio
        && (ratio - 1.0).abs() <= tolerance.get() + 1e-9
    {
        return (Some(ratio), TrackOutcome::WithinTolerance);
    }
    let desired = ceiling(desired);
    let capped_by_partitions = track.partitions.filter(|&partitions| desired > partitions);
    let proposed = capped_by_partitions.map_or(desired, |partitions| desired.min(partitions));
    (
        ratio,
        TrackOutcome::Proposed {
            proposed,
            capped_by_partitions,
        },
    )
}

/// `value` rounded up to a whole unit, ignoring float noise below 1e-9, saturating.
pub(crate) fn ceiling(value: f64) -> u32 {
    let rounded = (value - 1e-9).ceil();
    if rounded >= f64::from(u32::MAX) {
        u32::MAX
    } else if rounded <= 0.0 {
        0
    } else {
        rounded as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_policy::model::Duration;

    fn track(goal: TrackGoal, partitions: Option<u32>) -> Track {
        Track {
            metric: "cpu".into(),
            goal,
            window: 1,
            partitions,
            topic: None,
        }
    }

    fn proposed(outcome: TrackOutcome) -> Option<u32> {
        match outcome {
            TrackOutcome::Proposed { proposed, .. } => Some(proposed),
            _ => None,
        }
    }

    #[test]
    fn target_tracking_scales_by_the_ratio_rounded_up() {
        let cpu = track(TrackGoal::Target(50.0), None);
        let ask =
            |value, current| proposed(recommend(&cpu, Fraction::TEN_PERCENT, value, current).1);
        assert_eq!(ask(80.0, 4), Some(7)); // 4 × 1.6 = 6.4
        assert_eq!(ask(20.0, 10), Some(4));
        assert_eq!(ask(60.0, 4), Some(5)); // 4 × 1.2 = 4.8
        assert_eq!(ask(48.0, 5), None, "within 10%");
        assert_eq!(ask(55.0, 5), None, "exactly at the tolerance holds");
    }

    #[test]
    fn per_replica_tracking_shares_the_total() {
        let lag = track(TrackGoal::PerReplica(1000.0), None);
        let ask =
            |value, current| proposed(recommend(&lag, Fraction::TEN_PERCENT, value, current).1);
        assert_eq!(ask(5500.0, 2), Some(6));
        assert_eq!(ask(5500.0, 0), Some(6), "from zero too");
        assert_eq!(ask(0.0, 3), Some(0));
        assert_eq!(ask(3050.0, 3), None, "within 10%");
    }

    #[test]
    fn partitions_cap_consumers() {
        let lag = track(TrackGoal::PerReplica(1000.0), Some(4));
        let (_, outcome) = recommend(&lag, Fraction::TEN_PERCENT, 9000.0, 2);
        assert_eq!(
            outcome,
            TrackOutcome::Proposed {
                proposed: 4,
                capped_by_partitions: Some(4)
            }
        );
    }

    #[test]
    fn a_tracked_metric_averages_only_the_periods_its_delay_lets_through() {
        use crate::testing::{now, observations, period_start, policy, series};

        let mut policy = policy();
        policy.metrics.get_mut("cpu").expect("cpu").delay = Duration::from_secs(60);
        let mut cpu = track(TrackGoal::Target(50.0), None);
        cpu.window = 2;
        // The newest minute, still landing, is at 100; the two before it at 80.
        let observed = observations(
            &policy,
            &[(
                "cpu",
                series(now(), 60, &[Some(80.0), Some(80.0), Some(100.0)]),
            )],
        );
        let four = CurrentCapacity {
            desired: 4,
            ..Default::default()
        };
        let evaluation = evaluate(&policy, "track[0]".into(), &cpu, &observed, &four, now());
        assert_eq!(evaluation.window_end, period_start(now(), 60, 1));
        assert_eq!((evaluation.value, evaluation.missing), (Some(80.0), 0));
        assert_eq!(proposed(evaluation.outcome), Some(7));
    }

    #[test]
    fn a_tighter_tolerance_reacts_sooner() {
        let cpu = track(TrackGoal::Target(50.0), None);
        let tight = Fraction::new(0.05).expect("in range");
        assert_eq!(proposed(recommend(&cpu, tight, 54.0, 10).1), Some(11));
    }
}
