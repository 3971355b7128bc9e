//! Metric traces: one value per column per minute, read from CSV or from the JSON of a
//! CloudWatch `GetMetricData` answer.
//!
//! CSV: a header with a `timestamp` column (RFC 3339, or `YYYY-MM-DD HH:MM:SS` read as UTC)
//! and one column per series: `<policy>.<metric>` or `<metric>` for a metric a policy reads
//! directly, or `demand` for the load model (see [`crate::load`]). Missing rows and empty cells
//! are missing datapoints, as CloudWatch returns them.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Deserialize;

/// The column that drives the load model.
pub const DEMAND: &str = "demand";

/// A metric trace at one-minute resolution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    /// Column names, in file order (without `timestamp`).
    pub columns: Vec<String>,
    /// Values by minute (start of the minute) and column; absent means no datapoint.
    pub rows: BTreeMap<DateTime<Utc>, BTreeMap<String, f64>>,
}

/// Why a trace could not be read. Displays as `file:line: message`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the file is wrong.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Trace {
    /// Reads a `.json` file as a `GetMetricData` answer, anything else as CSV.
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: name.clone(),
            source,
        })?;
        if path.extension().is_some_and(|ext| ext == "json") {
            Self::from_json(&name, &text)
        } else {
            Self::from_csv(&name, &text)
        }
    }

    /// Parses CSV text; `path` names the source in errors.
    pub fn from_csv(path: &str, text: &str) -> Result<Self, TraceError> {
        let error = |line: usize, message: String| TraceError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, header) = lines
            .find(|(_, l)| !l.trim().is_empty())
            .ok_or_else(|| error(1, "empty trace: expected a header line".into()))?;
        let names: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
        let time_col = names
            .iter()
            .position(|n| n == "timestamp" || n == "period")
            .ok_or_else(|| error(1, "no `timestamp` column in the header".into()))?;
        let columns: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != time_col)
            .map(|(_, n)| {
                if n == "count" {
                    DEMAND.to_owned()
                } else {
                    n.clone()
                }
            })
            .collect();
        let mut trace = Trace {
            columns,
            rows: BTreeMap::new(),
        };
        for (line, text) in lines {
            if text.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = text.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(error(
                    line,
                    format!("expected {} fields, found {}", names.len(), cells.len()),
                ));
            }
            let at = parse_time(cells[time_col]).map_err(|m| error(line, m))?;
            let mut values = BTreeMap::new();
            let data = cells.iter().enumerate().filter(|&(i, _)| i != time_col);
            for ((_, cell), column) in data.zip(&trace.columns) {
                if cell.is_empty() {
                    continue;
                }
                let value: f64 = cell
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| {
                        error(
                            line,
                            format!("`{cell}` in column `{column}` is not a number"),
                        )
                    })?;
                values.insert(column.clone(), value);
            }
            if trace.rows.insert(at, values).is_some() {
                return Err(error(line, format!("timestamp {at} appears twice")));
            }
        }
        Ok(trace)
    }

    /// Parses the JSON of a `GetMetricData` answer: each `MetricDataResults` entry becomes the
    /// column named by its `Id`.
    pub fn from_json(path: &str, text: &str) -> Result<Self, TraceError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            metric_data_results: Vec<Result>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Result {
            id: String,
            timestamps: Vec<DateTime<Utc>>,
            values: Vec<f64>,
        }
        let answer: Answer = serde_json::from_str(text).map_err(|e| TraceError::Line {
            path: path.to_owned(),
            line: e.line(),
            message: e.to_string(),
        })?;
        let mut trace = Trace::default();
        for result in answer.metric_data_results {
            if result.timestamps.len() != result.values.len() {
                return Err(TraceError::Line {
                    path: path.to_owned(),
                    line: 1,
                    message: format!(
                        "`{}` has {} timestamps but {} values",
                        result.id,
                        result.timestamps.len(),
                        result.values.len()
                    ),
                });
            }
            for (at, value) in result.timestamps.into_iter().zip(result.values) {
                trace
                    .rows
                    .entry(minute(at))
                    .or_default()
                    .insert(result.id.clone(), value);
            }
            trace.columns.push(result.id);
        }
        Ok(trace)
    }

    /// First and last minute, if the trace has rows.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((*self.rows.keys().next()?, *self.rows.keys().next_back()?))
    }

    /// Every minute from the first to the last, gaps included.
    pub fn minutes(&self) -> Vec<DateTime<Utc>> {
        let Some((first, last)) = self.span() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut at = first;
        while at <= last {
            out.push(at);
            at += TimeDelta::minutes(1);
        }
        out
    }

    /// The value of `column` at minute `at`, if present.
    pub fn value(&self, at: DateTime<Utc>, column: &str) -> Option<f64> {
        self.rows.get(&at)?.get(column).copied()
    }

    /// Whether the trace has this column.
    pub fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// `column` at every minute of [`Trace::minutes`], gaps filled by linear interpolation
    /// between the nearest known values (held flat before the first and after the last). Used
    /// for what really happened during a metric outage: the demand went on, unseen.
    pub fn filled(&self, column: &str) -> Vec<f64> {
        let minutes = self.minutes();
        let known: Vec<(usize, f64)> = minutes
            .iter()
            .enumerate()
            .filter_map(|(i, &at)| Some((i, self.value(at, column)?)))
            .collect();
        let mut out = vec![0.0; minutes.len()];
        if known.is_empty() {
            return out;
        }
        let mut next = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            while next < known.len() && known[next].0 < i {
                next += 1;
            }
            *slot = match (next.checked_sub(1).map(|p| known[p]), known.get(next)) {
                (_, Some(&(j, v))) if j == i => v,
                (Some((a, va)), Some(&(b, vb))) => va + (vb - va) * (i - a) as f64 / (b - a) as f64,
                (Some((_, v)), None) | (None, Some(&(_, v))) => v,
                (None, None) => 0.0,
            };
        }
        out
    }
}

