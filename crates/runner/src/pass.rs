//! The evaluation pass: lease, read, decide, guard, act, record, release.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures_util::future::join;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use capstan_engine::{
    Change, CurrentCapacity, Decision, GuardRequest, MetricData, Observations, ResourceState,
    Subject, decide_all,
};
use capstan_policy::model::{Policy, Target};

use crate::history;
use crate::ports::{CapacityControl, Lease, MetricSource, SaveError, StateStore};

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
    /// How much the pass may do at once, and until when.
    pub limits: Limits,
}

impl<M, C, S> Ports<'_, M, C, S> {
    /// Whether [`Limits::deadline`] has passed, by [`Ports::clock`].
    fn past_deadline(&self) -> bool {
        self.limits
            .deadline
            .is_some_and(|deadline| (self.clock)() >= deadline)
    }
}

/// How much one pass may do at once, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most changes in flight at once. Everything else a pass does is batched.
    pub max_in_flight: usize,
    /// When the pass stops starting work: what it has not reached by then is
    /// [`Status::Deferred`]. None: no deadline.
    pub deadline: Option<DateTime<Utc>>,
}

impl Default for Limits {
    /// [`Limits::DEFAULT_MAX_IN_FLIGHT`] changes at once, no deadline.
    fn default() -> Self {
        Self {
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            deadline: None,
        }
    }
}

impl Limits {
    /// The default bound on changes in flight.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
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
    pub result: Status,
    /// What went wrong around the result without changing it (a lease that could not be
    /// released, a state that could not be saved after no change), or what an earlier
    /// evaluation left behind (a change made but not recorded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What came of one policy's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Status {
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
    /// Not evaluated, or evaluated but not acted on, because the pass reached its deadline
    /// ([`Limits::deadline`]) first. Nothing was changed and the lease is released: the next
    /// pass evaluates the resource again.
    Deferred,
    /// Not evaluated: another evaluation holds the resource's lease.
    HeldBy {
        /// Who holds it.
        holder: String,
        /// When the lease expires unless released first.
        until: DateTime<Utc>,
    },
}

