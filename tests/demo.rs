//! The demo: capstan against the emulated AWS, minute by simulated minute, in two sections.
//!
//! **The evaluator.** The real evaluator Lambda, its binary run as Lambda runs it against a
//! Runtime API of the demo's own ([`LambdaEvaluator`]), against moto. It
//! creates the resources of four shipped example policies in the emulator: an ECS service
//! and an Auto Scaling group that scale on CPU, the storefront ECS service with its flash sale,
//! and the `orders-db` RDS instance whose read replica is planned ahead of that sale (with a
//! replica of the same source that capstan did not create). The sale's real schedule is
//! Friday 17:00 London time, so the demo runs copies of those two policies with the sale moved
//! into its own minutes and the replica plan's times shortened to match. For each minute it
//! writes that minute's CPU datapoints into CloudWatch and sends the evaluator a scheduled tick
//! stamped with the simulated time, printing each decision, and the source's replicas whenever
//! they change.
//!
//! **Kafka: partitions grown with the consumers, brokers with the load.** The runner in process
//! (the pass the evaluator runs, acting) over the shipped `order-events-topic` policy, its
//! consumers, `order-fulfilment`, and the cluster's brokers, `orders-brokers`. The consumers'
//! ECS service, their lag and the brokers' CPU metrics and the state table are in moto; MSK's
//! topic and broker-count operations are in no emulator, so the Kafka client is mocked in
//! process with `aws-smithy-mocks` ([`capstan_tests::msk_mock`]). As lag jumps, the consumers
//! are held at the topic's partitions, the topic's policy is asked for more and grows the topic
//! in the same pass, and the consumers follow the next minute; the partitions never decrease.
//! As the brokers run hot, three more are asked for (one per Availability Zone), the cluster is
//! busy while MSK adds them, and the topic's partition room grows once they are in.
//!
//! Run it with `scripts/demo.sh`.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};

use capstan_aws::Aws;
use capstan_policy::PolicySet;
use capstan_policy::model::{AheadOf, Duration, Policy, ReplicaPlan, Target};
use capstan_runner::ports::CapacityControl as _;
use capstan_runner::{Limits, Mode, Ports, evaluate};
use capstan_tests::answers;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::{LambdaEvaluator, workspace_root};
use capstan_tests::msk_mock::{self, MockedCluster};

/// The example policies the demo runs.
const POLICIES: [&str; 4] = [
    "policies/order-processing.yaml",
    "policies/web-asg-cpu.yaml",
    "policies/storefront-flash-sale.yaml",
    "policies/orders-db-replicas.yaml",
];

/// The DynamoDB table both sections keep capstan's state in.
const TABLE: &str = "capstan-demo-state";

/// The Kafka section's policies: the consumers of a topic, the topic's policy and its cluster's
/// brokers' policy, in that order.
const KAFKA_POLICIES: [&str; 3] = [
    "policies/order-fulfilment.yaml",
    "policies/order-events-topic.yaml",
    "policies/orders-brokers.yaml",
];

/// The consumers' tasks at the start: as many as the steady lag asks for.
const CONSUMERS: i32 = 8;

/// The flash-sale storefront policy, and the replica policy planned ahead of its sale.
const STOREFRONT: &str = "storefront-flash-sale";
const REPLICAS: &str = "orders-db-replicas";

/// The minute at which the flash sale opens in the demo, and how long it stays open there.
const SALE_OPENS: i64 = 25;
const SALE_LASTS: &str = "10m";

/// The storefront's CPU throughout: steady, so that only the sale's floor moves it.
const STOREFRONT_CPU: f64 = 40.0;

/// Average CPU per simulated minute of the services that scale on CPU (order-processing,
/// web-asg-cpu): quiet, a spike, then a long quiet tail for scale-in.
fn cpu_trace() -> Vec<f64> {
    let quiet = |n| std::iter::repeat_n(32.0, n);
    let spike = [
        55.0, 78.0, 88.0, 93.0, 95.0, 94.0, 96.0, 91.0, 92.0, 90.0, 87.0, 84.0, 72.0, 48.0,
    ];
    let tail = std::iter::repeat_n(18.0, 30);
    quiet(6).chain(spike).chain(tail).collect()
}

