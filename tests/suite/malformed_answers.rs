//! Malformed AWS answers, each in a runner pass over several resources against moto: the
//! resource the answer is about fails with an error naming the operation, the resource and
//! what was wrong with the answer, nothing is changed on it, and the other resources of the pass
//! proceed. The table in `docs/testing.md` (Hostile input, AWS answers) lists them.
//!
//! Where moto can hold the bad data (a group whose desired capacity is outside its bounds, a
//! state record written by a newer version), it does. The answers no emulator gives are
//! rewritten on their way from moto to the SDK (`capstan_tests::tamper`, tests named
//! `_mocked`), or, for a GetMetricData answer giving one minute two values, mocked.
//! Run with `scripts/with-emulator.sh cargo nextest run -p capstan-tests --test suite malformed_answers::`.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataInput, GetMetricDataOutput};
use aws_sdk_cloudwatch::types::{MetricDataResult, StatusCode};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{DateTime, Utc};

use capstan_aws::{Aws, CloudWatchReader};
use capstan_engine::model::Target;
use capstan_policy::{PolicySet, Source};
use capstan_runner::ports::{Lease, MetricSource, StateStore};
use capstan_runner::{Limits, Mode, Outcome, Ports, Status, evaluate};
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::tamper::{Tamper, tampered};
use capstan_tests::{sdk_config, unique};

/// The CPU every resource shows for the last six minutes: its policy adds 2 above 70.
const BUSY_CPU: f64 = 90.0;

/// Resources in the emulator, each at 2 with CPU at [`BUSY_CPU`] and a policy adding 2, and a
/// state table.
struct Scene {
    config: SdkConfig,
    ecs: aws_sdk_ecs::Client,
    asg: aws_sdk_autoscaling::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    now: DateTime<Utc>,
    sources: Vec<Source>,
}

