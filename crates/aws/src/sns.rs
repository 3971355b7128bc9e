//! SNS: publishing notices to a topic, such as the decisions topic that hears of blocked and
//! failed actuations.

use aws_config::SdkConfig;
use aws_sdk_sns::Client;

use crate::error::AwsError;

const PUBLISH: &str = "sns:Publish";

/// The most characters SNS accepts in a subject.
const SUBJECT_MAX_CHARS: usize = 100;

/// One SNS topic, by ARN.
#[derive(Debug, Clone)]
pub struct Topic {
    client: Client,
    arn: String,
}

impl Topic {
    /// The topic `arn`, reached with a client built from `config`.
    pub fn new(config: &SdkConfig, arn: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            arn: arn.into(),
        }
    }

    /// The topic's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Publishes `message` with `subject` (made to fit SNS's rules: printable ASCII, at most
    /// 100 characters), and returns the message ID SNS gave it.
    ///
    /// A topic that does not exist is an [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
    /// error naming its ARN.
    pub async fn publish(&self, subject: &str, message: &str) -> Result<String, AwsError> {
        let answer = self
            .client
            .publish()
            .topic_arn(&self.arn)
            .subject(fit_subject(subject))
            .message(message)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(PUBLISH, &self.arn, error))?;
        Ok(answer.message_id().unwrap_or_default().to_owned())
    }
}

/// `subject` as SNS accepts it: anything but printable ASCII becomes `?`, and it is cut to
/// [`SUBJECT_MAX_CHARS`].
fn fit_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(SUBJECT_MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_printable_ascii_of_at_most_100_characters() {
        assert_eq!(
            fit_subject("capstan: web blocked by resource_busy"),
            "capstan: web blocked by resource_busy"
        );
        assert_eq!(fit_subject("a\nb → c"), "a?b ? c");
        let long = "x".repeat(150);
        assert_eq!(fit_subject(&long), "x".repeat(100));
    }
}
