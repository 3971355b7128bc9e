//! The baselines beside a backtest's sets: target tracking, step scaling, the HPA and
//! predictive scaling, replayed on the same reconstructed demand, with settings derived from the
//! policy (see "Backtest" in `docs/simulate.md`).

use serde::Serialize;

use capstan_policy::model::{Policy, Threshold, TrackGoal};

use crate::baseline::{BaselineConfig, BaselineKind, StepConfig};
use crate::simulate::simulate_baseline;
use crate::summary::Summary;

use super::{Replayable, SetSummary};

/// The target the baselines hold a policy's utilization metric at, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineTarget {
    /// The target utilization, in percent.
    pub target: f64,
    /// Where it came from: `track` or `scale_out`.
    pub from: &'static str,
}

impl BaselineTarget {
    /// The target for `policy` on its utilization metric `metric`: the target it tracks the
    /// metric at, else the lowest threshold above which one of its scale-out rules adds
    /// capacity on it; `None` with neither.
    pub fn of(policy: &Policy, metric: &str) -> Option<Self> {
        let tracked = policy.track.iter().find_map(|track| match track.goal {
            TrackGoal::Target(target) if track.metric == metric => Some(target),
            _ => None,
        });
        if let Some(target) = tracked {
            return Some(Self {
                target,
                from: "track",
            });
        }
        policy
            .scale_out
            .iter()
            .filter(|rule| rule.when.metric == metric)
            .filter_map(|rule| match rule.when.threshold {
                Threshold::Above(limit) => Some(limit),
                Threshold::Below(_) => None,
            })
            .min_by(f64::total_cmp)
            .map(|target| Self {
                target,
                from: "scale_out",
            })
    }

    /// The baselines' settings at this target, reading `metric` from the load model: step
    /// scaling's alarms 10 points above and 20 below it over 3 and 15 minutes, as in the
    /// scenarios, adding a tenth of `max` (at least 1) and removing half that (at least 1).
    fn config(&self, metric: &str, max: u32) -> BaselineConfig {
        let add = max.div_ceil(10).max(1);
        BaselineConfig {
            metric: metric.to_owned(),
            target: self.target,
            step: StepConfig {
                upper: self.target + 10.0,
                lower: self.target - 20.0,
                out_periods: 3,
                in_periods: 15,
                add,
                remove: add.div_ceil(2),
            },
        }
    }
}

/// Every baseline replayed over `ready` within `policy`'s bounds at `target`, from the capacity
/// then in service, on the utilization metric `metric`.
pub(super) fn replay(
    policy: &Policy,
    ready: &Replayable,
    metric: &str,
    target: &BaselineTarget,
) -> Vec<SetSummary> {
    let (min, max) = (policy.capacity.min, policy.capacity.max);
    let config = target.config(metric, max);
    let initial = ready
        .in_service
        .first()
        .copied()
        .unwrap_or(min)
        .clamp(min, max);
    let load = ready.settings.load;
    let per_unit_load = load.map_or(100.0, |load| load.per_unit_capacity);
    BaselineKind::ALL
        .iter()
        .map(|&kind| {
            let name = kind.to_string();
            let mut controller = kind.controller(&config, min, max, per_unit_load);
            let run = simulate_baseline(
                &ready.trace,
                controller.as_mut(),
                &name,
                metric,
                initial,
                &ready.settings,
                &[],
                || (),
            );
            SetSummary {
                set: name,
                summary: Summary::of(&run, load),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capstan_policy::{PolicySet, Source};

    use super::*;

    fn policy(rules: &str) -> Policy {
        let text = format!(
            "version: 1
name: web
target: {{ ecs_service: {{ cluster: c, service: web }} }}
capacity: {{ min: 2, max: 25 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m }}
  depth: {{ namespace: Shop, name: QueueDepth, stat: Maximum, period: 1m }}
{rules}"
        );
        let source = Source {
            path: "web.yaml".into(),
            text,
        };
        PolicySet::from_sources(vec![source])
            .expect("a valid policy")
            .policies()[0]
            .clone()
    }

    #[test]
    fn the_target_is_the_tracked_one_else_the_lowest_scale_out_threshold() {
        let tracking = policy("track:\n  - { metric: cpu, target: 55 }\n");
        let target = BaselineTarget::of(&tracking, "cpu").expect("tracked");
        assert_eq!((target.target, target.from), (55.0, "track"));
        let rules = policy(
            "scale_out:
  - { when: { metric: depth, above: 10, for: 1m }, add: 1 }
  - { when: { metric: cpu, above: 90, for: 1m }, add: 2 }
  - { when: { metric: cpu, above: 75, for: 3m }, add: 1 }
scale_in:
  - { when: { metric: cpu, below: 30, for: 10m }, remove: 1 }
",
        );
        let target = BaselineTarget::of(&rules, "cpu").expect("a scale-out rule on cpu");
        assert_eq!((target.target, target.from), (75.0, "scale_out"));
        // Step scaling at 85 and 55, adding ceil(25 / 10) = 3 and removing 2.
        let step = target.config("cpu", 25).step;
        assert_eq!(
            (step.upper, step.lower, step.add, step.remove),
            (85.0, 55.0, 3, 2)
        );
        let queue =
            policy("scale_out:\n  - { when: { metric: depth, above: 10, for: 1m }, add: 1 }\n");
        assert_eq!(BaselineTarget::of(&queue, "cpu"), None);
    }
}
