//! The evaluator's settings, read once from the environment at cold start.

use std::env;
use std::time::Duration;

/// Settings of the evaluator.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DRY_RUN`: decide and log, never act. By default, false.
    pub dry_run: bool,
    /// `CAPSTAN_STATE_TABLE`: the DynamoDB table holding cooldown state. Required.
    pub state_table: String,
    /// `CAPSTAN_AWS_ENDPOINT`: send every AWS call to this endpoint (the emulator). By default,
    /// the SDK's own endpoints.
    pub aws_endpoint: Option<String>,
    /// `CAPSTAN_POLICY_DIR`: read policies from this directory instead of those packaged with
    /// the function.
    pub policy_dir: Option<String>,
    /// `CAPSTAN_MAX_EVENT_AGE_SECS`: an event is evaluated as of its own time when it is at most
    /// this old, so duplicates decide alike; an older (retried) event is evaluated as of now.
    /// By default, 600.
    pub max_event_age: Duration,
}

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
        let dry_run = match optional("DRY_RUN").as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(SettingsError {
                    name: "DRY_RUN",
                    problem: format!("expected true or false, got `{other}`"),
                });
            }
        };
        let state_table = optional("CAPSTAN_STATE_TABLE").ok_or(SettingsError {
            name: "CAPSTAN_STATE_TABLE",
            problem: "not set".into(),
        })?;
        let max_event_age = match optional("CAPSTAN_MAX_EVENT_AGE_SECS") {
            None => Duration::from_secs(600),
            Some(secs) => Duration::from_secs(secs.parse().map_err(|_| SettingsError {
                name: "CAPSTAN_MAX_EVENT_AGE_SECS",
                problem: format!("expected whole seconds, got `{secs}`"),
            })?),
        };
        Ok(Self {
            dry_run,
            state_table,
            aws_endpoint: optional("CAPSTAN_AWS_ENDPOINT"),
            policy_dir: optional("CAPSTAN_POLICY_DIR"),
            max_event_age,
        })
    }
}
