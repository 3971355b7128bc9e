//! The decision-quality benchmark: every scenario under a directory, capstan against a
//! baseline.

use std::path::Path;

use chrono::TimeDelta;

use crate::baseline::BaselineKind;
use crate::output::Comparison;
use crate::scenario::{Scenario, ScenarioError};

/// Runs every scenario directory directly under `dir` (those with a `scenario.json`), in name
/// order, with capstan and `baseline`; `progress` is told each scenario's name before it runs.
pub fn compare(
    dir: &Path,
    baseline: BaselineKind,
    warmup: Option<TimeDelta>,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Comparison>, ScenarioError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ScenarioError::Other(format!("{}: {e}", dir.display())))?;
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("scenario.json").is_file())
        .collect();
    dirs.sort();
    let mut rows = Vec::new();
    for path in dirs {
        let scenario = Scenario::load(&path, None)?;
        progress(&scenario.name);
        let settings = scenario.settings(warmup);
        let Some(capstan) = scenario.run(&settings, || ()).into_iter().next() else {
            continue;
        };
        let base = scenario.run_baseline(baseline, &settings, &capstan, || ())?;
        rows.push(Comparison {
            scenario: scenario.name.clone(),
            capstan: scenario.summary(&capstan),
            baseline_name: baseline.to_string(),
            baseline: scenario.summary(&base),
        });
    }
    Ok(rows)
}
