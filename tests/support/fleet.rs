//! Resources and metrics made in the emulator for tests and the demo.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_ecs::types::ContainerDefinition;
use aws_sdk_rds::types::{Filter, Tag};
use capstan_aws::rds::MANAGED_TAG;
use capstan_policy::model::DEFAULT_DELAY;

/// Creates an ECS cluster (if needed), a task definition and a service with `desired` tasks.
pub async fn ecs_service(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str, desired: i32) {
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .expect("CreateCluster");
    let family = format!("{service}-task");
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("public.ecr.aws/nginx/nginx:latest")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(family)
        .desired_count(desired)
        .send()
        .await
        .expect("CreateService");
}

/// Creates a service as [`ecs_service`] does, whose deployment has completed, then sets it to
/// `desired` tasks. (moto fixes a service's rollout state at creation: a service created with
/// tasks stays `IN_PROGRESS`, one created with none is `COMPLETED`.)
pub async fn steady_ecs_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    desired: i32,
) {
    ecs_service(ecs, cluster, service, 0).await;
    update_desired(ecs, cluster, service, desired).await;
}

/// Creates a service as [`ecs_service`] does, whose deployment stays in progress, with its
/// `desired` tasks running (moto counts the tasks of an update as running, those of a
/// creation as pending).
pub async fn deploying_ecs_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    desired: i32,
) {
    ecs_service(ecs, cluster, service, desired).await;
    update_desired(ecs, cluster, service, desired).await;
}

/// Sets the service's desired task count.
async fn update_desired(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str, desired: i32) {
    ecs.update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(desired)
        .send()
        .await
        .expect("UpdateService");
}

