//! What a backtest reads from CloudWatch: the resolution its span is kept at, the queries for
//! every metric the policies use and each resource's capacity, and the per-minute series made
//! of the answers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use capstan_engine::{MetricData, Observations};
use capstan_policy::model::{Duration, MetricQuery, Policy, Statistic, Target};

use super::BacktestError;

/// The resolution CloudWatch keeps a span of history at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// The period of the datapoints read, in seconds.
    pub period_secs: u32,
    /// How long CloudWatch keeps datapoints of that period, in days.
    pub retention_days: u32,
}

/// CloudWatch's retention of the periods a backtest reads ("Metrics retention", Amazon
/// CloudWatch User Guide): one-minute datapoints for 15 days, five-minute ones for 63 days.
pub const RESOLUTIONS: [Resolution; 2] = [
    Resolution {
        period_secs: 60,
        retention_days: 15,
    },
    Resolution {
        period_secs: 300,
        retention_days: 63,
    },
];

impl Resolution {
    /// The finest resolution CloudWatch still holds `since` of history at; an error for a span
    /// under a minute or one beyond the retention of five-minute data.
    pub fn for_span(since: Duration) -> Result<Self, BacktestError> {
        if since.as_secs() < 60 {
            return Err(BacktestError(format!(
                "--since {since} is too short: ask for at least 1m of history"
            )));
        }
        RESOLUTIONS
            .into_iter()
            .find(|r| since.as_secs() <= u64::from(r.retention_days) * 86_400)
            .ok_or_else(|| {
                BacktestError(format!(
                    "--since {since} is beyond CloudWatch's retention: one-minute datapoints are \
                     kept 15 days and five-minute ones 63 days; ask for 63d or less"
                ))
            })
    }

    /// The period as a duration.
    pub fn period(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.period_secs))
    }
}

/// Where a resource's capacity history is read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySource {
    /// What the report calls it, e.g. `ECS/ContainerInsights RunningTaskCount, DesiredTaskCount`.
    pub name: String,
    /// The capacity serving.
    pub in_service: MetricQuery,
    /// The desired capacity.
    pub desired: MetricQuery,
}

impl CapacitySource {
    /// The capacity metrics of `target` at `period_secs`: Container Insights' task counts for
    /// an ECS service, the group metrics of an Auto Scaling group (published once group metrics
    /// collection is on); `None` for targets with neither.
    pub fn of(target: &Target, period_secs: u32) -> Option<Self> {
        let (namespace, in_service, desired, dimensions) = match target {
            Target::EcsService { cluster, service } => (
                "ECS/ContainerInsights",
                "RunningTaskCount",
                "DesiredTaskCount",
                BTreeMap::from([
                    ("ClusterName".to_owned(), cluster.clone()),
                    ("ServiceName".to_owned(), service.clone()),
                ]),
            ),
            Target::AutoscalingGroup { name } => (
                "AWS/AutoScaling",
                "GroupInServiceInstances",
                "GroupDesiredCapacity",
                BTreeMap::from([("AutoScalingGroupName".to_owned(), name.clone())]),
            ),
            _ => return None,
        };
        let query = |name: &str| MetricQuery {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions.clone(),
            stat: Statistic::Average,
            period_secs,
            math: None,
        };
        Some(Self {
            name: format!("{namespace} {in_service}, {desired}"),
            in_service: query(in_service),
            desired: query(desired),
        })
    }
}

/// `query` read at `period_secs` or its own period, whichever is longer.
pub fn at_resolution(query: &MetricQuery, period_secs: u32) -> MetricQuery {
    MetricQuery {
        period_secs: query.period_secs.max(period_secs),
        ..query.clone()
    }
}

/// Every query a backtest of `policies` reads at `resolution`, once each: their metrics (but
/// expression metrics, which the replay computes from their members) and their resources'
/// capacity.
pub fn queries<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    resolution: Resolution,
) -> Vec<MetricQuery> {
    let mut all = BTreeSet::new();
    for policy in policies {
        for (_, metric) in policy.series_metrics() {
            all.insert(at_resolution(&metric.query, resolution.period_secs));
        }
        if let Some(source) = CapacitySource::of(&policy.target, resolution.period_secs) {
            all.insert(source.in_service);
            all.insert(source.desired);
        }
    }
    all.into_iter().collect()
}

/// What the report calls capacity read back from capstan's decision log.
pub const DECISION_LOG: &str =
    "capstan's decision log (the capacity each evaluation found; in service taken as desired)";

/// The history read, minute by minute from `start`.
#[derive(Debug, Clone)]
pub struct History {
    /// The first minute.
    pub start: DateTime<Utc>,
    /// How many minutes.
    pub minutes: usize,
    /// What CloudWatch answered.
    pub observations: Observations,
    /// By resource, the capacity each evaluation in capstan's decision log found, in time
    /// order: the capacity history of a resource without capacity metrics.
    pub logged: BTreeMap<Target, Vec<(DateTime<Utc>, u32)>>,
}

