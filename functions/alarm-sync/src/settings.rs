//! The function's settings, read once from the environment at cold start.

use std::env;

use capstan_engine::alarms::DEFAULT_PREFIX;

/// Settings of the alarm-sync function.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CAPSTAN_ALARM_PREFIX`: the prefix of the alarms capstan manages, used when a request
    /// names none. By default, `capstan`.
    pub alarm_prefix: String,
    /// `CAPSTAN_STACK`: the name of the stack the function belongs to, which its alarms' names
    /// and `capstan:stack` tags carry. Without it nothing is synced or deleted.
    pub stack: Option<String>,
    /// `CAPSTAN_AWS_ENDPOINT`: send every AWS call to this endpoint (the emulator). By default,
    /// the SDK's own endpoints.
    pub aws_endpoint: Option<String>,
    /// `CAPSTAN_POLICY_DIR`: read policies from this directory instead of those packaged with
    /// the function.
    pub policy_dir: Option<String>,
}

impl Settings {
    /// Reads the settings from the environment; an empty variable counts as unset.
    pub fn from_env() -> Self {
        let optional = |name: &str| env::var(name).ok().filter(|value| !value.is_empty());
        Self {
            alarm_prefix: optional("CAPSTAN_ALARM_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into()),
            stack: optional("CAPSTAN_STACK"),
            aws_endpoint: optional("CAPSTAN_AWS_ENDPOINT"),
            policy_dir: optional("CAPSTAN_POLICY_DIR"),
        }
    }
}
