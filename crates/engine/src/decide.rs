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
    Action, Clamp, ClampKind, Decision, Explanation, RuleEvaluation, RuleOutcome, TrackEvaluation,
    TrackOutcome,
};
use crate::guards::{self, Request};
use crate::observe::{CurrentCapacity, Direction, MetricData, Observations, ResourceState};
use crate::replicas;
use crate::requests;
use crate::schedule;
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
/// - **Windows.** A metric with period `P` is cut into periods starting at whole multiples of
///   `P` since the epoch; a datapoint belongs to the period starting at its timestamp. A window
///   of `N` is the `N` periods that ended at least the metric's `delay` before `now`, so the
///   current, incomplete period is never used, nor one whose datapoint may still be landing.
/// - **Breach** is strictly above or below the threshold; exactly at it does not breach.
/// - **Missing data** (`hold`): a scale-in rule needs all `N` datapoints; a scale-out rule fires
///   on `M` breaching datapoints present and holds when gaps could have made up the difference.
///   With `missing_data: scale_out`, a scale-out rule counts gaps as breaching.
/// - **Tracking** (`track`, see the `track` module): each rule recommends a capacity from its
///   metric's value and goal, or nothing within the tolerance. Recommendations above the current
///   capacity compete with scale-out rules; scale-in needs every tracking rule to recommend less.
/// - **Choice.** The largest scale-out proposal wins, else the scale-in proposal that removes
///   the least; scale-out beats scale-in. A rule's step must move capacity its way to count.
///   Scale-in is blocked when any metric a rule reads is unavailable or any scale-in window has
///   a gap.
/// - **Schedules.** Each open window (cron in its time zone, open for its duration in real
///   time) raises the floor to its `min`, with or without a rule firing.
/// - **Clamps**: the bounds and guards of the `clamp` module, in the order listed there. They
///   hold back only the rules' part of a move, never what the bounds require, so capacity
///   outside the bounds is brought back in one decision.
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

