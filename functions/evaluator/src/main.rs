//! The evaluator Lambda: thin glue around [`capstan_runner`].
//!
//! At cold start it reads its settings, validates the packaged policy set and builds the AWS
//! clients once. Each invocation turns the event into a trigger, evaluates the policies it
//! wakes and logs two JSON records per decision: the decision with its explanation, and its
//! metrics in the Embedded Metric Format. A blocked or failed actuation is also published to the
//! decisions topic, when one is set. A tick over a set larger than one invocation evaluates is
//! sent to the shard queue in shards instead, each coming back as an SQS delivery of its own.

mod emf;
mod fan_out;
mod handler;
mod notice;
mod settings;
#[cfg(test)]
mod testing;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

use handler::App;
use settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    capstan_lambda::init_logging();

    let settings = Settings::from_env()?;
    let app = &App::start(settings).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline().into();
        app.handle(event.payload, &event.context.request_id, deadline)
            .await
    }))
    .await
}
