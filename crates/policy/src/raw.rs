//! The policy file as written: serde types that mirror the YAML, deny unknown keys and keep the
//! source position of every value a later check may need to point at.
//!
//! The engine never sees these types: [`PolicySet`](crate::PolicySet) validates them and turns
//! them into the [`crate::model`] types the engine uses. The JSON Schema (`capstan schema`) is
//! generated from them, so the schema and the parser cannot drift.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Location;

use crate::shared::{DbEngine, Select, Target};
use crate::values::{CronExpr, Datapoints, Duration, Fraction, Statistic, TimeZone};

/// A value as written, with where it stands in the file, for checks to point at. It reads and
/// writes as the value itself, and its JSON Schema is the value's (with the value's default,
/// written by serialising it): the schema shows what is written.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where the value is written (for an alias, where it is used).
    pub referenced: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Self {
            value: spanned.value,
            referenced: spanned.referenced,
        })
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A scaling policy: one resource, its bounds, the metrics it watches and the rules that move it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "capstan policy")]
pub struct PolicyFile {
    /// Version of the policy language. Always `1`.
    #[schemars(extend("const" = 1))]
    pub version: Spanned<u32>,
    /// Unique name of the policy across the whole policy set, e.g. `order-processing`.
    pub name: Spanned<String>,
    /// The one resource this policy scales. Exactly one key: the target kind.
    pub target: Spanned<Target>,
    /// Bounds on the resource's capacity (tasks, instances, replicas, partitions or brokers).
    pub capacity: Spanned<Capacity>,
    /// Named CloudWatch metrics the rules refer to, by the name used as key here.
    #[serde(default)]
    pub metrics: BTreeMap<String, Spanned<Metric>>,
    /// Rules that add capacity. Any one that fires scales out; the largest step wins.
    #[serde(default)]
    pub scale_out: Vec<Spanned<Rule>>,
    /// Rules that remove capacity. Never fire on missing or partial data.
    #[serde(default)]
    pub scale_in: Vec<Spanned<Rule>>,
    /// Target-tracking rules, which move capacity both ways to keep a metric at a target.
    /// Scale-out follows the rule that asks for the most; scale-in needs every rule to agree.
    #[serde(default)]
    pub track: Vec<Spanned<Track>>,
    /// How far a `track` metric may drift from its target, as a fraction of it, before
    /// capacity changes: `5%` or `0.05`. By default, `20%`.
    #[serde(default)]
    pub tolerance: Option<Spanned<Fraction>>,
    /// Recurring windows during which capacity is held at or above a floor.
    #[serde(default)]
    pub schedule: Vec<Schedule>,
    /// A floor raised ahead of the peaks a metric's daily and weekly profile forecasts, e.g.
    /// `{ metric: requests, per_replica: 70, lead: 10m }`. By default, none.
    #[serde(default)]
    pub forecast: Option<Spanned<Forecast>>,
    /// Safety limits applied to every decision.
    #[serde(default)]
    pub guards: Guards,
    /// When true, the policy is evaluated and explained but never acts. By default, false.
    #[serde(default)]
    pub paused: bool,
    /// Which policy goes first when several compete for one budget (a database's
    /// connections): higher first, then by name. By default, 0.
    #[serde(default)]
    pub priority: i32,
    /// Databases whose connection budget the policies of the set share, by a name that
    /// `connections.database` refers to. Declare each database once in the set, typically in
    /// the policy of the service that owns it. By default, none.
    #[serde(default)]
    pub databases: BTreeMap<String, Spanned<Database>>,
    /// The database connections each unit (task, instance) of this resource opens. Capacity is
    /// capped so that all users of the database together stay within its budget. By default,
    /// none.
    #[serde(default)]
    pub connections: Option<Spanned<Connections>>,
    /// For `rds_replicas` policies: read replicas created ahead of another policy's schedule
    /// window or of the policy's own forecast peaks, while the source is quiet, and retired
    /// after them. By default, none.
    #[serde(default)]
    pub replicas: Option<Spanned<Replicas>>,
}

