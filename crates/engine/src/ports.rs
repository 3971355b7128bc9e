//! The ports the engine's callers plug AWS (or a simulation) into. The engine itself never calls
//! them: the caller reads through them, hands the results to [`crate::decide()`] and acts on the
//! decision through them. Each adapter lives in its own module of the `capstan-aws` crate.

use std::future::Future;

use chrono::{DateTime, Utc};

use capstan_policy::model::{MetricQuery, Target};

use crate::observe::{CurrentCapacity, Observations, ResourceState};

/// Reads metric datapoints.
pub trait MetricSource {
    /// Why a read failed as a whole.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads every query over `[start, end)`. Each distinct query is asked once; a query whose
    /// own read failed comes back as [`crate::MetricData::Unavailable`].
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

    /// Sets the resource's desired capacity.
    fn set_desired(
        &self,
        target: &Target,
        desired: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Remembers, per resource, what the guards need from earlier evaluations.
pub trait StateStore {
    /// Why a read or a write failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The remembered state; the default state for a resource never evaluated.
    fn load(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<ResourceState, Self::Error>> + Send;

    /// Stores the state after an evaluation (see [`ResourceState::after`]), replacing the
    /// previous one.
    fn save(
        &self,
        target: &Target,
        state: &ResourceState,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
