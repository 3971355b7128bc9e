//! The runner's ports, in memory: a metric source serving the simulated series, the simulated
//! fleets as the capacity control, and a state store that remembers the last action.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use capstan_engine::{CurrentCapacity, Datapoint, MetricData, Observations, ResourceState};
use capstan_policy::model::{MetricQuery, Target};
use capstan_runner::ports::{
    CapacityControl, Lease, LeaseTable, MetricSource, SaveError, StateStore,
};

use crate::fleet::Fleet;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves the series built so far, one per query, as CloudWatch does: a period's datapoint can
/// be read once `ingestion` has passed since the period ended, not before. A query with no
/// series reads as no data.
#[derive(Debug)]
pub struct SimMetrics {
    ingestion: TimeDelta,
    now: Mutex<DateTime<Utc>>,
    series: Mutex<BTreeMap<MetricQuery, Vec<Datapoint>>>,
}

impl SimMetrics {
    /// No series yet, at time `now`, each datapoint readable `ingestion` after its period.
    pub fn new(ingestion: TimeDelta, now: DateTime<Utc>) -> Self {
        Self {
            ingestion,
            now: Mutex::new(now),
            series: Mutex::default(),
        }
    }

    /// Moves the clock to `now`.
    pub fn advance(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
    }

    /// Appends a datapoint to a query's series (timestamps must increase).
    pub fn push(&self, query: &MetricQuery, point: Datapoint) {
        lock(&self.series)
            .entry(query.clone())
            .or_default()
            .push(point);
    }

    /// The latest datapoint of a query's series, landed or not.
    pub fn last(&self, query: &MetricQuery) -> Option<Datapoint> {
        lock(&self.series).get(query)?.last().copied()
    }
}

impl MetricSource for SimMetrics {
    type Error = Infallible;

    async fn read(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, Infallible> {
        let series = lock(&self.series);
        let now = *lock(&self.now);
        Ok(queries
            .iter()
            .map(|query| {
                let period = TimeDelta::seconds(query.period_secs.into());
                let landed = |p: &Datapoint| p.timestamp + period + self.ingestion <= now;
                let points = series.get(query).map_or_else(Vec::new, |points| {
                    let from = points.partition_point(|p| p.timestamp < start);
                    let to = points.partition_point(|p| p.timestamp < end && landed(p));
                    points[from..to].to_vec()
                });
                (query.clone(), MetricData::Series(points))
            })
            .collect())
    }
}

/// The simulated fleets, by resource, and the simulated clock their changes happen at.
#[derive(Debug)]
pub struct SimCapacity {
    fleets: Mutex<BTreeMap<Target, Fleet>>,
    now: Mutex<DateTime<Utc>>,
}

impl SimCapacity {
    /// Fleets by resource, at time `now`.
    pub fn new(fleets: BTreeMap<Target, Fleet>, now: DateTime<Utc>) -> Self {
        Self {
            fleets: Mutex::new(fleets),
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `now` and brings warmed-up launches into service.
    pub fn advance(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
        for fleet in lock(&self.fleets).values_mut() {
            fleet.advance(now);
        }
    }

    /// A copy of a resource's fleet.
    pub fn fleet(&self, target: &Target) -> Option<Fleet> {
        lock(&self.fleets).get(target).cloned()
    }
}

impl CapacityControl for SimCapacity {
    type Error = Infallible;

    async fn current(&self, target: &Target) -> Result<CurrentCapacity, Infallible> {
        let desired = lock(&self.fleets).get(target).map_or(0, Fleet::desired);
        Ok(CurrentCapacity {
            desired,
            resource_min: None,
            resource_max: None,
            busy: None,
            ..Default::default()
        })
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> Result<(), Infallible> {
        let now = *lock(&self.now);
        if let Some(fleet) = lock(&self.fleets).get_mut(target) {
            fleet.set_desired(now, desired);
        }
        Ok(())
    }
}

/// Remembers each resource's state between evaluations.
#[derive(Debug, Default)]
pub struct MemoryState {
    states: Mutex<BTreeMap<Target, ResourceState>>,
    leases: Mutex<LeaseTable>,
}

impl StateStore for MemoryState {
    type Error = Infallible;

    async fn load(&self, target: &Target) -> Result<ResourceState, Infallible> {
        Ok(lock(&self.states).get(target).cloned().unwrap_or_default())
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<Infallible>> {
        lock(&self.leases).fence(target, holder)?;
        lock(&self.states).insert(target.clone(), state.clone());
        Ok(())
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> Result<Lease, Infallible> {
        Ok(lock(&self.leases).acquire(target, holder))
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> Result<bool, Infallible> {
        Ok(lock(&self.leases).release(target, holder))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use capstan_policy::model::Statistic;
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_datapoint_is_read_only_once_the_ingestion_delay_has_passed_since_its_period() {
        let query = MetricQuery {
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: BTreeMap::new(),
            stat: Statistic::Average,
            period_secs: 60,
        };
        let noon = Utc
            .with_ymd_and_hms(2026, 1, 5, 12, 0, 0)
            .single()
            .expect("valid");
        let minute = TimeDelta::minutes(1);
        let metrics = SimMetrics::new(TimeDelta::minutes(2), noon);
        metrics.push(
            &query,
            Datapoint {
                timestamp: noon,
                value: 50.0,
            },
        );
        let read = |now| {
            metrics.advance(now);
            let read = metrics.read(std::slice::from_ref(&query), noon, noon + minute * 10);
            match futures_executor::block_on(read)
                .expect("infallible")
                .remove(&query)
            {
                Some(MetricData::Series(points)) => points.len(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read(noon + minute), 0, "the period has just ended");
        assert_eq!(read(noon + minute * 3 - TimeDelta::seconds(1)), 0);
        assert_eq!(
            read(noon + minute * 3),
            1,
            "landed 2 minutes after the period"
        );
    }
}