impl Scene {
    async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("answers");
        capstan_aws::create_table(&dynamodb, &table)
            .await
            .expect("creating the state table");
        Self {
            ecs: aws_sdk_ecs::Client::new(&config),
            asg: aws_sdk_autoscaling::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            dynamodb,
            config,
            table,
            now: Utc::now(),
            sources: Vec::new(),
        }
    }

    /// Writes [`BUSY_CPU`] for the window's minutes and a policy named `name` on `target`,
    /// reading that metric.
    async fn busy(&mut self, name: &str, target: &str, metric: MetricId) {
        let points: Vec<_> = fleet::window_minutes(self.now, 6)
            .into_iter()
            .map(|at| (at, BUSY_CPU))
            .collect();
        fleet::put_metric(&self.cloudwatch, &metric, &points).await;
        let dimensions: Vec<String> = metric
            .dimensions
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        let text = format!(
            "version: 1
name: {name}
target: {target}
capacity: {{ min: 1, max: 10 }}
metrics:
  cpu: {{ namespace: {}, name: CPUUtilization, dimensions: {{ {} }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: 70, for: 5m }}, add: 2 }}
",
            metric.namespace,
            dimensions.join(", ")
        );
        self.sources.push(Source {
            path: format!("policies/{name}.yaml"),
            text,
        });
    }

    /// A new scene with a busy service in one new cluster for each of `names` (each made
    /// unique): the scene, the cluster and the services' names.
    async fn with_services<const N: usize>(names: [&str; N]) -> (Self, String, [String; N]) {
        let mut scene = Self::new().await;
        let cluster = unique("answers");
        let services = names.map(unique);
        for service in &services {
            scene.service(&cluster, service).await;
        }
        (scene, cluster, services)
    }

    /// An ECS service of `cluster` at 2 tasks, busy, with its policy (named as the service).
    async fn service(&mut self, cluster: &str, service: &str) {
        fleet::steady_ecs_service(&self.ecs, cluster, service, 2).await;
        let metric = MetricId {
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: vec![
                ("ClusterName".into(), cluster.into()),
                ("ServiceName".into(), service.into()),
            ],
        };
        let target = format!("{{ ecs_service: {{ cluster: {cluster}, service: {service} }} }}");
        self.busy(service, &target, metric).await;
    }

    /// An Auto Scaling group of bounds 1..=5 at 2, busy, with its policy (named as the group).
    async fn group(&mut self, name: &str) -> Target {
        fleet::autoscaling_group(&self.asg, name, 1, 5, 2).await;
        let metric = MetricId {
            namespace: "AWS/EC2".into(),
            name: "CPUUtilization".into(),
            dimensions: vec![("AutoScalingGroupName".into(), name.into())],
        };
        let target = format!("{{ autoscaling_group: {{ name: {name} }} }}");
        self.busy(name, &target, metric).await;
        Target::AutoscalingGroup { name: name.into() }
    }

    /// One acting pass over every policy, reaching AWS through `config`: the outcomes by
    /// policy name.
    async fn pass(&self, config: &SdkConfig) -> HashMap<String, Outcome> {
        let metrics = CloudWatchReader::new(aws_sdk_cloudwatch::Client::new(config));
        self.pass_reading(config, &metrics).await
    }

    /// [`Scene::pass`], reading metrics through `metrics`.
    async fn pass_reading(
        &self,
        config: &SdkConfig,
        metrics: &(impl MetricSource + Sync),
    ) -> HashMap<String, Outcome> {
        let set = PolicySet::from_sources(self.sources.clone()).expect("valid policies");
        let policies: Vec<_> = set.policies().iter().collect();
        let aws = Aws::new(config, &self.table);
        let ports = Ports {
            metrics,
            capacity: &aws,
            state: aws.state(),
            holder: "malformed-answers",
            clock: &|| self.now,
            limits: Limits::default(),
        };
        let pass = evaluate(&policies, &policies, &ports, self.now, Mode::Act).await;
        pass.outcomes
            .into_iter()
            .map(|outcome| (outcome.policy.clone(), outcome))
            .collect()
    }

    async fn service_desired(&self, cluster: &str, service: &str) -> i32 {
        fleet::ecs_desired(&self.ecs, cluster, service).await
    }

    async fn group_desired(&self, name: &str) -> i32 {
        fleet::asg_desired(&self.asg, name).await
    }

    /// Whether another evaluation can take `target`'s lease at once: the pass gave it back.
    async fn lease_free(&self, target: &Target) -> bool {
        let aws = Aws::new(&self.config, &self.table);
        let lease = aws.state().acquire_lease(target, "next-evaluation").await;
        lease.expect("taking the lease") == Lease::Acquired
    }

    /// The state item of `target` as stored, attribute by attribute.
    async fn state_item(&self, target: &Target) -> HashMap<String, AttributeValue> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(state_key(target)))
            .key("sk", AttributeValue::S("state".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        item.item.unwrap_or_default()
    }
}

/// The ECS service `service` of `cluster`.
fn ecs(cluster: &str, service: &str) -> Target {
    Target::EcsService {
        cluster: cluster.into(),
        service: service.into(),
    }
}

/// The partition key of `target`'s items in the state table.
fn state_key(target: &Target) -> String {
    match target {
        Target::EcsService { cluster, service } => {
            format!("resource#ecs_service#{cluster}/{service}")
        }
        Target::AutoscalingGroup { name } => format!("resource#autoscaling_group#{name}"),
        other => unreachable!("no {other:?} here"),
    }
}