impl Outcome {
    /// `policy`'s outcome, without warnings.
    fn new(policy: &Policy, decision: Option<Decision>, result: Status) -> Self {
        Self {
            policy: policy.name.clone(),
            decision,
            result,
            warnings: Vec::new(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.decision, &self.result) {
            (Some(decision), Status::Failed(why)) => write!(f, "{decision}; not applied: {why}"),
            (Some(decision), result) => write!(f, "{decision}; {}", result.label()),
            (None, Status::Failed(why)) => write!(f, "{}: no decision: {why}", self.policy),
            (None, Status::HeldBy { holder, until }) => write!(
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

impl Status {
    fn label(&self) -> &str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Applied => "applied",
            Self::AppliedNotRecorded(_) => "applied, not recorded",
            Self::WouldApply => "dry run: not applied",
            Self::Failed(_) => "failed",
            Self::Deferred => "deferred: the pass reached its deadline",
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
    pub requests: Vec<GuardRequest>,
}

/// Evaluates `policies` at `now`, in three phases, each batched where the ports allow:
///
/// 1. **Read.** One batched metric read for all of them (one per distinct period, since each
///    read covers whole periods of one length); in [`Mode::Act`], the resources' leases for
///    [`Ports::holder`] ([`StateStore::acquire_leases`]; a resource another evaluation holds is
///    not evaluated: [`Status::HeldBy`]); the capacities and remembered states of the leased
///    ones ([`CapacityControl::current_all`], [`StateStore::load_all`], read at once).
///    Then, for a policy with a `forecast`, its history when an hour has passed since it was
///    last read (see [`capstan_engine::forecast`]), kept in its state.
/// 2. **Decide**, every policy read at once, with the cross-resource guards and the answers to
///    their requests: [`decide_all`]. `all` is the whole policy set, so that users of a budget
///    that are not evaluated in this pass are still charged for.
/// 3. **Act** (in [`Mode::Act`]): the states with each change as their intent, saved together
///    ([`StateStore::save_all`]); the changes, up to [`Limits::max_in_flight`] at once; then
///    the states to remember ([`ResourceState::after`]), saved together after every
///    evaluation, not only after changes, since stabilization windows remember what the rules
///    asked for. Each save is written only while this pass still holds the lease: an intent
///    refused means the change is not made, a state after it refused is
///    [`Status::AppliedNotRecorded`]. Then the leases are released, together: those taken and
///    those whose taking failed (it may have taken effect, its answer lost), and once more
///    those whose release failed. A change is remembered at
///    the time [`Ports::clock`] gives when it is made, and a change for a paused policy or a
///    busy resource is refused here too, whatever decided it.
///
/// **Deadline.** No work starts after [`Limits::deadline`]: a pass that reaches it before
/// taking the leases evaluates nothing, and one that reaches it before a change is made does
/// not make it. Either way the policy's outcome is [`Status::Deferred`], nothing of it was
/// changed and its lease is released; the next pass evaluates it again. The deadline must
/// leave room for the calls already started and for saving and releasing (see
/// `capstan_aws::OPERATION_TIMEOUT`).
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
/// state, and takes no lease. Outcomes come back in the order of `policies`.
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
    if ports.past_deadline() {
        let outcomes = policies
            .iter()
            .map(|policy| Outcome::new(policy, None, Status::Deferred))
            .collect();
        return Pass {
            outcomes,
            requests: Vec::new(),
        };
    }
    let observations = read_metrics(policies, ports.metrics, now).await;
    let mut assessed = assess(policies, ports, mode).await;
    let (indices, mut due): (Vec<usize>, Vec<(&Policy, &mut ResourceState)>) = policies
        .iter()
        .zip(&mut assessed)
        .enumerate()
        .filter_map(|(index, (policy, assessment))| {
            let read = assessment.read.as_mut().ok()?;
            Some((index, (*policy, &mut read.state)))
        })
        .unzip();
    let warnings = history::refresh(&mut due, ports.metrics, now).await;
    for (index, warning) in indices.into_iter().zip(warnings) {
        assessed[index].warnings.extend(warning);
    }
    let subjects: Vec<Subject<'_>> = policies
        .iter()
        .zip(&assessed)
        .filter_map(|(policy, assessment)| {
            let read = assessment.read.as_ref().ok()?;
            Some(Subject {
                policy,
                current: &read.current,
                state: &read.state,
            })
        })
        .collect();
    let round = decide_all(&subjects, all, &observations, now);
    let decisions = round
        .decisions
        .into_iter()
        .map(|decision| (decision.policy.clone(), decision))
        .collect();
    let mut outcomes = act(policies, assessed, decisions, ports, mode).await;
    for (policy, outcome) in policies.iter().zip(&mut outcomes) {
        if outcome.decision.is_some() {
            outcome
                .warnings
                .extend(unread_metrics(policy, &observations, now));
        }
    }
    Pass {
        outcomes,
        requests: round.requests,
    }
}

/// A warning for each of `policy`'s metrics that could not be read: its rules held and
/// scale-in was blocked for it (see [`MetricData::Unavailable`]).
fn unread_metrics(policy: &Policy, observations: &Observations, now: DateTime<Utc>) -> Vec<String> {
    capstan_engine::reads([policy], now)
        .into_iter()
        .flat_map(|read| read.queries)
        .filter_map(|query| match observations.get(&query) {
            Some(MetricData::Unavailable(why)) => Some(format!(
                "{query} could not be read, so its rules held and scale-in was blocked: {why}"
            )),
            _ => None,
        })
        .collect()
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

/// One policy after the first phase.
struct Assessment {
    /// Whether this pass holds the resource's lease, to be given back after acting.
    holding: Holding,
    /// The resource's capacity and remembered state, or why they could not be read.
    read: std::result::Result<Read, Status>,
    /// What the reads found left behind.
    warnings: Vec<String>,
}

/// Whether a pass holds a resource's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// It does not: dry run, or another evaluation holds it.
    No,
    /// It took the lease.
    Yes,
    /// Taking it failed, perhaps after it took effect (an answer lost on the way back): it is
    /// given back like a lease held, if it turns out to be this pass's.
    Unknown,
}

/// What a policy's decision is made from, besides the metrics.
struct Read {
    current: CurrentCapacity,
    state: ResourceState,
}

/// A decision, and the remembered state acting on it starts from.
struct Decided {
    decision: Decision,
    state: ResourceState,
}

/// Takes the policies' leases (in [`Mode::Act`]) and reads the leased resources' capacities and
/// states: one assessment per policy, in order.
async fn assess<M, C, S>(
    policies: &[&Policy],
    ports: &Ports<'_, M, C, S>,
    mode: Mode,
) -> Vec<Assessment>
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let targets: Vec<Target> = policies
        .iter()
        .map(|policy| policy.target.clone())
        .collect();
    let leases: Vec<(Holding, std::result::Result<(), Status>)> = match mode {
        Mode::DryRun => targets.iter().map(|_| (Holding::No, Ok(()))).collect(),
        Mode::Act => ports
            .state
            .acquire_leases(&targets, ports.holder)
            .await
            .into_iter()
            .map(|lease| match lease {
                Ok(Lease::Acquired) => (Holding::Yes, Ok(())),
                Ok(Lease::HeldBy { holder, until }) => {
                    (Holding::No, Err(Status::HeldBy { holder, until }))
                }
                Err(error) => (
                    Holding::Unknown,
                    Err(Status::Failed(format!(
                        "cannot take the resource's lease, not acting: {error}"
                    ))),
                ),
            })
            .collect(),
    };
    let readable: Vec<Target> = targets
        .iter()
        .zip(&leases)
        .filter(|(_, (_, lease))| lease.is_ok())
        .map(|(target, _)| target.clone())
        .collect();
    let (currents, states) = join(
        ports.capacity.current_all(&readable),
        ports.state.load_all(&readable),
    )
    .await;
    let mut reads = currents.into_iter().zip(states);
    leases
        .into_iter()
        .map(|(holding, lease)| {
            if let Err(status) = lease {
                return Assessment {
                    holding,
                    read: Err(status),
                    warnings: Vec::new(),
                };
            }
            let (current, state) = reads.next().expect(ONE_ANSWER_EACH);
            let mut warnings = Vec::new();
            let read = settle(current, state, &mut warnings);
            Assessment {
                holding,
                read: read.map_err(Status::Failed),
                warnings,
            }
        })
        .collect()
}

/// A policy's capacity and state as read, with an intent left behind settled; the reason when
/// a read failed.
fn settle<CE: fmt::Display, SE: fmt::Display>(
    current: std::result::Result<CurrentCapacity, CE>,
    state: std::result::Result<ResourceState, SE>,
    warnings: &mut Vec<String>,
) -> std::result::Result<Read, String> {
    let current = current.map_err(|error| error.to_string())?;
    let mut state =
        state.map_err(|error| format!("cannot read cooldown state, not acting: {error}"))?;
    if let Some(made) = state.reconcile(&current) {
        warnings.push(format!(
            "an earlier evaluation changed the capacity from {} to {} at {} but stopped before recording it; counted as made",
            made.from, made.to, made.at
        ));
    }
    Ok(Read { current, state })
}

/// Where one policy stands while acting.
enum Step {
    /// Its outcome is known.
    Done(Outcome),
    /// To be changed, remembering `change`: first the intent, then the change.
    Change(Decided, Change),
    /// The state after it to save, with the change made, if one was, and the status it then has.
    Remember(Decided, Option<Change>, Status),
}

/// The third phase over every assessed policy: one outcome per policy, in order.
async fn act<M, C, S>(
    policies: &[&Policy],
    assessed: Vec<Assessment>,
    mut decisions: BTreeMap<String, Decision>,
    ports: &Ports<'_, M, C, S>,
    mode: Mode,
) -> Vec<Outcome>
where
    C: CapacityControl + Sync,
    S: StateStore + Sync,
{
    let late = ports.past_deadline();
    let mut leased = Vec::new();
    let mut found = Vec::with_capacity(policies.len());
    let mut steps: Vec<Step> = policies
        .iter()
        .zip(assessed)
        .enumerate()
        .map(|(index, (policy, assessment))| {
            if assessment.holding != Holding::No {
                leased.push((index, assessment.holding));
            }
            found.push(assessment.warnings);
            let decided = match assessment.read {
                Err(status) => return Step::Done(Outcome::new(policy, None, status)),
                Ok(read) => Decided {
                    decision: decisions
                        .remove(&policy.name)
                        .expect("the engine decides once for each policy read"),
                    state: read.state,
                },
            };
            let done = |decided: Decided, status| {
                Step::Done(Outcome::new(policy, Some(decided.decision), status))
            };
            if let Some(why) = refusal(policy, &decided.decision) {
                return done(decided, Status::Failed(why));
            }
            match (mode, decided.decision.change()) {
                (Mode::DryRun, None) => done(decided, Status::Unchanged),
                (Mode::DryRun, Some(_)) => done(decided, Status::WouldApply),
                (Mode::Act, None) => Step::Remember(decided, None, Status::Unchanged),
                (Mode::Act, Some(_)) if late => done(decided, Status::Deferred),
                (Mode::Act, Some((direction, to))) => {
                    let change = Change {
                        at: (ports.clock)(),
                        direction,
                        from: decided.decision.current,
                        to,
                    };
                    Step::Change(decided, change)
                }
            }
        })
        .collect();
    if mode == Mode::Act {
        steps = intend(policies, steps, ports).await;
        steps = make_changes(policies, steps, ports).await;
        steps = remember(policies, steps, ports).await;
    }
    let mut outcomes: Vec<Outcome> = steps
        .into_iter()
        .zip(found)
        .map(|(step, mut warnings)| {
            let Step::Done(mut outcome) = step else {
                unreachable!("every step is done once its state is remembered")
            };
            warnings.append(&mut outcome.warnings);
            outcome.warnings = warnings;
            outcome
        })
        .collect();
    let targets: Vec<Target> = leased
        .iter()
        .map(|&(index, _)| policies[index].target.clone())
        .collect();
    let released = release(&targets, ports).await;
    for ((index, holding), answer) in leased.into_iter().zip(released) {
        outcomes[index]
            .warnings
            .extend(release_warning(holding, answer));
    }
    outcomes
}

/// Gives back the leases of `targets`, together, and once more those whose first release
/// failed, unless the deadline has passed: a lease left behind holds its resource until it
/// expires.
async fn release<M, C, S>(
    targets: &[Target],
    ports: &Ports<'_, M, C, S>,
) -> Vec<std::result::Result<bool, S::Error>>
where
    S: StateStore + Sync,
{
    let mut released = ports.state.release_leases(targets, ports.holder).await;
    let again: Vec<usize> = (0..released.len())
        .filter(|&index| released[index].is_err())
        .collect();
    if again.is_empty() || ports.past_deadline() {
        return released;
    }
    let retried: Vec<Target> = again.iter().map(|&index| targets[index].clone()).collect();
    let answers = ports.state.release_leases(&retried, ports.holder).await;
    for (index, answer) in again.into_iter().zip(answers) {
        released[index] = answer;
    }
    released
}

/// Saves, together, each change's state with the change as its intent: a change whose intent
/// could not be written down is not made.
async fn intend<M, C, S>(
    policies: &[&Policy],
    steps: Vec<Step>,
    ports: &Ports<'_, M, C, S>,
) -> Vec<Step>
where
    S: StateStore + Sync,
{
    save_together(
        policies,
        steps,
        ports,
        |_, step| match step {
            Step::Change(decided, change) => Some(decided.state.intending(*change)),
            _ => None,
        },
        |policy, step, saved| match (step, saved) {
            (step, Ok(())) => step,
            (Step::Change(decided, _), Err(error)) => failed(
                policy,
                decided,
                format!("cannot write down the change before making it, not acting: {error}"),
            ),
            (_, Err(_)) => unreachable!("only changes have an intent"),
        },
    )
    .await
}

/// Makes the changes whose intents are written down, up to [`Limits::max_in_flight`] at once,
/// those of the resources changed longest ago (or never) first, so that a resource deferred
/// at one deadline is among the first changed in the next pass. One not started by the
/// deadline is deferred and remembered as unchanged, which clears its intent; one that failed
/// is failed, its intent left for the next evaluation to settle.
async fn make_changes<M, C, S>(
    policies: &[&Policy],
    steps: Vec<Step>,
    ports: &Ports<'_, M, C, S>,
) -> Vec<Step>
where
    C: CapacityControl + Sync,
{
    let mut changes: Vec<(usize, u32, Option<DateTime<Utc>>)> = steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| match step {
            Step::Change(decided, change) => Some((
                index,
                change.to,
                decided.state.last_change().map(|last| last.at),
            )),
            _ => None,
        })
        .collect();
    changes.sort_by_key(|&(_, _, last)| last);
    // Per change, by its index: `None` when the deadline came before it was started.
    let mut made: BTreeMap<usize, Option<std::result::Result<(), String>>> = stream::iter(changes)
        .map(|(index, desired, _)| async move {
            if ports.past_deadline() {
                return (index, None);
            }
            let answer = ports
                .capacity
                .set_desired(&policies[index].target, desired)
                .await;
            (index, Some(answer.map_err(|error| error.to_string())))
        })
        .buffered(ports.limits.max_in_flight.max(1))
        .collect()
        .await;
    policies
        .iter()
        .zip(steps)
        .enumerate()
        .map(|(index, (policy, step))| match step {
            Step::Change(decided, change) => match made.remove(&index).expect(ONE_ANSWER_EACH) {
                None => Step::Remember(decided, None, Status::Deferred),
                Some(Ok(())) => Step::Remember(decided, Some(change), Status::Applied),
                Some(Err(why)) => failed(policy, decided, why),
            },
            step => step,
        })
        .collect()
}

/// Saves, together, the state to remember of every policy evaluated.
async fn remember<M, C, S>(
    policies: &[&Policy],
    steps: Vec<Step>,
    ports: &Ports<'_, M, C, S>,
) -> Vec<Step>
where
    S: StateStore + Sync,
{
    save_together(
        policies,
        steps,
        ports,
        |policy, step| match step {
            Step::Remember(decided, applied, _) => {
                Some(decided.state.after(policy, &decided.decision, *applied))
            }
            _ => None,
        },
        |policy, step, saved| {
            let Step::Remember(decided, applied, status) = step else {
                unreachable!("only states to remember are saved")
            };
            let mut outcome = Outcome::new(policy, Some(decided.decision), status);
            match (applied, saved) {
                (_, Ok(())) => {}
                (None, Err(error)) => outcome
                    .warnings
                    .push(format!("the state could not be saved: {error}")),
                (Some(_), Err(error)) => {
                    outcome.result = Status::AppliedNotRecorded(error.to_string());
                }
            }
            Step::Done(outcome)
        },
    )
    .await
}

/// Saves, in one [`StateStore::save_all`], the state `state_of` gives for each step that has
/// one, then turns each of those steps into what `answered` makes of it and its save's
/// answer; the other steps stay as they are.
async fn save_together<M, C, S>(
    policies: &[&Policy],
    steps: Vec<Step>,
    ports: &Ports<'_, M, C, S>,
    state_of: impl Fn(&Policy, &Step) -> Option<ResourceState>,
    answered: impl Fn(&Policy, Step, std::result::Result<(), SaveError<S::Error>>) -> Step,
) -> Vec<Step>
where
    S: StateStore + Sync,
{
    let mut saving: Vec<(Target, ResourceState)> = Vec::new();
    let has_state: Vec<bool> = policies
        .iter()
        .zip(&steps)
        .map(|(policy, step)| {
            let state = state_of(policy, step);
            let has = state.is_some();
            saving.extend(state.map(|state| (policy.target.clone(), state)));
            has
        })
        .collect();
    let mut saved = ports
        .state
        .save_all(ports.holder, &saving)
        .await
        .into_iter();
    policies
        .iter()
        .zip(steps)
        .zip(has_state)
        .map(|((policy, step), has_state)| {
            if has_state {
                answered(policy, step, saved.next().expect(ONE_ANSWER_EACH))
            } else {
                step
            }
        })
        .collect()
}

/// What the batched ports promise: one answer for each item asked about, in order.
const ONE_ANSWER_EACH: &str = "the ports answer once for each item, in order";

/// A decided policy that failed, for `why`.
fn failed(policy: &Policy, decided: Decided, why: String) -> Step {
    Step::Done(Outcome::new(
        policy,
        Some(decided.decision),
        Status::Failed(why),
    ))
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

/// The warning, if any, of a lease given back, by whether the pass knew it held it.
fn release_warning<E: fmt::Display>(
    holding: Holding,
    released: std::result::Result<bool, E>,
) -> Option<String> {
    match (holding, released) {
        (Holding::Yes, Ok(true)) | (Holding::Unknown | Holding::No, Ok(false)) => None,
        (Holding::Yes, Ok(false)) => {
            Some("the lease had expired and was taken by another evaluation".to_owned())
        }
        (Holding::Unknown | Holding::No, Ok(true)) => Some(
            "the lease was taken although the answer to taking it was lost; it was given back"
                .to_owned(),
        ),
        (_, Err(error)) => Some(format!(
            "the lease could not be released and stays until it expires: {error}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use capstan_engine::{CurrentCapacity, ResourceState, decide};
    use capstan_policy::model::{Capacity, Policy, Target};
    use capstan_policy::test_util;

    use super::refusal;

    /// A policy with no rules at all, at capacity 1..=10.
    fn policy() -> Policy {
        test_util::policy("web", Target::AutoscalingGroup { name: "web".into() })
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
