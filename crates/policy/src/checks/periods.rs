//! A metric's `period` is a positive whole number of minutes.
//!
//! Why: capstan reads standard-resolution CloudWatch metrics, which have one datapoint per
//! minute at best; a window is counted in whole periods, so a period must be whole minutes.
//!
//! Example: `period: 90s` is rejected with "use 1m or 2m". A period past the 455 days CloudWatch
//! keeps metrics for reads nothing, and is rejected too.

use super::{nearest_multiples, whole_multiple};
use crate::model::Duration;
use crate::raw::Spanned;
use crate::validate::Findings;

/// The shortest period, and the unit every period is a multiple of.
const MINUTE: u64 = 60;

/// The longest period: CloudWatch keeps a metric's datapoints for at most 455 days.
const LONGEST: u64 = 455 * 24 * 3600;

/// The period in seconds, or `None` after recording why it is invalid.
pub(crate) fn check(period: &Spanned<Duration>, out: &mut Findings<'_>) -> Option<u32> {
    let seconds = period.value.as_secs();
    if seconds > LONGEST {
        out.error(
            period.referenced,
            format!(
                "period `{}` is longer than the 455 days CloudWatch keeps metrics",
                period.value
            ),
        );
        return None;
    }
    let valid = whole_multiple(seconds, MINUTE).and_then(|_| u32::try_from(seconds).ok());
    if valid.is_none() {
        out.error_with_help(
            period.referenced,
            format!(
                "period `{}` is not a positive whole number of minutes",
                period.value
            ),
            format!(
                "CloudWatch periods are multiples of 60s: use {}",
                nearest_multiples(seconds, MINUTE)
            ),
        );
    }
    valid
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};

    const CPU_PERIOD: &str = "stat: Average, period: 1m";

    #[test]
    fn whole_minutes_are_accepted() {
        let policy = valid(
            &EXAMPLE
                .replace(CPU_PERIOD, "stat: Average, period: 1h")
                .replace("for: 5m", "for: 1h")
                .replace("for: 15m", "for: 2h"),
        );
        assert_eq!(policy.metric("cpu").period_secs, 3600);
    }

    #[test]
    fn a_period_that_is_not_whole_minutes_is_rejected_at_the_period() {
        let text = EXAMPLE.replace(CPU_PERIOD, "stat: Average, period: 90s");
        assert_eq!(
            errors(&text),
            ["8:141: period `1m30s` is not a positive whole number of minutes"]
        );
        assert_eq!(
            helps(&text),
            [Some(
                "CloudWatch periods are multiples of 60s: use 1m or 2m".to_owned()
            )]
        );
    }

    #[test]
    fn a_period_longer_than_cloudwatch_keeps_metrics_is_rejected() {
        let text = EXAMPLE.replace(CPU_PERIOD, "stat: Average, period: 456d");
        assert_eq!(
            errors(&text),
            ["8:141: period `456d` is longer than the 455 days CloudWatch keeps metrics"]
        );
        assert_eq!(helps(&text), [None]);
        let longest = EXAMPLE
            .replace(CPU_PERIOD, "stat: Average, period: 455d")
            .replace("for: 5m", "for: 455d")
            .replace("for: 15m", "for: 910d");
        assert_eq!(valid(&longest).metric("cpu").period_secs, 39_312_000);
    }

    #[test]
    fn a_zero_period_is_rejected() {
        let text = EXAMPLE.replace(CPU_PERIOD, "stat: Average, period: 0s");
        assert_eq!(
            errors(&text),
            ["8:141: period `0s` is not a positive whole number of minutes"]
        );
        assert_eq!(
            helps(&text),
            [Some(
                "CloudWatch periods are multiples of 60s: use 1m".to_owned()
            )]
        );
    }
}
