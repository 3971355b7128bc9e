//! Paused policies and busy resources: the capacity stays, and the decision says why.

use capstan_policy::model::Step;

use crate::decide::decide;
use crate::decision::{Action, Clamp, ClampKind};
use crate::observe::{CurrentCapacity, Observations, ResourceState};
use crate::testing::{
    capacity, decide_from, kinds, now, observations, policy, scale_out_on_cpu, steady,
};

// --- Paused and busy ---

#[test]
fn a_paused_policy_explains_what_it_would_have_done() {
    let mut policy = scale_out_on_cpu(Step::Add(2));
    policy.paused = true;
    let decision = decide_from(
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
    let decision = decide_from(&policy, &Observations::new(), 50);
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

// --- Blocked decisions ---

#[test]
fn pauses_and_busy_resources_block_a_change_but_the_policys_own_guards_do_not() {
    let mut policy = scale_out_on_cpu(Step::Add(4));
    policy.guards.max_step_out = Some(1);
    let observed = observations(&policy, &[("cpu", steady(90.0, 5))]);

    let stepped = decide_from(&policy, &observed, 4);
    assert_eq!(kinds(&stepped), [ClampKind::MaxStep]);
    assert_eq!(stepped.blocked_by(), None);

    policy.paused = true;
    let paused = decide_from(&policy, &observed, 4);
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

    let idle = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(40.0, 5))]),
        4,
    );
    assert_eq!(idle.blocked_by(), None);
}
