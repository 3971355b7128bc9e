//! Properties of [`crate::decide()`] over random policies, series, capacities and histories.
//! The checks recompute what they rely on from the inputs rather than trusting the explanation.

use std::ops::RangeInclusive;

use proptest::prelude::*;

use capstan_policy::model::{Duration, Policy, Rule, Step, Threshold};

use crate::decide;
use crate::observe::{
    CurrentCapacity, Datapoint, Direction, LastAction, MetricData, Observations, ResourceState,
};
use crate::testing::{now, period_start, point, policy, rule, secs};

const METRICS: [&str; 2] = ["cpu", "memory"];

/// Periods of series generated before `now`, more than the longest window.
const HISTORY: u32 = 8;

fn threshold() -> impl Strategy<Value = Threshold> {
    // Multiples of 10, like the values, so that values exactly at the threshold come up.
    (any::<bool>(), 0..=10u32).prop_map(|(above, tens)| {
        let limit = f64::from(tens * 10);
        if above {
            Threshold::Above(limit)
        } else {
            Threshold::Below(limit)
        }
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6u32).prop_map(Step::Add),
        (0..6u32).prop_map(Step::Remove),
        (0..25u32).prop_map(Step::Set),
        (0..200u32).prop_map(Step::AddPercent),
        (0..100u32).prop_map(Step::RemovePercent),
    ]
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let one = (0..METRICS.len(), threshold(), 1..=6u32, step()).prop_flat_map(
        |(metric, threshold, window, step)| {
            (1..=window).prop_map(move |breaching| {
                rule(METRICS[metric], threshold, breaching, window, step)
            })
        },
    );
    prop::collection::vec(one, 0..3)
}

fn seconds(range: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_secs)
}

fn random_policy() -> impl Strategy<Value = Policy> {
    let bounds = (0..6u32, 0..15u32);
    let guards = (
        prop::option::of(1..5u32),
        prop::option::of(1..5u32),
        seconds(0..=600),
        seconds(0..=600),
    );
    (bounds, rules(), rules(), guards, prop::bool::weighted(0.2)).prop_map(
        |(
            (min, spread),
            scale_out,
            scale_in,
            (step_out, step_in, cooldown_out, cooldown_in),
            paused,
        )| {
            let mut policy = policy();
            policy.capacity.min = min;
            policy.capacity.max = min + spread;
            policy.scale_out = scale_out;
            policy.scale_in = scale_in;
            policy.guards.max_step_out = step_out;
            policy.guards.max_step_in = step_in;
            policy.guards.cooldown_out = cooldown_out;
            policy.guards.cooldown_in = cooldown_in;
            policy.paused = paused;
            policy
        },
    )
}

/// One metric's data: unavailable now and then, otherwise a series over the last `HISTORY`
/// periods with gaps, and sometimes a datapoint in the current, incomplete period.
fn metric_data() -> impl Strategy<Value = MetricData> {
    let value = prop::option::weighted(0.85, (0..=10u32).prop_map(|tens| f64::from(tens * 10)));
    let series = (
        prop::collection::vec(value, HISTORY as usize),
        prop::option::of(0..=100u32),
    )
        .prop_map(|(values, incomplete)| {
            let mut series: Vec<Datapoint> = (1..=HISTORY)
                .rev()
                .zip(values)
                .filter_map(|(back, value)| Some(point(period_start(now(), 60, back), value?)))
                .collect();
            series.extend(
                incomplete.map(|value| point(period_start(now(), 60, 0), f64::from(value))),
            );
            series
        });
    prop_oneof![1 => Just(MetricData::Unavailable("throttled".into())), 9 => series.prop_map(MetricData::Series)]
}

fn observations(policy: &Policy) -> impl Strategy<Value = Observations> + use<> {
    let queries: Vec<_> = METRICS
        .iter()
        .map(|name| policy.metric(name).clone())
        .collect();
    prop::collection::vec(metric_data(), METRICS.len())
        .prop_map(move |data| queries.iter().cloned().zip(data).collect())
}

/// A capacity whose own bounds, when it has them, overlap the policy's; when `within`, the
/// capacity is inside both, so that any move is the rules' doing.
fn current(policy: &Policy, within: bool) -> impl Strategy<Value = CurrentCapacity> + use<> {
    let capacity = policy.capacity;
    let resource_min = prop::option::weighted(0.3, 0..=capacity.max);
    let above = prop::option::weighted(0.3, 0..10u32);
    let busy = prop::option::weighted(0.15, Just("deployment in progress".to_owned()));
    (resource_min, above, busy).prop_flat_map(move |(resource_min, above, busy)| {
        let lowest = capacity.min.max(resource_min.unwrap_or(0));
        let resource_max = above.map(|above| lowest + above);
        let desired = if within {
            (lowest..=capacity.max.min(resource_max.unwrap_or(u32::MAX))).boxed()
        } else {
            (0..30u32).boxed()
        };
        desired.prop_map(move |desired| CurrentCapacity {
            desired,
            resource_min,
            resource_max,
            busy: busy.clone(),
        })
    })
}

