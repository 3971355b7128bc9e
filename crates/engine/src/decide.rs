//! [`decide()`]: every rule evaluated, one proposal chosen, guards and bounds applied, and the
//! result explained.
//!
//! # Choosing a proposal
//!
//! Each rule's condition is evaluated over its metric's window (see the `window` module for which
//! datapoints count and how missing data holds a rule). A rule whose condition holds proposes
//! `step.apply(current)`; it fires only when that moves capacity its way: above the current
//! capacity for a scale-out rule, below it for a scale-in rule. Otherwise (e.g. `set: 4` on a
//! scale-out rule at 6) the outcome is [`RuleOutcome::NoChange`].
//!
//! - Among fired scale-out rules, the largest proposal wins; among fired scale-in rules, the one
//!   that removes the least. Ties go to the rule listed first.
//! - Scale-out beats scale-in: when any scale-out rule fired, scale-in rules are ignored.
//! - Scale-in is blocked for the whole policy when any metric a rule reads could not be read
//!   ([`MetricData::Unavailable`], or absent from the observations) or any scale-in rule's window
//!   has a gap: capstan never removes capacity while part of the picture is unknown. Scale-out
//!   rules on the metrics that were read still fire. A gap in a scale-out rule's window does not
//!   block scale-in, since sparse metrics (error counts, for instance) have no datapoint when
//!   nothing happens.
//!
//! The winning proposal, or the current capacity when no rule fired, then goes through the
//! bounds and guards described in the `clamp` module, and the open schedule windows (the
//! `schedule` module) set a floor that can raise capacity with no rule firing.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use capstan_policy::model::{Policy, Rule};

use crate::clamp::{self, Limits};
use crate::decision::{
    Action, Clamp, ClampKind, Decision, Explanation, RuleEvaluation, RuleOutcome,
};
use crate::observe::{CurrentCapacity, Direction, MetricData, Observations, ResourceState};
use crate::schedule;
use crate::window::{Periods, Reading, Verdict};

/// Decides the capacity `policy` asks for at `now`, and explains why.
///
/// `observations` must hold the datapoints of every query in [`crate::queries`] for the policy,
/// read as [`crate::reads`] describes; `current` is the resource's capacity now and `state` what
/// capstan last did to it. The function is pure: the same inputs always give the same decision.
///
/// # How
///
/// - **Windows.** A metric with period `P` is cut into periods starting at whole multiples of
///   `P` since the epoch; a datapoint belongs to the period starting at its timestamp. The
///   current, incomplete period is never used: a window of `N` is the `N` periods before it.
/// - **Breach** is strictly above or below the threshold; exactly at it does not breach.
/// - **Missing data** (`hold`): a scale-in rule needs all `N` datapoints; a scale-out rule fires
///   on `M` breaching datapoints present and holds when gaps could have made up the difference.
/// - **Choice.** The largest scale-out proposal wins, else the scale-in proposal that removes
///   the least; scale-out beats scale-in. A rule's step must move capacity its way to count.
///   Scale-in is blocked when any metric a rule reads is unavailable or any scale-in window has
///   a gap.
/// - **Schedules.** Each open window (cron in its time zone, open for its duration in real
///   time) raises the floor to its `min`, with or without a rule firing.
/// - **Clamps**, in order: the policy's `capacity.min`/`max`, the schedule floor, the resource's
///   own bounds, `max_step`, then cooldowns (a move is allowed from exactly `T + cooldown`).
///   `max_step` and cooldowns hold back only the rules' part of a move, never what the bounds
///   require, so capacity outside the bounds is brought back in one decision.
/// - **Paused** policy or **busy** resource: the capacity stays; the explanation says what would
///   have been asked for.
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
            evaluate(
                policy,
                id,
                rule,
                direction,
                observations,
                current.desired,
                now,
            )
        })
        .collect();
    let choice = Choice::of(&rules, policy.scale_out.len());
    let windows = schedule::open_windows(&policy.schedules, now);
    let limits = Limits {
        policy,
        windows: &windows,
        current,
        state,
        now,
    };
    let adjusted = clamp::apply(
        &limits,
        choice
            .winner
            .map_or(current.desired, |(_, proposed)| proposed),
    );

    let action = match adjusted.value.cmp(&current.desired) {
        Ordering::Greater => Action::Scale(Direction::Out),
        Ordering::Less => Action::Scale(Direction::In),
        Ordering::Equal => Action::None,
    };
    let summary = summary(&rules, &choice, &adjusted.clamps, current);
    Decision {
        policy: policy.name.clone(),
        target: policy.target.clone(),
        at: now,
        current: current.desired,
        desired: adjusted.value,
        action,
        explanation: Explanation {
            fired: choice.winner.map(|(index, _)| rules[index].rule.clone()),
            rules,
            schedules: windows,
            clamps: adjusted.clamps,
            summary,
        },
    }
}

