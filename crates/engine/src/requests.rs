//! How a policy answers the cross-resource guards' [`Request`]s addressed to it (see
//! [`Request::addressee`]), in [`crate::decide_all`]:
//!
//! - **Growth**: a [`Request::DatabaseConnections`] asks an `rds_replicas` policy for one
//!   replica more than there are; a [`Request::PartitionGrowth`] asks an `msk_topic` policy for
//!   the partitions it names. The largest ask is a proposal like a rule's scale-out.
//! - **A ceiling**: a [`Request::ShedConnections`] asks a user of a database whose budget is
//!   breached to go down to at most the units it names. The lowest ceiling is a proposal like a
//!   rule's scale-in: it waits while scale-in is blocked, and every scale-in guard applies.

use capstan_policy::model::Policy;

use crate::guards::Request;

/// The largest capacity the growth `requests` ask of `policy`, whose resource is at `current`,
/// and why.
pub(crate) fn growth(policy: &Policy, current: u32, requests: &[Request]) -> Option<(u32, String)> {
    addressed(policy, requests)
        .filter_map(|request| match request {
            Request::DatabaseConnections {
                database,
                wanted,
                budget,
                ..
            } => Some((
                current.saturating_add(1),
                format!("{database}'s users want {wanted} connections of {budget}"),
            )),
            Request::PartitionGrowth { consumer, to, .. } => Some((
                *to,
                format!("{consumer} is held back by partitions while its lag grows"),
            )),
            Request::ShedConnections { .. } => None,
        })
        .max_by_key(|(wanted, _)| *wanted)
}

/// The lowest ceiling the `requests` set for `policy`, and why.
pub(crate) fn ceiling(policy: &Policy, requests: &[Request]) -> Option<(u32, String)> {
    addressed(policy, requests)
        .filter_map(|request| match request {
            Request::ShedConnections {
                database,
                to,
                connections,
                budget,
                ..
            } => Some((
                *to,
                format!(
                    "{database}'s users are set to hold {connections} connections, above its budget of {budget}"
                ),
            )),
            Request::DatabaseConnections { .. } | Request::PartitionGrowth { .. } => None,
        })
        .min_by_key(|(to, _)| *to)
}

/// The requests addressed to `policy`.
fn addressed<'a>(policy: &'a Policy, requests: &'a [Request]) -> impl Iterator<Item = &'a Request> {
    requests
        .iter()
        .filter(|request| request.addressee() == Some(policy.name.as_str()))
}
