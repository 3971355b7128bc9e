//! Schedule windows raising the floor.

use capstan_policy::model::{Schedule, Step};

use crate::decide::decide;
use crate::decision::{Action, ClampKind};
use crate::observe::{Direction, Observations, ResourceState};
use crate::testing::{
    acted, capacity, decide_from, kinds, now, observations, policy, scale_in_on_cpu,
    scale_out_on_cpu, steady,
};

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
    let state = acted(&[(60, Direction::In, 3, 4)]);
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
    let decision = decide_from(
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
    let decision = decide_from(&policy, &Observations::new(), 2);
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
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 29, h, m, 0)
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
