//! Read replicas planned ahead of need: the `replicas` plan of an `rds_replicas` policy.
//!
//! A plan is ahead of another policy's schedule window or of the policy's own forecast peaks
//! (`ahead_of`), with a `lead` time and a `retire_after` time.
//!
//! - **Ahead of a schedule window** (`<policy>/<schedule>`, with a `count`): around each
//!   occurrence of the window, opening at `O` and closing at `C`, the plan holds a floor of
//!   `count` replicas from `O - lead` to `C + retire_after`.
//! - **Ahead of the forecast** (`ahead_of: forecast`): the policy's forecast (see
//!   [`crate::forecast`]) looks over the hours from `retire_after` before now to `lead` after
//!   it, and the plan holds a floor of the replicas its highest forecast peak needs,
//!   ceil(peak / per_replica) less one for the source, from `lead` before that peak's hour to
//!   `retire_after` after it. While the forecast is withheld the plan neither creates nor
//!   retires replicas.
//!
//! Either way the floor joins the policy's open schedule windows, named `replicas ahead of
//! <policy>/<schedule>` or `replicas ahead of forecast`, so the usual bounds and clamps apply.
//!
//! - **Only while the source is quiet.** With a `quiet` condition (e.g. source CPU below 40 for
//!   10 minutes), the floor rises above the replicas that exist only while the condition holds
//!   over complete data: creating a replica snapshots the source. While it does not hold, the
//!   floor stays at the replicas there are, and the decision records a
//!   [`ClampKind::ResourceBusy`] clamp from `count` down to that value, saying why: a blocked
//!   decision, which the evaluator alerts on. If the source is never quiet before the window
//!   opens or the peak's hour starts, every decision until then says so, and every one after
//!   says it was not quiet before it began.
//! - **Retired.** Outside the plan's windows (for a forecast: when no forecast peak in the span
//!   needs a replica), the plan proposes `capacity.min` replicas
//!   (`replicas.retire`) whenever no scale-out rule asks for more, so the replicas made for the
//!   window go once it has closed and `retire_after` has passed, at the pace `cooldown.in` and
//!   `max_step.in` allow, and never while a metric the policy reads is unavailable or a
//!   scale-in window has gaps: like any scale-in, it waits until the picture is complete.
//!
//! Requests from the cross-resource guards are answered by [`crate::decide_all`].
//! Retirement is a scale-in: it waits while scale-in is blocked for missing or unreadable data.

use chrono::{DateTime, TimeDelta, Utc};

use capstan_policy::model::{
    AHEAD_OF_FORECAST, AheadOf, Condition, MissingData, Policy, ReplicaPlan, Schedule,
};

use crate::decision::{Clamp, ClampKind, ForecastEvaluation, ForecastOutcome, ScheduleWindow};
use crate::observe::{Direction, MetricData, Observations};
use crate::window::{Periods, Reading, Verdict};

/// What a plan contributes to one decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    /// The plan's window, when `now` is in it: a floor for the clamps.
    pub window: Option<ScheduleWindow>,
    /// Outside the plan's windows: retire down to `capacity.min`.
    pub retire: bool,
    /// The replicas wanted and why the floor could not rise to them: the source is not quiet.
    pub blocked: Option<(u32, String)>,
    /// What the plan found, for the summary.
    pub phrase: String,
}

/// What a plan asks for at one time.
enum Stance {
    /// Replicas for a window or a peak that `now` is in the span of.
    Wanted(Wanted),
    /// None wanted: retire down to `capacity.min`, saying why.
    Retire(String),
    /// The forecast is withheld: neither create nor retire, saying why.
    Hold(String),
}

/// The replicas a plan wants, and for what.
struct Wanted {
    /// The replicas wanted, before `capacity.max`.
    count: u32,
    /// What they are for, e.g. `storefront/sale` or `the forecast peak at 14:00 UTC`.
    peak: String,
    /// When that window or peak begins.
    begins: DateTime<Utc>,
    /// When the plan's span starts (`lead` before it begins) and ends (`retire_after` after).
    span: (DateTime<Utc>, DateTime<Utc>),
    /// The timing, for the explanation.
    timing: String,
}

