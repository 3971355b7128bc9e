//! Helpers shared by capstan's integration tests, which run against the moto AWS emulator that
//! `scripts/with-emulator.sh` starts (see `docs/testing.md`).

pub mod alarms;
pub mod answers;
pub mod calls;
pub mod events;
pub mod fleet;
pub mod lambda;
pub mod msk_mock;
pub mod proxy;
pub mod queue;
pub mod runtime_api;
pub mod state_table;
pub mod tamper;
pub mod topic;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::config::Credentials;

/// The variable that `scripts/with-emulator.sh` sets to the emulator's base URL.
const ENDPOINT_VAR: &str = "CAPSTAN_AWS_ENDPOINT";

/// The emulator's base URL, such as `http://127.0.0.1:41234`, read from `CAPSTAN_AWS_ENDPOINT`.
///
/// # Panics
///
/// When the variable is unset, that is when the tests were not started through
/// `scripts/with-emulator.sh`.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VAR} is not set: run these tests through the emulator, e.g. \
             `scripts/with-emulator.sh cargo test -p capstan-tests` (after `scripts/bootstrap.sh`)"
        )
    })
}

/// AWS SDK configuration for the emulator: region us-east-1, static test credentials and every
/// service's endpoint set to [`endpoint`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "capstan-tests",
        ))
        .endpoint_url(endpoint())
        .load()
        .await
}

/// A name that no other test or test run uses: `prefix` followed by the process id, a counter
/// and the time in nanoseconds. The emulator keeps state between tests, so give every test
/// its own resources.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{prefix}-{}-{count}-{nanos}", std::process::id())
}
