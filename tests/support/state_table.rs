//! The state table's items, read straight from the emulator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

/// Every item of `table`, read consistently.
pub async fn scan(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("scanning the state table")
}

/// The leases in `items` that have not expired at `now`.
pub fn leases_held(items: &[HashMap<String, AttributeValue>], now: DateTime<Utc>) -> usize {
    items
        .iter()
        .filter(|item| sort_key(item) == Some("lease"))
        .filter(|item| epoch(item, "expires_at").is_some_and(|at| at > now.timestamp()))
        .count()
}

/// The latest instant, in epoch seconds, until which a lease or an event's claim in progress
/// among `items` keeps others out; None when none does.
pub fn held_until(items: &[HashMap<String, AttributeValue>]) -> Option<i64> {
    items
        .iter()
        .filter_map(|item| match sort_key(item) {
            Some("lease") => epoch(item, "expires_at"),
            Some("claim")
                if item.get("progress").and_then(|p| p.as_s().ok())
                    == Some(&"in_progress".to_owned()) =>
            {
                epoch(item, "in_progress_until")
            }
            _ => None,
        })
        .max()
}

fn sort_key(item: &HashMap<String, AttributeValue>) -> Option<&str> {
    item.get("sk")
        .and_then(|sk| sk.as_s().ok())
        .map(String::as_str)
}

fn epoch(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|at| at.as_n().ok())
        .and_then(|at| at.parse().ok())
}