fn minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(at)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map(|t| t.and_utc()))
        .map_err(|_| {
            format!("`{text}` is not a timestamp: write RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC)")
        })?;
    if at.timestamp() % 60 != 0 {
        return Err(format!("`{text}` is not on a whole minute"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_gaps_and_empty_cells() {
        let text = "timestamp,demand,web.cpu\n2026-01-01T00:00:00Z,10,50\n2026-01-01T00:01:00Z,,60\n2026-01-01T00:03:00Z,40,\n";
        let trace = Trace::from_csv("t.csv", text).expect("valid");
        assert_eq!(trace.columns, ["demand", "web.cpu"]);
        assert_eq!(trace.minutes().len(), 4);
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(trace.value(t0, "web.cpu"), Some(50.0));
        assert_eq!(trace.value(t0 + TimeDelta::minutes(1), "demand"), None);
        assert_eq!(trace.filled("demand"), [10.0, 20.0, 30.0, 40.0]);
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        let text = "timestamp,demand\n2026-01-01T00:00:00Z,10\n2026-01-01T00:01:00Z,lots\n";
        let error = Trace::from_csv("t.csv", text).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "t.csv:3: `lots` in column `demand` is not a number"
        );
        let error = Trace::from_csv("t.csv", "timestamp,a\nyesterday,1\n").expect_err("bad time");
        assert!(
            error
                .to_string()
                .starts_with("t.csv:2: `yesterday` is not a timestamp")
        );
        let error = Trace::from_csv("t.csv", "when,a\n").expect_err("no time column");
        assert_eq!(
            error.to_string(),
            "t.csv:1: no `timestamp` column in the header"
        );
        let error =
            Trace::from_csv("t.csv", "timestamp,a\n2026-01-01 00:00:00,1,2\n").expect_err("fields");
        assert_eq!(error.to_string(), "t.csv:2: expected 2 fields, found 3");
    }

    #[test]
    fn worldcup_columns_read_as_demand() {
        let trace =
            Trace::from_csv("wc.csv", "period,count\n1998-04-30 21:30:00,2\n").expect("valid");
        assert_eq!(trace.columns, ["demand"]);
    }

    #[test]
    fn get_metric_data_json() {
        let text = r#"{"MetricDataResults":[{"Id":"cpu","Label":"CPU","Timestamps":["2026-01-01T00:01:00Z","2026-01-01T00:00:00Z"],"Values":[70.5,20.0],"StatusCode":"Complete"}]}"#;
        let trace = Trace::from_json("a.json", text).expect("valid");
        assert_eq!(trace.columns, ["cpu"]);
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(trace.value(t0, "cpu"), Some(20.0));
        assert_eq!(trace.value(t0 + TimeDelta::minutes(1), "cpu"), Some(70.5));
    }

    #[test]
    fn json_errors_name_file_and_line() {
        let text = "{\n\"MetricDataResults\": [\n{\"Id\": \"cpu\", \"Timestamps\": [], \"Values\": [1.0]}\n]\n}";
        let error = Trace::from_json("a.json", text).expect_err("mismatch");
        assert!(
            error
                .to_string()
                .starts_with("a.json:1: `cpu` has 0 timestamps")
        );
        let error = Trace::from_json("a.json", "{\n\"MetricDataResults\": [\n{\"Id\": 3}]}")
            .expect_err("bad type");
        assert!(error.to_string().starts_with("a.json:3: "), "{error}");
    }
}
