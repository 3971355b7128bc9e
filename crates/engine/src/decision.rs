//! A decision and its explanation: what was seen, which rule fired (or why none did), every
//! clamp applied, and the final current → desired.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_policy::model::{Step, Target, Threshold, TrackGoal};

use crate::forecast::Profile;
use crate::observe::{Datapoint, Direction, Share};

/// The outcome of evaluating one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The policy's name.
    pub policy: String,
    /// The resource it scales.
    pub target: Target,
    /// The evaluation time.
    pub at: DateTime<Utc>,
    /// Capacity before the decision.
    pub current: u32,
    /// How many of the `current` units serve now (fewer while read replicas are being created).
    pub in_service: u32,
    /// How many units may hold connections now: at least `current`, more while units removed
    /// recently still drain or the resource runs more than it is set to (see the
    /// [connection budget](crate::guards::connection_budget)).
    pub running: u32,
    /// Capacity the decision asks for; equal to `current` when nothing changes.
    pub desired: u32,
    /// The policy is paused (its own `paused`, or the global pause): nothing may change it.
    pub paused: bool,
    /// Why the resource must not be changed now (e.g. a deployment in progress), if it must
    /// not: nothing may change it.
    pub busy: Option<String>,
    /// The limit the resource shares with others, if it has one.
    pub share: Option<Share>,
    /// Whether anything should be done.
    pub action: Action,
    /// Why.
    pub explanation: Explanation,
}

impl Decision {
    /// The change to make, if any: `Some((direction, desired))`.
    pub fn change(&self) -> Option<(Direction, u32)> {
        Some((self.action.direction()?, self.desired))
    }

    /// Whether nothing may change the capacity: the policy is paused or the resource busy.
    /// [`decide()`](crate::decide()) keeps such a resource where it is, the cross-resource guards
    /// leave it alone, and the runner refuses to act on it.
    pub fn frozen(&self) -> bool {
        self.paused || self.busy.is_some()
    }

    /// The guard that kept a requested change from taking effect, if one did: the first clamp
    /// of a [blocking](ClampKind::blocks) kind. Clamps are recorded only when they change the
    /// value, so such a clamp means a rule, a tracking rule, a schedule or the bounds asked for
    /// another capacity than the one decided.
    pub fn blocked_by(&self) -> Option<&Clamp> {
        self.explanation
            .clamps
            .iter()
            .find(|clamp| clamp.kind.blocks())
    }
}

/// What the decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave capacity as it is.
    None,
    /// Change capacity in this direction, to `desired`.
    Scale(Direction),
}

impl Action {
    /// What going from `current` to `desired` is: a scale-out, a scale-in, or nothing.
    pub fn between(current: u32, desired: u32) -> Self {
        match desired.cmp(&current) {
            Ordering::Greater => Self::Scale(Direction::Out),
            Ordering::Less => Self::Scale(Direction::In),
            Ordering::Equal => Self::None,
        }
    }

    /// Which way the capacity goes, if it changes.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Self::Scale(direction) => Some(direction),
            Self::None => None,
        }
    }
}

/// Everything that went into a decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// Every rule, in policy order, with the datapoints it looked at.
    pub rules: Vec<RuleEvaluation>,
    /// Every target-tracking rule, in policy order, with what it recommended.
    pub tracks: Vec<TrackEvaluation>,
    /// The rule whose proposal was taken, e.g. `scale_out[0]` or `track[1]`, if any.
    pub fired: Option<String>,
    /// What the rules asked for before any clamp: the fired rule's proposal, or the current
    /// capacity. Remembered for the stabilization windows.
    pub proposed: u32,
    /// Whether some rule could not tell for missing or unreadable data.
    pub data_missing: bool,
    /// Open schedule windows and the floors they set.
    pub schedules: Vec<ScheduleWindow>,
    /// The policy's forecast and the floor it set, when the policy has one.
    pub forecast: Option<ForecastEvaluation>,
    /// Each adjustment made to the rule's proposal, in the order applied.
    pub clamps: Vec<Clamp>,
    /// Whether the longer scale-in window after a flap kept the capacity where the shorter one
    /// would have reversed a scale-out within the hour: a flap prevented, remembered as one
    /// (see [`crate::flap`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_back_flap: bool,
    /// Why the decision is what it is, in one sentence.
    pub summary: String,
}

