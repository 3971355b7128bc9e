//! Unit tests of [`super::decide`], one behaviour each.

use capstan_policy::model::{MissingData, Schedule, Step, Threshold, Track, TrackGoal};

use super::*;
use crate::observe::{Datapoint, LastAction};
use crate::testing::{
    capacity, now, observations, period_start, point, policy, rule, secs, series,
};

const ABOVE_70: Threshold = Threshold::Above(70.0);
const BELOW_30: Threshold = Threshold::Below(30.0);

/// One-minute `values` over the complete periods before `now()`, oldest first.
fn minutes(values: &[Option<f64>]) -> Vec<Datapoint> {
    series(now(), 60, values)
}

/// `n` complete one-minute datapoints of `value`.
fn steady(value: f64, n: usize) -> Vec<Datapoint> {
    minutes(&vec![Some(value); n])
}

fn run(policy: &Policy, observations: &Observations, current: u32) -> Decision {
    decide(
        policy,
        observations,
        &capacity(current),
        &ResourceState::default(),
        now(),
    )
}

/// A policy scaling out by `step` when cpu is above 70 for 5 of 5 minutes.
fn scale_out_on_cpu(step: Step) -> Policy {
    let mut policy = policy();
    policy.scale_out.push(rule("cpu", ABOVE_70, 5, 5, step));
    policy
}

/// A policy scaling in by `step` when cpu is below 30 for 5 of 5 minutes.
fn scale_in_on_cpu(step: Step) -> Policy {
    let mut policy = policy();
    policy.scale_in.push(rule("cpu", BELOW_30, 5, 5, step));
    policy
}

fn kinds(decision: &Decision) -> Vec<ClampKind> {
    decision
        .explanation
        .clamps
        .iter()
        .map(|clamp| clamp.kind)
        .collect()
}

// --- Rules and windows ---

#[test]
fn scale_out_fires_when_the_window_breaches() {
    let policy = scale_out_on_cpu(Step::Add(2));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!(
        (decision.desired, decision.action),
        (6, Action::Scale(Direction::Out))
    );
    assert_eq!(decision.change(), Some((Direction::Out, 6)));
    assert_eq!(decision.explanation.fired.as_deref(), Some("scale_out[0]"));
    assert_eq!(
        decision.explanation.summary,
        "scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 6"
    );
}

#[test]
fn the_explanation_records_each_rule_with_its_window() {
    let mut policy = scale_out_on_cpu(Step::Add(2));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 2, 3, Step::Remove(1)));
    let memory = minutes(&[Some(10.0), None, Some(50.0)]);
    let decision = run(
        &policy,
        &observations(
            &policy,
            &[("cpu", steady(50.0, 5)), ("memory", memory.clone())],
        ),
        4,
    );
    let rules = &decision.explanation.rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(
        (rules[0].rule.as_str(), rules[0].metric.as_str()),
        ("scale_out[0]", "cpu")
    );
    assert_eq!(
        (
            rules[0].required,
            rules[0].window,
            rules[0].breaching,
            rules[0].missing
        ),
        (5, 5, 0, 0)
    );
    assert_eq!(rules[0].datapoints, steady(50.0, 5));
    assert_eq!(
        (rules[0].outcome.clone(), rules[0].step),
        (RuleOutcome::NotBreached, Step::Add(2))
    );
    assert_eq!(
        (rules[1].rule.as_str(), rules[1].threshold),
        ("scale_in[0]", BELOW_30)
    );
    assert_eq!(rules[1].datapoints, memory);
    assert_eq!(
        (
            rules[1].breaching,
            rules[1].missing,
            rules[1].outcome.clone()
        ),
        (1, 1, RuleOutcome::MissingData)
    );
    assert_eq!(decision.explanation.fired, None);
}

#[test]
fn exactly_at_the_threshold_does_not_fire() {
    let policy = scale_out_on_cpu(Step::Add(2));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(70.0, 5))]),
        4,
    );
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::NotBreached
    );
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: cpu 70.0 not above 70 (5 of 5 datapoints present)"
    );
}

