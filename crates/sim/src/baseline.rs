//! Models of the AWS scaling policies capstan is compared with. Sources and the numbers used
//! are in `docs/simulate.md`.
//!
//! Both see the same one-minute metric as capstan (the load model's CPU over the units in
//! service, so instances still warming up are excluded from the aggregate, as AWS does), each
//! datapoint as soon as its minute ends (capstan only after the ingestion delay,
//! [`crate::simulate::Settings::ingestion`]), and drive the same simulated fleet.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod predictive;

pub use predictive::Predictive;

/// Which baseline to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineKind {
    /// Target tracking.
    TargetTracking,
    /// Step scaling.
    Step,
    /// The Kubernetes Horizontal Pod Autoscaler (v2), with its defaults.
    Hpa,
    /// AWS predictive scaling (`ForecastAndScale`) over target tracking.
    Predictive,
}

impl BaselineKind {
    /// Every baseline, in the order comparisons show them.
    pub const ALL: [Self; 4] = [
        Self::TargetTracking,
        Self::Step,
        Self::Hpa,
        Self::Predictive,
    ];

    /// The controller of this baseline with `config`, within `min..=max`, for units that each
    /// carry `per_unit_load` of the load at 100% utilization (predictive scaling's capacity
    /// forecast).
    pub fn controller(
        self,
        config: &BaselineConfig,
        min: u32,
        max: u32,
        per_unit_load: f64,
    ) -> Box<dyn Controller> {
        let tracking = TargetTracking {
            target: config.target,
            min,
            max,
        };
        match self {
            Self::TargetTracking => Box::new(tracking),
            Self::Step => Box::new(StepScaling {
                config: config.step.clone(),
                min,
                max,
            }),
            Self::Hpa => Box::new(Hpa::new(config.target, min, max)),
            Self::Predictive => Box::new(Predictive::new(tracking, per_unit_load)),
        }
    }
}

impl std::str::FromStr for BaselineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "target-tracking" => Ok(Self::TargetTracking),
            "step" => Ok(Self::Step),
            "hpa" => Ok(Self::Hpa),
            "predictive" => Ok(Self::Predictive),
            other => Err(format!(
                "unknown baseline `{other}`: use `target-tracking`, `step`, `hpa` or `predictive`"
            )),
        }
    }
}

impl std::fmt::Display for BaselineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TargetTracking => "target-tracking",
            Self::Step => "step",
            Self::Hpa => "hpa",
            Self::Predictive => "predictive",
        })
    }
}

/// The baselines' settings for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// Trace column the baselines read when the trace has no `demand` (with `demand`, they
    /// read the load model's CPU). By default, `cpu`.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Target tracking's target value, e.g. 60 (% CPU); also the HPA's and predictive
    /// scaling's target utilization.
    pub target: f64,
    /// Step scaling's settings.
    pub step: StepConfig,
}

fn default_metric() -> String {
    "cpu".to_owned()
}

/// A step scaling policy: one alarm each way, fixed steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Scale-out alarm threshold (metric strictly above).
    pub upper: f64,
    /// Scale-in alarm threshold (metric strictly below).
    pub lower: f64,
    /// Periods the scale-out alarm must breach (its evaluation periods).
    pub out_periods: usize,
    /// Periods the scale-in alarm must breach.
    pub in_periods: usize,
    /// Units added per scale-out.
    pub add: u32,
    /// Units removed per scale-in.
    pub remove: u32,
}

/// Target tracking, as AWS documents it: the scale-out alarm needs 3 consecutive one-minute
/// datapoints above the target, the scale-in alarm 15 consecutive datapoints below 90% of the
/// target; either then sets `desired = ceil(in_service × metric / target)`, scale-out never
/// lowering and scale-in never raising desired; scale-in waits while launches warm up; missing
/// datapoints leave the alarm without a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTracking {
    /// Target value.
    pub target: f64,
    /// Bounds (the scalable target's min and max).
    pub min: u32,
    /// Upper bound.
    pub max: u32,
}

/// Datapoints the scale-out alarm of target tracking evaluates.
pub const TT_OUT_PERIODS: usize = 3;
/// Datapoints the scale-in alarm of target tracking evaluates.
pub const TT_IN_PERIODS: usize = 15;
/// The scale-in alarm's threshold as a fraction of the target.
pub const TT_IN_FRACTION: f64 = 0.9;

/// Whether the last `n` values exist and all satisfy `breach`.
fn alarm(history: &[Option<f64>], n: usize, breach: impl Fn(f64) -> bool) -> bool {
    history.len() >= n
        && history[history.len() - n..]
            .iter()
            .all(|v| v.is_some_and(&breach))
}

/// A controller deciding a new desired capacity each minute.
pub trait Controller {
    /// Told, before each minute's [`Controller::decide`], the minute's start and its load (the
    /// demand, in the trace's units; `None` when missing or without a load model). Only a
    /// controller that forecasts the load needs it.
    fn observe(&mut self, _at: DateTime<Utc>, _load: Option<f64>) {}

