//! One invocation: event in, decisions logged, summary out.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use capstan_aws::state::{Claim, Decision};
use capstan_aws::{Aws, AwsError, DynamoStateStore, Queue, RateLimits, Topic};
use capstan_policy::model::Policy;
use capstan_runner::{AlarmTrigger, Limits, Mode, Outcome, Ports, Status, Trigger, evaluate};

use crate::emf;
use crate::fan_out::FanOut;
use crate::notice::notice;
use crate::settings::Settings;

/// How long an attempt's leases and claims outlast its deadline: the whole seconds leases are
/// compared in, the clocks of different hosts, and a write sent just before the deadline.
const LEASE_MARGIN: TimeDelta = TimeDelta::seconds(10);

/// How long before the invocation's deadline a pass stops starting work: room for a change
/// already in flight to end (each call is bounded by [`capstan_aws::OPERATION_TIMEOUT`]) and
/// for the batched saves, lease releases and decision log that follow it.
const DEADLINE_MARGIN: TimeDelta = TimeDelta::seconds(15);

/// What the evaluator holds between invocations.
pub struct App {
    /// The whole policy set, or why it was refused at cold start.
    policies: Result<Vec<Policy>, String>,
    aws: Aws,
    mode: Mode,
    paused: bool,
    replay: bool,
    max_in_flight: usize,
    decisions_topic: Option<Topic>,
    fan_out: Option<FanOut>,
}

impl App {
    /// Validates the policy set and builds the AWS clients. An invalid set is logged once, loudly,
    /// and every invocation then refuses to act. Under the global pause every policy is held as
    /// if it were paused itself.
    pub async fn start(settings: Settings) -> Self {
        let policies = capstan_lambda::load_policies(settings.policy_dir.as_deref()).map(|set| {
            let mut policies = set.into_policies();
            tracing::info!(policies = policies.len(), "policy set valid");
            if settings.paused {
                tracing::warn!(
                    "CAPSTAN_PAUSED: every policy is evaluated and explained, nothing acts"
                );
                for policy in &mut policies {
                    policy.paused = true;
                }
            }
            policies
        });
        if let Err(report) = &policies {
            tracing::error!(error = %report, "policy set invalid: refusing to act until a valid set is deployed");
        }
        let config = capstan_aws::load_config(settings.aws_endpoint.as_deref()).await;
        let aws = Aws::new(&config, settings.state_table)
            .with_policies(policies.iter().flatten())
            .with_rate_limits(RateLimits::shared_by(settings.concurrency));
        Self {
            policies,
            aws,
            mode: if settings.dry_run {
                Mode::DryRun
            } else {
                Mode::Act
            },
            paused: settings.paused,
            replay: settings.replay,
            max_in_flight: settings.max_in_flight,
            decisions_topic: settings.decisions_topic.map(|arn| Topic::new(&config, arn)),
            fan_out: settings.shard_queue.map(|url| {
                FanOut::new(
                    Queue::new(&config, url),
                    settings.max_resources_per_invocation,
                )
            }),
        }
    }

