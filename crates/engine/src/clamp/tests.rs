//! Unit tests of the bounds and guards, in the order [`super::apply`] applies them, through
//! [`decide()`](crate::decide()).

use capstan_policy::model::{MissingData, Policy, Step};

use crate::decide::decide;
use crate::decision::{Action, Clamp, ClampKind, Decision};
use crate::observe::{Change, CurrentCapacity, Direction, Observations, ResourceState};
use crate::testing::{
    ABOVE_70, BELOW_30, acted, capacity, decide_from, kinds, now, observations, policy,
    recommended, rule, scale_in_on_cpu, scale_out_on_cpu, secs, steady,
};

// --- missing_data: fallback ---

#[test]
fn fallback_raises_capacity_after_enough_evaluations_without_data() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy.guards.missing_data = MissingData::Fallback {
        capacity: 7,
        after: 3,
    };
    let silent = Observations::new();
    let after = |evaluations: u32| ResourceState {
        evaluations_without_data: evaluations,
        ..ResourceState::default()
    };
    let decide_with = |current: u32, state: &ResourceState| {
        decide(&policy, &silent, &capacity(current), state, now())
    };

    let second = decide_with(4, &after(1));
    assert_eq!((second.desired, second.explanation.data_missing), (4, true));
    let third = decide_with(4, &after(2));
    assert_eq!(
        (third.desired, kinds(&third)),
        (7, vec![ClampKind::MissingDataFallback])
    );
    assert_eq!(
        third.explanation.clamps[0].detail,
        "data has been missing for 3 evaluations (fallback after 3)"
    );
    // Never lower: capstan does not scale in blind.
    assert_eq!(decide_with(9, &after(5)).desired, 9);
    // With data, the counter does not matter.
    let observations = observations(&policy, &[("cpu", steady(50.0, 5))]);
    let with_data = decide(&policy, &observations, &capacity(4), &after(5), now());
    assert_eq!(
        (with_data.desired, with_data.explanation.data_missing),
        (4, false)
    );
}

// --- Stabilization ---

#[test]
fn scale_in_goes_no_lower_than_the_highest_recent_recommendation() {
    use capstan_policy::model::Duration;

    let mut policy = scale_in_on_cpu(Step::Remove(3));
    policy.guards.stabilization_in = Duration::from_secs(300);
    let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    let decide_with =
        |state: &ResourceState| decide(&policy, &observations, &capacity(8), state, now());

    // Four minutes ago the rules asked for 8, so 5 is held at 8.
    let held = decide_with(&recommended(&[8, 6, 6, 6]));
    assert_eq!(held.desired, 8);
    assert_eq!(kinds(&held), [ClampKind::Stabilization]);
    assert_eq!(held.explanation.proposed, 5);
    assert_eq!(
        held.explanation.clamps[0].detail,
        "the highest recommendation within stabilization.in of 5m was 8"
    );
    // Never above the current capacity, however high the recommendation was.
    assert_eq!(decide_with(&recommended(&[9, 6, 6, 6])).desired, 8);
    // The highest within the window is 6: scale in to 6, not 5.
    assert_eq!(decide_with(&recommended(&[6, 6, 6, 6])).desired, 6);
    // Exactly five minutes old is outside the window.
    assert_eq!(decide_with(&recommended(&[8, 5, 5, 5, 5])).desired, 5);
    // Nothing remembered: no hold.
    assert_eq!(decide_with(&ResourceState::default()).desired, 5);
}

