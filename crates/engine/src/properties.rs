//! Properties of [`crate::decide()`] over random policies, series, capacities and histories.
//! The checks recompute what they rely on from the inputs rather than trusting the explanation.

use std::ops::RangeInclusive;

use proptest::prelude::*;

use capstan_policy::model::{
    Duration, Fraction, MissingData, Policy, RateLimit, Rule, ScaleInPacing, Select, Step,
    Threshold, Track, TrackGoal,
};

use crate::decide::{decide, decide_answering};
use crate::decision::{ClampKind, TrackOutcome};
use crate::guards::GuardRequest;
use crate::observe::{
    Change, CurrentCapacity, Datapoint, Direction, MetricData, Observations, Recommendation,
    ResourceState,
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

fn tracks() -> impl Strategy<Value = Vec<Track>> {
    let goal = prop_oneof![
        (1..=10u32).prop_map(|tens| TrackGoal::Target(f64::from(tens * 10))),
        (1..=50u32).prop_map(|per| TrackGoal::PerReplica(f64::from(per))),
    ];
    let one = (0..METRICS.len(), goal, 1..=4u32, prop::option::of(1..8u32)).prop_map(
        |(metric, goal, window, partitions)| Track {
            metric: METRICS[metric].into(),
            goal,
            window,
            partitions: partitions.filter(|_| matches!(goal, TrackGoal::PerReplica(_))),
            topic: None,
        },
    );
    prop::collection::vec(one, 0..3)
}

fn seconds(range: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_secs)
}

fn rate_limit() -> impl Strategy<Value = RateLimit> {
    (
        prop::option::of(1..5u32),
        prop::option::of(1..200u32),
        1..900u64,
        any::<bool>(),
    )
        .prop_map(|(units, percent, per, most)| RateLimit {
            units: units.or(if percent.is_none() { Some(1) } else { None }),
            percent,
            per: Duration::from_secs(per),
            select: if most {
                Select::MostPermissive
            } else {
                Select::LeastPermissive
            },
        })
}

fn random_policy() -> impl Strategy<Value = Policy> {
    let bounds = (0..6u32, 0..15u32);
    let guards = (
        prop::option::of(1..5u32),
        prop::option::of(1..5u32),
        seconds(0..=600),
        seconds(0..=600),
    );
    let tracking = (
        tracks(),
        0..30u32,
        any::<bool>(),
        prop::option::weighted(0.3, (1..3u32, 1..900u64, 0..900u64)),
    );
    (
        bounds,
        rules(),
        rules(),
        guards,
        tracking,
        prop::bool::weighted(0.2),
        (
            seconds(0..=600),
            seconds(0..=600),
            seconds(0..=900),
            prop::option::weighted(0.3, rate_limit()),
            prop::option::weighted(0.3, rate_limit()),
            prop::option::weighted(0.2, (0..15u32, 1..4u32)),
        ),
    )
        .prop_map(
            |(
                (min, spread),
                scale_out,
                scale_in,
                (step_out, step_in, cooldown_out, cooldown_in),
                (track, tolerance, missing_as_breaching, pacing),
                paused,
                (
                    stabilization_out,
                    stabilization_in,
                    stabilization_in_after_flap,
                    rate_limit_out,
                    rate_limit_in,
                    fallback,
                ),
            )| {
                let mut policy = policy();
                policy.capacity.min = min;
                policy.capacity.max = min + spread;
                policy.scale_out = scale_out;
                policy.scale_in = scale_in;
                policy.track = track;
                policy.guards.scale_in_pacing =
                    pacing.map(|(max_per_interval, interval, drain)| ScaleInPacing {
                        max_per_interval,
                        interval: Duration::from_secs(interval),
                        drain: Duration::from_secs(drain),
                    });
                if missing_as_breaching {
                    policy.guards.missing_data = MissingData::ScaleOut;
                }
                if let Some((capacity, after)) = fallback {
                    policy.guards.missing_data = MissingData::Fallback {
                        capacity: min + capacity % (spread + 1),
                        after,
                    };
                }
                policy.guards.stabilization_out = stabilization_out;
                policy.guards.stabilization_in = stabilization_in;
                policy.guards.stabilization_in_after_flap = stabilization_in_after_flap;
                policy.guards.rate_limit_out = rate_limit_out;
                policy.guards.rate_limit_in = rate_limit_in;
                policy.tolerance =
                    Fraction::new(f64::from(tolerance) / 100.0).unwrap_or(Fraction::TEN_PERCENT);
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
            ..Default::default()
        })
    })
}

