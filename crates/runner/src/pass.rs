//! The evaluation pass: read, decide, act, record.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_engine::ports::{CapacityControl, MetricSource, StateStore};
use capstan_engine::{
    Decision, LastAction, MetricData, Observations, Request, ResourceState, apply_guards, decide,
};
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

/// Everything one pass did.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    /// One outcome per policy, in the order given.
    pub outcomes: Vec<Outcome>,
    /// What the cross-resource guards asked other policies for (read replicas, partitions).
    pub requests: Vec<Request>,
}

/// Evaluates `policies` at `now`, in three phases:
///
/// 1. **Read and decide.** One batched metric read for all of them (one per distinct period,
///    since each read covers whole periods of one length), then per policy its capacity and
///    remembered state, and the engine's decision.
/// 2. **Guard.** The cross-resource guards ([`apply_guards`]) over all the decisions at once:
///    connection budgets and partition coupling. `all` is the whole policy set, so that users of
///    a budget that are not evaluated in this pass are still charged for.
/// 3. **Act** (in [`Mode::Act`]), per policy in the order given: the change, then the state to
///    remember ([`ResourceState::after`]), saved after every evaluation, not only after
///    changes, since stabilization windows remember what the rules asked for.
///
/// A failure for one policy never stops the others, and a policy whose capacity or state could
/// not be read is never acted on. When a batched metric read fails as a whole, every metric
/// counts as unavailable: rules hold and scale-in is blocked, while bounds and schedule floors
/// still apply. [`Mode::DryRun`] reads and decides but writes nothing, not even the state.
pub async fn evaluate<M, C, S>(
    policies: &[&Policy],
    all: &[&Policy],
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Pass
where
    M: MetricSource + Sync,
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let observations = read_metrics(policies, ports.metrics, now).await;
    let mut assessed = Vec::with_capacity(policies.len());
    for policy in policies {
        assessed.push(assess(policy, &observations, ports, now).await);
    }
    let decisions = assessed
        .iter()
        .filter_map(|assessment| assessment.as_ref().ok())
        .map(|(decision, _)| decision.clone())
        .collect();
    let guarded = apply_guards(all, decisions);
    // `apply_guards` keeps the order: one decision back for each assessed policy.
    let decided = assessed
        .iter_mut()
        .filter_map(|assessment| assessment.as_mut().ok());
    for ((decision, _), guarded) in decided.zip(guarded.decisions) {
        *decision = guarded;
    }
    let mut outcomes = Vec::with_capacity(policies.len());
    for (policy, assessment) in policies.iter().zip(assessed) {
        outcomes.push(match assessment {
            Err(why) => Outcome {
                policy: policy.name.clone(),
                decision: None,
                result: Result::Failed(why),
            },
            Ok((decision, state)) => act(policy, decision, &state, ports, now, mode).await,
        });
    }
    Pass {
        outcomes,
        requests: guarded.requests,
    }
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

/// Reads a policy's capacity and state and decides; the reason when a read failed.
async fn assess<M, C, S>(
    policy: &Policy,
    observations: &Observations,
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
) -> std::result::Result<(Decision, ResourceState), String>
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let current = ports
        .capacity
        .current(&policy.target)
        .await
        .map_err(|error| error.to_string())?;
    let state = ports
        .state
        .load(&policy.target)
        .await
        .map_err(|error| format!("cannot read cooldown state, not acting: {error}"))?;
    let decision = decide(policy, observations, &current, &state, now);
    Ok((decision, state))
}

/// Applies a decision (in [`Mode::Act`]) and saves the state to remember.
async fn act<M, C, S>(
    policy: &Policy,
    decision: Decision,
    state: &ResourceState,
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Outcome
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let outcome = |result| Outcome {
        policy: policy.name.clone(),
        decision: Some(decision.clone()),
        result,
    };
    if mode == Mode::DryRun {
        return outcome(match decision.change() {
            None => Result::Unchanged,
            Some(_) => Result::WouldApply,
        });
    }
    let applied = match decision.change() {
        None => None,
        Some((direction, desired)) => {
            if let Err(error) = ports.capacity.set_desired(&policy.target, desired).await {
                return outcome(Result::Failed(error.to_string()));
            }
            Some(LastAction {
                at: now,
                direction,
                from: decision.current,
                to: desired,
            })
        }
    };
    let next = state.after(policy, &decision, applied);
    let saved = ports.state.save(&policy.target, &next).await;
    outcome(match (applied, saved) {
        (None, _) => Result::Unchanged,
        (Some(_), Ok(())) => Result::Applied,
        (Some(_), Err(error)) => Result::AppliedNotRecorded(error.to_string()),
    })
}
