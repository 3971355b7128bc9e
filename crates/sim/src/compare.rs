//! The decision-quality benchmark: every scenario under a directory, capstan against
//! baselines.

use std::path::Path;

use chrono::TimeDelta;

use crate::baseline::BaselineKind;
use crate::output::{BaselineSummary, Comparison};
use crate::scenario::{Scenario, ScenarioError};

/// Runs every scenario directory directly under `dir` (those with a `scenario.json`), in name
/// order, with capstan and each of `baselines`; `progress` is told each scenario's name before
/// it runs.
pub fn compare(
    dir: &Path,
    baselines: &[BaselineKind],
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
        let baselines = baselines
            .iter()
            .map(|&kind| {
                let run = scenario.run_baseline(kind, &settings, &capstan, || ())?;
                Ok(BaselineSummary {
                    name: kind.to_string(),
                    summary: scenario.summary(&run),
                })
            })
            .collect::<Result<_, ScenarioError>>()?;
        rows.push(Comparison {
            scenario: scenario.name.clone(),
            capstan: scenario.summary(&capstan),
            baselines,
            skipped: scenario.skipped.clone(),
        });
    }
    Ok(rows)
}