impl History {
    /// The start of minute `index`.
    pub fn minute(&self, index: usize) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(i64::try_from(index).unwrap_or(i64::MAX))
    }

    /// Whether `target`'s capacity history is to come from the decision log: it is a resource
    /// with capacity metrics ([`CapacitySource::of`]), and CloudWatch gave them no datapoint
    /// (read at `period_secs`).
    pub fn needs_decision_log(&self, target: &Target, period_secs: u32) -> bool {
        CapacitySource::of(target, period_secs).is_some_and(|source| {
            !matches!(
                self.observations.get(&source.in_service),
                Some(MetricData::Series(points)) if !points.is_empty()
            )
        })
    }

    /// The capacity `target`'s decision log found at each minute: each evaluation's from its
    /// minute on; `None` before the first.
    pub fn logged_series(&self, target: &Target) -> Vec<Option<f64>> {
        let mut values = vec![None; self.minutes];
        for &(at, capacity) in self.logged.get(target).into_iter().flatten() {
            let minute = usize::try_from((at - self.start).num_minutes()).ok();
            if let Some(slot) = minute.and_then(|i| values.get_mut(i)) {
                *slot = Some(f64::from(capacity));
            }
        }
        let mut last = None;
        for slot in &mut values {
            *slot = slot.or(last);
            last = *slot;
        }
        values
    }

    /// `query`'s value at each minute, each datapoint filling the minutes of its period; `None`
    /// where CloudWatch had no datapoint. An unavailable query is an error saying why.
    pub fn series(&self, query: &MetricQuery) -> Result<Vec<Option<f64>>, BacktestError> {
        let mut values = vec![None; self.minutes];
        let points = match self.observations.get(query) {
            Some(MetricData::Series(points)) => points,
            Some(MetricData::Unavailable(why)) => {
                return Err(BacktestError(format!("{query} could not be read: {why}")));
            }
            None => return Ok(values),
        };
        let per_point = usize::try_from(query.period_secs / 60).unwrap_or(1).max(1);
        for point in points {
            let Ok(first) = usize::try_from((point.timestamp - self.start).num_minutes()) else {
                continue;
            };
            for slot in values.iter_mut().skip(first).take(per_point) {
                *slot = Some(point.value);
            }
        }
        Ok(values)
    }
}

/// `values` with each gap holding the last value before it (the first value, before any).
pub fn held(values: &[Option<f64>]) -> Vec<f64> {
    let mut last = values.iter().flatten().next().copied().unwrap_or(0.0);
    values
        .iter()
        .map(|value| {
            if let Some(value) = value {
                last = *value;
            }
            last
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capstan_engine::Datapoint;

    use super::*;

    #[test]
    fn the_span_picks_the_period_within_retention() {
        let period = |since: &str| {
            Resolution::for_span(since.parse().expect("a duration")).map(|r| r.period_secs)
        };
        assert_eq!(period("14d").ok(), Some(60));
        assert_eq!(period("15d").ok(), Some(60));
        assert_eq!(period("15d1m").ok(), Some(300));
        assert_eq!(period("63d").ok(), Some(300));
        let beyond = period("63d1h").expect_err("beyond retention").to_string();
        assert!(beyond.starts_with("--since 63d1h is beyond CloudWatch's retention"));
        assert!(period("30s").is_err());
    }

    #[test]
    fn five_minute_datapoints_fill_their_minutes_and_gaps_hold() {
        let start = DateTime::from_timestamp(0, 0).expect("time");
        let source = CapacitySource::of(&Target::AutoscalingGroup { name: "web".into() }, 300)
            .expect("a group has group metrics");
        assert_eq!(
            source.name,
            "AWS/AutoScaling GroupInServiceInstances, GroupDesiredCapacity"
        );
        let point = |minute: i64, value| Datapoint {
            timestamp: start + TimeDelta::minutes(minute),
            value,
        };
        let history = History {
            start,
            minutes: 12,
            observations: Observations::from([(
                source.in_service.clone(),
                MetricData::Series(vec![point(0, 2.0), point(10, 4.0)]),
            )]),
            logged: BTreeMap::from([(
                Target::AutoscalingGroup { name: "web".into() },
                vec![
                    (start + TimeDelta::minutes(3), 3),
                    (start + TimeDelta::minutes(8), 5),
                ],
            )]),
        };
        let series = history.series(&source.in_service).expect("readable");
        assert_eq!(
            series[..6],
            [Some(2.0); 5].into_iter().chain([None]).collect::<Vec<_>>()
        );
        assert_eq!(series[10..], [Some(4.0), Some(4.0)]);
        assert_eq!(held(&series)[7], 2.0);
        assert_eq!(
            history.series(&source.desired).expect("absent"),
            vec![None; 12]
        );
    }
}
