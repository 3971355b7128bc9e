//! capstan's AWS adapters: one module per AWS service, each implementing a port the runner
//! defines ([`capstan_runner::ports`]).
//!
//! ```no_run
//! use capstan_aws::{Aws, AwsError, load_config};
//! use capstan_engine::model::{Policy, Target};
//! use capstan_runner::ports::CapacityControl;
//!
//! # async fn example() -> Result<(), AwsError> {
//! // The emulator's endpoint in tests and demos; AWS's own endpoints otherwise.
//! let endpoint = std::env::var("CAPSTAN_AWS_ENDPOINT").ok();
//! let aws = Aws::new(&load_config(endpoint.as_deref()).await, "capstan-state");
//!
//! let target = Target::EcsService { cluster: "shop".into(), service: "order-processing".into() };
//! let now = aws.current(&target).await?;
//! if now.busy.is_none() {
//!     aws.set_desired(&target, now.desired + 1).await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! | Port | Implementation | AWS calls |
//! |---|---|---|
//! | [`MetricSource`](capstan_runner::ports::MetricSource) | [`CloudWatchReader`] | `GetMetricData` |
//! | [`CapacityControl`] | [`Aws`], by target kind: [`AutoScalingGroups`], [`EcsServices`], [`RdsReplicas`], [`MskClusters`] | `DescribeAutoScalingGroups` (up to 100 groups per call in `current_all`), `SetDesiredCapacity`, `DescribeServices` (up to 10 services of one cluster per call in `current_all`), `UpdateService`, `DescribeDBInstances`, `CreateDBInstanceReadReplica`, `DeleteDBInstance`, `DescribeClusterV2`, `DescribeClusterOperationV2`, `DescribeTopic`, `ListTopics`, `UpdateTopic`, `UpdateBrokerCount` |
//! | [`StateStore`](capstan_runner::ports::StateStore) | [`DynamoStateStore`] (also the decision log and event claims) | `GetItem`, `BatchGetItem` (100 keys per call in `load_all`), `TransactWriteItems` (`ConditionCheck` and `Update` per save; `Put` per lease taken and `Delete` per lease given back in `acquire_leases` and `release_leases`; 100 actions per call), `PutItem`, `BatchWriteItem` (25 decision log entries per call), `UpdateItem`, `DeleteItem`; `Query` (a resource's decision log read back, for a backtest) |
//! | alarm sync ([`capstan_engine::alarms`]) | [`CloudWatchAlarms`] | `DescribeAlarms`, `ListTagsForResource`, `PutMetricAlarm`, `DeleteAlarms` |
//!
//! Outside the ports, a [`Topic`] publishes notices to SNS (`Publish`), and a [`Queue`] sends a
//! fanned-out tick's shards to SQS (`SendMessageBatch`, 10 messages per call).
//!
//! Every call to ECS, Auto Scaling, RDS, MSK and CloudWatch keeps to this process's share of
//! AWS's rate limits ([`RateLimits`]): it waits its turn, or, when that turn would come after
//! the deadline of the pass it serves ([`Aws::until`]), fails at once. DynamoDB, SNS and SQS
//! calls are not limited (see docs/deploy.md, "Rate limits").
//!
//! Every failure is an [`AwsError`] naming the operation and the resource, with an
//! [`ErrorKind`] that says whether a retry can help. Throttling and transient failures are first
//! retried by the SDK's standard retry mode, which [`load_config`] turns on.

pub mod alarms;
mod answer;
pub mod autoscaling;
pub mod cloudwatch;
pub mod ecs;
pub mod error;
pub mod msk;
pub mod rate;
pub mod rds;
pub mod sns;
pub mod sqs;
pub mod state;

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::ops::Range;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use chrono::{DateTime, Utc};

use capstan_engine::CurrentCapacity;
use capstan_engine::model::{Policy, Target};
use capstan_runner::ports::CapacityControl;

pub use alarms::CloudWatchAlarms;
pub use autoscaling::AutoScalingGroups;
pub use cloudwatch::CloudWatchReader;
pub use ecs::EcsServices;
pub use error::{AwsError, ErrorKind};
pub use msk::MskClusters;
pub use rate::RateLimits;
pub use rds::RdsReplicas;
pub use sns::Topic;
pub use sqs::Queue;
pub use state::{DynamoStateStore, LoggedEvaluation, create_table};

/// The longest one AWS call may take, retries included: after it, the call fails as timed out.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one attempt of an AWS call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The SDK configuration every capstan client is built from: the default credential, region and
/// endpoint chain, with [`retry_config`] and [`timeout_config`], and `endpoint` instead of AWS's
/// endpoints when given (e.g. the emulator's, from `CAPSTAN_AWS_ENDPOINT`).
pub async fn load_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The SDK's standard retry mode with 3 attempts in all: throttling, transient errors and 5xx
/// answers are retried with jittered exponential backoff.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// Each call bounded by [`OPERATION_TIMEOUT`], each attempt by [`ATTEMPT_TIMEOUT`], so that a
/// pass knows how long a call it starts may last.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// Every adapter, built from one SDK configuration, and the rate limits they keep to.
#[derive(Debug, Clone)]
pub struct Aws {
    cloudwatch: CloudWatchReader,
    autoscaling: AutoScalingGroups,
    ecs: EcsServices,
    rds: RdsReplicas,
    msk: MskClusters,
    state: DynamoStateStore,
    owners: BTreeMap<Target, String>,
    limits: RateLimits,
}

