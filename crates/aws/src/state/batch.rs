//! The state store's batched calls: many resources per DynamoDB call, each resource answered on
//! its own.
//!
//! - States are read with `BatchGetItem`, [`KEYS_PER_READ`] keys per call, strongly consistent.
//! - Leases are taken and given back, and states saved, with `TransactWriteItems` of at most
//!   [`ACTIONS_PER_TRANSACTION`] actions: one `Put` or `Delete` per lease, a `ConditionCheck`
//!   on the lease and an `Update` of the state per save. When a condition fails, DynamoDB
//!   cancels the whole transaction and says, action by action, which condition failed (with the
//!   item it failed on): those resources are answered from it, as their one-item call would
//!   have been, and the others are written in a new transaction. A cancellation that names no
//!   failed condition (another transaction on one of the items, throttling, or no reasons at
//!   all) is answered item by item, with the one-item calls.
//! - Decision log entries are written with `BatchWriteItem`, [`ITEMS_PER_WRITE`] per call.
//!
//! `BatchGetItem` and `BatchWriteItem` may leave part of a request unprocessed (throttling, or
//! an answer's size limit): that part is asked again, up to [`UNPROCESSED_RETRIES`] times with
//! a doubling wait; what is still unprocessed then is each of its resources' own
//! [`ErrorKind::Throttled`] error.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};

use capstan_engine::ResourceState;
use capstan_engine::model::Target;
use capstan_runner::ports::{Lease, SaveError, StateStore};

use super::{
    CONDITION_FAILED, Decision, DynamoStateStore, LEASE_RECORD, LEASE_RELEASED_IF, LEASE_TAKEN_IF,
    PARTITION_KEY, SORT_KEY, STATE_RECORD, TRANSACT, decode, fenced_off, held_by, no_item,
};
use crate::error::{AwsError, ErrorKind};
use crate::{batches, in_order};

/// How many keys one `BatchGetItem` call reads: the API's limit.
pub const KEYS_PER_READ: usize = 100;
/// How many actions one `TransactWriteItems` call holds: the API's limit.
pub const ACTIONS_PER_TRANSACTION: usize = 100;
/// How many items one `BatchWriteItem` call writes: the API's limit.
pub const ITEMS_PER_WRITE: usize = 25;
/// How many times an unprocessed part of a batched read or write is asked again.
pub const UNPROCESSED_RETRIES: u32 = 4;
/// The wait before the first retry of an unprocessed part; it doubles for each next one.
const FIRST_WAIT: Duration = Duration::from_millis(50);

/// What became of one resource's actions in a batched transaction.
enum Written {
    /// They were written.
    Done,
    /// The condition of its first action failed, on this item (if the answer carried it).
    Refused(Option<HashMap<String, AttributeValue>>),
    /// The transaction was cancelled without saying which condition failed: the resource is to
    /// be written on its own.
    OnItsOwn,
}

