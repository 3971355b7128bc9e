//! The alarm-sync Lambda: keeps the CloudWatch alarms that wake the evaluator in line with the
//! policies packaged with it, through [`capstan_engine::alarms`] and
//! [`capstan_aws::CloudWatchAlarms`].
//!
//! It is invoked two ways:
//!
//! - as the CloudFormation custom resource `Custom::CapstanAlarmSync` (properties
//!   `PolicySetHash`, which changes with the policies so every policy change syncs, and
//!   `AlarmPrefix`): Create and Update sync, Delete deletes capstan's alarms with the prefix.
//!   CloudFormation always gets an answer, `FAILED` with the reason on any error, so a stack
//!   never waits for its timeout;
//! - on a daily schedule with exactly `{"capstan": "sync-alarms"}`, which repairs drift.
//!
//! `capstan alarms diff` prints the plan a sync would apply, computed the same way.

mod custom_resource;
mod settings;

use capstan_aws::CloudWatchAlarms;
use capstan_engine::alarms::{self, AlarmPlan};
use capstan_engine::model::Policy;
use serde_json::{Value, json};

pub use custom_resource::Responder;
pub use settings::Settings;

/// The scheduled payload that asks for a sync.
pub const SCHEDULED_PAYLOAD: &str = "sync-alarms";

/// What the function holds between invocations.
pub struct App {
    /// The policies to derive alarms from, or why the packaged set was refused at cold start.
    policies: Result<Vec<Policy>, String>,
    alarms: CloudWatchAlarms,
    prefix: String,
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
            .map(|set| set.policies().to_vec());
        match &policies {
            Ok(policies) => tracing::info!(policies = policies.len(), "policy set valid"),
            Err(report) => tracing::error!(error = %report, "policy set invalid: refusing to sync"),
        }
        Ok(Self {
            policies,
            alarms: CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(&config)),
            prefix: settings.alarm_prefix,
            responder: Responder::new()?,
        })
    }

    /// Handles one invocation: a scheduled sync, or a custom resource request (answered to
    /// CloudFormation whatever happens). Returns a summary of what was done.
    pub async fn handle(&self, event: Value) -> Result<Value, lambda_runtime::Error> {
        if event == json!({ "capstan": SCHEDULED_PAYLOAD }) {
            let plan = self.sync(&self.prefix).await?;
            return Ok(summary(&plan));
        }
        if event.get("RequestType").is_some() {
            return custom_resource::handle(self, event).await;
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

    /// Creates, changes and deletes alarms named with `prefix` until they match the policies.
    async fn sync(&self, prefix: &str) -> Result<AlarmPlan, String> {
        let policies = self
            .policies
            .as_ref()
            .map_err(|report| format!("policy set invalid, no alarm changed:\n{report}"))?;
        self.apply(alarms::desired(policies, prefix), prefix).await
    }

    /// Deletes every alarm capstan owns with `prefix`.
    async fn delete_all(&self, prefix: &str) -> Result<AlarmPlan, String> {
        self.apply(Vec::new(), prefix).await
    }

    async fn apply(
        &self,
        desired: Vec<alarms::AlarmSpec>,
        prefix: &str,
    ) -> Result<AlarmPlan, String> {
        let plan = self
            .alarms
            .plan(desired, prefix)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(%prefix, plan = %plan, "alarm plan");
        self.alarms
            .apply(&plan)
            .await
            .map_err(|error| error.to_string())?;
        Ok(plan)
    }
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
