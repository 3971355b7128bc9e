//! An SNS topic in the emulator whose messages are read back through a subscribed SQS queue.

use serde_json::Value;

/// A topic and the queue subscribed to it.
pub struct ObservedTopic {
    /// The topic's ARN.
    pub arn: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl ObservedTopic {
    /// Creates a topic and a queue named `name`, and subscribes the queue to the topic.
    pub async fn create(config: &aws_config::SdkConfig, name: &str) -> Self {
        let sns = aws_sdk_sns::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let topic = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic");
        let arn = topic.topic_arn().expect("topic ARN").to_owned();
        let queue = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("CreateQueue");
        let queue_url = queue.queue_url().expect("queue URL").to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue ARN")
            .clone();
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("Subscribe");
        Self {
            arn,
            sqs,
            queue_url,
        }
    }

    /// The SNS notifications delivered to the queue so far (each with `Subject` and `Message`),
    /// removed from it. The emulator delivers while publishing, so a message published before
    /// this call is already there.
    pub async fn received(&self) -> Vec<Value> {
        let mut notifications = Vec::new();
        loop {
            let answer = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            if answer.messages().is_empty() {
                return notifications;
            }
            for message in answer.messages() {
                let body = message.body().expect("message body");
                notifications.push(serde_json::from_str(body).expect("an SNS notification"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().expect("receipt handle"))
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
    }
}
