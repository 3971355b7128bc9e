//! Reading a resource's decision log back: for `capstan history`, and for a backtest of a
//! resource that publishes no capacity metrics.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use capstan_engine::model::Target;

use super::{DynamoStateStore, PARTITION_KEY, SORT_KEY};
use crate::error::AwsError;

/// One logged evaluation of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvaluation {
    /// When it evaluated.
    pub at: DateTime<Utc>,
    /// The evaluator's attempt that logged it (its request id and a number of its own).
    pub evaluator: String,
    /// The evaluation's outcome as the evaluator logged it (the runner's `Outcome` in JSON).
    pub outcome: serde_json::Value,
}

impl LoggedEvaluation {
    /// The capacity the evaluation found (its decision's `current`), if it made a decision.
    pub fn current(&self) -> Option<u32> {
        let current = self.outcome["decision"]["current"].as_u64()?;
        u32::try_from(current).ok()
    }
}

impl DynamoStateStore {
    /// The logged evaluations of `target` from `start` (inclusive) to `end` (exclusive), in time
    /// order, with a paged, consistent `Query` of the resource's `decision#` entries. An entry
    /// whose time or outcome cannot be read is an error naming it.
    pub async fn decision_log(
        &self,
        target: &Target,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<LoggedEvaluation>, AwsError> {
        const OPERATION: &str = "dynamodb:Query";
        let (key, item_name) = self.resource_key(target, "");
        let partition = key.get(PARTITION_KEY).cloned();
        let bound = |at: DateTime<Utc>| {
            AttributeValue::S(format!(
                "decision#{}",
                at.to_rfc3339_opts(SecondsFormat::Millis, true)
            ))
        };
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .set_expression_attribute_values(Some(
                [
                    (
                        ":pk".to_owned(),
                        partition.unwrap_or(AttributeValue::Null(true)),
                    ),
                    (":from".to_owned(), bound(start)),
                    (":to".to_owned(), bound(end)),
                ]
                .into(),
            ))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|error| AwsError::from_sdk(OPERATION, &item_name, error))?;
            let malformed = |problem: String| AwsError::malformed(OPERATION, &item_name, problem);
            let sort_key = match item.get(SORT_KEY) {
                Some(AttributeValue::S(text)) => text.as_str(),
                _ => {
                    return Err(malformed(
                        "a decision log entry without its sort key".into(),
                    ));
                }
            };
            let mut parts = sort_key.splitn(3, '#').skip(1);
            let at = parts
                .next()
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                .ok_or_else(|| malformed(format!("`{sort_key}` holds no time")))?;
            let evaluator = parts.next().unwrap_or_default().to_owned();
            let Some(AttributeValue::S(outcome)) = item.get("outcome") else {
                return Err(malformed(format!("`{sort_key}` has no outcome")));
            };
            let outcome = serde_json::from_str(outcome)
                .map_err(|error| malformed(format!("`{sort_key}`'s outcome: {error}")))?;
            found.push(LoggedEvaluation {
                at: at.with_timezone(&Utc),
                evaluator,
                outcome,
            });
        }
        Ok(found)
    }

    /// The capacity each logged evaluation of `target` from `start` to `end` found, in time
    /// order ([`Self::decision_log`]); evaluations without a decision (the resource could not
    /// be read) are left out.
    pub async fn logged_capacity(
        &self,
        target: &Target,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u32)>, AwsError> {
        let log = self.decision_log(target, start, end).await?;
        Ok(log
            .iter()
            .filter_map(|entry| Some((entry.at, entry.current()?)))
            .collect())
    }
}