    /// Handles one event, delivered as invocation `request_id`, which Lambda stops at
    /// `deadline`: a malformed or unknown event is an error and changes nothing. When acting,
    /// each outcome is kept in the state table's decision log, and each delivery of an event
    /// (see [`Delivery::key`](capstan_events::Delivery::key)) first claims it:
    ///
    /// - claimed (the first delivery, or a later one after an attempt that failed, which gave
    ///   its claim back, or died, whose claim expired): evaluated, and the claim completed once
    ///   every outcome is logged;
    /// - completed before: acknowledged as a duplicate with a log line naming the first
    ///   delivery, and not evaluated again;
    /// - in progress by another attempt: not evaluated, and left to a later delivery (see
    ///   [`Self::claim`] and [`Refusals`]).
    ///
    /// A tick over a set larger than one invocation evaluates, with a shard queue set, is not
    /// evaluated here: its shards are sent to the queue ([`FanOut`]), and each comes back as a
    /// delivery of its own.
    ///
    /// The pass's leases and the claims last until `deadline` plus [`LEASE_MARGIN`]: they
    /// outlast the attempt, however long the function's timeout. They are held under the
    /// attempt's own name ([`attempt_name`]), not the request id alone: Lambda's retries of an
    /// asynchronous invocation and its rare duplicate deliveries share the request id, and two
    /// of them may run at once when the reserved concurrency is above 1. A retry of an attempt
    /// that died therefore waits until the dead attempt's claim and leases expire, as any other
    /// delivery does.
    pub async fn handle(
        &self,
        event: Value,
        request_id: &str,
        deadline: DateTime<Utc>,
    ) -> Result<Value, lambda_runtime::Error> {
        let attempt = attempt_name(request_id);
        let policies = self.policies.as_ref().map_err(
            |_| "policy set invalid: refusing to act (see the cold-start error in the log)",
        )?;
        let batch = capstan_events::parse(event).inspect_err(|error| {
            tracing::error!(error = %error, "event rejected: no action taken");
        })?;
        let mut refusals = Refusals::default();
        for (message_id, error) in batch.refused {
            tracing::error!(error = %error, message_id = %message_id, "message rejected: no action taken; SQS delivers it again, then moves it to the dead-letter queue");
            refusals.failed.push(message_id);
        }
        let store = self.aws.state().clone().with_lease_duration(lease_duration(
            deadline,
            Utc::now(),
            self.aws.state().lease_duration(),
        ));
        let all: Vec<&Policy> = policies.iter().collect();
        let mut triggers = Vec::new();
        let mut duplicates = Vec::new();
        let mut fanned_out = Vec::new();
        let mut missing = Vec::new();
        let mut requests = Vec::new();
        let mut results = Vec::new();
        for delivery in batch.deliveries {
            let message_id = delivery.message_id;
            let claimed = match (self.mode, delivery.key) {
                (Mode::Act, Some(key)) => match self.claim(&store, &key, &attempt).await {
                    Ok(Claim::Claimed) => Some(key),
                    Ok(Claim::Duplicate { by, at }) => {
                        tracing::info!(key = %key, first_attempt = %by, first_delivered_at = %at, "duplicate delivery: handled by the first delivery, not evaluated again");
                        duplicates.push(
                            json!({ "key": key, "first_attempt": by, "first_delivered_at": at }),
                        );
                        continue;
                    }
                    Ok(Claim::InProgress { by, until }) => {
                        tracing::warn!(key = %key, attempt = %by, until = %until, "delivery in progress by another attempt: not evaluated, retried later");
                        refusals.refuse(message_id, format!(
                            "event {key} is being handled by {by} (its claim lasts until {until}): not evaluated; failing so that this delivery is retried later"
                        ))?;
                        continue;
                    }
                    Err(error) => {
                        refusals.refuse(message_id, error.to_string())?;
                        continue;
                    }
                },
                _ => None,
            };
            let trigger = delivery.trigger;
            if let (Trigger::Tick { at }, Some(fan_out)) = (&trigger, &self.fan_out)
                && fan_out.applies(policies)
            {
                match fan_out.send(*at, policies).await {
                    Ok(sent) => fanned_out.push(sent),
                    Err(error) => {
                        tracing::error!(error = %error, "tick not fanned out whole: failing so that Lambda retries it");
                        if let Some(key) = claimed {
                            give_back(&store, &key, &attempt).await;
                        }
                        return Err(error.into());
                    }
                }
            } else {
                if let Trigger::Shard(shard) = &trigger {
                    for name in shard.missing(policies) {
                        tracing::error!(policy = %name, shard = shard.index, "a shard names a policy this deployment does not have (the set changed since the tick was split): not evaluated; the next tick splits the set deployed now");
                        missing.push(name.to_owned());
                    }
                }
                let pass = self
                    .pass(&trigger, policies, &all, &store, &attempt, deadline)
                    .await;
                results.extend(pass.outcomes);
                requests.extend(pass.requests);
            }
            triggers.push(trigger);
            if let Some(key) = claimed {
                complete(&store, &key, &attempt).await;
            }
        }
        let mut answer = json!({
            "triggers": triggers,
            "duplicates": duplicates,
            "mode": self.mode,
            "paused": self.paused,
            "outcomes": results,
            "requests": requests,
        });
        if !fanned_out.is_empty() {
            answer["fanned_out"] = json!(fanned_out);
        }
        if !missing.is_empty() {
            answer["missing_policies"] = json!(missing);
        }
        if let Some(failures) = refusals.batch_item_failures() {
            answer["batchItemFailures"] = failures;
        }
        Ok(answer)
    }

