//! Rendering runs: the per-minute table (human, CSV, JSON), the summary, the comparison table
//! and the SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use capstan_engine::Direction;

use crate::load::LoadModel;
use crate::simulate::Run;
use crate::summary::Summary;

/// Output format of the per-minute table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people; only minutes with an action, plus the summary.
    Human,
    /// Every minute as CSV.
    Csv,
    /// Runs and summaries as JSON.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "human" => Ok(Self::Human),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown output `{other}`: use human, csv or json")),
        }
    }
}

fn direction(action: Option<Direction>) -> &'static str {
    match action {
        Some(Direction::Out) => "out",
        Some(Direction::In) => "in",
        None => "",
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// A count, or `n/a` when it could not be measured.
pub(crate) fn opt_count(value: Option<usize>) -> String {
    value.map_or_else(|| "n/a".into(), |v| v.to_string())
}

/// Renders `runs` with their summaries in `format`.
pub fn render(runs: &[(Run, Summary)], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Entry<'a> {
                run: &'a Run,
                summary: &'a Summary,
            }
            let entries: Vec<Entry<'_>> = runs
                .iter()
                .map(|(run, summary)| Entry { run, summary })
                .collect();
            out = serde_json::to_string_pretty(&entries).unwrap_or_default();
            out.push('\n');
        }
        Format::Csv => {
            out.push_str(
                "controller,policy,timestamp,demand,metric,in_service,desired,action,scheduled\n",
            );
            for (run, _) in runs {
                for s in &run.steps {
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{},{},{},{},{}",
                        run.controller,
                        run.policy,
                        s.at.to_rfc3339(),
                        s.demand.map_or(String::new(), |d| d.to_string()),
                        s.metric.map_or(String::new(), |m| m.to_string()),
                        s.in_service,
                        s.desired,
                        direction(s.action),
                        s.scheduled
                    );
                }
            }
        }
        Format::Human => {
            for (run, summary) in runs {
                let _ = writeln!(out, "{} on {} (actions only):", run.controller, run.policy);
                let _ = writeln!(
                    out,
                    "  {:<17} {:>10} {:>8} {:>10} {:>7} {:>6}  why",
                    "minute (UTC)", "demand", run.metric, "in service", "desired", "action"
                );
                for s in run.steps.iter().filter(|s| s.action.is_some()) {
                    let _ = writeln!(
                        out,
                        "  {:<17} {:>10} {:>8} {:>10} {:>7} {:>6}  {}",
                        s.at.format("%Y-%m-%d %H:%M"),
                        opt(s.demand, 0),
                        opt(s.metric, 1),
                        s.in_service,
                        s.desired,
                        direction(s.action),
                        s.why
                    );
                }
                let _ = writeln!(out, "  {}", summary_line(summary));
                out.push('\n');
            }
        }
    }
    out
}

/// One line: the summary's figures.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "{} minutes: {} under-provisioned ({} in schedule windows), {:.1} capacity-hours, {} actions, {} flaps, {} reversals",
        s.minutes,
        opt_count(s.under_provisioned),
        opt_count(s.under_provisioned_scheduled),
        s.capacity_hours,
        s.actions,
        s.flaps,
        s.reversals
    )
}

/// One scenario of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// capstan's figures.
    pub capstan: Summary,
    /// Each baseline's figures.
    pub baselines: Vec<BaselineSummary>,
    /// The policies left out, and why ([`crate::scenario::not_simulated`]).
    pub skipped: Vec<String>,
}

/// One baseline's figures in a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineSummary {
    /// The baseline's name.
    pub name: String,
    /// Its figures.
    pub summary: Summary,
}

/// The comparison table: per scenario capstan's figures, then each baseline's followed by
/// capstan's ratios to it and whether they meet the bar (under-provisioned minutes ≤ 25% of the
/// baseline's at ≤ 110% of its capacity-hours).
pub fn comparison_table(rows: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:<24} {:>6} {:>7} {:>8} {:>7} {:>5} {:>5}   {:>7} {:>8}  bar",
        "scenario",
        "controller",
        "under",
        "in-sched",
        "cap-h",
        "actions",
        "flaps",
        "revs",
        "under%",
        "cap-h%",
    );
    let figures = |out: &mut String, scenario: &str, name: &str, s: &Summary| {
        let _ = writeln!(
            out,
            "{:<13} {:<24} {:>6} {:>7} {:>8.1} {:>7} {:>5} {:>5}",
            scenario,
            name,
            opt_count(s.under_provisioned),
            opt_count(s.under_provisioned_scheduled),
            s.capacity_hours,
            s.actions,
            s.flaps,
            s.reversals
        );
    };
    for row in rows {
        for skipped in &row.skipped {
            let _ = writeln!(out, "{:<13} {skipped}", row.scenario);
        }
        figures(&mut out, &row.scenario, "capstan", &row.capstan);
        for baseline in &row.baselines {
            figures(&mut out, &row.scenario, &baseline.name, &baseline.summary);
            let base = &baseline.summary;
            let under = match (row.capstan.under_provisioned, base.under_provisioned) {
                (Some(c), Some(b)) if b > 0 => Some(c as f64 / b as f64 * 100.0),
                (Some(0), Some(0)) => Some(0.0),
                _ => None,
            };
            let cost = row.capstan.capacity_hours / base.capacity_hours * 100.0;
            let meets = match (row.capstan.under_provisioned, base.under_provisioned) {
                (Some(c), Some(b)) => (c as f64 <= 0.25 * b as f64) && cost <= 110.0,
                _ => false,
            };
            let _ = writeln!(
                out,
                "{:<13} {:<24} {:>6} {:>7} {:>8} {:>7} {:>5} {:>5}   {:>7} {:>8}  {}",
                row.scenario,
                format!("capstan/{}", baseline.name),
                "",
                "",
                "",
                "",
                "",
                "",
                under.map_or_else(|| "n/a".into(), |u| format!("{u:.0}%")),
                format!("{cost:.0}%"),
                if meets { "met" } else { "NOT met" }
            );
        }
    }
    out
}

