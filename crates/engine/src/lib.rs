//! capstan's decision engine: pure and synchronous, with the clock passed in.
//!
//! [`decide()`] turns a validated policy, the metric datapoints read for it, the resource's
//! current capacity and the memory of earlier changes into a [`Decision`] that explains itself.
//! The engine knows nothing of AWS, nor of async: the caller reads what [`reads`] tells it to,
//! hands the readings to [`decide_all`] for every policy of a pass at once (the cross-resource
//! guards included) and acts on the decisions.
//!
//! ```
//! use capstan_engine::{CurrentCapacity, Observations, ResourceState, Subject, decide_all};
//! use capstan_policy::{PolicySet, Source};
//!
//! let text = "version: 1\nname: web\ntarget: { autoscaling_group: { name: web } }\n\
//!             capacity: { min: 2, max: 10 }\n";
//! let source = Source { path: "web.yaml".into(), text: text.into() };
//! let set = PolicySet::from_sources(vec![source]).expect("a valid policy");
//! let web = &set.policies()[0];
//! let current = CurrentCapacity { desired: 1, ..CurrentCapacity::default() };
//! let state = ResourceState::default();
//! let now = chrono::Utc::now();
//! let round = decide_all(
//!     &[Subject { policy: web, current: &current, state: &state }],
//!     &[web],
//!     &Observations::new(),
//!     now,
//! );
//! // Below its bounds: brought to the minimum, and the decision says why.
//! assert_eq!(round.decisions[0].desired, 2);
//! println!("{}", round.decisions[0]);
//! ```
//!
//! How a decision is made is described on [`decide()`]; the rules for each step live in the
//! engine's private modules (`window`, `track`, `schedule`, `clamp`), documented where they are
//! implemented, and the explanation's one-sentence summary is written in `summary`. Guards that
//! span policies (a database's connection budget, a topic's partitions, a cluster's shared
//! room) run afterwards over all the decisions of a pass, one per module of [`guards`]: see
//! [`decide_all()`]. A policy's `forecast` floor is found by [`forecast`], from the history the
//! caller keeps in the resource's state and refreshes when [`forecast::history_read`] says so.
//! On an `rds_replicas` policy it is the floor of the replica plan (`ahead_of: forecast`, in the
//! private `replicas` module), which waits for a quiet source.

pub mod alarms;
mod choice;
mod clamp;
mod decide;
pub mod decision;
pub mod flap;
pub mod forecast;
pub mod guards;
#[cfg(test)]
mod late_data;
pub mod math;
pub mod observe;
#[cfg(test)]
mod properties;
mod read;
mod replicas;
mod requests;
mod round;
mod schedule;
mod summary;
#[cfg(test)]
mod testing;
mod track;
mod window;

pub use capstan_policy::model;
pub use decide::decide;
pub use decision::{
    Action, Clamp, ClampKind, Decision, Explanation, ForecastEvaluation, ForecastOutcome,
    RuleEvaluation, RuleOutcome, ScheduleWindow, TrackEvaluation, TrackOutcome,
};
pub use flap::{FLAP_MEMORY, FLAP_WINDOW};
pub use guards::{Coupling, GuardRequest, coupled, couplings};
pub use observe::{
    Change, CurrentCapacity, Datapoint, Direction, MetricData, Observations, Recommendation,
    ResourceState, Share,
};
pub use read::{MetricRead, reads};
pub use round::{Round, Subject, decide_all};
