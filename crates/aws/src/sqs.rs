//! SQS: sending messages to a queue, such as the shard queue a fanned-out tick sends its shards
//! to.

use std::ops::Range;

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};

use crate::error::{AwsError, ErrorKind};

const SEND_MESSAGE_BATCH: &str = "sqs:SendMessageBatch";

/// The most messages SQS takes in one SendMessageBatch call.
const BATCH_MAX_MESSAGES: usize = 10;

/// The most bytes of message bodies sent in one SendMessageBatch call: 256 KiB, the most a
/// message may have on the shard queue (its `MaximumMessageSize` in template.yaml; SQS allows
/// queues up to 1 MiB, for messages and for a whole batch).
const BATCH_MAX_BYTES: usize = 256 * 1024;

/// How many SendMessageBatch calls run at once.
const CALLS_IN_FLIGHT: usize = 4;

/// One SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    /// The queue `url`, reached with a client built from `config`.
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends each of `bodies` as one message, in SendMessageBatch calls of at most 10 messages
    /// and 256 KiB of bodies, up to 4 calls at once, and answers for each body in order: sent,
    /// or why not. A call that fails fails each of its messages; an entry the answer names as failed, or
    /// does not name at all, fails alone; a queue refuses a body over its `MaximumMessageSize`.
    pub async fn send_all(&self, bodies: &[String]) -> Vec<Result<(), AwsError>> {
        let answers: Vec<Vec<Result<(), AwsError>>> = stream::iter(batches(bodies))
            .map(|batch| self.send_batch(batch.start, &bodies[batch]))
            .buffered(CALLS_IN_FLIGHT)
            .collect()
            .await;
        answers.into_iter().flatten().collect()
    }

    /// Sends `bodies`, the first of which is message number `first`, in one call. Entry ids are
    /// the messages' numbers.
    async fn send_batch(&self, first: usize, bodies: &[String]) -> Vec<Result<(), AwsError>> {
        let ids: Vec<String> = (first..first + bodies.len())
            .map(|n| n.to_string())
            .collect();
        let entries = ids.iter().zip(bodies).map(|(id, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(id)
                .message_body(body)
                .build()
        });
        let entries: Result<Vec<_>, _> = entries.collect();
        let message = |id: &str| format!("{} message {id}", self.url);
        let each_failed = |error: AwsError| -> Vec<Result<(), AwsError>> {
            ids.iter().map(|id| Err(error.about(message(id)))).collect()
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) => {
                return each_failed(AwsError::new(
                    SEND_MESSAGE_BATCH,
                    &self.url,
                    ErrorKind::Invalid,
                    error.to_string(),
                ));
            }
        };
        let answer = match self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                return each_failed(AwsError::from_sdk(SEND_MESSAGE_BATCH, &self.url, error));
            }
        };
        ids.iter()
            .map(|id| {
                if let Some(failed) = answer.failed().iter().find(|entry| entry.id() == id) {
                    Err(AwsError::of_entry(
                        SEND_MESSAGE_BATCH,
                        message(id),
                        failed.code(),
                        failed.message().unwrap_or_default(),
                    ))
                } else if answer.successful().iter().any(|entry| entry.id() == id) {
                    Ok(())
                } else {
                    Err(AwsError::new(
                        SEND_MESSAGE_BATCH,
                        message(id),
                        ErrorKind::Unavailable,
                        "the answer names this message neither sent nor failed",
                    ))
                }
            })
            .collect()
    }
}

/// `bodies` cut, in order, into the batches of one SendMessageBatch call each: at most
/// [`BATCH_MAX_MESSAGES`] messages and [`BATCH_MAX_BYTES`] bytes of bodies, but at least one
/// message (a body too large on its own is sent alone, for SQS to refuse).
fn batches(bodies: &[String]) -> Vec<Range<usize>> {
    let mut batches: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (at, body) in bodies.iter().enumerate() {
        match batches.last_mut() {
            Some(batch)
                if batch.len() < BATCH_MAX_MESSAGES && bytes + body.len() <= BATCH_MAX_BYTES =>
            {
                batch.end = at + 1;
                bytes += body.len();
            }
            _ => {
                batches.push(at..at + 1);
                bytes = body.len();
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kib_of_bodies() {
        let small = vec!["x".repeat(10); 23];
        assert_eq!(batches(&small), [0..10, 10..20, 20..23]);

        let large = vec!["x".repeat(100 * 1024); 5];
        assert_eq!(batches(&large), [0..2, 2..4, 4..5]);

        let mut mixed = vec!["x".repeat(BATCH_MAX_BYTES + 1)];
        mixed.extend(small.iter().take(3).cloned());
        assert_eq!(
            batches(&mixed),
            [0..1, 1..4],
            "too large alone, then the rest"
        );

        assert_eq!(batches(&[]), Vec::<Range<usize>>::new());
    }
}
