//! MSK provisioned clusters: a topic's partition count and a cluster's broker count.
//!
//! # Partitions
//!
//! A topic's capacity is its partition count, read with `DescribeTopic` and grown with
//! `UpdateTopic`. Kafka cannot remove partitions, so a lower count is refused before any call.
//! The resource's maximum comes from MSK's recommended partitions per broker for the cluster's
//! broker type ([`PARTITIONS_PER_BROKER`], leader and follower replicas counted): the cluster's
//! brokers × that limit, less the replicas of every other topic (`ListTopics`), divided by the
//! topic's replication factor. A broker type without a row keeps the topic where it is. The
//! topics of one cluster share that room: each topic's capacity reports it as a
//! [`Share`], so that the engine's guards grant several topics' growth in one pass within it.
//!
//! # Brokers
//!
//! A cluster's capacity is its broker count (`DescribeClusterV2`), which only grows: removing
//! brokers needs their partitions moved off first, which capstan does not do. MSK changes it
//! only in multiples of the cluster's Availability Zones (one client subnet per zone), with
//! `UpdateBrokerCount` and the cluster's `CurrentVersion`. MSK runs one operation at a time: a
//! cluster that is not `ACTIVE` is busy, and the operation in progress is read with
//! `DescribeClusterOperationV2` on each later evaluation until it ends.

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::describe_cluster_v2::DescribeClusterV2Output;
use aws_sdk_kafka::types::{ClusterState, TopicState};

use capstan_engine::{CurrentCapacity, Share};

use crate::count;
use crate::error::{AwsError, ErrorKind};
use crate::rate::{Category, RateLimits};

const DESCRIBE_CLUSTER: &str = "kafka:DescribeClusterV2";
const DESCRIBE_OPERATION: &str = "kafka:DescribeClusterOperationV2";
const DESCRIBE_TOPIC: &str = "kafka:DescribeTopic";
const LIST_TOPICS: &str = "kafka:ListTopics";
const UPDATE_TOPIC: &str = "kafka:UpdateTopic";
const UPDATE_BROKERS: &str = "kafka:UpdateBrokerCount";

/// MSK's recommended partitions per Standard broker, leader and follower replicas counted, by
/// broker type: the table under "Right-size your cluster: Number of partitions per Standard
/// broker" in the MSK developer guide's best practices.
pub const PARTITIONS_PER_BROKER: &[(&[&str], u32)] = &[
    (&["kafka.t3.small"], 300),
    (&["kafka.m5.large", "kafka.m5.xlarge"], 1000),
    (&["kafka.m5.2xlarge"], 2000),
    (
        &[
            "kafka.m5.4xlarge",
            "kafka.m5.8xlarge",
            "kafka.m5.12xlarge",
            "kafka.m5.16xlarge",
            "kafka.m5.24xlarge",
        ],
        4000,
    ),
    (&["kafka.m7g.large", "kafka.m7g.xlarge"], 1000),
    (&["kafka.m7g.2xlarge"], 2000),
    (
        &[
            "kafka.m7g.4xlarge",
            "kafka.m7g.8xlarge",
            "kafka.m7g.12xlarge",
            "kafka.m7g.16xlarge",
        ],
        4000,
    ),
];

/// MSK topics and clusters.
#[derive(Debug, Clone)]
pub struct MskClusters {
    client: Client,
    limits: RateLimits,
}

/// What `DescribeClusterV2` says about a provisioned cluster.
struct Cluster {
    state: String,
    current_version: String,
    brokers: u32,
    zones: u32,
    broker_type: String,
    operation: Option<String>,
}