/// The plan's part in the decision of `policy` at `now`, with `current` replicas and the
/// policy's `forecast` evaluation; `None` for a policy without a plan.
pub(crate) fn plan(
    policy: &Policy,
    observations: &Observations,
    forecast: Option<&ForecastEvaluation>,
    current: u32,
    now: DateTime<Utc>,
) -> Option<Planned> {
    let plan = policy.replicas.as_ref()?;
    let name = match &plan.ahead_of {
        AheadOf::Schedule { name, .. } => name.as_str(),
        AheadOf::Forecast => AHEAD_OF_FORECAST,
    };
    let stance = match &plan.ahead_of {
        AheadOf::Schedule {
            name,
            schedule,
            count,
        } => scheduled(plan, name, schedule, *count, now),
        AheadOf::Forecast => forecasted(policy, plan, forecast?),
    };
    let wanted = match stance {
        Stance::Wanted(wanted) => wanted,
        Stance::Retire(why) => {
            return Some(Planned {
                window: None,
                retire: current > policy.capacity.min,
                blocked: None,
                phrase: format!("replicas.retire: {why}, keep capacity.min"),
            });
        }
        Stance::Hold(why) => {
            return Some(Planned {
                window: None,
                retire: false,
                blocked: None,
                phrase: format!("replicas ahead of forecast: none created or retired: {why}"),
            });
        }
    };
    let count = wanted.count.min(policy.capacity.max);
    let name = format!("replicas ahead of {name}");
    let timing = &wanted.timing;
    let window = |min: u32| ScheduleWindow {
        name: name.clone(),
        opened: wanted.span.0,
        closes: wanted.span.1,
        min,
    };
    let quiet = match &plan.quiet {
        Some(condition) if current < count => Some(quiet(policy, condition, observations, now)),
        _ => None,
    };
    Some(match quiet {
        Some(Err(why)) => {
            let busy = if now < wanted.begins {
                format!("the source is not quiet ({why})")
            } else {
                format!(
                    "the source was not quiet before {} began, nor is it now ({why})",
                    wanted.peak
                )
            };
            Planned {
                window: Some(window(current)),
                retire: false,
                blocked: Some((
                    count,
                    format!("{busy}: no replica is created from a busy source; {timing}"),
                )),
                phrase: format!("{name}: {count} wanted, source not quiet"),
            }
        }
        Some(Ok(seen)) => Planned {
            window: Some(window(count)),
            retire: false,
            blocked: None,
            phrase: format!("{name}: {count} wanted, source quiet ({seen}); {timing}"),
        },
        None => Planned {
            window: Some(window(count)),
            retire: false,
            blocked: None,
            phrase: format!("{name}: {count} wanted; {timing}"),
        },
    })
}

/// A plan ahead of the schedule `name`: `count` replicas in the span of its occurrence, else
/// retire.
fn scheduled(
    plan: &ReplicaPlan,
    name: &str,
    schedule: &Schedule,
    count: u32,
    now: DateTime<Utc>,
) -> Stance {
    let Some((opens, closes)) = occurrence(plan, schedule, now) else {
        return Stance::Retire(format!("outside the plan ahead of {name}"));
    };
    Stance::Wanted(Wanted {
        count,
        peak: name.to_owned(),
        begins: opens,
        span: (
            opens - plan.lead.as_delta(),
            closes + plan.retire_after.as_delta(),
        ),
        timing: format!(
            "{name} opens {}, lead {}, retired {} after it closes",
            opens.to_rfc3339(),
            plan.lead,
            plan.retire_after
        ),
    })
}

/// A plan ahead of the policy's forecast, whose evaluation already looks over the plan's span
/// (see [`crate::forecast`]): the replicas its floor asks for, retire when it asks for no more
/// than `capacity.min`, or hold while it is withheld.
fn forecasted(policy: &Policy, plan: &ReplicaPlan, forecast: &ForecastEvaluation) -> Stance {
    let ForecastOutcome::Floor { floor, hour, .. } = forecast.outcome else {
        return Stance::Hold(forecast.to_string());
    };
    if floor <= policy.capacity.min {
        return Stance::Retire(format!("no forecast peak needs replicas ({forecast})"));
    }
    let ends = hour + TimeDelta::hours(1);
    Stance::Wanted(Wanted {
        count: floor,
        peak: format!("the forecast peak at {}", hour.format("%H:%M UTC")),
        begins: hour,
        span: (
            hour - plan.lead.as_delta(),
            ends + plan.retire_after.as_delta(),
        ),
        timing: format!(
            "{forecast}, wanted {} ahead of it and retired {} after its hour",
            plan.lead, plan.retire_after
        ),
    })
}