#[test]
fn a_datapoint_just_before_the_window_does_not_count() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 3, 3, Step::Add(1)));
    // Four minutes back breaches, but the window is the last three.
    let cpu = minutes(&[Some(90.0), Some(50.0), Some(90.0), Some(90.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(decision.desired, 4);
    let rule = &decision.explanation.rules[0];
    assert_eq!((rule.breaching, rule.datapoints.len()), (2, 3));
    assert_eq!(rule.datapoints[0].timestamp, period_start(now(), 60, 3));
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: cpu above 70 for 2 of 3 datapoints, 3 needed (3 present)"
    );
}

#[test]
fn the_current_incomplete_period_does_not_count() {
    let policy = scale_out_on_cpu(Step::Add(1));
    // Four complete minutes breach and the minute now filling up breaches too: still only 4 of 5.
    let mut cpu = minutes(&[Some(50.0), Some(90.0), Some(90.0), Some(90.0), Some(90.0)]);
    cpu.push(point(period_start(now(), 60, 0), 90.0));
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(decision.desired, 4);
    assert_eq!(decision.explanation.rules[0].datapoints.len(), 5);
}

#[test]
fn the_current_period_does_not_fill_a_gap_for_scale_in() {
    let policy = scale_in_on_cpu(Step::Remove(1));
    let mut cpu = minutes(&[Some(10.0), Some(10.0), Some(10.0), Some(10.0), None]);
    cpu.push(point(period_start(now(), 60, 0), 10.0));
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(decision.desired, 4);
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::MissingData
    );
}

#[test]
fn at_a_period_boundary_the_period_just_begun_is_not_used() {
    let policy = scale_out_on_cpu(Step::Add(1));
    let boundary = period_start(now(), 60, 0);
    // At 12:01:00 the window is 11:56..=12:00; a datapoint stamped 12:01:00 is ignored.
    let mut cpu = series(
        boundary,
        60,
        &[Some(50.0), Some(90.0), Some(90.0), Some(90.0), Some(90.0)],
    );
    cpu.push(point(boundary, 90.0));
    let observations = observations(&policy, &[("cpu", cpu.clone())]);
    let decision = decide(
        &policy,
        &observations,
        &capacity(4),
        &ResourceState::default(),
        boundary,
    );
    assert_eq!(decision.desired, 4);
    // One second before, the window is one minute earlier and holds a gap where 11:55 would be.
    let before = boundary - secs(1);
    let decision = decide(
        &policy,
        &observations,
        &capacity(4),
        &ResourceState::default(),
        before,
    );
    assert_eq!(decision.explanation.rules[0].missing, 1);
    assert_eq!(
        decision.explanation.rules[0]
            .datapoints
            .last()
            .map(|p| p.value),
        Some(90.0)
    );
}

#[test]
fn m_of_n_fires_on_m_breaches() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 3, 5, Step::Add(1)));
    let fires = minutes(&[Some(90.0), Some(10.0), Some(90.0), Some(10.0), Some(90.0)]);
    assert_eq!(
        run(&policy, &observations(&policy, &[("cpu", fires)]), 4).desired,
        5
    );
    let short = minutes(&[Some(90.0), Some(10.0), Some(10.0), Some(10.0), Some(90.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", short)]), 4);
    assert_eq!(decision.desired, 4);
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: cpu above 70 for 2 of 5 datapoints, 3 needed (5 present)"
    );
}

#[test]
fn scale_out_fires_on_enough_breaches_despite_gaps() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 3, 5, Step::Add(1)));
    let cpu = minutes(&[Some(90.0), None, Some(90.0), None, Some(90.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(decision.desired, 5);
    assert_eq!(decision.explanation.rules[0].missing, 2);
}

#[test]
fn scale_out_holds_when_a_gap_could_have_breached() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 3, 5, Step::Add(1)));
    let cpu = minutes(&[Some(90.0), None, Some(90.0), Some(10.0), Some(10.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(
        (
            decision.desired,
            decision.explanation.rules[0].outcome.clone()
        ),
        (4, RuleOutcome::MissingData)
    );
    assert_eq!(
        decision.explanation.summary,
        "holding: cpu is missing 1 of 5 datapoints up to 2026-03-02T12:01:00+00:00"
    );
}

#[test]
fn scale_out_is_not_breached_when_gaps_could_not_have_made_up_the_difference() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 3, 5, Step::Add(1)));
    let cpu = minutes(&[Some(90.0), None, Some(10.0), Some(10.0), Some(10.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::NotBreached
    );
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: cpu above 70 for 1 of 5 datapoints, 3 needed (4 present)"
    );
}

#[test]
fn scale_in_never_fires_on_partial_data() {
    let mut policy = policy();
    policy
        .scale_in
        .push(rule("cpu", BELOW_30, 3, 5, Step::Remove(1)));
    let cpu = minutes(&[Some(10.0), Some(10.0), Some(10.0), Some(10.0), None]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::MissingData
    );
    assert_eq!(
        decision.explanation.summary,
        "holding: cpu is missing 1 of 5 datapoints up to 2026-03-02T12:01:00+00:00"
    );
}