/// Read replicas planned ahead of a schedule window or a forecast peak: created `lead` before
/// it (only while the source is `quiet`), kept through it, retired `retire_after` it ends.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    /// The window to be ready for, as `<policy>/<schedule>`, e.g. `storefront/flash-sale`; or
    /// `forecast`: the peaks of the policy's own `forecast`, with ceil(peak / per_replica) - 1
    /// replicas (the source serves as one).
    pub ahead_of: Spanned<String>,
    /// How long before the window opens (or the forecast peak's hour starts) the replicas are
    /// wanted: long enough to wait for a quiet source and cover creation (often 20 to 60
    /// minutes), e.g. `45m`.
    pub lead: Spanned<Duration>,
    /// Replicas to have for the window, at least 1 and at most `capacity.max`. By default, 1.
    /// Not with `ahead_of: forecast`, where the forecast decides.
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
    /// How long after the window closes (or the forecast peak's hour ends) the planned
    /// replicas are retired, e.g. `30m`. By default, `0s`.
    #[serde(default)]
    pub retire_after: Option<Duration>,
    /// A condition on the source's metrics that must hold for a replica to be created, e.g.
    /// `{ metric: source_cpu, below: 40, for: 10m }`: creating a replica snapshots the source.
    /// By default, none: created as soon as the lead time starts.
    #[serde(default)]
    pub quiet: Option<Spanned<Condition>>,
}

/// A database's connection limit: `max_connections`, or the engine's default formula for an
/// instance class (`instance_class` and `engine`), less `reserve`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The database's `max_connections` parameter.
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
    /// With `engine` instead of `max_connections`: the instance class, e.g. `db.r6g.large`,
    /// whose memory gives the engine's default `max_connections`.
    #[serde(default)]
    pub instance_class: Option<Spanned<String>>,
    /// With `instance_class`: `mysql`, `mariadb` or `postgres`.
    #[serde(default)]
    pub engine: Option<Spanned<DbEngine>>,
    /// Connections kept free for administrators, migrations and other clients. By default, 0.
    #[serde(default)]
    pub reserve: Option<Spanned<u32>>,
}

/// The connections each unit of a resource opens to one database.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    /// Name of a database declared under `databases` in some policy of the set.
    pub database: Spanned<String>,
    /// Connections each unit opens (its pool size), at least 1.
    pub per_task: Spanned<u32>,
    /// Whether the units only read, so that their connections may go to the database's read
    /// replicas as well as its source: each replica capstan keeps of it (an `rds_replicas`
    /// policy), once available, adds a budget as large as the source's for them. By default,
    /// false: the units write, and share the source's budget only.
    pub read_only: Option<Spanned<bool>>,
}

/// Inclusive bounds on capacity.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// The least capacity capstan ever sets.
    pub min: Spanned<u32>,
    /// The most capacity capstan ever sets.
    pub max: Spanned<u32>,
}

/// A CloudWatch metric, read with one statistic over fixed periods: either a series
/// (`namespace`, `name`, `stat` and perhaps `dimensions`) or an `expression` over the policy's
/// other metrics.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// CloudWatch namespace, e.g. `AWS/ECS`. For a series.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Metric name, e.g. `CPUUtilization`. For a series.
    #[serde(default)]
    pub name: Option<String>,
    /// Dimensions that select one series, e.g. `{ ClusterName: shop }`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Statistic per period: `Average`, `Minimum`, `Maximum`, `Sum`, `SampleCount` or a
    /// percentile such as `p99`. For a series.
    #[serde(default)]
    pub stat: Option<Statistic>,
    /// Instead of a series: CloudWatch metric math over the policy's other metrics, by name,
    /// e.g. `100 * (1 - conns / 400)`. Numbers, `+ - * /`, parentheses, `ABS(e)` and
    /// `AVG`, `MAX`, `MIN`, `SUM` of an array such as `[a, b]`. Its members have its period.
    #[serde(default)]
    pub expression: Option<Spanned<String>>,
    /// Length of one datapoint: a multiple of 60 s, e.g. `1m`. Use the metric's publishing
    /// interval (`5m` for `CPUCreditBalance`).
    pub period: Spanned<Duration>,
    /// How long CloudWatch takes to hold a period's datapoint in full once the period has
    /// ended: windows end this long before the evaluation, so the newest period used is the
    /// last that closed at least `delay` ago. Whole seconds, e.g. `90s`, `0s` for none. By
    /// default, `2m`.
    #[serde(default)]
    pub delay: Option<Spanned<Duration>>,
}

