//! Target tracking, alone and beside threshold rules.

use capstan_policy::model::{Policy, Step, Track, TrackGoal};

use crate::decision::TrackOutcome;
use crate::observe::MetricData;
use crate::testing::{
    decide_from, minutes, observations, policy, scale_in_on_cpu, scale_out_on_cpu, steady,
};

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
    let decision = decide_from(
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
    let scaled = decide_from(
        &policy,
        &observations(&policy, &[("cpu", steady(20.0, 1))]),
        10,
    );
    assert_eq!(scaled.desired, 4);
    let held = decide_from(
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
    let decision = decide_from(&policy, &observations(&policy, &[("cpu", values)]), 4);
    assert_eq!(decision.explanation.tracks[0].value, Some(50.0));
    assert_eq!(decision.desired, 4);
}

#[test]
fn per_replica_tracking_is_capped_by_partitions() {
    let mut policy = policy();
    let mut lag = tracking(TrackGoal::PerReplica(1000.0), 1);
    lag.partitions = Some(6);
    policy.track.push(lag);
    let decision = decide_from(
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
    let held = decide_from(&policy, &observations(&policy, &[("cpu", low)]), 8);
    assert_eq!(held.desired, 8);
    assert_eq!(
        held.explanation.tracks[0].outcome,
        TrackOutcome::MissingData
    );
    let high = minutes(&[Some(100.0), None, Some(100.0)]);
    let scaled = decide_from(&policy, &observations(&policy, &[("cpu", high)]), 4);
    assert_eq!(scaled.desired, 8);
}

#[test]
fn scale_out_takes_the_largest_of_rules_and_tracks() {
    let mut policy = scale_out_on_cpu(Step::Add(1));
    policy.track.push(tracking(TrackGoal::Target(50.0), 1));
    let decision = decide_from(
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
    let decision = decide_from(&policy, &observations(&policy, &metrics), 5);
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
    let decision = decide_from(&policy, &observations(&policy, &metrics), 5);
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
    let decision = decide_from(&policy, &observations, 5);
    assert_eq!(decision.desired, 5);
    assert_eq!(
        decision.explanation.summary,
        "scale_in[0] fired but scale-in is blocked: memory is unavailable (throttled)"
    );
}

/// A decision of [`tracking_cpu`] at cpu `value`, `desired` units asked for and `in_service` of
/// them serving.
fn decide_warming(value: f64, desired: u32, in_service: u32) -> crate::Decision {
    let policy = tracking_cpu();
    let current = crate::CurrentCapacity {
        in_service: Some(in_service),
        ..crate::testing::capacity(desired)
    };
    crate::decide(
        &policy,
        &observations(&policy, &[("cpu", steady(value, 1))]),
        &current,
        &crate::ResourceState::default(),
        crate::testing::now(),
    )
}

#[test]
fn launches_warming_up_that_cover_the_ask_hold_capacity() {
    // 4 serve at 80 against 50: 4 × 1.6 asks for 7, which the 7 launched cover.
    let held = decide_warming(80.0, 7, 4);
    assert_eq!(held.desired, 7);
    assert_eq!(
        held.explanation.tracks[0].outcome,
        TrackOutcome::WarmingUp {
            proposed: 7,
            in_service: 4
        }
    );
    assert_eq!(
        held.explanation.summary,
        "no rule fired: track[0] holds at 7 while launches warm up: cpu 80.0 with target 50, \
         ratio 1.60 over the 4 in service asks for 7"
    );
}

#[test]
fn tracking_scales_out_from_the_units_in_service_not_from_those_launched() {
    // 4 serve at 100: 8 are wanted; scaling the 6 launched by 2 would ask for 12.
    let decision = decide_warming(100.0, 6, 4);
    assert_eq!(decision.desired, 8);
    assert_eq!(decision.explanation.fired.as_deref(), Some("track[0]"));
}

#[test]
fn scale_in_waits_for_launches_warming_up() {
    // 4 serve at 20: 2 would do, but the 3 launched are not in service yet.
    let held = decide_warming(20.0, 7, 4);
    assert_eq!(held.desired, 7);
    assert!(matches!(
        held.explanation.tracks[0].outcome,
        TrackOutcome::WarmingUp { proposed: 2, .. }
    ));
    // Once they serve, the rule scales in from them: 7 at 20 ask for 3.
    assert_eq!(decide_warming(20.0, 7, 7).desired, 3);
}

#[test]
fn units_stopping_still_count_as_measured() {
    // A scale-in to 4 with 6 still running at 30: the work, 6 × 30, needs 4 at 50.
    let decision = decide_warming(30.0, 4, 6);
    assert_eq!(decision.desired, 4);
    assert_eq!(
        decision.explanation.tracks[0].outcome,
        TrackOutcome::Proposed {
            proposed: 4,
            capped_by_partitions: None
        }
    );
}