    /// The desired capacity after seeing `history` (one value per minute, oldest first, the
    /// last one just closed), with `desired` set, `in_service` serving and `warming` launching.
    /// Called once per minute, in order: a controller may remember what it decided before.
    fn decide(
        &mut self,
        history: &[Option<f64>],
        desired: u32,
        in_service: u32,
        warming: u32,
    ) -> u32;
}

impl Controller for TargetTracking {
    fn decide(
        &mut self,
        history: &[Option<f64>],
        desired: u32,
        in_service: u32,
        warming: u32,
    ) -> u32 {
        let Some(Some(metric)) = history.last().copied() else {
            return desired;
        };
        let wanted = || {
            let units = (f64::from(in_service.max(1)) * metric / self.target).ceil();
            (units as u32).clamp(self.min, self.max)
        };
        if alarm(history, TT_OUT_PERIODS, |v| v > self.target) {
            return desired.max(wanted());
        }
        if warming == 0 && alarm(history, TT_IN_PERIODS, |v| v < self.target * TT_IN_FRACTION) {
            return desired.min(wanted());
        }
        desired
    }
}

/// Step scaling: an alarm after `out_periods` (`in_periods`) datapoints beyond its threshold
/// adds (removes) a fixed step; while launches warm up, they count towards the step (desired
/// never exceeds `in_service + add`), and scale-in waits for them.
#[derive(Debug, Clone, PartialEq)]
pub struct StepScaling {
    /// Settings.
    pub config: StepConfig,
    /// Lower bound.
    pub min: u32,
    /// Upper bound.
    pub max: u32,
}

impl Controller for StepScaling {
    fn decide(
        &mut self,
        history: &[Option<f64>],
        desired: u32,
        in_service: u32,
        warming: u32,
    ) -> u32 {
        let c = &self.config;
        if alarm(history, c.out_periods, |v| v > c.upper) {
            return desired.max((in_service + c.add).min(self.max));
        }
        if warming == 0 && alarm(history, c.in_periods, |v| v < c.lower) {
            return desired.saturating_sub(c.remove).max(self.min).min(desired);
        }
        desired
    }
}

/// The HPA's tolerance: no change while the usage ratio is within 10% of 1.
pub const HPA_TOLERANCE: f64 = 0.1;
/// The HPA's default scale-down stabilization window, in minutes (300 s).
pub const HPA_DOWN_WINDOW: usize = 5;
/// Pods the HPA's default scale-up policy may add per period beside doubling.
pub const HPA_UP_PODS: u32 = 4;

/// The Kubernetes Horizontal Pod Autoscaler v2 with its defaults, synced once a minute:
/// `desired = ceil(ready × metric / target)` unless `metric / target` is within
/// [`HPA_TOLERANCE`] of 1; while pods are not ready, a scale-up counts them at 0% and is dropped
/// when that brings the ratio back within tolerance; no scale-up stabilization, and a scale-down
/// to the highest recommendation of the last [`HPA_DOWN_WINDOW`] minutes; a scale-up adds at
/// most `max(100%, 4 pods)` at once, a scale-down may remove everything; bounds clamp. A
/// missing datapoint leaves desired as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Hpa {
    /// Target utilization.
    pub target: f64,
    /// Lower bound (`minReplicas`).
    pub min: u32,
    /// Upper bound (`maxReplicas`).
    pub max: u32,
    /// The recommendations of the last [`HPA_DOWN_WINDOW`] minutes, oldest first.
    recent: std::collections::VecDeque<u32>,
}

impl Hpa {
    /// An HPA holding utilization at `target` within `min..=max`.
    pub fn new(target: f64, min: u32, max: u32) -> Self {
        Self {
            target,
            min,
            max,
            recent: std::collections::VecDeque::with_capacity(HPA_DOWN_WINDOW),
        }
    }

    /// The replica calculator's recommendation before stabilization and rate limits.
    fn recommend(&self, metric: f64, desired: u32, ready: u32, unready: u32) -> u32 {
        let ratio = metric / self.target;
        if (ratio - 1.0).abs() <= HPA_TOLERANCE || ready == 0 {
            return desired;
        }
        let pods = if ratio > 1.0 && unready > 0 {
            let all = f64::from(ready + unready);
            let counted = ratio * f64::from(ready) / all;
            if counted <= 1.0 + HPA_TOLERANCE {
                return desired;
            }
            counted * all
        } else {
            ratio * f64::from(ready)
        };
        pods.ceil() as u32
    }
}

