//! One capstan evaluation pass, shared by the evaluator Lambda and the CLI.
//!
//! A [`Trigger`] (an alarm or a scheduled tick) selects the policies to evaluate; [`evaluate`]
//! reads their metrics in one batch through a [`MetricSource`], reads each resource's capacity
//! and remembered state, asks the engine for a [`Decision`] per policy, applies the
//! cross-resource guards to all of them at once, and, unless told to only look, applies each
//! through [`CapacityControl`] and saves what to remember in the [`StateStore`]. The alarm is
//! only the trigger: metrics are always read fresh. A set too large for one pass is split by
//! [`shards`], each shard evaluated in a pass of its own, keeping together what a guard reads.
//!
//! ```no_run
//! # async fn example<M, C, S>(ports: capstan_runner::Ports<'_, M, C, S>, policies: &capstan_policy::PolicySet)
//! # where M: capstan_runner::ports::MetricSource + Sync, C: capstan_runner::ports::CapacityControl + Sync,
//! #       S: capstan_runner::ports::StateStore + Sync {
//! use capstan_runner::{evaluate, Mode, Trigger};
//! let now = chrono::Utc::now();
//! let all: Vec<_> = policies.policies().iter().collect();
//! let woken = Trigger::Tick { at: now }.select(policies.policies());
//! for outcome in evaluate(&woken, &all, &ports, now, Mode::Act).await.outcomes {
//!     println!("{outcome}");
//! }
//! # }
//! ```
//!
//! [`MetricSource`]: ports::MetricSource
//! [`CapacityControl`]: ports::CapacityControl
//! [`StateStore`]: ports::StateStore
//! [`Decision`]: capstan_engine::Decision

mod history;
pub mod memory;
mod pass;
pub mod ports;
mod shard;
mod trigger;

pub use pass::{Limits, Mode, Outcome, Pass, Ports, Status, evaluate};
pub use shard::{Shard, shards};
pub use trigger::{AlarmMetric, AlarmTrigger, ShardTrigger, Trigger};
