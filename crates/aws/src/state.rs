//! What capstan remembers between evaluations, in one DynamoDB table.
//!
//! # Key scheme
//!
//! Every item has a string partition key `pk` and a string sort key `sk`. The partition key says
//! what the item is about, as `<subject>#...`; the sort key says which record about it this is.
//!
//! | Item | `pk` | `sk` | Other attributes |
//! |---|---|---|---|
//! | a resource's state | `resource#<kind>#<identity>` | `state` | `memory`: the engine's [`ResourceState`] as JSON (recent actions, recommendations, evaluations without data, an unconfirmed intent, a forecast's hourly history, and the last flap); `version`: the format of `memory` ([`STATE_VERSION`]); `updated_at` (RFC 3339) |
//! | a resource's lease | `resource#<kind>#<identity>` | `lease` | `holder`, `acquired_at` (RFC 3339), `expires_at` (epoch seconds) |
//! | a decision log entry | `resource#<kind>#<identity>` | `decision#<evaluation time: RFC 3339, UTC, milliseconds>#<evaluator>` | `policy`, `evaluator` (the evaluator's attempt: its request id and a number of its own), `outcome` (the evaluation's JSON), `expires_at` |
//! | an event's idempotency claim | `event#<key>` | `claim` | `claimed_by`, `claimed_at` (RFC 3339), `progress` (`in_progress` or `completed`), `in_progress_until` (epoch seconds), `completed_at` (RFC 3339, once completed), `expires_at` |
//!
//! `<kind>` is the target kind as written in policies (`ecs_service`) and `<identity>` its name
//! (`shop/order-processing` for an ECS service, the group's name for an Auto Scaling group).
//! An event's key is chosen by the caller, e.g. `alarm#<name>#<state change time>`.
//!
//! `expires_at` is the table's time-to-live attribute: DynamoDB deletes decision log entries
//! after [`DECISION_RETENTION`], claims after [`CLAIM_RETENTION`] and expired leases, some time
//! after they expire. The state item has no `expires_at` and is never deleted.
//!
//! # Writes
//!
//! - The state is read with strongly consistent reads, so an evaluation sees what the previous
//!   one just wrote. Before acting, the runner saves the state with the change it is about to
//!   make as its intent; the state saved after the change has none. An intent found on the next
//!   read means the evaluation stopped in between (see [`ResourceState::reconcile`]).
//! - A state item written by a newer capstan, one whose `version` is above [`STATE_VERSION`],
//!   is refused when read ([`ErrorKind::Unsupported`]): the resource is not evaluated, so its
//!   state is not saved over what the newer version wrote. An item without `version` was written
//!   before the format was numbered, and is of format 1. A version that changes what `memory`
//!   holds so that an older one would misread it raises [`STATE_VERSION`]; fields `memory` holds
//!   that this version does not know are ignored (the first format's `last_action` among them),
//!   so the version, not unknown fields, is what tells a newer record. A field an older version
//!   may drop at no cost but relearning it (a forecast's `history`, read again; `flapped_at`, a
//!   flap forgotten) keeps the version.
//! - The state is written only by the holder of the resource's lease: a `TransactWriteItems` of
//!   a `ConditionCheck` on the lease item (`holder` is the writer and `expires_at` is still
//!   ahead) and the `Update` of the state item. When the check fails the transaction writes
//!   nothing and its cancellation reason carries the lease item, so the writer learns who holds
//!   it now ([`LeaseLost`]).
//! - A lease is taken with a `PutItem` conditional on the item being absent, expired, or already
//!   the caller's, and lasts [`DynamoStateStore::lease_duration`]. When the condition fails the
//!   answer carries the current item, so the caller learns the holder in the same call. Only the
//!   holder's conditional `DeleteItem` releases it. Expiry is compared in whole seconds of the
//!   writer's wall clock: a condition expression cannot read DynamoDB's own clock.
//! - Many resources are read, leased, saved and logged per call with the batched methods: see
//!   [`batch`].
//! - A claim works as an idempotency record does in AWS Lambda Powertools: a `PutItem` writes it
//!   *in progress*, until [`DynamoStateStore::lease_duration`] from now, conditional on the item
//!   being absent, or in progress and either already the claimant's or expired (an attempt
//!   that died). Once every outcome of the delivery is logged, a conditional `UpdateItem` marks
//!   it *completed*; a claimant that failed to handle the event gives its claim back with a
//!   conditional `DeleteItem`, so that a retry need not wait for it to expire. A later delivery is told who completed it ([`Claim::Duplicate`]), or who is
//!   working on it and until when ([`Claim::InProgress`]). A claim without `progress` was
//!   written before claims were completed and counts as completed.