impl Controller for Hpa {
    fn decide(
        &mut self,
        history: &[Option<f64>],
        desired: u32,
        in_service: u32,
        warming: u32,
    ) -> u32 {
        let Some(Some(metric)) = history.last().copied() else {
            return desired;
        };
        let recommended = self
            .recommend(metric, desired, in_service, warming)
            .clamp(self.min, self.max);
        if self.recent.len() == HPA_DOWN_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(recommended);
        let highest = self.recent.iter().copied().max().unwrap_or(recommended);
        let stabilized = desired.max(recommended).min(highest);
        let up_limit = (desired * 2).max(desired + HPA_UP_PODS);
        stabilized.min(up_limit).clamp(self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tt() -> TargetTracking {
        TargetTracking {
            target: 50.0,
            min: 1,
            max: 100,
        }
    }

    #[test]
    fn target_tracking_scales_out_after_three_datapoints_above() {
        let mut history = vec![Some(40.0), Some(80.0), Some(80.0)];
        assert_eq!(tt().decide(&history, 4, 4, 0), 4, "two above: no alarm");
        history.push(Some(80.0));
        // ceil(4 × 80 / 50) = ceil(6.4) = 7
        assert_eq!(tt().decide(&history, 4, 4, 0), 7);
        // desired already 7 while warming: no more
        assert_eq!(tt().decide(&history, 7, 4, 3), 7);
        history.push(None);
        assert_eq!(
            tt().decide(&history, 4, 4, 0),
            4,
            "missing datapoint: no decision"
        );
    }

    #[test]
    fn target_tracking_scales_in_after_fifteen_datapoints_below_ninety_percent() {
        let mut history = vec![Some(30.0); 14];
        assert_eq!(tt().decide(&history, 10, 10, 0), 10, "14 below: no alarm");
        history.push(Some(30.0));
        // ceil(10 × 30 / 50) = 6
        assert_eq!(tt().decide(&history, 10, 10, 0), 6);
        assert_eq!(tt().decide(&history, 10, 8, 2), 10, "waits for warm-up");
        // 46 is below target but not below 90% of it (45): no scale-in
        let near = vec![Some(46.0); 15];
        assert_eq!(tt().decide(&near, 10, 10, 0), 10);
    }

    #[test]
    fn step_scaling_adds_fixed_steps() {
        let mut step = StepScaling {
            config: StepConfig {
                upper: 70.0,
                lower: 30.0,
                out_periods: 3,
                in_periods: 15,
                add: 2,
                remove: 1,
            },
            min: 2,
            max: 10,
        };
        let high = vec![Some(90.0); 3];
        assert_eq!(step.decide(&high, 4, 4, 0), 6);
        assert_eq!(step.decide(&high, 6, 4, 2), 6, "warming launches count");
        assert_eq!(step.decide(&high, 10, 10, 0), 10, "capped at max");
        let low = vec![Some(10.0); 15];
        assert_eq!(step.decide(&low, 4, 4, 0), 3);
        assert_eq!(step.decide(&low, 2, 2, 0), 2, "floored at min");
    }

    #[test]
    fn hpa_scales_proportionally_outside_its_tolerance_and_at_most_doubles() {
        let mut hpa = Hpa::new(50.0, 1, 100);
        // 54% of a 50% target is within 10%: no change.
        assert_eq!(hpa.decide(&[Some(54.0)], 4, 4, 0), 4);
        // ceil(4 × 80 / 50) = 7, within max(2 × 4, 4 + 4) = 8.
        assert_eq!(hpa.decide(&[Some(80.0)], 4, 4, 0), 7);
        // ceil(4 × 200 / 50) = 16, limited to 8 at once.
        assert_eq!(Hpa::new(50.0, 1, 100).decide(&[Some(200.0)], 4, 4, 0), 8);
        // Missing datapoint: no decision.
        assert_eq!(hpa.decide(&[Some(80.0), None], 7, 7, 0), 7);
    }

    #[test]
    fn hpa_counts_pods_not_ready_at_zero_when_scaling_up() {
        // 4 ready at 60%, 2 launching: 60 × 4 / 6 = 40% of 50 is a scale-down ratio: no change.
        assert_eq!(Hpa::new(50.0, 1, 100).decide(&[Some(60.0)], 6, 4, 2), 6);
        // 4 ready at 100%, 2 launching: ratio 2 × 4/6 = 1.33: ceil(1.33 × 6) = 8.
        assert_eq!(Hpa::new(50.0, 1, 100).decide(&[Some(100.0)], 6, 4, 2), 8);
    }

    #[test]
    fn hpa_scales_down_to_the_highest_recommendation_of_the_last_five_minutes() {
        let mut hpa = Hpa::new(50.0, 2, 100);
        assert_eq!(hpa.decide(&[Some(50.0)], 10, 10, 0), 10);
        let mut history = vec![Some(50.0)];
        let mut desired = 10;
        for minute in 1..=4 {
            history.push(Some(20.0));
            desired = hpa.decide(&history, desired, 10, 0);
            assert_eq!(desired, 10, "minute {minute}: the window still holds 10");
        }
        history.push(Some(20.0));
        // The recommendation 10 has left the window: ceil(10 × 20 / 50) = 4.
        assert_eq!(hpa.decide(&history, desired, 10, 0), 4);
        // Far below target, floored at min.
        let mut low = Hpa::new(50.0, 2, 100);
        let mut desired = 4;
        for _ in 0..HPA_DOWN_WINDOW {
            desired = low.decide(&[Some(1.0)], desired, 4, 0);
        }
        assert_eq!(desired, 2);
    }
}
