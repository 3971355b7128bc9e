//! Ports in memory, for passes that run in one process: the simulation, and tests. Nothing in
//! them waits, and nothing fails but a save fenced off by its lease; what a port does beyond
//! that (a simulated fleet, a fault to inject) is written around them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use capstan_engine::math::datapoints;
use capstan_engine::{Datapoint, MetricData, Observations, ResourceState};
use capstan_policy::model::{MetricQuery, Target};

use crate::ports::{Lease, LeaseLost, MetricSource, SaveError, StateStore};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Metric series in memory, one per query, served as CloudWatch serves them: a period's
/// datapoint can be read once `ingestion` has passed since the period ended, not before. A query
/// with no series reads as no data; metric math is computed from its members' series.
#[derive(Debug)]
pub struct MemoryMetrics {
    ingestion: TimeDelta,
    now: Mutex<DateTime<Utc>>,
    series: Mutex<BTreeMap<MetricQuery, Vec<Datapoint>>>,
}

impl MemoryMetrics {
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

    /// The latest datapoint of a query's series, landed or not; for metric math, computed from
    /// its members' series.
    pub fn last(&self, query: &MetricQuery) -> Option<Datapoint> {
        let series = lock(&self.series);
        let all = |query: &MetricQuery| series.get(query).cloned().unwrap_or_default();
        datapoints(query, &all).last().copied()
    }
}

impl MetricSource for MemoryMetrics {
    type Error = Infallible;

    async fn read(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, Infallible> {
        let series = lock(&self.series);
        let now = *lock(&self.now);
        let read = |query: &MetricQuery| {
            let period = TimeDelta::seconds(query.period_secs.into());
            let landed = |p: &Datapoint| p.timestamp + period + self.ingestion <= now;
            series.get(query).map_or_else(Vec::new, |points| {
                let from = points.partition_point(|p| p.timestamp < start);
                let to = points.partition_point(|p| p.timestamp < end && landed(p));
                // A window starting after the newest landed datapoint (a metric whose `delay` is
                // shorter than the ingestion delay) has none.
                points[from..to.max(from)].to_vec()
            })
        };
        Ok(queries
            .iter()
            .map(|query| (query.clone(), MetricData::Series(datapoints(query, &read))))
            .collect())
    }
}

/// Each resource's state and lease, remembered between evaluations.
#[derive(Debug, Default)]
pub struct MemoryState {
    states: Mutex<BTreeMap<Target, ResourceState>>,
    leases: Mutex<LeaseTable>,
}

impl MemoryState {
    /// The state last saved for `target`, if one was.
    pub fn saved(&self, target: &Target) -> Option<ResourceState> {
        lock(&self.states).get(target).cloned()
    }

    /// The leases, to look at or to change as another evaluation would.
    pub fn leases(&self) -> MutexGuard<'_, LeaseTable> {
        lock(&self.leases)
    }
}

impl StateStore for MemoryState {
    type Error = Infallible;

    async fn load(&self, target: &Target) -> Result<ResourceState, Infallible> {
        Ok(self.saved(target).unwrap_or_default())
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

/// Leases kept in memory, for [`MemoryState`]. They never expire: in one process every holder
/// releases what it takes.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    holders: BTreeMap<Target, String>,
}

impl LeaseTable {
    /// Takes the lease of `target` for `holder`, as [`StateStore::acquire_lease`] does.
    pub fn acquire(&mut self, target: &Target, holder: &str) -> Lease {
        let current = self
            .holders
            .entry(target.clone())
            .or_insert_with(|| holder.to_owned());
        if current == holder {
            Lease::Acquired
        } else {
            Lease::HeldBy {
                holder: current.clone(),
                until: DateTime::<Utc>::MAX_UTC,
            }
        }
    }

    /// Whether `holder` holds the lease of `target`, as a fenced [`StateStore::save`] requires.
    pub fn fence(&self, target: &Target, holder: &str) -> Result<(), LeaseLost> {
        match self.holders.get(target) {
            Some(current) if current == holder => Ok(()),
            Some(current) => Err(LeaseLost::HeldBy {
                holder: current.clone(),
                until: DateTime::<Utc>::MAX_UTC,
            }),
            None => Err(LeaseLost::Free),
        }
    }

    /// Gives the lease of `target` back, as [`StateStore::release_lease`] does.
    pub fn release(&mut self, target: &Target, holder: &str) -> bool {
        let ours = self
            .holders
            .get(target)
            .is_some_and(|current| current == holder);
        if ours {
            self.holders.remove(target);
        }
        ours
    }
}

#[cfg(test)]
mod tests {
    use capstan_policy::test_util::ecs_query;
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_lease_in_memory_has_one_holder_until_released_and_fences_writes() {
        let web = Target::AutoscalingGroup { name: "web".into() };
        let mut leases = LeaseTable::default();
        assert_eq!(leases.fence(&web, "a"), Err(LeaseLost::Free));
        assert_eq!(leases.acquire(&web, "a"), Lease::Acquired);
        assert_eq!(leases.acquire(&web, "a"), Lease::Acquired, "renewed");
        assert_eq!(leases.fence(&web, "a"), Ok(()));
        assert!(matches!(leases.acquire(&web, "b"), Lease::HeldBy { holder, .. } if holder == "a"));
        assert!(
            matches!(leases.fence(&web, "b"), Err(LeaseLost::HeldBy { holder, .. }) if holder == "a")
        );
        assert!(!leases.release(&web, "b"), "not b's");
        assert!(leases.release(&web, "a"));
        assert_eq!(leases.acquire(&web, "b"), Lease::Acquired);
        assert!(
            matches!(leases.fence(&web, "a"), Err(LeaseLost::HeldBy { holder, .. }) if holder == "b")
        );
    }

    #[tokio::test]
    async fn a_datapoint_is_read_only_once_the_ingestion_delay_has_passed_since_its_period() {
        let query = ecs_query("web", "CPUUtilization", 60);
        let noon = Utc
            .with_ymd_and_hms(2026, 1, 5, 12, 0, 0)
            .single()
            .expect("valid");
        let minute = TimeDelta::minutes(1);
        let metrics = MemoryMetrics::new(TimeDelta::minutes(2), noon);
        metrics.push(
            &query,
            Datapoint {
                timestamp: noon,
                value: 50.0,
            },
        );
        let read = async |now| {
            metrics.advance(now);
            let read = metrics.read(std::slice::from_ref(&query), noon, noon + minute * 10);
            match read.await.expect("infallible").remove(&query) {
                Some(MetricData::Series(points)) => points.len(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read(noon + minute).await, 0, "the period has just ended");
        assert_eq!(read(noon + minute * 3 - TimeDelta::seconds(1)).await, 0);
        assert_eq!(
            read(noon + minute * 3).await,
            1,
            "landed 2 minutes after the period"
        );
        // A window starting after the newest landed datapoint, as a metric whose delay is
        // shorter than the ingestion delay asks for, has none.
        metrics.push(
            &query,
            Datapoint {
                timestamp: noon + minute,
                value: 60.0,
            },
        );
        metrics.advance(noon + minute * 3);
        let late = metrics.read(
            std::slice::from_ref(&query),
            noon + minute * 2,
            noon + minute * 3,
        );
        assert_eq!(
            late.await.expect("infallible").remove(&query),
            Some(MetricData::Series(Vec::new()))
        );
    }
}
