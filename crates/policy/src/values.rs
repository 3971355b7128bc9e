//! Scalar values of the policy language that are parsed from strings: durations, statistics,
//! cron expressions, time zones and `M of N` windows. Each checks itself while the file is
//! read, so a bad value is reported at its own line and column.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits;

/// Implements `Deserialize` (through `FromStr`, so a bad value fails where it stands) and a
/// string JSON Schema with the given pattern and description.
macro_rules! string_value {
    ($type:ty, $pattern:expr, $description:expr) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let pattern: Option<&str> = $pattern;
                match pattern {
                    Some(pattern) => schemars::json_schema!({
                        "type": "string",
                        "pattern": pattern,
                        "description": $description,
                    }),
                    None => schemars::json_schema!({
                        "type": "string",
                        "description": $description,
                    }),
                }
            }
        }
    };
}

/// A length of time written as whole units: `90s`, `5m`, `3h`, `1d`, or combined as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct Duration {
    seconds: u64,
}

impl Duration {
    /// A duration of `seconds` seconds.
    pub const fn from_secs(seconds: u64) -> Self {
        Self { seconds }
    }

    /// The length in seconds.
    pub const fn as_secs(self) -> u64 {
        self.seconds
    }

    /// The length as a `chrono::TimeDelta`.
    pub fn as_delta(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.seconds).unwrap_or(i64::MAX))
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not whole units.
    #[error("invalid duration `{0}`: write whole units such as `90s`, `5m`, `3h` or `1h30m`")]
    Syntax(String),
    /// Longer than [`MAX_DURATION_SECS`](crate::limits::MAX_DURATION_SECS).
    #[error("duration `{0}` is longer than 3650d (10 years), the longest a policy may name")]
    TooLong(String),
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || DurationError::Syntax(text.to_owned());
        let mut seconds: u64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(error());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
            if digits == 0 {
                return Err(error());
            }
            let amount: u64 = rest[..digits].parse().map_err(|_| error())?;
            let unit = match rest[digits..].chars().next() {
                Some('s') => 1,
                Some('m') => 60,
                Some('h') => 3_600,
                Some('d') => 86_400,
                _ => return Err(error()),
            };
            seconds = amount
                .checked_mul(unit)
                .and_then(|s| seconds.checked_add(s))
                .ok_or_else(error)?;
            rest = &rest[digits + 1..];
        }
        if seconds > limits::MAX_DURATION_SECS {
            return Err(DurationError::TooLong(text.to_owned()));
        }
        Ok(Self { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')];
        if self.seconds == 0 {
            return f.write_str("0s");
        }
        let mut left = self.seconds;
        for (size, unit) in units {
            if left >= size {
                write!(f, "{}{unit}", left / size)?;
                left %= size;
            }
        }
        Ok(())
    }
}

impl From<Duration> for String {
    fn from(duration: Duration) -> Self {
        duration.to_string()
    }
}

string_value!(
    Duration,
    Some("^([0-9]+[smhd])+$"),
    "A duration in whole units: `90s`, `5m`, `3h`, `1d` or combined, e.g. `1h30m`."
);

/// The CloudWatch statistic computed over each period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum Statistic {
    /// Mean of the samples.
    Average,
    /// Lowest sample.
    Minimum,
    /// Highest sample.
    Maximum,
    /// Total of the samples.
    Sum,
    /// Number of samples.
    SampleCount,
    /// A percentile, `p0` to `p100`, written as CloudWatch does (e.g. `p99`, `p99.9`).
    Percentile(String),
}

/// Why a statistic did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown statistic `{0}`: use Average, Minimum, Maximum, Sum, SampleCount or a percentile such as p99"
)]
pub struct StatisticError(String);

impl FromStr for Statistic {
    type Err = StatisticError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "Average" => Self::Average,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            "Sum" => Self::Sum,
            "SampleCount" => Self::SampleCount,
            _ => {
                let percent = text
                    .strip_prefix('p')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p));
                match percent {
                    Some(_) => Self::Percentile(text.to_owned()),
                    None => return Err(StatisticError(text.to_owned())),
                }
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Average => "Average",
            Self::Minimum => "Minimum",
            Self::Maximum => "Maximum",
            Self::Sum => "Sum",
            Self::SampleCount => "SampleCount",
            Self::Percentile(p) => p,
        })
    }
}

impl From<Statistic> for String {
    fn from(statistic: Statistic) -> Self {
        statistic.to_string()
    }
}