#[test]
fn scale_in_fires_on_m_of_n_with_every_datapoint_present() {
    let mut policy = policy();
    policy
        .scale_in
        .push(rule("cpu", BELOW_30, 3, 5, Step::Remove(1)));
    let cpu = minutes(&[Some(10.0), Some(50.0), Some(10.0), Some(50.0), Some(10.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(
        (decision.desired, decision.action),
        (3, Action::Scale(Direction::In))
    );
    assert_eq!(
        decision.explanation.summary,
        "scale_in[0] fired: cpu below 30 for 3 of 5 datapoints; remove 1 -> 3"
    );
}

#[test]
fn windows_follow_each_metrics_period() {
    let mut policy = policy();
    policy.metrics.insert(
        "requests".into(),
        crate::testing::metric("RequestCount", 300),
    );
    policy.scale_out.push(rule(
        "requests",
        Threshold::Above(1000.0),
        2,
        2,
        Step::Add(1),
    ));
    // now() is 12:01:30: the last complete five-minute periods start 11:50 and 11:55.
    let requests = series(now(), 300, &[Some(5000.0), Some(5000.0)]);
    assert_eq!(requests[1].timestamp, now() - secs(390));
    let decision = run(
        &policy,
        &observations(&policy, &[("requests", requests)]),
        4,
    );
    assert_eq!(decision.desired, 5);
}

// --- Steps ---

fn proposal(step: Step, scale_out: bool, current: u32) -> RuleOutcome {
    let (policy, cpu) = if scale_out {
        (scale_out_on_cpu(step), 90.0)
    } else {
        (scale_in_on_cpu(step), 10.0)
    };
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(cpu, 5))]),
        current,
    );
    decision.explanation.rules[0].outcome.clone()
}

#[test]
fn each_step_proposes_its_capacity() {
    assert_eq!(
        proposal(Step::Add(3), true, 4),
        RuleOutcome::Fired { proposed: 7 }
    );
    assert_eq!(
        proposal(Step::Set(8), true, 4),
        RuleOutcome::Fired { proposed: 8 }
    );
    assert_eq!(
        proposal(Step::AddPercent(50), true, 5),
        RuleOutcome::Fired { proposed: 8 }
    ); // 2.5 rounds up
    assert_eq!(
        proposal(Step::AddPercent(10), true, 4),
        RuleOutcome::Fired { proposed: 5 }
    ); // at least one
    assert_eq!(
        proposal(Step::Remove(2), false, 4),
        RuleOutcome::Fired { proposed: 2 }
    );
    assert_eq!(
        proposal(Step::Set(2), false, 4),
        RuleOutcome::Fired { proposed: 2 }
    );
    assert_eq!(
        proposal(Step::RemovePercent(50), false, 5),
        RuleOutcome::Fired { proposed: 3 }
    ); // 2.5 rounds down
    assert_eq!(
        proposal(Step::RemovePercent(10), false, 4),
        RuleOutcome::Fired { proposed: 3 }
    ); // at least one
}

#[test]
fn set_on_a_scale_out_rule_counts_only_above_current() {
    assert_eq!(
        proposal(Step::Set(4), true, 4),
        RuleOutcome::NoChange { proposed: 4 }
    );
    let policy = scale_out_on_cpu(Step::Set(3));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!(
        (decision.desired, decision.explanation.fired.clone()),
        (4, None)
    );
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: scale_out[0] condition held but set 3 -> 3 is below the current 4"
    );
}

#[test]
fn set_on_a_scale_in_rule_counts_only_below_current() {
    assert_eq!(
        proposal(Step::Set(4), false, 4),
        RuleOutcome::NoChange { proposed: 4 }
    );
    let policy = scale_in_on_cpu(Step::Set(6));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        4,
    );
    assert_eq!(decision.desired, 4);
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: scale_in[0] condition held but set 6 -> 6 is above the current 4"
    );
}

#[test]
fn remove_at_zero_does_not_fire() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy.capacity.min = 0;
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        0,
    );
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::NoChange { proposed: 0 }
    );
    assert_eq!(
        decision.explanation.summary,
        "no rule fired: scale_in[0] condition held but remove 1 -> 0 is the current capacity"
    );
}

// --- Choosing among rules ---

