//! What the engine is told about the world: metric datapoints, the resource's current capacity
//! and the memory of earlier actions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use capstan_policy::model::MetricQuery;

/// One value of a metric for the period starting at `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Start of the period.
    pub timestamp: DateTime<Utc>,
    /// The statistic's value over the period.
    pub value: f64,
}

/// The outcome of reading one metric: its datapoints, or why they could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricData {
    /// Datapoints in ascending time order; periods with no data are absent.
    Series(Vec<Datapoint>),
    /// The read failed; rules on this metric cannot fire and scale-in is blocked.
    Unavailable(String),
}

/// Every metric read for one evaluation, by query.
pub type Observations = BTreeMap<MetricQuery, MetricData>;

/// A resource's capacity as its service reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentCapacity {
    /// The desired count now set on the resource.
    pub desired: u32,
    /// The resource's own lower bound, if it has one (an Auto Scaling group's `MinSize`).
    pub resource_min: Option<u32>,
    /// The resource's own upper bound, if it has one (an Auto Scaling group's `MaxSize`).
    pub resource_max: Option<u32>,
    /// Why the resource must not be changed now, e.g. an ECS deployment in progress.
    pub busy: Option<String>,
}

/// Which way a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Capacity goes up.
    Out,
    /// Capacity goes down.
    In,
}

/// The last change capstan made to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Which way it went.
    pub direction: Direction,
    /// Capacity before the change.
    pub from: u32,
    /// Capacity after the change.
    pub to: u32,
}

/// What capstan remembers about a resource between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The last change capstan made, which starts the cooldowns.
    pub last_action: Option<LastAction>,
}
