//! A metric's `delay` is shorter than the time CloudWatch keeps datapoints of its period.
//!
//! Why: a window ends `delay` before the evaluation. CloudWatch keeps one-minute datapoints for
//! 15 days, five-minute ones for 63 days and one-hour ones for 455 days (`GetMetricStatistics`,
//! Amazon CloudWatch API Reference); a window that ends further back reads nothing, so every
//! rule on the metric would hold for ever. A negative or fractional delay is not a duration at
//! all and is rejected as the file is read ([`crate::values`]).
//!
//! Example: `delay: 20d` on a `1m` metric is rejected with "CloudWatch keeps 1m datapoints for
//! 15d".

use crate::model::{DEFAULT_DELAY, Duration};
use crate::raw::Spanned;
use crate::validate::Findings;

const DAY: u64 = 86_400;

/// How long CloudWatch keeps datapoints of a period of `period_secs`, which is whole minutes:
/// the longest retention whose resolution the period is a multiple of.
fn retention(period_secs: u32) -> Duration {
    let days = match period_secs {
        p if p.is_multiple_of(3_600) => 455,
        p if p.is_multiple_of(300) => 63,
        _ => 15,
    };
    Duration::from_secs(days * DAY)
}

/// The metric's delay ([`DEFAULT_DELAY`] when not given), or `None` after recording why it is
/// invalid. `period_secs` is `None` when the period is invalid, which [`super::periods`]
/// reports; then no delay results.
pub(crate) fn check(
    delay: Option<&Spanned<Duration>>,
    period_secs: Option<u32>,
    out: &mut Findings<'_>,
) -> Option<Duration> {
    let period_secs = period_secs?;
    let Some(delay) = delay else {
        return Some(DEFAULT_DELAY);
    };
    let kept = retention(period_secs);
    if delay.value >= kept {
        out.error_with_help(
            delay.referenced,
            format!(
                "`delay: {}` reaches beyond CloudWatch's retention: it keeps {} datapoints for {kept}",
                delay.value,
                Duration::from_secs(period_secs.into()),
            ),
            format!(
                "the delay is how late datapoints land, usually minutes: e.g. `delay: {DEFAULT_DELAY}`"
            ),
        );
        return None;
    }
    Some(delay.value)
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};
    use crate::model::DEFAULT_DELAY;

    const CPU_PERIOD: &str = "stat: Average, period: 1m";

    fn cpu(with: &str) -> String {
        EXAMPLE.replace(
            CPU_PERIOD,
            &format!("stat: Average, period: 1m, delay: {with}"),
        )
    }

    #[test]
    fn a_metric_without_delay_gets_the_default() {
        let policy = valid(EXAMPLE);
        assert_eq!(policy.delay("cpu"), DEFAULT_DELAY);
        assert_eq!(DEFAULT_DELAY.as_secs(), 120);
    }

    #[test]
    fn a_delay_is_any_whole_number_of_seconds_including_none() {
        assert_eq!(valid(&cpu("90s")).delay("cpu").as_secs(), 90);
        assert_eq!(valid(&cpu("0s")).delay("cpu").as_secs(), 0);
        assert_eq!(valid(&cpu("0s")).delay("conns_free"), DEFAULT_DELAY);
    }

    #[test]
    fn a_delay_beyond_the_retention_of_its_period_is_rejected_at_the_delay() {
        let text = cpu("15d");
        assert_eq!(
            errors(&text),
            [
                "8:152: `delay: 15d` reaches beyond CloudWatch's retention: it keeps 1m datapoints for 15d"
            ]
        );
        assert_eq!(
            helps(&text),
            [Some(
                "the delay is how late datapoints land, usually minutes: e.g. `delay: 2m`"
                    .to_owned()
            )]
        );
        assert_eq!(
            valid(&cpu("14d23h")).delay("cpu").as_secs(),
            14 * 86_400 + 23 * 3_600
        );
    }

    #[test]
    fn longer_periods_are_kept_longer() {
        let at = |period: &str, delay: &str| {
            EXAMPLE
                .replace(
                    CPU_PERIOD,
                    &format!("stat: Average, period: {period}, delay: {delay}"),
                )
                .replace("for: 5m", &format!("for: {period}"))
                .replace("for: 15m", &format!("for: {period}"))
        };
        assert_eq!(valid(&at("5m", "62d")).delay("cpu").as_secs(), 62 * 86_400);
        assert_eq!(errors(&at("5m", "63d")).len(), 1);
        assert_eq!(
            valid(&at("1h", "454d")).delay("cpu").as_secs(),
            454 * 86_400
        );
        assert_eq!(errors(&at("2h", "455d")).len(), 1);
        assert_eq!(errors(&at("10m", "63d")).len(), 1);
    }

    #[test]
    fn a_negative_or_fractional_delay_is_rejected_where_it_is_written() {
        for bad in ["-2m", "1.5s", "120", "2 minutes"] {
            let errors = errors(&cpu(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(
                errors[0].starts_with("8:152: ") && errors[0].contains("invalid duration"),
                "{bad}: {errors:?}"
            );
        }
    }
}