/// Evaluates one rule that moves capacity in `direction`, `current` being the capacity now.
fn evaluate(
    policy: &Policy,
    rule_id: String,
    rule: &Rule,
    direction: Direction,
    observations: &Observations,
    current: u32,
    now: DateTime<Utc>,
) -> RuleEvaluation {
    let condition = &rule.when;
    let query = policy.metric(&condition.metric);
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
            let periods = Periods::before(now, query.period_secs, condition.window.window);
            let reading = Reading::of(series, condition.threshold, &periods);
            let outcome = match reading.verdict(condition.window, direction) {
                Verdict::Breached => {
                    let proposed = rule.step.apply(current);
                    let moves = match direction {
                        Direction::Out => proposed > current,
                        Direction::In => proposed < current,
                    };
                    if moves {
                        RuleOutcome::Fired { proposed }
                    } else {
                        RuleOutcome::NoChange { proposed }
                    }
                }
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
        datapoints: reading.datapoints,
        breaching: reading.breaching,
        missing: reading.missing,
        outcome,
        step: rule.step,
    }
}

/// The capacity a fired rule proposes.
fn proposed(rule: &RuleEvaluation) -> Option<u32> {
    match rule.outcome {
        RuleOutcome::Fired { proposed } => Some(proposed),
        _ => None,
    }
}

/// Whether a rule could not tell: its metric is unreadable or its window has gaps.
fn held(rule: &RuleEvaluation) -> bool {
    matches!(
        rule.outcome,
        RuleOutcome::MissingData | RuleOutcome::Unavailable { .. }
    )
}

/// Which rule's proposal is taken, and what kept the others out.
#[derive(Debug)]
struct Choice {
    /// Index of the winning rule, and its proposal.
    winner: Option<(usize, u32)>,
    /// Fired scale-in rules passed over because a scale-out rule fired.
    outvoted: Vec<usize>,
    /// Fired scale-in rules passed over because scale-in is blocked.
    blocked: Vec<usize>,
    /// Rules that block scale-in: unreadable metrics, and gaps in scale-in windows.
    blockers: Vec<usize>,
}

impl Choice {
    /// Chooses among `rules`, of which the first `scale_out` are scale-out rules.
    fn of(rules: &[RuleEvaluation], scale_out: usize) -> Self {
        let fired = |indices: std::ops::Range<usize>| -> Vec<(usize, u32)> {
            indices
                .filter_map(|index| Some((index, proposed(&rules[index])?)))
                .collect()
        };
        // The largest proposal, the first listed among equals (`max_by_key` keeps the last).
        let best = |fired: &[(usize, u32)]| {
            fired
                .iter()
                .rev()
                .copied()
                .max_by_key(|&(_, proposed)| proposed)
        };
        let indices = |fired: &[(usize, u32)]| fired.iter().map(|&(index, _)| index).collect();
        let fired_out = fired(0..scale_out);
        let fired_in = fired(scale_out..rules.len());
        let blockers: Vec<usize> = (0..rules.len())
            .filter(|&index| match rules[index].outcome {
                RuleOutcome::Unavailable { .. } => true,
                RuleOutcome::MissingData => index >= scale_out,
                _ => false,
            })
            .collect();
        if !fired_out.is_empty() {
            Self {
                winner: best(&fired_out),
                outvoted: indices(&fired_in),
                blocked: Vec::new(),
                blockers,
            }
        } else if !blockers.is_empty() {
            Self {
                winner: None,
                outvoted: Vec::new(),
                blocked: indices(&fired_in),
                blockers,
            }
        } else {
            Self {
                winner: best(&fired_in),
                outvoted: Vec::new(),
                blocked: Vec::new(),
                blockers,
            }
        }
    }
}