string_value!(
    Statistic,
    Some("^(Average|Minimum|Maximum|Sum|SampleCount|p[0-9]+(\\.[0-9]+)?)$"),
    "CloudWatch statistic: Average, Minimum, Maximum, Sum, SampleCount or a percentile such as p99."
);

/// A five-field cron expression (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone, Serialize)]
#[serde(into = "String")]
pub struct CronExpr {
    text: String,
    cron: croner::Cron,
}

impl CronExpr {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed expression.
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }
}

/// Why a cron expression did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression `{text}`: {reason}")]
pub struct CronError {
    text: String,
    reason: String,
}

impl From<CronExpr> for String {
    fn from(cron: CronExpr) -> Self {
        cron.text
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| CronError {
            text: text.to_owned(),
            reason,
        };
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            )));
        }
        let cron = croner::parser::CronParser::builder()
            .build()
            .parse(text)
            .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            text: text.to_owned(),
            cron,
        })
    }
}

string_value!(
    CronExpr,
    None,
    "Five-field cron expression: minute hour day-of-month month day-of-week, e.g. `0 17 * * FRI`."
);

/// An IANA time zone such as `Europe/London`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct TimeZone(pub chrono_tz::Tz);

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> Self {
        zone.0.name().to_owned()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

/// Why a time zone did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{text}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct TimeZoneError {
    text: String,
    suggestion: Option<String>,
}

impl FromStr for TimeZone {
    type Err = TimeZoneError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| TimeZoneError {
                text: text.to_owned(),
                suggestion: crate::suggest::closest(
                    text,
                    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
                ),
            })
    }
}

string_value!(
    TimeZone,
    None,
    "IANA time zone name, e.g. `Europe/London`. By default, `UTC`."
);

/// `M of N`: at least M of the last N datapoints breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Datapoints {
    /// How many datapoints must breach (M).
    pub breaching: u32,
    /// How many trailing datapoints are looked at (N).
    pub window: u32,
}

/// Why an `M of N` did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datapoints `{text}`: write `M of N` with 1 <= M <= N, e.g. `3 of 5`")]
pub struct DatapointsError {
    text: String,
}

impl fmt::Display for Datapoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.breaching, self.window)
    }
}

impl From<Datapoints> for String {
    fn from(datapoints: Datapoints) -> Self {
        datapoints.to_string()
    }
}

impl FromStr for Datapoints {
    type Err = DatapointsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || DatapointsError {
            text: text.to_owned(),
        };
        let (m, n) = text.split_once(" of ").ok_or_else(error)?;
        let breaching: u32 = m.trim().parse().map_err(|_| error())?;
        let window: u32 = n.trim().parse().map_err(|_| error())?;
        if breaching == 0 || breaching > window {
            return Err(error());
        }
        Ok(Self { breaching, window })
    }
}

string_value!(
    Datapoints,
    Some("^[0-9]+ of [0-9]+$"),
    "`M of N`: at least M of the last N datapoints breach, e.g. `3 of 5`."
);

/// A fraction in `[0, 1)`, written as a percentage (`5%`, `2.5%`) or as a number (`0.05`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Fraction(f64);

impl Fraction {
    /// 10%.
    pub const TEN_PERCENT: Self = Self(0.1);

    /// 20%, the default tolerance of target tracking.
    pub const FIFTH: Self = Self(0.2);

    /// 25%, the default largest recent error a forecast floor is trusted at.
    pub const QUARTER: Self = Self(0.25);

    /// `value`, if it is a finite number in `[0, 1)`.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && (0.0..1.0).contains(&value)).then_some(Self(value))
    }

    /// The fraction as a number, e.g. `0.05` for `5%`.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0 * 100.0)
    }
}

/// Why a fraction did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid fraction `{text}`: write a percentage from 0% to below 100% (`5%`) or a number from 0 to below 1 (`0.05`)"
)]
pub struct FractionError {
    text: String,
}

impl FromStr for Fraction {
    type Err = FractionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || FractionError {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        let value = match trimmed.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map_err(|_| error())? / 100.0,
            None => trimmed.parse::<f64>().map_err(|_| error())?,
        };
        Self::new(value).ok_or_else(error)
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Fraction;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as `5%` or a number such as `0.05`")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Fraction, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Fraction, E> {
                self.visit_str(&value.to_string())
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Fraction, E> {
                self.visit_str(&value.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Fraction, E> {
                self.visit_str(&value.to_string())
            }
        }

        // Either form in a policy file; a number in the packaged set (`PolicySet::to_packaged`),
        // whose binary form must be told what to read.
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Visitor)
        } else {
            deserializer.deserialize_f64(Visitor)
        }
    }
}