#[test]
fn the_largest_scale_out_wins_and_the_first_among_equals() {
    let mut policy = policy();
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 1, 1, Step::Add(1)));
    policy
        .scale_out
        .push(rule("cpu", ABOVE_70, 1, 1, Step::Add(3)));
    policy
        .scale_out
        .push(rule("memory", ABOVE_70, 1, 1, Step::Set(7)));
    let observed = observations(
        &policy,
        &[("cpu", steady(90.0, 1)), ("memory", steady(90.0, 1))],
    );
    let decision = run(&policy, &observed, 4);
    assert_eq!(
        (decision.desired, decision.explanation.fired.as_deref()),
        (7, Some("scale_out[1]"))
    );
}

#[test]
fn the_scale_in_that_removes_least_wins() {
    let mut policy = policy();
    policy
        .scale_in
        .push(rule("cpu", BELOW_30, 1, 1, Step::Remove(3)));
    policy
        .scale_in
        .push(rule("cpu", BELOW_30, 1, 1, Step::Remove(1)));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 1, 1, Step::Set(5)));
    let observed = observations(
        &policy,
        &[("cpu", steady(10.0, 1)), ("memory", steady(10.0, 1))],
    );
    let decision = run(&policy, &observed, 6);
    assert_eq!(
        (decision.desired, decision.explanation.fired.as_deref()),
        (5, Some("scale_in[1]"))
    );
}

#[test]
fn scale_out_beats_scale_in() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 5, 5, Step::Remove(2)));
    let observed = observations(
        &policy,
        &[("cpu", steady(90.0, 5)), ("memory", steady(10.0, 5))],
    );
    let decision = run(&policy, &observed, 4);
    assert_eq!(
        (decision.desired, decision.action),
        (5, Action::Scale(Direction::Out))
    );
    assert_eq!(
        decision.explanation.rules[1].outcome,
        RuleOutcome::Fired { proposed: 2 }
    );
    assert_eq!(
        decision.explanation.summary,
        "scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 1 -> 5; scale_in[0] also fired; scale-out wins"
    );
}

#[test]
fn an_unavailable_metric_blocks_scale_in_but_not_another_metrics_scale_out() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy
        .scale_out
        .push(rule("memory", ABOVE_70, 5, 5, Step::Add(2)));
    policy
        .scale_in
        .push(rule("cpu", BELOW_30, 5, 5, Step::Remove(1)));
    let mut observed = observations(&policy, &[("cpu", steady(10.0, 5))]);
    observed.insert(
        policy.metric("memory").clone(),
        MetricData::Unavailable("throttled".into()),
    );
    let decision = run(&policy, &observed, 4);
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(
        decision.explanation.rules[1].outcome,
        RuleOutcome::Unavailable {
            reason: "throttled".into()
        }
    );
    assert_eq!(
        decision.explanation.rules[2].outcome,
        RuleOutcome::Fired { proposed: 3 }
    );
    assert_eq!(
        decision.explanation.summary,
        "scale_in[0] fired but scale-in is blocked: memory is unavailable (throttled)"
    );

    let observed = {
        let mut observed = observations(&policy, &[("cpu", steady(90.0, 5))]);
        observed.insert(
            policy.metric("memory").clone(),
            MetricData::Unavailable("throttled".into()),
        );
        observed
    };
    assert_eq!(run(&policy, &observed, 4).desired, 5);
}

#[test]
fn a_metric_missing_from_the_observations_is_unavailable() {
    let policy = scale_in_on_cpu(Step::Remove(1));
    let decision = run(&policy, &Observations::new(), 4);
    assert_eq!(decision.desired, 4);
    let RuleOutcome::Unavailable { reason } = &decision.explanation.rules[0].outcome else {
        panic!(
            "expected unavailable, got {:?}",
            decision.explanation.rules[0].outcome
        );
    };
    assert!(
        reason.contains("CPUUtilization") && reason.ends_with("was not read"),
        "{reason}"
    );
    assert_eq!(decision.explanation.rules[0].missing, 5);
    assert!(
        decision
            .explanation
            .summary
            .starts_with("holding: cpu is unavailable ("),
        "{}",
        decision.explanation.summary
    );
}

#[test]
fn a_gap_in_one_scale_in_window_blocks_every_scale_in() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 5, 5, Step::Remove(1)));
    let memory = minutes(&[Some(10.0), Some(10.0), None, Some(10.0), Some(10.0)]);
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5)), ("memory", memory)]),
        4,
    );
    assert_eq!(decision.desired, 4);
    assert_eq!(
        decision.explanation.summary,
        "scale_in[0] fired but scale-in is blocked: memory is missing 1 of 5 datapoints up to \
         2026-03-02T12:01:00+00:00"
    );
}

