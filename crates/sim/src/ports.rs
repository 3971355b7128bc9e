//! The simulated fleets as the runner's capacity control. The simulation reads its metrics and
//! keeps its state through the runner's ports in memory ([`capstan_runner::memory`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use capstan_engine::CurrentCapacity;
use capstan_policy::model::Target;
use capstan_runner::ports::CapacityControl;

use crate::fleet::Fleet;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        let fleets = lock(&self.fleets);
        let fleet = fleets.get(target);
        Ok(CurrentCapacity {
            desired: fleet.map_or(0, Fleet::desired),
            in_service: fleet.map(Fleet::in_service),
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
