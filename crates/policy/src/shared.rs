//! The types the policy file ([`crate::raw`]) and the validated policy ([`crate::model`]) have
//! in common: what is written is used as it is. Other crates name them through
//! [`crate::model`], as they do the [scalar values](crate::values).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The resource a policy scales. Write exactly one of these keys. No two policies may scale
/// the same resource.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// An EC2 Auto Scaling group; capacity is its desired instance count.
    AutoscalingGroup {
        /// The group's name.
        name: String,
    },
    /// An ECS service; capacity is its desired task count.
    EcsService {
        /// Name or ARN of the cluster that runs the service; both name the same cluster.
        cluster: String,
        /// The service's name.
        service: String,
    },
    /// Read replicas of an RDS instance (MySQL, MariaDB or PostgreSQL; not Aurora); capacity is
    /// the number of replicas capstan keeps.
    RdsReplicas {
        /// DB instance identifier of the source (primary) instance, as RDS stores it: in
        /// lowercase, e.g. `orders-db`.
        source: String,
    },
    /// A topic on an MSK cluster; capacity is its partition count, which only ever grows.
    MskTopic {
        /// ARN of the MSK cluster.
        cluster_arn: String,
        /// The topic's name.
        topic: String,
    },
    /// An MSK provisioned cluster; capacity is its broker count, a multiple of its AZ count.
    MskCluster {
        /// ARN of the MSK cluster.
        cluster_arn: String,
    },
}

impl Target {
    /// The kind's key as written in policy files, e.g. `ecs_service`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AutoscalingGroup { .. } => "autoscaling_group",
            Self::EcsService { .. } => "ecs_service",
            Self::RdsReplicas { .. } => "rds_replicas",
            Self::MskTopic { .. } => "msk_topic",
            Self::MskCluster { .. } => "msk_cluster",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AutoscalingGroup { name } => write!(f, "autoscaling_group {name}"),
            Self::EcsService { cluster, service } => write!(f, "ecs_service {cluster}/{service}"),
            Self::RdsReplicas { source } => write!(f, "rds_replicas of {source}"),
            Self::MskTopic { cluster_arn, topic } => {
                write!(f, "msk_topic {topic} on {cluster_arn}")
            }
            Self::MskCluster { cluster_arn } => write!(f, "msk_cluster {cluster_arn}"),
        }
    }
}

/// A database engine whose default `max_connections` formula capstan knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DbEngine {
    /// MySQL: `{DBInstanceClassMemory/12582880}`.
    Mysql,
    /// MariaDB: as MySQL.
    Mariadb,
    /// PostgreSQL: `LEAST({DBInstanceClassMemory/9531392}, 5000)`.
    Postgres,
}

/// Which of two limits applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The one that allows the larger change.
    #[default]
    MostPermissive,
    /// The one that allows the smaller change.
    LeastPermissive,
}