pub mod batch;
mod decision_log;

pub use decision_log::LoggedEvaluation;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, KeySchemaElement, KeyType,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TransactWriteItem, Update,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use capstan_engine::ResourceState;
use capstan_engine::model::Target;
use capstan_runner::ports::{Lease, LeaseLost, SaveError, StateStore};

use crate::error::{AwsError, ErrorKind};

const PARTITION_KEY: &str = "pk";
const SORT_KEY: &str = "sk";
const STATE_RECORD: &str = "state";
const LEASE_RECORD: &str = "lease";
const CLAIM_RECORD: &str = "claim";
/// The attribute holding the serialized [`ResourceState`].
const MEMORY: &str = "memory";
/// The attribute holding the format of [`MEMORY`], as a number.
const VERSION: &str = "version";

/// The format of the state this version of capstan writes, and the newest it reads: the
/// fields of [`ResourceState`] as JSON. Raise it when they change.
pub const STATE_VERSION: u32 = 1;
const EXPIRES_AT: &str = "expires_at";
/// A claim's stage, [`IN_PROGRESS`] or [`COMPLETED`].
const PROGRESS: &str = "progress";
const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";
/// Until when a claim in progress keeps other deliveries out.
const IN_PROGRESS_UNTIL: &str = "in_progress_until";

/// The condition on a lease item for `:holder` to take it at `:now`: absent, expired, or
/// already theirs.
const LEASE_TAKEN_IF: &str = "attribute_not_exists(pk) OR expires_at <= :now OR holder = :holder";
/// The condition on a lease item for `:holder` to give it back: theirs.
const LEASE_RELEASED_IF: &str = "holder = :holder";
const TRANSACT: &str = "dynamodb:TransactWriteItems";
/// A cancellation reason's code for an action whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// How long [`create_table`] waits for the new table to become active.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(120);

/// How long a decision log entry is kept: 30 days.
pub const DECISION_RETENTION: TimeDelta = TimeDelta::days(30);

/// How long an event's claim is kept, and so how late a duplicate is still recognised: 7 days,
/// beyond any retry of Lambda or EventBridge.
pub const CLAIM_RETENTION: TimeDelta = TimeDelta::days(7);

/// Whether this delivery of an event is to handle it, from [`DynamoStateStore::claim_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The claim is the caller's, in progress: the event was not seen before, or an earlier
    /// attempt at it ended without completing it (the same claimant again, or the earlier
    /// claim expired).
    Claimed,
    /// The event was handled: its claim is completed.
    Duplicate {
        /// Who claimed it, as they named themselves (the evaluator names each attempt: its
        /// request id and a number of the attempt's own).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another claimant is handling the event now.
    InProgress {
        /// Who, as they named themselves.
        by: String,
        /// When their claim expires unless completed first.
        until: DateTime<Utc>,
    },
}

/// Resource state, leases, the decision log and event claims in a DynamoDB table laid out as
/// described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
    lease_duration: TimeDelta,
}