/// How one rule evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvaluation {
    /// Where the rule stands in the policy, e.g. `scale_in[0]`.
    pub rule: String,
    /// The metric's name in the policy.
    pub metric: String,
    /// The threshold.
    pub threshold: Threshold,
    /// Datapoints that had to breach.
    pub required: u32,
    /// Datapoints in the window.
    pub window: u32,
    /// End of the window (exclusive): the newest period it holds ended here, at least the
    /// metric's `delay` before the evaluation.
    pub window_end: DateTime<Utc>,
    /// The datapoints found in the window, oldest first.
    pub datapoints: Vec<Datapoint>,
    /// How many of them breached.
    pub breaching: u32,
    /// How many periods of the window had no datapoint.
    pub missing: u32,
    /// The result.
    pub outcome: RuleOutcome,
    /// The rule's step.
    pub step: Step,
}

/// The result of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// The condition held; the step asks for this capacity.
    Fired {
        /// Capacity the step asks for, before clamps.
        proposed: u32,
    },
    /// The condition held, but the step does not move capacity the rule's way (e.g. `set: 4` on
    /// a scale-out rule at 6, or `remove` at 0), so the rule does not fire.
    NoChange {
        /// Capacity the step asks for.
        proposed: u32,
    },
    /// The condition held, but fewer units serve than are desired and the units launched
    /// cover what the step asks for from those in service: hold while they warm up (see
    /// [`crate::decide()`]).
    WarmingUp {
        /// What the step asks for from the units in service.
        proposed: u32,
        /// The units in service it applied to.
        in_service: u32,
    },
    /// Complete data, condition not met.
    NotBreached,
    /// The window is missing datapoints, so the rule holds.
    MissingData,
    /// The metric could not be read.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// How a policy's `forecast` evaluated (see [`crate::forecast`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastEvaluation {
    /// The metric forecast, by its name in the policy.
    pub metric: String,
    /// The floor it set, or why it set none.
    pub outcome: ForecastOutcome,
}

impl ForecastEvaluation {
    /// The floor the forecast sets, if it sets one.
    pub fn floor(&self) -> Option<u32> {
        match self.outcome {
            ForecastOutcome::Floor { floor, .. } => Some(floor),
            ForecastOutcome::Withheld { .. } => None,
        }
    }
}

/// What a forecast came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastOutcome {
    /// A floor from the forecast peak of the hours ahead.
    Floor {
        /// The forecast peak of the metric.
        forecast: f64,
        /// The start of the hour that peak is forecast for.
        hour: DateTime<Utc>,
        /// The profile it came from.
        profile: Profile,
        /// The profile's recent error (absolute errors over peaks, over the last 24 hours), when
        /// there were hours to measure it on.
        error: Option<f64>,
        /// ceil(forecast / per_replica) (less one for an `rds_replicas` policy's source), at
        /// most `capacity.max`.
        floor: u32,
    },
    /// No floor, and why: too little history, a forecast too far off lately, or no forecast
    /// for the hours ahead.
    Withheld {
        /// Why, e.g. "it has 9h of history and needs 24h".
        reason: String,
    },
}

impl fmt::Display for ForecastEvaluation {
    /// E.g. "forecast of requests 3120.0 at 15:00 UTC (weekly profile, recent error 4%) sets a
    /// floor of 45".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            ForecastOutcome::Floor {
                forecast,
                hour,
                profile,
                error,
                floor,
            } => {
                write!(
                    f,
                    "forecast of {} {forecast:.1} at {} ({profile} profile, recent error ",
                    self.metric,
                    hour.format("%H:%M UTC")
                )?;
                match error {
                    Some(error) => write!(f, "{:.0}%", error * 100.0)?,
                    None => f.write_str("not yet known")?,
                }
                write!(f, ") sets a floor of {floor}")
            }
            ForecastOutcome::Withheld { reason } => {
                write!(f, "forecast of {} withheld: {reason}", self.metric)
            }
        }
    }
}

/// How one target-tracking rule evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackEvaluation {
    /// Where the rule stands in the policy, e.g. `track[0]`.
    pub rule: String,
    /// The metric's name in the policy.
    pub metric: String,
    /// What the metric is held at.
    pub goal: TrackGoal,
    /// Datapoints averaged.
    pub window: u32,
    /// End of the window (exclusive), as [`RuleEvaluation::window_end`].
    pub window_end: DateTime<Utc>,
    /// The datapoints found in the window, oldest first.
    pub datapoints: Vec<Datapoint>,
    /// How many periods of the window had no datapoint.
    pub missing: u32,
    /// The average of the datapoints, if there were any.
    pub value: Option<f64>,
    /// Value over goal (per unit of current capacity for `per_replica`), when defined.
    pub ratio: Option<f64>,
    /// The result.
    pub outcome: TrackOutcome,
}