    /// Evaluates the policies `trigger` wakes among `policies` (`all` of them, for the guards),
    /// then reports and, when acting, keeps each outcome. A rate-limited AWS call of the pass
    /// whose turn would come after the pass's deadline fails at once ([`Aws::until`]).
    async fn pass(
        &self,
        trigger: &Trigger,
        policies: &[Policy],
        all: &[&Policy],
        store: &DynamoStateStore,
        attempt: &str,
        deadline: DateTime<Utc>,
    ) -> capstan_runner::Pass {
        let now = evaluation_time(trigger.at(), Utc::now(), self.replay);
        let replayed = move || now;
        let stops_at = pass_deadline(deadline, Utc::now());
        let aws = self.aws.clone().until(stops_at);
        let ports = Ports {
            metrics: aws.cloudwatch(),
            capacity: &aws,
            state: store,
            holder: attempt,
            clock: if self.replay { &replayed } else { &Utc::now },
            limits: Limits {
                max_in_flight: self.max_in_flight,
                deadline: stops_at,
            },
        };
        let woken = trigger.select(policies);
        match trigger {
            Trigger::Alarm(AlarmTrigger {
                name,
                rule: Some(rule),
                ..
            }) => {
                tracing::info!(alarm = %name, rule = %rule, "a composite alarm watches other alarms, not metrics, so it wakes no policy by metric; to evaluate on it, send its state changes as a tick (docs/alarms.md#composite-alarms)");
            }
            _ if woken.is_empty() => {
                tracing::info!(trigger = ?trigger, "no policy uses this alarm's metrics");
            }
            _ => {}
        }
        let pass = evaluate(&woken, all, &ports, now, self.mode).await;
        for request in &pass.requests {
            tracing::info!(request = %request, "a guard asks for more capacity elsewhere");
        }
        for (policy, outcome) in woken.iter().zip(&pass.outcomes) {
            self.report(outcome, policy).await;
        }
        if self.mode == Mode::Act {
            self.keep(&woken, &pass.outcomes, now, attempt).await;
        }
        pass
    }

    /// Claims the event `key` for this delivery. Failing to learn whether it is a duplicate
    /// refuses the delivery ([`Refusals`]), so that nothing acts twice and a later delivery
    /// decides again.
    ///
    /// A claim in progress by another attempt refuses the delivery too, rather than dropping
    /// it: every trigger but the shard queue (EventBridge, an alarm action, SNS, the schedule)
    /// invokes the function asynchronously, and Lambda retries a failed asynchronous invocation
    /// one and then two minutes later; SQS delivers a shard message again after the queue's
    /// visibility timeout. By then the other attempt has usually ended, since its claim lasts
    /// only until its own deadline plus [`LEASE_MARGIN`]: the retry finds the claim completed
    /// (and is acknowledged as a duplicate) or expired (and evaluates). Dropping it instead
    /// would lose this delivery's evaluation if the other attempt then died. A delivery that is
    /// still refused after its retries lands in a dead-letter queue.
    async fn claim(
        &self,
        store: &DynamoStateStore,
        key: &str,
        attempt: &str,
    ) -> Result<Claim, AwsError> {
        store
            .claim_event(key, attempt, Utc::now())
            .await
            .inspect_err(|error| {
                tracing::error!(error = %error, key = %key, "cannot tell whether this event was delivered before: not evaluated");
            })
    }

