//! The evaluation pass: lease, read, decide, guard, act, record, release.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_engine::ports::{CapacityControl, Lease, MetricSource, StateStore};
use capstan_engine::{
    CurrentCapacity, Decision, LastAction, MetricData, Observations, Request, ResourceState,
    apply_guards, decide, decide_answering,
};
use capstan_policy::model::Policy;

/// The adapters one pass reads and acts through.
pub struct Ports<'a, M, C, S> {
    /// Reads metrics.
    pub metrics: &'a M,
    /// Reads and sets capacity.
    pub capacity: &'a C,
    /// Remembers earlier actions and holds the leases.
    pub state: &'a S,
    /// Who this pass is, as leases name it: distinct for every evaluation that may run at the
    /// same time (the evaluator uses its request id).
    pub holder: &'a str,
    /// The time now, read when a change is made, so that it is remembered at the time it was
    /// made: [`evaluate`]'s `now` is when the pass started, and a pass may take a while.
    pub clock: &'a (dyn Fn() -> DateTime<Utc> + Sync),
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
    /// What went wrong around the result without changing it (a lease that could not be
    /// released, a state that could not be saved after no change), or what an earlier
    /// evaluation left behind (a change made but not recorded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What came of one policy's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Result {
    /// The decision asked for no change.
    Unchanged,
    /// The change was applied.
    Applied,
    /// The change was applied but could not be recorded. The intent saved before it lets the
    /// next evaluation find the change made, so its cooldown still starts. The detail says why.
    AppliedNotRecorded(String),
    /// A change was decided but not applied: dry run.
    WouldApply,
    /// No decision or no action, because reading or acting failed. Nothing was changed by
    /// capstan; the detail names the operation and resource.
    Failed(String),
    /// Not evaluated: another evaluation holds the resource's lease.
    HeldBy {
        /// Who holds it.
        holder: String,
        /// When the lease expires unless released first.
        until: DateTime<Utc>,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.decision, &self.result) {
            (Some(decision), Result::Failed(why)) => write!(f, "{decision}; not applied: {why}"),
            (Some(decision), result) => write!(f, "{decision}; {}", result.label()),
            (None, Result::Failed(why)) => write!(f, "{}: no decision: {why}", self.policy),
            (None, Result::HeldBy { holder, until }) => write!(
                f,
                "{}: not evaluated: {holder} holds the resource's lease until {until}",
                self.policy
            ),
            (None, result) => write!(f, "{}: {}", self.policy, result.label()),
        }?;
        if !self.warnings.is_empty() {
            write!(f, " (warning: {})", self.warnings.join("; "))?;
        }
        Ok(())
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
            Self::HeldBy { .. } => "held by another evaluation",
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
///    since each read covers whole periods of one length), then per policy: in [`Mode::Act`],
///    its resource's lease for [`Ports::holder`] (a resource another evaluation holds is not
///    evaluated: [`Result::HeldBy`]); its capacity and remembered state; and the engine's
///    decision.
/// 2. **Guard.** The cross-resource guards ([`apply_guards`]) over all the decisions at once:
///    connection budgets and partition coupling. `all` is the whole policy set, so that users of
///    a budget that are not evaluated in this pass are still charged for. The policies the
///    guards' requests address (a database's replicas, a topic's partitions, a user asked to
///    shed connections) that are in this pass decide again, answering them
///    ([`decide_answering`]), and the guards then run once more over every decision.
/// 3. **Act** (in [`Mode::Act`]), per policy in the order given: the state saved with the change
///    as its intent, the change, then the state to remember ([`ResourceState::after`]), saved
///    after every evaluation, not only after changes, since stabilization windows remember what
///    the rules asked for. Each save is written only while this pass still holds the lease
///    ([`StateStore::save`]): an intent refused means the change is not made, a state after it
///    refused is [`Result::AppliedNotRecorded`]. Then the lease is released. A change is
///    remembered at the time [`Ports::clock`] gives when it is made, and a change for a paused
///    policy or a busy resource is refused here too, whatever decided it.
///
/// An intent found when the state is read means an evaluation stopped between acting and
/// recording: it is settled against the capacity the resource shows
/// ([`ResourceState::reconcile`]), so that a change made but not recorded still starts its
/// cooldown and is not made twice.
///
/// A failure for one policy never stops the others, and a policy whose lease, capacity or state
/// could not be read is never acted on. When a batched metric read fails as a whole, every
/// metric counts as unavailable: rules hold and scale-in is blocked, while bounds and schedule
/// floors still apply. [`Mode::DryRun`] reads and decides but writes nothing, not even the
/// state, and takes no lease.
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
        assessed.push(assess(policy, &observations, ports, now, mode).await);
    }
    let guarded = apply_guards(all, decisions(&assessed));
    let requests = guarded.requests;
    // `apply_guards` keeps the order: one decision back for each decided policy.
    let mut answered = false;
    let decided = policies
        .iter()
        .zip(&mut assessed)
        .filter_map(|(policy, assessment)| Some(policy).zip(assessment.decided.as_mut().ok()));
    for ((policy, decided), guarded_decision) in decided.zip(guarded.decisions) {
        decided.decision = if requests
            .iter()
            .any(|request| request.addressee() == Some(policy.name.as_str()))
        {
            answered = true;
            decide_answering(
                policy,
                &observations,
                &decided.current,
                &decided.state,
                now,
                &requests,
            )
        } else {
            guarded_decision
        };
    }
    if answered {
        // The guards have the last word over the answers too.
        let regarded = apply_guards(all, decisions(&assessed));
        let decided = assessed
            .iter_mut()
            .filter_map(|assessment| assessment.decided.as_mut().ok());
        for (decided, decision) in decided.zip(regarded.decisions) {
            decided.decision = decision;
        }
    }
    let mut outcomes = Vec::with_capacity(policies.len());
    for (policy, assessment) in policies.iter().zip(assessed) {
        let mut outcome = match assessment.decided {
            Err(result) => Outcome {
                policy: policy.name.clone(),
                decision: None,
                result,
                warnings: assessment.warnings,
            },
            Ok(decided) => {
                let mut outcome = act(policy, decided, ports, mode).await;
                outcome.warnings.splice(0..0, assessment.warnings);
                outcome
            }
        };
        if assessment.leased {
            outcome.warnings.extend(release(policy, ports).await);
        }
        outcomes.push(outcome);
    }
    Pass { outcomes, requests }
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

