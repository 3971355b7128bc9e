//! [`decide()`]: every rule evaluated, one proposal chosen, guards and bounds applied, and the
//! result explained. How is described on [`decide()`]; the choice is made in the `choice`
//! module and the explanation's summary is written in the `summary` module.

use chrono::{DateTime, Utc};

use capstan_policy::model::{Policy, Rule};

use crate::choice::{Choice, Evaluated};
use crate::clamp::{self, Limits};
use crate::decision::{
    Action, Decision, Explanation, RuleEvaluation, RuleOutcome, TrackEvaluation,
};
use crate::forecast;
use crate::guards::{self, GuardRequest};
use crate::observe::{CurrentCapacity, Direction, MetricData, Observations, ResourceState};
use crate::replicas;
use crate::requests;
use crate::schedule;
use crate::summary::{Answered, summary};
use crate::track;
use crate::window::{Periods, Reading, Verdict};

/// Decides the capacity `policy` asks for at `now`, and explains why.
///
/// `observations` must hold the datapoints of every query the policy reads, as
/// [`crate::reads`] describes; `current` is the resource's capacity now and `state` what
/// capstan last did to it. The function is pure: the same inputs always give the same decision.
///
/// # How
///
/// - **Rules** (`scale_out`, `scale_in`): each condition is evaluated over its metric's window
///   as the `window` module describes (which datapoints count, a breach strictly beyond the
///   threshold, what missing data holds). A rule whose condition holds proposes
///   `step.apply(current)`; it fires only when that moves capacity its way: above the current
///   capacity for a scale-out rule, below it for a scale-in rule. Otherwise (e.g. `set: 4` on
///   a scale-out rule at 6) the outcome is [`RuleOutcome::NoChange`].
/// - **Launches warming up.** While fewer units serve than are desired, a scale-out rule's step
///   applies to the units in service, as a `track` rule's does: when the units launched cover
///   that, the rule holds ([`RuleOutcome::WarmingUp`]), and scale-in waits with it, rather
///   than stacking a second step on the first before it serves (EC2 Auto Scaling's steps
///   likewise apply to the instances past their warm-up).
/// - **Tracking** (`track`, see the `track` module): each rule recommends a capacity from its
///   metric's value and goal and the units in service, or nothing within the tolerance or
///   while launches warming up cover it.
/// - **Choice.** Scale-out takes the largest proposal of any rule that asks for more: a fired
///   scale-out rule, or a tracking rule recommending more than the current capacity.
///   Scale-out beats scale-in: when any rule asks for more, scale-in proposals are ignored.
///   Otherwise scale-in takes the proposal that removes the least, and needs every tracking
///   rule to recommend less (a fired scale-in rule is enough among threshold rules, which only
///   speak when they fire). Ties go to the rule listed first, threshold rules before tracking
///   rules.
/// - **Scale-in is blocked** for the whole policy when any metric a rule reads could not be
///   read ([`MetricData::Unavailable`], or absent from the observations), any scale-in rule's
///   window has a gap or a tracking rule lacks data: capstan never removes capacity while part
///   of the picture is unknown. Scale-out rules on the metrics that were read still fire. A
///   gap in a scale-out rule's window does not block scale-in, since sparse metrics (error
///   counts, for instance) have no datapoint when nothing happens.
/// - **Schedules** (the `schedule` module): each open window raises the floor to its `min`,
///   with or without a rule firing.
/// - **Forecast** ([`crate::forecast`]): the policy's `forecast`, from the history kept in
///   `state`, raises the floor ahead of a forecast peak, or says why it does not; on an
///   `rds_replicas` policy it does so through the replica plan, which waits for a quiet source.
/// - **Clamps**: the winning proposal, or the current capacity when no rule fired, goes
///   through the bounds and guards of the `clamp` module, in the order listed there. They hold
///   back only the rules' part of a move, never what the bounds require, so capacity outside
///   the bounds is brought back in one decision.
/// - **Paused** policy or **busy** resource: the capacity stays, and the decision says so
///   ([`Decision::frozen`]); the explanation says what would have been asked for.
///
/// Unless paused or busy, the desired capacity is always within the policy's bounds (given
/// resource bounds that overlap them). Each step is recorded in [`Decision::explanation`].
pub fn decide(
    policy: &Policy,
    observations: &Observations,
    current: &CurrentCapacity,
    state: &ResourceState,
    now: DateTime<Utc>,
) -> Decision {
    decide_answering(policy, observations, current, state, now, &[])
}