/// A rule: a condition on a metric and the step to take when it holds. Give exactly one step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The condition that fires the rule.
    pub when: Spanned<Condition>,
    /// Add this many units (scale-out rules).
    #[serde(default)]
    pub add: Option<Spanned<u32>>,
    /// Remove this many units (scale-in rules).
    #[serde(default)]
    pub remove: Option<Spanned<u32>>,
    /// Go to exactly this capacity.
    #[serde(default)]
    pub set: Option<Spanned<u32>>,
    /// Add this percentage of the current capacity, rounded up, at least one unit (scale-out
    /// rules).
    #[serde(default)]
    pub add_percent: Option<Spanned<u32>>,
    /// Remove this percentage of the current capacity, rounded down, at least one unit
    /// (scale-in rules).
    #[serde(default)]
    pub remove_percent: Option<Spanned<u32>>,
}

/// A threshold on a metric over a window of datapoints. Give one of `above` or `below`, and at
/// most one of `for` or `datapoints` (neither means the latest datapoint alone).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Name of a metric defined under `metrics`.
    pub metric: Spanned<String>,
    /// Breach when the datapoint is strictly greater than this.
    #[serde(default)]
    pub above: Option<Spanned<f64>>,
    /// Breach when the datapoint is strictly less than this.
    #[serde(default)]
    pub below: Option<Spanned<f64>>,
    /// Every datapoint in this trailing window breaches, e.g. `5m`. A multiple of the metric's
    /// period.
    #[serde(default, rename = "for")]
    pub for_: Option<Spanned<Duration>>,
    /// At least M of the last N datapoints breach, written `M of N`, e.g. `3 of 5`.
    #[serde(default)]
    pub datapoints: Option<Spanned<Datapoints>>,
}

/// A target-tracking rule: keeps `metric` at `target` per unit of capacity (a utilisation such as
/// CPU), or at `per_replica` per unit (a total such as queue depth or consumer lag). Give exactly
/// one of `target` or `per_replica`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// Name of a metric defined under `metrics`.
    pub metric: Spanned<String>,
    /// The value to hold a utilisation metric at: desired = ceil(current × value / target).
    #[serde(default)]
    pub target: Option<Spanned<f64>>,
    /// How much of a total metric one unit handles: desired = ceil(value / per_replica).
    #[serde(default)]
    pub per_replica: Option<Spanned<f64>>,
    /// Average the datapoints of this trailing window, e.g. `5m`, a multiple of the metric's
    /// period. By default, the latest complete datapoint alone.
    #[serde(default, rename = "for")]
    pub for_: Option<Spanned<Duration>>,
    /// With `per_replica`, for Kafka consumers: the topic's partition count, above which extra
    /// consumers would sit idle; capacity is capped at it. By default, no cap.
    #[serde(default)]
    pub partitions: Option<Spanned<u32>>,
    /// With `per_replica`, for Kafka consumers, instead of `partitions`: the name of the
    /// `msk_topic` policy of the topic consumed. Its current partition count caps capacity, and
    /// when the cap holds consumers back while lag grows, capstan asks that policy for more
    /// partitions. By default, none.
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    /// With `partitions` or `topic`: allow more consumers than partitions (they sit idle, as in KEDA's
    /// `allowIdleConsumers`). By default, false.
    #[serde(default)]
    pub allow_idle_consumers: Option<Spanned<bool>>,
}