impl MskClusters {
    /// Clusters reached through the given client, within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            limits: RateLimits::default(),
        }
    }

    /// The same clusters, reached within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The topic's partition count, which is also its minimum (partitions never decrease), its
    /// maximum under [`PARTITIONS_PER_BROKER`] (see [Partitions](MskClusters#partitions)), the
    /// room it shares with the cluster's other topics, and busy while the cluster is not
    /// `ACTIVE` or the topic is not `ACTIVE`.
    pub async fn topic(&self, cluster_arn: &str, topic: &str) -> Result<CurrentCapacity, AwsError> {
        let resource = format!("{cluster_arn}/{topic}");
        let cluster = self.cluster(cluster_arn).await?;
        self.limits
            .take(Category::MskRead, DESCRIBE_TOPIC, &resource)
            .await?;
        let described = self
            .client
            .describe_topic()
            .cluster_arn(cluster_arn)
            .topic_name(topic)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE_TOPIC, &resource, error))?;
        let partitions = count(described.partition_count());
        let replication = count(described.replication_factor()).max(1);
        let mut others = 0u64;
        let mut pages = self
            .client
            .list_topics()
            .cluster_arn(cluster_arn)
            .into_paginator()
            .send();
        self.limits
            .take(Category::MskRead, LIST_TOPICS, &resource)
            .await?;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AwsError::from_sdk(LIST_TOPICS, &resource, error))?;
            others += page
                .topics()
                .iter()
                .filter(|info| info.topic_name() != Some(topic))
                .map(|info| {
                    u64::from(count(info.partition_count()))
                        * u64::from(count(info.replication_factor()))
                })
                .sum::<u64>();
            self.limits
                .take_next_page(page.next_token(), Category::MskRead, LIST_TOPICS, &resource)
                .await?;
        }
        let (max, reason) = partition_limit(&cluster, partitions, replication, others);
        let share = (max > partitions).then(|| Share {
            pool: cluster_arn.to_owned(),
            per_unit: replication,
            room: u64::from(max - partitions) * u64::from(replication),
            what: format!("the partition replicas {cluster_arn}'s brokers may hold"),
        });
        let busy = match described.status() {
            _ if cluster.state != "ACTIVE" => Some(cluster.busy()),
            Some(TopicState::Active) | None => None,
            Some(state) => Some(format!("the topic is {}", state.as_str())),
        };
        Ok(CurrentCapacity {
            desired: partitions,
            resource_min: Some(partitions),
            resource_max: Some(max),
            resource_max_reason: Some(reason),
            busy,
            share,
            ..Default::default()
        })
    }

    /// Grows the topic to `partitions` with `UpdateTopic`. A count below the current one is
    /// refused as [`ErrorKind::Invalid`] without calling `UpdateTopic`: partitions never
    /// decrease.
    pub async fn set_partitions(
        &self,
        cluster_arn: &str,
        topic: &str,
        partitions: u32,
    ) -> Result<(), AwsError> {
        let resource = format!("{cluster_arn}/{topic}");
        self.limits
            .take(Category::MskRead, DESCRIBE_TOPIC, &resource)
            .await?;
        let now = self
            .client
            .describe_topic()
            .cluster_arn(cluster_arn)
            .topic_name(topic)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE_TOPIC, &resource, error))?;
        let current = count(now.partition_count());
        if partitions <= current {
            return Err(AwsError::new(
                UPDATE_TOPIC,
                resource,
                ErrorKind::Invalid,
                format!(
                    "the topic has {current} partitions; Kafka cannot remove partitions, so {partitions} is refused"
                ),
            ));
        }
        self.limits
            .take(Category::MskModify, UPDATE_TOPIC, &resource)
            .await?;
        tracing::info!(cluster_arn, topic, partitions, "UpdateTopic");
        self.client
            .update_topic()
            .cluster_arn(cluster_arn)
            .topic_name(topic)
            .partition_count(to_i32(UPDATE_TOPIC, &resource, partitions)?)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(UPDATE_TOPIC, resource, error))?;
        Ok(())
    }

    /// The cluster's broker count, which is also its minimum (capstan never removes brokers),
    /// in multiples of its Availability Zones, and busy while it is not `ACTIVE` (see
    /// [Brokers](MskClusters#brokers)).
    pub async fn brokers(&self, cluster_arn: &str) -> Result<CurrentCapacity, AwsError> {
        let cluster = self.cluster(cluster_arn).await?;
        let busy = if cluster.state == "ACTIVE" {
            None
        } else {
            match &cluster.operation {
                Some(arn) => Some(self.operation(cluster_arn, arn).await?),
                None => Some(cluster.busy()),
            }
        };
        Ok(CurrentCapacity {
            desired: cluster.brokers,
            resource_min: Some(cluster.brokers),
            multiple_of: Some(cluster.zones),
            busy,
            ..Default::default()
        })
    }

    /// Asks MSK for `brokers` brokers with `UpdateBrokerCount`, from the cluster's
    /// `CurrentVersion`. A count below the cluster's, or not a multiple of its Availability
    /// Zones, is refused as [`ErrorKind::Invalid`] without calling it.
    pub async fn set_brokers(&self, cluster_arn: &str, brokers: u32) -> Result<(), AwsError> {
        let cluster = self.cluster(cluster_arn).await?;
        if brokers < cluster.brokers {
            return Err(AwsError::new(
                UPDATE_BROKERS,
                cluster_arn,
                ErrorKind::Invalid,
                format!(
                    "the cluster has {} brokers; capstan never removes brokers (their partitions would have to move first), so {brokers} is refused",
                    cluster.brokers
                ),
            ));
        }
        if cluster.zones == 0 || !brokers.is_multiple_of(cluster.zones) {
            return Err(AwsError::new(
                UPDATE_BROKERS,
                cluster_arn,
                ErrorKind::Invalid,
                format!(
                    "{brokers} brokers is not a multiple of the cluster's {} Availability Zones",
                    cluster.zones
                ),
            ));
        }
        self.limits
            .take(Category::MskModify, UPDATE_BROKERS, cluster_arn)
            .await?;
        tracing::info!(cluster_arn, brokers, version = %cluster.current_version, "UpdateBrokerCount");
        let answer = self
            .client
            .update_broker_count()
            .cluster_arn(cluster_arn)
            .current_version(&cluster.current_version)
            .target_number_of_broker_nodes(to_i32(UPDATE_BROKERS, cluster_arn, brokers)?)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(UPDATE_BROKERS, cluster_arn, error))?;
        tracing::info!(
            cluster_arn,
            operation = answer.cluster_operation_arn().unwrap_or_default(),
            "broker count update started"
        );
        Ok(())
    }

    /// The provisioned cluster's state, version, brokers, zones and broker type.
    async fn cluster(&self, cluster_arn: &str) -> Result<Cluster, AwsError> {
        self.limits
            .take(Category::MskRead, DESCRIBE_CLUSTER, cluster_arn)
            .await?;
        let answer: DescribeClusterV2Output = self
            .client
            .describe_cluster_v2()
            .cluster_arn(cluster_arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE_CLUSTER, cluster_arn, error))?;
        let info = answer.cluster_info();
        let Some(provisioned) = info.and_then(|info| info.provisioned()) else {
            return Err(AwsError::new(
                DESCRIBE_CLUSTER,
                cluster_arn,
                ErrorKind::Invalid,
                "not a provisioned cluster: capstan scales provisioned MSK clusters only",
            ));
        };
        let nodes = provisioned.broker_node_group_info();
        Ok(Cluster {
            state: info
                .and_then(|info| info.state())
                .map_or("UNKNOWN", ClusterState::as_str)
                .to_owned(),
            current_version: info
                .and_then(|info| info.current_version())
                .unwrap_or_default()
                .to_owned(),
            brokers: count(provisioned.number_of_broker_nodes()),
            zones: nodes.map_or(0, |nodes| {
                u32::try_from(nodes.client_subnets().len()).unwrap_or(u32::MAX)
            }),
            broker_type: nodes
                .and_then(|nodes| nodes.instance_type())
                .unwrap_or("unknown")
                .to_owned(),
            operation: info
                .and_then(|info| info.active_operation_arn())
                .map(str::to_owned),
        })
    }

    /// The operation in progress, as a busy reason: its type, state and current step.
    async fn operation(&self, cluster_arn: &str, arn: &str) -> Result<String, AwsError> {
        self.limits
            .take(Category::MskRead, DESCRIBE_OPERATION, cluster_arn)
            .await?;
        let answer = self
            .client
            .describe_cluster_operation_v2()
            .cluster_operation_arn(arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE_OPERATION, cluster_arn, error))?;
        let info = answer.cluster_operation_info();
        let step = info
            .and_then(|info| info.provisioned())
            .and_then(|provisioned| provisioned.operation_steps().last())
            .and_then(|step| step.step_name())
            .map(|name| format!(", step {name}"))
            .unwrap_or_default();
        Ok(format!(
            "operation {} {} is {}{step}",
            info.and_then(|info| info.operation_type())
                .unwrap_or("of unknown type"),
            arn,
            info.and_then(|info| info.operation_state())
                .unwrap_or("in no reported state"),
        ))
    }
}

