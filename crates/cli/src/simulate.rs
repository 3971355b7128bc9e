//! `capstan simulate`: replays a scenario or a trace through the policies with a simulated
//! fleet (all logic in `capstan-sim`), prints the table and summary, writes the plot; with
//! `--compare DIR`, prints the decision-quality benchmark of every scenario under DIR.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use capstan_policy::model::Duration;
use capstan_sim::baseline::BaselineKind;
use capstan_sim::output::{self, Format};
use capstan_sim::scenario::Scenario;

/// Arguments of `capstan simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scenario directory (trace.csv, policies/, scenario.json) or a trace file (.csv, or
    /// .json for a GetMetricData answer).
    #[arg(required_unless_present = "compare")]
    path: Option<PathBuf>,
    /// Policy directory or file, instead of the scenario's own `policies/`.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Time from a scale-out to the new units serving. By default, the scenario's (3m).
    #[arg(long)]
    warmup: Option<Duration>,
    /// Output format: human, csv or json.
    #[arg(long, default_value = "human")]
    output: Format,
    /// Write an SVG plot of demand and capacity here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also run a baseline autoscaler: target-tracking, step or predictive (AWS; predictive
    /// scaling over target tracking), or hpa (Kubernetes).
    #[arg(long)]
    baseline: Option<BaselineKind>,
    /// Compare capstan with every baseline (only --baseline's, if given) on every scenario under
    /// this directory.
    #[arg(long, conflicts_with = "path")]
    compare: Option<PathBuf>,
}

/// Runs the simulation or the comparison.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let warmup = args.warmup.map(Duration::as_delta);
    if let Some(dir) = &args.compare {
        let baselines = args
            .baseline
            .map_or(BaselineKind::ALL.to_vec(), |kind| vec![kind]);
        let rows = capstan_sim::compare::compare(dir, &baselines, warmup, |name| {
            eprintln!("simulating {name}...");
        })?;
        let text = match args.output {
            Format::Json => serde_json::to_string_pretty(&rows)? + "\n",
            _ => output::comparison_table(&rows),
        };
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    }
    let path = args.path.as_deref().context("no scenario given")?;
    let scenario = Scenario::load(path, args.policies.as_deref())?;
    for skipped in &scenario.skipped {
        eprintln!("{skipped}");
    }
    let settings = scenario.settings(warmup);
    let minutes = scenario.trace.minutes().len() as u64;
    let bar = capstan_sim::progress_bar(minutes, "capstan");
    let mut runs = scenario.run(&settings, || bar.inc(1));
    bar.finish_and_clear();
    if let (Some(kind), Some(first)) = (args.baseline, runs.first()) {
        let bar = capstan_sim::progress_bar(minutes, &kind.to_string());
        let base = scenario.run_baseline(kind, &settings, first, || bar.inc(1))?;
        bar.finish_and_clear();
        runs.push(base);
    }
    let summarised: Vec<_> = runs
        .iter()
        .map(|run| (run.clone(), scenario.summary(run)))
        .collect();
    std::io::stdout()
        .lock()
        .write_all(output::render(&summarised, args.output).as_bytes())?;
    if let Some(plot) = &args.plot {
        output::plot(plot, &scenario.name, &runs, scenario.config.load)
            .map_err(anyhow::Error::msg)?;
        eprintln!("plot written to {}", plot.display());
    }
    Ok(())
}