/// The decisions made so far, in the order of `assessed`.
fn decisions(assessed: &[Assessment]) -> Vec<Decision> {
    assessed
        .iter()
        .filter_map(|assessment| assessment.decided.as_ref().ok())
        .map(|decided| decided.decision.clone())
        .collect()
}

/// One policy after the first phase.
struct Assessment {
    /// Whether this pass holds the resource's lease, to be released after acting.
    leased: bool,
    /// The decision and what it was made from, or why there is none.
    decided: std::result::Result<Decided, Result>,
    /// What the reads found left behind.
    warnings: Vec<String>,
}

/// A decision and the inputs it was made from that acting needs again.
struct Decided {
    decision: Decision,
    current: CurrentCapacity,
    state: ResourceState,
}

/// Takes the policy's lease (in [`Mode::Act`]), reads its capacity and state, and decides.
async fn assess<M, C, S>(
    policy: &Policy,
    observations: &Observations,
    ports: &Ports<'_, M, C, S>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Assessment
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let unleased = |result| Assessment {
        leased: false,
        decided: Err(result),
        warnings: Vec::new(),
    };
    if mode == Mode::Act {
        match ports
            .state
            .acquire_lease(&policy.target, ports.holder)
            .await
        {
            Ok(Lease::Acquired) => {}
            Ok(Lease::HeldBy { holder, until }) => {
                return unleased(Result::HeldBy { holder, until });
            }
            Err(error) => {
                return unleased(Result::Failed(format!(
                    "cannot take the resource's lease, not acting: {error}"
                )));
            }
        }
    }
    let mut warnings = Vec::new();
    let decided = read(policy, ports, &mut warnings)
        .await
        .map(|(current, state)| {
            let decision = decide(policy, observations, &current, &state, now);
            Decided {
                decision,
                current,
                state,
            }
        });
    Assessment {
        leased: mode == Mode::Act,
        decided: decided.map_err(Result::Failed),
        warnings,
    }
}

/// Reads a policy's capacity and state, settling an intent left behind; the reason when a read
/// failed.
async fn read<M, C, S>(
    policy: &Policy,
    ports: &Ports<'_, M, C, S>,
    warnings: &mut Vec<String>,
) -> std::result::Result<(CurrentCapacity, ResourceState), String>
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let current = ports
        .capacity
        .current(&policy.target)
        .await
        .map_err(|error| error.to_string())?;
    let mut state = ports
        .state
        .load(&policy.target)
        .await
        .map_err(|error| format!("cannot read cooldown state, not acting: {error}"))?;
    if let Some(made) = state.reconcile(&current) {
        warnings.push(format!(
            "an earlier evaluation changed the capacity from {} to {} at {} but stopped before recording it; counted as made",
            made.from, made.to, made.at
        ));
    }
    Ok((current, state))
}