#[test]
fn a_gap_in_a_scale_out_window_does_not_block_scale_in() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy
        .scale_out
        .push(rule("memory", ABOVE_70, 3, 5, Step::Add(1)));
    let memory = minutes(&[Some(90.0), Some(90.0), None, Some(10.0), Some(10.0)]);
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5)), ("memory", memory)]),
        4,
    );
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::MissingData
    );
    assert_eq!(
        (decision.desired, decision.explanation.fired.as_deref()),
        (3, Some("scale_in[0]"))
    );
}

#[test]
fn no_rules_no_change() {
    let decision = run(&policy(), &Observations::new(), 4);
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(decision.explanation.summary, "no rules");
}

// --- Bounds ---

#[test]
fn proposals_are_clamped_to_the_policys_bounds() {
    let policy = scale_out_on_cpu(Step::Add(20));
    let decision = run(
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
    let decision = run(
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
        actions: vec![LastAction {
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
    let decision = run(
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
    let decision = run(
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
    let decision = run(
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
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        1,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (5, vec![ClampKind::MaxStep])
    );
}

// --- Cooldown ---

fn after(seconds: i64, direction: Direction) -> ResourceState {
    ResourceState {
        actions: vec![LastAction {
            at: now() - secs(seconds),
            direction,
            from: 3,
            to: 4,
        }],
        ..ResourceState::default()
    }
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

// --- Paused and busy ---

#[test]
fn a_paused_policy_explains_what_it_would_have_done() {
    let mut policy = scale_out_on_cpu(Step::Add(2));
    policy.paused = true;
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(
        decision.explanation.clamps,
        [Clamp {
            kind: ClampKind::Paused,
            from: 6,
            to: 4,
            detail: "the policy is paused; it would ask for 6".into()
        }]
    );
    assert_eq!(
        decision.explanation.summary,
        "paused, would scale 4 -> 6: scale_out[0] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 6"
    );
}

#[test]
fn a_paused_policy_leaves_capacity_outside_its_bounds_alone() {
    let mut policy = policy();
    policy.paused = true;
    let decision = run(&policy, &Observations::new(), 50);
    assert_eq!((decision.desired, decision.action), (50, Action::None));
    assert_eq!(kinds(&decision), [ClampKind::PolicyMax, ClampKind::Paused]);
    assert_eq!(
        decision.explanation.summary,
        "paused, would scale 50 -> 10: no rules; clamped by capacity.max to 10"
    );
}

#[test]
fn a_busy_resource_is_left_alone() {
    let policy = scale_out_on_cpu(Step::Add(2));
    let current = CurrentCapacity {
        busy: Some("deployment in progress".into()),
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
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(kinds(&decision), [ClampKind::ResourceBusy]);
    assert!(
        decision
            .explanation
            .summary
            .starts_with("resource busy (deployment in progress), would scale 4 -> 6: "),
        "{}",
        decision.explanation.summary
    );
}

#[test]
fn paused_and_busy_with_nothing_to_do_records_no_clamp() {
    let mut policy = policy();
    policy.paused = true;
    let current = CurrentCapacity {
        busy: Some("deployment in progress".into()),
        ..capacity(4)
    };
    let decision = decide(
        &policy,
        &Observations::new(),
        &current,
        &ResourceState::default(),
        now(),
    );
    assert_eq!(
        (decision.desired, decision.explanation.clamps.len()),
        (4, 0)
    );
}

// --- Schedules ---

fn schedule(cron: &str, timezone: chrono_tz::Tz, duration_secs: u64, min: u32) -> Schedule {
    Schedule {
        name: "business-hours".into(),
        cron: cron.parse().expect("valid cron"),
        timezone: crate::model::TimeZone(timezone),
        duration: crate::model::Duration::from_secs(duration_secs),
        min,
    }
}

#[test]
fn an_open_schedule_raises_capacity_with_no_rule_firing() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy.guards.max_step_out = Some(1);
    policy.guards.cooldown_out = crate::model::Duration::from_secs(600);
    policy
        .schedules
        .push(schedule("0 12 * * *", chrono_tz::UTC, 3_600, 6));
    let state = after(60, Direction::In);
    let observed = observations(&policy, &[("cpu", steady(50.0, 5))]);
    let decision = decide(&policy, &observed, &capacity(2), &state, now());
    assert_eq!(
        (decision.desired, decision.action),
        (6, Action::Scale(Direction::Out))
    );
    assert_eq!(kinds(&decision), [ClampKind::ScheduleFloor]);
    assert_eq!(decision.explanation.schedules.len(), 1);
    assert_eq!(decision.explanation.schedules[0].min, 6);
    assert!(
        decision
            .explanation
            .summary
            .ends_with("; clamped by schedule floor to 6")
    );
}

#[test]
fn an_open_schedule_blocks_scale_in_below_its_floor() {
    let mut policy = scale_in_on_cpu(Step::Remove(3));
    policy
        .schedules
        .push(schedule("0 12 * * *", chrono_tz::UTC, 3_600, 5));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(10.0, 5))]),
        6,
    );
    assert_eq!(
        (decision.desired, kinds(&decision)),
        (5, vec![ClampKind::ScheduleFloor])
    );
}

#[test]
fn the_highest_open_floor_counts_and_closed_schedules_none() {
    let mut policy = policy();
    policy
        .schedules
        .push(schedule("0 12 * * *", chrono_tz::UTC, 3_600, 3));
    policy
        .schedules
        .push(schedule("0 11 * * *", chrono_tz::UTC, 7_200, 5));
    policy
        .schedules
        .push(schedule("0 9 * * *", chrono_tz::UTC, 3_600, 9));
    let decision = run(&policy, &Observations::new(), 2);
    assert_eq!(
        (decision.desired, decision.explanation.schedules.len()),
        (5, 2)
    );
}

#[test]
fn a_schedule_in_the_spring_gap_raises_the_floor_when_the_gap_ends() {
    // 01:30 Europe/London does not exist on 2026-03-29; the window opens at 01:00 UTC.
    let mut policy = policy();
    policy.schedules.push(schedule(
        "30 1 * * SUN",
        chrono_tz::Europe::London,
        1_800,
        4,
    ));
    let at = |h, m| {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 29, h, m, 0)
            .single()
            .expect("valid")
    };
    let decide_at = |now| {
        decide(
            &policy,
            &Observations::new(),
            &capacity(2),
            &ResourceState::default(),
            now,
        )
    };
    assert_eq!(decide_at(at(0, 59)).desired, 2);
    assert_eq!(decide_at(at(1, 0)).desired, 4);
    assert_eq!(decide_at(at(1, 29)).desired, 4);
    assert_eq!(decide_at(at(1, 30)).desired, 2);
}

#[test]
fn the_decision_carries_the_policy_and_time() {
    let decision = run(&policy(), &Observations::new(), 3);
    assert_eq!(
        (decision.policy.as_str(), decision.at, decision.current),
        ("web", now(), 3)
    );
    assert_eq!(decision.target, policy().target);
    assert_eq!(
        decision.to_string(),
        "web [ecs_service prod/web]: 3 -> 3 (no rules)"
    );
}

// --- Target tracking ---

fn tracking(goal: TrackGoal, window: u32) -> Track {
    Track {
        metric: "cpu".into(),
        goal,
        window,
        partitions: None,
        topic: None,
    }
}

/// A policy tracking cpu at 50.
fn tracking_cpu() -> Policy {
    let mut policy = policy();
    policy.track.push(tracking(TrackGoal::Target(50.0), 1));
    policy
}

#[test]
fn target_tracking_scales_out_by_the_ratio_and_explains_it() {
    let policy = tracking_cpu();
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(80.0, 1))]),
        4,
    );
    assert_eq!(decision.desired, 7);
    assert_eq!(decision.explanation.fired.as_deref(), Some("track[0]"));
    assert_eq!(
        decision.explanation.summary,
        "track[0] asks for 7: cpu 80.0 with target 50, ratio 1.60"
    );
}