/// [`decide()`], also answering the cross-resource guards' `requests` addressed to the policy
/// as proposals like a rule's, as the `requests` module describes; `fired` is `request` when
/// one is taken.
pub(crate) fn decide_answering(
    policy: &Policy,
    observations: &Observations,
    current: &CurrentCapacity,
    state: &ResourceState,
    now: DateTime<Utc>,
    requests: &[GuardRequest],
) -> Decision {
    let sides = [
        (Direction::Out, "scale_out", &policy.scale_out),
        (Direction::In, "scale_in", &policy.scale_in),
    ];
    let rules: Vec<RuleEvaluation> = sides
        .into_iter()
        .flat_map(|(direction, key, rules)| {
            rules
                .iter()
                .enumerate()
                .map(move |(index, rule)| (direction, format!("{key}[{index}]"), rule))
        })
        .map(|(direction, id, rule)| {
            evaluate(policy, id, rule, direction, observations, current, now)
        })
        .collect();
    let tracks: Vec<TrackEvaluation> = policy
        .track
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            track::evaluate(
                policy,
                format!("track[{index}]"),
                rule,
                observations,
                current,
                now,
            )
        })
        .collect();
    let evaluated = Evaluated {
        rules: &rules,
        scale_out: policy.scale_out.len(),
        tracks: &tracks,
        current: current.desired,
    };
    let choice = Choice::of(&evaluated);
    let forecast = forecast::evaluate(policy, state.history.as_ref(), now);
    let planned = replicas::plan(
        policy,
        observations,
        forecast.as_ref(),
        current.desired,
        now,
    );
    let mut windows = schedule::open_windows(&policy.schedules, now);
    windows.extend(planned.as_ref().and_then(|plan| plan.window.clone()));
    let data_missing = evaluated.any_held();
    // A replica plan ahead of the forecast takes its floor, waiting for a quiet source.
    let ahead_of_forecast = policy
        .replicas
        .as_ref()
        .is_some_and(|plan| plan.is_ahead_of_forecast());
    let limits = Limits {
        policy,
        windows: &windows,
        forecast: forecast.as_ref().filter(|_| !ahead_of_forecast),
        current,
        state,
        data_missing,
        now,
    };
    let mut proposed = choice
        .winner
        .map_or(current.desired, |(_, proposed)| proposed);
    let grown = requests::growth(policy, current.desired, requests)
        .filter(|(wanted, _)| *wanted > proposed);
    if let Some((wanted, _)) = &grown {
        proposed = *wanted;
    }
    // Scale-in that no rule proposed (retirement, a ceiling) waits as a rule's would.
    let scale_in_blocked = choice.scale_in_blocked();
    let retiring = planned.as_ref().is_some_and(|plan| plan.retire) && proposed <= current.desired;
    if retiring && !scale_in_blocked {
        proposed = proposed.min(policy.capacity.min);
    }
    let shed = requests::ceiling(policy, requests).filter(|(to, _)| *to < proposed);
    if let Some((to, _)) = &shed {
        proposed = if scale_in_blocked {
            proposed.min(current.desired.max(*to))
        } else {
            *to
        };
    }
    let mut adjusted = clamp::apply(&limits, proposed);
    if let Some(plan) = &planned {
        adjusted.clamps.extend(plan.blocked_clamp(adjusted.value));
    }

    let mut fired = choice
        .winner
        .map(|(source, _)| evaluated.id(source).to_owned());
    if retiring && !scale_in_blocked && adjusted.value < current.desired {
        fired = Some("replicas.retire".to_owned());
    }
    if grown.is_some() || (shed.is_some() && !scale_in_blocked) {
        fired = Some("request".to_owned());
    }
    let answered = Answered {
        plan: planned.as_ref().map(|plan| plan.phrase.as_str()),
        retiring,
        grown: grown.as_ref(),
        shed: shed.as_ref(),
        forecast: forecast.as_ref(),
    };
    let summary = summary(&evaluated, &choice, &adjusted.clamps, current, &answered);
    Decision {
        policy: policy.name.clone(),
        target: policy.target.clone(),
        at: now,
        current: current.desired,
        in_service: current.in_service.unwrap_or(current.desired),
        running: running(policy, current, state, now),
        desired: adjusted.value,
        paused: policy.paused,
        busy: current.busy.clone(),
        share: current.share.clone(),
        action: Action::between(current.desired, adjusted.value),
        explanation: Explanation {
            fired,
            proposed,
            data_missing,
            rules,
            tracks,
            schedules: windows,
            forecast,
            clamps: adjusted.clamps,
            held_back_flap: adjusted.held_back_flap,
            summary,
        },
    }
}

