//! Backtests: policy sets replayed over a resource's real CloudWatch history, through the real
//! engine and the simulated fleet, beside the capacity that really ran.
//!
//! The load model (see "Backtest" in `docs/simulate.md`) is work conserving: a utilization
//! metric (a CloudWatch metric named `...Utilization`) times the capacity in service gives the
//! work, `demand`, replayed through [`crate::load::LoadModel`] with one unit serving 100 (so a
//! replayed fleet of other size sees `utilization × in service ÷ its in service`); any other
//! metric, such as a queue's depth, is replayed as recorded. Where the utilization was
//! saturated ([`SATURATED_PERCENT`] or more) the work beyond the capacity went unseen and the
//! model undercounts demand: those minutes are counted and reported.

pub mod baselines;
pub mod history;
pub mod report;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use capstan_engine::Action;
use capstan_policy::model::Policy;

use crate::load::LoadModel;
use crate::simulate::{DEFAULT_INGESTION, Run, Settings, Step, simulate};
use crate::summary::Summary;
use crate::trace::{DEMAND, Trace};

use baselines::BaselineTarget;
use history::{CapacitySource, DECISION_LOG, History, Resolution, at_resolution, held};

/// Why a backtest, or one policy's part of it, cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BacktestError(pub String);

/// Utilization at or above which a minute is saturated: the work beyond the capacity in
/// service was not seen.
pub const SATURATED_PERCENT: f64 = 95.0;

/// What the report calls the capacity that really ran.
pub const ACTUAL: &str = "actual";

/// The backtest's load model: one unit at 100% utilization does 100 units of work.
const WORK: LoadModel = LoadModel {
    per_unit_capacity: 100.0,
    connections_per_unit: None,
};

/// A policy set to replay, with the name the report gives it (`current`, `proposed`).
#[derive(Debug, Clone, Copy)]
pub struct PolicySetToReplay<'a> {
    /// The set's name in the report.
    pub name: &'a str,
    /// Its policies.
    pub policies: &'a [Policy],
}

/// A whole backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// The first minute replayed.
    pub start: DateTime<Utc>,
    /// The end of the last minute replayed.
    pub end: DateTime<Utc>,
    /// The datapoints' period and CloudWatch's retention of it.
    pub resolution: Resolution,
    /// The replayed fleet's warm-up, in seconds.
    pub warmup_secs: i64,
    /// Every policy, by name, in the order the sets name them.
    pub policies: Vec<PolicyBacktest>,
}

/// One policy's backtest: each set's replay and the capacity that really ran.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyBacktest {
    /// The policy's name.
    pub policy: String,
    /// Its resource.
    pub target: String,
    /// Where the capacity history came from.
    pub capacity_source: Option<String>,
    /// The utilization metric demand was reconstructed from (`key (namespace/name)`); `None`
    /// when the policy reads none, and its metrics are replayed as recorded.
    pub demand_from: Option<String>,
    /// Minutes the utilization was saturated, where the model undercounts demand.
    pub saturated_minutes: Option<usize>,
    /// The target the baselines were replayed at; `None` when they were not (no utilization
    /// metric, or none the policy tracks or scales out on).
    pub baseline_target: Option<BaselineTarget>,
    /// Why the policy was not replayed, if it was not.
    pub skipped: Option<String>,
    /// Each set's figures, then the actual capacity's (whose under-provisioned minutes are the
    /// saturated minutes), then each baseline's.
    pub summaries: Vec<SetSummary>,
    /// Each set's run, then the actual capacity's, minute by minute.
    #[serde(skip)]
    pub runs: Vec<Run>,
    /// The load model the runs were summarised with (none without a utilization metric).
    #[serde(skip)]
    pub load: Option<LoadModel>,
}

/// The figures of one set (or of the actual capacity) for one policy.
#[derive(Debug, Clone, Serialize)]
pub struct SetSummary {
    /// The set's name, [`ACTUAL`], or the baseline's name.
    pub set: String,
    /// Its figures.
    pub summary: Summary,
}