#[test]
fn target_tracking_scales_in_and_holds_within_tolerance() {
    let policy = tracking_cpu();
    let scaled = run(
        &policy,
        &observations(&policy, &[("cpu", steady(20.0, 1))]),
        10,
    );
    assert_eq!(scaled.desired, 4);
    let held = run(
        &policy,
        &observations(&policy, &[("cpu", steady(53.0, 1))]),
        10,
    );
    assert_eq!(held.desired, 10);
    assert_eq!(
        held.explanation.tracks[0].outcome,
        TrackOutcome::WithinTolerance
    );
    assert!(
        held.explanation
            .summary
            .starts_with("no rule fired: track[0] within tolerance")
    );
}

#[test]
fn tracking_averages_its_for_window() {
    let mut policy = policy();
    policy.track.push(tracking(TrackGoal::Target(50.0), 3));
    let values = minutes(&[Some(100.0), Some(50.0), Some(0.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", values)]), 4);
    assert_eq!(decision.explanation.tracks[0].value, Some(50.0));
    assert_eq!(decision.desired, 4);
}

#[test]
fn per_replica_tracking_is_capped_by_partitions() {
    let mut policy = policy();
    let mut lag = tracking(TrackGoal::PerReplica(1000.0), 1);
    lag.partitions = Some(6);
    policy.track.push(lag);
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(9000.0, 1))]),
        2,
    );
    assert_eq!(decision.desired, 6);
    assert!(
        decision
            .explanation
            .summary
            .ends_with("capped at 6 partitions")
    );
}

