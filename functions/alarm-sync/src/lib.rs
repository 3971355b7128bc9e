//! The alarm-sync Lambda: keeps the CloudWatch alarms that wake the evaluator in line with the
//! policies packaged with it, through [`capstan_engine::alarms`] and
//! [`capstan_aws::CloudWatchAlarms`].
//!
//! It is invoked two ways:
//!
//! - as the CloudFormation custom resource `Custom::CapstanAlarmSync` (properties
//!   `PolicySetHash`, which changes with the policies so every policy change syncs, and
//!   `AlarmPrefix`): Create and Update sync, Delete deletes the stack's alarms under that
//!   prefix. CloudFormation always gets an answer, `FAILED` with the reason on any error, so a
//!   stack never waits for its timeout;
//! - on a daily schedule with exactly `{"capstan": "sync-alarms"}`, which repairs drift.
//!
//! Either way it touches only the stack's own alarms ([`alarms::AlarmNamespace`], named by
//! `CAPSTAN_STACK`). `capstan alarms diff` prints the plan a sync would apply, computed the same
//! way. Its CloudWatch calls keep to CloudWatch's rate quotas, and stop [`ANSWER_MARGIN`] before
//! the invocation's deadline, so that CloudFormation is answered even when a sync is too large
//! for one invocation.

mod custom_resource;
mod settings;

use capstan_aws::CloudWatchAlarms;
use capstan_engine::alarms::{self, AlarmNamespace, AlarmPlan};
use capstan_engine::model::Policy;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

pub use custom_resource::{Responder, physical_id};
pub use settings::Settings;

/// The scheduled payload that asks for a sync.
pub const SCHEDULED_PAYLOAD: &str = "sync-alarms";

/// How long before the invocation's deadline a sync stops sending CloudWatch calls: room to
/// answer CloudFormation. A call whose turn under CloudWatch's rate quota would come later fails
/// at once, and the sync with it (see [`CloudWatchAlarms::until`]); the next sync goes on from
/// the alarms this one left.
pub const ANSWER_MARGIN: TimeDelta = TimeDelta::seconds(10);

/// What the function holds between invocations.
pub struct App {
    /// The policies to derive alarms from, or why the packaged set was refused at cold start.
    policies: Result<Vec<Policy>, String>,
    alarms: CloudWatchAlarms,
    prefix: String,
    stack: Option<String>,
    responder: Responder,
}

/// Why an event was refused. Nothing is changed.
#[derive(Debug, thiserror::Error)]
#[error(
    "unrecognised event ({0}); expected a Custom::CapstanAlarmSync request or {{\"capstan\": \"sync-alarms\"}}"
)]
pub struct UnrecognisedEvent(String);

impl App {
    /// Validates the policy set and builds the clients from the settings. An invalid set is
    /// logged once; every sync then fails with it (deleting alarms still works).
    pub async fn start(settings: Settings) -> Result<Self, lambda_runtime::Error> {
        let config = capstan_aws::load_config(settings.aws_endpoint.as_deref()).await;
        let policies = capstan_lambda::load_policies(settings.policy_dir.as_deref())
            .map(|set| set.into_policies());
        match &policies {
            Ok(policies) => tracing::info!(policies = policies.len(), "policy set valid"),
            Err(report) => tracing::error!(error = %report, "policy set invalid: refusing to sync"),
        }
        Ok(Self {
            policies,
            alarms: CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(&config)),
            prefix: settings.alarm_prefix,
            stack: settings.stack,
            responder: Responder::new()?,
        })
    }

    /// Handles one invocation, which Lambda stops at `deadline`: a scheduled sync, or a custom
    /// resource request (answered to CloudFormation whatever happens). Returns a summary of what
    /// was done.
    pub async fn handle(
        &self,
        event: Value,
        deadline: DateTime<Utc>,
    ) -> Result<Value, lambda_runtime::Error> {
        let cloudwatch = &self
            .alarms
            .clone()
            .until(sync_deadline(deadline, Utc::now()));
        if event == json!({ "capstan": SCHEDULED_PAYLOAD }) {
            let plan = sync(cloudwatch, &self.policies, &self.namespace(&self.prefix)?).await?;
            return Ok(summary(&plan));
        }
        if event.get("RequestType").is_some() {
            return custom_resource::handle(self, cloudwatch, event).await;
        }
        let seen = match &event {
            Value::Object(map) => format!(
                "top-level keys: {}",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            other => format!("not an object: {other}"),
        };
        tracing::error!(%seen, "event rejected: nothing changed");
        Err(UnrecognisedEvent(seen).into())
    }

    /// The stack's alarms under `prefix`.
    fn namespace(&self, prefix: &str) -> Result<AlarmNamespace, String> {
        let stack = self.stack.as_deref().ok_or(
            "CAPSTAN_STACK is not set: without the stack's name alarm-sync cannot tell its alarms from another stack's, so none changed",
        )?;
        AlarmNamespace::new(prefix, stack).map_err(|error| error.to_string())
    }
}

/// Creates, changes and deletes the stack's alarms of `namespace` through `cloudwatch` until they
/// match `policies`.
async fn sync(
    cloudwatch: &CloudWatchAlarms,
    policies: &Result<Vec<Policy>, String>,
    namespace: &AlarmNamespace,
) -> Result<AlarmPlan, String> {
    let policies = policies
        .as_ref()
        .map_err(|report| format!("policy set invalid, no alarm changed:\n{report}"))?;
    apply(cloudwatch, namespace, alarms::desired(policies, namespace)).await
}

/// Deletes through `cloudwatch` every alarm of `namespace` the stack owns.
async fn delete_all(
    cloudwatch: &CloudWatchAlarms,
    namespace: &AlarmNamespace,
) -> Result<AlarmPlan, String> {
    apply(cloudwatch, namespace, Vec::new()).await
}

/// Plans the alarms of `namespace` against `desired` and applies the plan through `cloudwatch`.
async fn apply(
    cloudwatch: &CloudWatchAlarms,
    namespace: &AlarmNamespace,
    desired: Vec<alarms::AlarmSpec>,
) -> Result<AlarmPlan, String> {
    let plan = cloudwatch
        .plan(namespace, desired)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(%namespace, plan = %plan, "alarm plan");
    cloudwatch
        .apply(&plan)
        .await
        .map_err(|error| error.to_string())?;
    Ok(plan)
}

/// When a sync of an invocation that Lambda stops at `deadline`, taken at `now`, stops sending
/// calls: [`ANSWER_MARGIN`] before it. A deadline not ahead of `now` is not a real one (cargo
/// lambda's emulator sends a fixed instant of 1970): then none.
fn sync_deadline(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (deadline > now).then(|| deadline - ANSWER_MARGIN)
}

/// What a sync did, as the invocation's answer.
fn summary(plan: &AlarmPlan) -> Value {
    json!({
        "created": plan.create.iter().map(|spec| &spec.name).collect::<Vec<_>>(),
        "changed": plan.change.iter().map(|change| &change.spec.name).collect::<Vec<_>>(),
        "deleted": plan.delete,
        "unchanged": plan.unchanged.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_stops_sending_in_time_to_answer_cloudformation() {
        let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        let deadline = now + TimeDelta::seconds(300);
        assert_eq!(
            sync_deadline(deadline, now),
            Some(now + TimeDelta::seconds(290))
        );
        assert_eq!(
            sync_deadline(DateTime::UNIX_EPOCH, now),
            None,
            "no real deadline"
        );
    }
}
