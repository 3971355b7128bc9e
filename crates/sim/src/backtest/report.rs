//! A backtest's report: per policy, each set's under-provisioned minutes, capacity-hours,
//! actions, flaps and reversals beside the capacity that really ran and the baselines', as
//! text, CSV or JSON.

use std::fmt::Write as _;

use crate::output::{Format, opt_count};

use super::baselines::BaselineTarget;
use super::{ACTUAL, Backtest, SATURATED_PERCENT};

/// Renders `backtest` in `format`.
pub fn render(backtest: &Backtest, format: Format) -> String {
    match format {
        Format::Human => human(backtest),
        Format::Csv => csv(backtest),
        Format::Json => serde_json::to_string_pretty(backtest).unwrap_or_default() + "\n",
    }
}

/// The span, the resolution and the load model, then one table per policy.
fn human(backtest: &Backtest) -> String {
    let mut out = String::new();
    let minutes = (backtest.end - backtest.start).num_minutes();
    let _ = writeln!(
        out,
        "Backtest from {} to {} UTC ({} minutes): {}-minute datapoints (CloudWatch keeps them \
         {} days); replayed fleets serve {} s after a scale-out.",
        backtest.start.format("%Y-%m-%d %H:%M"),
        backtest.end.format("%Y-%m-%d %H:%M"),
        minutes,
        backtest.resolution.period_secs / 60,
        backtest.resolution.retention_days,
        backtest.warmup_secs,
    );
    let _ = writeln!(
        out,
        "Load model: work = utilization x capacity in service (a queue metric as recorded); a \
         minute is under-provisioned when the work exceeds the capacity in service.",
    );
    for policy in &backtest.policies {
        let _ = writeln!(out, "\n{} ({})", policy.policy, policy.target);
        if let Some(why) = &policy.skipped {
            let _ = writeln!(out, "  not replayed: {why}");
            continue;
        }
        if let Some(source) = &policy.capacity_source {
            let _ = writeln!(out, "  capacity history: {source}");
        }
        match (&policy.demand_from, policy.saturated_minutes) {
            (Some(metric), Some(saturated)) => {
                let _ = writeln!(
                    out,
                    "  demand: {metric} x capacity in service; {saturated} saturated minutes \
                     (>= {SATURATED_PERCENT}%), where the model undercounts demand"
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  demand: no utilization metric; metrics replayed as recorded, \
                     under-provisioning not measured"
                );
            }
        }
        let _ = writeln!(
            out,
            "  {:<16} {:>6} {:>10} {:>8} {:>6} {:>6}",
            "set", "under", "cap-h", "actions", "flaps", "revs"
        );
        for row in &policy.summaries {
            let s = &row.summary;
            let _ = writeln!(
                out,
                "  {:<16} {:>6} {:>10.1} {:>8} {:>6} {:>6}",
                row.set,
                opt_count(s.under_provisioned),
                s.capacity_hours,
                s.actions,
                s.flaps,
                s.reversals
            );
        }
        let _ = writeln!(
            out,
            "  ({ACTUAL}: the capacity that ran; its under-provisioned minutes are the saturated ones)"
        );
        match &policy.baseline_target {
            Some(BaselineTarget { target, from }) => {
                let _ = writeln!(
                    out,
                    "  (baselines: at target {target}, from the policy's {from} on the demand metric)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  (no baselines: the policy neither tracks nor scales out on a utilization metric)"
                );
            }
        }
    }
    out
}

/// One line per policy and set.
fn csv(backtest: &Backtest) -> String {
    let mut out = String::from(
        "policy,set,minutes,under_provisioned,capacity_hours,actions,flaps,reversals,capacity_source,saturated_minutes,skipped\n",
    );
    for policy in &backtest.policies {
        let source = policy.capacity_source.as_deref().unwrap_or_default();
        let saturated = policy
            .saturated_minutes
            .map_or_else(String::new, |v| v.to_string());
        if let Some(why) = &policy.skipped {
            let _ = writeln!(
                out,
                "{},,,,,,,,{source},{saturated},\"{}\"",
                policy.policy,
                why.replace('"', "\"\"")
            );
        }
        for row in &policy.summaries {
            let s = &row.summary;
            let _ = writeln!(
                out,
                "{},{},{},{},{:.3},{},{},{},{source},{saturated},",
                policy.policy,
                row.set,
                s.minutes,
                s.under_provisioned
                    .map_or_else(String::new, |v| v.to_string()),
                s.capacity_hours,
                s.actions,
                s.flaps,
                s.reversals
            );
        }
    }
    out
}
