//! `Topic` against moto, its messages read back through a subscribed SQS queue. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_sns::`.

use capstan_aws::{ErrorKind, Topic};
use capstan_tests::topic::ObservedTopic;
use capstan_tests::{sdk_config, unique};

#[tokio::test(flavor = "multi_thread")]
async fn a_published_message_reaches_the_topics_subscribers() {
    let config = sdk_config().await;
    let observed = ObservedTopic::create(&config, &unique("decisions")).await;
    let topic = Topic::new(&config, &observed.arn);

    let id = topic
        .publish(
            "capstan: web blocked by\nresource_busy",
            r#"{"reason":"blocked"}"#,
        )
        .await
        .expect("publishing");

    let received = observed.received().await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0]["MessageId"], id.as_str());
    assert_eq!(received[0]["TopicArn"], observed.arn.as_str());
    assert_eq!(
        received[0]["Subject"],
        "capstan: web blocked by?resource_busy"
    );
    assert_eq!(received[0]["Message"], r#"{"reason":"blocked"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_to_a_missing_topic_names_it() {
    let config = sdk_config().await;
    let arn = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("missing"));
    let error = Topic::new(&config, &arn)
        .publish("subject", "message")
        .await
        .expect_err("the topic does not exist");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(error.resource(), arn);
    assert!(
        error.to_string().starts_with("sns:Publish on arn:aws:sns:"),
        "{error}"
    );
}
