//! The evaluation pass: read, decide, act, record.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_engine::ports::{CapacityControl, MetricSource, StateStore};
use capstan_engine::{Decision, LastAction, MetricData, Observations, decide};
use capstan_policy::model::Policy;

/// The adapters one pass reads and acts through.
pub struct Ports<'a, M, C, S> {
    /// Reads metrics.
    pub metrics: &'a M,
    /// Reads and sets capacity.
    pub capacity: &'a C,
    /// Remembers earlier actions.
    pub state: &'a S,
}

/// Whether a pass may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Apply decisions and record them.
    Act,
    /// Decide and explain, change nothing (`DRY_RUN`, `capstan plan`).
    DryRun,
}

/// What a pass did for one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The policy's name.
    pub policy: String,
    /// The decision, when one could be made.
    pub decision: Option<Decision>,
    /// What came of it.
    pub result: Result,
}

/// What came of one policy's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Result {
    /// The decision asked for no change.
    Unchanged,
    /// The change was applied.
    Applied,
    /// The change was applied but could not be recorded; cooldowns may not start. The detail
    /// says why.
    AppliedNotRecorded(String),
    /// A change was decided but not applied: dry run.
    WouldApply,
    /// No decision or no action, because reading or acting failed. Nothing was changed by
    /// capstan; the detail names the operation and resource.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.decision, &self.result) {
            (Some(decision), Result::Failed(why)) => write!(f, "{decision}; not applied: {why}"),
            (Some(decision), result) => write!(f, "{decision}; {}", result.label()),
            (None, Result::Failed(why)) => write!(f, "{}: no decision: {why}", self.policy),
            (None, result) => write!(f, "{}: {}", self.policy, result.label()),
        }
    }
}

impl Result {
    fn label(&self) -> &str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Applied => "applied",
            Self::AppliedNotRecorded(_) => "applied, not recorded",
            Self::WouldApply => "dry run: not applied",
            Self::Failed(_) => "failed",
        }
    }
}

/// Evaluates `policies` at `now`: one batched metric read for all of them (one per distinct
/// period, since each read covers whole periods of one length), then per policy (in
/// the order given) capacity and state reads, the engine's decision and, in [`Mode::Act`], the
/// change and its record. A failure for one policy never stops the others, and a policy whose
/// capacity or state could not be read is never acted on. When a batched metric read fails as
/// a whole, every metric counts as unavailable: rules hold and scale-in is blocked, while bounds
/// and schedule floors still apply.
pub async fn evaluate<M, C, S>(
    policies: &[&Policy],
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Vec<Outcome>
where
    M: MetricSource + Sync,
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let observations = read_metrics(policies, ports.metrics, now).await;
    let mut outcomes = Vec::with_capacity(policies.len());
    for policy in policies {
        outcomes.push(evaluate_one(policy, &observations, ports, now, mode).await);
    }
    outcomes
}

async fn read_metrics<M: MetricSource>(
    policies: &[&Policy],
    source: &M,
    now: DateTime<Utc>,
) -> Observations {
    let mut observations = Observations::new();
    for read in capstan_engine::reads(policies.iter().copied(), now) {
        match source.read(&read.queries, read.start, read.end).await {
            Ok(read) => observations.extend(read),
            Err(error) => {
                let reason = error.to_string();
                observations.extend(
                    read.queries
                        .into_iter()
                        .map(|query| (query, MetricData::Unavailable(reason.clone()))),
                );
            }
        }
    }
    observations
}

async fn evaluate_one<M, C, S>(
    policy: &Policy,
    observations: &Observations,
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Outcome
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let failed = |why: String| Outcome {
        policy: policy.name.clone(),
        decision: None,
        result: Result::Failed(why),
    };
    let current = match ports.capacity.current(&policy.target).await {
        Ok(current) => current,
        Err(error) => return failed(error.to_string()),
    };
    let state = match ports.state.load(&policy.target).await {
        Ok(state) => state,
        Err(error) => return failed(format!("cannot read cooldown state, not acting: {error}")),
    };
    let decision = decide(policy, observations, &current, &state, now);
    let result = match (decision.change(), mode) {
        (None, _) => Result::Unchanged,
        (Some(_), Mode::DryRun) => Result::WouldApply,
        (Some((direction, desired)), Mode::Act) => {
            match ports.capacity.set_desired(&policy.target, desired).await {
                Err(error) => Result::Failed(error.to_string()),
                Ok(()) => {
                    let action = LastAction {
                        at: now,
                        direction,
                        from: decision.current,
                        to: desired,
                    };
                    match ports.state.record(&policy.target, action).await {
                        Ok(()) => Result::Applied,
                        Err(error) => Result::AppliedNotRecorded(error.to_string()),
                    }
                }
            }
        }
    };
    Outcome {
        policy: policy.name.clone(),
        decision: Some(decision),
        result,
    }
}