fn state() -> impl Strategy<Value = ResourceState> {
    let change =
        (0..900i64, any::<bool>(), 0..15u32, 0..15u32).prop_map(|(ago, out, from, to)| Change {
            at: now() - secs(ago),
            direction: if out { Direction::Out } else { Direction::In },
            from,
            to,
        });
    let recommendation = (0..900i64, 0..20u32).prop_map(|(ago, capacity)| Recommendation {
        at: now() - secs(ago),
        capacity,
    });
    // Two days and a half back, so that some flaps are remembered and some forgotten.
    let flapped_at = prop::option::weighted(0.5, (0..216_000i64).prop_map(|ago| now() - secs(ago)));
    (
        prop::collection::vec(change, 0..4),
        prop::collection::vec(recommendation, 0..8),
        0..5u32,
        flapped_at,
    )
        .prop_map(
            |(mut changes, mut recommendations, evaluations_without_data, flapped_at)| {
                changes.sort_by_key(|change| change.at);
                recommendations.sort_by_key(|recommendation| recommendation.at);
                ResourceState {
                    changes,
                    recommendations,
                    evaluations_without_data,
                    intent: None,
                    settling: false,
                    history: None,
                    flapped_at,
                }
            },
        )
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

/// Whether every period of the last `window` has a datapoint of `metric`.
fn complete_window(
    metric: &str,
    window: u32,
    policy: &Policy,
    observations: &Observations,
) -> bool {
    let Some(MetricData::Series(series)) = observations.get(policy.metric(metric)) else {
        return false;
    };
    (1..=window).all(|back| {
        series
            .iter()
            .any(|point| point.timestamp == period_start(now(), 60, back))
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
    fn answered_requests_keep_the_bounds_max_step_and_cooldowns(
        (policy, observations, current, state) in inputs(true),
        partitions in 0u32..40,
        replicas in any::<bool>(),
    ) {
        let request = if replicas {
            GuardRequest::DatabaseConnections {
                database: "orders-db".into(),
                policy: Some(policy.name.clone()),
                wanted: 300,
                budget: 200,
                held_back: vec!["checkout".into()],
                readers: vec!["checkout".into()],
            }
        } else {
            GuardRequest::PartitionGrowth {
                policy: policy.name.clone(),
                consumer: "fulfilment".into(),
                from: current.desired,
                to: partitions,
            }
        };
        let decision = decide_answering(&policy, &observations, &current, &state, now(), &[request]);
        if policy.paused || current.busy.is_some() {
            prop_assert_eq!(decision.change(), None);
        } else {
            prop_assert!((policy.capacity.min..=policy.capacity.max).contains(&decision.desired));
        }
        let guards = policy.guards;
        let since_last = state.last_change().map(|last| now() - last.at);
        if let Some((Direction::Out, desired)) = decision.change() {
            prop_assert!(guards.max_step_out.is_none_or(|step| desired - current.desired <= step));
            prop_assert!(since_last.is_none_or(|since| since >= guards.cooldown_out.as_delta()));
        }
    }

    #[test]
    fn rule_driven_moves_respect_max_step_and_cooldowns(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        let guards = policy.guards;
        let since_last = state.last_change().map(|last| now() - last.at);
        if let Some((direction, desired)) = decision.change() {
            let (moved, step, cooldown) = match direction {
                Direction::Out => (desired - current.desired, guards.max_step_out, guards.cooldown_out),
                Direction::In => (current.desired - desired, guards.max_step_in, guards.cooldown_in),
            };
            prop_assert!(step.is_none_or(|step| moved <= step), "moved {} with max_step {:?}", moved, step);
            prop_assert!(since_last.is_none_or(|since| since >= cooldown.as_delta()), "moved during {}", cooldown);
            let fell_back = decision.explanation.clamps.iter().any(|clamp| clamp.kind == ClampKind::MissingDataFallback);
            prop_assert!(decision.explanation.fired.is_some() || fell_back);
            if let (Direction::In, Some(pacing)) = (direction, guards.scale_in_pacing) {
                prop_assert!(moved <= pacing.max_per_interval, "removed {} with pacing {:?}", moved, pacing);
                prop_assert!(since_last.is_none_or(|since| since >= pacing.wait().as_delta()), "removed within {:?}", pacing);
            }
        }
    }

    #[test]
    fn rule_driven_moves_respect_rate_limits_and_stabilization(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        let guards = policy.guards;
        let Some((direction, desired)) = decision.change() else {
            return Ok(());
        };
        let (limit, window) = match direction {
            Direction::Out => (guards.rate_limit_out, guards.stabilization_out),
            // While a flap is remembered, the longer of the two scale-in windows.
            Direction::In if state.flapped_at.is_some_and(|at| now() - at < crate::FLAP_MEMORY) => (
                guards.rate_limit_in,
                guards.stabilization_in.max(guards.stabilization_in_after_flap),
            ),
            Direction::In => (guards.rate_limit_in, guards.stabilization_in),
        };
        let recent = state.recommendations.iter().filter(|r| now() - r.at < window.as_delta()).map(|r| r.capacity);
        match direction {
            Direction::Out => prop_assert!(recent.min().is_none_or(|lowest| desired <= lowest.max(current.desired))),
            Direction::In => prop_assert!(recent.max().is_none_or(|highest| desired >= highest.min(current.desired))),
        }
        if let Some(limit) = limit {
            let moved: u32 = state.changes.iter()
                .filter(|a| a.direction == direction && now() - a.at < limit.per.as_delta())
                .map(|a| a.from.abs_diff(a.to))
                .sum();
            let start = match direction {
                Direction::Out => current.desired.saturating_sub(moved),
                Direction::In => current.desired + moved,
            };
            let amounts = limit.units.into_iter().chain(limit.percent.map(|p| (start * p).div_ceil(100)));
            let room = match limit.select {
                Select::MostPermissive => amounts.max(),
                Select::LeastPermissive => amounts.min(),
            }.unwrap_or(u32::MAX);
            let moved_since_start = desired.abs_diff(start);
            prop_assert!(moved_since_start <= room, "{} moved from {} with room {} ({:?})", desired, start, room, limit);
        }
    }

    #[test]
    fn no_scale_in_when_any_scale_in_window_is_incomplete(
        (policy, observations, current, state) in inputs(true)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        let incomplete = policy.scale_in.iter().any(|rule| !complete(rule, &policy, &observations))
            || policy.track.iter().any(|track| {
                !complete_window(&track.metric, track.window, &policy, &observations)
            });
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
            if let Some(track) = fired
                .strip_prefix("track[")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|index| index.parse::<usize>().ok())
            {
                let track = &policy.track[track];
                prop_assert!(complete_window(&track.metric, track.window, &policy, &observations));
                return Ok(());
            }
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

    #[test]
    fn tracking_never_recommends_more_consumers_than_partitions(
        (policy, observations, current, state) in inputs(false)
    ) {
        let decision = decide(&policy, &observations, &current, &state, now());
        for (track, evaluation) in policy.track.iter().zip(&decision.explanation.tracks) {
            if let (Some(partitions), TrackOutcome::Proposed { proposed, .. }) =
                (track.partitions, &evaluation.outcome)
            {
                prop_assert!(*proposed <= partitions, "{} above {} partitions", proposed, partitions);
            }
        }
    }

    /// The connection budget over users with random bounds, priorities, current and running
    /// capacities and decisions, some without a decision in the pass, some paused or busy, and
    /// a random replica decision (or none). The checks recompute the budget from the inputs.
    #[test]
    fn guarded_users_grow_only_within_the_budget_and_never_shrink_on_its_account(
        users in prop::collection::vec(
            ((0..4u32, 0..8u32, 1..60u32, -2..3i32, any::<bool>()), (0..15u32, 0..3u32, 0..15u32, 0..10u32)),
            1..5,
        ),
        spare in 0..200u32,
        replicas in prop::option::of((0..4u32, 0..4u32, 0..4u32)),
    ) {
        use std::collections::BTreeMap;
        use capstan_policy::model::{Connections, Database, Target};
        use crate::Action;
        use crate::guards::apply_guards;

        let mut policies: Vec<Policy> = users
            .iter()
            .enumerate()
            .map(|(index, &((min, spread, per_task, priority, read_only), _))| {
                let mut policy = policy();
                policy.name = format!("service-{index}");
                policy.target = Target::EcsService { cluster: "prod".into(), service: policy.name.clone() };
                policy.capacity.min = min;
                policy.capacity.max = min + spread;
                policy.priority = priority;
                policy.connections = Some(Connections { database: "db".into(), per_task, read_only });
                policy
            })
            .collect();
        // A budget the minimums fit, as validation requires.
        let per_task = |p: &Policy| u64::from(p.connections.as_ref().map_or(0, |c| c.per_task));
        let read_only = |p: &Policy| p.connections.as_ref().is_some_and(|c| c.read_only);
        let minimums: u64 = policies.iter().map(|p| u64::from(p.capacity.min) * per_task(p)).sum();
        let budget = minimums + u64::from(spare);
        policies[0].databases = BTreeMap::from([(
            "db".to_owned(),
            Database { max_connections: u32::try_from(budget).unwrap_or(u32::MAX) + 1, reserve: 1, source: "declared".into() },
        )]);
        // One in five users has no decision in the pass; one in five decisions is frozen.
        let mut decisions = Vec::new();
        let mut decided = Vec::new();
        for (policy, &(_, (current, extra, wanted, roll))) in policies.iter().zip(&users) {
            if roll == 0 || roll == 1 {
                decided.push(false);
                continue;
            }
            decided.push(true);
            let frozen = roll == 2 || roll == 3;
            let now_capacity = CurrentCapacity {
                desired: current,
                running: Some(current + extra),
                busy: (roll == 3).then(|| "deployment in progress".to_owned()),
                ..Default::default()
            };
            let mut paused = policy.clone();
            paused.paused = roll == 2;
            let mut decision = decide(&paused, &Observations::new(), &now_capacity, &ResourceState::default(), now());
            if !frozen {
                decision.desired = wanted.clamp(policy.capacity.min, policy.capacity.max);
                decision.action = Action::between(current, decision.desired);
            }
            decisions.push(decision);
        }
        // The replica policy: `current` replicas, `available` of them in service, going to `desired`.
        let mut replica_policy = policy();
        replica_policy.name = "db-replicas".into();
        replica_policy.target = Target::RdsReplicas { source: "db".into() };
        replica_policy.capacity.min = 0;
        if let Some((current, available, desired)) = replicas {
            let mut decision = decide(&replica_policy, &Observations::new(), &CurrentCapacity { desired: current, in_service: Some(available.min(current)), ..Default::default() }, &ResourceState::default(), now());
            decision.desired = desired;
            decision.action = Action::between(current, desired);
            decisions.push(decision);
        }
        let mut refs: Vec<&Policy> = policies.iter().collect();
        refs.push(&replica_policy);
        let before = decisions.clone();
        let guarded = apply_guards(&refs, decisions);
        let known: Vec<&Policy> = policies.iter().zip(&decided).filter(|(_, d)| **d).map(|(p, _)| p).collect();
        let unknown: Vec<&Policy> = policies.iter().zip(&decided).filter(|(_, d)| !**d).map(|(p, _)| p).collect();
        let replica_after = (replicas.is_some()).then(|| &guarded.decisions[known.len()]);

        // Frozen decisions are left alone; no user goes below where it is or where it asked to go,
        // nor above what it asked for; the minimums are always granted.
        for ((after, before), policy) in guarded.decisions.iter().zip(&before).zip(&known) {
            if before.frozen() {
                prop_assert_eq!(after, before);
                continue;
            }
            prop_assert!(after.desired <= before.desired);
            prop_assert!(after.desired >= before.desired.min(before.current.max(policy.capacity.min)),
                "{} lowered from {} to {} (current {})", policy.name, before.desired, after.desired, before.current);
        }
        // Growth beyond the minimums only where the budget holds it, every user charged at
        // what it may hold now and those without a decision at their maximum.
        let serving = replica_after.map_or(0, |d| u64::from(d.in_service.min(d.desired)));
        let charge = |writers_only: bool| -> u64 {
            let decided: u64 = guarded.decisions.iter().zip(&before).zip(&known)
                .filter(|(_, p)| !writers_only || !read_only(p))
                .map(|((after, before), p)| u64::from(before.running + after.desired.saturating_sub(before.current)) * per_task(p))
                .sum();
            let others: u64 = unknown.iter().filter(|p| !writers_only || !read_only(p))
                .map(|p| u64::from(p.capacity.max) * per_task(p)).sum();
            decided + others
        };
        for ((after, before), policy) in guarded.decisions.iter().zip(&before).zip(&known) {
            let required = before.desired.min(before.current.max(policy.capacity.min));
            if !before.frozen() && after.desired > required {
                prop_assert!(charge(false) <= budget * (1 + serving), "{} grew to {} with {} charged of {}", policy.name, after.desired, charge(false), budget * (1 + serving));
                if !read_only(policy) {
                    prop_assert!(charge(true) <= budget, "writer {} grew with the writers at {} of {}", policy.name, charge(true), budget);
                }
            }
        }
        // Users asked to shed connections only on a breach of what is known, down to no
        // lower than their minimum.
        let set = |writers_only: bool| -> u64 {
            guarded.decisions.iter().zip(&known)
                .filter(|(_, p)| !writers_only || !read_only(p))
                .map(|(after, p)| u64::from(after.desired) * per_task(p))
                .sum()
        };
        let breached = set(true) > budget || replica_after.is_some_and(|_| set(false) > budget * (1 + serving));
        for request in &guarded.requests {
            if let GuardRequest::ShedConnections { policy: name, to, .. } = request {
                prop_assert!(breached, "{} asked to shed without a breach", name);
                let (after, policy) = guarded.decisions.iter().zip(&known)
                    .find(|(_, p)| &p.name == name).expect("a known user");
                prop_assert!(!after.frozen());
                prop_assert!(*to < after.desired && *to >= policy.capacity.min);
            }
        }
        // A replica is retired only when the connections held now or wanted fit without it.
        if let Some(replicas) = replica_after {
            let in_use: u64 = before.iter().zip(&known)
                .map(|(d, p)| u64::from(d.running.max(d.desired)) * per_task(p))
                .sum::<u64>()
                + unknown.iter().map(|p| u64::from(p.capacity.max) * per_task(p)).sum::<u64>();
            let kept = u64::from(replicas.in_service.min(replicas.desired));
            prop_assert!(
                kept == u64::from(replicas.in_service) || in_use <= budget * (1 + kept),
                "{} replicas of {} kept while users may hold {} connections", kept, replicas.in_service, in_use
            );
        }
    }

    #[test]
    fn partitions_are_never_asked_to_shrink_and_cap_their_consumers_growth(
        lag in prop::collection::vec(prop::option::weighted(0.9, 0..20_000u32), 3),
        partitions in 1..12u32,
        spread in 0..12u32,
        current in 0..15u32,
        min in 0..4u32,
        topic_known in prop::bool::weighted(0.8),
    ) {
        use capstan_policy::model::{Capacity, Target, Track, TrackGoal};
        use crate::guards::{GuardRequest, apply_guards};
        use crate::testing::{capacity, series};

        let mut topic = policy();
        topic.name = "topic".into();
        topic.target = Target::MskTopic { cluster_arn: "arn".into(), topic: "t".into() };
        topic.capacity = Capacity { min: 1, max: partitions + spread };
        let mut consumers = policy();
        consumers.capacity = Capacity { min, max: 30 };
        consumers.track.push(Track {
            metric: "cpu".into(),
            goal: TrackGoal::PerReplica(1000.0),
            window: 3,
            partitions: None,
            topic: Some("topic".into()),
        });
        let values: Vec<Option<f64>> = lag.iter().map(|v| v.map(f64::from)).collect();
        let observations: Observations = [(
            consumers.metric("cpu").clone(),
            MetricData::Series(series(now(), 60, &values)),
        )]
        .into_iter()
        .collect();
        let decision = decide(&consumers, &observations, &capacity(current), &ResourceState::default(), now());
        let topic_decision = decide(&topic, &Observations::new(), &capacity(partitions), &ResourceState::default(), now());
        let before = decision.desired;
        let decisions = if topic_known { vec![decision, topic_decision] } else { vec![decision] };
        let guarded = apply_guards(&[&consumers, &topic], decisions);
        let after = guarded.decisions[0].desired;
        // Consumers grow only up to the partitions (their minimum if higher), not at all while
        // the partitions are unknown, and are never lowered by the guard.
        let cap = if topic_known { partitions.max(min) } else { min };
        prop_assert!(after <= cap.max(current), "{} consumers with {} partitions (known: {})", after, partitions, topic_known);
        prop_assert!(after >= before.min(current.max(min)));
        let only_growth = guarded.requests.iter().all(|r| matches!(r, GuardRequest::PartitionGrowth { .. }));
        prop_assert!(only_growth);
        prop_assert!(topic_known || guarded.requests.is_empty());
        for request in &guarded.requests {
            if let GuardRequest::PartitionGrowth { from, to, .. } = request {
                prop_assert!(to > from, "asked to go from {} to {}", from, to);
                prop_assert!(*to <= partitions + spread);
            }
        }
    }
}