    /// Logs the decision and its metrics and tells the decisions topic of a blocked or failed
    /// actuation. A failure to publish it is logged and changes nothing else: the decision is
    /// already made and logged.
    async fn report(&self, outcome: &Outcome, policy: &Policy) {
        let target = &policy.target;
        log_decision(outcome);
        println!("{}", emf::record(outcome, target.kind(), Utc::now()));
        let (Some(topic), Some(notice)) =
            (&self.decisions_topic, notice(outcome, target, self.mode))
        else {
            return;
        };
        if let Err(error) = topic
            .publish(&notice.subject, &notice.message.to_string())
            .await
        {
            tracing::error!(policy = %outcome.policy, error = %error, "cannot publish to the decisions topic");
        }
    }

    /// Keeps the outcomes of `policies`, evaluated at `at`, in the state table's decision log,
    /// together. An outcome that could not be kept is logged and changes nothing else.
    async fn keep(
        &self,
        policies: &[&Policy],
        outcomes: &[Outcome],
        at: DateTime<Utc>,
        attempt: &str,
    ) {
        let mut decisions = Vec::with_capacity(outcomes.len());
        for (policy, outcome) in policies.iter().zip(outcomes) {
            match serde_json::to_string(outcome) {
                Ok(outcome) => decisions.push(Decision {
                    target: &policy.target,
                    policy: &policy.name,
                    at,
                    evaluator: attempt,
                    outcome,
                }),
                Err(error) => {
                    tracing::warn!(policy = %policy.name, error = %error, "decision not kept in the decision log");
                }
            }
        }
        let kept = self.aws.state().log_decisions(&decisions).await;
        for (decision, kept) in decisions.iter().zip(kept) {
            if let Err(error) = kept {
                tracing::warn!(policy = %decision.policy, error = %error, "decision not kept in the decision log");
            }
        }
    }
}

/// The deliveries of an invocation left to a later delivery. An SQS message is refused alone,
/// as a batch item failure (the event source mapping reports them with
/// `ReportBatchItemFailures`): SQS delivers it again and the batch's other messages are done.
/// Any other delivery fails the whole invocation, for Lambda's asynchronous retry.
#[derive(Default)]
struct Refusals {
    /// The ids of the SQS messages refused.
    failed: Vec<String>,
}

impl Refusals {
    /// Refuses the delivery that came in SQS message `message_id`, or, when it came otherwise,
    /// fails the invocation with `why`.
    fn refuse(
        &mut self,
        message_id: Option<String>,
        why: String,
    ) -> Result<(), lambda_runtime::Error> {
        match message_id {
            Some(id) => {
                tracing::warn!(message_id = %id, error = %why, "message refused: SQS delivers it again");
                self.failed.push(id);
                Ok(())
            }
            None => Err(why.into()),
        }
    }

    /// The `batchItemFailures` of the answer to an SQS batch, when a message was refused.
    fn batch_item_failures(&self) -> Option<Value> {
        (!self.failed.is_empty()).then(|| {
            json!(
                self.failed
                    .iter()
                    .map(|id| json!({ "itemIdentifier": id }))
                    .collect::<Vec<_>>()
            )
        })
    }
}

/// Marks this delivery's claim of the event `key` completed. A failure is logged and does not
/// fail the invocation: the delivery's work is done, and a retry would evaluate it again. The
/// claim then stays in progress until it expires, after which a later delivery of the event is
/// evaluated again.
async fn complete(store: &DynamoStateStore, key: &str, attempt: &str) {
    if let Err(error) = store.complete_event(key, attempt, Utc::now()).await {
        tracing::error!(error = %error, key = %key, "the delivery's claim could not be completed: a delivery of this event after the claim expires is evaluated again");
    }
}

/// Gives back this attempt's claim of the event `key`, which it failed to handle, so that
/// Lambda's retry of the invocation takes it at once instead of waiting for it to expire. A
/// failure is logged: the retry then waits for the claim to expire.
async fn give_back(store: &DynamoStateStore, key: &str, attempt: &str) {
    if let Err(error) = store.release_event(key, attempt).await {
        tracing::error!(error = %error, key = %key, "the failed delivery's claim could not be given back: a retry of this event waits until it expires");
    }
}

