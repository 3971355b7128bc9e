//! What a run cost and how well it served: under-provisioned minutes, capacity-hours, actions,
//! flaps and reversals.

use serde::Serialize;

use capstan_engine::Direction;
use capstan_engine::flap::flaps;

use crate::load::LoadModel;
use crate::simulate::Run;

/// The figures of one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Minutes simulated.
    pub minutes: usize,
    /// Minutes where demand exceeded the capacity in service (`in_service × per_unit_capacity`);
    /// `None` without demand and a load model.
    pub under_provisioned: Option<usize>,
    /// Of those, minutes inside an open schedule window.
    pub under_provisioned_scheduled: Option<usize>,
    /// Sum over minutes of the desired capacity (units launched, warming or serving, are
    /// paid for), in unit-hours.
    pub capacity_hours: f64,
    /// Changes of desired capacity.
    pub actions: usize,
    /// Actions that reverse the previous action within an hour of it ([`flaps`]).
    pub flaps: usize,
    /// Actions that reverse the previous action, however long after it.
    pub reversals: usize,
}

impl Summary {
    /// Summarises `run`; under-provisioning needs `load`.
    pub fn of(run: &Run, load: Option<LoadModel>) -> Self {
        let under = |scheduled_only: bool| {
            let load = load?;
            let mut count = 0;
            for step in &run.steps {
                let demand = step.demand?;
                if load.under_provisioned(demand, step.in_service)
                    && (!scheduled_only || step.scheduled)
                {
                    count += 1;
                }
            }
            Some(count)
        };
        let actions: Vec<(_, Direction)> = run
            .steps
            .iter()
            .filter_map(|s| Some((s.at, s.action?)))
            .collect();
        let reversals = || actions.windows(2).filter(|w| w[0].1 != w[1].1);
        Self {
            minutes: run.steps.len(),
            under_provisioned: under(false),
            under_provisioned_scheduled: under(true),
            capacity_hours: run.steps.iter().map(|s| f64::from(s.desired)).sum::<f64>() / 60.0,
            actions: actions.len(),
            flaps: actions.windows(2).filter(|w| flaps(w[0], w[1])).count(),
            reversals: reversals().count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;
    use crate::simulate::Step;

    #[test]
    fn hand_computed_trace() {
        // per unit 100: demand 150 on 1 unit is under-provisioned, 200 on 2 is not.
        let rows: [(f64, u32, u32, Option<Direction>, bool); 6] = [
            (100.0, 1, 1, None, false),
            (150.0, 1, 2, Some(Direction::Out), false),
            (150.0, 1, 2, None, true),
            (200.0, 2, 3, Some(Direction::Out), true),
            (100.0, 3, 2, Some(Direction::In), false),
            (100.0, 2, 3, Some(Direction::Out), false),
        ];
        let t0 = DateTime::from_timestamp(0, 0).expect("time");
        let run = Run {
            controller: "test".into(),
            policy: "p".into(),
            metric: "cpu".into(),
            steps: rows
                .iter()
                .enumerate()
                .map(
                    |(i, &(demand, in_service, desired, action, scheduled))| Step {
                        at: t0 + TimeDelta::minutes(i as i64),
                        demand: Some(demand),
                        metric: None,
                        in_service,
                        desired,
                        action,
                        scheduled,
                        why: String::new(),
                    },
                )
                .collect(),
        };
        let summary = Summary::of(
            &run,
            Some(LoadModel {
                per_unit_capacity: 100.0,
                connections_per_unit: None,
            }),
        );
        assert_eq!(summary.under_provisioned, Some(2));
        assert_eq!(summary.under_provisioned_scheduled, Some(1));
        // (1 + 2 + 2 + 3 + 2 + 3) / 60
        assert!((summary.capacity_hours - 13.0 / 60.0).abs() < 1e-12);
        assert_eq!(summary.actions, 4);
        // out, out, in, out: two reversals, a minute apart
        assert_eq!((summary.flaps, summary.reversals), (2, 2));
        assert_eq!(Summary::of(&run, None).under_provisioned, None);
    }

    #[test]
    fn a_reversal_is_a_flap_within_the_hour_after_the_action_it_reverses() {
        // out at 0, in at 60 (a flap: an hour after), out at 121 (61 minutes after: a
        // reversal, not a flap), out at 130, in at 131 (a flap).
        let actions = [
            (0, Direction::Out),
            (60, Direction::In),
            (121, Direction::Out),
            (130, Direction::Out),
            (131, Direction::In),
        ];
        let t0 = DateTime::from_timestamp(0, 0).expect("time");
        let steps = (0..=131)
            .map(|minute| Step {
                at: t0 + TimeDelta::minutes(minute),
                demand: None,
                metric: None,
                in_service: 1,
                desired: 1,
                action: actions
                    .iter()
                    .find(|&&(at, _)| at == minute)
                    .map(|&(_, direction)| direction),
                scheduled: false,
                why: String::new(),
            })
            .collect();
        let run = Run {
            controller: "test".into(),
            policy: "p".into(),
            metric: "cpu".into(),
            steps,
        };
        let summary = Summary::of(&run, None);
        assert_eq!(
            (summary.actions, summary.flaps, summary.reversals),
            (5, 2, 3)
        );
    }
}