/// One policy's history made ready to replay.
struct Replayable {
    /// Where the capacity history came from.
    source: String,
    trace: Trace,
    settings: Settings,
    in_service: Vec<u32>,
    desired: Vec<u32>,
    utilization: Option<Vec<Option<f64>>>,
    /// The key of the utilization metric demand came from.
    demand_key: Option<String>,
    demand_from: Option<String>,
}

/// Replays every policy of `sets` over `history`, read at `resolution`, with fleets whose
/// launches serve after `warmup`. A policy of one name in several sets is reported once, each
/// set's replay beside the capacity that really ran (of the first set's resource); `progress`
/// is told each policy's and set's name before it is replayed.
pub fn backtest(
    sets: &[PolicySetToReplay<'_>],
    history: &History,
    resolution: Resolution,
    warmup: TimeDelta,
    mut progress: impl FnMut(&str, &str),
) -> Backtest {
    let mut names: Vec<&str> = Vec::new();
    for set in sets {
        for policy in set.policies {
            if !names.contains(&policy.name.as_str()) {
                names.push(&policy.name);
            }
        }
    }
    let policies = names
        .into_iter()
        .map(|name| {
            let found: Vec<(&str, &Policy)> = sets
                .iter()
                .filter_map(|set| Some((set.name, set.policies.iter().find(|p| p.name == name)?)))
                .collect();
            replay_policy(&found, history, resolution, warmup, &mut progress)
        })
        .collect();
    Backtest {
        start: history.start,
        end: history.minute(history.minutes),
        resolution,
        warmup_secs: warmup.num_seconds(),
        policies,
    }
}

/// The backtest of one policy as each set in `found` writes it (at least one).
fn replay_policy(
    found: &[(&str, &Policy)],
    history: &History,
    resolution: Resolution,
    warmup: TimeDelta,
    progress: &mut impl FnMut(&str, &str),
) -> PolicyBacktest {
    let (_, first) = found[0];
    let mut report = PolicyBacktest {
        policy: first.name.clone(),
        target: first.target.to_string(),
        capacity_source: None,
        demand_from: None,
        saturated_minutes: None,
        baseline_target: None,
        skipped: None,
        summaries: Vec::new(),
        runs: Vec::new(),
        load: None,
    };
    let mut actual = None;
    let mut baselines = Vec::new();
    for &(set, policy) in found {
        let ready = match replayable(policy, history, resolution, warmup) {
            Ok(ready) => ready,
            Err(error) => {
                report.skipped = Some(format!("{set}: {error}"));
                report.runs.clear();
                return report;
            }
        };
        progress(&policy.name, set);
        let mut run = simulate(
            &ready.trace,
            std::slice::from_ref(policy),
            &ready.settings,
            || (),
        )
        .remove(0);
        run.controller = set.to_owned();
        report.runs.push(run);
        if actual.is_none() {
            report.capacity_source = Some(ready.source.clone());
            report.demand_from.clone_from(&ready.demand_from);
            report.load = ready.settings.load;
            report.saturated_minutes = ready.utilization.as_ref().map(|values| {
                values
                    .iter()
                    .flatten()
                    .filter(|&&value| value >= SATURATED_PERCENT)
                    .count()
            });
            let metric = report.runs[0].metric.clone();
            actual = Some(actual_run(&policy.name, metric, history, &ready));
            if let Some(key) = &ready.demand_key {
                report.baseline_target = BaselineTarget::of(policy, key);
                if let Some(target) = &report.baseline_target {
                    baselines = baselines::replay(policy, &ready, key, target);
                }
            }
        }
    }
    report.runs.extend(actual);
    report.summaries = report
        .runs
        .iter()
        .map(|run| {
            let mut summary = Summary::of(run, report.load);
            if run.controller == ACTUAL {
                summary.under_provisioned = report.saturated_minutes;
                summary.under_provisioned_scheduled = None;
            }
            SetSummary {
                set: run.controller.clone(),
                summary,
            }
        })
        .chain(baselines)
        .collect();
    report
}

/// `policy`'s history as a trace and settings to replay it with: demand reconstructed from its
/// utilization metric, its other metrics as recorded, starting at the capacity then in service.
fn replayable(
    policy: &Policy,
    history: &History,
    resolution: Resolution,
    warmup: TimeDelta,
) -> Result<Replayable, BacktestError> {
    let (source, in_service, desired) = capacity_history(policy, history, resolution)?;
    let utilization_keys: Vec<String> = policy
        .metrics
        .iter()
        .filter(|(_, metric)| metric.query.name.ends_with("Utilization"))
        .map(|(key, _)| key.clone())
        .collect();
    let demand_key = policy
        .rules()
        .map(|rule| &rule.when.metric)
        .find(|key| utilization_keys.contains(key))
        .or_else(|| utilization_keys.first())
        .cloned();
    let mut trace = Trace {
        columns: Vec::new(),
        rows: (0..history.minutes)
            .map(|i| (history.minute(i), Default::default()))
            .collect(),
    };
    let mut add_column = |name: &str, values: &[Option<f64>]| {
        trace.columns.push(name.to_owned());
        for (i, value) in values.iter().enumerate() {
            if let (Some(value), Some(row)) = (value, trace.rows.get_mut(&history.minute(i))) {
                row.insert(name.to_owned(), *value);
            }
        }
    };
    let mut utilization = None;
    let mut demand_from = None;
    // Expression metrics are computed from their members' columns as the replay reads them.
    for (key, metric) in policy.series_metrics() {
        let values = history.series(&at_resolution(&metric.query, resolution.period_secs))?;
        if Some(key) == demand_key.as_ref() {
            let demand: Vec<Option<f64>> = values
                .iter()
                .zip(&in_service)
                .map(|(value, &units)| value.map(|v| v * f64::from(units)))
                .collect();
            add_column(DEMAND, &demand);
            demand_from = Some(format!(
                "{key} ({}/{})",
                metric.query.namespace, metric.query.name
            ));
            utilization = Some(values);
        } else if !utilization_keys.contains(key) {
            add_column(key, &values);
        }
    }
    let settings = Settings {
        load: utilization.as_ref().map(|_| WORK),
        warmup,
        ingestion: DEFAULT_INGESTION,
        initial: in_service.first().copied(),
        utilization: utilization_keys,
    };
    Ok(Replayable {
        source,
        trace,
        settings,
        in_service,
        desired,
        utilization,
        demand_key,
        demand_from,
    })
}

/// Where `policy`'s resource's capacity history comes from, and its capacity in service and
/// desired at each minute: its capacity metrics, else its decision log; gaps hold.
fn capacity_history(
    policy: &Policy,
    history: &History,
    resolution: Resolution,
) -> Result<(String, Vec<u32>, Vec<u32>), BacktestError> {
    let source = CapacitySource::of(&policy.target, resolution.period_secs).ok_or_else(|| {
        BacktestError(format!(
            "a {} has no capacity history to replay against: backtest replays ECS services \
             and Auto Scaling groups",
            policy.target.kind()
        ))
    })?;
    let in_service = history.series(&source.in_service)?;
    let (in_service, desired, source) = if in_service.iter().any(Option::is_some) {
        (in_service, history.series(&source.desired)?, source.name)
    } else {
        let logged = history.logged_series(&policy.target);
        if logged.iter().all(Option::is_none) {
            return Err(BacktestError(format!(
                "no capacity history: {} has no datapoints for {} (turn on Container Insights \
                 or the group's metrics collection), nor has capstan's decision log (read with \
                 --state-table)",
                source.name, policy.target
            )));
        }
        (logged.clone(), logged, DECISION_LOG.to_owned())
    };
    let count = |values: Vec<f64>| -> Vec<u32> {
        values
            .into_iter()
            .map(|v| v.round().max(0.0) as u32)
            .collect()
    };
    let in_service = count(held(&in_service));
    let desired = if desired.iter().any(Option::is_some) {
        count(held(&desired))
    } else {
        in_service.clone()
    };
    Ok((source, in_service, desired))
}

/// The capacity that really ran for `policy`, as a run whose driving metric is `metric`: each
/// change of the desired capacity an action.
fn actual_run(policy: &str, metric: String, history: &History, ready: &Replayable) -> Run {
    let demand = ready.trace.has(DEMAND).then(|| ready.trace.filled(DEMAND));
    let mut before = ready.desired.first().copied().unwrap_or(0);
    let steps = (0..history.minutes)
        .map(|i| {
            let desired = ready.desired[i];
            let action = Action::between(before, desired).direction();
            before = desired;
            Step {
                at: history.minute(i),
                demand: demand.as_ref().map(|d| d[i]),
                metric: ready.utilization.as_ref().and_then(|u| u[i]),
                in_service: ready.in_service[i],
                desired,
                action,
                scheduled: false,
                why: String::new(),
            }
        })
        .collect();
    Run {
        controller: ACTUAL.to_owned(),
        policy: policy.to_owned(),
        metric,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use capstan_engine::{Datapoint, MetricData, Observations};
    use capstan_policy::{PolicySet, Source};

    use super::*;

    fn set(policies: &[&str]) -> Vec<Policy> {
        let sources = policies
            .iter()
            .enumerate()
            .map(|(i, text)| Source {
                path: format!("{i}.yaml"),
                text: (*text).to_owned(),
            })
            .collect();
        PolicySet::from_sources(sources)
            .expect("valid policies")
            .policies()
            .to_vec()
    }

    const QUEUE: &str = "version: 1
name: workers
target: { ecs_service: { cluster: c, service: workers } }
capacity: { min: 1, max: 10 }
metrics:
  depth: { namespace: Shop, name: QueueDepth, stat: Maximum, period: 1m }
scale_out:
  - { when: { metric: depth, above: 100, for: 1m }, add: 2 }
";

    const REPLICAS: &str = "version: 1
name: replicas
target: { rds_replicas: { source: orders-db } }
capacity: { min: 0, max: 2 }
metrics:
  cpu: { namespace: AWS/RDS, name: CPUUtilization, stat: Average, period: 1m }
scale_out:
  - { when: { metric: cpu, above: 70, for: 5m }, add: 1 }
";

    #[test]
    fn a_queue_metric_is_replayed_as_recorded_and_other_targets_are_not_replayed() {
        let current = set(&[QUEUE, REPLICAS]);
        let resolution = history::RESOLUTIONS[0];
        let start = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let minutes = 30;
        let at = |minute: usize| start + TimeDelta::minutes(minute as i64);
        let series = |value: &dyn Fn(usize) -> f64| {
            MetricData::Series(
                (0..minutes)
                    .map(|i| Datapoint {
                        timestamp: at(i),
                        value: value(i),
                    })
                    .collect(),
            )
        };
        let source = CapacitySource::of(&current[0].target, 60).expect("ECS");
        let depth = at_resolution(&current[0].metrics["depth"].query, 60);
        let history = History {
            start,
            minutes,
            observations: Observations::from([
                (depth, series(&|i| if i == 10 { 500.0 } else { 0.0 })),
                (source.in_service, series(&|_| 1.0)),
                (source.desired, series(&|i| if i < 20 { 1.0 } else { 3.0 })),
            ]),
            logged: BTreeMap::new(),
        };
        let sets = [PolicySetToReplay {
            name: "current",
            policies: &current,
        }];

        let result = backtest(
            &sets,
            &history,
            resolution,
            TimeDelta::minutes(3),
            |_, _| (),
        );

        let workers = &result.policies[0];
        assert_eq!(workers.demand_from, None);
        assert_eq!(workers.saturated_minutes, None);
        let replayed = &workers.summaries[0].summary;
        // One spike of the queue, taken as it was: one scale-out of 2, never under-provisioned
        // since nothing measures it.
        assert_eq!((replayed.actions, replayed.under_provisioned), (1, None));
        assert_eq!(workers.runs[0].steps[12].desired, 3);
        let actual = &workers.summaries[1];
        assert_eq!((actual.set.as_str(), actual.summary.actions), (ACTUAL, 1));
        let replicas = &result.policies[1];
        assert!(
            replicas
                .skipped
                .as_deref()
                .is_some_and(|why| why.starts_with("current: a rds_replicas has no capacity")),
            "{replicas:?}"
        );
        assert!(replicas.runs.is_empty() && replicas.summaries.is_empty());
    }
}
