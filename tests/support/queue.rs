//! An SQS queue in the emulator whose messages are read back, as an event source mapping would
//! receive them.

/// A queue, by URL.
pub struct ObservedQueue {
    /// The queue's URL.
    pub url: String,
    sqs: aws_sdk_sqs::Client,
}

impl ObservedQueue {
    /// Creates the queue `name`, taking messages of up to 256 KiB as template.yaml's shard queue
    /// does.
    pub async fn create(config: &aws_config::SdkConfig, name: &str) -> Self {
        let sqs = aws_sdk_sqs::Client::new(config);
        let queue = sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
                (256 * 1024).to_string(),
            )
            .send()
            .await
            .expect("CreateQueue");
        Self {
            url: queue.queue_url().expect("queue URL").to_owned(),
            sqs,
        }
    }

    /// The queue's ARN.
    pub async fn arn(&self) -> String {
        let attribute = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
        let answer = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(attribute.clone())
            .send()
            .await
            .expect("GetQueueAttributes");
        answer
            .attributes()
            .and_then(|attributes| attributes.get(&attribute))
            .expect("queue ARN")
            .clone()
    }

    /// Every message in the queue (message id, body), received and deleted. The emulator
    /// answers from what it holds, so a message sent before this call is among them.
    pub async fn take_all(&self) -> Vec<(String, String)> {
        let mut messages = Vec::new();
        loop {
            let answer = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            if answer.messages().is_empty() {
                return messages;
            }
            for message in answer.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                    .send()
                    .await
                    .expect("DeleteMessage");
                messages.push((
                    message.message_id().expect("a message id").to_owned(),
                    message.body().expect("a body").to_owned(),
                ));
            }
        }
    }
}
