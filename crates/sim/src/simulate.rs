//! The simulation loop: one pass of the real evaluation (`capstan_runner::evaluate`, which
//! calls `capstan_engine::decide`) per simulated minute, against the in-memory ports; and the
//! same loop driven by a baseline controller.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use capstan_engine::{Action, Datapoint, Direction};
use capstan_policy::model::Policy;
use capstan_runner::memory::{MemoryMetrics, MemoryState};
use capstan_runner::{Limits, Mode, Ports, Trigger, evaluate};

use crate::baseline::Controller;
use crate::fleet::Fleet;
use crate::load::LoadModel;
use crate::ports::SimCapacity;
use crate::trace::{DEMAND, Trace};

/// How a simulation runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The load model, used when the trace has a `demand` column.
    pub load: Option<LoadModel>,
    /// Time from a scale-out to the new units serving. By default, 3 minutes.
    pub warmup: TimeDelta,
    /// Time from a period's end to its datapoint being readable by capstan, as CloudWatch's
    /// ingestion delay. By default, [`DEFAULT_INGESTION`]. The baselines read each datapoint as
    /// soon as its minute ends, which favours them (see `docs/simulate.md`).
    pub ingestion: TimeDelta,
    /// Capacity at the start; by default each policy's `capacity.min`.
    pub initial: Option<u32>,
    /// Further metric names the load model serves as it serves `cpu`: the utilization of the
    /// units in service (a backtest's `CPUUtilization` or `MemoryUtilization` under any name).
    pub utilization: Vec<String>,
}

/// The simulated ingestion delay when none is given: two minutes, as the default `delay` of a
/// policy's metrics assumes (see "Ingestion delay" in `docs/policy.md`).
pub const DEFAULT_INGESTION: TimeDelta = TimeDelta::minutes(2);

/// One simulated minute of one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Start of the minute.
    pub at: DateTime<Utc>,
    /// Demand during the minute (interpolated across gaps), when the trace has demand.
    pub demand: Option<f64>,
    /// The driving metric's datapoint for the minute (none when missing); capstan sees it once
    /// it has landed, [`Settings::ingestion`] after the minute, a baseline as the minute ends.
    pub metric: Option<f64>,
    /// Capacity serving during the minute.
    pub in_service: u32,
    /// Desired capacity after the decision at the end of the minute.
    pub desired: u32,
    /// The change decided at the end of the minute, if any.
    pub action: Option<Direction>,
    /// Whether a schedule window was open.
    pub scheduled: bool,
    /// Why, in one sentence (capstan's explanation summary; the baseline's rule).
    pub why: String,
}

/// One resource's simulated history.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `capstan` or the baseline's name.
    pub controller: String,
    /// The policy (resource) simulated.
    pub policy: String,
    /// The driving metric's name.
    pub metric: String,
    /// Every minute.
    pub steps: Vec<Step>,
}

/// The column a policy's metric is read from, if the trace has it: `<policy>.<metric>`, then
/// `<metric>`.
fn column(trace: &Trace, policy: &str, metric: &str) -> Option<String> {
    let qualified = format!("{policy}.{metric}");
    if trace.has(&qualified) {
        Some(qualified)
    } else if trace.has(metric) {
        Some(metric.to_owned())
    } else {
        None
    }
}

/// The value a metric has at minute `at`: from its column, else from the load model (`cpu` and
/// [`Settings::utilization`]: CPU %; `lag`: queued demand; `requests`: the demand itself) when
/// the trace has demand. `None` is a missing datapoint.
fn metric_value(
    trace: &Trace,
    settings: &Settings,
    policy: &str,
    metric: &str,
    at: DateTime<Utc>,
    in_service: u32,
    lag: f64,
) -> Option<f64> {
    if let Some(column) = column(trace, policy, metric) {
        return trace.value(at, &column);
    }
    let load = settings.load.filter(|_| trace.has(DEMAND))?;
    let demand = trace.value(at, DEMAND)?;
    match metric {
        "cpu" => Some(load.cpu(demand, in_service)),
        _ if settings.utilization.iter().any(|name| name == metric) => {
            Some(load.cpu(demand, in_service))
        }
        "lag" => Some(lag),
        "requests" => Some(demand),
        "conns_free" => Some(load.connections_free(demand, in_service)),
        "connections" => load.connections(in_service),
        _ => None,
    }
}

/// The metric a policy is plotted and tabulated by: its first rule's.
fn driving_metric(policy: &Policy) -> String {
    policy
        .rules()
        .next()
        .map(|rule| rule.when.metric.clone())
        .or_else(|| policy.metrics.keys().next().cloned())
        .unwrap_or_else(|| "cpu".to_owned())
}

