//! capstan's integration and end-to-end tests, one module per subject, in one test binary (so
//! that the AWS SDK is linked once), run against the moto emulator that
//! `scripts/with-emulator.sh` starts (see docs/testing.md):
//!
//! ```sh
//! scripts/with-emulator.sh cargo nextest run -p capstan-tests --test suite aws_state::
//! ```

mod alarm_sync;
mod aws_autoscaling;
mod aws_cloudwatch;
mod aws_ecs;
mod aws_rds;
mod aws_sns;
mod aws_sqs;
mod aws_state;
mod cloudwatch_bridge;
mod evaluator_e2e;
mod expression_e2e;
mod forecast_e2e;
mod forecast_replicas_e2e;
mod malformed_answers;
mod proof;
mod state_coordination;