/// [`decide()`], also answering the cross-resource guards' `requests` addressed to the policy,
/// as the `requests` module describes: the largest growth ask (one replica more, the
/// partitions named) is a proposal like a rule's scale-out, the lowest ceiling (a breached
/// connection budget) one like a rule's scale-in, `fired` as `request` when it is taken. So
/// every bound and guard (cooldowns, `max_step`, pacing, the resource's own bounds, paused,
/// busy, and the block on scale-in while data is missing) applies to them.
pub(crate) fn decide_answering(
    policy: &Policy,
    observations: &Observations,
    current: &CurrentCapacity,
    state: &ResourceState,
    now: DateTime<Utc>,
    requests: &[Request],
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
                current.desired,
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
    let planned = replicas::plan(policy, observations, current.desired, now);
    let mut windows = schedule::open_windows(&policy.schedules, now);
    windows.extend(planned.as_ref().and_then(|plan| plan.window.clone()));
    let data_missing = evaluated.any_held();
    let limits = Limits {
        policy,
        windows: &windows,
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
    let scale_in_blocked = !choice.blockers.is_empty();
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

    let action = Action::between(current.desired, adjusted.value);
    let mut summary = summary(&evaluated, &choice, &adjusted.clamps, current);
    let mut fired = choice
        .winner
        .map(|(source, _)| evaluated.id(source).to_owned());
    let blockers = || evaluated.phrases(choice.blockers.iter().copied());
    if let Some(plan) = &planned {
        summary = format!("{summary}; {}", plan.phrase);
        if retiring && scale_in_blocked {
            summary = format!(
                "{summary}; replicas.retire waits: scale-in is blocked: {}",
                blockers()
            );
        } else if retiring && adjusted.value < current.desired {
            fired = Some("replicas.retire".to_owned());
        }
    }
    if let Some((wanted, why)) = grown {
        summary = format!("{summary}; {wanted} asked for on request: {why}");
        fired = Some("request".to_owned());
    }
    if let Some((to, why)) = shed {
        if scale_in_blocked {
            summary = format!(
                "{summary}; {to} asked for on request ({why}), but scale-in is blocked: {}",
                blockers()
            );
        } else {
            summary = format!("{summary}; {to} asked for on request: {why}");
            fired = Some("request".to_owned());
        }
    }
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
        action,
        explanation: Explanation {
            fired,
            proposed,
            data_missing,
            rules,
            tracks,
            schedules: windows,
            clamps: adjusted.clamps,
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
        .actions
        .iter()
        .filter(|action| action.direction == Direction::In && action.at > since)
        .map(|action| action.from.saturating_sub(action.to))
        .fold(0, u32::saturating_add);
    current
        .running
        .unwrap_or(0)
        .max(current.desired.saturating_add(draining))
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
        window_end: periods.end,
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

/// The capacity a tracking rule recommends, if it recommends one.
fn recommended(track: &TrackEvaluation) -> Option<u32> {
    match track.outcome {
        TrackOutcome::Proposed { proposed, .. } => Some(proposed),
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

/// Whether a tracking rule could not tell.
fn track_held(track: &TrackEvaluation) -> bool {
    matches!(
        track.outcome,
        TrackOutcome::MissingData | TrackOutcome::Unavailable { .. }
    )
}

/// A rule that can propose a capacity: a threshold rule or a tracking rule, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `rules[index]`.
    Rule(usize),
    /// `tracks[index]`.
    Track(usize),
}

/// Everything evaluated, for the choice and the summary.
#[derive(Debug, Clone, Copy)]
struct Evaluated<'a> {
    /// Threshold rules, scale-out first.
    rules: &'a [RuleEvaluation],
    /// How many of `rules` are scale-out rules.
    scale_out: usize,
    /// Tracking rules.
    tracks: &'a [TrackEvaluation],
    /// The capacity now.
    current: u32,
}

impl Evaluated<'_> {
    /// The source's id, e.g. `scale_in[0]` or `track[1]`.
    fn id(&self, source: Source) -> &str {
        match source {
            Source::Rule(index) => &self.rules[index].rule,
            Source::Track(index) => &self.tracks[index].rule,
        }
    }

    /// Comma-separated ids.
    fn ids(&self, sources: &[Source]) -> String {
        sources
            .iter()
            .map(|&source| self.id(source))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the source found, as a phrase.
    fn phrase(&self, source: Source) -> String {
        match source {
            Source::Rule(index) => phrase(&self.rules[index], self.current),
            Source::Track(index) => track_phrase(&self.tracks[index], self.current),
        }
    }

    /// What each source found, without repeating the same phrase.
    fn phrases(&self, sources: impl Iterator<Item = Source>) -> String {
        let mut unique: Vec<String> = Vec::new();
        for phrase in sources.map(|source| self.phrase(source)) {
            if !unique.contains(&phrase) {
                unique.push(phrase);
            }
        }
        unique.join("; ")
    }

    /// Whether some rule could not tell for missing or unreadable data.
    fn any_held(&self) -> bool {
        self.rules.iter().any(held) || self.tracks.iter().any(track_held)
    }

    /// Every source, rules first, in policy order.
    fn all(&self) -> impl Iterator<Item = Source> + '_ {
        (0..self.rules.len())
            .map(Source::Rule)
            .chain((0..self.tracks.len()).map(Source::Track))
    }
}

/// Which proposal is taken, and what kept the others out.
#[derive(Debug)]
struct Choice {
    /// The winning rule, and its proposal.
    winner: Option<(Source, u32)>,
    /// Scale-in proposals passed over because a scale-out proposal won.
    outvoted: Vec<Source>,
    /// Scale-in proposals passed over because scale-in is blocked.
    blocked: Vec<Source>,
    /// Rules that block scale-in: unreadable metrics, gaps in scale-in windows, tracking rules
    /// without data.
    blockers: Vec<Source>,
    /// Scale-in proposals passed over because a tracking rule did not ask for less.
    vetoed: Vec<Source>,
    /// The tracking rules that did not ask for less.
    dissent: Vec<Source>,
}

impl Choice {
    /// Chooses among everything evaluated.
    ///
    /// Scale-out takes the largest proposal of any rule that asks for more. Scale-in needs
    /// every tracking rule to ask for less (a fired scale-in rule is enough among threshold
    /// rules, which only speak when they fire) and takes the proposal that removes the least.
    /// Ties go to the rule listed first, threshold rules before tracking rules.
    fn of(evaluated: &Evaluated<'_>) -> Self {
        let Evaluated {
            rules,
            scale_out,
            tracks,
            current,
        } = *evaluated;
        let fired = |indices: std::ops::Range<usize>| {
            indices.filter_map(|index| Some((Source::Rule(index), proposed(&rules[index])?)))
        };
        let recommendations = || {
            tracks
                .iter()
                .enumerate()
                .filter_map(|(index, track)| Some((Source::Track(index), recommended(track)?)))
        };
        let out: Vec<(Source, u32)> = fired(0..scale_out)
            .chain(recommendations().filter(|&(_, p)| p > current))
            .collect();
        let into: Vec<(Source, u32)> = fired(scale_out..rules.len())
            .chain(recommendations().filter(|&(_, p)| p < current))
            .collect();
        // The largest proposal, the first listed among equals (`max_by_key` keeps the last).
        let best = |candidates: &[(Source, u32)]| {
            candidates
                .iter()
                .rev()
                .copied()
                .max_by_key(|&(_, proposed)| proposed)
        };
        let sources = |candidates: &[(Source, u32)]| candidates.iter().map(|&(s, _)| s).collect();
        let rule_blockers = (0..rules.len())
            .filter(|&index| match rules[index].outcome {
                RuleOutcome::Unavailable { .. } => true,
                RuleOutcome::MissingData => index >= scale_out,
                _ => false,
            })
            .map(Source::Rule);
        let track_blockers = (0..tracks.len())
            .filter(|&index| track_held(&tracks[index]))
            .map(Source::Track);
        let blockers: Vec<Source> = rule_blockers.chain(track_blockers).collect();
        let dissent: Vec<Source> = (0..tracks.len())
            .filter(|&index| match tracks[index].outcome {
                TrackOutcome::WithinTolerance => true,
                TrackOutcome::Proposed { proposed, .. } => proposed >= current,
                _ => false,
            })
            .map(Source::Track)
            .collect();
        let mut choice = Self {
            winner: None,
            outvoted: Vec::new(),
            blocked: Vec::new(),
            blockers,
            vetoed: Vec::new(),
            dissent: Vec::new(),
        };
        if !out.is_empty() {
            choice.winner = best(&out);
            choice.outvoted = sources(&into);
        } else if !choice.blockers.is_empty() {
            choice.blocked = sources(&into);
        } else if !dissent.is_empty() {
            choice.vetoed = sources(&into);
            choice.dissent = dissent;
        } else {
            choice.winner = best(&into);
        }
        choice
    }
}

/// The one-sentence summary: what the rules said, then every clamp.
fn summary(
    evaluated: &Evaluated<'_>,
    choice: &Choice,
    clamps: &[Clamp],
    current: &CurrentCapacity,
) -> String {
    let mut parts = Vec::new();
    if let Some((winner, _)) = choice.winner {
        parts.push(evaluated.phrase(winner));
        if !choice.outvoted.is_empty() {
            parts.push(format!(
                "{} also fired; scale-out wins",
                evaluated.ids(&choice.outvoted)
            ));
        }
    } else if !choice.blocked.is_empty() {
        let reasons = evaluated.phrases(choice.blockers.iter().copied());
        parts.push(format!(
            "{} fired but scale-in is blocked: {reasons}",
            evaluated.ids(&choice.blocked)
        ));
    } else if !choice.vetoed.is_empty() {
        let reasons = evaluated.phrases(choice.dissent.iter().copied());
        parts.push(format!(
            "{} fired but scale-in needs every track rule to agree: {reasons}",
            evaluated.ids(&choice.vetoed)
        ));
    } else if evaluated.any_held() {
        let held = evaluated.all().filter(|&source| match source {
            Source::Rule(index) => held(&evaluated.rules[index]),
            Source::Track(index) => track_held(&evaluated.tracks[index]),
        });
        parts.push(format!("holding: {}", evaluated.phrases(held)));
    } else if evaluated.rules.is_empty() && evaluated.tracks.is_empty() {
        parts.push("no rules".to_owned());
    } else {
        parts.push(format!(
            "no rule fired: {}",
            evaluated.phrases(evaluated.all())
        ));
    }
    let mut kept = None;
    for clamp in clamps {
        match clamp.kind {
            ClampKind::Paused => kept = Some(("paused".to_owned(), clamp.from)),
            ClampKind::ResourceBusy => {
                let reason = current.busy.as_deref().unwrap_or(&clamp.detail);
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
    let gaps = match (rule.missing, rule.breaching < rule.required) {
        (missing, true) if missing > 0 => {
            format!(" and {missing} missing, counted as breaching (missing_data: scale_out)")
        }
        _ => String::new(),
    };
    format!(
        "{} fired: {} {} for {} of {} datapoints{gaps}; {} -> {proposed}",
        rule.rule, rule.metric, rule.threshold, rule.breaching, rule.window, rule.step
    )
}

/// What `track` found, e.g. "track\[0\] asks for 7: cpu 80.0 with target 50 (ratio 1.60)".
fn track_phrase(track: &TrackEvaluation, current: u32) -> String {
    let metric = &track.metric;
    let seen = || {
        let value = track.value.unwrap_or_default();
        let over = match track.window {
            1 => String::new(),
            window => format!(
                " (average of {} of {window} datapoints)",
                window - track.missing
            ),
        };
        let ratio = track
            .ratio
            .map(|ratio| format!(", ratio {ratio:.2}"))
            .unwrap_or_default();
        format!("{metric} {value:.1}{over} with {}{ratio}", track.goal)
    };
    match &track.outcome {
        TrackOutcome::Proposed {
            proposed,
            capped_by_partitions,
        } => {
            let capped = capped_by_partitions
                .map(|partitions| format!(", capped at {partitions} partitions"))
                .unwrap_or_default();
            let verb = match proposed.cmp(&current) {
                Ordering::Equal => "holds at",
                _ => "asks for",
            };
            format!("{} {verb} {proposed}: {}{capped}", track.rule, seen())
        }
        TrackOutcome::WithinTolerance => {
            format!("{} within tolerance: {}", track.rule, seen())
        }
        TrackOutcome::MissingData => format!(
            "{metric} is missing {} of {} datapoints up to {}",
            track.missing,
            track.window,
            track.window_end.to_rfc3339()
        ),
        TrackOutcome::Unavailable { reason } => format!("{metric} is unavailable ({reason})"),
    }
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
            "{metric} is missing {} of {} datapoints up to {}",
            rule.missing,
            rule.window,
            rule.window_end.to_rfc3339()
        ),
        RuleOutcome::Unavailable { reason } => format!("{metric} is unavailable ({reason})"),
    }
}

/// How a clamp is named in the summary.
pub(crate) fn label(kind: ClampKind) -> &'static str {
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
        ClampKind::ConnectionBudget => "connection budget",
        ClampKind::Partitions => "partitions",
        ClampKind::ScaleInPacing => "scale_in_pacing",
        ClampKind::Stabilization => "stabilization",
        ClampKind::RateLimit => "rate_limit",
        ClampKind::MissingDataFallback => "missing_data fallback",
        ClampKind::MultipleOf => "multiple of",
    }
}

#[cfg(test)]
mod tests;
