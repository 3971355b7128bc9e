//! The ports a pass reads and acts through, which AWS (or a simulation) plugs into: the pass
//! reads through them, hands the readings to the engine ([`capstan_engine::decide_all`]) and
//! acts on the decisions through them. Each AWS adapter lives in its own module of the
//! `capstan-aws` crate.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use capstan_policy::model::{MetricQuery, Target};

use capstan_engine::{CurrentCapacity, Observations, ResourceState};

/// Reads metric datapoints.
pub trait MetricSource {
    /// Why a read failed as a whole.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads every query over `[start, end)`. Each distinct query is asked once; a query whose
    /// own read failed comes back as [`capstan_engine::MetricData::Unavailable`].
    fn read(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> impl Future<Output = Result<Observations, Self::Error>> + Send;
}

/// Reads and sets a resource's capacity.
pub trait CapacityControl {
    /// Why a read or a change failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The resource's capacity now.
    fn current(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<CurrentCapacity, Self::Error>> + Send;

    /// The capacity of each of `targets` now: one answer per target, in the order given. A
    /// target missing from a batched answer is that target's error, not the others'. By
    /// default, one [`current`](Self::current) after another; adapters whose API reads many
    /// resources per call batch them.
    fn current_all(
        &self,
        targets: &[Target],
    ) -> impl Future<Output = Vec<Result<CurrentCapacity, Self::Error>>> + Send
    where
        Self: Sync,
    {
        one_after_another(targets, move |target| self.current(target))
    }

    /// Sets the resource's desired capacity.
    fn set_desired(
        &self,
        target: &Target,
        desired: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Remembers, per resource, what the guards need from earlier evaluations, and keeps
/// evaluations of one resource from acting at once.
///
/// An acting evaluation of a resource goes: [`acquire_lease`](Self::acquire_lease),
/// [`load`](Self::load), decide, [`save`](Self::save) the state with the change as its
/// [intent](ResourceState::intent), make the change, [`save`](Self::save) the state after it,
/// [`release_lease`](Self::release_lease). Every save is fenced by the lease: it is written only
/// while its writer still holds the resource's lease, so an evaluation that lost its lease (it
/// ran past the lease's expiry and another took it) changes nothing.
pub trait StateStore {
    /// Why a read or a write failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The remembered state; the default state for a resource never evaluated.
    fn load(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<ResourceState, Self::Error>> + Send;

    /// The remembered state of each of `targets`: one answer per target, in the order given.
    /// By default, one [`load`](Self::load) after another.
    fn load_all(
        &self,
        targets: &[Target],
    ) -> impl Future<Output = Vec<Result<ResourceState, Self::Error>>> + Send
    where
        Self: Sync,
    {
        one_after_another(targets, move |target| self.load(target))
    }

    /// Stores the state after an evaluation (see [`ResourceState::after`]), replacing the
    /// previous one, if `holder` holds the resource's lease at the time of the write; otherwise
    /// nothing is written and the answer is [`SaveError::LeaseLost`].
    fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> impl Future<Output = Result<(), SaveError<Self::Error>>> + Send;

    /// [`save`](Self::save)s each state for `holder`: one answer per state, in the order given,
    /// each fenced by its own resource's lease. By default, one save after another.
    fn save_all(
        &self,
        holder: &str,
        states: &[(Target, ResourceState)],
    ) -> impl Future<Output = Vec<Result<(), SaveError<Self::Error>>>> + Send
    where
        Self: Sync,
    {
        one_after_another(states, move |(target, state)| {
            self.save(target, holder, state)
        })
    }

    /// Takes the resource's lease for `holder`, unless another holder has it: only the holder of
    /// the lease may act on the resource. Taking a lease one already holds renews it.
    fn acquire_lease(
        &self,
        target: &Target,
        holder: &str,
    ) -> impl Future<Output = Result<Lease, Self::Error>> + Send;

    /// Gives the lease back, if `holder` still has it. Answers whether it did: false when the
    /// lease had expired and was taken by another holder (or never was `holder`'s).
    fn release_lease(
        &self,
        target: &Target,
        holder: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// [`acquire_lease`](Self::acquire_lease) for each of `targets`: one answer per target, in
    /// the order given. By default, one after another.
    fn acquire_leases(
        &self,
        targets: &[Target],
        holder: &str,
    ) -> impl Future<Output = Vec<Result<Lease, Self::Error>>> + Send
    where
        Self: Sync,
    {
        one_after_another(targets, move |target| self.acquire_lease(target, holder))
    }

    /// [`release_lease`](Self::release_lease) for each of `targets`: one answer per target, in
    /// the order given. By default, one after another.
    fn release_leases(
        &self,
        targets: &[Target],
        holder: &str,
    ) -> impl Future<Output = Vec<Result<bool, Self::Error>>> + Send
    where
        Self: Sync,
    {
        one_after_another(targets, move |target| self.release_lease(target, holder))
    }
}

/// Each of `items` through `each`, one after another: the batched methods' default.
async fn one_after_another<'a, T, A, F>(items: &'a [T], each: impl Fn(&'a T) -> F) -> Vec<A>
where
    F: Future<Output = A>,
{
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        answers.push(each(item).await);
    }
    answers
}

/// Why [`StateStore::save`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SaveError<E> {
    /// The writer no longer holds the resource's lease.
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
    /// The write failed.
    #[error(transparent)]
    Store(E),
}

/// A state write refused because its writer no longer holds the resource's lease: what the
/// lease is now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLost {
    /// The writer's lease expired then, and no one has taken it since.
    #[error("the lease was lost: it expired at {0}")]
    Expired(DateTime<Utc>),
    /// Another holder has it.
    #[error("the lease was lost: {holder} holds it until {until}")]
    HeldBy {
        /// Who holds it, as they named themselves.
        holder: String,
        /// When it expires unless released or renewed first.
        until: DateTime<Utc>,
    },
    /// No one holds it: it was given back, or deleted some time after it expired.
    #[error("the lease was lost: no one holds it")]
    Free,
}

/// The answer to [`StateStore::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lease {
    /// The caller holds the lease now.
    Acquired,
    /// Another evaluation holds it.
    HeldBy {
        /// Who holds it, as they named themselves.
        holder: String,
        /// When it expires unless released or renewed first.
        until: DateTime<Utc>,
    },
}