impl DynamoStateStore {
    /// A store on the named table, which must exist (see [`create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            lease_duration: TimeDelta::minutes(2),
        }
    }

    /// Sets how long a lease, and a claim in progress, last unless released or completed first.
    /// It must outlast the attempt that holds them: a holder that runs longer loses its lease
    /// and can no longer save state, and its event may be claimed by another delivery. A holder
    /// that dies keeps the resource, and its event, from other holders this long. By default,
    /// 2 minutes; the evaluator sets it for each invocation from the invocation's deadline.
    pub fn with_lease_duration(mut self, duration: TimeDelta) -> Self {
        self.lease_duration = duration;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How long a lease and a claim in progress last; see
    /// [`with_lease_duration`](Self::with_lease_duration).
    pub fn lease_duration(&self) -> TimeDelta {
        self.lease_duration
    }

    /// The key of the record `sort_key` about `target`, and how errors name the item:
    /// `<table>/<pk>`.
    fn resource_key(
        &self,
        target: &Target,
        sort_key: &str,
    ) -> (HashMap<String, AttributeValue>, String) {
        let partition = format!("resource#{}#{}", target.kind(), crate::resource_id(target));
        self.key(partition, sort_key)
    }

    fn key(&self, partition: String, sort_key: &str) -> (HashMap<String, AttributeValue>, String) {
        let item = format!("{}/{partition}", self.table);
        let key = HashMap::from([
            (PARTITION_KEY.to_owned(), AttributeValue::S(partition)),
            (SORT_KEY.to_owned(), AttributeValue::S(sort_key.to_owned())),
        ]);
        (key, item)
    }

    /// Puts `item` (which carries its key) when `condition` holds. Answers `None` when it was
    /// written, or the item that failed the condition.
    async fn put_unless_present(
        &self,
        item: HashMap<String, AttributeValue>,
        item_name: String,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        const OPERATION: &str = "dynamodb:PutItem";
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(None),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => failed
                    .item()
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| no_item(OPERATION, item_name)),
                _ => Err(AwsError::from_sdk(OPERATION, item_name, error)),
            },
        }
    }

    /// The lease item of `target` for `holder` taken at `now`, its name, and the values of
    /// [`LEASE_TAKEN_IF`].
    fn lease_item(
        &self,
        target: &Target,
        holder: &str,
        now: DateTime<Utc>,
    ) -> (
        HashMap<String, AttributeValue>,
        String,
        HashMap<String, AttributeValue>,
    ) {
        let (mut item, item_name) = self.resource_key(target, LEASE_RECORD);
        item.extend([
            ("holder".to_owned(), AttributeValue::S(holder.to_owned())),
            (
                "acquired_at".to_owned(),
                AttributeValue::S(now.to_rfc3339()),
            ),
            (
                EXPIRES_AT.to_owned(),
                epoch_seconds(now + self.lease_duration),
            ),
        ]);
        let values = HashMap::from([
            (":now".to_owned(), epoch_seconds(now)),
            (":holder".to_owned(), AttributeValue::S(holder.to_owned())),
        ]);
        (item, item_name, values)
    }

    /// Takes the lease of `target` for `holder` as of `now` (see the [module docs](self)); the
    /// [`StateStore`] port does the same as of the wall clock.
    pub async fn acquire_lease_at(
        &self,
        target: &Target,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Lease, AwsError> {
        let (item, item_name, values) = self.lease_item(target, holder, now);
        let held = self
            .put_unless_present(item, item_name.clone(), LEASE_TAKEN_IF, values)
            .await?;
        match held {
            None => Ok(Lease::Acquired),
            Some(held) => held_by(&held, "dynamodb:PutItem", item_name),
        }
    }

    /// The two actions of a fenced save of `state` of `target` for `holder` at `now`: the
    /// `ConditionCheck` on the lease, then the `Update` of the state; and the state item's name.
    fn save_actions(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
        now: DateTime<Utc>,
    ) -> Result<(Vec<TransactWriteItem>, String), SaveError<AwsError>> {
        let (state_key, item_name) = self.resource_key(target, STATE_RECORD);
        let (lease_key, _) = self.resource_key(target, LEASE_RECORD);
        let invalid = |problem: String| {
            SaveError::Store(AwsError::new(
                TRANSACT,
                &item_name,
                ErrorKind::Invalid,
                problem,
            ))
        };
        let memory = serde_json::to_string(state).map_err(|error| invalid(error.to_string()))?;
        let fence = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(lease_key))
            .condition_expression("holder = :holder AND expires_at > :now")
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .expression_attribute_values(":now", epoch_seconds(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        let write = Update::builder()
            .table_name(&self.table)
            .set_key(Some(state_key))
            .update_expression(format!(
                "SET {MEMORY} = :memory, {VERSION} = :version, updated_at = :now"
            ))
            .expression_attribute_values(":memory", AttributeValue::S(memory))
            .expression_attribute_values(":version", AttributeValue::N(STATE_VERSION.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        let actions = vec![
            TransactWriteItem::builder().condition_check(fence).build(),
            TransactWriteItem::builder().update(write).build(),
        ];
        Ok((actions, item_name))
    }

    /// Saves the state of `target` for `holder` as of `now`, fenced by the lease (see the
    /// [module docs](self)); the [`StateStore`] port does the same as of the wall clock.
    pub async fn save_at(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
        now: DateTime<Utc>,
    ) -> Result<(), SaveError<AwsError>> {
        let (actions, item_name) = self.save_actions(target, holder, state, now)?;
        let answer = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        let Err(error) = answer else {
            return Ok(());
        };
        // The reasons come in the order of the items: the fence's first.
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
            && let Some(fence) = cancelled.cancellation_reasons().first()
            && fence.code() == Some(CONDITION_FAILED)
        {
            return Err(fenced_off(fence.item(), holder, item_name));
        }
        Err(SaveError::Store(AwsError::from_sdk(
            TRANSACT, item_name, error,
        )))
    }

    /// Claims the event `key` for `claimant` at `now`, in progress for
    /// [`lease_duration`](Self::lease_duration) (see the [module docs](self)). The claim is kept
    /// for [`CLAIM_RETENTION`], so a duplicate is recognised that long.
    pub async fn claim_event(
        &self,
        key: &str,
        claimant: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, AwsError> {
        const OPERATION: &str = "dynamodb:PutItem";
        let (mut item, item_name) = self.key(format!("event#{key}"), CLAIM_RECORD);
        item.extend([
            (
                "claimed_by".to_owned(),
                AttributeValue::S(claimant.to_owned()),
            ),
            ("claimed_at".to_owned(), AttributeValue::S(now.to_rfc3339())),
            (
                PROGRESS.to_owned(),
                AttributeValue::S(IN_PROGRESS.to_owned()),
            ),
            (
                IN_PROGRESS_UNTIL.to_owned(),
                epoch_seconds(now + self.lease_duration),
            ),
            (EXPIRES_AT.to_owned(), epoch_seconds(now + CLAIM_RETENTION)),
        ]);
        let claimed = self
            .put_unless_present(
                item,
                item_name.clone(),
                &format!(
                    "attribute_not_exists(pk) OR ({PROGRESS} = :in_progress AND (claimed_by = :claimant OR {IN_PROGRESS_UNTIL} <= :now))"
                ),
                HashMap::from([
                    (
                        ":in_progress".to_owned(),
                        AttributeValue::S(IN_PROGRESS.to_owned()),
                    ),
                    (":claimant".to_owned(), AttributeValue::S(claimant.to_owned())),
                    (":now".to_owned(), epoch_seconds(now)),
                ]),
            )
            .await?;
        match claimed {
            None => Ok(Claim::Claimed),
            Some(claim) => {
                claim_of(&claim).map_err(|problem| malformed(OPERATION, item_name, &problem))
            }
        }
    }

    /// Marks `claimant`'s claim of the event `key` completed at `now`: every later delivery is
    /// a [`Claim::Duplicate`]. An error when the claim is no longer `claimant`'s and in progress.
    pub async fn complete_event(
        &self,
        key: &str,
        claimant: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        const OPERATION: &str = "dynamodb:UpdateItem";
        let (key, item_name) = self.key(format!("event#{key}"), CLAIM_RECORD);
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET {PROGRESS} = :completed, completed_at = :now"))
            .condition_expression(format!(
                "claimed_by = :claimant AND {PROGRESS} = :in_progress"
            ))
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.to_owned()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .expression_attribute_values(":claimant", AttributeValue::S(claimant.to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(AwsError::new(
                    OPERATION,
                    item_name,
                    ErrorKind::Other,
                    format!("the claim is no longer {claimant}'s and in progress"),
                ))
            }
            Err(error) => Err(AwsError::from_sdk(OPERATION, item_name, error)),
        }
    }

    /// Gives back `claimant`'s claim of the event `key`, still in progress, so that the next
    /// delivery of the event takes it at once (the claimant failed to handle it). Answers
    /// whether it was given back: `false` when the claim is not `claimant`'s in progress.
    pub async fn release_event(&self, key: &str, claimant: &str) -> Result<bool, AwsError> {
        let (key, item_name) = self.key(format!("event#{key}"), CLAIM_RECORD);
        self.delete_if(
            key,
            item_name,
            &format!("claimed_by = :claimant AND {PROGRESS} = :in_progress"),
            HashMap::from([
                (
                    ":claimant".to_owned(),
                    AttributeValue::S(claimant.to_owned()),
                ),
                (
                    ":in_progress".to_owned(),
                    AttributeValue::S(IN_PROGRESS.to_owned()),
                ),
            ]),
        )
        .await
    }

    /// Deletes the item at `key` when `condition` holds; answers whether it did.
    async fn delete_if(
        &self,
        key: HashMap<String, AttributeValue>,
        item_name: String,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<bool, AwsError> {
        const OPERATION: &str = "dynamodb:DeleteItem";
        let answer = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(AwsError::from_sdk(OPERATION, item_name, error)),
        }
    }

    /// The decision log item of `decision`, and its name.
    fn decision_item(&self, decision: &Decision<'_>) -> (HashMap<String, AttributeValue>, String) {
        let (mut item, item_name) = self.resource_key(
            decision.target,
            &decision_sort_key(decision.at, decision.evaluator),
        );
        item.extend([
            (
                "policy".to_owned(),
                AttributeValue::S(decision.policy.to_owned()),
            ),
            (
                "evaluator".to_owned(),
                AttributeValue::S(decision.evaluator.to_owned()),
            ),
            (
                "outcome".to_owned(),
                AttributeValue::S(decision.outcome.clone()),
            ),
            (
                EXPIRES_AT.to_owned(),
                epoch_seconds(decision.at + DECISION_RETENTION),
            ),
        ]);
        (item, item_name)
    }
}

/// One entry of the decision log, as [`DynamoStateStore::log_decisions`] takes it.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The resource evaluated.
    pub target: &'a Target,
    /// The policy that evaluated it.
    pub policy: &'a str,
    /// When it was evaluated.
    pub at: DateTime<Utc>,
    /// Who evaluated it, e.g. the evaluator's attempt.
    pub evaluator: &'a str,
    /// The evaluation's outcome, as JSON.
    pub outcome: String,
}

impl StateStore for DynamoStateStore {
    type Error = AwsError;

    async fn load(&self, target: &Target) -> Result<ResourceState, AwsError> {
        const OPERATION: &str = "dynamodb:GetItem";
        let (key, item_name) = self.resource_key(target, STATE_RECORD);
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(OPERATION, &item_name, error))?;
        match answer.item() {
            None => Ok(ResourceState::default()),
            Some(item) => decode(item, OPERATION, item_name),
        }
    }

    /// With `BatchGetItem`; see [`batch`].
    async fn load_all(&self, targets: &[Target]) -> Vec<Result<ResourceState, AwsError>> {
        self.load_many(targets).await
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<AwsError>> {
        self.save_at(target, holder, state, Utc::now()).await
    }

    /// With `TransactWriteItems`; see [`batch`].
    async fn save_all(
        &self,
        holder: &str,
        states: &[(Target, ResourceState)],
    ) -> Vec<Result<(), SaveError<AwsError>>> {
        self.save_all_at(holder, states, Utc::now()).await
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> Result<Lease, AwsError> {
        self.acquire_lease_at(target, holder, Utc::now()).await
    }

    /// With `TransactWriteItems`; see [`batch`].
    async fn acquire_leases(
        &self,
        targets: &[Target],
        holder: &str,
    ) -> Vec<Result<Lease, AwsError>> {
        self.acquire_leases_at(targets, holder, Utc::now()).await
    }

    /// With `TransactWriteItems`; see [`batch`].
    async fn release_leases(
        &self,
        targets: &[Target],
        holder: &str,
    ) -> Vec<Result<bool, AwsError>> {
        self.release_many(targets, holder).await
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> Result<bool, AwsError> {
        let (key, item_name) = self.resource_key(target, LEASE_RECORD);
        self.delete_if(
            key,
            item_name,
            LEASE_RELEASED_IF,
            HashMap::from([(":holder".to_owned(), AttributeValue::S(holder.to_owned()))]),
        )
        .await
    }
}

/// Creates the state table (on-demand billing, keys as in the [module docs](self)) and waits
/// until it is active.
pub async fn create_table(client: &Client, name: &str) -> Result<(), AwsError> {
    const OPERATION: &str = "dynamodb:CreateTable";
    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
    };
    let string_attribute = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let invalid = |error: aws_sdk_dynamodb::error::BuildError| {
        AwsError::new(OPERATION, name, ErrorKind::Invalid, error.to_string())
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PARTITION_KEY, KeyType::Hash).map_err(invalid)?)
        .key_schema(key(SORT_KEY, KeyType::Range).map_err(invalid)?)
        .attribute_definitions(string_attribute(PARTITION_KEY).map_err(invalid)?)
        .attribute_definitions(string_attribute(SORT_KEY).map_err(invalid)?)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk(OPERATION, name, error))?;
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(TABLE_ACTIVE_WAIT)
        .await
        .map_err(|error| {
            use aws_smithy_runtime_api::client::waiters::error::WaiterError;
            const WAIT: &str = "dynamodb:DescribeTable";
            match error {
                WaiterError::OperationFailed(failed) => {
                    AwsError::from_sdk(WAIT, name, failed.into_error())
                }
                other => AwsError::new(
                    WAIT,
                    name,
                    ErrorKind::Unavailable,
                    DisplayErrorContext(&other).to_string(),
                ),
            }
        })?;
    Ok(())
}

/// The state the item `item_name` records, read by `operation`; an item without `memory` is
/// the default state. An item of a newer format than [`STATE_VERSION`] is refused (see the
/// [module docs](self)), as is one capstan cannot read.
fn decode(
    item: &HashMap<String, AttributeValue>,
    operation: &'static str,
    item_name: String,
) -> Result<ResourceState, AwsError> {
    let version = match item.get(VERSION) {
        None => 1,
        Some(_) => Fields(item)
            .number(VERSION)
            .map_err(|problem| malformed(operation, item_name.clone(), &problem))?,
    };
    if version > u64::from(STATE_VERSION) {
        return Err(AwsError::new(
            operation,
            item_name,
            ErrorKind::Unsupported,
            format!(
                "the stored state is of version {version}, written by a newer capstan; this one reads versions up to {STATE_VERSION}, so it does not act on the resource, nor write over that state"
            ),
        ));
    }
    let Some(memory) = item.get(MEMORY) else {
        return Ok(ResourceState::default());
    };
    let json = memory.as_s().map_err(|_| {
        malformed(
            operation,
            item_name.clone(),
            &format!("attribute `{MEMORY}` is not a string"),
        )
    })?;
    serde_json::from_str(json).map_err(|error| {
        malformed(
            operation,
            item_name,
            &format!("attribute `{MEMORY}`: {error}"),
        )
    })
}

/// Who holds a lease and until when, from its item.
fn lease_holder(item: &HashMap<String, AttributeValue>) -> Result<(String, DateTime<Utc>), String> {
    let fields = Fields(item);
    Ok((fields.string("holder")?.clone(), fields.epoch(EXPIRES_AT)?))
}

/// What the lease is, for `writer` whose save it fenced off: from the lease item the fence
/// failed on, `None` when there is none.
fn lease_lost(
    item: Option<&HashMap<String, AttributeValue>>,
    writer: &str,
) -> Result<LeaseLost, String> {
    let Some(item) = item else {
        return Ok(LeaseLost::Free);
    };
    let (holder, until) = lease_holder(item)?;
    Ok(if holder == writer {
        LeaseLost::Expired(until)
    } else {
        LeaseLost::HeldBy { holder, until }
    })
}

/// The answer to a lease request refused because of the lease item `held`.
fn held_by(
    held: &HashMap<String, AttributeValue>,
    operation: &'static str,
    item_name: String,
) -> Result<Lease, AwsError> {
    let (holder, until) =
        lease_holder(held).map_err(|problem| malformed(operation, item_name, &problem))?;
    Ok(Lease::HeldBy { holder, until })
}

/// The answer to `writer`'s save fenced off by the lease item `item` (see [`lease_lost`]).
fn fenced_off(
    item: Option<&HashMap<String, AttributeValue>>,
    writer: &str,
    item_name: String,
) -> SaveError<AwsError> {
    match lease_lost(item, writer) {
        Ok(lost) => lost.into(),
        Err(problem) => SaveError::Store(malformed(TRANSACT, item_name, &problem)),
    }
}

/// The error for a failed condition whose answer does not carry the item it failed on.
fn no_item(operation: &'static str, item_name: String) -> AwsError {
    AwsError::new(
        operation,
        item_name,
        ErrorKind::Other,
        "the condition failed but the answer carries no item",
    )
}

/// The claim an item records, as a later delivery sees it.
fn claim_of(item: &HashMap<String, AttributeValue>) -> Result<Claim, String> {
    let fields = Fields(item);
    let by = fields.string("claimed_by")?.clone();
    let progress = match item.get(PROGRESS) {
        None => COMPLETED,
        Some(_) => fields.string(PROGRESS)?.as_str(),
    };
    match progress {
        COMPLETED => Ok(Claim::Duplicate {
            by,
            at: fields.time("claimed_at")?,
        }),
        IN_PROGRESS => Ok(Claim::InProgress {
            by,
            until: fields.epoch(IN_PROGRESS_UNTIL)?,
        }),
        other => Err(format!("attribute `{PROGRESS}`: unknown stage `{other}`")),
    }
}

/// Typed reads of an item's attributes, each failure naming the attribute.
struct Fields<'a>(&'a HashMap<String, AttributeValue>);

impl Fields<'_> {
    fn attribute(&self, name: &str) -> Result<&AttributeValue, String> {
        self.0
            .get(name)
            .ok_or_else(|| format!("attribute `{name}` is missing"))
    }

    fn string(&self, name: &str) -> Result<&String, String> {
        self.attribute(name)?
            .as_s()
            .map_err(|_| format!("attribute `{name}` is not a string"))
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(self.string(name)?)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|error| format!("attribute `{name}`: {error}"))
    }

    fn number<N: std::str::FromStr<Err: std::fmt::Display>>(
        &self,
        name: &str,
    ) -> Result<N, String> {
        self.attribute(name)?
            .as_n()
            .map_err(|_| format!("attribute `{name}` is not a number"))?
            .parse()
            .map_err(|error| format!("attribute `{name}`: {error}"))
    }

    fn epoch(&self, name: &str) -> Result<DateTime<Utc>, String> {
        let seconds: i64 = self.number(name)?;
        DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("attribute `{name}`: {seconds} is out of range"))
    }
}

