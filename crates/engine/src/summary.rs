//! The prose of a decision: [`Explanation::summary`](crate::Explanation::summary), one
//! sentence saying what the rules found, which proposal was taken or why none was, every
//! clamp, and what the replica plan, the guards' requests and the forecast added.

use crate::choice::{self, Choice, Evaluated, Source};
use crate::decision::{
    Action, Clamp, ClampKind, ForecastEvaluation, RuleEvaluation, RuleOutcome, TrackEvaluation,
    TrackOutcome,
};
use crate::observe::{CurrentCapacity, Direction};

/// What a decision answered besides its rules: the replica plan, the guards' requests and the
/// forecast.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered<'a> {
    /// What the replica plan found, for a policy with a plan.
    pub plan: Option<&'a str>,
    /// Whether the plan retires replicas now, in which case its retirement waits while
    /// scale-in is blocked.
    pub retiring: bool,
    /// The capacity a growth request asked for, and why, when it was taken.
    pub grown: Option<&'a (u32, String)>,
    /// The ceiling a request set, and why, when it was below the proposal.
    pub shed: Option<&'a (u32, String)>,
    /// The forecast and its floor, for a policy with a `forecast`.
    pub forecast: Option<&'a ForecastEvaluation>,
}

/// The one-sentence summary: what the rules said, then every clamp, then what the decision
/// `answered` besides its rules.
pub(crate) fn summary(
    evaluated: &Evaluated<'_>,
    choice: &Choice,
    clamps: &[Clamp],
    current: &CurrentCapacity,
    answered: &Answered<'_>,
) -> String {
    let mut summary = rules_and_clamps(evaluated, choice, clamps, current);
    let blockers = || phrases(evaluated, choice.blockers.iter().copied());
    if let Some(plan) = answered.plan {
        summary = format!("{summary}; {plan}");
        if answered.retiring && choice.scale_in_blocked() {
            summary = format!(
                "{summary}; replicas.retire waits: scale-in is blocked: {}",
                blockers()
            );
        }
    }
    if let Some((wanted, why)) = answered.grown {
        summary = format!("{summary}; {wanted} asked for on request: {why}");
    }
    if let Some((to, why)) = answered.shed {
        summary = if choice.scale_in_blocked() {
            format!(
                "{summary}; {to} asked for on request ({why}), but scale-in is blocked: {}",
                blockers()
            )
        } else {
            format!("{summary}; {to} asked for on request: {why}")
        };
    }
    if let Some(forecast) = answered.forecast {
        summary = format!("{summary}; {forecast}");
    }
    summary
}

/// What the rules said, then every clamp; for a paused policy or a busy resource, led by what
/// kept the capacity.
fn rules_and_clamps(
    evaluated: &Evaluated<'_>,
    choice: &Choice,
    clamps: &[Clamp],
    current: &CurrentCapacity,
) -> String {
    let mut parts = Vec::new();
    if let Some((winner, _)) = choice.winner {
        parts.push(phrase(evaluated, winner));
        if !choice.outvoted.is_empty() {
            parts.push(format!(
                "{} also fired; scale-out wins",
                ids(evaluated, &choice.outvoted)
            ));
        }
    } else if !choice.blocked.is_empty() {
        let reasons = phrases(evaluated, choice.blockers.iter().copied());
        parts.push(format!(
            "{} fired but scale-in is blocked: {reasons}",
            ids(evaluated, &choice.blocked)
        ));
    } else if !choice.vetoed.is_empty() {
        let reasons = phrases(evaluated, choice.dissent.iter().copied());
        let waits = if choice.dissent.iter().any(|s| matches!(s, Source::Rule(_))) {
            "scale-in waits while launches warm up"
        } else {
            "scale-in needs every track rule to agree"
        };
        parts.push(format!(
            "{} fired but {waits}: {reasons}",
            ids(evaluated, &choice.vetoed)
        ));
    } else if evaluated.any_held() {
        let held = evaluated.all().filter(|&source| evaluated.held(source));
        parts.push(format!("holding: {}", phrases(evaluated, held)));
    } else if evaluated.rules.is_empty() && evaluated.tracks.is_empty() {
        parts.push("no rules".to_owned());
    } else {
        parts.push(format!(
            "no rule fired: {}",
            phrases(evaluated, evaluated.all())
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
            _ => parts.push(clamp.to_string()),
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

/// Comma-separated ids.
fn ids(evaluated: &Evaluated<'_>, sources: &[Source]) -> String {
    sources
        .iter()
        .map(|&source| evaluated.id(source))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What each source found, without repeating the same phrase.
fn phrases(evaluated: &Evaluated<'_>, sources: impl Iterator<Item = Source>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for phrase in sources.map(|source| phrase(evaluated, source)) {
        if !unique.contains(&phrase) {
            unique.push(phrase);
        }
    }
    unique.join("; ")
}

/// What the source found, as a phrase.
fn phrase(evaluated: &Evaluated<'_>, source: Source) -> String {
    match source {
        Source::Rule(index) => rule_phrase(&evaluated.rules[index], evaluated.current),
        Source::Track(index) => track_phrase(&evaluated.tracks[index], evaluated.current),
    }
}

/// E.g. "scale_out\[0\] fired: cpu above 70 for 5 of 5 datapoints; add 2 -> 6".
fn fired(rule: &RuleEvaluation) -> String {
    let proposed = choice::proposed(rule).unwrap_or_default();
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
            let verb = if *proposed == current {
                "holds at"
            } else {
                "asks for"
            };
            format!("{} {verb} {proposed}: {}{capped}", track.rule, seen())
        }
        TrackOutcome::WithinTolerance => {
            format!("{} within tolerance: {}", track.rule, seen())
        }
        TrackOutcome::WarmingUp {
            proposed,
            in_service,
        } => format!(
            "{} holds at {current} while launches warm up: {} over the {in_service} in service \
             asks for {proposed}",
            track.rule,
            seen()
        ),
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
fn rule_phrase(rule: &RuleEvaluation, current: u32) -> String {
    let metric = &rule.metric;
    let present = rule.window - rule.missing;
    match &rule.outcome {
        RuleOutcome::Fired { .. } => fired(rule),
        RuleOutcome::NoChange { proposed } => {
            let versus = match Action::between(current, *proposed).direction() {
                Some(Direction::In) => format!("is below the current {current}"),
                Some(Direction::Out) => format!("is above the current {current}"),
                None => "is the current capacity".to_owned(),
            };
            format!(
                "{} condition held but {} -> {proposed} {versus}",
                rule.rule, rule.step
            )
        }
        RuleOutcome::WarmingUp {
            proposed,
            in_service,
        } => format!(
            "{} holds at {current} while launches warm up: {} from the {in_service} in service \
             asks for {proposed}",
            rule.rule, rule.step
        ),
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