/// The consumers' lag in messages per simulated minute: steady at what 8 consumers keep up
/// with, a burst of orders, then draining once there are partitions for more consumers.
fn lag_trace() -> Vec<f64> {
    let steady = [8_000.0; 3];
    let burst = [
        56_000.0, 62_000.0, 52_000.0, 40_000.0, 28_000.0, 16_000.0, 6_000.0,
    ];
    let after = [3_000.0; 4];
    steady.into_iter().chain(burst).chain(after).collect()
}

/// Simulated minutes whose evaluations all come before the wall clock's current time. Each
/// minute's datapoints are written at its start, as if each had landed in CloudWatch at once;
/// its evaluation comes once the policies' metric `delay` has passed since the minute ended
/// (and 5 s more), when every window holds it as its newest period.
struct Minutes {
    start: DateTime<Utc>,
    /// From a minute's end to its evaluation: the metrics' delay, and 5 s.
    wait: TimeDelta,
}

impl Minutes {
    /// `count` minutes, evaluated `delay` after each ends, the last evaluation before now.
    fn before_now(count: usize, delay: Duration) -> Self {
        let count = i64::try_from(count).expect("a short demo");
        let delay = delay.as_delta();
        Self {
            start: fleet::minute_start(Utc::now() - delay) - TimeDelta::minutes(count + 1),
            wait: delay + TimeDelta::seconds(5),
        }
    }

    /// When `minute` starts.
    fn start(&self, minute: i64) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(minute)
    }

    /// When `minute` is evaluated.
    fn tick(&self, minute: i64) -> DateTime<Utc> {
        self.start(minute + 1) + self.wait
    }
}

/// The one `delay` all the metrics of `set` have. The demo evaluates each minute when that
/// delay has passed since it ended; with different delays, the windows would not all end with
/// the same minute.
fn shared_delay(set: &PolicySet) -> Duration {
    let delays: std::collections::BTreeSet<Duration> = set
        .policies()
        .iter()
        .flat_map(|policy| policy.metrics.values().map(|metric| metric.delay))
        .collect();
    let [delay] = delays.into_iter().collect::<Vec<_>>()[..] else {
        panic!("the demo's policies should share one metric delay")
    };
    delay
}

/// The replica source's CPU per minute: still busy for five minutes, then quiet.
fn source_cpu(minute: usize) -> f64 {
    if minute < 5 { 55.0 } else { 25.0 }
}

/// What the demo changes in its copies of the policies, so that the flash sale opens at
/// `opens` and the replica planned ahead of it is created and retired within the demo:
/// (file, JSON pointer, new value).
fn moves(opens: DateTime<Utc>) -> Vec<(&'static str, &'static str, String)> {
    let (minute, hour, day, month) = (opens.minute(), opens.hour(), opens.day(), opens.month());
    let sale = [
        (
            "/schedule/0/cron",
            format!("{minute} {hour} {day} {month} *"),
        ),
        ("/schedule/0/timezone", "UTC".into()),
        ("/schedule/0/duration", SALE_LASTS.into()),
    ];
    let replicas = [
        ("/replicas/lead", "15m".into()),
        ("/replicas/retire_after", "5m".into()),
        ("/guards/cooldown/in", "20m".into()),
    ];
    let file = |name: &'static str| move |(pointer, value)| (name, pointer, value);
    sale.into_iter()
        .map(file("storefront-flash-sale.yaml"))
        .chain(replicas.into_iter().map(file("orders-db-replicas.yaml")))
        .collect()
}