/// A time as the number of whole seconds since the Unix epoch, as DynamoDB's time to live reads
/// it.
fn epoch_seconds(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp().to_string())
}

/// The sort key of `evaluator`'s decision log entry at `at`; entries sort by time.
fn decision_sort_key(at: DateTime<Utc>, evaluator: &str) -> String {
    format!(
        "decision#{}#{evaluator}",
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

/// The error for a stored item capstan cannot read.
fn malformed(operation: &'static str, item_name: String, problem: &str) -> AwsError {
    AwsError::malformed(
        operation,
        item_name,
        format!("the stored item is malformed: {problem}"),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use capstan_engine::{Change, Direction, Recommendation};

    use super::*;

    fn state() -> ResourceState {
        let at = Utc
            .with_ymd_and_hms(2025, 3, 1, 12, 30, 5)
            .single()
            .unwrap_or_default();
        ResourceState {
            changes: vec![Change {
                at,
                direction: Direction::In,
                from: 6,
                to: 4,
            }],
            recommendations: vec![Recommendation { at, capacity: 4 }],
            evaluations_without_data: 2,
            intent: Some(Change {
                at,
                direction: Direction::Out,
                from: 4,
                to: 7,
            }),
            settling: true,
            history: None,
            flapped_at: Some(at),
        }
    }

    /// [`decode`] of `item` as a `GetItem` of `capstan/web` reads it, its error as text.
    fn read(item: &HashMap<String, AttributeValue>) -> Result<ResourceState, String> {
        decode(item, "dynamodb:GetItem", "capstan/web".into()).map_err(|error| error.to_string())
    }

    fn item(attributes: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        attributes
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }

    #[test]
    fn a_state_survives_encoding() {
        let json = serde_json::to_string(&state()).unwrap();
        assert_eq!(
            read(&item(&[(MEMORY, AttributeValue::S(json))])),
            Ok(state())
        );
    }

    #[test]
    fn the_state_format_is_that_of_its_version() {
        // What STATE_VERSION 1 is. When this changes so that a capstan of the previous version
        // would misread what this one writes, raise STATE_VERSION, then update this. A field it
        // would only drop, and lose nothing a later evaluation cannot relearn, keeps the
        // version: `flapped_at` (a flap forgotten) and `history` (read again).
        assert_eq!(STATE_VERSION, 1);
        assert_eq!(
            serde_json::to_string(&state()).unwrap(),
            r#"{"actions":[{"at":"2025-03-01T12:30:05Z","direction":"in","from":6,"to":4}],"recommendations":[{"at":"2025-03-01T12:30:05Z","capacity":4}],"evaluations_without_data":2,"intent":{"at":"2025-03-01T12:30:05Z","direction":"out","from":4,"to":7},"settling":true,"flapped_at":"2025-03-01T12:30:05Z"}"#
        );
    }

    #[test]
    fn an_item_without_memory_is_the_default_state() {
        assert_eq!(read(&HashMap::new()), Ok(ResourceState::default()));
    }

    #[test]
    fn items_of_this_version_or_unnumbered_are_read_and_newer_ones_refused() {
        let memory = AttributeValue::S(serde_json::to_string(&state()).unwrap());
        let version = |n: &str| AttributeValue::N(n.into());
        assert_eq!(
            read(&item(&[(MEMORY, memory.clone()), (VERSION, version("1"))])),
            Ok(state())
        );
        // The first format, before the version was written, kept one `last_action`.
        let first =
            r#"{"last_action":{"at":"2025-03-01T12:30:05Z","direction":"in","from":6,"to":4}}"#;
        assert_eq!(
            read(&item(&[(MEMORY, AttributeValue::S(first.into()))])),
            Ok(ResourceState::default())
        );
        assert_eq!(
            read(&item(&[(MEMORY, memory), (VERSION, version("2"))])),
            Err("dynamodb:GetItem on capstan/web failed: Unsupported: the stored state is of version 2, written by a newer capstan; this one reads versions up to 1, so it does not act on the resource, nor write over that state".into())
        );
        assert_eq!(
            read(&item(&[(VERSION, AttributeValue::S("2".into()))])),
            Err("dynamodb:GetItem on capstan/web failed: Malformed: the stored item is malformed: attribute `version` is not a number".into())
        );
    }

    #[test]
    fn a_malformed_item_is_reported() {
        assert_eq!(
            read(&item(&[(MEMORY, AttributeValue::N("4".into()))])),
            Err("dynamodb:GetItem on capstan/web failed: Malformed: the stored item is malformed: attribute `memory` is not a string".into())
        );
        let error = read(&item(&[(
            MEMORY,
            AttributeValue::S("{\"actions\": 4}".into()),
        )]))
        .unwrap_err();
        assert!(
            error.contains(
                "the stored item is malformed: attribute `memory`: invalid type: integer `4`"
            ),
            "{error}"
        );
    }

    fn lease_item(holder: &str, until: DateTime<Utc>) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("holder".to_owned(), AttributeValue::S(holder.into())),
            (EXPIRES_AT.to_owned(), epoch_seconds(until)),
        ])
    }

    #[test]
    fn a_fenced_off_save_says_what_became_of_the_lease() {
        let until = state().changes[0].at;
        assert_eq!(lease_lost(None, "a"), Ok(LeaseLost::Free));
        assert_eq!(
            lease_lost(Some(&lease_item("a", until)), "a"),
            Ok(LeaseLost::Expired(until))
        );
        assert_eq!(
            lease_lost(Some(&lease_item("b", until)), "a"),
            Ok(LeaseLost::HeldBy {
                holder: "b".into(),
                until
            })
        );
        let mut malformed = lease_item("b", until);
        malformed.remove("holder");
        assert_eq!(
            lease_lost(Some(&malformed), "a"),
            Err("attribute `holder` is missing".into())
        );
    }

    #[test]
    fn a_claim_reads_as_completed_or_in_progress() {
        let at = state().changes[0].at;
        let claim = |progress: Option<&str>| {
            let mut item = HashMap::from([
                (
                    "claimed_by".to_owned(),
                    AttributeValue::S("request-1".into()),
                ),
                ("claimed_at".to_owned(), AttributeValue::S(at.to_rfc3339())),
                (
                    IN_PROGRESS_UNTIL.to_owned(),
                    epoch_seconds(at + TimeDelta::minutes(1)),
                ),
            ]);
            if let Some(progress) = progress {
                item.insert(PROGRESS.to_owned(), AttributeValue::S(progress.into()));
            }
            item
        };
        let duplicate = Ok(Claim::Duplicate {
            by: "request-1".into(),
            at,
        });
        assert_eq!(claim_of(&claim(Some(COMPLETED))), duplicate);
        assert_eq!(
            claim_of(&claim(Some(IN_PROGRESS))),
            Ok(Claim::InProgress {
                by: "request-1".into(),
                until: at + TimeDelta::minutes(1)
            })
        );
        assert_eq!(
            claim_of(&claim(None)),
            duplicate,
            "written before claims were completed"
        );
        assert_eq!(
            claim_of(&claim(Some("paused"))),
            Err("attribute `progress`: unknown stage `paused`".into())
        );
        let mut no_expiry = claim(Some(IN_PROGRESS));
        no_expiry.remove(IN_PROGRESS_UNTIL);
        assert_eq!(
            claim_of(&no_expiry),
            Err("attribute `in_progress_until` is missing".into())
        );
    }

    #[test]
    fn decision_log_entries_sort_by_time() {
        let at = state().changes[0].at;
        let first = decision_sort_key(at, "b");
        let later = decision_sort_key(at + TimeDelta::milliseconds(1500), "a");
        assert_eq!(first, "decision#2025-03-01T12:30:05.000Z#b");
        assert!(first < later, "{first} < {later}");
    }

    #[test]
    fn the_key_names_the_kind_and_the_resource() {
        let target = Target::EcsService {
            cluster: "shop".into(),
            service: "order-processing".into(),
        };
        let store = DynamoStateStore::new(
            Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .build(),
            ),
            "capstan",
        );
        let (key, item_name) = store.resource_key(&target, STATE_RECORD);
        assert_eq!(
            key[PARTITION_KEY],
            AttributeValue::S("resource#ecs_service#shop/order-processing".into())
        );
        assert_eq!(key[SORT_KEY], AttributeValue::S("state".into()));
        assert_eq!(
            item_name,
            "capstan/resource#ecs_service#shop/order-processing"
        );
    }
}
