//! Models of the AWS scaling policies capstan is compared with. Sources and the numbers used
//! are in `docs/simulate.md`.
//!
//! Both see the same one-minute metric as capstan (the load model's CPU over the units in
//! service, so instances still warming up are excluded from the aggregate, as AWS does), each
//! datapoint as soon as its minute ends (capstan only after the ingestion delay,
//! [`crate::simulate::Settings::ingestion`]), and drive the same simulated fleet.

use serde::{Deserialize, Serialize};

/// Which baseline to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineKind {
    /// Target tracking.
    TargetTracking,
    /// Step scaling.
    Step,
}

impl std::str::FromStr for BaselineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "target-tracking" => Ok(Self::TargetTracking),
            "step" => Ok(Self::Step),
            other => Err(format!(
                "unknown baseline `{other}`: use `target-tracking` or `step`"
            )),
        }
    }
}

impl std::fmt::Display for BaselineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TargetTracking => "target-tracking",
            Self::Step => "step",
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
    /// Target tracking's target value, e.g. 60 (% CPU).
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
    /// The desired capacity after seeing `history` (one value per minute, oldest first, the
    /// last one just closed), with `desired` set, `in_service` serving and `warming` launching.
    fn decide(&self, history: &[Option<f64>], desired: u32, in_service: u32, warming: u32) -> u32;
}

impl Controller for TargetTracking {
    fn decide(&self, history: &[Option<f64>], desired: u32, in_service: u32, warming: u32) -> u32 {
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
    fn decide(&self, history: &[Option<f64>], desired: u32, in_service: u32, warming: u32) -> u32 {
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
        let step = StepScaling {
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
}
