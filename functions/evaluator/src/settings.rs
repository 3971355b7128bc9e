//! The evaluator's settings, read once from the environment at cold start.

use std::env;
use std::num::NonZeroUsize;

use capstan_runner::Limits;

/// Settings of the evaluator.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DRY_RUN`: decide and log, never act. By default, false.
    pub dry_run: bool,
    /// `CAPSTAN_PAUSED`: the global pause. Every policy is evaluated and explained as if it
    /// were paused (a `paused` clamp shows what it would have done) and nothing acts. By
    /// default, false.
    pub paused: bool,
    /// `CAPSTAN_DECISIONS_TOPIC`: the ARN of an SNS topic that hears of every blocked or failed
    /// actuation, with the decision's explanation. By default, none.
    pub decisions_topic: Option<String>,
    /// `CAPSTAN_STATE_TABLE`: the DynamoDB table holding cooldown state. Required.
    pub state_table: String,
    /// `CAPSTAN_AWS_ENDPOINT`: send every AWS call to this endpoint (the emulator). By default,
    /// the SDK's own endpoints.
    pub aws_endpoint: Option<String>,
    /// `CAPSTAN_POLICY_DIR`: read policies from this directory instead of those packaged with
    /// the function.
    pub policy_dir: Option<String>,
    /// `CAPSTAN_REPLAY`: evaluate each event as of its own time (when it is not in the future),
    /// whatever its age, and remember the changes made at that time. For the demo and for
    /// replaying recorded events against an emulator, where simulated minutes pass faster than
    /// real ones; never for real resources. By default, false: every evaluation runs at the
    /// time it runs, however late AWS delivered its event, so that cooldowns, pacing and drain
    /// times count from the real time of each change.
    pub replay: bool,
    /// `CAPSTAN_MAX_IN_FLIGHT`: the most changes a pass makes at once (a positive whole
    /// number). By default, [`Limits::DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// `CAPSTAN_SHARD_QUEUE`: the URL of the SQS queue a tick over more than
    /// `max_resources_per_invocation` policies is fanned out through
    /// ([`FanOut`](crate::fan_out::FanOut)). By default, none: one invocation evaluates the
    /// whole set.
    pub shard_queue: Option<String>,
    /// `CAPSTAN_MAX_RESOURCES_PER_INVOCATION`: the most policies one invocation evaluates in a
    /// tick when a shard queue is set (a positive whole number). By default,
    /// [`DEFAULT_MAX_RESOURCES_PER_INVOCATION`].
    pub max_resources_per_invocation: NonZeroUsize,
    /// `CAPSTAN_CONCURRENCY`: how many evaluators may run at once (the function's reserved
    /// concurrency, a positive whole number). Each keeps to its share of AWS's rate limits: the
    /// limits divided by it ([`capstan_aws::RateLimits::shared_by`]). By default, 1: this
    /// evaluator is the only one.
    pub concurrency: NonZeroUsize,
}

/// The most policies one invocation evaluates in a fanned-out tick, by default. Measured (see
/// docs/deploy.md, the operating envelope): 1,000 took 14 s of the 45 s a pass has, without
/// faults, for an evaluator alone and 44 s for one of 4 keeping to its share of the rate limits;
/// 500 took 17 s as one of 4; 200 took 22 s with 30% of calls failing. 500 leaves room for slow
/// APIs and faults.
pub const DEFAULT_MAX_RESOURCES_PER_INVOCATION: NonZeroUsize = NonZeroUsize::new(500).unwrap();

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {problem}")]
pub struct SettingsError {
    name: &'static str,
    problem: String,
}

impl Settings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let optional = |name: &'static str| env::var(name).ok().filter(|value| !value.is_empty());
        let flag = |name: &'static str| switch(name, optional(name).as_deref());
        let dry_run = flag("DRY_RUN")?;
        let paused = flag("CAPSTAN_PAUSED")?;
        let state_table = optional("CAPSTAN_STATE_TABLE").ok_or(SettingsError {
            name: "CAPSTAN_STATE_TABLE",
            problem: "not set".into(),
        })?;
        let replay = flag("CAPSTAN_REPLAY")?;
        let max_in_flight = match optional("CAPSTAN_MAX_IN_FLIGHT") {
            None => Limits::DEFAULT_MAX_IN_FLIGHT,
            Some(value) => positive("CAPSTAN_MAX_IN_FLIGHT", &value)?.get(),
        };
        let max_resources_per_invocation = match optional("CAPSTAN_MAX_RESOURCES_PER_INVOCATION") {
            None => DEFAULT_MAX_RESOURCES_PER_INVOCATION,
            Some(value) => positive("CAPSTAN_MAX_RESOURCES_PER_INVOCATION", &value)?,
        };
        let concurrency = match optional("CAPSTAN_CONCURRENCY") {
            None => NonZeroUsize::MIN,
            Some(value) => positive("CAPSTAN_CONCURRENCY", &value)?,
        };
        Ok(Self {
            dry_run,
            paused,
            decisions_topic: optional("CAPSTAN_DECISIONS_TOPIC"),
            state_table,
            aws_endpoint: optional("CAPSTAN_AWS_ENDPOINT"),
            policy_dir: optional("CAPSTAN_POLICY_DIR"),
            replay,
            max_in_flight,
            shard_queue: optional("CAPSTAN_SHARD_QUEUE"),
            max_resources_per_invocation,
            concurrency,
        })
    }
}

/// A positive whole number.
fn positive(name: &'static str, value: &str) -> Result<NonZeroUsize, SettingsError> {
    value.parse().map_err(|_| SettingsError {
        name,
        problem: format!("expected a positive whole number, got `{value}`"),
    })
}

/// An on/off setting: unset, empty, `false` or `0` is off; `true` or `1` is on.
fn switch(name: &'static str, value: Option<&str>) -> Result<bool, SettingsError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(SettingsError {
            name,
            problem: format!("expected true or false, got `{other}`"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_true_or_false_and_off_by_default() {
        assert!(!switch("CAPSTAN_PAUSED", None).unwrap());
        assert!(!switch("CAPSTAN_PAUSED", Some("false")).unwrap());
        assert!(switch("CAPSTAN_PAUSED", Some("true")).unwrap());
        assert!(switch("CAPSTAN_PAUSED", Some("1")).unwrap());
        assert_eq!(
            switch("CAPSTAN_PAUSED", Some("yes"))
                .unwrap_err()
                .to_string(),
            "setting CAPSTAN_PAUSED: expected true or false, got `yes`"
        );
    }

    #[test]
    fn the_bound_on_changes_in_flight_is_a_positive_whole_number() {
        assert_eq!(positive("CAPSTAN_MAX_IN_FLIGHT", "32").unwrap().get(), 32);
        for refused in ["0", "-1", "many", "1.5"] {
            assert_eq!(
                positive("CAPSTAN_MAX_IN_FLIGHT", refused)
                    .unwrap_err()
                    .to_string(),
                format!(
                    "setting CAPSTAN_MAX_IN_FLIGHT: expected a positive whole number, got `{refused}`"
                )
            );
        }
    }
}