#[test]
fn while_a_flap_is_remembered_scale_in_waits_for_the_longer_window() {
    use capstan_policy::model::Duration;

    let mut policy = scale_in_on_cpu(Step::Remove(3));
    policy.guards.stabilization_in = Duration::from_secs(300);
    policy.guards.stabilization_in_after_flap = Duration::from_secs(3600);
    let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    // The rules asked for 8 fifty minutes ago and for 6 since.
    let mut asked = vec![8];
    asked.extend([6; 49]);
    let flapped = |seconds_ago: Option<i64>| ResourceState {
        flapped_at: seconds_ago.map(|ago| now() - secs(ago)),
        ..recommended(&asked)
    };
    let decide_with = |policy: &Policy, state: &ResourceState| {
        decide(policy, &observations, &capacity(8), state, now())
    };

    // No flap: the 5-minute window holds 5 at 6.
    assert_eq!(decide_with(&policy, &flapped(None)).desired, 6);
    // A flap three hours ago: the hour's highest, 8, holds.
    let held = decide_with(&policy, &flapped(Some(3 * 3600)));
    assert_eq!(
        (held.desired, kinds(&held)),
        (8, vec![ClampKind::Stabilization])
    );
    let flap = (now() - secs(3 * 3600)).to_rfc3339();
    assert_eq!(
        held.explanation.clamps[0].detail,
        format!(
            "the highest recommendation within stabilization.in_after_flap of 1h (a flap at \
             {flap} is remembered) was 8"
        )
    );
    // Two days after the flap it is forgotten.
    assert_eq!(decide_with(&policy, &flapped(Some(2 * 86_400))).desired, 6);
    // A window after a flap no longer than `in` changes nothing.
    policy.guards.stabilization_in_after_flap = Duration::from_secs(0);
    assert_eq!(decide_with(&policy, &flapped(Some(3 * 3600))).desired, 6);
}

#[test]
fn scale_out_goes_no_higher_than_the_lowest_recent_recommendation() {
    use capstan_policy::model::Duration;

    let mut policy = scale_out_on_cpu(Step::Add(4));
    policy.guards.stabilization_out = Duration::from_secs(180);
    let observations = observations(&policy, &[("cpu", steady(90.0, 5))]);
    let decide_with =
        |state: &ResourceState| decide(&policy, &observations, &capacity(4), state, now());

    let held = decide_with(&recommended(&[9, 4, 6]));
    assert_eq!(
        (held.desired, kinds(&held)),
        (4, vec![ClampKind::Stabilization])
    );
    // Exactly three minutes old is outside the window: the lowest is 6.
    assert_eq!(decide_with(&recommended(&[4, 6, 7])).desired, 6);
    // With the default window of 0s nothing is remembered for scale-out.
    policy.guards.stabilization_out = Duration::from_secs(0);
    let observations = crate::testing::observations(&policy, &[("cpu", steady(90.0, 5))]);
    let at_once = decide(
        &policy,
        &observations,
        &capacity(4),
        &recommended(&[4, 4]),
        now(),
    );
    assert_eq!(at_once.desired, 8);
}

// --- Bounds ---

#[test]
fn proposals_are_clamped_to_the_policys_bounds() {
    let policy = scale_out_on_cpu(Step::Add(20));
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!(decision.desired, 10);
    assert_eq!(
        decision.explanation.clamps,
        [Clamp {
            kind: ClampKind::PolicyMax,
            from: 24,
            to: 10,
            detail: "capacity.max is 10".into()
        }]
    );
    assert!(
        decision
            .explanation
            .summary
            .ends_with("add 20 -> 24; clamped by capacity.max to 10")
    );

    let mut policy = scale_in_on_cpu(Step::Remove(5));
    policy.capacity.min = 2;
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        4,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (2, vec![ClampKind::PolicyMin])
    );
}

#[test]
fn current_above_the_policy_max_is_brought_back_whatever_the_guards() {
    let mut policy = policy();
    policy.guards.max_step_in = Some(2);
    policy.guards.cooldown_in = crate::model::Duration::from_secs(600);
    let state = ResourceState {
        changes: vec![Change {
            at: now() - secs(60),
            direction: Direction::Out,
            from: 8,
            to: 9,
        }],
        ..ResourceState::default()
    };
    let decision = decide(&policy, &Observations::new(), &capacity(50), &state, now());
    assert_eq!(
        (decision.desired, decision.action),
        (10, Action::Scale(Direction::In))
    );
    assert_eq!(kinds(&decision), [ClampKind::PolicyMax]);
    assert_eq!(
        decision.explanation.summary,
        "no rules; clamped by capacity.max to 10"
    );
}

#[test]
fn current_below_the_policy_min_is_raised_even_if_a_scale_in_rule_fires() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy.capacity.min = 3;
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        1,
    );
    assert_eq!(
        (decision.desired, decision.action),
        (3, Action::Scale(Direction::Out))
    );
}

