//! Validated policies: the only form the engine and the adapters see. Every value here has
//! passed the checks [`PolicySet`](crate::PolicySet) runs; metric references resolve, bounds
//! are ordered and windows are whole multiples of their metric's period.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::values::{CronExpr, Datapoints, Duration, Statistic, TimeZone};

/// A validated scaling policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique name across the policy set.
    pub name: String,
    /// The file the policy was read from, for messages.
    pub file: String,
    /// The resource the policy scales.
    pub target: Target,
    /// Inclusive capacity bounds, `min <= max`.
    pub capacity: Capacity,
    /// Metrics by the name the rules use.
    pub metrics: BTreeMap<String, MetricQuery>,
    /// Rules that add capacity.
    pub scale_out: Vec<Rule>,
    /// Rules that remove capacity.
    pub scale_in: Vec<Rule>,
    /// Windows that raise the capacity floor.
    pub schedules: Vec<Schedule>,
    /// Safety limits.
    pub guards: Guards,
    /// Evaluated and explained, but never acts.
    pub paused: bool,
}

impl Policy {
    /// The metric a rule refers to. Validation guarantees it exists.
    pub fn metric(&self, name: &str) -> &MetricQuery {
        &self.metrics[name]
    }

    /// All rules, scale-out first.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.scale_out.iter().chain(&self.scale_in)
    }
}

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
        /// Name or ARN of the cluster that runs the service.
        cluster: String,
        /// The service's name.
        service: String,
    },
    /// Read replicas of an RDS instance (MySQL, MariaDB or PostgreSQL; not Aurora); capacity is
    /// the number of replicas capstan keeps.
    RdsReplicas {
        /// DB instance identifier of the source (primary) instance.
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

/// Inclusive capacity bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Lower bound.
    pub min: u32,
    /// Upper bound, at least `min`.
    pub max: u32,
}

/// One CloudWatch series at one statistic and period: what GetMetricData is asked for.
/// Equal queries from different policies are fetched once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MetricQuery {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Metric name.
    pub name: String,
    /// Dimensions, sorted by name.
    pub dimensions: BTreeMap<String, String>,
    /// Statistic per period.
    pub stat: Statistic,
    /// Period length in seconds, a multiple of 60.
    pub period_secs: u32,
}

impl fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {} per {}s",
            self.namespace, self.name, self.stat, self.period_secs
        )?;
        for (name, value) in &self.dimensions {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// A rule: a condition and the step it takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The condition.
    pub when: Condition,
    /// The step taken when the condition holds.
    pub step: Step,
}

/// A threshold over the trailing datapoints of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// Name of the metric, a key of [`Policy::metrics`].
    pub metric: String,
    /// Which side of the threshold breaches.
    pub threshold: Threshold,
    /// How many of how many trailing datapoints must breach.
    pub window: Datapoints,
}

/// Which side of a threshold breaches. Equal to the threshold never breaches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// Breach when strictly greater.
    Above(f64),
    /// Breach when strictly less.
    Below(f64),
}

impl Threshold {
    /// Whether `value` breaches.
    pub fn is_breached_by(self, value: f64) -> bool {
        match self {
            Self::Above(limit) => value > limit,
            Self::Below(limit) => value < limit,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Above(limit) => write!(f, "above {limit}"),
            Self::Below(limit) => write!(f, "below {limit}"),
        }
    }
}

/// How a rule moves capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Add this many units.
    Add(u32),
    /// Remove this many units.
    Remove(u32),
    /// Go to exactly this capacity.
    Set(u32),
    /// Add this percentage of current capacity, rounded up, at least one unit.
    AddPercent(u32),
    /// Remove this percentage of current capacity, rounded down, at least one unit.
    RemovePercent(u32),
}

impl Step {
    /// The capacity this step asks for, starting from `current` (before any clamp).
    pub fn apply(self, current: u32) -> u32 {
        let percent_of = |p: u32| (u64::from(current) * u64::from(p)) as f64 / 100.0;
        let saturate = |v: f64| {
            if v >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                v as u32
            }
        };
        match self {
            Self::Add(n) => current.saturating_add(n),
            Self::Remove(n) => current.saturating_sub(n),
            Self::Set(n) => n,
            Self::AddPercent(p) => current.saturating_add(saturate(percent_of(p).ceil()).max(1)),
            Self::RemovePercent(p) => {
                current.saturating_sub(saturate(percent_of(p).floor()).max(1))
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add(n) => write!(f, "add {n}"),
            Self::Remove(n) => write!(f, "remove {n}"),
            Self::Set(n) => write!(f, "set {n}"),
            Self::AddPercent(p) => write!(f, "add {p}%"),
            Self::RemovePercent(p) => write!(f, "remove {p}%"),
        }
    }
}

/// A recurring window that raises the capacity floor.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Name of the window.
    pub name: String,
    /// When it opens.
    pub cron: CronExpr,
    /// Time zone the cron expression is read in.
    pub timezone: TimeZone,
    /// How long it stays open.
    pub duration: Duration,
    /// Capacity floor while open, within the policy's bounds.
    pub min: u32,
}

/// Safety limits of a policy, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    /// Wait after any action before scaling out.
    pub cooldown_out: Duration,
    /// Wait after any action before scaling in.
    pub cooldown_in: Duration,
    /// Most units added in one decision.
    pub max_step_out: Option<u32>,
    /// Most units removed in one decision.
    pub max_step_in: Option<u32>,
    /// Behaviour on missing data.
    pub missing_data: MissingData,
}

/// Behaviour on missing data.
pub use crate::raw::MissingData;

/// Default scale-in cooldown, five minutes.
pub const DEFAULT_COOLDOWN_IN: Duration = Duration::from_secs(300);
