//! An SNS topic in the emulator whose messages are read back through a subscribed SQS queue.

use serde_json::Value;

use crate::queue::ObservedQueue;

/// A topic and the queue subscribed to it.
pub struct ObservedTopic {
    /// The topic's ARN.
    pub arn: String,
    queue: ObservedQueue,
}

impl ObservedTopic {
    /// Creates a topic and a queue named `name`, and subscribes the queue to the topic.
    pub async fn create(config: &aws_config::SdkConfig, name: &str) -> Self {
        let sns = aws_sdk_sns::Client::new(config);
        let topic = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic");
        let arn = topic.topic_arn().expect("topic ARN").to_owned();
        let queue = ObservedQueue::create(config, name).await;
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue.arn().await)
            .send()
            .await
            .expect("Subscribe");
        Self { arn, queue }
    }

    /// The SNS notifications delivered to the queue so far (each with `Subject` and `Message`),
    /// removed from it. The emulator delivers while publishing, so a message published before
    /// this call is already there.
    pub async fn received(&self) -> Vec<Value> {
        self.queue
            .take_all()
            .await
            .into_iter()
            .map(|(_, body)| serde_json::from_str(&body).expect("an SNS notification"))
            .collect()
    }
}