/// An item's key as a string, `pk` then `sk`: how batched answers are matched to requests.
fn key_of(item: &HashMap<String, AttributeValue>) -> (String, String) {
    let part = |name: &str| {
        item.get(name)
            .and_then(|value| value.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (part(PARTITION_KEY), part(SORT_KEY))
}

impl DynamoStateStore {
    /// Waits before the `retry`-th retry (from 1) of an unprocessed part, with the client's
    /// sleep (none without one).
    async fn wait_before(&self, retry: u32) {
        if let Some(sleep) = self.client.config().sleep_impl() {
            sleep.sleep(FIRST_WAIT * 2u32.pow(retry - 1)).await;
        }
    }

    /// [`StateStore::load`] of each of `targets` with `BatchGetItem`.
    pub(super) async fn load_many(
        &self,
        targets: &[Target],
    ) -> Vec<Result<ResourceState, AwsError>> {
        const OPERATION: &str = "dynamodb:BatchGetItem";
        let keys: Vec<_> = targets
            .iter()
            .map(|target| self.resource_key(target, STATE_RECORD))
            .collect();
        let names: Vec<&String> = keys.iter().map(|(_, name)| name).collect();
        let mut answers = Vec::with_capacity(targets.len());
        for run in batches(&names, KEYS_PER_READ) {
            let asked = &keys[run];
            let mut found = HashMap::new();
            let mut pending: Vec<_> = asked.iter().map(|(key, _)| key.clone()).collect();
            let mut failure = None;
            for retry in 0..=UNPROCESSED_RETRIES {
                if retry > 0 {
                    self.wait_before(retry).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .consistent_read(true)
                    .build();
                let answer = match request {
                    Ok(request) => self
                        .client
                        .batch_get_item()
                        .request_items(&self.table, request)
                        .send()
                        .await
                        .map_err(|error| AwsError::from_sdk(OPERATION, &asked[0].1, error)),
                    Err(error) => Err(AwsError::new(
                        OPERATION,
                        &asked[0].1,
                        ErrorKind::Invalid,
                        error.to_string(),
                    )),
                };
                let mut answer = match answer {
                    Ok(answer) => answer,
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                };
                let items = answer
                    .responses
                    .as_mut()
                    .and_then(|responses| responses.remove(&self.table))
                    .unwrap_or_default();
                found.extend(items.into_iter().map(|item| (key_of(&item), item)));
                pending = answer
                    .unprocessed_keys
                    .as_mut()
                    .and_then(|unprocessed| unprocessed.remove(&self.table))
                    .map(|left| left.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            let pending: HashSet<_> = pending.iter().map(key_of).collect();
            answers.extend(asked.iter().map(|(key, name)| {
                let key = key_of(key);
                match (found.get(&key), &failure) {
                    (Some(item), _) => decode(item, OPERATION, name.clone()),
                    (None, _) if !pending.contains(&key) => Ok(ResourceState::default()),
                    (None, Some(error)) => Err(error.about(name)),
                    (None, None) => Err(unprocessed(OPERATION, name)),
                }
            }));
        }
        answers
    }

    /// [`StateStore::acquire_lease`] of each of `targets` for `holder` as of `now`, in
    /// transactions (see the [module docs](self)): one answer per target, in the order given.
    pub async fn acquire_leases_at(
        &self,
        targets: &[Target],
        holder: &str,
        now: DateTime<Utc>,
    ) -> Vec<Result<Lease, AwsError>> {
        let (writes, mut answers) = one_action_each(targets, |target| {
            let (item, item_name, values) = self.lease_item(target, holder, now);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(LEASE_TAKEN_IF)
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build());
            (put, item_name)
        });
        for (index, written, item_name) in self.transact(writes).await {
            let answer = match written {
                Ok(Written::Done) => Ok(Lease::Acquired),
                Ok(Written::Refused(Some(held))) => held_by(&held, TRANSACT, item_name),
                Ok(Written::Refused(None)) => Err(no_item(TRANSACT, item_name)),
                Ok(Written::OnItsOwn) => self.acquire_lease_at(&targets[index], holder, now).await,
                Err(error) => Err(error),
            };
            answers.push((index, answer));
        }
        in_order(answers)
    }

    /// [`StateStore::release_lease`] of each of `targets` for `holder`, in transactions.
    pub(super) async fn release_many(
        &self,
        targets: &[Target],
        holder: &str,
    ) -> Vec<Result<bool, AwsError>> {
        let (writes, mut answers) = one_action_each(targets, |target| {
            let (key, item_name) = self.resource_key(target, LEASE_RECORD);
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(LEASE_RELEASED_IF)
                .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build());
            (delete, item_name)
        });
        for (index, written, _) in self.transact(writes).await {
            let answer = match written {
                Ok(Written::Done) => Ok(true),
                Ok(Written::Refused(_)) => Ok(false),
                Ok(Written::OnItsOwn) => self.release_lease(&targets[index], holder).await,
                Err(error) => Err(error),
            };
            answers.push((index, answer));
        }
        in_order(answers)
    }

    /// [`save_at`](Self::save_at) of each of `states` for `holder` as of `now`, in
    /// transactions (see the [module docs](self)): one answer per state, in the order given,
    /// each fenced by its own resource's lease.
    pub async fn save_all_at(
        &self,
        holder: &str,
        states: &[(Target, ResourceState)],
        now: DateTime<Utc>,
    ) -> Vec<Result<(), SaveError<AwsError>>> {
        let mut writes = Vec::with_capacity(states.len());
        let mut answers = Vec::new();
        for (index, (target, state)) in states.iter().enumerate() {
            match self.save_actions(target, holder, state, now) {
                Ok((actions, item_name)) => writes.push((index, actions, item_name)),
                Err(error) => answers.push((index, Err(error))),
            }
        }
        for (index, written, item_name) in self.transact(writes).await {
            let answer = match written {
                Ok(Written::Done) => Ok(()),
                Ok(Written::Refused(lease)) => Err(fenced_off(lease.as_ref(), holder, item_name)),
                Ok(Written::OnItsOwn) => {
                    let (target, state) = &states[index];
                    self.save_at(target, holder, state, now).await
                }
                Err(error) => Err(SaveError::Store(error)),
            };
            answers.push((index, answer));
        }
        in_order(answers)
    }

    /// Writes each resource's actions (all resources have as many; the first holds the
    /// condition) in as few transactions as the limit allows, as the [module docs](self) say.
    /// Answers each `(index, actions, item name)` with its index and name.
    async fn transact(
        &self,
        writes: Vec<Write>,
    ) -> Vec<(usize, Result<Written, AwsError>, String)> {
        let per_resource = writes.first().map_or(1, |(_, actions, _)| actions.len());
        let names: Vec<&String> = writes.iter().map(|(_, _, name)| name).collect();
        let runs = batches(&names, ACTIONS_PER_TRANSACTION / per_resource);
        let mut answers = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter();
        for run in runs {
            let mut pending: Vec<_> = writes.by_ref().take(run.len()).collect();
            while !pending.is_empty() {
                let actions = pending
                    .iter()
                    .flat_map(|(_, actions, _)| actions.iter().cloned())
                    .collect();
                let answer = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(actions))
                    .send()
                    .await;
                let error = match answer {
                    Ok(_) => {
                        answers.extend(
                            pending
                                .drain(..)
                                .map(|(index, _, name)| (index, Ok(Written::Done), name)),
                        );
                        break;
                    }
                    Err(error) => error,
                };
                let reasons = match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                        cancelled.cancellation_reasons()
                    }
                    _ => {
                        let error = AwsError::from_sdk(TRANSACT, &pending[0].2, error);
                        answers.extend(
                            pending
                                .drain(..)
                                .map(|(index, _, name)| (index, Err(error.about(&name)), name)),
                        );
                        break;
                    }
                };
                // One reason per action, in order: each resource's condition is its first.
                let refused: Vec<Option<_>> = if reasons.len() == pending.len() * per_resource {
                    reasons
                        .iter()
                        .step_by(per_resource)
                        .map(|reason| {
                            (reason.code() == Some(CONDITION_FAILED)).then(|| reason.item.clone())
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                if refused.iter().all(Option::is_none) {
                    answers.extend(
                        pending
                            .drain(..)
                            .map(|(index, _, name)| (index, Ok(Written::OnItsOwn), name)),
                    );
                    break;
                }
                let mut rest = Vec::with_capacity(pending.len());
                for (write, refused) in pending.into_iter().zip(refused) {
                    match refused {
                        Some(item) => answers.push((write.0, Ok(Written::Refused(item)), write.2)),
                        None => rest.push(write),
                    }
                }
                pending = rest;
            }
        }
        answers
    }

    /// Appends each entry to its resource's decision log, kept for [`DECISION_RETENTION`](super::DECISION_RETENTION), with
    /// `BatchWriteItem`: one answer per entry, in the order given. Entries sort by evaluation
    /// time; an evaluator's second entry for the same resource and instant replaces its first.
    pub async fn log_decisions(&self, decisions: &[Decision<'_>]) -> Vec<Result<(), AwsError>> {
        const OPERATION: &str = "dynamodb:BatchWriteItem";
        let items: Vec<_> = decisions
            .iter()
            .map(|decision| self.decision_item(decision))
            .collect();
        let keys: Vec<_> = items.iter().map(|(item, _)| key_of(item)).collect();
        let mut answers = Vec::with_capacity(decisions.len());
        for run in batches(&keys, ITEMS_PER_WRITE) {
            let asked = &items[run];
            let requests: Result<Vec<WriteRequest>, _> = asked
                .iter()
                .map(|(item, _)| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                })
                .collect();
            let mut pending = match requests {
                Ok(requests) => requests,
                Err(error) => {
                    answers.extend(asked.iter().map(|(_, name)| {
                        Err(AwsError::new(
                            OPERATION,
                            name,
                            ErrorKind::Invalid,
                            error.to_string(),
                        ))
                    }));
                    continue;
                }
            };
            let mut failure = None;
            for retry in 0..=UNPROCESSED_RETRIES {
                if retry > 0 {
                    self.wait_before(retry).await;
                }
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await;
                match answer {
                    Ok(mut answer) => {
                        pending = answer
                            .unprocessed_items
                            .as_mut()
                            .and_then(|unprocessed| unprocessed.remove(&self.table))
                            .unwrap_or_default();
                    }
                    Err(error) => {
                        failure = Some(AwsError::from_sdk(OPERATION, &asked[0].1, error));
                        break;
                    }
                }
                if pending.is_empty() {
                    break;
                }
            }
            let pending: HashSet<_> = pending
                .iter()
                .filter_map(|request| request.put_request())
                .map(|put| key_of(put.item()))
                .collect();
            answers.extend(asked.iter().map(|(item, name)| {
                match (pending.contains(&key_of(item)), &failure) {
                    (false, _) => Ok(()),
                    (true, Some(error)) => Err(error.about(name)),
                    (true, None) => Err(unprocessed(OPERATION, name)),
                }
            }));
        }
        answers
    }
}

/// The error of a resource DynamoDB left unprocessed through every retry.
fn unprocessed(operation: &'static str, item_name: &str) -> AwsError {
    AwsError::new(
        operation,
        item_name,
        ErrorKind::Throttled,
        format!("still unprocessed after {UNPROCESSED_RETRIES} retries"),
    )
}

/// A resource's actions in a batched transaction: its index among those asked about, the
/// actions, and its item's name.
type Write = (usize, Vec<TransactWriteItem>, String);

/// Answers, each beside the index of what it answers (see [`in_order`]).
type Indexed<T> = Vec<(usize, T)>;

/// Each target's one action, as `action` builds it with the item's name, to be written with
/// [`DynamoStateStore::transact`]; beside them, the answers of those whose action the SDK could
/// not build.
fn one_action_each<T>(
    targets: &[Target],
    action: impl Fn(&Target) -> (Result<TransactWriteItem, BuildError>, String),
) -> (Vec<Write>, Indexed<Result<T, AwsError>>) {
    let mut writes = Vec::with_capacity(targets.len());
    let mut answers = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        match action(target) {
            (Ok(action), item_name) => writes.push((index, vec![action], item_name)),
            (Err(error), item_name) => answers.push((
                index,
                Err(AwsError::new(
                    TRANSACT,
                    item_name,
                    ErrorKind::Invalid,
                    error.to_string(),
                )),
            )),
        }
    }
    (writes, answers)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn store(client: Client) -> DynamoStateStore {
        DynamoStateStore::new(client, "capstan")
    }

    fn group(name: &str) -> Target {
        Target::AutoscalingGroup { name: name.into() }
    }

    /// An answer that leaves `key` of the table `capstan` unprocessed.
    fn unprocessed(key: &HashMap<String, AttributeValue>) -> BatchGetItemOutput {
        BatchGetItemOutput::builder()
            .unprocessed_keys(
                "capstan",
                KeysAndAttributes::builder()
                    .keys(key.clone())
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[tokio::test]
    async fn unprocessed_keys_are_asked_again_until_none_are_left() {
        let saved = ResourceState {
            evaluations_without_data: 3,
            ..ResourceState::default()
        };
        let memory = serde_json::to_string(&saved).unwrap();
        let (web_key, _) =
            store(mock_client!(aws_sdk_dynamodb, [])).resource_key(&group("web"), STATE_RECORD);
        let mut web_item = web_key.clone();
        web_item.insert("memory".into(), AttributeValue::S(memory));
        let first = {
            let web_key = web_key.clone();
            mock!(Client::batch_get_item).then_output(move || unprocessed(&web_key))
        };
        let second = mock!(Client::batch_get_item)
            .match_requests(|input| input.request_items().unwrap()["capstan"].keys().len() == 1)
            .then_output(move || {
                BatchGetItemOutput::builder()
                    .responses("capstan", vec![web_item.clone()])
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]);

        let answers = store(client).load_many(&[group("web"), group("api")]).await;

        assert_eq!(answers, [Ok(saved), Ok(ResourceState::default())]);
        assert_eq!(
            second.num_calls(),
            1,
            "only the unprocessed key asked again"
        );
    }

    #[tokio::test]
    async fn a_key_left_unprocessed_through_every_retry_is_its_own_error() {
        let (web_key, _) =
            store(mock_client!(aws_sdk_dynamodb, [])).resource_key(&group("web"), STATE_RECORD);
        let always = mock!(Client::batch_get_item).then_output(move || unprocessed(&web_key));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&always]);

        let answers = store(client).load_many(&[group("web"), group("api")]).await;

        let error = answers[0].clone().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Throttled);
        assert_eq!(
            error.to_string(),
            "dynamodb:BatchGetItem on capstan/resource#autoscaling_group#web failed: \
             Throttled: still unprocessed after 4 retries"
        );
        assert_eq!(answers[1], Ok(ResourceState::default()), "api was answered");
        assert_eq!(always.num_calls(), 1 + UNPROCESSED_RETRIES as usize);
    }

    #[tokio::test]
    async fn a_cancellation_without_reasons_is_answered_item_by_item() {
        use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
        use aws_sdk_dynamodb::types::error::TransactionCanceledException;
        let cancelled = mock!(Client::transact_write_items).then_error(|| {
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .message("Transaction cancelled")
                    .build(),
            )
        });
        let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&cancelled, &put]);
        let now = DateTime::from_timestamp(1_772_452_800, 0).unwrap();

        let answers = store(client)
            .acquire_leases_at(&[group("web"), group("api")], "a", now)
            .await;

        assert_eq!(answers, [Ok(Lease::Acquired), Ok(Lease::Acquired)]);
        assert_eq!((cancelled.num_calls(), put.num_calls()), (1, 2));
    }

    #[tokio::test]
    async fn unprocessed_decisions_are_written_again_and_the_rest_answered() {
        let at = DateTime::from_timestamp(1_772_452_800, 0).unwrap();
        let (web, api) = (group("web"), group("api"));
        let decision = |target| Decision {
            target,
            policy: "p",
            at,
            evaluator: "request-1",
            outcome: "{}".into(),
        };
        let decisions = [decision(&web), decision(&api)];
        let (web_item, _) = store(mock_client!(aws_sdk_dynamodb, [])).decision_item(&decisions[0]);
        let first = mock!(Client::batch_write_item)
            .match_requests(|input| input.request_items().unwrap()["capstan"].len() == 2)
            .then_output(move || {
                BatchWriteItemOutput::builder()
                    .unprocessed_items(
                        "capstan",
                        vec![
                            WriteRequest::builder()
                                .put_request(
                                    PutRequest::builder()
                                        .set_item(Some(web_item.clone()))
                                        .build()
                                        .unwrap(),
                                )
                                .build(),
                        ],
                    )
                    .build()
            });
        let second = mock!(Client::batch_write_item)
            .match_requests(|input| input.request_items().unwrap()["capstan"].len() == 1)
            .then_output(|| BatchWriteItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]);

        let answers = store(client).log_decisions(&decisions).await;

        assert_eq!(answers, [Ok(()), Ok(())]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }
}