/// The result of one target-tracking rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackOutcome {
    /// The rule recommends this capacity (which may be the current one).
    Proposed {
        /// Capacity recommended, before clamps.
        proposed: u32,
        /// The partition count that lowered the recommendation, if one did.
        capped_by_partitions: Option<u32>,
    },
    /// The ratio is within the tolerance: keep the current capacity.
    WithinTolerance,
    /// Fewer units serve than are desired, and the units launched cover what the rule asks
    /// for: hold while they warm up (see the `track` module).
    WarmingUp {
        /// What the rule asks for from the units in service.
        proposed: u32,
        /// The units in service it was measured over.
        in_service: u32,
    },
    /// No datapoint in the window, or gaps where the rule would not scale out: hold.
    MissingData,
    /// The metric could not be read.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// An open schedule window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleWindow {
    /// The schedule's name.
    pub name: String,
    /// When this occurrence opened.
    pub opened: DateTime<Utc>,
    /// When it closes.
    pub closes: DateTime<Utc>,
    /// The floor it sets.
    pub min: u32,
}

/// One adjustment to the proposed capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clamp {
    /// What adjusted it.
    pub kind: ClampKind,
    /// Capacity before.
    pub from: u32,
    /// Capacity after.
    pub to: u32,
    /// Detail, e.g. the cooldown's end.
    pub detail: String,
}

/// The guards and bounds that can adjust a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClampKind {
    /// The policy's `capacity.min`.
    PolicyMin,
    /// The policy's `capacity.max`.
    PolicyMax,
    /// An open schedule window's floor.
    ScheduleFloor,
    /// The floor of the policy's `forecast`, raised ahead of a forecast peak.
    ForecastFloor,
    /// The resource's own lower bound.
    ResourceMin,
    /// The resource's own upper bound.
    ResourceMax,
    /// `guards.max_step`.
    MaxStep,
    /// `guards.cooldown`.
    Cooldown,
    /// The resource is busy (e.g. a deployment in progress).
    ResourceBusy,
    /// The policy is paused.
    Paused,
    /// A database's connection budget, shared with the other services using it.
    ConnectionBudget,
    /// The partition count of the topic consumed: more consumers would sit idle.
    Partitions,
    /// `guards.scale_in_pacing`.
    ScaleInPacing,
    /// `guards.stabilization`: a recent recommendation holds the move back.
    Stabilization,
    /// `guards.rate_limit`: the changes of the current period leave no more room.
    RateLimit,
    /// `guards.missing_data: { fallback }`: data has been missing for too long.
    MissingDataFallback,
    /// The resource takes capacity only in multiples of a unit (an MSK cluster's brokers per
    /// Availability Zone).
    MultipleOf,
}

impl ClampKind {
    /// Whether this clamp is a guard blocking a change, as the `BlockedByGuard` metric and the
    /// decisions topic count it: a pause, a busy resource, a connection budget or a topic's
    /// partitions. Bounds, steps, cooldowns and pacing are the policy working as written.
    pub fn blocks(self) -> bool {
        matches!(
            self,
            Self::Paused | Self::ResourceBusy | Self::ConnectionBudget | Self::Partitions
        )
    }
}

impl fmt::Display for ClampKind {
    /// How the clamp is named in a decision's summary, e.g. `max_step` or `connection budget`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PolicyMin => "capacity.min",
            Self::PolicyMax => "capacity.max",
            Self::ScheduleFloor => "schedule floor",
            Self::ForecastFloor => "forecast floor",
            Self::ResourceMin => "resource min",
            Self::ResourceMax => "resource max",
            Self::MaxStep => "max_step",
            Self::Cooldown => "cooldown",
            Self::ResourceBusy => "resource busy",
            Self::Paused => "paused",
            Self::ConnectionBudget => "connection budget",
            Self::Partitions => "partitions",
            Self::ScaleInPacing => "scale_in_pacing",
            Self::Stabilization => "stabilization",
            Self::RateLimit => "rate_limit",
            Self::MissingDataFallback => "missing_data fallback",
            Self::MultipleOf => "multiple of",
        })
    }
}

impl fmt::Display for Clamp {
    /// The clamp as a decision's summary gives it, e.g. "clamped by max_step to 4".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "clamped by {} to {}", self.kind, self.to)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]: {} -> {}",
            self.policy, self.target, self.current, self.desired
        )?;
        write!(f, " ({})", self.explanation.summary)
    }
}