/// The occurrence of `schedule` whose span, `lead` before it to `retire_after` after it,
/// holds `now`: when it opens and closes.
fn occurrence(
    plan: &ReplicaPlan,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let lead = plan.lead.as_delta();
    let span = lead + schedule.duration.as_delta() + plan.retire_after.as_delta();
    let local = now
        .checked_add_signed(lead)?
        .with_timezone(&schedule.timezone.0);
    let opens = schedule
        .cron
        .cron()
        .find_previous_occurrence(&local, true)
        .ok()?
        .with_timezone(&Utc);
    let within = now.signed_duration_since(opens - lead) < span;
    within.then(|| (opens, opens + schedule.duration.as_delta()))
}

/// Whether the quiet condition holds over complete data: what was seen, or why not.
fn quiet(
    policy: &Policy,
    condition: &Condition,
    observations: &Observations,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let query = policy.metric(&condition.metric);
    let series = match observations.get(query) {
        Some(MetricData::Series(series)) => series,
        Some(MetricData::Unavailable(reason)) => {
            return Err(format!("{} is unavailable: {reason}", condition.metric));
        }
        None => return Err(format!("{} was not read", condition.metric)),
    };
    let periods = Periods::of(policy, &condition.metric, condition.window.window, now);
    let reading = Reading::of(series, condition.threshold, &periods);
    let seen = format!(
        "{} {} for {} of {} datapoints, {} missing",
        condition.metric,
        condition.threshold,
        reading.breaching,
        condition.window.window,
        reading.missing
    );
    // As for a scale-in rule: every datapoint must be there.
    match reading.verdict_with(condition.window, Direction::In, MissingData::Hold) {
        Verdict::Breached => Ok(seen),
        Verdict::NotBreached | Verdict::MissingData => Err(seen),
    }
}