#[test]
fn the_resources_own_bounds_are_never_crossed() {
    let policy = scale_out_on_cpu(Step::Add(5));
    let current = CurrentCapacity {
        resource_max: Some(7),
        ..capacity(4)
    };
    let observed = observations(&policy, &[("cpu", steady(90.0, 5))]);
    let decision = decide(
        &policy,
        &observed,
        &current,
        &ResourceState::default(),
        now(),
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (7, vec![ClampKind::ResourceMax])
    );

    let policy = scale_in_on_cpu(Step::Remove(3));
    let current = CurrentCapacity {
        resource_min: Some(3),
        ..capacity(4)
    };
    let observed = observations(&policy, &[("cpu", steady(10.0, 5))]);
    let decision = decide(
        &policy,
        &observed,
        &current,
        &ResourceState::default(),
        now(),
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (3, vec![ClampKind::ResourceMin])
    );
}

#[test]
fn the_resources_own_maximum_says_where_it_comes_from() {
    let policy = scale_out_on_cpu(Step::Add(5));
    let current = CurrentCapacity {
        resource_max: Some(7),
        resource_max_reason: Some("kafka.m5.large row: 1000 partitions per broker".into()),
        ..capacity(4)
    };
    let observed = observations(&policy, &[("cpu", steady(90.0, 5))]);
    let decision = decide(
        &policy,
        &observed,
        &current,
        &ResourceState::default(),
        now(),
    );
    assert_eq!(
        decision.explanation.clamps[0].detail,
        "the resource's own maximum is 7: kafka.m5.large row: 1000 partitions per broker"
    );
}

/// A decision on `policy` (capacity 0 to 10) at `current`, for a resource taking multiples
/// of 3, after `observed` cpu.
fn in_threes(policy: &Policy, cpu: f64, current: u32) -> Decision {
    let current = CurrentCapacity {
        multiple_of: Some(3),
        ..capacity(current)
    };
    let observed = observations(policy, &[("cpu", steady(cpu, 5))]);
    decide(
        policy,
        &observed,
        &current,
        &ResourceState::default(),
        now(),
    )
}

#[test]
fn a_resource_taking_multiples_is_moved_in_whole_multiples() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy.capacity.min = 0;
    policy.guards.max_step_out = Some(1);
    let out = in_threes(&policy, 90.0, 3);
    assert_eq!((out.desired, kinds(&out)), (6, vec![ClampKind::MultipleOf]));
    assert_eq!(
        out.explanation.clamps[0].detail,
        "the resource takes multiples of 3"
    );
    // Rounding up would cross capacity.max: round towards the current capacity instead.
    policy.capacity.max = 8;
    assert_eq!(in_threes(&policy, 90.0, 6).desired, 6);

    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy.capacity.min = 0;
    let into = in_threes(&policy, 10.0, 6);
    assert_eq!(
        (into.desired, into.action),
        (3, Action::Scale(Direction::In))
    );
    // A multiple is left alone.
    let policy = scale_out_on_cpu(Step::Add(3));
    assert!(kinds(&in_threes(&policy, 90.0, 3)).is_empty());
}

#[test]
fn brokers_whose_own_minimum_is_their_count_are_never_removed() {
    // The MSK adapter reports a cluster's broker count as its own minimum.
    let mut policy = scale_in_on_cpu(Step::Remove(3));
    policy.capacity.min = 0;
    let cluster = CurrentCapacity {
        multiple_of: Some(3),
        resource_min: Some(6),
        ..capacity(6)
    };
    let observed = observations(&policy, &[("cpu", steady(10.0, 5))]);
    let decision = decide(
        &policy,
        &observed,
        &cluster,
        &ResourceState::default(),
        now(),
    );
    assert_eq!((decision.desired, decision.action), (6, Action::None));
    assert_eq!(kinds(&decision), vec![ClampKind::ResourceMin]);
}

// --- max_step ---

#[test]
fn max_step_limits_a_scale_out() {
    let mut policy = scale_out_on_cpu(Step::Add(2));
    policy.guards.max_step_out = Some(1);
    policy.guards.max_step_in = Some(0);
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (5, vec![ClampKind::MaxStep])
    );
    assert_eq!(
        decision.explanation.summary,
        "scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 6; clamped by max_step to 5"
    );
}