/// Replays `trace` through `policies` with the real evaluation pass, one pass per minute
/// evaluated at the end of the minute. `progress` is called after each minute.
pub fn simulate(
    trace: &Trace,
    policies: &[Policy],
    settings: &Settings,
    mut progress: impl FnMut(),
) -> Vec<Run> {
    let minutes = trace.minutes();
    let Some(&start) = minutes.first() else {
        return Vec::new();
    };
    let demand = trace.has(DEMAND).then(|| trace.filled(DEMAND));
    let fleets = policies
        .iter()
        .map(|p| {
            let initial = settings
                .initial
                .unwrap_or(p.capacity.min)
                .clamp(p.capacity.min, p.capacity.max);
            (p.target.clone(), Fleet::new(initial, settings.warmup))
        })
        .collect();
    let metrics = MemoryMetrics::new(settings.ingestion, start);
    let capacity = SimCapacity::new(fleets, start);
    let state = MemoryState::default();
    let mut lags = vec![0.0; policies.len()];
    let mut runs: Vec<Run> = policies
        .iter()
        .map(|p| Run {
            controller: "capstan".into(),
            policy: p.name.clone(),
            metric: driving_metric(p),
            steps: Vec::with_capacity(minutes.len()),
        })
        .collect();
    for (i, &at) in minutes.iter().enumerate() {
        capacity.advance(at);
        let mut serving = Vec::with_capacity(policies.len());
        for (policy, lag) in policies.iter().zip(&mut lags) {
            let in_service = capacity.fleet(&policy.target).map_or(0, |f| f.in_service());
            serving.push(in_service);
            // Expression metrics are computed from these as they are read.
            for (name, metric) in policy.series_metrics() {
                let query = &metric.query;
                let value = metric_value(trace, settings, &policy.name, name, at, in_service, *lag);
                if let Some(value) = value {
                    metrics.push(
                        query,
                        Datapoint {
                            timestamp: at,
                            value,
                        },
                    );
                }
            }
            if let (Some(load), Some(demand)) = (settings.load, &demand) {
                *lag = (*lag + demand[i] - f64::from(in_service) * load.per_unit_capacity).max(0.0);
            }
        }
        let now = at + TimeDelta::minutes(1);
        capacity.advance(now);
        metrics.advance(now);
        let woken = Trigger::Tick { at: now }.select(policies);
        let ports = Ports {
            metrics: &metrics,
            capacity: &capacity,
            state: &state,
            holder: "capstan-simulate",
            clock: &|| now,
            limits: Limits::default(),
        };
        let pass = futures_executor::block_on(evaluate(&woken, &woken, &ports, now, Mode::Act));
        for (((policy, run), outcome), &in_service) in policies
            .iter()
            .zip(&mut runs)
            .zip(pass.outcomes)
            .zip(&serving)
        {
            let decision = outcome.decision;
            let metric = metrics_at(&metrics, policy, &run.metric, at);
            let desired = capacity.fleet(&policy.target).map_or(0, |f| f.desired());
            run.steps.push(Step {
                at,
                demand: demand.as_ref().map(|d| d[i]),
                metric,
                in_service,
                desired,
                action: decision
                    .as_ref()
                    .and_then(|d| d.change())
                    .map(|(dir, _)| dir),
                scheduled: decision
                    .as_ref()
                    .is_some_and(|d| !d.explanation.schedules.is_empty()),
                why: decision.map_or_else(
                    || format!("{:?}", outcome.result),
                    |d| d.explanation.summary,
                ),
            });
        }
        progress();
    }
    runs
}

fn metrics_at(
    metrics: &MemoryMetrics,
    policy: &Policy,
    name: &str,
    at: DateTime<Utc>,
) -> Option<f64> {
    let query = &policy.metrics.get(name)?.query;
    metrics
        .last(query)
        .filter(|p| p.timestamp == at)
        .map(|p| p.value)
}

/// Replays `trace` with a baseline `controller` on one resource starting at `initial` units.
/// It reads the load model's CPU (or, without demand, the trace column `metric`), and is told
/// each minute's demand as its load when there is a load model. `scheduled`
/// marks minutes to flag as scheduled (capstan's windows, for comparison).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument distinct"
)]
pub fn simulate_baseline(
    trace: &Trace,
    controller: &mut dyn Controller,
    name: &str,
    metric: &str,
    initial: u32,
    settings: &Settings,
    scheduled: &[bool],
    mut progress: impl FnMut(),
) -> Run {
    let minutes = trace.minutes();
    let demand = trace.has(DEMAND).then(|| trace.filled(DEMAND));
    let mut fleet = Fleet::new(initial, settings.warmup);
    let mut history: Vec<Option<f64>> = Vec::with_capacity(minutes.len());
    let mut steps = Vec::with_capacity(minutes.len());
    for (i, &at) in minutes.iter().enumerate() {
        fleet.advance(at);
        let in_service = fleet.in_service();
        let value = match settings
            .load
            .filter(|_| trace.has(DEMAND) && !trace.has(metric))
        {
            Some(load) => trace.value(at, DEMAND).map(|d| load.cpu(d, in_service)),
            None => trace.value(at, metric),
        };
        history.push(value);
        let load = settings
            .load
            .filter(|_| demand.is_some())
            .and_then(|_| trace.value(at, DEMAND));
        controller.observe(at, load);
        let now = at + TimeDelta::minutes(1);
        fleet.advance(now);
        let before = fleet.desired();
        let after = controller.decide(&history, before, fleet.in_service(), fleet.warming());
        let action = Action::between(before, after).direction();
        if action.is_some() {
            fleet.set_desired(now, after);
        }
        steps.push(Step {
            at,
            demand: demand.as_ref().map(|d| d[i]),
            metric: value,
            in_service,
            desired: after,
            action,
            scheduled: scheduled.get(i).copied().unwrap_or(false),
            why: match action {
                Some(_) => format!("{name}: {before} -> {after}"),
                None => String::new(),
            },
        });
        progress();
    }
    Run {
        controller: name.to_owned(),
        policy: String::new(),
        metric: metric.to_owned(),
        steps,
    }
}
