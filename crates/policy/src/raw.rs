//! The policy file as written: serde types that mirror the YAML, deny unknown keys and keep the
//! source position of every value a later check may need to point at.
//!
//! The engine never sees these types: [`PolicySet`](crate::PolicySet) validates them and turns
//! them into the [`crate::model`] types the engine uses. The JSON Schema (`capstan schema`) is
//! generated from them, so the schema and the parser cannot drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::model::Target;
use crate::values::{CronExpr, Datapoints, Duration, Statistic, TimeZone};

/// A scaling policy: one resource, its bounds, the metrics it watches and the rules that move it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "capstan policy")]
pub struct PolicyFile {
    /// Version of the policy language. Always `1`.
    #[schemars(with = "u32", extend("const" = 1))]
    pub version: Spanned<u32>,
    /// Unique name of the policy across the whole policy set, e.g. `order-processing`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The one resource this policy scales. Exactly one key: the target kind.
    #[schemars(with = "Target")]
    pub target: Spanned<Target>,
    /// Bounds on the resource's capacity (tasks, instances, replicas, partitions or brokers).
    #[schemars(with = "Capacity")]
    pub capacity: Spanned<Capacity>,
    /// Named CloudWatch metrics the rules refer to, by the name used as key here.
    #[serde(default)]
    pub metrics: BTreeMap<String, Metric>,
    /// Rules that add capacity. Any one that fires scales out; the largest step wins.
    #[serde(default)]
    #[schemars(with = "Vec<Rule>")]
    pub scale_out: Vec<Spanned<Rule>>,
    /// Rules that remove capacity. Never fire on missing or partial data.
    #[serde(default)]
    #[schemars(with = "Vec<Rule>")]
    pub scale_in: Vec<Spanned<Rule>>,
    /// Recurring windows during which capacity is held at or above a floor.
    #[serde(default)]
    pub schedule: Vec<Schedule>,
    /// Safety limits applied to every decision.
    #[serde(default)]
    pub guards: Guards,
    /// When true, the policy is evaluated and explained but never acts. By default, false.
    #[serde(default)]
    pub paused: bool,
}

/// Inclusive bounds on capacity.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// The least capacity capstan ever sets.
    #[schemars(with = "u32")]
    pub min: Spanned<u32>,
    /// The most capacity capstan ever sets.
    #[schemars(with = "u32")]
    pub max: Spanned<u32>,
}

/// A CloudWatch metric, read with one statistic over fixed periods.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// CloudWatch namespace, e.g. `AWS/ECS`.
    pub namespace: String,
    /// Metric name, e.g. `CPUUtilization`.
    pub name: String,
    /// Dimensions that select one series, e.g. `{ ClusterName: shop }`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Statistic per period: `Average`, `Minimum`, `Maximum`, `Sum`, `SampleCount` or a
    /// percentile such as `p99`.
    pub stat: Statistic,
    /// Length of one datapoint: a multiple of 60 s, e.g. `1m`. Use the metric's publishing
    /// interval (`5m` for `CPUCreditBalance`).
    #[schemars(with = "Duration")]
    pub period: Spanned<Duration>,
}

/// A rule: a condition on a metric and the step to take when it holds. Give exactly one step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The condition that fires the rule.
    #[schemars(with = "Condition")]
    pub when: Spanned<Condition>,
    /// Add this many units (scale-out rules).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub add: Option<Spanned<u32>>,
    /// Remove this many units (scale-in rules).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub remove: Option<Spanned<u32>>,
    /// Go to exactly this capacity.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub set: Option<Spanned<u32>>,
    /// Add this percentage of the current capacity, rounded up, at least one unit (scale-out
    /// rules).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub add_percent: Option<Spanned<u32>>,
    /// Remove this percentage of the current capacity, rounded down, at least one unit
    /// (scale-in rules).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub remove_percent: Option<Spanned<u32>>,
}

/// A threshold on a metric over a window of datapoints. Give one of `above` or `below`, and at
/// most one of `for` or `datapoints` (neither means the latest datapoint alone).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Name of a metric defined under `metrics`.
    #[schemars(with = "String")]
    pub metric: Spanned<String>,
    /// Breach when the datapoint is strictly greater than this.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub above: Option<Spanned<f64>>,
    /// Breach when the datapoint is strictly less than this.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub below: Option<Spanned<f64>>,
    /// Every datapoint in this trailing window breaches, e.g. `5m`. A multiple of the metric's
    /// period.
    #[serde(default, rename = "for")]
    #[schemars(with = "Option<Duration>")]
    pub for_: Option<Spanned<Duration>>,
    /// At least M of the last N datapoints breach, written `M of N`, e.g. `3 of 5`.
    #[serde(default)]
    #[schemars(with = "Option<Datapoints>")]
    pub datapoints: Option<Spanned<Datapoints>>,
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
    #[schemars(with = "Duration")]
    pub duration: Spanned<Duration>,
    /// Capacity floor while the window is open.
    #[schemars(with = "u32")]
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
    pub missing_data: MissingData,
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
    #[schemars(with = "Option<u32>")]
    pub out: Option<Spanned<u32>>,
    /// Most units removed in one decision. By default, unlimited.
    #[serde(default, rename = "in")]
    #[schemars(with = "Option<u32>")]
    pub in_: Option<Spanned<u32>>,
}

/// Behaviour when a metric's window is missing data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    /// Keep the current capacity: rules whose window is incomplete do not fire.
    #[default]
    Hold,
}
