//! A scenario directory: `trace.csv` (or `trace.json`), `policies/*.yaml` and `scenario.json`
//! (the load model, the starting capacity, the warm-up, the days of history before the scored
//! window and the baselines' settings).

use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use capstan_policy::PolicySet;
use capstan_policy::model::{Policy, Target};

use crate::baseline::{BaselineConfig, BaselineKind};
use crate::load::LoadModel;
use crate::simulate::{DEFAULT_INGESTION, Run, Settings, simulate, simulate_baseline};
use crate::summary::Summary;
use crate::trace::Trace;

/// `scenario.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// The load model; needed when the trace has `demand`.
    pub load: Option<LoadModel>,
    /// Capacity at the start. By default, the policy's `capacity.min`.
    pub initial_capacity: Option<u32>,
    /// Warm-up of new units, in seconds. By default, 180.
    pub warmup_secs: Option<u32>,
    /// Days at the start of the trace that are history: simulated, so that forecasts have data
    /// and the fleet has settled, but left out of the runs and their summaries. By default, 0.
    pub history_days: Option<u32>,
    /// The baselines' settings.
    pub baseline: Option<BaselineConfig>,
}

/// Why a scenario could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The trace.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
    /// The policies.
    #[error("{0}")]
    Policies(#[from] capstan_policy::Report),
    /// `scenario.json`.
    #[error("{path}:{line}: {message}")]
    Config {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Why `policy` is not simulated, if it is not: the simulated fleet is units that serve the
/// demand themselves. An `rds_replicas` policy's replicas serve reads beside their source, and
/// its `quiet` rule reads the source's own metrics; neither is modelled.
pub fn not_simulated(policy: &Policy) -> Option<&'static str> {
    matches!(policy.target, Target::RdsReplicas { .. }).then_some(
        "an rds_replicas policy's replicas serve reads beside their source, whose own \
         metrics its `quiet` rule reads; the simulated fleet is units that serve the demand \
         alone",
    )
}

/// A loaded scenario.
#[derive(Debug)]
pub struct Scenario {
    /// Its name (the directory's, or the trace file's stem).
    pub name: String,
    /// The trace.
    pub trace: Trace,
    /// The policies simulated.
    pub policies: Vec<Policy>,
    /// Why each policy left out was left out, naming its file (see [`not_simulated`]).
    pub skipped: Vec<String>,
    /// Its settings.
    pub config: ScenarioConfig,
}

impl Scenario {
    /// Loads a scenario directory, or a trace file with `policies` (a directory or file).
    /// `policies` overrides the directory's own `policies/`.
    pub fn load(path: &Path, policies: Option<&Path>) -> Result<Self, ScenarioError> {
        let (dir, trace_path) = if path.is_dir() {
            let json = path.join("trace.json");
            let trace = if json.exists() {
                json
            } else {
                path.join("trace.csv")
            };
            (Some(path.to_path_buf()), trace)
        } else {
            (None, path.to_path_buf())
        };
        let policy_dir: PathBuf = match (policies, &dir) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(d)) => d.join("policies"),
            (None, None) => {
                return Err(ScenarioError::Other(
                    "a trace file needs --policies DIR".into(),
                ));
            }
        };
        let config = match dir.as_ref().map(|d| d.join("scenario.json")) {
            Some(file) if file.exists() => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| ScenarioError::Other(format!("{}: {e}", file.display())))?;
                serde_json::from_str(&text).map_err(|e| ScenarioError::Config {
                    path: file.display().to_string(),
                    line: e.line(),
                    message: e.to_string(),
                })?
            }
            _ => ScenarioConfig {
                load: None,
                initial_capacity: None,
                warmup_secs: None,
                history_days: None,
                baseline: None,
            },
        };
        let set = PolicySet::load(&[policy_dir])?;
        let name = dir
            .as_deref()
            .unwrap_or(path)
            .file_stem()
            .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
        let (mut policies, mut skipped) = (Vec::new(), Vec::new());
        for policy in set.policies() {
            match not_simulated(policy) {
                Some(why) => skipped.push(format!(
                    "{} ({}): not simulated: {why}",
                    policy.file, policy.name
                )),
                None => policies.push(policy.clone()),
            }
        }
        if policies.is_empty() && !skipped.is_empty() {
            return Err(ScenarioError::Other(skipped.join("\n")));
        }
        Ok(Self {
            name,
            trace: Trace::load(&trace_path)?,
            policies,
            skipped,
            config,
        })
    }

    /// Settings from the scenario, with `warmup` overriding its own.
    pub fn settings(&self, warmup: Option<TimeDelta>) -> Settings {
        Settings {
            load: self.config.load,
            warmup: warmup.unwrap_or_else(|| {
                TimeDelta::seconds(i64::from(self.config.warmup_secs.unwrap_or(180)))
            }),
            initial: self.config.initial_capacity,
            ingestion: DEFAULT_INGESTION,
            utilization: Vec::new(),
        }
    }

    /// Runs capstan over the scenario, keeping the scored minutes.
    pub fn run(&self, settings: &Settings, progress: impl FnMut()) -> Vec<Run> {
        let mut runs = simulate(&self.trace, &self.policies, settings, progress);
        for run in &mut runs {
            self.score(run);
        }
        runs
    }

    /// The minutes of the trace before the scored window: its first `history_days` days.
    fn history_minutes(&self) -> usize {
        let days = self.config.history_days.unwrap_or(0);
        let minutes = self.trace.minutes();
        let Some(&start) = minutes.first() else {
            return 0;
        };
        let scored = start + TimeDelta::days(days.into());
        minutes.partition_point(|at| *at < scored)
    }

    /// Drops the history's minutes from `run`.
    fn score(&self, run: &mut Run) {
        run.steps
            .drain(..self.history_minutes().min(run.steps.len()));
    }

    /// Runs a baseline on the first policy's resource and bounds, keeping the scored minutes;
    /// `capstan` is capstan's scored run of it, whose schedule windows the baseline's run is
    /// marked with.
    pub fn run_baseline(
        &self,
        kind: BaselineKind,
        settings: &Settings,
        capstan: &Run,
        progress: impl FnMut(),
    ) -> Result<Run, ScenarioError> {
        let config = self.config.baseline.as_ref().ok_or_else(|| {
            ScenarioError::Other(format!(
                "scenario `{}` has no baseline settings (`baseline` in scenario.json)",
                self.name
            ))
        })?;
        let policy = self
            .policies
            .first()
            .ok_or_else(|| ScenarioError::Other("no policy".into()))?;
        let (min, max) = (policy.capacity.min, policy.capacity.max);
        let initial = settings.initial.unwrap_or(min).clamp(min, max);
        // `capstan` is scored; the baseline runs over the history too.
        let scheduled: Vec<bool> = std::iter::repeat_n(false, self.history_minutes())
            .chain(capstan.steps.iter().map(|s| s.scheduled))
            .collect();
        let per_unit_load = settings.load.map_or(100.0, |load| load.per_unit_capacity);
        let mut controller = kind.controller(config, min, max, per_unit_load);
        let mut run = simulate_baseline(
            &self.trace,
            controller.as_mut(),
            &kind.to_string(),
            &config.metric,
            initial,
            settings,
            &scheduled,
            progress,
        );
        run.policy = policy.name.clone();
        self.score(&mut run);
        Ok(run)
    }

    /// Summary of a run under this scenario's load model.
    pub fn summary(&self, run: &Run) -> Summary {
        Summary::of(run, self.config.load)
    }
}