/// The detail of a failed outcome; panics on any other.
fn failure(outcome: &Outcome) -> &str {
    match &outcome.result {
        Status::Failed(why) => why,
        other => panic!("{} did not fail: {other:?}", outcome.policy),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_listed_without_desired_count_is_not_scaled_and_the_others_are_mocked() {
    let (scene, cluster, [web, api]) = Scene::with_services(["web", "api"]).await;
    let without = web.clone();
    let tamper = Tamper::new("DescribeServices", &cluster, move |body| {
        let mut answer: serde_json::Value = serde_json::from_slice(body).expect("JSON");
        for service in answer["services"].as_array_mut().expect("services") {
            if service["serviceName"] == without.as_str() {
                service
                    .as_object_mut()
                    .expect("a service")
                    .remove("desiredCount");
            }
        }
        serde_json::to_vec(&answer).expect("JSON")
    });

    let outcomes = scene.pass(&tampered(&scene.config, &[&tamper])).await;

    assert_eq!(
        tamper.rewritten(),
        1,
        "one DescribeServices of both services"
    );
    assert_eq!(
        failure(&outcomes[&web]),
        format!(
            "ecs:DescribeServices on {cluster}/{web} failed: Malformed: the answer lists the service without its desiredCount"
        )
    );
    assert_eq!(outcomes[&api].result, Status::Applied);
    assert_eq!(scene.service_desired(&cluster, &web).await, 2, "untouched");
    assert_eq!(scene.service_desired(&cluster, &api).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_describe_services_answer_cut_short_fails_the_services_of_that_call_only_mocked() {
    let mut scene = Scene::new().await;
    let (cut, whole) = (unique("cut"), unique("whole"));
    let (web, api) = (unique("web"), unique("api"));
    scene.service(&cut, &web).await;
    scene.service(&whole, &api).await;
    let tamper = Tamper::truncate("DescribeServices", &cut);

    let outcomes = scene.pass(&tampered(&scene.config, &[&tamper])).await;

    assert_eq!(tamper.rewritten(), 1, "not tried again");
    let why = failure(&outcomes[&web]);
    assert!(
        why.starts_with(&format!(
            "ecs:DescribeServices on {cut}/{web} failed: Malformed: the answer could not be read: "
        )) && why.contains("; received HTTP 200 with "),
        "{why}"
    );
    assert_eq!(outcomes[&api].result, Status::Applied);
    assert_eq!(scene.service_desired(&cut, &web).await, 2, "untouched");
    assert_eq!(scene.service_desired(&whole, &api).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_whose_desired_capacity_is_outside_its_own_bounds_is_not_acted_on() {
    let mut scene = Scene::new().await;
    let (outside, inside) = (unique("outside"), unique("inside"));
    let outside_group = scene.group(&outside).await;
    scene.group(&inside).await;
    // moto sets a desired capacity above the group's MaxSize, which Auto Scaling refuses.
    scene
        .asg
        .set_desired_capacity()
        .auto_scaling_group_name(&outside)
        .desired_capacity(9)
        .send()
        .await
        .expect("SetDesiredCapacity");

    let outcomes = scene.pass(&scene.config).await;

    assert_eq!(
        failure(&outcomes[&outside]),
        format!(
            "autoscaling:DescribeAutoScalingGroups on {outside} failed: Malformed: the answer gives the group a DesiredCapacity of 9 outside its own MinSize 1 and MaxSize 5, which Auto Scaling never holds"
        )
    );
    assert_eq!(outcomes[&inside].result, Status::Applied);
    assert_eq!(scene.group_desired(&outside).await, 9, "untouched");
    assert_eq!(scene.group_desired(&inside).await, 4);
    assert!(scene.lease_free(&outside_group).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_scaling_answer_of_the_wrong_type_fails_its_groups_and_not_the_rest_mocked() {
    let mut scene = Scene::new().await;
    let cluster = unique("answers");
    let (web, api, service) = (unique("web"), unique("api"), unique("service"));
    scene.group(&web).await;
    scene.group(&api).await;
    scene.service(&cluster, &service).await;
    let tamper = Tamper::replace(
        "DescribeAutoScalingGroups",
        &web,
        "<DesiredCapacity>2</DesiredCapacity>",
        "<DesiredCapacity>two</DesiredCapacity>",
    );

    let outcomes = scene.pass(&tampered(&scene.config, &[&tamper])).await;

    assert_eq!(tamper.rewritten(), 1, "one call for both groups");
    for group in [&web, &api] {
        let why = failure(&outcomes[group]);
        assert!(
            why.starts_with(&format!(
                "autoscaling:DescribeAutoScalingGroups on {group} failed: Malformed: the answer could not be read: \
                 error parsing XML: expected (integer: `com.amazonaws.autoscaling#AutoScalingGroupDesiredCapacity`); \
                 received HTTP 200 with "
            )),
            "{why}"
        );
        assert_eq!(scene.group_desired(group).await, 2, "untouched");
    }
    assert_eq!(outcomes[&service].result, Status::Applied);
    assert_eq!(scene.service_desired(&cluster, &service).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_record_written_by_a_newer_version_is_neither_acted_on_nor_overwritten() {
    let (scene, cluster, [newer, wrong, api]) =
        Scene::with_services(["newer", "wrong", "api"]).await;
    let (newer_target, wrong_target) = (ecs(&cluster, &newer), ecs(&cluster, &wrong));
    // As a newer capstan would write it: a higher version and a field this one does not know.
    let newer_item = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(state_key(&newer_target))),
        ("sk".to_owned(), AttributeValue::S("state".into())),
        ("version".to_owned(), AttributeValue::N("2".into())),
        (
            "memory".to_owned(),
            AttributeValue::S(
                r#"{"actions":[],"forecast":{"at":"2030-01-01T00:00:00Z","capacity":9}}"#.into(),
            ),
        ),
    ]);
    // A record of the wrong type: memory as a number.
    let wrong_item = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(state_key(&wrong_target))),
        ("sk".to_owned(), AttributeValue::S("state".into())),
        ("memory".to_owned(), AttributeValue::N("4".into())),
    ]);
    for item in [&newer_item, &wrong_item] {
        scene
            .dynamodb
            .put_item()
            .table_name(&scene.table)
            .set_item(Some(item.clone()))
            .send()
            .await
            .expect("PutItem");
    }

    let outcomes = scene.pass(&scene.config).await;

    let table = &scene.table;
    assert_eq!(
        failure(&outcomes[&newer]),
        format!(
            "cannot read cooldown state, not acting: dynamodb:BatchGetItem on {table}/{} failed: Unsupported: \
             the stored state is of version 2, written by a newer capstan; this one reads versions up to 1, \
             so it does not act on the resource, nor write over that state",
            state_key(&newer_target)
        )
    );
    assert_eq!(
        failure(&outcomes[&wrong]),
        format!(
            "cannot read cooldown state, not acting: dynamodb:BatchGetItem on {table}/{} failed: Malformed: \
             the stored item is malformed: attribute `memory` is not a string",
            state_key(&wrong_target)
        )
    );
    assert_eq!(outcomes[&api].result, Status::Applied);
    for (target, item) in [(&newer_target, &newer_item), (&wrong_target, &wrong_item)] {
        assert_eq!(&scene.state_item(target).await, item, "not written over");
        assert!(scene.lease_free(target).await);
    }
    assert_eq!(
        scene.service_desired(&cluster, &newer).await,
        2,
        "untouched"
    );
    assert_eq!(
        scene.service_desired(&cluster, &wrong).await,
        2,
        "untouched"
    );
    assert_eq!(scene.service_desired(&cluster, &api).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_read_cut_short_fails_the_resources_of_that_call_mocked() {
    let (scene, cluster, [web, api]) = Scene::with_services(["web", "api"]).await;
    let tamper = Tamper::truncate("BatchGetItem", &scene.table);

    let outcomes = scene.pass(&tampered(&scene.config, &[&tamper])).await;

    assert!(tamper.rewritten() >= 1);
    for service in [&web, &api] {
        let target = ecs(&cluster, service);
        let why = failure(&outcomes[service]);
        let item = format!("{}/{}", scene.table, state_key(&target));
        assert!(
            why.starts_with(&format!(
                "cannot read cooldown state, not acting: dynamodb:BatchGetItem on {item} failed: \
                 Malformed: the answer could not be read: "
            )),
            "{why}"
        );
        assert_eq!(
            scene.service_desired(&cluster, service).await,
            2,
            "untouched"
        );
        assert!(scene.lease_free(&target).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_metric_data_answer_cut_short_holds_the_rules_of_its_queries_mocked() {
    let (scene, cluster, [web, api]) = Scene::with_services(["web", "api"]).await;
    let tamper = Tamper::truncate("GetMetricData", "");

    let outcomes = scene.pass(&tampered(&scene.config, &[&tamper])).await;

    assert!(tamper.rewritten() >= 1);
    for service in [&web, &api] {
        let outcome = &outcomes[service];
        assert_eq!(outcome.result, Status::Unchanged);
        let warning = outcome.warnings.join("; ");
        assert!(
            warning.contains("could not be read, so its rules held and scale-in was blocked: \
                 cloudwatch:GetMetricData on 2 metric queries failed: Malformed: the answer could not be read: "),
            "{warning}"
        );
        assert_eq!(
            scene.service_desired(&cluster, service).await,
            2,
            "untouched"
        );
    }
}

/// A GetMetricData answer giving each query the window's minutes at [`BUSY_CPU`], newest
/// first, one of them twice; the query of `conflicting`'s service gets that minute's second
/// value at 40 instead.
fn busy_answer(
    input: &GetMetricDataInput,
    minutes: &[DateTime<Utc>],
    conflicting: &str,
) -> GetMetricDataOutput {
    let results = input.metric_data_queries().iter().map(|query| {
        let service = query
            .metric_stat()
            .and_then(|stat| stat.metric())
            .and_then(|metric| {
                metric
                    .dimensions()
                    .iter()
                    .find(|d| d.name() == Some("ServiceName"))
            })
            .and_then(|dimension| dimension.value())
            .unwrap_or_default();
        let mut points: Vec<(DateTime<Utc>, f64)> =
            minutes.iter().rev().map(|at| (*at, BUSY_CPU)).collect();
        let again = if service == conflicting {
            40.0
        } else {
            BUSY_CPU
        };
        points.push((minutes[2], again));
        MetricDataResult::builder()
            .set_id(query.id().map(str::to_owned))
            .status_code(StatusCode::Complete)
            .set_timestamps(Some(
                points
                    .iter()
                    .map(|(at, _)| aws_smithy_types::DateTime::from_secs(at.timestamp()))
                    .collect(),
            ))
            .set_values(Some(points.iter().map(|(_, value)| *value).collect()))
            .build()
    });
    GetMetricDataOutput::builder()
        .set_metric_data_results(Some(results.collect()))
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_values_for_one_minute_hold_the_rules_on_that_metric_only_mocked() {
    // Mocked: CloudWatch, and moto, aggregate every datapoint of a minute into one value, so
    // no emulator answers one minute twice; the answer is well formed, only its content is
    // wrong, so the typed output is what the SDK would read from it.
    let (scene, cluster, [web, api]) = Scene::with_services(["web", "api"]).await;
    let minutes = fleet::window_minutes(scene.now, 6);
    let conflicting = web.clone();
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .then_compute_output(move |input| busy_answer(input, &minutes, &conflicting));
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);

    let outcomes = scene
        .pass_reading(&scene.config, &CloudWatchReader::new(cloudwatch))
        .await;

    assert_eq!(rule.num_calls(), 1);
    let held = &outcomes[&web];
    assert_eq!(held.result, Status::Unchanged);
    let twice = fleet::window_minutes(scene.now, 6)[2];
    assert!(
        held.warnings
            .iter()
            .any(|warning| warning.ends_with(&format!(
                "could not be read, so its rules held and scale-in was blocked: \
             CloudWatch returned two values for {twice}: 40 and 90"
            ))),
        "{:?}",
        held.warnings
    );
    // Out of order, and one minute given twice alike: read in order, once each.
    assert_eq!(outcomes[&api].result, Status::Applied);
    assert_eq!(scene.service_desired(&cluster, &web).await, 2, "untouched");
    assert_eq!(scene.service_desired(&cluster, &api).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rds_answer_cut_short_is_malformed_not_a_missing_source_mocked() {
    use capstan_runner::ports::CapacityControl;
    let config = sdk_config().await;
    let source = unique("orders-db");
    fleet::rds_source(&aws_sdk_rds::Client::new(&config), &source, 1).await;
    // Cut where the list of instances starts: every element before it is whole, so only the
    // end of the document tells that the answer was cut.
    let tamper = Tamper::new("DescribeDBInstances", &source, |body| {
        let text = String::from_utf8_lossy(body);
        let list = text.find("<DBInstance>").expect("an instance listed");
        body[..list].to_vec()
    });
    let aws = Aws::new(&tampered(&config, &[&tamper]), "unused-state-table");

    let error = aws
        .current(&Target::RdsReplicas {
            source: source.clone(),
        })
        .await
        .expect_err("an answer cut short is refused");

    assert_eq!(error.kind(), capstan_aws::ErrorKind::Malformed);
    assert!(
        error.to_string().starts_with(&format!(
            "rds:DescribeDBInstances on {source} failed: Malformed: the answer could not be read: \
             the XML document ends before the end tag of its root element `DescribeDBInstancesResponse`: \
             the body was cut short; received HTTP 200 with "
        )),
        "{error}"
    );
}
