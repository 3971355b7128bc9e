//! Validated policies: the only form the engine and the adapters see. Every value here has
//! passed the checks [`PolicySet`](crate::PolicySet) runs; metric references resolve, bounds
//! are ordered and windows are whole multiples of their metric's period.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::expression::Expression;
pub use crate::shared::{DbEngine, Select, Target};
pub use crate::values::{CronExpr, Datapoints, Duration, Fraction, Statistic, TimeZone};

/// A validated scaling policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    /// Unique name across the policy set.
    pub name: String,
    /// The file the policy was read from, for messages.
    pub file: String,
    /// The resource the policy scales.
    pub target: Target,
    /// Inclusive capacity bounds, `min <= max`.
    pub capacity: Capacity,
    /// Metrics by the name the rules use: series, and expressions over them.
    pub metrics: BTreeMap<String, Metric>,
    /// Rules that add capacity.
    pub scale_out: Vec<Rule>,
    /// Rules that remove capacity.
    pub scale_in: Vec<Rule>,
    /// Target-tracking rules.
    pub track: Vec<Track>,
    /// How far a tracked metric may drift from its target before capacity changes.
    pub tolerance: Fraction,
    /// Windows that raise the capacity floor.
    pub schedules: Vec<Schedule>,
    /// A floor raised ahead of forecast peaks, if any.
    pub forecast: Option<Forecast>,
    /// Safety limits.
    pub guards: Guards,
    /// Evaluated and explained, but never acts.
    pub paused: bool,
    /// Higher goes first when policies compete for one budget; ties by name.
    pub priority: i32,
    /// Databases this policy declares, by name.
    pub databases: BTreeMap<String, Database>,
    /// The database connections each unit opens.
    pub connections: Option<Connections>,
    /// For `rds_replicas` policies: replicas planned ahead of a schedule window or a forecast.
    pub replicas: Option<ReplicaPlan>,
}

/// A floor raised ahead of the peaks a metric's daily and weekly profile forecasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The metric forecast, by the name the policy defines it under; its period divides an hour.
    pub metric: String,
    /// How much of the metric one unit serves, per period; finite and positive.
    pub per_replica: f64,
    /// How much of the metric's past is learnt from: whole hours, from 1 to 14 days.
    pub history: Duration,
    /// How far ahead of a forecast peak the floor rises, at most a day.
    pub lead: Duration,
    /// The largest recent error at which the forecast is trusted.
    pub max_error: Fraction,
}

/// Default [`Forecast::history`]: 14 days, as far back as AWS predictive scaling looks.
pub const DEFAULT_FORECAST_HISTORY: Duration = Duration::from_secs(14 * 86_400);

/// Default [`Forecast::lead`]: 10 minutes, a typical warm-up with a margin.
pub const DEFAULT_FORECAST_LEAD: Duration = Duration::from_secs(600);

/// Default [`Forecast::max_error`]: 25%.
pub const DEFAULT_FORECAST_MAX_ERROR: Fraction = Fraction::QUARTER;

/// Read replicas planned ahead of need: another policy's schedule window, or the peaks of the
/// policy's own forecast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaPlan {
    /// What the replicas are made ready for.
    pub ahead_of: AheadOf,
    /// How long before the window opens, or the forecast peak's hour starts, the replicas are
    /// wanted: time to wait for a quiet source and to create them.
    pub lead: Duration,
    /// How long after the window closes, or the peak's hour ends, they are retired.
    pub retire_after: Duration,
    /// What must hold on the source for a replica to be created, if anything.
    pub quiet: Option<Condition>,
}

/// What a [`ReplicaPlan`] makes replicas ready for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AheadOf {
    /// Another policy's schedule window, with a set number of replicas.
    Schedule {
        /// The window, as written: `<policy>/<schedule>`.
        name: String,
        /// That schedule, copied from its policy.
        schedule: Box<Schedule>,
        /// Replicas wanted for the window, within the policy's bounds.
        count: u32,
    },
    /// The peaks of the policy's own `forecast` (written `ahead_of: forecast`), with as many
    /// replicas as the forecast peak needs.
    Forecast,
}

/// How `ahead_of` is written for a plan ahead of the policy's own forecast.
pub const AHEAD_OF_FORECAST: &str = "forecast";

impl ReplicaPlan {
    /// Whether the plan is ahead of the policy's own forecast.
    pub fn is_ahead_of_forecast(&self) -> bool {
        matches!(self.ahead_of, AheadOf::Forecast)
    }
}

