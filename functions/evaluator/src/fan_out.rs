//! A tick fanned out over several invocations: split into shards and sent to the shard queue,
//! whose messages come back to the evaluator as [`Trigger::Shard`](capstan_runner::Trigger)s.

use std::num::NonZeroUsize;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use capstan_aws::Queue;
use capstan_policy::model::Policy;
use capstan_runner::{ShardTrigger, shards};

/// Where a tick's shards go, and how many policies one invocation evaluates.
pub struct FanOut {
    queue: Queue,
    max: NonZeroUsize,
}

impl FanOut {
    /// Shards of at most `max` policies (but see [`capstan_runner::Shard::oversized`]), sent to
    /// `queue`.
    pub fn new(queue: Queue, max: NonZeroUsize) -> Self {
        Self { queue, max }
    }

    /// Whether a tick over `policies` is fanned out: there are more of them than one invocation
    /// evaluates. A smaller set is evaluated in the tick's own invocation.
    pub fn applies(&self, policies: &[Policy]) -> bool {
        policies.len() > self.max.get()
    }

    /// Splits the tick scheduled at `tick` over `policies` into [`shards`] and sends each to the
    /// queue as a [`ShardTrigger`], answering with what was sent. A shard that could not be sent
    /// is an error naming it and why: the caller fails the tick's invocation, and Lambda's
    /// retry sends every shard again, since the split depends on the policy set alone; the
    /// shards' claims recognise those already sent as duplicates.
    pub async fn send(&self, tick: DateTime<Utc>, policies: &[Policy]) -> Result<Value, String> {
        let shards = shards(policies, self.max);
        let of = shards.len();
        let messages: Vec<ShardTrigger> = shards
            .iter()
            .enumerate()
            .map(|(index, shard)| ShardTrigger {
                tick,
                index,
                of,
                policies: shard.policies.iter().map(|p| p.name.clone()).collect(),
            })
            .collect();
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("a shard could not be written as JSON: {error}"))?;
        let sent = self.queue.send_all(&bodies).await;
        let unsent: Vec<String> = sent
            .iter()
            .zip(&messages)
            .filter_map(|(sent, shard)| {
                let error = sent.as_ref().err()?;
                Some(format!("shard {}/{of}: {error}", shard.index))
            })
            .collect();
        if !unsent.is_empty() {
            return Err(format!(
                "{} of {of} shards of the tick at {tick} not sent to {}: {}",
                unsent.len(),
                self.queue.url(),
                unsent.join("; ")
            ));
        }
        for (shard, message) in shards.iter().zip(&messages).filter(|(s, _)| s.oversized) {
            tracing::warn!(
                shard = message.index,
                policies = shard.policies.len(),
                max = self.max,
                first = %message.policies[0],
                "policies coupled by a guard are more than one invocation should evaluate: their shard is evaluated whole and may run long"
            );
        }
        Ok(json!({
            "queue": self.queue.url(),
            "shards": shards.iter().zip(&messages).map(|(shard, message)| json!({
                "index": message.index,
                "policies": shard.policies.len(),
                "oversized": shard.oversized,
            })).collect::<Vec<_>>(),
        }))
    }
}