impl JsonSchema for Fraction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fraction".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A fraction from 0 to below 1: a percentage such as `5%` or a number such as `0.05`.",
            "oneOf": [
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$" },
                { "type": "number", "minimum": 0, "exclusiveMaximum": 1 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_parse_as_percentages_or_numbers_below_one() {
        let parse = |text: &str| text.parse::<Fraction>().map(Fraction::get).ok();
        assert_eq!(parse("5%"), Some(0.05));
        assert_eq!(parse("0.05"), Some(0.05));
        assert_eq!(parse("0"), Some(0.0));
        assert_eq!(parse("100%"), None);
        assert_eq!(parse("1"), None);
        assert_eq!(parse("-5%"), None);
        assert_eq!(parse("five%"), None);
    }

    #[test]
    fn durations_parse_and_print_in_whole_units() {
        assert_eq!("90s".parse::<Duration>().map(Duration::as_secs), Ok(90));
        assert_eq!(
            "1h30m".parse::<Duration>().map(Duration::as_secs),
            Ok(5_400)
        );
        assert_eq!(Duration::from_secs(5_400).to_string(), "1h30m");
        for bad in ["", "5", "m", "5x", "5 m", "-5m", "99999999999999999999d"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn durations_end_at_ten_years() {
        assert_eq!(
            "3650d".parse::<Duration>().map(Duration::as_secs),
            Ok(limits::MAX_DURATION_SECS)
        );
        for too_long in ["3651d", "3650d1s", "9999999999999d"] {
            assert_eq!(
                too_long.parse::<Duration>().map_err(|e| e.to_string()),
                Err(format!(
                    "duration `{too_long}` is longer than 3650d (10 years), the longest a policy may name"
                ))
            );
        }
    }

    #[test]
    fn datapoints_need_m_between_one_and_n() {
        assert_eq!(
            "3 of 5".parse(),
            Ok(Datapoints {
                breaching: 3,
                window: 5
            })
        );
        for bad in ["0 of 5", "6 of 5", "3/5", "three of five"] {
            assert!(
                bad.parse::<Datapoints>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn statistics_accept_percentiles_within_range() {
        assert_eq!("p99.9".parse(), Ok(Statistic::Percentile("p99.9".into())));
        assert!("p101".parse::<Statistic>().is_err());
        assert!("average".parse::<Statistic>().is_err());
    }

    #[test]
    fn cron_needs_five_valid_fields() {
        assert!("0 17 * * FRI".parse::<CronExpr>().is_ok());
        assert!("0 17 * *".parse::<CronExpr>().is_err());
        assert!("0 25 * * FRI".parse::<CronExpr>().is_err());
    }

    /// The next opening of `cron` in London after `after` (a UTC time), in UTC.
    fn next_in_london(cron: &str, after: &str) -> String {
        use chrono::{DateTime, Utc};
        let cron: CronExpr = cron.parse().expect("a valid cron expression");
        let after: DateTime<Utc> = after.parse().expect("a valid time");
        let after = after.with_timezone(&chrono_tz::Europe::London);
        let next = cron
            .cron()
            .find_next_occurrence(&after, false)
            .expect("an occurrence");
        next.with_timezone(&Utc).to_rfc3339()
    }

    #[test]
    fn a_window_opening_in_a_spring_forward_gap_opens_at_the_next_valid_instant() {
        // 2025-03-30 01:30 does not exist in London: clocks go from 01:00 GMT to 02:00 BST.
        let next = next_in_london("30 1 * * SUN", "2025-03-29T12:00:00Z");
        assert_eq!(next, "2025-03-30T01:00:00+00:00"); // 02:00 BST
    }

    #[test]
    fn a_window_opening_in_a_fall_back_overlap_opens_once() {
        // 2025-10-26 01:30 happens twice in London: first in BST (00:30 UTC), then in GMT.
        let first = next_in_london("30 1 * * SUN", "2025-10-25T12:00:00Z");
        assert_eq!(first, "2025-10-26T00:30:00+00:00");
        let second = next_in_london("30 1 * * SUN", &first);
        assert_eq!(second, "2025-11-02T01:30:00+00:00");
    }

    #[test]
    fn unknown_time_zone_suggests_the_closest() {
        let error = "Europe/Londn"
            .parse::<TimeZone>()
            .expect_err("a misspelt zone must not parse");
        assert!(
            error.to_string().contains("did you mean `Europe/London`"),
            "{error}"
        );
    }
}