impl Policy {
    /// The query of the metric a rule refers to. Validation guarantees it exists.
    pub fn metric(&self, name: &str) -> &MetricQuery {
        &self.metrics[name].query
    }

    /// The [`Metric::delay`] of the metric a rule refers to.
    pub fn delay(&self, name: &str) -> Duration {
        self.metrics[name].delay
    }

    /// The metrics that are CloudWatch series, by name: all but expression metrics, which are
    /// computed from these.
    pub fn series_metrics(&self) -> impl Iterator<Item = (&String, &Metric)> {
        self.metrics
            .iter()
            .filter(|(_, metric)| metric.query.math.is_none())
    }

    /// All rules, scale-out first.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.scale_out.iter().chain(&self.scale_in)
    }
}

/// Inclusive capacity bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Lower bound.
    pub min: u32,
    /// Upper bound, at least `min`.
    pub max: u32,
}

/// A metric the rules read: the series to ask CloudWatch for, and how long its datapoints take
/// to be complete there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// What GetMetricData is asked for.
    pub query: MetricQuery,
    /// How long after a period ends its datapoint is taken as complete: a window at `now` ends
    /// with the last period that closed at or before `now - delay`.
    pub delay: Duration,
}

/// One CloudWatch series at one statistic and period, or metric math over such series (an
/// expression metric): what GetMetricData is asked for. Equal queries from different policies
/// are fetched once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetricQuery {
    /// CloudWatch namespace; empty for metric math.
    pub namespace: String,
    /// Metric name; empty for metric math.
    pub name: String,
    /// Dimensions, sorted by name; empty for metric math.
    pub dimensions: BTreeMap<String, String>,
    /// Statistic per period; for metric math, unused (its members have theirs).
    pub stat: Statistic,
    /// Period length in seconds, a multiple of 60.
    pub period_secs: u32,
    /// For an expression metric: the metric math CloudWatch computes instead of reading a
    /// series.
    #[serde(default)]
    pub math: Option<MathQuery>,
}

/// Metric math over other queries, each of the expression's period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MathQuery {
    /// The expression, naming its members by the policy's ids, as [`Expression::render`]
    /// writes it.
    pub expression: String,
    /// The query of each metric the expression names, by its id there.
    pub members: BTreeMap<String, MetricQuery>,
}

impl MetricQuery {
    /// The query of the metric math `math` at `period_secs`.
    pub fn math(math: MathQuery, period_secs: u32) -> Self {
        Self {
            namespace: String::new(),
            name: String::new(),
            dimensions: BTreeMap::new(),
            stat: Statistic::Average,
            period_secs,
            math: Some(math),
        }
    }
}

impl MathQuery {
    /// The expression, parsed.
    pub fn parse(&self) -> Result<Expression, crate::expression::SyntaxError> {
        Expression::parse(&self.expression)
    }
}

/// The expression with each member written out in braces, whatever its id: equal metric math
/// displays equally however its members are named (an alarm's ids are not the policy's).
impl fmt::Display for MathQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parse() {
            Ok(expression) => f.write_str(&expression.render(&|id| match self.members.get(id) {
                Some(member) => format!("{{{member}}}"),
                None => id.to_owned(),
            })),
            Err(_) => f.write_str(&self.expression),
        }
    }
}

impl fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(math) = &self.math {
            return write!(f, "{math} per {}s", self.period_secs);
        }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The condition.
    pub when: Condition,
    /// The step taken when the condition holds.
    pub step: Step,
}

/// A threshold over the trailing datapoints of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Name of the metric, a key of [`Policy::metrics`].
    pub metric: String,
    /// Which side of the threshold breaches.
    pub threshold: Threshold,
    /// How many of how many trailing datapoints must breach.
    pub window: Datapoints,
}

/// Which side of a threshold breaches. Equal to the threshold never breaches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A target-tracking rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Name of the metric, a key of [`Policy::metrics`].
    pub metric: String,
    /// What the metric is held at.
    pub goal: TrackGoal,
    /// How many trailing datapoints are averaged; 1 is the latest alone.
    pub window: u32,
    /// Partition count capping the capacity (Kafka consumers), unless idle consumers are allowed.
    pub partitions: Option<u32>,
    /// The `msk_topic` policy whose current partition count caps the capacity (Kafka
    /// consumers), unless idle consumers are allowed; applied by the engine's cross-resource
    /// guards.
    pub topic: Option<String>,
}