impl Planned {
    /// A [`ClampKind::ResourceBusy`] clamp from the replicas wanted down to `to`, when the
    /// source was not quiet and that held the decision below them.
    pub(crate) fn blocked_clamp(&self, to: u32) -> Option<Clamp> {
        let (count, why) = self.blocked.as_ref()?;
        (*count > to).then(|| Clamp {
            kind: ClampKind::ResourceBusy,
            from: *count,
            to,
            detail: why.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Datapoints, Duration, Target, Threshold, TimeZone};
    use chrono::TimeDelta;
    use proptest::prelude::*;

    use super::*;
    use crate::decide::{decide, decide_answering};
    use crate::decision::{Action, Decision};
    use crate::guards::GuardRequest;
    use crate::observe::{CurrentCapacity, ResourceState};
    use crate::testing::{capacity, now, observations, policy, series};

    /// Replicas of `orders-db`, 0 to 3, with one planned 45 minutes ahead of a daily 13:00 UTC
    /// one-hour window, retired 30 minutes after it, while cpu is below 40 for 10 minutes.
    fn planned() -> Policy {
        let mut policy = policy();
        policy.name = "orders-db-replicas".into();
        policy.target = Target::RdsReplicas {
            source: "orders-db".into(),
        };
        policy.capacity.min = 0;
        policy.capacity.max = 3;
        policy.replicas = Some(ReplicaPlan {
            ahead_of: AheadOf::Schedule {
                name: "storefront/sale".into(),
                schedule: Box::new(Schedule {
                    name: "sale".into(),
                    cron: "0 13 * * *".parse().expect("valid cron"),
                    timezone: TimeZone(chrono_tz::UTC),
                    duration: Duration::from_secs(3600),
                    min: 8,
                }),
                count: 1,
            },
            lead: Duration::from_secs(45 * 60),
            retire_after: Duration::from_secs(30 * 60),
            quiet: Some(Condition {
                metric: "cpu".into(),
                threshold: Threshold::Below(40.0),
                window: Datapoints {
                    breaching: 10,
                    window: 10,
                },
            }),
        });
        policy
    }

    /// The decision `minutes` after `now()` (12:01:30), with `current` replicas and cpu at
    /// `cpu` for the last 10 minutes.
    fn at(policy: &Policy, minutes: i64, current: u32, cpu: f64) -> Decision {
        let time = now() + TimeDelta::minutes(minutes);
        let observed = observations(policy, &[("cpu", series(time, 60, &[Some(cpu); 10]))]);
        decide(
            policy,
            &observed,
            &capacity(current),
            &ResourceState::default(),
            time,
        )
    }

    #[test]
    fn a_replica_is_created_in_the_lead_time_while_the_source_is_quiet() {
        let policy = planned();
        let before = at(&policy, 0, 0, 10.0);
        assert_eq!((before.desired, before.action), (0, Action::None));
        let ahead = at(&policy, 20, 0, 10.0);
        assert_eq!(ahead.change(), Some((Direction::Out, 1)));
        let clamp = &ahead.explanation.clamps[0];
        assert_eq!((clamp.kind, clamp.to), (ClampKind::ScheduleFloor, 1));
        assert!(
            clamp.detail.starts_with(
                "schedule replicas ahead of storefront/sale is open until 2026-03-02T14:30:00"
            ),
            "{}",
            clamp.detail
        );
        assert!(
            ahead
                .explanation
                .summary
                .contains("source quiet (cpu below 40 for 10 of 10 datapoints, 0 missing)"),
            "{}",
            ahead.explanation.summary
        );
    }

    #[test]
    fn the_quiet_condition_waits_for_the_metrics_delay_like_any_window() {
        let mut policy = planned();
        policy.metrics.get_mut("cpu").expect("cpu").delay = Duration::from_secs(120);
        let time = now() + TimeDelta::minutes(20);
        let decide_on = |series| {
            let observed = observations(&policy, &[("cpu", series)]);
            decide(
                &policy,
                &observed,
                &capacity(0),
                &ResourceState::default(),
                time,
            )
        };
        // Ten quiet minutes up to the current one: the last two may still be landing.
        let fresh = decide_on(series(time, 60, &[Some(10.0); 10]));
        assert_eq!((fresh.desired, fresh.action), (0, Action::None));
        assert!(
            fresh
                .explanation
                .summary
                .contains("8 of 10 datapoints, 2 missing"),
            "{}",
            fresh.explanation.summary
        );
        let landed = decide_on(series(time - TimeDelta::minutes(2), 60, &[Some(10.0); 10]));
        assert_eq!(landed.change(), Some((Direction::Out, 1)));
    }

    #[test]
    fn a_busy_source_gets_no_replica_and_the_decision_says_so() {
        let policy = planned();
        let busy = at(&policy, 20, 0, 80.0);
        assert_eq!((busy.desired, busy.action), (0, Action::None));
        let clamp = busy.explanation.clamps.last().expect("a blocking clamp");
        assert_eq!(
            (clamp.kind, clamp.from, clamp.to),
            (ClampKind::ResourceBusy, 1, 0)
        );
        assert!(
            clamp.detail.starts_with(
                "the source is not quiet (cpu below 40 for 0 of 10 datapoints, 0 missing)"
            ),
            "{}",
            clamp.detail
        );
        assert!(
            busy.explanation
                .summary
                .starts_with("resource busy (the source is not quiet"),
            "{}",
            busy.explanation.summary
        );
        // Inside the window, a replica made earlier is kept whatever the source does.
        assert_eq!(at(&policy, 90, 1, 80.0).desired, 1);
    }

    #[test]
    fn replicas_are_kept_until_retire_after_then_retired() {
        let policy = planned();
        let tail = at(&policy, 138, 1, 10.0);
        assert_eq!((tail.desired, tail.action), (1, Action::None));
        let retired = at(&policy, 150, 1, 10.0);
        assert_eq!(retired.change(), Some((Direction::In, 0)));
        assert_eq!(
            retired.explanation.fired.as_deref(),
            Some("replicas.retire")
        );
    }

    #[test]
    fn replicas_are_not_retired_while_a_metric_is_unavailable() {
        // A scale-out rule on the source's CPU; CloudWatch cannot be read after the window.
        let mut policy = planned();
        policy.scale_out.push(crate::testing::rule(
            "cpu",
            Threshold::Above(70.0),
            3,
            3,
            capstan_policy::model::Step::Add(1),
        ));
        let time = now() + TimeDelta::minutes(150);
        let unreadable: Observations = [(
            policy.metric("cpu").clone(),
            MetricData::Unavailable("GetMetricData throttled".into()),
        )]
        .into_iter()
        .collect();
        let held = decide(
            &policy,
            &unreadable,
            &capacity(1),
            &ResourceState::default(),
            time,
        );
        assert_eq!((held.desired, held.action), (1, Action::None));
        assert!(
            held.explanation
                .summary
                .contains("replicas.retire waits: scale-in is blocked: cpu is unavailable (GetMetricData throttled)"),
            "{}",
            held.explanation.summary
        );
        // Once it reads again, quiet, the replica is retired.
        assert_eq!(at(&policy, 150, 1, 10.0).change(), Some((Direction::In, 0)));
    }

    #[test]
    fn requests_raise_the_decision_within_bounds_and_guards() {
        let mut policy = planned();
        policy.guards.cooldown_out = Duration::from_secs(20 * 60);
        let request = |name: &str| GuardRequest::DatabaseConnections {
            database: "orders-db".into(),
            policy: Some(name.into()),
            wanted: 300,
            budget: 200,
            held_back: vec!["checkout".into()],
            readers: vec!["checkout".into()],
        };
        let answering = |current: &CurrentCapacity,
                         state: &ResourceState,
                         requests: &[GuardRequest]| {
            let observed = observations(&policy, &[("cpu", series(now(), 60, &[Some(10.0); 10]))]);
            decide_answering(&policy, &observed, current, state, now(), requests)
        };
        let none = ResourceState::default();
        let full = answering(&capacity(3), &none, &[request("orders-db-replicas")]);
        assert_eq!(full.change(), None, "capacity.max is 3");
        let elsewhere = answering(&capacity(0), &none, &[request("someone-else")]);
        assert_eq!(elsewhere.change(), None);
        let answered = answering(&capacity(0), &none, &[request("orders-db-replicas")]);
        assert_eq!(answered.change(), Some((Direction::Out, 1)));
        assert_eq!(answered.explanation.fired.as_deref(), Some("request"));
        assert!(
            answered
                .explanation
                .summary
                .ends_with("1 asked for on request: orders-db's users want 300 connections of 200"),
            "{}",
            answered.explanation.summary
        );
        // A request is a proposal like a rule's: the cooldown holds it back.
        let just_scaled = ResourceState {
            changes: vec![crate::Change {
                at: now() - TimeDelta::minutes(5),
                direction: Direction::Out,
                from: 0,
                to: 1,
            }],
            ..ResourceState::default()
        };
        let cooling = answering(&capacity(1), &just_scaled, &[request("orders-db-replicas")]);
        assert_eq!(cooling.change(), None);
        assert!(
            cooling
                .explanation
                .clamps
                .iter()
                .any(|clamp| clamp.kind == ClampKind::Cooldown),
            "{:?}",
            cooling.explanation.clamps
        );

        let mut topic = policy.clone();
        topic.name = "order-events-topic".into();
        topic.capacity.max = 16;
        topic.replicas = None;
        let updating = CurrentCapacity {
            busy: Some("the cluster is UPDATING, not ACTIVE".into()),
            ..capacity(0)
        };
        let growth = [GuardRequest::PartitionGrowth {
            policy: "order-events-topic".into(),
            consumer: "fulfilment".into(),
            from: 0,
            to: 12,
        }];
        let topic_at = |current: &CurrentCapacity| {
            decide_answering(&topic, &Observations::new(), current, &none, now(), &growth)
        };
        assert_eq!(topic_at(&capacity(0)).change(), Some((Direction::Out, 12)));
        assert_eq!(
            topic_at(&updating).change(),
            None,
            "a busy resource is left alone"
        );
    }

    proptest! {
        /// Whatever the time, the source's load and the replicas there are, the plan never asks
        /// for more than capacity.max, and never creates a replica while the source is not quiet.
        #[test]
        fn never_above_max_and_never_from_a_busy_source(
            minutes in 0i64..(2 * 24 * 60),
            current in 0u32..5,
            count in 1u32..=3,
            cpu in 0u32..100,
        ) {
            let mut policy = planned();
            if let Some(ReplicaPlan { ahead_of: AheadOf::Schedule { count: planned, .. }, .. }) =
                policy.replicas.as_mut()
            {
                *planned = count;
            }
            let decision = at(&policy, minutes, current, f64::from(cpu));
            prop_assert!(decision.desired <= policy.capacity.max.max(current));
            if cpu >= 40 {
                prop_assert!(decision.desired <= current.max(policy.capacity.min));
            }
        }
    }
}

#[cfg(test)]
mod ahead_of_forecast_tests;
