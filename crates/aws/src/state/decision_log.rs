//! Reading a resource's decision log back: the capacity each evaluation found, for a backtest
//! of a resource that publishes no capacity metrics.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use capstan_engine::model::Target;

use super::{DynamoStateStore, PARTITION_KEY, SORT_KEY};
use crate::error::AwsError;

impl DynamoStateStore {
    /// The capacity each logged evaluation of `target` from `start` to `end` found (the
    /// decision's `current`), in time order, with a paged `Query` of the resource's
    /// `decision#` entries. Entries without a decision (the resource could not be read) are
    /// left out; an entry whose outcome cannot be read is an error naming it.
    pub async fn logged_capacity(
        &self,
        target: &Target,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, u32)>, AwsError> {
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
            let at = sort_key
                .split('#')
                .nth(1)
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                .ok_or_else(|| malformed(format!("`{sort_key}` holds no time")))?;
            let Some(AttributeValue::S(outcome)) = item.get("outcome") else {
                return Err(malformed(format!("`{sort_key}` has no outcome")));
            };
            let outcome: serde_json::Value = serde_json::from_str(outcome)
                .map_err(|error| malformed(format!("`{sort_key}`'s outcome: {error}")))?;
            let current = outcome["decision"]["current"].as_u64();
            if let Some(current) = current.and_then(|c| u32::try_from(c).ok()) {
                found.push((at.with_timezone(&Utc), current));
            }
        }
        Ok(found)
    }
}
