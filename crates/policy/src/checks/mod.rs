//! The semantic checks, one per file. Each says what it checks, why it matters and shows an
//! example. A check records every problem it finds in the file's
//! [`Findings`](crate::validate::Findings) and carries on, so one run reports them all; checks
//! that also derive a value (a step, a window, a period) return `None` when it is invalid.
//!
//! Problems the parser catches (YAML syntax, unknown keys, wrong types, bad durations, cron
//! expressions, time zones, statistics and `M of N` windows) are not here: see
//! [`crate::parse`] and [`crate::values`].

pub(crate) mod amounts;
pub(crate) mod bounds;
pub(crate) mod connections;
pub(crate) mod databases;
pub(crate) mod delays;
pub(crate) mod expression_cycles;
pub(crate) mod expressions;
pub(crate) mod forecast;
pub(crate) mod grows_only;
pub(crate) mod metric_kinds;
pub(crate) mod metric_refs;
pub(crate) mod periods;
pub(crate) mod rds_identifiers;
pub(crate) mod replicas;
pub(crate) mod schedules;
pub(crate) mod steps;
pub(crate) mod thresholds;
pub(crate) mod topics;
pub(crate) mod track;
pub(crate) mod unique_names;
pub(crate) mod unique_targets;
pub(crate) mod version;
pub(crate) mod windows;

#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use crate::model::Duration;
use crate::validate::Parsed;

/// Each file whose `key` an earlier file already has, paired with that earlier file: the
/// basis of the checks that something is unique across the set.
fn repeats<'p, 'a, K: Eq + Hash>(
    parsed: &'p [Parsed<'a>],
    key: impl Fn(&'p Parsed<'a>) -> K,
) -> Vec<(&'p Parsed<'a>, &'p Parsed<'a>)> {
    let mut first = HashMap::new();
    let mut repeats = Vec::new();
    for file in parsed {
        match first.entry(key(file)) {
            Entry::Vacant(entry) => {
                entry.insert(file);
            }
            Entry::Occupied(entry) => repeats.push((*entry.get(), file)),
        }
    }
    repeats
}

/// How many `unit`s make `seconds`, if it is a positive whole number of them.
fn whole_multiple(seconds: u64, unit: u64) -> Option<u64> {
    (seconds > 0 && seconds.is_multiple_of(unit)).then_some(seconds / unit)
}

/// The positive multiples of `unit` nearest to `seconds`, for help: `5m or 10m`, or just
/// `5m` below one unit.
fn nearest_multiples(seconds: u64, unit: u64) -> String {
    let below = seconds / unit * unit;
    let above = Duration::from_secs(below.saturating_add(unit));
    match below {
        0 => above.to_string(),
        _ => format!("{} or {above}", Duration::from_secs(below)),
    }
}