#[test]
fn max_step_limits_a_scale_in() {
    let mut policy = scale_in_on_cpu(Step::Set(1));
    policy.guards.max_step_in = Some(2);
    policy.guards.max_step_out = Some(0);
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        8,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (6, vec![ClampKind::MaxStep])
    );
    assert_eq!(decision.explanation.clamps[0].detail, "max_step.in is 2");
}

#[test]
fn max_step_does_not_hold_capacity_below_the_policy_min() {
    let mut policy = scale_out_on_cpu(Step::Add(5));
    policy.capacity.min = 5;
    policy.guards.max_step_out = Some(1);
    // From 1, bounds require 5; the rule asks for 6; max_step allows the rule nothing more.
    let decision = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        1,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (5, vec![ClampKind::MaxStep])
    );
}

// --- Rate limits ---

#[test]
fn a_rate_limit_counts_the_changes_of_its_period() {
    use capstan_policy::model::{Duration, RateLimit, Select};

    let mut policy = scale_out_on_cpu(Step::Add(10));
    policy.capacity.max = 100;
    policy.guards.rate_limit_out = Some(RateLimit {
        units: Some(4),
        percent: None,
        per: Duration::from_secs(600),
        select: Select::MostPermissive,
    });
    let observations = observations(&policy, &[("cpu", steady(90.0, 5))]);
    let decide_with = |current: u32, state: &ResourceState| {
        decide(&policy, &observations, &capacity(current), state, now())
    };

    let fresh = decide_with(10, &ResourceState::default());
    assert_eq!(
        (fresh.desired, kinds(&fresh)),
        (14, vec![ClampKind::RateLimit])
    );
    // 3 added 5 minutes ago: 10 at the period's start, room for one more.
    let one_more = decide_with(13, &acted(&[(300, Direction::Out, 10, 13)]));
    assert_eq!(one_more.desired, 14);
    assert_eq!(
        one_more.explanation.clamps[0].detail,
        format!(
            "rate_limit.out allows 4 per 10m from 10 at the period's start; 3 moved since {}",
            (now() - secs(600)).to_rfc3339()
        )
    );
    // The period used up: no scale-out at all.
    let spent = decide_with(14, &acted(&[(300, Direction::Out, 10, 14)]));
    assert_eq!(spent.desired, 14);
    // A change exactly one period ago no longer counts; a scale-in does not count for out.
    let expired = decide_with(
        14,
        &acted(&[(600, Direction::Out, 10, 14), (60, Direction::In, 15, 14)]),
    );
    assert_eq!(expired.desired, 18);
}

#[test]
fn a_rate_limit_selects_the_most_or_least_permissive_amount() {
    use capstan_policy::model::{Duration, RateLimit, Select};

    let mut policy = scale_in_on_cpu(Step::Set(0));
    let limit = |select| RateLimit {
        units: Some(2),
        percent: Some(50),
        per: Duration::from_secs(60),
        select,
    };
    let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    policy.capacity.min = 0;
    policy.guards.rate_limit_in = Some(limit(Select::MostPermissive));
    // 50% of 10 is 5 units, more than 2: down to 5.
    assert_eq!(decide_from(&policy, &observations, 10).desired, 5);
    policy.guards.rate_limit_in = Some(limit(Select::LeastPermissive));
    assert_eq!(decide_from(&policy, &observations, 10).desired, 8);
    // 50% of 3 rounds to 2 units, away from the period's start.
    policy.guards.rate_limit_in = Some(RateLimit {
        units: None,
        ..limit(Select::MostPermissive)
    });
    assert_eq!(decide_from(&policy, &observations, 3).desired, 1);
}

#[test]
fn a_rate_limit_never_holds_capacity_outside_the_bounds() {
    use capstan_policy::model::{Duration, RateLimit, Select};

    let mut policy = policy();
    policy.guards.rate_limit_out = Some(RateLimit {
        units: Some(1),
        percent: None,
        per: Duration::from_secs(600),
        select: Select::MostPermissive,
    });
    let below_min = decide_from(&policy, &Observations::new(), 0);
    assert_eq!(below_min.desired, policy.capacity.min);
}

// --- Cooldown ---