#[tokio::main]
async fn main() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let rds = aws_sdk_rds::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);

    let root = workspace_root();
    let shipped = PolicySet::load(&POLICIES.map(|path| root.join(path)))
        .unwrap_or_else(|report| panic!("{report}"));
    let trace = cpu_trace();
    let minutes = Minutes::before_now(trace.len(), shared_delay(&shipped));
    // The sale opens just before SALE_OPENS's tick.
    let opens = fleet::minute_start(minutes.tick(SALE_OPENS));

    let policy_dir = tempfile::tempdir().expect("tempdir");
    let moves = moves(opens);
    let replaced = copy_policies(&root, policy_dir.path(), &moves);
    let paths = POLICIES.map(|p| policy_dir.path().join(file_name(p)));
    let set = PolicySet::load(&paths).unwrap_or_else(|report| panic!("{report}"));
    let plan = set
        .policies()
        .iter()
        .find_map(|policy| policy.replicas.as_ref())
        .expect("the replica policy's plan");
    let AheadOf::Schedule { name, schedule, .. } = &plan.ahead_of else {
        panic!("the replica plan is ahead of the sale: {plan:?}");
    };
    assert_eq!(
        (name.as_str(), schedule.duration.to_string()),
        ("storefront-flash-sale/flash-sale", SALE_LASTS.to_owned()),
        "the plan is ahead of the moved sale"
    );
    capstan_aws::state::create_table(&dynamodb, TABLE)
        .await
        .expect("creating the state table");

    println!("capstan demo: the evaluator Lambda against moto, one simulated minute per tick\n");
    for policy in set.policies() {
        create_resource(policy, &ecs, &autoscaling, &rds).await;
        println!("{}", policy_line(policy));
    }
    let source = replica_source(&set);
    let theirs = format!("{source}-analytics");
    fleet::rds_replica(&rds, source, &theirs).await;
    println!("  and {theirs}, a read replica of {source} that capstan did not create");

    print_moves(opens, &moves, &replaced, plan, source);

    let endpoint = capstan_tests::endpoint();
    let evaluator = LambdaEvaluator::start(&[
        (
            "CAPSTAN_POLICY_DIR",
            policy_dir.path().to_str().expect("UTF-8 path"),
        ),
        ("CAPSTAN_STATE_TABLE", TABLE),
        ("CAPSTAN_AWS_ENDPOINT", &endpoint),
        ("CAPSTAN_REPLAY", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);

    let (names, widths) = columns(set.policies());
    println!("\nminute  cpu%  db%  {}", row(&names, &widths));
    let mut replica_changes = 0;
    for (minute, cpu) in trace.iter().enumerate() {
        let at = minutes.start(minute as i64);
        let db = source_cpu(minute);
        for policy in set.policies() {
            let (metric, value) = match (&policy.target, policy.name.as_str()) {
                (Target::RdsReplicas { .. }, _) => ("source_cpu", db),
                (_, STOREFRONT) => ("cpu", STOREFRONT_CPU),
                _ => ("cpu", *cpu),
            };
            fleet::put_metric(&cloudwatch, &metric_id(policy, metric), &[(at, value)]).await;
        }
        let tick = json!({
            "version": "0", "id": format!("demo-{minute}"), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "region": "us-east-1", "resources": [], "detail": {},
            "time": minutes.tick(minute as i64).to_rfc3339(),
        });
        let answer = evaluator
            .invoke(&tick)
            .unwrap_or_else(|error| panic!("invoking the evaluator: {error}"));
        let leading = format!("{minute:>6}  {cpu:>4.0}  {db:>3.0}");
        print_minute(&leading, &answer, set.policies(), &widths);
        if applied(&answer, REPLICAS) {
            replica_changes += 1;
            println!("        {}", replicas_line(&rds, source).await);
        }
    }

    println!("\nfinal desired capacity:");
    for policy in set.policies() {
        let desired = match &policy.target {
            Target::EcsService { cluster, service } => {
                fleet::ecs_desired(&ecs, cluster, service).await
            }
            Target::AutoscalingGroup { name } => fleet::asg_desired(&autoscaling, name).await,
            Target::RdsReplicas { source } => {
                let replicas = fleet::rds_replicas(&rds, source).await;
                replicas
                    .iter()
                    .filter(|(_, tags)| fleet::capstan_created(tags))
                    .count() as i32
            }
            other => unreachable!("the demo's policies do not target {other}"),
        };
        println!("  {:<22} {desired}", policy.name);
    }
    println!("\n{source} and its replicas at the end (DescribeDBInstances):");
    let status = fleet::rds_status(&rds, source).await;
    println!("  {source:<22} the source, {status}");
    let replicas = fleet::rds_replicas(&rds, source).await;
    for (name, tags) in &replicas {
        println!("  {name:<22} read replica, {}", tags_text(tags));
    }
    let left: Vec<&str> = replicas.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        replica_changes == 2 && left == [theirs.as_str()] && status == "available",
        "the demo should show one replica created ahead of the sale and retired after it, \
         {theirs} and the source kept: {replica_changes} replica changes, {left:?} left, the source {status}"
    );

    kafka(&config).await;
}

