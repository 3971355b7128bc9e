//! capstan's decision engine: pure and synchronous, with the clock passed in.
//!
//! [`decide()`] turns a validated policy, the metric datapoints read for it, the resource's
//! current capacity and the memory of earlier actions into a [`Decision`] that explains itself.
//! The engine knows nothing of AWS: callers read and act through the traits in [`ports`], and
//! [`reads`] tells them what to read.
//!
//! ```no_run
//! use capstan_engine::ports::{CapacityControl, Lease, MetricSource, StateStore};
//! use capstan_engine::{LastAction, Observations, decide, model::Policy, reads};
//! use chrono::{DateTime, Utc};
//!
//! /// One evaluation of one policy by `me`; errors are left to the caller.
//! async fn evaluate(
//!     policy: &Policy,
//!     metrics: &impl MetricSource,
//!     resources: &impl CapacityControl,
//!     memory: &impl StateStore,
//!     me: &str,
//!     now: DateTime<Utc>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     if memory.acquire_lease(&policy.target, me).await? != Lease::Acquired {
//!         return Ok(()); // another evaluation is acting on the resource
//!     }
//!     let mut observations = Observations::new();
//!     for read in reads([policy], now) {
//!         observations.extend(metrics.read(&read.queries, read.start, read.end).await?);
//!     }
//!     let current = resources.current(&policy.target).await?;
//!     let state = memory.load(&policy.target).await?;
//!     let decision = decide(policy, &observations, &current, &state, now);
//!     println!("{decision}"); // e.g. "web [ecs_service prod/web]: 4 -> 6 (scale_out[0] fired: ...)"
//!     let mut applied = None;
//!     if let Some((direction, desired)) = decision.change() {
//!         resources.set_desired(&policy.target, desired).await?;
//!         applied = Some(LastAction { at: now, direction, from: decision.current, to: desired });
//!     }
//!     memory.save(&policy.target, me, &state.after(policy, &decision, applied)).await?;
//!     memory.release_lease(&policy.target, me).await?;
//!     Ok(())
//! }
//! ```
//!
//! How a decision is made is described on [`decide()`]; the rules for each step live in the
//! engine's private modules (`window`, `track`, `schedule`, `clamp`), documented where they are
//! implemented. Guards that span policies (a database's connection budget, a topic's
//! partitions) run afterwards over all the decisions of a pass: see [`apply_guards()`].

pub mod alarms;
mod clamp;
mod decide;
pub mod decision;
pub mod guards;
#[cfg(test)]
mod late_data;
pub mod observe;
pub mod ports;
#[cfg(test)]
mod properties;
mod read;
mod replicas;
mod requests;
mod schedule;
#[cfg(test)]
mod testing;
mod track;
mod window;

pub use capstan_policy::model;
pub use decide::{decide, decide_answering};
pub use decision::{
    Action, Clamp, ClampKind, Decision, Explanation, RuleEvaluation, RuleOutcome, ScheduleWindow,
    TrackEvaluation, TrackOutcome,
};
pub use guards::{Guarded, Request, apply_guards, coupled};
pub use observe::{
    CurrentCapacity, Datapoint, Direction, LastAction, MetricData, Observations, Recommendation,
    ResourceState, Share,
};
pub use read::{MetricRead, reads};