/// What a tracked metric is held at. Both values are finite and positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackGoal {
    /// A utilisation: desired = ceil(current × value / target).
    Target(f64),
    /// A total, shared by the units: desired = ceil(value / per_replica).
    PerReplica(f64),
}

impl fmt::Display for TrackGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Target(target) => write!(f, "target {target}"),
            Self::PerReplica(per) => write!(f, "{per} per replica"),
        }
    }
}

/// A database's connection limit and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// The connection limit.
    pub max_connections: u32,
    /// Connections kept free for other clients, below `max_connections`.
    pub reserve: u32,
    /// How `max_connections` was found, e.g. `declared` or the formula used.
    pub source: String,
}

impl Database {
    /// Connections capstan may hand out: `max_connections - reserve`.
    pub fn budget(&self) -> u32 {
        self.max_connections.saturating_sub(self.reserve)
    }
}

/// The connections each unit of a resource opens to one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// Name of the database, declared in some policy of the set.
    pub database: String,
    /// Connections per unit, at least 1.
    pub per_task: u32,
    /// Whether the units only read, so that the database's read replicas in service may hold
    /// their connections too.
    pub read_only: bool,
}

/// Memory of common RDS instance classes in GiB, for the engines' default `max_connections`.
/// From the RDS instance class documentation; classes not listed need `max_connections`.
pub const INSTANCE_CLASS_MEMORY_GIB: &[(&str, u64)] = &[
    ("db.t3.micro", 1),
    ("db.t3.small", 2),
    ("db.t3.medium", 4),
    ("db.t3.large", 8),
    ("db.t3.xlarge", 16),
    ("db.t3.2xlarge", 32),
    ("db.t4g.micro", 1),
    ("db.t4g.small", 2),
    ("db.t4g.medium", 4),
    ("db.t4g.large", 8),
    ("db.t4g.xlarge", 16),
    ("db.t4g.2xlarge", 32),
    ("db.m5.large", 8),
    ("db.m5.xlarge", 16),
    ("db.m5.2xlarge", 32),
    ("db.m5.4xlarge", 64),
    ("db.m6g.large", 8),
    ("db.m6g.xlarge", 16),
    ("db.m6g.2xlarge", 32),
    ("db.m6g.4xlarge", 64),
    ("db.m7g.large", 8),
    ("db.m7g.xlarge", 16),
    ("db.m7g.2xlarge", 32),
    ("db.m7g.4xlarge", 64),
    ("db.r5.large", 16),
    ("db.r5.xlarge", 32),
    ("db.r5.2xlarge", 64),
    ("db.r5.4xlarge", 128),
    ("db.r6g.large", 16),
    ("db.r6g.xlarge", 32),
    ("db.r6g.2xlarge", 64),
    ("db.r6g.4xlarge", 128),
    ("db.r7g.large", 16),
    ("db.r7g.xlarge", 32),
    ("db.r7g.2xlarge", 64),
    ("db.r7g.4xlarge", 128),
];

/// The engine's default `max_connections` for `class`, and the formula used, if the class is
/// in [`INSTANCE_CLASS_MEMORY_GIB`]. `DBInstanceClassMemory` is taken as the class's nominal
/// memory; RDS reserves some for the OS, so the real value can be slightly lower: declare
/// `max_connections` when it matters.
pub fn default_max_connections(class: &str, engine: DbEngine) -> Option<(u32, String)> {
    let gib = INSTANCE_CLASS_MEMORY_GIB
        .iter()
        .find(|(name, _)| *name == class)?
        .1;
    let bytes = gib << 30;
    let (value, formula) = match engine {
        DbEngine::Mysql | DbEngine::Mariadb => {
            (bytes / 12_582_880, "{DBInstanceClassMemory/12582880}")
        }
        DbEngine::Postgres => (
            (bytes / 9_531_392).min(5_000),
            "LEAST({DBInstanceClassMemory/9531392}, 5000)",
        ),
    };
    let value = u32::try_from(value).unwrap_or(u32::MAX);
    Some((
        value,
        format!("{formula} for {class} ({gib} GiB) = {value}"),
    ))
}