/// The Kafka section: the runner in process, acting, over the topic policy and its consumers,
/// one pass per simulated minute of [`lag_trace`]; the Kafka client mocked, everything else in
/// moto. Panics unless the partitions grew, never decreased, and the consumers went above the
/// topic's first partition count.
async fn kafka(config: &aws_config::SdkConfig) {
    let ecs = aws_sdk_ecs::Client::new(config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let root = workspace_root();
    let set = PolicySet::load(&KAFKA_POLICIES.map(|path| root.join(path)))
        .unwrap_or_else(|report| panic!("{report}"));
    let [consumers, topic, brokers] = set.policies() else {
        unreachable!("one policy per file")
    };
    let (
        Target::MskTopic {
            cluster_arn,
            topic: name,
        },
        Target::EcsService { cluster, service },
    ) = (&topic.target, &consumers.target)
    else {
        unreachable!("a topic policy and its consumers' ECS service")
    };
    let msk = MockedCluster::new(cluster_arn, name, topic.capacity.min);
    let first = msk.partitions();
    fleet::steady_ecs_service(&ecs, cluster, service, CONSUMERS).await;
    let aws = Aws::new(config, TABLE).with_kafka(msk.client());

    print_kafka_scene(consumers, topic, brokers, first);

    let trace = lag_trace();
    let minutes = Minutes::before_now(trace.len(), shared_delay(&set));
    let lag = metric_id(consumers, "lag");
    let broker_cpu = metric_id(brokers, "broker_cpu");
    let all: Vec<&Policy> = set.policies().iter().collect();
    let (names, widths) = columns(set.policies());
    println!(
        "\nminute     lag  cpu%  tasks  partitions  room  brokers  {}",
        row(&names, &widths)
    );
    let (mut partitions, mut most_tasks) = (first, 0u32);
    let first_room = partition_room(&aws, topic).await;
    let mut room = first_room;
    for (minute, value) in trace.iter().enumerate() {
        let minute = minute as i64;
        msk.advance();
        let cpu = broker_cpu_at(*value);
        fleet::put_metric(&cloudwatch, &lag, &[(minutes.start(minute), *value)]).await;
        fleet::put_metric(&cloudwatch, &broker_cpu, &[(minutes.start(minute), cpu)]).await;
        let holder = format!("capstan-demo-kafka-{minute}");
        let ports = Ports {
            metrics: aws.cloudwatch(),
            capacity: &aws,
            state: aws.state(),
            holder: &holder,
            clock: &|| minutes.tick(minute),
            limits: Limits::default(),
        };
        let pass = evaluate(&all, &all, &ports, minutes.tick(minute), Mode::Act).await;
        let now = msk.partitions();
        assert!(
            now >= partitions,
            "minute {minute}: the topic went from {partitions} partitions to {now}; partitions never decrease"
        );
        partitions = now;
        let tasks =
            u32::try_from(fleet::ecs_desired(&ecs, cluster, service).await).expect("a task count");
        most_tasks = most_tasks.max(tasks);
        let answer = serde_json::to_value(&pass).expect("a pass as JSON");
        room = partition_room(&aws, topic).await;
        let broker_cell = match msk.brokers() {
            (count, Some(to)) => format!("{count} -> {to}"),
            (count, None) => count.to_string(),
        };
        let leading = format!(
            "{minute:>6}  {value:>6.0}  {cpu:>4.0}  {tasks:>5}  {partitions:>10}  {room:>4}  {broker_cell:>7}"
        );
        print_minute(&leading, &answer, set.policies(), &widths);
        if let Some(busy) = busy(&answer, &brokers.name) {
            println!("        {}: busy: {busy}", brokers.name);
        }
        for request in &pass.requests {
            println!("        request: {request}");
        }
    }

    let (broker_count, update) = msk.brokers();
    println!(
        "\n{name}: {first} -> {partitions} partitions (UpdateTopic, mocked), never fewer; \
         {service}: at most {most_tasks} tasks; {}: {} -> {broker_count} brokers \
         (UpdateBrokerCount, mocked, followed to its end), the topic's room {first_room} -> {room} \
         partitions",
        brokers.name,
        msk_mock::BROKERS,
    );
    assert!(
        partitions > first && most_tasks > first,
        "the demo should show the partitions grown ({first} -> {partitions}) and the consumers \
         above the topic's first {first} partitions (at most {most_tasks} tasks)"
    );
    assert!(
        broker_count > msk_mock::BROKERS && update.is_none() && room > first_room,
        "the demo should show the brokers grown to the end of MSK's operation ({} -> \
         {broker_count}, {update:?} in progress) and the topic's room with them ({first_room} -> \
         {room})",
        msk_mock::BROKERS
    );
}

/// The brokers' CPU in a minute of `lag`: 40% at rest, rising with the backlog they serve.
fn broker_cpu_at(lag: f64) -> f64 {
    (40.0 + lag / 1_000.0).min(95.0)
}

/// The most partitions `topic` may have under MSK's partitions-per-broker limit, as capstan's
/// adapter reads it from the (mocked) cluster.
async fn partition_room(aws: &Aws, topic: &Policy) -> u32 {
    let capacity = aws
        .current(&topic.target)
        .await
        .unwrap_or_else(|error| panic!("reading {}: {error}", topic.name));
    capacity
        .resource_max
        .expect("a topic's room under the partitions-per-broker limit")
}

/// The Kafka section's heading, what is mocked, and its three policies.
fn print_kafka_scene(consumers: &Policy, topic: &Policy, brokers: &Policy, partitions: u32) {
    println!(
        "\n\nKafka: partitions grown with the consumers, brokers with the load\n\n\
         MSK topic and broker-count operations: no emulator implements them (moto answers \
         DescribeTopic,\nListTopics, UpdateTopic and UpdateBrokerCount with 500), so the Kafka \
         API here is answered in\nprocess by aws-smithy-mocks, shaped after the MSK API \
         reference; a broker-count update keeps the\ncluster UPDATING for {} minutes. Everything \
         else is moto. The capstan runner also runs in process:\nthe evaluator's pass, acting, \
         once per simulated minute.\n",
        msk_mock::BROKER_UPDATE_MINUTES,
    );
    let (other, other_partitions) = msk_mock::OTHER_TOPIC;
    println!(
        "{}, {CONSUMERS} tasks in moto\n  {:<22} consumers of the topic: one task per \
         1,000 messages of lag,\n  {:<22} `topic: {}`\n{}\n  {:<22} mocked: ACTIVE, {} {} \
         brokers; the topic has {partitions} partitions, {other} {other_partitions}\n{}\n  {:<22} \
         three brokers more when broker CPU is above 60% for 5 minutes (cpu%)\n\n\
         room: the topic's most partitions under MSK's partitions-per-broker limit, as capstan \
         reads it",
        policy_line(consumers),
        "",
        "",
        topic.name,
        policy_line(topic),
        "",
        msk_mock::BROKERS,
        msk_mock::BROKER_TYPE,
        policy_line(brokers),
        "",
    );
}

/// A policy's name, target and bounds, on one line.
fn policy_line(policy: &Policy) -> String {
    format!(
        "  {:<22} {}  (capacity {}..={})",
        policy.name, policy.target, policy.capacity.min, policy.capacity.max
    )
}

/// The policies' names, as a table's column headings, and each column's width.
fn columns(policies: &[Policy]) -> (Vec<String>, Vec<usize>) {
    policies
        .iter()
        .map(|p| (p.name.clone(), p.name.len().max(18)))
        .unzip()
}

/// A minute's row, its `leading` cells followed by [`describe`]'s cells for `answer`, and a
/// line for each of its notes.
fn print_minute(leading: &str, answer: &Value, policies: &[Policy], widths: &[usize]) {
    let (cells, notes) = describe(answer, policies);
    println!("{leading}  {}", row(&cells, widths));
    for note in notes {
        println!("        {note}");
    }
}

/// One table row: each cell padded to its column's width.
fn row(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    padded.join("  ").trim_end().to_owned()
}

/// What the demo changed in its copies of the policies, and the replica plan's timeline.
fn print_moves(
    opens: DateTime<Utc>,
    moves: &[(&str, &str, String)],
    replaced: &[String],
    plan: &ReplicaPlan,
    source: &str,
) {
    println!(
        "\nThe demo cannot wait for the flash sale's real schedule: in its copies of the policies\n\
         the sale is moved to start at minute {SALE_OPENS} ({} UTC) and last {SALE_LASTS}, and the \
         replica plan's\ntimes are shortened to match:",
        opens.format("%H:%M")
    );
    for ((file, pointer, new), old) in moves.iter().zip(replaced) {
        println!("  {file:<28} {pointer:<22} {old} -> {new}");
    }
    let AheadOf::Schedule {
        schedule, count, ..
    } = &plan.ahead_of
    else {
        panic!("the replica plan is ahead of the sale: {plan:?}");
    };
    let minutes = |duration: &Duration| duration.as_delta().num_minutes();
    let until = SALE_OPENS + minutes(&schedule.duration) + minutes(&plan.retire_after);
    let quiet = plan.quiet.as_ref().expect("a quiet condition");
    println!(
        "\n{REPLICAS} wants {} replica from minute {} ({} before the sale) to minute {until} ({} \
         after it).\nIt is created once {source}'s CPU (db%) has been {} for {} datapoints, and \
         retired after\nminute {until} as soon as cooldown.in and stabilization.in allow.",
        count,
        SALE_OPENS - minutes(&plan.lead),
        plan.lead,
        plan.retire_after,
        quiet.threshold,
        quiet.window.window,
    );
    println!(
        "cpu% is order-processing's and web-asg-cpu's CPU; the storefront's holds at {STOREFRONT_CPU}%."
    );
}

/// The file name of a policy path.
fn file_name(path: &str) -> &str {
    path.trim_start_matches("policies/")
}

/// Copies the policies into `dir`. A policy that `moves` changes is read as YAML, changed, and
/// written as JSON, which is YAML too. Returns the value each move replaced.
fn copy_policies(root: &Path, dir: &Path, moves: &[(&str, &str, String)]) -> Vec<String> {
    let mut replaced = Vec::new();
    for path in POLICIES {
        let name = file_name(path);
        let text = fs::read_to_string(root.join(path)).expect("reading a policy");
        let mine: Vec<&(&str, &str, String)> =
            moves.iter().filter(|(file, ..)| *file == name).collect();
        if mine.is_empty() {
            fs::write(dir.join(name), text).expect("copying a policy");
            continue;
        }
        let mut policy: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("reading {path}: {error}"));
        for (_, pointer, new) in mine {
            let slot = policy
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{path} has no {pointer} to move"));
            replaced.push(
                slot.as_str()
                    .map_or_else(|| slot.to_string(), str::to_owned),
            );
            *slot = Value::from(new.as_str());
        }
        let json = serde_json::to_string_pretty(&policy).expect("a policy as JSON");
        fs::write(dir.join(name), json).expect("writing a moved policy");
    }
    replaced
}

