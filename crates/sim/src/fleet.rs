//! The simulated fleet: desired capacity changes at once, capacity in service follows a
//! scale-out only after the warm-up. A scale-in takes effect at once, cancelling launches still
//! warming up first.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// One resource's capacity over time.
#[derive(Debug, Clone)]
pub struct Fleet {
    desired: u32,
    in_service: u32,
    /// Launches not yet in service: when they will be, and how many.
    warming: VecDeque<(DateTime<Utc>, u32)>,
    warmup: TimeDelta,
}

impl Fleet {
    /// A fleet of `capacity` units, all in service, whose launches take `warmup` to serve.
    pub fn new(capacity: u32, warmup: TimeDelta) -> Self {
        Self {
            desired: capacity,
            in_service: capacity,
            warming: VecDeque::new(),
            warmup,
        }
    }

    /// The desired capacity.
    pub fn desired(&self) -> u32 {
        self.desired
    }

    /// Capacity serving load now.
    pub fn in_service(&self) -> u32 {
        self.in_service
    }

    /// Units launched but still warming up.
    pub fn warming(&self) -> u32 {
        self.warming.iter().map(|&(_, n)| n).sum()
    }

    /// Brings into service every launch whose warm-up has ended by `now`.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while let Some(&(ready, count)) = self.warming.front() {
            if ready > now {
                break;
            }
            self.in_service += count;
            self.warming.pop_front();
        }
    }

    /// Sets the desired capacity at `now`.
    pub fn set_desired(&mut self, now: DateTime<Utc>, desired: u32) {
        if desired > self.desired {
            self.warming
                .push_back((now + self.warmup, desired - self.desired));
        } else {
            let mut remove = self.desired - desired;
            while remove > 0 {
                match self.warming.back_mut() {
                    Some((_, count)) if *count > remove => {
                        *count -= remove;
                        remove = 0;
                    }
                    Some(&mut (_, count)) => {
                        remove -= count;
                        self.warming.pop_back();
                    }
                    None => {
                        self.in_service = self.in_service.saturating_sub(remove);
                        remove = 0;
                    }
                }
            }
        }
        self.desired = desired;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(minute * 60, 0).expect("time")
    }

    #[test]
    fn scale_out_serves_after_the_warmup() {
        let mut fleet = Fleet::new(2, TimeDelta::minutes(3));
        fleet.set_desired(at(0), 5);
        assert_eq!(
            (fleet.desired(), fleet.in_service(), fleet.warming()),
            (5, 2, 3)
        );
        fleet.advance(at(2));
        assert_eq!(fleet.in_service(), 2);
        fleet.advance(at(3));
        assert_eq!((fleet.in_service(), fleet.warming()), (5, 0));
    }

    #[test]
    fn scale_in_cancels_warming_launches_first() {
        let mut fleet = Fleet::new(4, TimeDelta::minutes(3));
        fleet.set_desired(at(0), 6);
        fleet.set_desired(at(1), 8);
        fleet.set_desired(at(2), 5);
        assert_eq!((fleet.in_service(), fleet.warming()), (4, 1));
        fleet.set_desired(at(2), 3);
        assert_eq!((fleet.in_service(), fleet.warming()), (3, 0));
        fleet.advance(at(10));
        assert_eq!((fleet.desired(), fleet.in_service()), (3, 3));
    }

    #[test]
    fn zero_warmup_serves_at_once() {
        let mut fleet = Fleet::new(1, TimeDelta::zero());
        fleet.set_desired(at(0), 3);
        fleet.advance(at(0));
        assert_eq!(fleet.in_service(), 3);
    }
}