/// The service's desired task count as ECS reports it.
pub async fn ecs_desired(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> i32 {
    let answer = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    answer.services()[0].desired_count()
}

/// Creates an Auto Scaling group (with its launch configuration) of `desired` instances within
/// `min..=max`.
pub async fn autoscaling_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    min: i32,
    max: i32,
    desired: i32,
) {
    let launch = format!("{name}-launch");
    asg.create_launch_configuration()
        .launch_configuration_name(&launch)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(launch)
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

/// The group's desired capacity as Auto Scaling reports it.
pub async fn asg_desired(asg: &aws_sdk_autoscaling::Client, name: &str) -> i32 {
    let answer = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    answer.auto_scaling_groups()[0]
        .desired_capacity()
        .expect("desired capacity")
}

/// Creates a PostgreSQL DB instance, a replica source once `retention` (days of automated
/// backups) is above 0.
pub async fn rds_source(rds: &aws_sdk_rds::Client, name: &str, retention: i32) {
    rds.create_db_instance()
        .db_instance_identifier(name)
        .engine("postgres")
        .db_instance_class("db.r6g.large")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .backup_retention_period(retention)
        .send()
        .await
        .expect("CreateDBInstance");
}

/// Creates the read replica `name` of `source` without tags, as someone other than capstan
/// would.
pub async fn rds_replica(rds: &aws_sdk_rds::Client, source: &str, name: &str) {
    rds.create_db_instance_read_replica()
        .db_instance_identifier(name)
        .source_db_instance_identifier(source)
        .send()
        .await
        .expect("CreateDBInstanceReadReplica");
}

/// The DB instance's status as RDS reports it, such as `available`.
pub async fn rds_status(rds: &aws_sdk_rds::Client, name: &str) -> String {
    let answer = rds
        .describe_db_instances()
        .db_instance_identifier(name)
        .send()
        .await
        .expect("DescribeDBInstances");
    answer.db_instances()[0]
        .db_instance_status()
        .unwrap_or_default()
        .to_owned()
}

/// The read replicas of `source` with their tags, sorted by identifier: those the source lists,
/// described by identifier, so other tests' instances in the emulator do not matter.
pub async fn rds_replicas(rds: &aws_sdk_rds::Client, source: &str) -> Vec<(String, Vec<Tag>)> {
    let answer = rds
        .describe_db_instances()
        .db_instance_identifier(source)
        .send()
        .await
        .expect("DescribeDBInstances of the source");
    let listed = answer.db_instances()[0].read_replica_db_instance_identifiers();
    if listed.is_empty() {
        return Vec::new();
    }
    let answer = rds
        .describe_db_instances()
        .filters(
            Filter::builder()
                .name("db-instance-id")
                .set_values(Some(listed.to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("DescribeDBInstances of the replicas");
    let mut found: Vec<(String, Vec<Tag>)> = answer
        .db_instances()
        .iter()
        .filter(|db| db.read_replica_source_db_instance_identifier() == Some(source))
        .map(|db| {
            (
                db.db_instance_identifier().unwrap_or_default().to_owned(),
                db.tag_list().to_vec(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Whether capstan created the DB instance with these tags.
pub fn capstan_created(tags: &[Tag]) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"))
}

/// A CloudWatch metric identity: namespace, name and dimensions.
#[derive(Debug, Clone)]
pub struct MetricId {
    /// Namespace.
    pub namespace: String,
    /// Metric name.
    pub name: String,
    /// Dimensions as (name, value).
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    /// The `CPUUtilization` metric of the ECS service `service` of `cluster`.
    pub fn ecs_cpu(cluster: &str, service: &str) -> Self {
        Self::cpu(
            "AWS/ECS",
            &[("ClusterName", cluster), ("ServiceName", service)],
        )
    }

    /// The `CPUUtilization` metric of the Auto Scaling group `group`.
    pub fn asg_cpu(group: &str) -> Self {
        Self::cpu("AWS/EC2", &[("AutoScalingGroupName", group)])
    }

    /// The `CPUUtilization` metric of the DB instance `instance`.
    pub fn rds_cpu(instance: &str) -> Self {
        Self::cpu("AWS/RDS", &[("DBInstanceIdentifier", instance)])
    }

    fn cpu(namespace: &str, dimensions: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.into(),
            name: "CPUUtilization".into(),
            dimensions: dimensions
                .iter()
                .map(|(name, value)| ((*name).into(), (*value).into()))
                .collect(),
        }
    }
}

/// A policy (YAML) named `name` of `target` (as the policy's `target` map writes it, such as
/// `ecs_service: { cluster: shop, service: web }`) within `capacity` (`{ min: 1, max: 10 }`):
/// when `cpu`, its one metric, is above 70 for five minutes, it adds `add`, then waits
/// `cooldown` before scaling out again.
pub fn cpu_policy(
    name: &str,
    target: &str,
    capacity: &str,
    cpu: &MetricId,
    add: u32,
    cooldown: &str,
) -> String {
    let dimensions: Vec<String> = cpu
        .dimensions
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    format!(
        "version: 1
name: {name}
target:
  {target}
capacity: {capacity}
metrics:
  cpu: {{ namespace: {namespace}, name: {metric}, dimensions: {{ {dimensions} }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: 70, for: 5m }}, add: {add} }}
guards:
  cooldown: {{ out: {cooldown} }}
",
        namespace = cpu.namespace,
        metric = cpu.name,
        dimensions = dimensions.join(", "),
    )
}

/// The policy (YAML) of the ECS service `service` of `cluster`, at 1 to 10 tasks: CPU above 70
/// for five minutes adds 2, then a scale-out cooldown of `cooldown` ([`cpu_policy`]).
pub fn ecs_cpu_policy(cluster: &str, service: &str, cooldown: &str) -> String {
    cpu_policy(
        service,
        &format!("ecs_service: {{ cluster: {cluster}, service: {service} }}"),
        "{ min: 1, max: 10 }",
        &MetricId::ecs_cpu(cluster, service),
        2,
        cooldown,
    )
}

/// Writes one datapoint per (time, value).
pub async fn put_metric(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    metric: &MetricId,
    points: &[(DateTime<Utc>, f64)],
) {
    let dimensions: Vec<Dimension> = metric
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    for chunk in points.chunks(1000) {
        let data = chunk.iter().map(|(at, value)| {
            MetricDatum::builder()
                .metric_name(&metric.name)
                .set_dimensions(Some(dimensions.clone()))
                .timestamp(aws_smithy_types::DateTime::from_secs(at.timestamp()))
                .value(*value)
                .build()
        });
        cloudwatch
            .put_metric_data()
            .namespace(&metric.namespace)
            .set_metric_data(Some(data.collect()))
            .send()
            .await
            .expect("PutMetricData");
    }
}

/// The start of the minute `at` falls in.
pub fn minute_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1))
        .expect("truncating to the minute")
}

/// `count` minute starts ending with the last complete minute before `now`, oldest first.
pub fn last_complete_minutes(now: DateTime<Utc>, count: i64) -> Vec<DateTime<Utc>> {
    let current = minute_start(now);
    (1..=count)
        .rev()
        .map(|back| current - TimeDelta::minutes(back))
        .collect()
}

/// `count` minute starts ending with the newest minute a window at `now` holds for a one-minute
/// metric with the default `delay`: the last minute that ended at least that long before `now`.
pub fn window_minutes(now: DateTime<Utc>, count: i64) -> Vec<DateTime<Utc>> {
    last_complete_minutes(now - DEFAULT_DELAY.as_delta(), count)
}
