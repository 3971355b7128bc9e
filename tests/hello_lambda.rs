//! A Lambda function that starts as the evaluator does, without its policies: JSON logging, the
//! SDK configuration and every AWS client of `capstan_aws::Aws`, then `{}` for every event. The
//! pass benchmark's cold start compares the evaluator with it, so that what the policy set and
//! the evaluator's own start cost stands out from what any Rust Lambda with these clients costs.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    capstan_lambda::init_logging();
    let endpoint = std::env::var("CAPSTAN_AWS_ENDPOINT").ok();
    let config = capstan_aws::load_config(endpoint.as_deref()).await;
    let aws = capstan_aws::Aws::new(&config, "unused");
    let served = lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({}))
    }))
    .await;
    // The clients live as long as the function, as the evaluator's do.
    drop(aws);
    served
}
