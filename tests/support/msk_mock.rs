//! A mocked MSK cluster with one topic whose partition count the demo watches grow.
//!
//! No emulator implements MSK's topic operations (moto answers `DescribeTopic`, `ListTopics`,
//! `UpdateTopic` and `UpdateBrokerCount` with 500), so this client never reaches the network:
//! `aws-smithy-mocks` answers it in process with outputs shaped after the MSK API reference.
//! The answers share one partition count: `UpdateTopic` sets it, `DescribeTopic` and
//! `ListTopics` report it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::describe_cluster_v2::DescribeClusterV2Output;
use aws_sdk_kafka::operation::describe_topic::DescribeTopicOutput;
use aws_sdk_kafka::operation::list_topics::ListTopicsOutput;
use aws_sdk_kafka::operation::update_topic::UpdateTopicOutput;
use aws_sdk_kafka::types::{
    BrokerNodeGroupInfo, Cluster, ClusterState, ClusterType, Provisioned, TopicInfo, TopicState,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

/// The cluster's broker type: 1000 partition replicas per broker in MSK's best practices.
pub const BROKER_TYPE: &str = "kafka.m5.large";
/// The cluster's brokers, one in each of its three Availability Zones.
pub const BROKERS: i32 = 3;
/// Every topic's replication factor.
pub const REPLICATION: i32 = 3;
/// The cluster's other topic and its partitions, so that the per-broker limit counts them.
pub const OTHER_TOPIC: (&str, i32) = ("payments", 100);

/// An `ACTIVE` provisioned cluster of [`BROKERS`] [`BROKER_TYPE`] brokers holding the topic
/// and [`OTHER_TOPIC`], every topic `ACTIVE` and replicated [`REPLICATION`] times. An update
/// completes at once: the topic is `ACTIVE` again by the next call.
pub struct MockedTopic {
    topic: Arc<Topic>,
    client: Client,
}

/// What the rules answer from.
struct Topic {
    cluster_arn: String,
    name: String,
    partitions: AtomicU32,
}

impl MockedTopic {
    /// The topic `topic` with `partitions` partitions on the cluster `cluster_arn`; a request
    /// for another cluster or topic matches no rule and panics.
    pub fn new(cluster_arn: &str, topic: &str, partitions: u32) -> Self {
        let topic = Arc::new(Topic {
            cluster_arn: cluster_arn.to_owned(),
            name: topic.to_owned(),
            partitions: AtomicU32::new(partitions),
        });
        let (matches, answers) = (topic.clone(), topic.clone());
        let cluster = mock!(Client::describe_cluster_v2)
            .match_requests(move |request| matches.on(request.cluster_arn()))
            .then_output(move || answers.cluster());
        let (matches, answers) = (topic.clone(), topic.clone());
        let listed = mock!(Client::list_topics)
            .match_requests(move |request| matches.on(request.cluster_arn()))
            .then_output(move || answers.listed());
        let (matches, answers) = (topic.clone(), topic.clone());
        let described = mock!(Client::describe_topic)
            .match_requests(move |request| matches.is(request.cluster_arn(), request.topic_name()))
            .then_output(move || answers.described());
        let (matches, answers) = (topic.clone(), topic.clone());
        let updated = mock!(Client::update_topic)
            .match_requests(move |request| matches.is(request.cluster_arn(), request.topic_name()))
            .then_compute_output(move |request| {
                let asked = request
                    .partition_count()
                    .and_then(|asked| u32::try_from(asked).ok())
                    .expect("UpdateTopic with a partitionCount");
                answers.partitions.store(asked, Ordering::SeqCst);
                answers.updated()
            });
        let client = mock_client!(
            aws_sdk_kafka,
            RuleMode::MatchAny,
            [&cluster, &listed, &described, &updated]
        );
        Self { topic, client }
    }

    /// A client whose MSK calls this mock answers.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The topic's partition count now.
    pub fn partitions(&self) -> u32 {
        self.topic.partitions.load(Ordering::SeqCst)
    }
}

impl Topic {
    /// Whether a request names this topic's cluster.
    fn on(&self, cluster_arn: Option<&str>) -> bool {
        cluster_arn == Some(self.cluster_arn.as_str())
    }

    /// Whether a request names this topic.
    fn is(&self, cluster_arn: Option<&str>, topic: Option<&str>) -> bool {
        self.on(cluster_arn) && topic == Some(self.name.as_str())
    }

    /// The ARN of the cluster's topic `name`: `arn:aws:kafka:REGION:ACCOUNT:topic/CLUSTER/UUID/NAME`.
    fn arn(&self, name: &str) -> String {
        let cluster = self.cluster_arn.replacen(":cluster/", ":topic/", 1);
        format!("{cluster}/{name}")
    }

    fn count(&self) -> i32 {
        i32::try_from(self.partitions.load(Ordering::SeqCst)).expect("a count within i32")
    }

    /// `DescribeClusterV2`.
    fn cluster(&self) -> DescribeClusterV2Output {
        let nodes = BrokerNodeGroupInfo::builder()
            .instance_type(BROKER_TYPE)
            .client_subnets("subnet-0a")
            .client_subnets("subnet-0b")
            .client_subnets("subnet-0c")
            .build();
        let info = Cluster::builder()
            .cluster_arn(&self.cluster_arn)
            .cluster_type(ClusterType::Provisioned)
            .state(ClusterState::Active)
            .current_version("K3AEGXETSR30VB")
            .provisioned(
                Provisioned::builder()
                    .broker_node_group_info(nodes)
                    .number_of_broker_nodes(BROKERS)
                    .build(),
            )
            .build();
        DescribeClusterV2Output::builder()
            .cluster_info(info)
            .build()
    }

    /// `ListTopics`: this topic and [`OTHER_TOPIC`], on one page.
    fn listed(&self) -> ListTopicsOutput {
        let info = |name: &str, partitions| {
            TopicInfo::builder()
                .topic_arn(self.arn(name))
                .topic_name(name)
                .partition_count(partitions)
                .replication_factor(REPLICATION)
                .out_of_sync_replica_count(0)
                .build()
        };
        let (other, other_partitions) = OTHER_TOPIC;
        ListTopicsOutput::builder()
            .topics(info(&self.name, self.count()))
            .topics(info(other, other_partitions))
            .build()
    }

    /// `DescribeTopic`.
    fn described(&self) -> DescribeTopicOutput {
        DescribeTopicOutput::builder()
            .topic_arn(self.arn(&self.name))
            .topic_name(&self.name)
            .partition_count(self.count())
            .replication_factor(REPLICATION)
            .status(TopicState::Active)
            .build()
    }

    /// `UpdateTopic`: the update has started.
    fn updated(&self) -> UpdateTopicOutput {
        UpdateTopicOutput::builder()
            .topic_arn(self.arn(&self.name))
            .topic_name(&self.name)
            .status(TopicState::Updating)
            .build()
    }
}