fn state() -> impl Strategy<Value = ResourceState> {
    let action = (0..900i64, any::<bool>()).prop_map(|(ago, out)| LastAction {
        at: now() - secs(ago),
        direction: if out { Direction::Out } else { Direction::In },
        from: 3,
        to: 4,
    });
    prop::option::of(action).prop_map(|last_action| ResourceState { last_action })
}

/// Everything `decide` takes, the time being `now()`; see [`current`] for `within`.
fn inputs(
    within: bool,
) -> impl Strategy<Value = (Policy, Observations, CurrentCapacity, ResourceState)> {
    random_policy().prop_flat_map(move |policy| {
        (observations(&policy), current(&policy, within), state()).prop_map(
            move |(observations, current, state)| (policy.clone(), observations, current, state),
        )
    })
}

/// Whether every period of `rule`'s window has a datapoint, recomputed from the input.
fn complete(rule: &Rule, policy: &Policy, observations: &Observations) -> bool {
    let Some(MetricData::Series(series)) = observations.get(policy.metric(&rule.when.metric))
    else {
        return false;
    };
    (1..=rule.when.window.window).all(|back| {
        series
            .iter()
            .any(|point| point.timestamp == period_start(now(), 60, back))
    })
}

proptest! {
    // Scale-ins need a complete window, no unreadable metric, no winning scale-out and no
    // cooldown, so they are a few percent of the cases: run enough to see a few dozen.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn desired_is_within_the_policys_bounds_unless_paused_or_busy(
        (policy, observations, current, state) in inputs(false)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        if policy.paused || current.busy.is_some() {
            prop_assert_eq!(decision.desired, current.desired);
            prop_assert_eq!(decision.change(), None);
        } else {
            prop_assert!(
                (policy.capacity.min..=policy.capacity.max).contains(&decision.desired),
                "{} outside {:?}: {}", decision.desired, policy.capacity, decision.explanation.summary
            );
        }
    }

    #[test]
    fn rule_driven_moves_respect_max_step_and_cooldowns(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        let guards = policy.guards;
        let since_last = state.last_action.map(|last| now() - last.at);
        if let Some((direction, desired)) = decision.change() {
            let (moved, step, cooldown) = match direction {
                Direction::Out => (desired - current.desired, guards.max_step_out, guards.cooldown_out),
                Direction::In => (current.desired - desired, guards.max_step_in, guards.cooldown_in),
            };
            prop_assert!(step.is_none_or(|step| moved <= step), "moved {} with max_step {:?}", moved, step);
            prop_assert!(since_last.is_none_or(|since| since >= cooldown.as_delta()), "moved during {}", cooldown);
            prop_assert!(decision.explanation.fired.is_some());
        }
    }

    #[test]
    fn no_scale_in_when_any_scale_in_window_is_incomplete(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        let incomplete = policy.scale_in.iter().any(|rule| !complete(rule, &policy, &observations));
        let unavailable = policy.rules().any(|rule| {
            !matches!(observations.get(policy.metric(&rule.when.metric)), Some(MetricData::Series(_)))
        });
        if incomplete || unavailable {
            prop_assert!(decision.desired >= current.desired, "{}", decision.explanation.summary);
        }
    }

    #[test]
    fn a_scale_in_comes_from_a_rule_whose_window_is_complete_and_breached(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        if let Some((Direction::In, _)) = decision.change() {
            let fired = decision.explanation.fired.as_deref().unwrap_or_default();
            let index: usize = fired
                .strip_prefix("scale_in[")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|index| index.parse().ok())
                .unwrap_or_else(|| panic!("scale-in fired by {fired:?}"));
            let rule = &policy.scale_in[index];
            prop_assert!(complete(rule, &policy, &observations));
            let Some(MetricData::Series(series)) = observations.get(policy.metric(&rule.when.metric)) else {
                unreachable!("a complete window has a series");
            };
            let breaching = (1..=rule.when.window.window)
                .filter(|&back| {
                    series.iter().any(|point| {
                        point.timestamp == period_start(now(), 60, back) && rule.when.threshold.is_breached_by(point.value)
                    })
                })
                .count();
            prop_assert!(breaching >= rule.when.window.breaching as usize);
        }
    }

    #[test]
    fn decisions_are_deterministic((policy, observations, current, state) in inputs(false)) {
        let first = decide(&policy, &observations, &current, &state, now());
        prop_assert_eq!(first, decide(&policy, &observations, &current, &state, now()));
    }
}
