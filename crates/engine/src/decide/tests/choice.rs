//! Choosing among the rules' proposals, and what blocks scale-in.

use capstan_policy::model::Step;

use crate::decision::{Action, RuleOutcome};
use crate::observe::{Direction, MetricData, Observations};
use crate::testing::{
    ABOVE_70, BELOW_30, decide_from, minutes, observations, policy, rule, scale_in_on_cpu,
    scale_out_on_cpu, steady,
};

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
    let decision = decide_from(&policy, &observed, 4);
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
    let decision = decide_from(&policy, &observed, 6);
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
    let decision = decide_from(&policy, &observed, 4);
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
    let decision = decide_from(&policy, &observed, 4);
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
    assert_eq!(decide_from(&policy, &observed, 4).desired, 5);
}

#[test]
fn a_metric_missing_from_the_observations_is_unavailable() {
    let policy = scale_in_on_cpu(Step::Remove(1));
    let decision = decide_from(&policy, &Observations::new(), 4);
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
    let decision = decide_from(
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
    let decision = decide_from(
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
    let decision = decide_from(&policy(), &Observations::new(), 4);
    assert_eq!((decision.desired, decision.action), (4, Action::None));
    assert_eq!(decision.explanation.summary, "no rules");
}