/// A state whose one change, 3 -> 4 `direction`, was made `seconds` ago.
fn after(seconds: i64, direction: Direction) -> ResourceState {
    acted(&[(seconds, direction, 3, 4)])
}

fn cooling(step: Step, cpu: f64, state: &ResourceState) -> Decision {
    let mut policy = policy();
    policy.scale_out.push(rule("cpu", ABOVE_70, 5, 5, step));
    policy.scale_in.push(rule("cpu", BELOW_30, 5, 5, step));
    policy.guards.cooldown_out = crate::model::Duration::from_secs(120);
    policy.guards.cooldown_in = crate::model::Duration::from_secs(600);
    decide(
        &policy,
        &observations(&policy, &[("cpu", steady(cpu, 5))]),
        &capacity(4),
        state,
        now(),
    )
}

#[test]
fn cooldown_out_holds_until_it_ends_and_not_at_the_end() {
    let before = cooling(Step::Add(1), 90.0, &after(119, Direction::Out));
    assert_eq!(
        (before.desired, kinds(&before)),
        (4, vec![ClampKind::Cooldown])
    );
    assert_eq!(before.explanation.fired.as_deref(), Some("scale_out[0]"));
    assert!(
        before
            .explanation
            .summary
            .ends_with("add 1 -> 5; clamped by cooldown to 4"),
        "{}",
        before.explanation.summary
    );
    let ends = (now() + secs(1)).to_rfc3339();
    assert_eq!(
        before.explanation.clamps[0].detail,
        format!(
            "cooldown.out of 2m after the change 3 -> 4 at {} runs until {ends}",
            (now() - secs(119)).to_rfc3339()
        )
    );
    assert_eq!(
        cooling(Step::Add(1), 90.0, &after(120, Direction::Out)).desired,
        5
    );
    assert_eq!(
        cooling(Step::Add(1), 90.0, &after(121, Direction::Out)).desired,
        5
    );
}

#[test]
fn cooldown_in_holds_until_it_ends_and_not_at_the_end() {
    let before = cooling(Step::Remove(1), 10.0, &after(599, Direction::Out));
    assert_eq!(
        (before.desired, kinds(&before)),
        (4, vec![ClampKind::Cooldown])
    );
    assert_eq!(
        cooling(Step::Remove(1), 10.0, &after(600, Direction::Out)).desired,
        3
    );
    assert_eq!(
        cooling(Step::Remove(1), 10.0, &after(601, Direction::In)).desired,
        3
    );
}

#[test]
fn each_direction_has_its_own_cooldown_after_any_action() {
    // 200s after a scale-in: scale-out (2m) may go, scale-in (10m) may not.
    assert_eq!(
        cooling(Step::Add(1), 90.0, &after(200, Direction::In)).desired,
        5
    );
    assert_eq!(
        cooling(Step::Remove(1), 10.0, &after(200, Direction::In)).desired,
        4
    );
}

// --- scale_in_pacing ---

#[test]
fn paced_scale_in_removes_one_unit_per_interval_after_draining() {
    use capstan_policy::model::{Duration, ScaleInPacing};

    let mut policy = scale_in_on_cpu(Step::Remove(3));
    policy.guards.scale_in_pacing = Some(ScaleInPacing {
        max_per_interval: 1,
        interval: Duration::from_secs(600),
        drain: Duration::from_secs(300),
    });
    let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    let first = decide_from(&policy, &observations, 6);
    assert_eq!(first.desired, 5);
    assert_eq!(kinds(&first), [ClampKind::ScaleInPacing]);
    let removed = |seconds_ago: i64| ResourceState {
        changes: vec![Change {
            at: now() - secs(seconds_ago),
            direction: Direction::In,
            from: 6,
            to: 5,
        }],
        ..ResourceState::default()
    };
    let paced = |state: &ResourceState| decide(&policy, &observations, &capacity(5), state, now());
    let waiting = paced(&removed(599));
    assert_eq!(waiting.desired, 5);
    assert!(
        waiting
            .explanation
            .summary
            .ends_with("clamped by scale_in_pacing to 5"),
        "{}",
        waiting.explanation.summary
    );
    assert_eq!(paced(&removed(600)).desired, 4);
}
