//! Which policies a guard couples: those it must see in one pass.

use capstan_policy::model::{Policy, Target};

use super::replicas_of;

/// Whether a guard couples `one` and `other`: they share a [`Coupling`]. Coupled policies are
/// woken together, and a fanned-out tick keeps them in one shard, so that the guard sees them
/// in one pass.
pub fn coupled(one: &Policy, other: &Policy) -> bool {
    let theirs = couplings(other);
    couplings(one)
        .iter()
        .any(|coupling| theirs.contains(coupling))
}

/// What a guard reads together, named so that two policies with one in common are
/// [`coupled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Coupling<'a> {
    /// A database's connection budget, by the source's identifier: its users, and the
    /// `rds_replicas` policy of the source, whose replicas add to the readers' budget.
    Database(&'a str),
    /// A topic's partitions, by its `msk_topic` policy's name: that policy, and the consumers
    /// whose `track` rules name it.
    Topic(&'a str),
    /// The partition room of an MSK cluster's brokers, by the cluster's ARN: its topics' policies
    /// ([shared limits](super::shared_limits)).
    Cluster(&'a str),
}

/// Every [`Coupling`] of `policy`.
pub fn couplings(policy: &Policy) -> Vec<Coupling<'_>> {
    let mut couplings: Vec<Coupling<'_>> = database_of(policy)
        .into_iter()
        .chain(replicas_of(policy))
        .map(Coupling::Database)
        .collect();
    if let Target::MskTopic { cluster_arn, .. } = &policy.target {
        couplings.extend([
            Coupling::Topic(&policy.name),
            Coupling::Cluster(cluster_arn),
        ]);
    }
    couplings.extend(
        policy
            .track
            .iter()
            .filter_map(|track| track.topic.as_deref())
            .map(Coupling::Topic),
    );
    couplings
}

/// The database `policy` uses, if it is a user of one.
fn database_of(policy: &Policy) -> Option<&str> {
    policy
        .connections
        .as_ref()
        .map(|connections| connections.database.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::policy;

    #[test]
    fn policies_sharing_a_budget_a_topic_or_a_clusters_room_are_coupled_and_no_others() {
        let named = |name: &str, target: Target| {
            let mut policy = policy();
            policy.name = name.into();
            policy.target = target;
            policy
        };
        let topic = |name: &str, cluster: &str| {
            named(
                name,
                Target::MskTopic {
                    cluster_arn: cluster.into(),
                    topic: name.into(),
                },
            )
        };
        let (orders, payments, audit) = (
            topic("orders", "arn:a"),
            topic("payments", "arn:a"),
            topic("audit", "arn:b"),
        );
        let mut consumer = policy();
        consumer.track.push(capstan_policy::model::Track {
            metric: "lag".into(),
            goal: capstan_policy::model::TrackGoal::PerReplica(1000.0),
            window: 1,
            partitions: None,
            topic: Some("audit".into()),
        });
        let user = |name: &str| {
            let mut user = policy();
            user.name = name.into();
            user.connections = Some(capstan_policy::model::Connections {
                database: "orders-db".into(),
                per_task: 10,
                read_only: true,
            });
            user
        };
        let replicas = named(
            "orders-db-replicas",
            Target::RdsReplicas {
                source: "orders-db".into(),
            },
        );
        let (web, history) = (user("web"), user("history"));
        for (one, other) in [
            (&orders, &payments),
            (&audit, &consumer),
            (&web, &history),
            (&web, &replicas),
        ] {
            assert!(coupled(one, other), "{} and {}", one.name, other.name);
            assert!(coupled(other, one), "{} and {}", other.name, one.name);
        }
        for (one, other) in [
            (&orders, &audit),
            (&orders, &consumer),
            (&web, &orders),
            (&replicas, &consumer),
        ] {
            assert!(!coupled(one, other), "{} and {}", one.name, other.name);
        }
    }
}