impl Cluster {
    /// Why a cluster that is not `ACTIVE` is busy.
    fn busy(&self) -> String {
        format!("the cluster is {}, not ACTIVE", self.state)
    }
}

/// The most partitions the topic may have, and the table row that gave it: with `others`
/// partition replicas in the other topics, the topic's `replication` factor and its
/// `partitions` now. Never below `partitions`: the limit only stops growth.
fn partition_limit(
    cluster: &Cluster,
    partitions: u32,
    replication: u32,
    others: u64,
) -> (u32, String) {
    let Some((_, per_broker)) = PARTITIONS_PER_BROKER
        .iter()
        .find(|(types, _)| types.contains(&cluster.broker_type.as_str()))
    else {
        return (
            partitions,
            format!(
                "MSK's partitions-per-broker table has no row for {}, so capstan does not grow its topics",
                cluster.broker_type
            ),
        );
    };
    let total = u64::from(*per_broker) * u64::from(cluster.brokers);
    let room = total.saturating_sub(others) / u64::from(replication);
    let max = u32::try_from(room).unwrap_or(u32::MAX).max(partitions);
    (
        max,
        format!(
            "the {} row of MSK's partitions-per-broker table allows {per_broker} partitions per broker, replicas counted: {} brokers hold {total}, other topics use {others}, and this topic has replication factor {replication}",
            cluster.broker_type, cluster.brokers
        ),
    )
}