async fn create_resource(
    policy: &Policy,
    ecs: &aws_sdk_ecs::Client,
    autoscaling: &aws_sdk_autoscaling::Client,
    rds: &aws_sdk_rds::Client,
) {
    let start = policy.capacity.min as i32;
    match &policy.target {
        Target::EcsService { cluster, service } => {
            fleet::steady_ecs_service(ecs, cluster, service, start).await
        }
        Target::AutoscalingGroup { name } => {
            fleet::autoscaling_group(autoscaling, name, start, policy.capacity.max as i32, start)
                .await;
        }
        // With a day of automated backups: a source without them cannot have replicas.
        Target::RdsReplicas { source } => fleet::rds_source(rds, source, 1).await,
        other => unreachable!("the demo's policies do not target {other}"),
    }
}

/// The source DB instance of the set's replica policy.
fn replica_source(set: &PolicySet) -> &str {
    set.policies()
        .iter()
        .find_map(|policy| match &policy.target {
            Target::RdsReplicas { source } => Some(source.as_str()),
            _ => None,
        })
        .expect("a replica policy")
}

/// The policy's metric `key`, where the demo writes its CPU.
fn metric_id(policy: &Policy, key: &str) -> MetricId {
    let query = policy.metric(key);
    MetricId {
        namespace: query.namespace.clone(),
        name: query.name.clone(),
        dimensions: query
            .dimensions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// One tick's row: per policy (in the order of `policies`) its capacity, `current -> desired`
/// when it changed, or the clamp that held it where it is; then a line of explanation for each
/// policy whose change was applied or failed, or that a busy resource blocked.
fn describe(answer: &Value, policies: &[Policy]) -> (Vec<String>, Vec<String>) {
    let mut cells = Vec::new();
    let mut notes = Vec::new();
    for policy in policies {
        let Some(outcome) = answers::find(answer, &policy.name) else {
            cells.push("-".to_owned());
            continue;
        };
        let decision = &outcome["decision"];
        let (current, desired) = (&decision["current"], &decision["desired"]);
        let held = decision["explanation"]["clamps"]
            .as_array()
            .and_then(|clamps| clamps.last())
            .and_then(|clamp| clamp["kind"].as_str());
        let (cell, why) = match (outcome["result"]["status"].as_str(), held) {
            (Some("unchanged"), Some("resource_busy")) => (
                format!("{current} blocked"),
                Some(&decision["explanation"]["summary"]),
            ),
            (Some("unchanged"), Some(kind)) => (format!("{current} ({kind})"), None),
            (Some("unchanged"), None) => (current.to_string(), None),
            (Some("failed"), _) => ("failed".to_owned(), Some(&outcome["result"]["detail"])),
            (status, _) => (
                format!("{current} -> {desired} {}", status.unwrap_or("?")),
                Some(&decision["explanation"]["summary"]),
            ),
        };
        cells.push(cell);
        if let Some(why) = why {
            notes.push(format!("{}: {}", policy.name, why.as_str().unwrap_or("?")));
        }
    }
    (cells, notes)
}

/// Why `policy`'s resource was busy in a pass, if it was.
fn busy<'a>(answer: &'a Value, policy: &str) -> Option<&'a str> {
    answers::find(answer, policy)?["decision"]["busy"].as_str()
}

/// Whether the evaluator applied a change for `policy`.
fn applied(answer: &Value, policy: &str) -> bool {
    answers::find(answer, policy).is_some_and(|o| o["result"]["status"] == "applied")
}

/// The replicas of `source` as RDS lists them, with their tags.
async fn replicas_line(rds: &aws_sdk_rds::Client, source: &str) -> String {
    let replicas = fleet::rds_replicas(rds, source).await;
    let listed: Vec<String> = replicas
        .iter()
        .map(|(name, tags)| format!("{name} ({})", tags_text(tags)))
        .collect();
    format!("replicas of {source} now: {}", listed.join(", "))
}

/// Tags as `key=value`, or that there are none.
fn tags_text(tags: &[aws_sdk_rds::types::Tag]) -> String {
    if tags.is_empty() {
        return "no tags: not capstan's".into();
    }
    tags.iter()
        .map(|t| format!("{}={}", t.key().unwrap_or("?"), t.value().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(" ")
}