impl Aws {
    /// Clients for every adapter from `config`, within [`RateLimits::default`]; the state lives
    /// in the DynamoDB table `state_table`.
    pub fn new(config: &SdkConfig, state_table: impl Into<String>) -> Self {
        Self {
            cloudwatch: CloudWatchReader::new(aws_sdk_cloudwatch::Client::new(config)),
            autoscaling: AutoScalingGroups::new(aws_sdk_autoscaling::Client::new(config)),
            ecs: EcsServices::new(aws_sdk_ecs::Client::new(config)),
            rds: RdsReplicas::new(aws_sdk_rds::Client::new(config)),
            msk: MskClusters::new(aws_sdk_kafka::Client::new(config)),
            state: DynamoStateStore::new(aws_sdk_dynamodb::Client::new(config), state_table),
            owners: BTreeMap::new(),
            limits: RateLimits::default(),
        }
    }

    /// The same adapters, every one within `limits` (their clones share its buckets).
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self {
            cloudwatch: self.cloudwatch.with_rate_limits(limits.clone()),
            autoscaling: self.autoscaling.with_rate_limits(limits.clone()),
            ecs: self.ecs.with_rate_limits(limits.clone()),
            rds: self.rds.with_rate_limits(limits.clone()),
            msk: self.msk.with_rate_limits(limits.clone()),
            limits,
            ..self
        }
    }

    /// The same adapters, for a pass that must stop starting work at `deadline`: a rate-limited
    /// call whose turn would come after it fails at once (see [`RateLimits::until`]).
    pub fn until(self, deadline: Option<DateTime<Utc>>) -> Self {
        let limits = self.limits.until(deadline);
        self.with_rate_limits(limits)
    }

    /// Remembers which policy scales each target, so that what capstan creates (RDS read
    /// replicas) is tagged `capstan:policy=<policy>`. Creating replicas for a target no policy
    /// given here scales fails with [`ErrorKind::Invalid`].
    pub fn with_policies<'a>(mut self, policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        self.owners.extend(
            policies
                .into_iter()
                .map(|policy| (policy.target.clone(), policy.name.clone())),
        );
        self
    }

    /// Reaches MSK through `client` instead of the one built from the configuration. For
    /// demos and tests: no emulator implements MSK's topic and broker-count operations, so
    /// there the client's answers are mocked (`aws-smithy-mocks`).
    pub fn with_kafka(mut self, client: aws_sdk_kafka::Client) -> Self {
        self.msk = MskClusters::new(client).with_rate_limits(self.limits.clone());
        self
    }

    /// Metric reads.
    pub fn cloudwatch(&self) -> &CloudWatchReader {
        &self.cloudwatch
    }

    /// Auto Scaling group capacity.
    pub fn autoscaling(&self) -> &AutoScalingGroups {
        &self.autoscaling
    }

    /// ECS service capacity.
    pub fn ecs(&self) -> &EcsServices {
        &self.ecs
    }

    /// Memory of earlier actions.
    pub fn state(&self) -> &DynamoStateStore {
        &self.state
    }
}

/// Reads and sets capacity through the adapter for the target's kind.
impl CapacityControl for Aws {
    type Error = AwsError;

    async fn current(&self, target: &Target) -> Result<CurrentCapacity, AwsError> {
        match target {
            Target::AutoscalingGroup { name } => self.autoscaling.current(name).await,
            Target::EcsService { cluster, service } => self.ecs.current(cluster, service).await,
            Target::RdsReplicas { source } => self.rds.current(source).await,
            Target::MskTopic { cluster_arn, topic } => self.msk.topic(cluster_arn, topic).await,
            Target::MskCluster { cluster_arn } => self.msk.brokers(cluster_arn).await,
        }
    }

