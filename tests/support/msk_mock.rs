//! A mocked MSK cluster with one topic whose partition count, and brokers whose count, the demo
//! watches grow.
//!
//! No emulator implements MSK's topic and broker-count operations (moto answers `DescribeTopic`,
//! `ListTopics`, `UpdateTopic` and `UpdateBrokerCount` with 500), so this client never reaches
//! the network: `aws-smithy-mocks` answers it in process with outputs shaped after the MSK API
//! reference. The answers share one state: `UpdateTopic` sets the partition count, which
//! `DescribeTopic` and `ListTopics` report; `UpdateBrokerCount` starts an operation that keeps
//! the cluster `UPDATING` (`DescribeClusterV2` names it, `DescribeClusterOperationV2` reports its
//! step) for [`BROKER_UPDATE_MINUTES`] of [`MockedCluster::advance`], then the cluster is
//! `ACTIVE` again with the new broker count and a new `CurrentVersion`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::describe_cluster_operation_v2::DescribeClusterOperationV2Output;
use aws_sdk_kafka::operation::describe_cluster_v2::DescribeClusterV2Output;
use aws_sdk_kafka::operation::describe_topic::DescribeTopicOutput;
use aws_sdk_kafka::operation::list_topics::ListTopicsOutput;
use aws_sdk_kafka::operation::update_broker_count::UpdateBrokerCountOutput;
use aws_sdk_kafka::operation::update_topic::UpdateTopicOutput;
use aws_sdk_kafka::types::{
    BrokerNodeGroupInfo, Cluster, ClusterOperationStep, ClusterOperationV2,
    ClusterOperationV2Provisioned, ClusterState, ClusterType, Provisioned, TopicInfo, TopicState,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

/// The cluster's broker type: 1000 partition replicas per broker in MSK's best practices.
pub const BROKER_TYPE: &str = "kafka.m5.large";
/// The cluster's brokers at first, one in each of its three Availability Zones.
pub const BROKERS: u32 = 3;
/// Every topic's replication factor.
pub const REPLICATION: i32 = 3;
/// The cluster's other topic and its partitions, so that the per-broker limit counts them.
pub const OTHER_TOPIC: (&str, i32) = ("payments", 100);
/// Minutes ([`MockedCluster::advance`] calls) a broker-count update takes to complete.
pub const BROKER_UPDATE_MINUTES: u32 = 3;

/// An `ACTIVE` provisioned cluster of [`BROKERS`] [`BROKER_TYPE`] brokers over three
/// Availability Zones, holding the topic and [`OTHER_TOPIC`], every topic `ACTIVE` and
/// replicated [`REPLICATION`] times. A topic update completes at once: the topic is `ACTIVE`
/// again by the next call; a broker-count update takes [`BROKER_UPDATE_MINUTES`].
pub struct MockedCluster {
    topic: Arc<Topic>,
    client: Client,
}

/// What the rules answer from.
struct Topic {
    cluster_arn: String,
    name: String,
    partitions: AtomicU32,
    brokers: Mutex<Brokers>,
}

/// The cluster's brokers and the broker-count update in progress, if one is.
struct Brokers {
    count: u32,
    /// Bumped as each update completes.
    version: u32,
    /// The count asked for, and the minutes left until it is reached.
    update: Option<(u32, u32)>,
}

impl MockedCluster {
    /// The cluster `cluster_arn` with the topic `topic` of `partitions` partitions; a request
    /// for another cluster or topic matches no rule and panics.
    pub fn new(cluster_arn: &str, topic: &str, partitions: u32) -> Self {
        let topic = Arc::new(Topic {
            cluster_arn: cluster_arn.to_owned(),
            name: topic.to_owned(),
            partitions: AtomicU32::new(partitions),
            brokers: Mutex::new(Brokers {
                count: BROKERS,
                version: 0,
                update: None,
            }),
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
        let (matches, answers) = (topic.clone(), topic.clone());
        let grown = mock!(Client::update_broker_count)
            .match_requests(move |request| matches.on(request.cluster_arn()))
            .then_compute_output(move |request| {
                let asked = request
                    .target_number_of_broker_nodes()
                    .and_then(|asked| u32::try_from(asked).ok())
                    .expect("UpdateBrokerCount with a targetNumberOfBrokerNodes");
                answers.start_update(request.current_version(), asked)
            });
        let (matches, answers) = (topic.clone(), topic.clone());
        let operation = mock!(Client::describe_cluster_operation_v2)
            .match_requests(move |request| {
                request.cluster_operation_arn() == Some(matches.operation_arn().as_str())
            })
            .then_output(move || answers.operation());
        let client = mock_client!(
            aws_sdk_kafka,
            RuleMode::MatchAny,
            [&cluster, &listed, &described, &updated, &grown, &operation]
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

    /// The cluster's broker count now, and the count a broker-count update in progress is
    /// reaching, if one is.
    pub fn brokers(&self) -> (u32, Option<u32>) {
        let brokers = self.topic.brokers();
        (brokers.count, brokers.update.map(|(to, _)| to))
    }

    /// One minute passes: a broker-count update in progress comes a minute closer to its end,
    /// and at its end the cluster has the new count and is `ACTIVE` again.
    pub fn advance(&self) {
        let mut brokers = self.topic.brokers();
        if let Some((to, left)) = brokers.update {
            if left <= 1 {
                brokers.count = to;
                brokers.version += 1;
                brokers.update = None;
            } else {
                brokers.update = Some((to, left - 1));
            }
        }
    }
}

impl Topic {
    fn brokers(&self) -> std::sync::MutexGuard<'_, Brokers> {
        self.brokers.lock().expect("the mocked brokers' lock")
    }

    /// The cluster's `CurrentVersion`, which changes as each update completes.
    fn version(&self) -> String {
        format!("K3AEGXETSR30V{}", self.brokers().version)
    }

    /// The ARN of the cluster's broker-count operation (one at a time).
    fn operation_arn(&self) -> String {
        let cluster = self
            .cluster_arn
            .replacen(":cluster/", ":cluster-operation/", 1);
        format!("{cluster}/broker-count-{}", self.brokers().version)
    }

    /// `UpdateBrokerCount` from `version` to `asked` brokers: refused unless the cluster is
    /// `ACTIVE` at that version, as MSK refuses it.
    fn start_update(&self, version: Option<&str>, asked: u32) -> UpdateBrokerCountOutput {
        assert_eq!(
            version,
            Some(self.version().as_str()),
            "UpdateBrokerCount at the cluster's CurrentVersion"
        );
        let arn = self.operation_arn();
        let mut brokers = self.brokers();
        assert!(
            brokers.update.is_none(),
            "UpdateBrokerCount while another operation runs"
        );
        assert!(
            asked > brokers.count,
            "UpdateBrokerCount never lowers the count here"
        );
        brokers.update = Some((asked, BROKER_UPDATE_MINUTES));
        UpdateBrokerCountOutput::builder()
            .cluster_arn(&self.cluster_arn)
            .cluster_operation_arn(arn)
            .build()
    }

    /// `DescribeClusterOperationV2` of the update in progress: its step, by the minutes left.
    fn operation(&self) -> DescribeClusterOperationV2Output {
        let left = self.brokers().update.map_or(0, |(_, left)| left);
        let mut steps = ClusterOperationV2Provisioned::builder().operation_steps(
            ClusterOperationStep::builder()
                .step_name("INITIALIZE_UPDATE")
                .build(),
        );
        if left < BROKER_UPDATE_MINUTES {
            steps = steps.operation_steps(
                ClusterOperationStep::builder()
                    .step_name("UPDATE_BROKER_COUNT")
                    .build(),
            );
        }
        DescribeClusterOperationV2Output::builder()
            .cluster_operation_info(
                ClusterOperationV2::builder()
                    .operation_arn(self.operation_arn())
                    .operation_type("INCREASE_BROKER_COUNT")
                    .operation_state("UPDATE_IN_PROGRESS")
                    .provisioned(steps.build())
                    .build(),
            )
            .build()
    }

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

    /// `DescribeClusterV2`: `UPDATING` with the operation's ARN while a broker-count update
    /// runs, with the broker count it started from.
    fn cluster(&self) -> DescribeClusterV2Output {
        let nodes = BrokerNodeGroupInfo::builder()
            .instance_type(BROKER_TYPE)
            .client_subnets("subnet-0a")
            .client_subnets("subnet-0b")
            .client_subnets("subnet-0c")
            .build();
        let (version, operation) = (self.version(), self.operation_arn());
        let brokers = self.brokers();
        let mut info = Cluster::builder()
            .cluster_arn(&self.cluster_arn)
            .cluster_type(ClusterType::Provisioned)
            .current_version(version)
            .provisioned(
                Provisioned::builder()
                    .broker_node_group_info(nodes)
                    .number_of_broker_nodes(
                        i32::try_from(brokers.count).expect("a count within i32"),
                    )
                    .build(),
            );
        info = match brokers.update {
            Some(_) => info
                .state(ClusterState::Updating)
                .active_operation_arn(operation),
            None => info.state(ClusterState::Active),
        };
        DescribeClusterV2Output::builder()
            .cluster_info(info.build())
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