/// How many units may hold connections now: the resource's own count of units running, or
/// `current` plus the units removed by capstan's scale-ins within the drain time
/// ([`guards::drain`]), whichever is more.
fn running(
    policy: &Policy,
    current: &CurrentCapacity,
    state: &ResourceState,
    now: DateTime<Utc>,
) -> u32 {
    let since = now
        .checked_sub_signed(guards::drain(policy).as_delta())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let draining = state
        .changes
        .iter()
        .filter(|change| change.direction == Direction::In && change.at > since)
        .map(|change| change.from.saturating_sub(change.to))
        .fold(0, u32::saturating_add);
    current
        .running
        .unwrap_or(0)
        .max(current.desired.saturating_add(draining))
}

/// Evaluates one rule that moves capacity in `direction` from the `current` capacity.
fn evaluate(
    policy: &Policy,
    rule_id: String,
    rule: &Rule,
    direction: Direction,
    observations: &Observations,
    current: &CurrentCapacity,
    now: DateTime<Utc>,
) -> RuleEvaluation {
    let condition = &rule.when;
    let query = policy.metric(&condition.metric);
    let periods = Periods::of(policy, &condition.metric, condition.window.window, now);
    let unavailable = |reason: String| {
        let nothing = Reading {
            datapoints: Vec::new(),
            breaching: 0,
            missing: condition.window.window,
        };
        (nothing, RuleOutcome::Unavailable { reason })
    };
    let (reading, outcome) = match observations.get(query) {
        Some(MetricData::Series(series)) => {
            let reading = Reading::of(series, condition.threshold, &periods);
            let mode = policy.guards.missing_data;
            let outcome = match reading.verdict_with(condition.window, direction, mode) {
                Verdict::Breached => breached(rule, direction, current),
                Verdict::NotBreached => RuleOutcome::NotBreached,
                Verdict::MissingData => RuleOutcome::MissingData,
            };
            (reading, outcome)
        }
        Some(MetricData::Unavailable(reason)) => unavailable(reason.clone()),
        None => unavailable(format!("{query} was not read")),
    };
    RuleEvaluation {
        rule: rule_id,
        metric: condition.metric.clone(),
        threshold: condition.threshold,
        required: condition.window.breaching,
        window: condition.window.window,
        window_end: periods.end,
        datapoints: reading.datapoints,
        breaching: reading.breaching,
        missing: reading.missing,
        outcome,
        step: rule.step,
    }
}

/// The outcome of a rule whose condition held: what its step asks for from `current`, or
/// from the units in service while launches warm up (see [`decide()`]).
fn breached(rule: &Rule, direction: Direction, current: &CurrentCapacity) -> RuleOutcome {
    let desired = current.desired;
    let moves = |proposed: u32| Action::between(desired, proposed) == Action::Scale(direction);
    let proposed = rule.step.apply(desired);
    if !moves(proposed) {
        return RuleOutcome::NoChange { proposed };
    }
    let in_service = current.in_service.unwrap_or(desired);
    if direction == Direction::Out && in_service < desired {
        let proposed = rule.step.apply(in_service);
        return if moves(proposed) {
            RuleOutcome::Fired { proposed }
        } else {
            RuleOutcome::WarmingUp {
                proposed,
                in_service,
            }
        };
    }
    RuleOutcome::Fired { proposed }
}

#[cfg(test)]
mod tests;
