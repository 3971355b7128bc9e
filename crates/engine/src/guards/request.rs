//! What a guard asks a policy for: a [`GuardRequest`], answered by the policy addressed in the
//! same pass (see [`crate::decide_all`]).

use std::fmt;

use serde::Serialize;

/// Something a guard asks a policy for, answered by [`crate::decide_all`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardRequest {
    /// Users of a database wanted more connections than its budget.
    DatabaseConnections {
        /// The database's name.
        database: String,
        /// The `rds_replicas` policy on the database, if the set has one.
        policy: Option<String>,
        /// Connections the users would hold with every decision granted.
        wanted: u32,
        /// The budget they share: the source's, and each read replica's in service for the
        /// read-only users.
        budget: u32,
        /// The users held back, in priority order.
        held_back: Vec<String>,
        /// The read-only users among them, whom one more read replica would relieve; the
        /// replica policy is asked only for them.
        readers: Vec<String>,
    },
    /// A user of a database whose budget is breached is asked to go down.
    ShedConnections {
        /// The user's policy.
        policy: String,
        /// The database's name.
        database: String,
        /// The capacity asked for, below the decided one.
        to: u32,
        /// Connections the users' decided capacities hold: every user's, or the writers'
        /// when the source's share is the one breached.
        connections: u32,
        /// The budget breached: the source's and its replicas', or the source's alone.
        budget: u32,
    },
    /// Consumers held back by a topic's partitions while lag grew.
    PartitionGrowth {
        /// The topic's `msk_topic` policy.
        policy: String,
        /// The consumers' policy.
        consumer: String,
        /// Partitions now.
        from: u32,
        /// Partitions asked for, above `from`.
        to: u32,
    },
}

impl GuardRequest {
    /// The policy asked: the database's `rds_replicas` policy, the user asked to shed
    /// connections or the topic's `msk_topic` policy; none for a database without a replica
    /// policy.
    pub fn addressee(&self) -> Option<&str> {
        match self {
            Self::DatabaseConnections { policy, .. } => policy.as_deref(),
            Self::ShedConnections { policy, .. } | Self::PartitionGrowth { policy, .. } => {
                Some(policy)
            }
        }
    }
}

impl fmt::Display for GuardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DatabaseConnections {
                database,
                policy,
                wanted,
                budget,
                held_back,
                readers,
            } => {
                write!(
                    f,
                    "{database}: its users want {wanted} connections of {budget} (held back: {}); ",
                    held_back.join(", ")
                )?;
                match policy {
                    Some(policy) => write!(
                        f,
                        "{policy} is asked for one more read replica, for {}",
                        readers.join(", ")
                    ),
                    None if readers.is_empty() => {
                        write!(f, "they write, so a read replica would not help them")
                    }
                    None => write!(f, "no rds_replicas policy on it to ask"),
                }
            }
            Self::ShedConnections {
                policy,
                database,
                to,
                connections,
                budget,
            } => write!(
                f,
                "{database}: its users are set to hold {connections} connections, above its budget of {budget}; {policy} is asked to go down to {to}"
            ),
            Self::PartitionGrowth {
                policy,
                consumer,
                from,
                to,
            } => write!(
                f,
                "{consumer} is held back by its topic's {from} partitions while its lag grows; {policy} is asked for {to}"
            ),
        }
    }
}
