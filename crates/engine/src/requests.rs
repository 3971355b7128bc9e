//! How a policy answers the cross-resource guards' [`GuardRequest`]s addressed to it (see
//! [`GuardRequest::addressee`]), in [`crate::decide_all`]:
//!
//! - **Growth**: a [`GuardRequest::DatabaseConnections`] asks an `rds_replicas` policy for one
//!   replica more than there are; a [`GuardRequest::PartitionGrowth`] asks an `msk_topic`
//!   policy for the partitions it names. The largest ask is a proposal like a rule's scale-out.
//! - **A ceiling**: a [`GuardRequest::ShedConnections`] asks a user of a database whose budget
//!   is breached to go down to at most the units it names. The lowest ceiling is a proposal
//!   like a rule's scale-in: it waits while scale-in is blocked, and every scale-in guard
//!   applies.

use capstan_policy::model::Policy;

use crate::guards::GuardRequest;

/// The largest capacity the growth `requests` ask of `policy`, whose resource is at `current`,
/// and why.
pub(crate) fn growth(
    policy: &Policy,
    current: u32,
    requests: &[GuardRequest],
) -> Option<(u32, String)> {
    addressed(policy, requests)
        .filter_map(|request| match request {
            GuardRequest::DatabaseConnections {
                database,
                wanted,
                budget,
                ..
            } => Some((
                current.saturating_add(1),
                format!("{database}'s users want {wanted} connections of {budget}"),
            )),
            GuardRequest::PartitionGrowth { consumer, to, .. } => Some((
                *to,
                format!("{consumer} is held back by partitions while its lag grows"),
            )),
            GuardRequest::ShedConnections { .. } => None,
        })
        .max_by_key(|(wanted, _)| *wanted)
}

/// The lowest ceiling the `requests` set for `policy`, and why.
pub(crate) fn ceiling(policy: &Policy, requests: &[GuardRequest]) -> Option<(u32, String)> {
    addressed(policy, requests)
        .filter_map(|request| match request {
            GuardRequest::ShedConnections {
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
            GuardRequest::DatabaseConnections { .. } | GuardRequest::PartitionGrowth { .. } => None,
        })
        .min_by_key(|(to, _)| *to)
}

/// The requests addressed to `policy`.
fn addressed<'a>(
    policy: &'a Policy,
    requests: &'a [GuardRequest],
) -> impl Iterator<Item = &'a GuardRequest> {
    requests
        .iter()
        .filter(|request| request.addressee() == Some(policy.name.as_str()))
}

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Duration, Policy, Target};

    use super::*;
    use crate::decide::decide_answering;
    use crate::decision::ClampKind;
    use crate::observe::{Change, CurrentCapacity, Direction, ResourceState};
    use crate::testing::{capacity, now, user};

    #[test]
    fn shedding_connections_is_a_scale_in_through_every_scale_in_guard() {
        let mut orders = user("orders", 0, 1);
        orders.guards.max_step_in = Some(1);
        orders.guards.cooldown_in = Duration::from_secs(600);
        let request = [GuardRequest::ShedConnections {
            policy: "orders".into(),
            database: "orders-db".into(),
            to: 1,
            connections: 300,
            budget: 200,
        }];
        let answer =
            |orders: &Policy, state: &ResourceState, observations: &crate::Observations| {
                decide_answering(orders, observations, &capacity(3), state, now(), &request)
            };
        let none = ResourceState::default();
        let stepped = answer(&orders, &none, &Default::default());
        assert_eq!(stepped.change(), Some((Direction::In, 2)), "max_step.in");
        assert_eq!(stepped.explanation.fired.as_deref(), Some("request"));
        let recent = ResourceState {
            changes: vec![Change {
                at: now() - chrono::TimeDelta::minutes(2),
                direction: Direction::Out,
                from: 2,
                to: 3,
            }],
            ..ResourceState::default()
        };
        assert_eq!(
            answer(&orders, &recent, &Default::default()).change(),
            None,
            "cooldown.in"
        );
        // With a metric a rule reads unavailable, scale-in is blocked, this one too.
        orders.scale_out.push(crate::testing::rule(
            "cpu",
            capstan_policy::model::Threshold::Above(70.0),
            1,
            1,
            capstan_policy::model::Step::Add(1),
        ));
        let unreadable = [(
            orders.metric("cpu").clone(),
            crate::MetricData::Unavailable("throttled".into()),
        )]
        .into_iter()
        .collect();
        let blocked = answer(&orders, &none, &unreadable);
        assert_eq!(blocked.change(), None);
        assert!(
            blocked
                .explanation
                .summary
                .contains("1 asked for on request (orders-db's users are set to hold 300 connections, above its budget of 200), but scale-in is blocked: cpu is unavailable (throttled)"),
            "{}",
            blocked.explanation.summary
        );
    }

    #[test]
    fn a_group_asked_to_shed_stays_within_its_own_min_size() {
        let mut web = user("web", 0, 1);
        web.target = Target::AutoscalingGroup { name: "web".into() };
        let request = [GuardRequest::ShedConnections {
            policy: "web".into(),
            database: "orders-db".into(),
            to: 1,
            connections: 300,
            budget: 200,
        }];
        let group = CurrentCapacity {
            resource_min: Some(3),
            ..capacity(4)
        };
        let decision = decide_answering(
            &web,
            &Default::default(),
            &group,
            &ResourceState::default(),
            now(),
            &request,
        );
        assert_eq!(decision.change(), Some((Direction::In, 3)));
        assert_eq!(
            decision.explanation.clamps.last().map(|c| c.kind),
            Some(ClampKind::ResourceMin)
        );
    }
}