    /// Auto Scaling groups and ECS services are read in batches (see
    /// [`AutoScalingGroups::current_all`] and [`EcsServices::current_all`]); RDS sources and MSK
    /// topics and clusters one after another.
    async fn current_all(&self, targets: &[Target]) -> Vec<Result<CurrentCapacity, AwsError>> {
        let (mut groups, mut services, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for (index, target) in targets.iter().enumerate() {
            match target {
                Target::AutoscalingGroup { name } => groups.push((index, name.as_str())),
                Target::EcsService { cluster, service } => {
                    services.push((index, (cluster.as_str(), service.as_str())));
                }
                _ => others.push(index),
            }
        }
        let mut answers = Vec::with_capacity(targets.len());
        let (indices, names): (Vec<usize>, Vec<&str>) = groups.into_iter().unzip();
        answers.extend(
            indices
                .into_iter()
                .zip(self.autoscaling.current_all(&names).await),
        );
        let (indices, services): (Vec<usize>, Vec<(&str, &str)>) = services.into_iter().unzip();
        answers.extend(
            indices
                .into_iter()
                .zip(self.ecs.current_all(&services).await),
        );
        for index in others {
            answers.push((index, self.current(&targets[index]).await));
        }
        in_order(answers)
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> Result<(), AwsError> {
        match target {
            Target::AutoscalingGroup { name } => self.autoscaling.set_desired(name, desired).await,
            Target::EcsService { cluster, service } => {
                self.ecs.set_desired(cluster, service, desired).await
            }
            Target::RdsReplicas { source } => {
                let Some(policy) = self.owners.get(target) else {
                    return Err(AwsError::new(
                        "capstan:SetCapacity",
                        source,
                        ErrorKind::Invalid,
                        "no policy is known for these replicas, so they could not be tagged; build Aws with_policies",
                    ));
                };
                self.rds.set_desired(source, policy, desired).await
            }
            Target::MskTopic { cluster_arn, topic } => {
                self.msk.set_partitions(cluster_arn, topic, desired).await
            }
            Target::MskCluster { cluster_arn } => self.msk.set_brokers(cluster_arn, desired).await,
        }
    }
}

/// How a target is named in errors and in stored state, without its kind: the group's name,
/// `cluster/service`, the source instance, `cluster-arn/topic` or the cluster's ARN.
pub(crate) fn resource_id(target: &Target) -> String {
    match target {
        Target::AutoscalingGroup { name } => name.clone(),
        Target::EcsService { cluster, service } => ecs::service_id(cluster, service),
        Target::RdsReplicas { source } => source.clone(),
        Target::MskTopic { cluster_arn, topic } => format!("{cluster_arn}/{topic}"),
        Target::MskCluster { cluster_arn } => cluster_arn.clone(),
    }
}

/// Splits `keys` into runs of consecutive keys, in order, of at most `size` keys each and none
/// naming a key twice (a batched call may not ask about one item twice; the later one waits for
/// the next run): the runs' index ranges.
pub(crate) fn batches<K: Eq + Hash>(keys: &[K], size: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = HashSet::new();
    for (index, key) in keys.iter().enumerate() {
        if index - start == size || !seen.insert(key) {
            runs.push(start..index);
            start = index;
            seen.clear();
            seen.insert(key);
        }
    }
    if start < keys.len() {
        runs.push(start..keys.len());
    }
    runs
}

/// The answers of `indexed` (each beside the index of what it answers) in the order of their
/// indices: batched calls answer grouped by call, callers in the order they asked.
pub(crate) fn in_order<T>(mut indexed: Vec<(usize, T)>) -> Vec<T> {
    indexed.sort_by_key(|(index, _)| *index);
    indexed.into_iter().map(|(_, answer)| answer).collect()
}

/// How many `items` there are, as a capacity (saturating).
pub(crate) fn how_many<T>(items: impl IntoIterator<Item = T>) -> u32 {
    u32::try_from(items.into_iter().count()).unwrap_or(u32::MAX)
}

/// A count the SDK reports as an optional `i32`, where absent or negative means none.
pub(crate) fn count(value: Option<i32>) -> u32 {
    value
        .and_then(|value| u32::try_from(value).ok())
        .unwrap_or(0)
}

/// An answer of status 200 with `body`, of `content_type`: what a mocked rule answers when a
/// test needs the SDK's own deserializer to read a body as received.
#[cfg(test)]
pub(crate) fn raw_answer(
    content_type: &str,
    body: impl Into<aws_smithy_types::body::SdkBody>,
) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    let ok = aws_smithy_runtime_api::http::StatusCode::try_from(200).expect("a status");
    let mut answer = aws_smithy_runtime_api::http::Response::new(ok, body.into());
    answer
        .headers_mut()
        .insert("content-type", content_type.to_owned());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_runs_of_at_most_size_without_a_key_twice() {
        assert_eq!(batches::<u8>(&[], 2), Vec::<Range<usize>>::new());
        assert_eq!(batches(&[1, 2, 3, 4, 5], 2), [0..2, 2..4, 4..5]);
        assert_eq!(batches(&[1, 2, 1, 3], 10), [0..2, 2..4], "1 again waits");
        assert_eq!(batches(&[1, 1, 1], 10), [0..1, 1..2, 2..3]);
    }

    #[tokio::test]
    async fn replicas_without_a_known_policy_are_not_created_untagged() {
        let aws = Aws::new(
            &SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
            "state",
        );
        let rds = Target::RdsReplicas {
            source: "orders-db".into(),
        };

        let error = aws
            .set_desired(&rds, 3)
            .await
            .err()
            .unwrap_or_else(|| panic!("replicas of an unknown policy are refused"));

        assert_eq!(error.kind(), ErrorKind::Invalid);
    }
}