/// Draws demand (in units of capacity needed, with a load model) or the driving metric, and
/// desired and in-service capacity of each run, with each action marked (triangle: out, cross: in), to an
/// SVG file.
pub fn plot(path: &Path, title: &str, runs: &[Run], load: Option<LoadModel>) -> Result<(), String> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let n = first.steps.len();
    let needed: Vec<Option<f64>> = first
        .steps
        .iter()
        .map(|s| match (s.demand, load) {
            (Some(d), Some(l)) => Some(d / l.per_unit_capacity),
            _ => s.metric,
        })
        .collect();
    let label = if load.is_some() && first.steps.iter().any(|s| s.demand.is_some()) {
        "demand (units needed)".to_owned()
    } else {
        first.metric.clone()
    };
    let top = runs
        .iter()
        .flat_map(|r| {
            r.steps
                .iter()
                .map(|s| f64::from(s.desired.max(s.in_service)))
        })
        .chain(needed.iter().flatten().copied())
        .fold(1.0_f64, f64::max)
        * 1.1;
    let error = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0..n.max(1), 0.0..top)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "minutes from {}",
            first
                .steps
                .first()
                .map_or_else(String::new, |s| s.at.to_string())
        ))
        .y_desc("units")
        .draw()
        .map_err(|e| error(&e))?;
    chart
        .draw_series(LineSeries::new(
            needed
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, (*v)?))),
            BLACK.mix(0.6),
        ))
        .map_err(|e| error(&e))?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    let palette = [(BLUE, CYAN), (RED, MAGENTA), (GREEN, YELLOW)];
    for (run, &(strong, light)) in runs.iter().zip(palette.iter().cycle()) {
        chart
            .draw_series(LineSeries::new(
                run.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, f64::from(s.desired))),
                strong,
            ))
            .map_err(|e| error(&e))?
            .label(format!("{} desired", run.controller))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], strong));
        chart
            .draw_series(LineSeries::new(
                run.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, f64::from(s.in_service))),
                light,
            ))
            .map_err(|e| error(&e))?
            .label(format!("{} in service", run.controller))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], light));
        let marks = |direction: Direction| {
            run.steps
                .iter()
                .enumerate()
                .filter(move |(_, s)| s.action == Some(direction))
                .map(|(i, s)| (i, f64::from(s.desired)))
        };
        chart
            .draw_series(marks(Direction::Out).map(|c| TriangleMarker::new(c, 5, strong.filled())))
            .map_err(|e| error(&e))?;
        chart
            .draw_series(marks(Direction::In).map(|c| Cross::new(c, 4, strong)))
            .map_err(|e| error(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BaselineSummary, Comparison, comparison_table};
    use crate::summary::Summary;

    fn summary(under: usize, capacity_hours: f64) -> Summary {
        Summary {
            minutes: 600,
            under_provisioned: Some(under),
            under_provisioned_scheduled: Some(0),
            capacity_hours,
            actions: 10,
            flaps: 1,
            reversals: 2,
        }
    }

    #[test]
    fn the_comparison_rates_capstan_against_each_baseline_in_turn() {
        let row = Comparison {
            scenario: "spike".into(),
            capstan: summary(2, 105.0),
            baselines: vec![
                BaselineSummary {
                    name: "target-tracking".into(),
                    summary: summary(8, 100.0),
                },
                BaselineSummary {
                    name: "hpa".into(),
                    summary: summary(4, 100.0),
                },
            ],
            skipped: Vec::new(),
        };
        let table = comparison_table(&[row]);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert_eq!(lines[0][1], "capstan");
        assert_eq!(lines[1][1], "target-tracking");
        assert_eq!(
            lines[2][1..],
            ["capstan/target-tracking", "25%", "105%", "met"]
        );
        assert_eq!(lines[3][1], "hpa");
        assert_eq!(lines[4][1..], ["capstan/hpa", "50%", "105%", "NOT", "met"]);
    }
}
