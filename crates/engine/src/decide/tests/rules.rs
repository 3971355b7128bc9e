//! Rules and their windows: which datapoints count, when a rule fires, what its step proposes.

use capstan_policy::model::{MissingData, Step, Threshold};

use crate::decide::decide;
use crate::decision::{Action, RuleOutcome};
use crate::observe::{Direction, Observations, ResourceState};
use crate::testing::{
    ABOVE_70, BELOW_30, capacity, decide_from, minutes, now, observations, period_start, point,
    policy, rule, scale_in_on_cpu, scale_out_on_cpu, secs, series, steady,
};

#[test]
fn the_decision_carries_the_policy_and_time() {
    let decision = decide_from(&policy(), &Observations::new(), 3);
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

// --- Rules and windows ---

#[test]
fn scale_out_fires_when_the_window_breaches() {
    let policy = scale_out_on_cpu(Step::Add(2));
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
    assert_eq!(decision.desired, 4);
    assert_eq!(decision.explanation.rules[0].datapoints.len(), 5);
}

#[test]
fn the_current_period_does_not_fill_a_gap_for_scale_in() {
    let policy = scale_in_on_cpu(Step::Remove(1));
    let mut cpu = minutes(&[Some(10.0), Some(10.0), Some(10.0), Some(10.0), None]);
    cpu.push(point(period_start(now(), 60, 0), 10.0));
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
        decide_from(&policy, &observations(&policy, &[("cpu", fires)]), 4).desired,
        5
    );
    let short = minutes(&[Some(90.0), Some(10.0), Some(10.0), Some(10.0), Some(90.0)]);
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", short)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", cpu)]), 4);
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(&policy, &observations(&policy, &metrics), 4);
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", gap)]), 4);
    assert_eq!(decision.desired, 4);
}

// --- Launches warming up ---

/// A decision of `policy` at cpu `value`, `desired` units asked for and `in_service` of them
/// serving.
fn decide_warming(
    policy: &capstan_policy::model::Policy,
    value: f64,
    desired: u32,
    in_service: u32,
) -> crate::Decision {
    let current = crate::CurrentCapacity {
        in_service: Some(in_service),
        ..capacity(desired)
    };
    decide(
        policy,
        &observations(policy, &[("cpu", steady(value, 5))]),
        &current,
        &ResourceState::default(),
        now(),
    )
}

#[test]
fn a_scale_out_step_the_launches_warming_up_cover_holds() {
    // 4 serve saturated and 8 are launched: doubling the 4 in service asks for the 8 already
    // launched, not 16 (the policy's maximum is 10).
    let policy = scale_out_on_cpu(Step::AddPercent(100));
    let held = decide_warming(&policy, 100.0, 8, 4);
    assert_eq!((held.desired, held.action), (8, Action::None));
    assert_eq!(
        held.explanation.rules[0].outcome,
        RuleOutcome::WarmingUp {
            proposed: 8,
            in_service: 4
        }
    );
    assert_eq!(
        held.explanation.summary,
        "no rule fired: scale_out[0] holds at 8 while launches warm up: add 100% from the 4 in \
         service asks for 8"
    );
}

#[test]
fn a_scale_out_step_beyond_the_launches_warming_up_scales_from_those_in_service() {
    // 4 serve and 6 are launched: adding 4 to the 4 in service asks for 8, not 10.
    let policy = scale_out_on_cpu(Step::Add(4));
    let decision = decide_warming(&policy, 100.0, 6, 4);
    assert_eq!(decision.desired, 8);
    assert_eq!(
        decision.explanation.rules[0].outcome,
        RuleOutcome::Fired { proposed: 8 }
    );
}

#[test]
fn scale_in_waits_while_a_scale_out_rule_holds_for_launches_warming_up() {
    let mut policy = scale_out_on_cpu(Step::AddPercent(100));
    policy
        .scale_in
        .push(rule("memory", BELOW_30, 5, 5, Step::Remove(2)));
    let current = crate::CurrentCapacity {
        in_service: Some(4),
        ..capacity(8)
    };
    let held = decide(
        &policy,
        &observations(
            &policy,
            &[("cpu", steady(100.0, 5)), ("memory", steady(10.0, 5))],
        ),
        &current,
        &ResourceState::default(),
        now(),
    );
    assert_eq!(held.desired, 8);
    assert_eq!(
        held.explanation.summary,
        "scale_in[0] fired but scale-in waits while launches warm up: scale_out[0] holds at 8 \
         while launches warm up: add 100% from the 4 in service asks for 8"
    );
}

#[test]
fn scale_in_steps_still_apply_to_the_capacity_launched() {
    // A scale-in rule removes from what is launched, warming or not: 10 - 20% = 8.
    let policy = scale_in_on_cpu(Step::RemovePercent(20));
    let decision = decide_warming(&policy, 10.0, 10, 5);
    assert_eq!(decision.desired, 8);
}
