//! One invocation: event in, decisions logged, summary out.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use capstan_aws::Aws;
use capstan_policy::model::Policy;
use capstan_runner::{Mode, Outcome, Ports, Result as RunResult, evaluate};

use crate::event;
use crate::settings::Settings;

/// What the evaluator holds between invocations.
pub struct App {
    /// The whole policy set, or why it was refused at cold start. Only the kinds
    /// [`capstan_aws::actuates`] are evaluated; the others still count in the guards.
    policies: Result<Vec<Policy>, String>,
    aws: Aws,
    mode: Mode,
    max_event_age: TimeDelta,
}

impl App {
    /// Validates the policy set and builds the AWS clients. An invalid set is logged once, loudly,
    /// and every invocation then refuses to act.
    pub async fn start(settings: Settings) -> Self {
        let policies = capstan_lambda::load_policies(settings.policy_dir.as_deref()).map(|set| {
            let policies = set.policies().to_vec();
            for policy in policies.iter().filter(|policy| !capstan_aws::actuates(&policy.target)) {
                tracing::warn!(policy = %policy.name, target = %policy.target, "validated; this release does not actuate this target kind");
            }
            tracing::info!(policies = policies.len(), "policy set valid");
            policies
        });
        if let Err(report) = &policies {
            tracing::error!(error = %report, "policy set invalid: refusing to act until a valid set is deployed");
        }
        let config = capstan_aws::load_config(settings.aws_endpoint.as_deref()).await;
        let aws = Aws::new(&config, settings.state_table).with_policies(policies.iter().flatten());
        Self {
            policies,
            aws,
            mode: if settings.dry_run {
                Mode::DryRun
            } else {
                Mode::Act
            },
            max_event_age: TimeDelta::from_std(settings.max_event_age).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Handles one event: a malformed or unknown event is an error and changes nothing.
    pub async fn handle(&self, event: Value) -> Result<Value, lambda_runtime::Error> {
        let policies = self.policies.as_ref().map_err(
            |_| "policy set invalid: refusing to act (see the cold-start error in the log)",
        )?;
        let triggers = event::parse(event).inspect_err(|error| {
            tracing::error!(error = %error, "event rejected: no action taken");
        })?;
        let ports = Ports {
            metrics: self.aws.cloudwatch(),
            capacity: &self.aws,
            state: self.aws.state(),
        };
        let mut results = Vec::new();
        for trigger in &triggers {
            let now = evaluation_time(trigger.at(), Utc::now(), self.max_event_age);
            let mut woken = trigger.select(policies);
            woken.retain(|policy| capstan_aws::actuates(&policy.target));
            if woken.is_empty() {
                tracing::info!(trigger = ?trigger, "no policy uses this alarm's metrics");
            }
            let all: Vec<&Policy> = policies.iter().collect();
            let pass = evaluate(&woken, &all, &ports, now, self.mode).await;
            for request in &pass.requests {
                tracing::info!(request = %json!(request), "a guard asks for more capacity elsewhere");
            }
            for outcome in pass.outcomes {
                log_decision(&outcome);
                results.push(outcome);
            }
        }
        Ok(json!({ "triggers": triggers, "mode": self.mode, "outcomes": results }))
    }
}

/// The instant to evaluate at: the event's own time when it is at most `max_age` old (so a
/// duplicate delivery decides exactly as the first did), otherwise now. Never in the future.
fn evaluation_time(
    event_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_age: TimeDelta,
) -> DateTime<Utc> {
    match event_at {
        Some(at) if at <= now && now - at <= max_age => at,
        _ => now,
    }
}

/// Writes one JSON log record for a decision, with its whole explanation as structured fields.
fn log_decision(outcome: &Outcome) {
    let record = json!({
        "timestamp": Utc::now(),
        "level": if matches!(outcome.result, RunResult::Failed(_)) { "ERROR" } else { "INFO" },
        "message": outcome.to_string(),
        "decision": outcome,
    });
    println!("{record}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_events_are_evaluated_as_of_their_own_time() {
        let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        let max_age = TimeDelta::minutes(10);
        let recent = now - TimeDelta::minutes(3);
        assert_eq!(evaluation_time(Some(recent), now, max_age), recent);
        assert_eq!(
            evaluation_time(Some(now - max_age), now, max_age),
            now - max_age
        );
        assert_eq!(
            evaluation_time(Some(now - TimeDelta::minutes(11)), now, max_age),
            now,
            "stale retry"
        );
        assert_eq!(
            evaluation_time(Some(now + TimeDelta::minutes(1)), now, max_age),
            now,
            "future"
        );
        assert_eq!(evaluation_time(None, now, max_age), now);
    }
}
