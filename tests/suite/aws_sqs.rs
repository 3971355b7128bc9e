//! `Queue` against moto, its messages read back. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_sqs::`.

use capstan_aws::{ErrorKind, Queue};
use capstan_tests::queue::ObservedQueue;
use capstan_tests::{sdk_config, unique};

/// The bodies of the messages in `queue`, taken, in order.
async fn bodies_in(queue: &ObservedQueue) -> Vec<String> {
    let mut bodies: Vec<String> = queue
        .take_all()
        .await
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    bodies.sort();
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_is_sent_in_batches_within_sqs_limits() {
    let config = sdk_config().await;
    let observed = ObservedQueue::create(&config, &unique("shards")).await;
    let queue = Queue::new(&config, &observed.url);
    // 25 messages, 3 of them 100 KiB: more than one call's 10 messages and 256 KiB.
    let bodies: Vec<String> = (0..25)
        .map(|n| {
            let padding = if n % 10 == 3 { 100 * 1024 } else { 0 };
            format!("{n:02}{}", "x".repeat(padding))
        })
        .collect();

    let sent = queue.send_all(&bodies).await;

    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let received = bodies_in(&observed).await;
    assert_eq!(received, bodies);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_too_large_fails_alone_and_a_missing_queue_fails_each_naming_it() {
    let config = sdk_config().await;
    let observed = ObservedQueue::create(&config, &unique("shards")).await;
    let queue = Queue::new(&config, &observed.url);
    let bodies = [
        "small".to_owned(),
        "x".repeat(256 * 1024 + 1),
        "tiny".to_owned(),
    ];

    let sent = queue.send_all(&bodies).await;

    assert!(sent[0].is_ok() && sent[2].is_ok(), "{sent:?}");
    let error = sent[1].as_ref().expect_err("too large");
    assert_eq!(error.operation(), "sqs:SendMessageBatch");
    assert!(error.resource().ends_with("message 1"), "{error}");
    let received = bodies_in(&observed).await;
    assert_eq!(received, ["small", "tiny"]);

    let missing = Queue::new(
        &config,
        format!(
            "{}/123456789012/{}",
            capstan_tests::endpoint(),
            unique("missing")
        ),
    );
    let sent = missing.send_all(&bodies[..1]).await;
    let error = sent[0].as_ref().expect_err("no such queue");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.resource().starts_with(missing.url()), "{error}");
}
