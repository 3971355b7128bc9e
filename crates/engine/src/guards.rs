//! Cross-resource guards, applied over the decisions of a whole policy set in one pure pass
//! ([`crate::decide_all`]), one guard per module:
//!
//! - [`partitions`]: consumers never grow above their topic's partitions, and ask for more
//!   partitions while their lag grows;
//! - [`shared_limits`]: resources drawing on one room (an MSK cluster's partition replicas)
//!   grow within it together;
//! - [`connection_budget`]: a database's connections are shared by the services that use it,
//!   read replicas adding to the readers' share.
//!
//! Two rules hold for every guard:
//!
//! - A guard never changes a [frozen](Decision::frozen) decision: a paused policy's, or a busy
//!   resource's.
//! - A guard never lowers a resource below its current capacity. It only holds growth back;
//!   where capacity must really be removed (a breached connection budget), it asks the policy
//!   for that with a [`GuardRequest`], which the policy answers like a rule's scale-in, through
//!   every scale-in guard (see [`crate::decide_all`]). So no guard ever acts on the strength of
//!   a read that failed or a decision that is not in the pass.
//!
//! Policies coupled by a guard ([`coupled`]) are woken together, so that a pass woken by one
//! user's alarm sees the others too, and a tick fanned out over several passes keeps them in
//! one.
//!
//! Pass the whole policy set as `policies`: a policy absent from it is not known to the guards
//! at all.

pub mod connection_budget;
mod coupling;
pub mod partitions;
mod request;
pub mod shared_limits;

use std::collections::BTreeMap;

use serde::Serialize;

use capstan_policy::model::{Database, Policy, Target};

use crate::decision::{Action, Clamp, ClampKind, Decision};

pub use connection_budget::{DEFAULT_DRAIN, drain};
pub use coupling::{Coupling, coupled, couplings};
pub use request::GuardRequest;

/// The decisions after the guards, and what the guards ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Guarded {
    /// The decisions, in the order given.
    pub decisions: Vec<Decision>,
    /// Requests to policies.
    pub requests: Vec<GuardRequest>,
}

/// Applies the cross-resource guards to `decisions`, made for `policies` (matched by name).
/// Deterministic: the result depends on neither order.
pub(crate) fn apply_guards(policies: &[&Policy], mut decisions: Vec<Decision>) -> Guarded {
    let by_name: BTreeMap<&str, &Policy> = policies.iter().map(|p| (p.name.as_str(), *p)).collect();
    let databases: BTreeMap<&str, &Database> = policies
        .iter()
        .flat_map(|p| p.databases.iter().map(|(name, db)| (name.as_str(), db)))
        .collect();
    let mut requests = Vec::new();
    partitions::apply(&by_name, &mut decisions, &mut requests);
    shared_limits::apply(&by_name, &mut decisions);
    for (name, database) in databases {
        requests.extend(connection_budget::apply(
            name,
            database,
            policies,
            &by_name,
            &mut decisions,
        ));
    }
    Guarded {
        decisions,
        requests,
    }
}

/// The source whose read replicas `policy` scales, if it scales replicas.
fn replicas_of(policy: &Policy) -> Option<&str> {
    match &policy.target {
        Target::RdsReplicas { source } => Some(source),
        _ => None,
    }
}

/// Lowers `decision` to `to`, recording why.
fn hold_back(decision: &mut Decision, kind: ClampKind, to: u32, detail: String) {
    let clamp = Clamp {
        kind,
        from: decision.desired,
        to,
        detail,
    };
    decision.explanation.summary = format!("{}; {clamp}", decision.explanation.summary);
    decision.explanation.clamps.push(clamp);
    decision.desired = to;
    decision.action = Action::between(decision.current, to);
}