/// Applies a decision (in [`Mode::Act`]): the state with the change as its intent, the change,
/// then the state to remember.
async fn act<M, C, S>(
    policy: &Policy,
    decided: Decided,
    ports: &Ports<'_, M, C, S>,
    mode: Mode,
) -> Outcome
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let Decided {
        decision, state, ..
    } = decided;
    let outcome = |decision: Decision, result| Outcome {
        policy: policy.name.clone(),
        decision: Some(decision),
        result,
        warnings: Vec::new(),
    };
    if let Some(why) = refusal(policy, &decision) {
        return outcome(decision, Result::Failed(why));
    }
    if mode == Mode::DryRun {
        let result = match decision.change() {
            None => Result::Unchanged,
            Some(_) => Result::WouldApply,
        };
        return outcome(decision, result);
    }
    let applied = match decision.change() {
        None => None,
        Some((direction, desired)) => {
            let change = LastAction {
                at: (ports.clock)(),
                direction,
                from: decision.current,
                to: desired,
            };
            let target = &policy.target;
            let intending = state.intending(change);
            if let Err(error) = ports.state.save(target, ports.holder, &intending).await {
                let why =
                    format!("cannot write down the change before making it, not acting: {error}");
                return outcome(decision, Result::Failed(why));
            }
            if let Err(error) = ports.capacity.set_desired(target, desired).await {
                return outcome(decision, Result::Failed(error.to_string()));
            }
            Some(change)
        }
    };
    let next = state.after(policy, &decision, applied);
    let saved = ports.state.save(&policy.target, ports.holder, &next).await;
    let mut warnings = Vec::new();
    let result = match (applied, saved) {
        (None, Ok(())) => Result::Unchanged,
        (None, Err(error)) => {
            warnings.push(format!("the state could not be saved: {error}"));
            Result::Unchanged
        }
        (Some(_), Ok(())) => Result::Applied,
        (Some(_), Err(error)) => Result::AppliedNotRecorded(error.to_string()),
    };
    Outcome {
        warnings,
        ..outcome(decision, result)
    }
}

/// Why a decided change must not be made, if it must not: the policy is paused or the
/// resource busy. The engine never decides a change for them; this is the last check before
/// acting, so that no path around the engine can make one either.
fn refusal(policy: &Policy, decision: &Decision) -> Option<String> {
    decision.change()?;
    let why = if policy.paused || decision.paused {
        "the policy is paused".to_owned()
    } else {
        decision.busy.clone()?
    };
    Some(format!("refused, not acting: {why}"))
}

/// Gives the policy's lease back; a warning when that failed.
async fn release<M, C, S>(policy: &Policy, ports: &Ports<'_, M, C, S>) -> Option<String>
where
    S: StateStore + Sync,
{
    match ports
        .state
        .release_lease(&policy.target, ports.holder)
        .await
    {
        Ok(true) => None,
        Ok(false) => Some("the lease had expired and was taken by another evaluation".to_owned()),
        Err(error) => Some(format!(
            "the lease could not be released and stays until it expires: {error}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use capstan_engine::{CurrentCapacity, ResourceState, decide};
    use capstan_policy::model::{Capacity, Policy, Target};

    use super::refusal;

    /// A policy with no rules at all, at capacity 1..=10.
    fn policy() -> Policy {
        let text = "version: 1\nname: web\ntarget: { autoscaling_group: { name: web } }\ncapacity: { min: 1, max: 10 }\n";
        let set = capstan_policy::PolicySet::from_sources(vec![capstan_policy::Source {
            path: "web.yaml".into(),
            text: text.into(),
        }])
        .expect("a valid policy");
        set.policies()[0].clone()
    }

    #[test]
    fn a_change_for_a_paused_policy_or_a_busy_resource_is_refused_at_the_point_of_acting() {
        let mut policy = policy();
        assert_eq!(policy.capacity, Capacity { min: 1, max: 10 });
        assert!(matches!(policy.target, Target::AutoscalingGroup { .. }));
        let below_min = CurrentCapacity {
            desired: 0,
            ..Default::default()
        };
        // The bounds ask for 1: a change, not refused while nothing holds the policy.
        let decision = decide(
            &policy,
            &Default::default(),
            &below_min,
            &ResourceState::default(),
            chrono::Utc::now(),
        );
        assert!(decision.change().is_some());
        assert_eq!(refusal(&policy, &decision), None);
        // A decision that changes something although the policy is paused (the global pause
        // sets `paused` after the decision, say) or the resource is busy is refused.
        policy.paused = true;
        assert_eq!(
            refusal(&policy, &decision).as_deref(),
            Some("refused, not acting: the policy is paused")
        );
        policy.paused = false;
        let mut busy = decision.clone();
        busy.busy = Some("a deployment is in progress".into());
        assert_eq!(
            refusal(&policy, &busy).as_deref(),
            Some("refused, not acting: a deployment is in progress")
        );
    }
}
