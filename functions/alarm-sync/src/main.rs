//! The alarm-sync Lambda. Glue only: the work is in the library, [`capstan_alarm_sync`].

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

use capstan_alarm_sync::{App, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    capstan_lambda::init_logging();
    let app = App::start(Settings::from_env()).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        app.handle(event.payload, event.context.deadline().into())
    }))
    .await
}
