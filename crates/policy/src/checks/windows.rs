//! A condition's window is given at most once and fits its metric: `for` or `datapoints`,
//! not both, and `for` is a positive whole multiple of the metric's period.
//!
//! Why: `for: 5m` on a 1-minute metric means `5 of 5` datapoints; a `for` that is not whole
//! periods (`for: 90s` on `1m`) has no such meaning, and two windows on one condition
//! contradict each other. Neither means `1 of 1`: the latest complete datapoint alone.
//!
//! Example: `{ metric: cpu, above: 70, for: 5m, datapoints: 3 of 5 }` is rejected at
//! `datapoints`; `for: 7m` on a `5m` metric is rejected with "use 5m or 10m".

use super::{nearest_multiples, whole_multiple};
use crate::model::{Datapoints, Duration, MetricQuery};
use crate::raw::{Condition, Spanned};
use crate::validate::Findings;

/// The window when neither `for` nor `datapoints` is given: the latest datapoint alone.
const LATEST: Datapoints = Datapoints {
    breaching: 1,
    window: 1,
};

/// The condition's window, or `None` after recording why it is invalid. `metric` is `None`
/// when the condition's metric is undefined or invalid, which other checks report; then a
/// `for` cannot be checked and no window results.
pub(crate) fn check(
    when: &Condition,
    metric: Option<&MetricQuery>,
    out: &mut Findings<'_>,
) -> Option<Datapoints> {
    match (&when.for_, &when.datapoints) {
        (None, None) => Some(LATEST),
        (None, Some(datapoints)) => Some(datapoints.value),
        (Some(_), Some(datapoints)) => {
            out.error_with_help(
                datapoints.referenced,
                "condition has both `for` and `datapoints`",
                "keep one: `for: 5m` on a 1m period means `datapoints: 5 of 5`",
            );
            None
        }
        (Some(duration), None) => {
            let periods = periods_of(duration, &when.metric.value, metric?, out);
            periods.map(|n| Datapoints {
                breaching: n,
                window: n,
            })
        }
    }
}

/// How many of `metric`'s periods `duration` (a `for:`) spans, or `None` after recording that
/// it is not a positive whole number of them.
pub(crate) fn periods_of(
    duration: &Spanned<Duration>,
    metric_name: &str,
    metric: &MetricQuery,
    out: &mut Findings<'_>,
) -> Option<u32> {
    let period = u64::from(metric.period_secs);
    let periods =
        whole_multiple(duration.value.as_secs(), period).and_then(|n| u32::try_from(n).ok());
    if periods.is_none() {
        out.error_with_help(
            duration.referenced,
            format!(
                "`for: {}` is not a positive whole multiple of metric `{metric_name}`'s period ({})",
                duration.value,
                Duration::from_secs(period)
            ),
            format!("use {}", nearest_multiples(duration.value.as_secs(), period)),
        );
    }
    periods
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};
    use crate::model::Datapoints;

    #[test]
    fn for_counts_whole_periods_and_datapoints_are_taken_as_written() {
        let policy = valid(EXAMPLE);
        assert_eq!(
            policy.scale_out[0].when.window,
            Datapoints {
                breaching: 5,
                window: 5
            }
        );
        assert_eq!(
            policy.scale_out[1].when.window,
            Datapoints {
                breaching: 3,
                window: 5
            }
        );
        assert_eq!(
            policy.scale_in[0].when.window,
            Datapoints {
                breaching: 15,
                window: 15
            }
        );
    }

    #[test]
    fn no_window_means_the_latest_datapoint() {
        let policy = valid(&EXAMPLE.replace("above: 70, for: 5m", "above: 70"));
        assert_eq!(
            policy.scale_out[0].when.window,
            Datapoints {
                breaching: 1,
                window: 1
            }
        );
    }

    #[test]
    fn both_windows_are_rejected_at_datapoints() {
        let errors = errors(&EXAMPLE.replace("for: 5m }", "for: 5m, datapoints: 3 of 5 }"));
        assert_eq!(errors, ["11:60: condition has both `for` and `datapoints`"]);
    }

    #[test]
    fn for_not_a_multiple_of_the_period_is_rejected_at_for() {
        let text = EXAMPLE.replace("for: 5m", "for: 90s");
        assert_eq!(
            errors(&text),
            ["11:44: `for: 1m30s` is not a positive whole multiple of metric `cpu`'s period (1m)"]
        );
        assert_eq!(helps(&text), [Some("use 1m or 2m".to_owned())]);
    }

    #[test]
    fn for_shorter_than_the_period_suggests_one_period() {
        let text = EXAMPLE
            .replace("period: 1m }\n  conns", "period: 5m }\n  conns")
            .replace("for: 5m", "for: 3m");
        assert_eq!(helps(&text), [Some("use 5m".to_owned())]);
    }

    #[test]
    fn a_zero_for_is_rejected() {
        let errors = errors(&EXAMPLE.replace("for: 5m", "for: 0s"));
        assert_eq!(
            errors,
            ["11:44: `for: 0s` is not a positive whole multiple of metric `cpu`'s period (1m)"]
        );
    }
}