/// A recurring window that raises the capacity floor.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Paced scale-in, if any.
    pub scale_in_pacing: Option<ScaleInPacing>,
    /// How long scale-out recommendations are remembered.
    pub stabilization_out: Duration,
    /// How long scale-in recommendations are remembered.
    pub stabilization_in: Duration,
    /// How long scale-in recommendations are remembered while a recent flap is, when longer
    /// than `stabilization_in`.
    pub stabilization_in_after_flap: Duration,
    /// Most added per period, if limited.
    pub rate_limit_out: Option<RateLimit>,
    /// Most removed per period, if limited.
    pub rate_limit_in: Option<RateLimit>,
}

impl Guards {
    /// How long the engine must remember recommendations and actions for these guards: the
    /// longest stabilization window or rate-limit period.
    pub fn memory(&self) -> Duration {
        [self.rate_limit_out, self.rate_limit_in]
            .into_iter()
            .flatten()
            .map(|limit| limit.per)
            .fold(self.longest_stabilization(), Duration::max)
    }

    /// The longest stabilization window, flap or not.
    pub fn longest_stabilization(&self) -> Duration {
        self.stabilization_out
            .max(self.stabilization_in)
            .max(self.stabilization_in_after_flap)
    }
}

/// At most `units` and/or `percent` of the capacity at the start of each `per` period; at
/// least one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Most units per period.
    pub units: Option<u32>,
    /// Most percent per period.
    pub percent: Option<u32>,
    /// The period.
    pub per: Duration,
    /// Which limit applies when both are set.
    pub select: Select,
}

/// Paced scale-in: at most `max_per_interval` units per removal, and no removal until
/// `max(interval, drain)` after the last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleInPacing {
    /// Most units removed in one interval, at least 1.
    pub max_per_interval: u32,
    /// The pacing interval.
    pub interval: Duration,
    /// Drain time before the next removal.
    pub drain: Duration,
}

impl ScaleInPacing {
    /// How long after the last change the next removal must wait.
    pub fn wait(&self) -> Duration {
        self.interval.max(self.drain)
    }
}

/// Behaviour on missing data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingData {
    /// Keep the current capacity: rules whose window is incomplete do not fire.
    #[default]
    Hold,
    /// Count each missing datapoint as breaching for scale-out rules; scale-in still never
    /// fires on missing data.
    ScaleOut,
    /// Hold, and after `after` consecutive evaluations with missing data raise capacity to
    /// `capacity` (never lower it).
    Fallback {
        /// The capacity to go to, within the policy's bounds.
        capacity: u32,
        /// Consecutive evaluations with missing data first, at least 1.
        after: u32,
    },
}

// What validation fills in for what a policy file leaves out. The zero, `false` and "none"
// defaults are not named: an absent value means none.

/// Default [`Metric::delay`]: two minutes, about how late AWS services' one-minute datapoints
/// are complete in CloudWatch (see `docs/policy.md`, "Ingestion delay").
pub const DEFAULT_DELAY: Duration = Duration::from_secs(120);

/// Default [`Policy::tolerance`] of target tracking: 20%, twice the HPA's, measured on a real
/// trace (the "Stability of the defaults" section of `docs/simulate.md`).
pub const DEFAULT_TOLERANCE: Fraction = Fraction::FIFTH;

/// Default number of evaluations without data before `missing_data: { fallback }` applies.
pub const DEFAULT_FALLBACK_AFTER: u32 = 3;

/// Default [`ScaleInPacing::max_per_interval`]: one unit at a time.
pub const DEFAULT_MAX_PER_INTERVAL: u32 = 1;

/// Default count of a plan ahead of a schedule window ([`AheadOf::Schedule`]): one replica.
pub const DEFAULT_REPLICA_COUNT: u32 = 1;

impl Default for Guards {
    /// The guards of a policy that sets none: no cooldown before scaling out and five minutes
    /// before scaling in; no step, pacing or rate limit; `hold` on missing data; as the
    /// Kubernetes HPA, no stabilization window for scale-out and five minutes for scale-in; and
    /// an hour for scale-in while a recent flap is remembered.
    fn default() -> Self {
        Self {
            cooldown_out: Duration::from_secs(0),
            cooldown_in: Duration::from_secs(300),
            max_step_out: None,
            max_step_in: None,
            missing_data: MissingData::Hold,
            scale_in_pacing: None,
            stabilization_out: Duration::from_secs(0),
            stabilization_in: Duration::from_secs(300),
            stabilization_in_after_flap: Duration::from_secs(3600),
            rate_limit_out: None,
            rate_limit_in: None,
        }
    }
}