/// `value` as the SDK's `i32`, or an [`ErrorKind::Invalid`] error.
fn to_i32(operation: &'static str, resource: &str, value: u32) -> Result<i32, AwsError> {
    i32::try_from(value).map_err(|_| {
        AwsError::new(
            operation,
            resource,
            ErrorKind::Invalid,
            format!("{value} is too large"),
        )
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_kafka::operation::describe_cluster_operation_v2::DescribeClusterOperationV2Output;
    use aws_sdk_kafka::operation::describe_topic::DescribeTopicOutput;
    use aws_sdk_kafka::operation::list_topics::ListTopicsOutput;
    use aws_sdk_kafka::operation::update_broker_count::UpdateBrokerCountOutput;
    use aws_sdk_kafka::operation::update_topic::UpdateTopicOutput;
    use aws_sdk_kafka::types::{
        BrokerNodeGroupInfo, Cluster as ClusterInfo, ClusterOperationStep, ClusterOperationV2,
        ClusterOperationV2Provisioned, Provisioned, TopicInfo,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    const ARN: &str = "arn:aws:kafka:eu-west-2:123456789012:cluster/orders/3f1c2a9e-7b4d-4e21-9c0a-5d8e6f7a1b2c-3";
    const VERSION: &str = "K3AEGXETSR30VB";
    const OPERATION: &str =
        "arn:aws:kafka:eu-west-2:123456789012:cluster-operation/orders/3f1c2a9e/7e2f";

    /// DescribeClusterV2 for a provisioned cluster of `brokers` `broker_type` brokers over three
    /// Availability Zones, in `state`, as the MSK API reference shapes it.
    fn cluster(state: ClusterState, broker_type: &str, brokers: i32) -> Rule {
        let broker_type = broker_type.to_owned();
        mock!(Client::describe_cluster_v2)
            .match_requests(|request| request.cluster_arn() == Some(ARN))
            .sequence()
            .output(move || {
                let nodes = BrokerNodeGroupInfo::builder()
                    .instance_type(&broker_type)
                    .client_subnets("subnet-0a")
                    .client_subnets("subnet-0b")
                    .client_subnets("subnet-0c")
                    .build();
                let active = (state != ClusterState::Active).then_some(OPERATION);
                DescribeClusterV2Output::builder()
                    .cluster_info(
                        ClusterInfo::builder()
                            .cluster_arn(ARN)
                            .state(state.clone())
                            .current_version(VERSION)
                            .set_active_operation_arn(active.map(str::to_owned))
                            .provisioned(
                                Provisioned::builder()
                                    .broker_node_group_info(nodes)
                                    .number_of_broker_nodes(brokers)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
            .repeatedly()
            .build()
    }

    fn topic(partitions: i32) -> Rule {
        mock!(Client::describe_topic)
            .sequence()
            .output(move || {
                DescribeTopicOutput::builder()
                    .topic_name("order-events")
                    .partition_count(partitions)
                    .replication_factor(3)
                    .status(TopicState::Active)
                    .build()
            })
            .repeatedly()
            .build()
    }

    /// ListTopics: the topic itself (12 partitions) and another of 100, both replicated 3 times.
    fn topics() -> Rule {
        let info = |name: &str, partitions| {
            TopicInfo::builder()
                .topic_name(name)
                .partition_count(partitions)
                .replication_factor(3)
                .build()
        };
        mock!(Client::list_topics).then_output(move || {
            ListTopicsOutput::builder()
                .topics(info("order-events", 12))
                .topics(info("payments", 100))
                .build()
        })
    }

    /// The topic `order-events` (12 partitions) read on a cluster of 3 `broker_type` brokers.
    async fn read_topic(broker_type: &str) -> CurrentCapacity {
        let rules = [
            cluster(ClusterState::Active, broker_type, 3),
            topic(12),
            topics(),
        ];
        let client = mock_client!(aws_sdk_kafka, RuleMode::MatchAny, &rules);
        MskClusters::new(client)
            .topic(ARN, "order-events")
            .await
            .expect("reading the topic")
    }

    #[tokio::test]
    async fn a_topic_reads_its_partitions_and_the_per_broker_limit_mocked() {
        let current = read_topic("kafka.m5.large").await;

        // 3 brokers × 1000 = 3000 replicas; payments holds 300; (3000 - 300) / 3 = 900.
        assert_eq!((current.desired, current.resource_max), (12, Some(900)));
        assert_eq!(
            current.resource_max_reason.as_deref(),
            Some(
                "the kafka.m5.large row of MSK's partitions-per-broker table allows 1000 partitions per broker, replicas counted: 3 brokers hold 3000, other topics use 300, and this topic has replication factor 3"
            )
        );
        assert_eq!(current.busy, None);
        assert_eq!(current.resource_min, Some(12), "partitions never decrease");
        // The 888 partitions more it may take are 2664 replicas, shared with the other topics.
        assert_eq!(
            current.share,
            Some(Share {
                pool: ARN.to_owned(),
                per_unit: 3,
                room: 2664,
                what: format!("the partition replicas {ARN}'s brokers may hold"),
            })
        );
    }

    #[tokio::test]
    async fn a_broker_type_without_a_row_never_grows_mocked() {
        let current = read_topic("express.m7g.large").await;

        assert_eq!(current.resource_max, Some(12));
        assert_eq!(current.share, None);
    }

    #[tokio::test]
    async fn partitions_grow_and_never_decrease_mocked() {
        let update = mock!(Client::update_topic)
            .match_requests(|request| {
                request.partition_count() == Some(24)
                    && request.topic_name() == Some("order-events")
            })
            .then_output(|| {
                UpdateTopicOutput::builder()
                    .topic_name("order-events")
                    .status(TopicState::Updating)
                    .build()
            });
        let rules = [topic(12), update.clone()];
        let client = mock_client!(aws_sdk_kafka, RuleMode::MatchAny, &rules);
        let msk = MskClusters::new(client);

        let fewer = msk.set_partitions(ARN, "order-events", 8).await;
        let same = msk.set_partitions(ARN, "order-events", 12).await;
        assert_eq!(
            update.num_calls(),
            0,
            "no UpdateTopic for fewer or equal partitions"
        );
        let fewer = fewer.expect_err("fewer partitions are refused");
        assert_eq!(fewer.kind(), ErrorKind::Invalid);
        assert!(
            fewer.to_string().contains("Kafka cannot remove partitions"),
            "{fewer}"
        );
        assert!(same.is_err());

        msk.set_partitions(ARN, "order-events", 24)
            .await
            .expect("growing to 24");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_cluster_reads_brokers_in_multiples_of_its_zones_mocked() {
        let rules = [cluster(ClusterState::Active, "kafka.m5.large", 6)];
        let client = mock_client!(aws_sdk_kafka, RuleMode::MatchAny, &rules);

        let current = MskClusters::new(client)
            .brokers(ARN)
            .await
            .expect("reading the cluster");

        assert_eq!(
            (current.desired, current.multiple_of, current.busy),
            (6, Some(3), None)
        );
        assert_eq!(current.resource_min, Some(6), "brokers never decrease");
    }

    #[tokio::test]
    async fn an_operation_in_progress_is_followed_and_keeps_the_cluster_busy_mocked() {
        let operation = mock!(Client::describe_cluster_operation_v2)
            .match_requests(|request| request.cluster_operation_arn() == Some(OPERATION))
            .then_output(|| {
                let steps = ClusterOperationV2Provisioned::builder()
                    .operation_steps(
                        ClusterOperationStep::builder()
                            .step_name("INITIALIZE_UPDATE")
                            .build(),
                    )
                    .operation_steps(
                        ClusterOperationStep::builder()
                            .step_name("UPDATE_BROKER_COUNT")
                            .build(),
                    )
                    .build();
                DescribeClusterOperationV2Output::builder()
                    .cluster_operation_info(
                        ClusterOperationV2::builder()
                            .operation_arn(OPERATION)
                            .operation_type("INCREASE_BROKER_COUNT")
                            .operation_state("UPDATE_IN_PROGRESS")
                            .provisioned(steps)
                            .build(),
                    )
                    .build()
            });
        let rules = [
            cluster(ClusterState::Updating, "kafka.m5.large", 3),
            operation.clone(),
        ];
        let client = mock_client!(aws_sdk_kafka, RuleMode::MatchAny, &rules);

        let current = MskClusters::new(client)
            .brokers(ARN)
            .await
            .expect("reading the cluster");

        assert_eq!(operation.num_calls(), 1);
        assert_eq!(
            current.busy,
            Some(format!(
                "operation INCREASE_BROKER_COUNT {OPERATION} is UPDATE_IN_PROGRESS, step UPDATE_BROKER_COUNT"
            ))
        );
    }

    #[tokio::test]
    async fn broker_count_is_updated_from_the_current_version_in_whole_zones_mocked() {
        let update = mock!(Client::update_broker_count)
            .match_requests(|request| {
                request.current_version() == Some(VERSION)
                    && request.target_number_of_broker_nodes() == Some(6)
            })
            .then_output(|| {
                UpdateBrokerCountOutput::builder()
                    .cluster_arn(ARN)
                    .cluster_operation_arn(OPERATION)
                    .build()
            });
        let rules = [
            cluster(ClusterState::Active, "kafka.m5.large", 3),
            update.clone(),
        ];
        let client = mock_client!(aws_sdk_kafka, RuleMode::MatchAny, &rules);
        let msk = MskClusters::new(client);

        let uneven = msk.set_brokers(ARN, 4).await.expect_err("4 is refused");
        assert_eq!(uneven.kind(), ErrorKind::Invalid);
        let fewer = msk
            .set_brokers(ARN, 0)
            .await
            .expect_err("fewer brokers are refused");
        assert_eq!(fewer.kind(), ErrorKind::Invalid);
        assert!(
            fewer.to_string().contains("capstan never removes brokers"),
            "{fewer}"
        );
        assert_eq!(update.num_calls(), 0);

        msk.set_brokers(ARN, 6).await.expect("6 brokers");
        assert_eq!(update.num_calls(), 1);
    }
}