/// A forecast floor: the metric's hourly peaks over `history` make a daily and a weekly
/// profile; the one with the smaller recent error forecasts the coming hours, and capacity is
/// raised, `lead` ahead of each forecast peak, to ceil(peak / per_replica). The floor only
/// raises capacity; the rules still scale above it and back down to it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Forecast {
    /// Name of a metric defined under `metrics`: a total that does not depend on the capacity
    /// serving it (requests, messages), with a period that divides an hour.
    pub metric: Spanned<String>,
    /// How much of the metric one unit serves, per period, as `track`'s `per_replica`: the
    /// floor is ceil(forecast peak / per_replica).
    pub per_replica: Spanned<f64>,
    /// How much of the metric's past is learnt from, whole hours from `1d` to `14d`. At least
    /// 24 hours of it must have been read before the floor acts. By default, `14d`.
    #[serde(default)]
    pub history: Option<Spanned<Duration>>,
    /// How far ahead of a forecast peak the floor rises: the units' warm-up, at most `1d`. By
    /// default, `10m`. Not on `rds_replicas` policies, whose `replicas.lead` says it.
    #[serde(default)]
    pub lead: Option<Spanned<Duration>>,
    /// The largest recent error (over the last 24 hours, the absolute errors over the peaks)
    /// at which the forecast is trusted: `25%` or `0.25`. Above it, the floor is withheld. By
    /// default, `25%`.
    #[serde(default)]
    pub max_error: Option<Fraction>,
}

impl Replicas {
    /// Whether the plan is ahead of the policy's own forecast (`ahead_of: forecast`).
    pub fn is_ahead_of_forecast(&self) -> bool {
        self.ahead_of.value == crate::model::AHEAD_OF_FORECAST
    }
}

/// A recurring window that raises the capacity floor, e.g. a weekly flash sale.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Name of the window; other policies refer to it by `<policy>/<name>`.
    pub name: String,
    /// When the window opens: a five-field cron expression (minute hour day-of-month month
    /// day-of-week), read in `timezone`.
    pub cron: CronExpr,
    /// IANA time zone the cron expression is read in, e.g. `Europe/London`. By default, `UTC`.
    #[serde(default)]
    pub timezone: TimeZone,
    /// How long the window stays open, e.g. `3h`.
    pub duration: Spanned<Duration>,
    /// Capacity floor while the window is open.
    pub min: Spanned<u32>,
}

/// Safety limits applied to every decision of the policy.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    /// Minimum time after a scaling action before the next one in each direction.
    #[serde(default)]
    pub cooldown: Cooldown,
    /// Largest change one decision may make, in each direction.
    #[serde(default)]
    pub max_step: MaxStep,
    /// What to do when a metric has no data or only part of its window. By default, `hold`.
    #[serde(default)]
    pub missing_data: Option<Spanned<MissingData>>,
    /// Slow, paced scale-in for services with long-lived connections (websockets, gRPC
    /// streams): a few units at a time, with time for connections to drain in between. By
    /// default, none.
    #[serde(default)]
    pub scale_in_pacing: Option<Spanned<ScaleInPacing>>,
    /// How long recommendations are remembered per direction: scale-in goes only as low as the
    /// highest recommendation of the window, scale-out only as high as the lowest.
    #[serde(default)]
    pub stabilization: Stabilization,
    /// Most capacity added or removed per period, in units and/or percent, per direction. By
    /// default, none.
    #[serde(default)]
    pub rate_limit: RateLimits,
}