#[test]
fn tracking_never_scales_in_on_missing_data_but_scales_out_on_what_is_there() {
    let mut policy = policy();
    policy.track.push(tracking(TrackGoal::Target(50.0), 3));
    let low = minutes(&[Some(10.0), None, Some(10.0)]);
    let held = run(&policy, &observations(&policy, &[("cpu", low)]), 8);
    assert_eq!(held.desired, 8);
    assert_eq!(
        held.explanation.tracks[0].outcome,
        TrackOutcome::MissingData
    );
    let high = minutes(&[Some(100.0), None, Some(100.0)]);
    let scaled = run(&policy, &observations(&policy, &[("cpu", high)]), 4);
    assert_eq!(scaled.desired, 8);
}

#[test]
fn scale_out_takes_the_largest_of_rules_and_tracks() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy.track.push(tracking(TrackGoal::Target(50.0), 1));
    let decision = run(
        &policy,
        &observations(&policy, &[("cpu", steady(90.0, 5))]),
        4,
    );
    assert_eq!(decision.desired, 8);
    assert_eq!(decision.explanation.fired.as_deref(), Some("track[0]"));
}

#[test]
fn scale_in_needs_every_track_to_agree() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    let mut memory = tracking(TrackGoal::Target(50.0), 1);
    memory.metric = "memory".into();
    policy.track.push(memory);
    let metrics = [("cpu", steady(10.0, 5)), ("memory", steady(50.0, 1))];
    let decision = run(&policy, &observations(&policy, &metrics), 5);
    assert_eq!(decision.desired, 5);
    assert!(
        decision.explanation.summary.starts_with(
            "scale_in[0] fired but scale-in needs every track rule to agree: track[0] within tolerance"
        ),
        "{}",
        decision.explanation.summary
    );
    // When the track agrees, the smallest removal wins: remove 1 beats the track's 5 -> 2.
    let metrics = [("cpu", steady(10.0, 5)), ("memory", steady(20.0, 1))];
    let decision = run(&policy, &observations(&policy, &metrics), 5);
    assert_eq!(decision.desired, 4);
    assert_eq!(decision.explanation.fired.as_deref(), Some("scale_in[0]"));
}

#[test]
fn an_unreadable_tracked_metric_blocks_scale_in() {
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    let mut memory = tracking(TrackGoal::Target(50.0), 1);
    memory.metric = "memory".into();
    policy.track.push(memory);
    let mut observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    observations.insert(
        policy.metric("memory").clone(),
        MetricData::Unavailable("throttled".into()),
    );
    let decision = run(&policy, &observations, 5);
    assert_eq!(decision.desired, 5);
    assert_eq!(
        decision.explanation.summary,
        "scale_in[0] fired but scale-in is blocked: memory is unavailable (throttled)"
    );
}

// --- missing_data: scale_out ---

