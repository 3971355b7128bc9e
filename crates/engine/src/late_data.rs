//! Properties of windows over datapoints that land late, as CloudWatch's do: each period's
//! datapoint lands at a random time after the period ends, and until then CloudWatch serves a
//! partial value for it (a `Sum` of the samples so far). With lateness up to the metric's
//! `delay`, a scale-in rule's window is never missing a datapoint, so scale-in is not starved
//! and the `missing_data` fallback is not raised; a datapoint that never lands still holds
//! scale-in; and a partial value is never used.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use capstan_policy::model::{Duration, MissingData, Policy, Step, Threshold};

use crate::decide;
use crate::decision::{ClampKind, Decision};
use crate::observe::{Datapoint, Direction, ResourceState};
use crate::testing::{capacity, now, observations, period_start, point, policy, rule};

/// The metric's period, in seconds.
const PERIOD: u32 = 60;

/// Periods generated before the evaluation: more than the longest window plus the delay.
const HISTORY: u32 = 24;

/// What CloudWatch serves for a period whose samples have not all landed: below any
/// threshold, so that a `below` rule would take it as breaching.
const PARTIAL: f64 = -1.0;

/// One case: a scale-in rule `cpu below threshold for window`, the metric's delay, when the
/// evaluation runs, and each period's value and lateness (newest first).
#[derive(Debug, Clone)]
struct Case {
    threshold: f64,
    window: u32,
    delay_secs: u64,
    now: DateTime<Utc>,
    /// Per period, `back` = index + 1 periods before the one holding `now`: its full value and
    /// how long after the period's end it lands, in milliseconds.
    periods: Vec<(f64, i64)>,
    /// A period of the window, counted from its newest (0), whose datapoint never lands.
    lost: Option<u32>,
}

impl Case {
    fn policy(&self) -> Policy {
        let mut policy = policy();
        policy
            .metrics
            .get_mut("cpu")
            .expect("the testing policy's cpu")
            .delay = Duration::from_secs(self.delay_secs);
        policy.scale_in.push(rule(
            "cpu",
            Threshold::Below(self.threshold),
            self.window,
            self.window,
            Step::Remove(1),
        ));
        policy.guards.missing_data = MissingData::Fallback {
            capacity: policy.capacity.max,
            after: 1,
        };
        policy
    }

    /// Start of the period `back` periods before the one holding `now`.
    fn start(&self, back: u32) -> DateTime<Utc> {
        period_start(self.now, PERIOD, back)
    }

    /// When the datapoint of the period `back` periods before the current one lands in full.
    fn lands(&self, back: u32) -> DateTime<Utc> {
        let (_, late_ms) = self.periods[back as usize - 1];
        self.start(back) + TimeDelta::seconds(PERIOD.into()) + TimeDelta::milliseconds(late_ms)
    }

    /// How many periods back the newest period of the window is: the last one that ended at
    /// least the delay before `now`.
    fn newest(&self) -> u32 {
        let delay = TimeDelta::seconds(i64::try_from(self.delay_secs).expect("small"));
        (1..=HISTORY)
            .find(|&back| self.start(back) + TimeDelta::seconds(PERIOD.into()) <= self.now - delay)
            .expect("HISTORY covers the delay")
    }

    fn is_lost(&self, back: u32) -> bool {
        self.lost.is_some_and(|lost| back == self.newest() + lost)
    }

    /// What CloudWatch returns at `now`: full datapoints for periods landed, partial ones for
    /// periods begun but not landed (the current one included), nothing for a lost one.
    fn series(&self) -> Vec<Datapoint> {
        let mut series: Vec<Datapoint> = (1..=HISTORY)
            .rev()
            .filter(|&back| !self.is_lost(back))
            .map(|back| {
                let (value, _) = self.periods[back as usize - 1];
                let landed = self.lands(back) <= self.now;
                point(self.start(back), if landed { value } else { PARTIAL })
            })
            .collect();
        series.push(point(self.start(0), PARTIAL));
        series
    }

    fn decide(&self, current: u32) -> Decision {
        let policy = self.policy();
        let observations = observations(&policy, &[("cpu", self.series())]);
        decide(
            &policy,
            &observations,
            &capacity(current),
            &ResourceState::default(),
            self.now,
        )
    }
}

fn case(lost: bool) -> impl Strategy<Value = Case> {
    let value = (0..=10u32).prop_map(|tens| f64::from(tens * 10));
    (
        (1..=10u32).prop_map(|tens| f64::from(tens * 10)),
        1..=15u32,
        0..=300u64,
        0..60_000i64,
    )
        .prop_flat_map(move |(threshold, window, delay_secs, into_minute)| {
            let late = 0..=i64::try_from(delay_secs).expect("small") * 1_000;
            let periods = prop::collection::vec((value.clone(), late), HISTORY as usize);
            let lost = if lost {
                (0..window).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            (periods, lost).prop_map(move |(periods, lost)| Case {
                threshold,
                window,
                delay_secs,
                now: now() + TimeDelta::milliseconds(into_minute),
                periods,
                lost,
            })
        })
}

proptest! {
    #[test]
    fn datapoints_late_by_up_to_the_delay_never_leave_a_scale_in_window_missing(
        case in case(false),
        current in 2..=10u32,
    ) {
        let decision = case.decide(current);
        let rule = &decision.explanation.rules[0];
        prop_assert_eq!(rule.missing, 0, "{}", decision.explanation.summary);
        prop_assert!(!decision.explanation.data_missing);
        prop_assert!(decision
            .explanation
            .clamps
            .iter()
            .all(|clamp| clamp.kind != ClampKind::MissingDataFallback));
        let breached = (case.newest()..case.newest() + case.window)
            .all(|back| case.periods[back as usize - 1].0 < case.threshold);
        let expected = if breached { current - 1 } else { current };
        prop_assert_eq!(decision.desired, expected, "{}", decision.explanation.summary);
    }

    #[test]
    fn a_datapoint_that_never_lands_holds_scale_in(case in case(true), current in 2..=10u32) {
        let decision = case.decide(current);
        prop_assert_eq!(decision.explanation.rules[0].missing, 1);
        prop_assert!(decision.explanation.data_missing);
        prop_assert!(
            decision.change().is_none_or(|(direction, _)| direction == Direction::Out),
            "{}",
            decision.explanation.summary
        );
    }

    #[test]
    fn a_partly_ingested_period_is_never_used(
        case in prop_oneof![case(false), case(true)],
        current in 2..=10u32,
    ) {
        let decision = case.decide(current);
        let rule = &decision.explanation.rules[0];
        prop_assert_eq!(rule.window_end, case.start(case.newest() - 1));
        for used in &rule.datapoints {
            prop_assert!(used.value != PARTIAL, "{:?} is partial", used);
            prop_assert!(
                used.timestamp + TimeDelta::seconds(PERIOD.into())
                    <= case.now - TimeDelta::seconds(i64::try_from(case.delay_secs).expect("small")),
                "{:?} ended less than the delay before {}", used, case.now
            );
        }
    }
}