/// Stabilization windows per direction.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stabilization {
    /// Window for scale-out. By default, `0s`: scale out at once.
    #[serde(default)]
    pub out: Option<Duration>,
    /// Window for scale-in. By default, `5m`.
    #[serde(default, rename = "in")]
    pub in_: Option<Duration>,
    /// Window for scale-in while a recent flap is remembered (a change that reversed the one
    /// before within an hour, remembered for two days), when longer than `in`. By default,
    /// `1h`; `0s` turns it off.
    #[serde(default)]
    pub in_after_flap: Option<Duration>,
}

/// Rate limits per direction.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Limit on scale-out. By default, none.
    #[serde(default)]
    pub out: Option<Spanned<RateLimit>>,
    /// Limit on scale-in. By default, none.
    #[serde(default, rename = "in")]
    pub in_: Option<Spanned<RateLimit>>,
}

/// At most `units` and/or `percent` of the capacity at the start of each `per` period.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Most units per period.
    #[serde(default)]
    pub units: Option<Spanned<u32>>,
    /// Most percent of the capacity at the period's start, per period.
    #[serde(default)]
    pub percent: Option<Spanned<u32>>,
    /// The period, e.g. `1m`.
    pub per: Duration,
    /// With both `units` and `percent`: which one applies. By default, `most_permissive`.
    #[serde(default)]
    pub select: Select,
}

/// Paced scale-in: at most `max_per_interval` units removed per `interval`, and at least
/// `drain` after any change before the next removal.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleInPacing {
    /// Most units removed in one interval, at least 1. By default, 1.
    #[serde(default)]
    pub max_per_interval: Option<Spanned<u32>>,
    /// The pacing interval, e.g. `10m`.
    pub interval: Duration,
    /// Time for the removed units' connections to drain before another removal, e.g. `5m`.
    /// By default, `0s`.
    #[serde(default)]
    pub drain: Option<Duration>,
}

/// Cooldowns per direction.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cooldown {
    /// Wait after any action before scaling out again. By default, no wait.
    #[serde(default)]
    pub out: Option<Duration>,
    /// Wait after any action before scaling in. By default, `5m`.
    #[serde(default, rename = "in")]
    pub in_: Option<Duration>,
}

/// Step limits per direction.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxStep {
    /// Most units added in one decision. By default, unlimited.
    #[serde(default)]
    pub out: Option<Spanned<u32>>,
    /// Most units removed in one decision. By default, unlimited.
    #[serde(default, rename = "in")]
    pub in_: Option<Spanned<u32>>,
}

/// Behaviour when a metric's window is missing data: `hold`, `scale_out`, or
/// `{ fallback: N, after: K }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MissingData {
    /// `hold` or `scale_out`.
    Mode(MissingDataMode),
    /// Go to a fixed capacity after some evaluations without data.
    Fallback(Fallback),
}

/// The simple behaviours on missing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingDataMode {
    /// Keep the current capacity: rules whose window is incomplete do not fire.
    Hold,
    /// Count each missing datapoint as breaching for scale-out rules, so a metric that goes
    /// silent (a crashed publisher) adds capacity; scale-in still never fires on missing data.
    ScaleOut,
}

/// `{ fallback: N, after: K }`: hold, and once data has been missing for `K` consecutive
/// evaluations, raise capacity to `N` (never lower it: capstan does not scale in blind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The capacity to go to, within the policy's bounds.
    pub fallback: u32,
    /// Consecutive evaluations with missing data before falling back, at least 1. By default, 3.
    #[serde(default)]
    pub after: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::{Capacity, Spanned};

    #[test]
    fn a_spanned_value_reads_writes_and_has_the_schema_of_the_value_with_its_position() {
        let read: Spanned<Option<u32>> = serde_saphyr::from_str("\n  7\n").expect("a number");
        let at = read.referenced;
        assert_eq!((read.value, at.line(), at.column()), (Some(7), 2, 3));
        assert_eq!(serde_json::to_string(&read).expect("serialises"), "7");
        assert_eq!(
            schemars::schema_for!(Vec<Option<Spanned<Capacity>>>),
            schemars::schema_for!(Vec<Option<Capacity>>)
        );
    }
}