#[test]
fn missing_data_scale_out_counts_gaps_as_breaching_for_scale_out_only() {
    let mut policy = scale_out_on_cpu(Step::Add(2));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 3, 3, Step::Remove(1)));
    policy.guards.missing_data = MissingData::ScaleOut;
    let silent = minutes(&[Some(90.0), Some(90.0), None, None, None]);
    let metrics = [
        ("cpu", silent),
        ("memory", minutes(&[Some(10.0), None, Some(10.0)])),
    ];
    let decision = run(&policy, &observations(&policy, &metrics), 4);
    assert_eq!(decision.desired, 6);
    assert_eq!(
        decision.explanation.summary,
        "scale_out[0] fired: cpu above 70 for 2 of 5 datapoints and 3 missing, counted as \
         breaching (missing_data: scale_out); add 2 -> 6"
    );
    // Scale-in still holds on the gap.
    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy.guards.missing_data = MissingData::ScaleOut;
    let gap = minutes(&[Some(10.0), None, Some(10.0), Some(10.0), Some(10.0)]);
    let decision = run(&policy, &observations(&policy, &[("cpu", gap)]), 4);
    assert_eq!(decision.desired, 4);
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
    let first = run(&policy, &observations, 6);
    assert_eq!(first.desired, 5);
    assert_eq!(kinds(&first), [ClampKind::ScaleInPacing]);
    let removed = |seconds_ago: i64| ResourceState {
        actions: vec![LastAction {
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

// --- Stabilization ---

/// A state remembering `capacities`, one recommendation per minute, the last one minute ago.
fn recommended(capacities: &[u32]) -> ResourceState {
    let count = i64::try_from(capacities.len()).expect("few recommendations");
    ResourceState {
        recommendations: capacities
            .iter()
            .zip((1..=count).rev())
            .map(|(&capacity, minutes_ago)| crate::observe::Recommendation {
                at: now() - secs(60 * minutes_ago),
                capacity,
            })
            .collect(),
        ..ResourceState::default()
    }
}

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

// --- Rate limits ---

fn acted(changes: &[(i64, Direction, u32, u32)]) -> ResourceState {
    ResourceState {
        actions: changes
            .iter()
            .map(|&(seconds_ago, direction, from, to)| LastAction {
                at: now() - secs(seconds_ago),
                direction,
                from,
                to,
            })
            .collect(),
        ..ResourceState::default()
    }
}

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
    assert_eq!(run(&policy, &observations, 10).desired, 5);
    policy.guards.rate_limit_in = Some(limit(Select::LeastPermissive));
    assert_eq!(run(&policy, &observations, 10).desired, 8);
    // 50% of 3 rounds to 2 units, away from the period's start.
    policy.guards.rate_limit_in = Some(RateLimit {
        units: None,
        ..limit(Select::MostPermissive)
    });
    assert_eq!(run(&policy, &observations, 3).desired, 1);
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
    let below_min = run(&policy, &Observations::new(), 0);
    assert_eq!(below_min.desired, policy.capacity.min);
}

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

// --- What is remembered ---

#[test]
fn the_state_after_a_decision_keeps_what_the_guards_can_still_see() {
    use capstan_policy::model::{Duration, RateLimit, Select};

    let mut policy = scale_in_on_cpu(Step::Remove(1));
    policy.guards.stabilization_in = Duration::from_secs(300);
    policy.guards.rate_limit_out = Some(RateLimit {
        units: Some(2),
        percent: None,
        per: Duration::from_secs(900),
        select: Select::MostPermissive,
    });
    let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
    let before = ResourceState {
        recommendations: recommended(&[9, 8, 7, 6, 6, 6]).recommendations,
        evaluations_without_data: 4,
        ..acted(&[(1200, Direction::Out, 2, 4), (800, Direction::Out, 4, 6)])
    };
    let decision = decide(&policy, &observations, &capacity(6), &before, now());
    assert_eq!(decision.desired, 6);
    let applied = LastAction {
        at: now(),
        direction: Direction::In,
        from: 6,
        to: 5,
    };

    let after = before.after(&policy, &decision, Some(applied));

    // Actions older than the longest period (15m) go, except the latest.
    assert_eq!(after.actions, [before.actions[1], applied]);
    // Recommendations older than 5m go; this one is added.
    let kept: Vec<u32> = after.recommendations.iter().map(|r| r.capacity).collect();
    assert_eq!(kept, [7, 6, 6, 6, 5]);
    assert_eq!(after.evaluations_without_data, 0);
    // With nothing applied, the latest action stays however old.
    let old = acted(&[(7200, Direction::Out, 2, 4)]);
    assert_eq!(old.after(&policy, &decision, None).actions, old.actions);
}

// --- Blocked decisions ---

#[test]
fn pauses_and_busy_resources_block_a_change_but_the_policys_own_guards_do_not() {
    let mut policy = scale_out_on_cpu(Step::Add(4));
    policy.guards.max_step_out = Some(1);
    let observed = observations(&policy, &[("cpu", steady(90.0, 5))]);

    let stepped = run(&policy, &observed, 4);
    assert_eq!(kinds(&stepped), [ClampKind::MaxStep]);
    assert_eq!(stepped.blocked_by(), None);

    policy.paused = true;
    let paused = run(&policy, &observed, 4);
    assert_eq!(
        paused
            .blocked_by()
            .map(|clamp| (clamp.kind, clamp.from, clamp.to)),
        Some((ClampKind::Paused, 5, 4))
    );

    policy.paused = false;
    let busy = CurrentCapacity {
        busy: Some("deployment in progress".into()),
        ..capacity(4)
    };
    let held = decide(&policy, &observed, &busy, &ResourceState::default(), now());
    assert_eq!(
        held.blocked_by().map(|clamp| clamp.kind),
        Some(ClampKind::ResourceBusy)
    );

    let idle = run(
        &policy,
        &observations(&policy, &[("cpu", steady(40.0, 5))]),
        4,
    );
    assert_eq!(idle.blocked_by(), None);
}