/// The one-sentence summary: what the rules said, then every clamp.
fn summary(
    rules: &[RuleEvaluation],
    choice: &Choice,
    clamps: &[Clamp],
    current: &CurrentCapacity,
) -> String {
    let ids = |indices: &[usize]| {
        indices
            .iter()
            .map(|&index| rules[index].rule.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if let Some((winner, _)) = choice.winner {
        parts.push(fired(&rules[winner]));
        if !choice.outvoted.is_empty() {
            parts.push(format!(
                "{} also fired; scale-out wins",
                ids(&choice.outvoted)
            ));
        }
    } else if !choice.blocked.is_empty() {
        let reasons = phrases(
            choice.blockers.iter().map(|&index| &rules[index]),
            current.desired,
        );
        parts.push(format!(
            "{} fired but scale-in is blocked: {reasons}",
            ids(&choice.blocked)
        ));
    } else if rules.iter().any(held) {
        parts.push(format!(
            "holding: {}",
            phrases(rules.iter().filter(|rule| held(rule)), current.desired)
        ));
    } else if rules.is_empty() {
        parts.push("no rules".to_owned());
    } else {
        parts.push(format!(
            "no rule fired: {}",
            phrases(rules.iter(), current.desired)
        ));
    }
    let mut kept = None;
    for clamp in clamps {
        match clamp.kind {
            ClampKind::Paused => kept = Some(("paused".to_owned(), clamp.from)),
            ClampKind::ResourceBusy => {
                let reason = current.busy.as_deref().unwrap_or_default();
                kept = Some((format!("resource busy ({reason})"), clamp.from));
            }
            kind => parts.push(format!("clamped by {} to {}", label(kind), clamp.to)),
        }
    }
    let sentence = parts.join("; ");
    match kept {
        Some((why, would)) => format!(
            "{why}, would scale {} -> {would}: {sentence}",
            current.desired
        ),
        None => sentence,
    }
}

/// E.g. "scale_out\[0\] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 6".
fn fired(rule: &RuleEvaluation) -> String {
    let proposed = proposed(rule).unwrap_or_default();
    format!(
        "{} fired: {} {} for {} of {} datapoints; {} -> {proposed}",
        rule.rule, rule.metric, rule.threshold, rule.breaching, rule.window, rule.step
    )
}

/// What each of `rules` found, without repeating the same phrase.
fn phrases<'a>(rules: impl Iterator<Item = &'a RuleEvaluation>, current: u32) -> String {
    let mut unique: Vec<String> = Vec::new();
    for phrase in rules.map(|rule| phrase(rule, current)) {
        if !unique.contains(&phrase) {
            unique.push(phrase);
        }
    }
    unique.join("; ")
}

/// What `rule` found, e.g. "cpu 42.0 not above 70 (5 of 5 datapoints present)".
fn phrase(rule: &RuleEvaluation, current: u32) -> String {
    let metric = &rule.metric;
    let present = rule.window - rule.missing;
    match &rule.outcome {
        RuleOutcome::Fired { .. } => fired(rule),
        RuleOutcome::NoChange { proposed } => {
            let versus = match proposed.cmp(&current) {
                Ordering::Less => format!("is below the current {current}"),
                Ordering::Greater => format!("is above the current {current}"),
                Ordering::Equal => "is the current capacity".to_owned(),
            };
            format!(
                "{} condition held but {} -> {proposed} {versus}",
                rule.rule, rule.step
            )
        }
        RuleOutcome::NotBreached => match (rule.breaching, rule.datapoints.last()) {
            (0, Some(last)) => {
                format!(
                    "{metric} {:?} not {} ({present} of {} datapoints present)",
                    last.value, rule.threshold, rule.window
                )
            }
            _ => format!(
                "{metric} {} for {} of {} datapoints, {} needed ({present} present)",
                rule.threshold, rule.breaching, rule.window, rule.required
            ),
        },
        RuleOutcome::MissingData => format!(
            "{metric} is missing {} of {} datapoints",
            rule.missing, rule.window
        ),
        RuleOutcome::Unavailable { reason } => format!("{metric} is unavailable ({reason})"),
    }
}

/// How a clamp is named in the summary.
fn label(kind: ClampKind) -> &'static str {
    match kind {
        ClampKind::PolicyMin => "capacity.min",
        ClampKind::PolicyMax => "capacity.max",
        ClampKind::ScheduleFloor => "schedule floor",
        ClampKind::ResourceMin => "resource min",
        ClampKind::ResourceMax => "resource max",
        ClampKind::MaxStep => "max_step",
        ClampKind::Cooldown => "cooldown",
        ClampKind::ResourceBusy => "resource busy",
        ClampKind::Paused => "paused",
    }
}

#[cfg(test)]
mod tests;
