//! Which rule's proposal a decision takes, and what kept the others out, by the rules written on
//! [`decide()`](crate::decide()) ("Choice").

use crate::decision::{RuleEvaluation, RuleOutcome, TrackEvaluation, TrackOutcome};

/// A rule that can propose a capacity: a threshold rule or a tracking rule, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `rules[index]`.
    Rule(usize),
    /// `tracks[index]`.
    Track(usize),
}

/// Everything evaluated, for the choice and the summary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evaluated<'a> {
    /// Threshold rules, scale-out first.
    pub rules: &'a [RuleEvaluation],
    /// How many of `rules` are scale-out rules.
    pub scale_out: usize,
    /// Tracking rules.
    pub tracks: &'a [TrackEvaluation],
    /// The capacity now.
    pub current: u32,
}

impl Evaluated<'_> {
    /// The source's id, e.g. `scale_in[0]` or `track[1]`.
    pub fn id(&self, source: Source) -> &str {
        match source {
            Source::Rule(index) => &self.rules[index].rule,
            Source::Track(index) => &self.tracks[index].rule,
        }
    }

    /// Whether the source could not tell for missing or unreadable data.
    pub fn held(&self, source: Source) -> bool {
        match source {
            Source::Rule(index) => held(&self.rules[index]),
            Source::Track(index) => track_held(&self.tracks[index]),
        }
    }

    /// Whether some rule could not tell for missing or unreadable data.
    pub fn any_held(&self) -> bool {
        self.all().any(|source| self.held(source))
    }

    /// Every source, rules first, in policy order.
    pub fn all(&self) -> impl Iterator<Item = Source> + '_ {
        (0..self.rules.len())
            .map(Source::Rule)
            .chain((0..self.tracks.len()).map(Source::Track))
    }
}

/// Which proposal is taken, and what kept the others out.
#[derive(Debug)]
pub(crate) struct Choice {
    /// The winning rule, and its proposal.
    pub winner: Option<(Source, u32)>,
    /// Scale-in proposals passed over because a scale-out proposal won.
    pub outvoted: Vec<Source>,
    /// Scale-in proposals passed over because scale-in is blocked.
    pub blocked: Vec<Source>,
    /// Rules that block scale-in: unreadable metrics, gaps in scale-in windows, tracking rules
    /// without data.
    pub blockers: Vec<Source>,
    /// Scale-in proposals passed over because a tracking rule did not ask for less, or a
    /// scale-out rule holds while launches warm up.
    pub vetoed: Vec<Source>,
    /// The tracking rules that did not ask for less, and the scale-out rules holding while
    /// launches warm up.
    pub dissent: Vec<Source>,
}

impl Choice {
    /// Chooses among everything evaluated.
    pub fn of(evaluated: &Evaluated<'_>) -> Self {
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
        let warming_rules = (0..rules.len())
            .filter(|&index| matches!(rules[index].outcome, RuleOutcome::WarmingUp { .. }))
            .map(Source::Rule);
        let dissent: Vec<Source> = warming_rules
            .chain(
                (0..tracks.len())
                    .filter(|&index| match tracks[index].outcome {
                        TrackOutcome::WithinTolerance | TrackOutcome::WarmingUp { .. } => true,
                        TrackOutcome::Proposed { proposed, .. } => proposed >= current,
                        _ => false,
                    })
                    .map(Source::Track),
            )
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

    /// Whether scale-in is blocked: some rule's metric is unreadable, or a scale-in window or a
    /// tracking rule lacks data.
    pub fn scale_in_blocked(&self) -> bool {
        !self.blockers.is_empty()
    }
}

/// The capacity a fired rule proposes.
pub(crate) fn proposed(rule: &RuleEvaluation) -> Option<u32> {
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