/// Who one attempt at invocation `request_id` is, as its claims, leases and decision log
/// entries name it: the request id and a number drawn for the attempt, so that two attempts
/// under one request id (Lambda's retry of an attempt that died, or a duplicate delivery of
/// its queue running beside the first) never take each other's claim or lease.
fn attempt_name(request_id: &str) -> String {
    format!("{request_id}/{:016x}", fastrand::u64(..))
}

/// How long the leases and claims of an attempt that Lambda stops at `deadline` last, taken
/// at `now`: until the deadline plus [`LEASE_MARGIN`]. A deadline not ahead of `now` is not a
/// real one (Lambda invokes no attempt past its deadline; cargo lambda's emulator sends a
/// fixed instant of 1970): then `otherwise`.
fn lease_duration(deadline: DateTime<Utc>, now: DateTime<Utc>, otherwise: TimeDelta) -> TimeDelta {
    if deadline > now {
        deadline - now + LEASE_MARGIN
    } else {
        otherwise
    }
}

/// When a pass of an attempt that Lambda stops at `deadline` stops starting work, taken at
/// `now`: [`DEADLINE_MARGIN`] before it. A deadline not ahead of `now` is not a real one (see
/// [`lease_duration`]): then none.
fn pass_deadline(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (deadline > now).then(|| deadline - DEADLINE_MARGIN)
}

/// The instant to evaluate at: now, or in replay the event's own time when it has one and it
/// is not in the future (see [`Settings::replay`](crate::settings::Settings::replay)).
fn evaluation_time(
    event_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    replay: bool,
) -> DateTime<Utc> {
    match event_at {
        Some(at) if replay && at <= now => at,
        _ => now,
    }
}

/// Writes one JSON log record for a decision, with its whole explanation as structured fields.
fn log_decision(outcome: &Outcome) {
    let record = json!({
        "timestamp": Utc::now(),
        "level": if matches!(outcome.result, Status::Failed(_)) { "ERROR" } else { "INFO" },
        "message": outcome.to_string(),
        "decision": outcome,
    });
    println!("{record}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_under_one_request_id_have_names_of_their_own() {
        let first = attempt_name("8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        let retry = attempt_name("8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        assert_ne!(first, retry);
        for name in [first, retry] {
            assert!(
                name.starts_with("8476a536-e9f4-11e8-9739-2dfe598c3fcd/"),
                "{name}"
            );
        }
    }

    #[test]
    fn leases_and_claims_outlast_the_attempt() {
        let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        let deadline = now + TimeDelta::seconds(60);
        let otherwise = TimeDelta::minutes(2);
        assert_eq!(
            lease_duration(deadline, now, otherwise),
            TimeDelta::seconds(70)
        );
        assert_eq!(
            lease_duration(DateTime::UNIX_EPOCH, now, otherwise),
            otherwise,
            "no real deadline"
        );
    }

    #[test]
    fn a_pass_stops_starting_work_well_before_its_attempt_is_stopped() {
        let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        let deadline = now + TimeDelta::seconds(60);
        assert_eq!(
            pass_deadline(deadline, now),
            Some(now + TimeDelta::seconds(45))
        );
        assert!(
            DEADLINE_MARGIN.to_std().unwrap() > capstan_aws::OPERATION_TIMEOUT,
            "a call started just before the pass's deadline ends before the attempt's"
        );
        assert_eq!(
            pass_deadline(DateTime::UNIX_EPOCH, now),
            None,
            "no real deadline"
        );
    }

    #[test]
    fn events_are_evaluated_now_however_late_they_come_except_in_replay() {
        let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        let late = now - TimeDelta::minutes(3);
        assert_eq!(evaluation_time(Some(late), now, false), now);
        assert_eq!(evaluation_time(Some(late), now, true), late);
        let old = now - TimeDelta::days(1);
        assert_eq!(
            evaluation_time(Some(old), now, true),
            old,
            "replay: any age"
        );
        assert_eq!(
            evaluation_time(Some(now + TimeDelta::minutes(1)), now, true),
            now,
            "future"
        );
        assert_eq!(evaluation_time(None, now, true), now);
    }
}
