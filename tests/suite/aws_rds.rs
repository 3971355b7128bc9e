//! RDS read replicas end to end against moto: the real runner and `capstan_aws::Aws`, with the
//! source's CPU in CloudWatch. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_rds::`.
//!
//! moto creates a replica `available` at once and reports no replication status
//! (`StatusInfos`), and its instances never fail, so "busy while creating", failed replicas and
//! stopped replication cannot be observed here: the adapter's unit tests cover them. A stopped
//! source is busy as any source that is not `available`.

use std::sync::{Arc, Mutex};

use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesInput;
use aws_sdk_rds::types::Tag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, TimeDelta, Timelike, Utc};

use capstan_aws::{Aws, ErrorKind, RdsReplicas, create_table};
use capstan_engine::ClampKind;
use capstan_engine::GuardRequest;
use capstan_policy::model::Policy;
use capstan_policy::{PolicySet, Source};
use capstan_runner::{Limits, Mode, Outcome, Pass, Ports, Status, evaluate};
use capstan_tests::fleet::{
    MetricId, ecs_desired, minute_start, put_metric, rds_replica, rds_replicas, rds_source,
    rds_status, steady_ecs_service, window_minutes,
};
use capstan_tests::{sdk_config, unique};

/// The emulator's configuration and a new state table in it.
async fn emulator() -> (aws_config::SdkConfig, String) {
    let config = sdk_config().await;
    let table = unique("capstan-state");
    create_table(&aws_sdk_dynamodb::Client::new(&config), &table)
        .await
        .expect("state table");
    (config, table)
}

/// What each `DescribeDBInstances` call made by the client it is installed on asked for: one
/// entry per execution (each page is one), as `identifier <id>`, `db-instance-id <ids, sorted>`
/// or `every instance`. Client interceptors run `read_before_execution` before the operation's
/// own configuration is loaded, so the call is recognised by its input's type.
#[derive(Debug, Clone, Default)]
struct DescribeCalls(Arc<Mutex<Vec<String>>>);

impl DescribeCalls {
    /// The calls recorded since the last `take`.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

impl Intercept for DescribeCalls {
    fn name(&self) -> &'static str {
        "DescribeCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = context.input().downcast_ref::<DescribeDbInstancesInput>() else {
            return Ok(());
        };
        let asked = match (input.db_instance_identifier(), input.filters()) {
            (Some(identifier), []) => format!("identifier {identifier}"),
            (None, [filter]) if filter.name() == Some("db-instance-id") => {
                let mut values = filter.values().to_vec();
                values.sort();
                format!("db-instance-id {}", values.join(","))
            }
            (None, []) => "every instance".to_owned(),
            (identifier, filters) => format!("{identifier:?} {filters:?}"),
        };
        self.0.lock().expect("not poisoned").push(asked);
        Ok(())
    }
}

/// An RDS client recording its `DescribeDBInstances` calls.
fn recorded(config: &aws_config::SdkConfig) -> (aws_sdk_rds::Client, DescribeCalls) {
    let calls = DescribeCalls::default();
    let client = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(config)
            .interceptor(calls.clone())
            .build(),
    );
    (client, calls)
}

/// The storefront's daily `sale` window opening at `hour` UTC for an hour, the replica policy
/// of `db` planned 45 minutes ahead of it, and any `more` policies.
fn policy_set(db: &str, hour: u32, more: &[(&str, String)]) -> PolicySet {
    let storefront = format!(
        "version: 1\nname: storefront\ntarget: {{ ecs_service: {{ cluster: shop, service: storefront }} }}\ncapacity: {{ min: 2, max: 10 }}\nschedule:\n  - {{ name: sale, cron: \"0 {hour} * * *\", duration: 1h, min: 8 }}\n"
    );
    let replicas = format!(
        "version: 1\nname: {db}-replicas\ntarget: {{ rds_replicas: {{ source: {db} }} }}\ncapacity: {{ min: 0, max: 3 }}\nmetrics:\n  source_cpu: {{ namespace: AWS/RDS, name: CPUUtilization, dimensions: {{ DBInstanceIdentifier: {db} }}, stat: Average, period: 1m }}\nreplicas:\n  ahead_of: storefront/sale\n  lead: 45m\n  count: 1\n  retire_after: 30m\n  quiet: {{ metric: source_cpu, below: 40, for: 10m }}\n"
    );
    let sources = [("storefront.yaml", storefront), ("replicas.yaml", replicas)]
        .into_iter()
        .chain(more.iter().map(|(path, text)| (*path, text.clone())))
        .map(|(path, text)| Source {
            path: path.into(),
            text,
        });
    PolicySet::from_sources(sources.collect())
        .unwrap_or_else(|report| panic!("valid policies: {report}"))
}

/// `history`, a read-only ECS service in the cluster `db` reading `db` (200 connections, 50
/// per task), which scales by 4 tasks on its CPU, with no cooldown before scaling in.
fn history(db: &str) -> (&'static str, String) {
    (
        "history.yaml",
        format!(
            "version: 1\nname: history\ntarget: {{ ecs_service: {{ cluster: {db}, service: history }} }}\ncapacity: {{ min: 1, max: 12 }}\ndatabases:\n  {db}: {{ max_connections: 200 }}\nconnections: {{ database: {db}, per_task: 50, read_only: true }}\nmetrics:\n  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ClusterName: {db}, ServiceName: history }}, stat: Average, period: 1m }}\nscale_out:\n  - when: {{ metric: cpu, above: 70, for: 3m }}\n    add: 4\nscale_in:\n  - when: {{ metric: cpu, below: 30, for: 3m }}\n    remove: 4\n"
        ),
    )
}

/// Ten minutes of the source's CPU at `value`, ending at the minute `at` falls in.
async fn cpu(cloudwatch: &aws_sdk_cloudwatch::Client, db: &str, at: DateTime<Utc>, value: f64) {
    let metric = MetricId {
        namespace: "AWS/RDS".into(),
        name: "CPUUtilization".into(),
        dimensions: vec![("DBInstanceIdentifier".into(), db.into())],
    };
    minutes(cloudwatch, &metric, at, 10, value).await;
}

/// `count` minutes of `metric` at `value`, ending with the newest minute a window at `at`
/// holds with the default delay.
async fn minutes(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    metric: &MetricId,
    at: DateTime<Utc>,
    count: i64,
    value: f64,
) {
    let points: Vec<(DateTime<Utc>, f64)> = window_minutes(at, count)
        .into_iter()
        .map(|minute| (minute, value))
        .collect();
    put_metric(cloudwatch, metric, &points).await;
}

/// One pass over the policies of `set` named `names`, at `at`.
async fn pass(aws: &Aws, set: &PolicySet, names: &[&str], at: DateTime<Utc>) -> Pass {
    let ports = Ports {
        metrics: aws.cloudwatch(),
        capacity: aws,
        state: aws.state(),
        holder: "aws-rds-test",
        clock: &|| at,
        limits: Limits::default(),
    };
    let all: Vec<&Policy> = set.policies().iter().collect();
    let policies: Vec<&Policy> = names
        .iter()
        .map(|name| set.get(name).unwrap_or_else(|| panic!("no policy {name}")))
        .collect();
    evaluate(&policies, &all, &ports, at, Mode::Act).await
}

/// One pass over the replica policy at `at`.
async fn tick(aws: &Aws, set: &PolicySet, at: DateTime<Utc>) -> Outcome {
    let name = &set.policies()[1].name;
    let mut pass = pass(aws, set, &[name], at).await;
    pass.outcomes.pop().expect("one outcome")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_is_made_in_the_quiet_before_a_peak_and_retired_after_it() {
    let (config, table) = emulator().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    let theirs = format!("{db}-analytics");
    rds_replica(&rds, &db, &theirs).await;
    // A sale that opened on the hour, five to six hours ago: every tick is in the past.
    let hour = (Utc::now() - TimeDelta::hours(5))
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("an hour");
    let set = policy_set(&db, hour.hour(), &[]);
    let aws = Aws::new(&config, &table).with_policies(set.policies());
    let at = |minutes: i64| hour + TimeDelta::minutes(minutes) + TimeDelta::seconds(30);

    // 40 minutes before: in the lead time, but the source is busy.
    cpu(&cloudwatch, &db, at(-40), 80.0).await;
    let busy = tick(&aws, &set, at(-40)).await;
    let decision = busy.decision.as_ref().expect("a decision");
    assert_eq!((decision.current, decision.desired), (0, 0), "{busy}");
    assert_eq!(
        decision.explanation.clamps.last().map(|c| c.kind),
        Some(ClampKind::ResourceBusy),
        "{busy}"
    );
    assert_eq!(
        rds_replicas(&rds, &db).await.len(),
        1,
        "only someone else's"
    );

    // 30 minutes before: quiet for ten minutes, so one replica is created, tagged as capstan's.
    cpu(&cloudwatch, &db, at(-30), 12.0).await;
    let created = tick(&aws, &set, at(-30)).await;
    assert_eq!(created.result, Status::Applied, "{created}");
    let now = rds_replicas(&rds, &db).await;
    let mine: Vec<&(String, Vec<Tag>)> = now.iter().filter(|(name, _)| *name != theirs).collect();
    let [(name, tags)] = mine.as_slice() else {
        panic!("one replica of capstan's: {now:?}");
    };
    let tag = |key: &str| {
        tags.iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("capstan:managed").as_deref(), Some("true"));
    assert_eq!(tag("capstan:policy"), Some(format!("{db}-replicas")));

    // During the sale the replica stays, however busy the source.
    cpu(&cloudwatch, &db, at(30), 90.0).await;
    let open = tick(&aws, &set, at(30)).await;
    assert_eq!(open.result, Status::Unchanged, "{open}");
    assert_eq!(open.decision.as_ref().map(|d| d.current), Some(1));

    // 31 minutes after it closed: retired. Only capstan's replica goes.
    let after = tick(&aws, &set, at(91)).await;
    assert_eq!(after.result, Status::Applied, "{after}");
    assert_eq!(
        after
            .decision
            .as_ref()
            .and_then(|d| d.explanation.fired.clone()),
        Some("replicas.retire".into())
    );
    let left: Vec<String> = rds_replicas(&rds, &db)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&theirs),
        "{name} deleted, {theirs} kept"
    );
    assert_eq!(
        rds_status(&rds, &db).await,
        "available",
        "the source is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_source_is_busy_and_nothing_is_created() {
    let (config, table) = emulator().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    rds.stop_db_instance()
        .db_instance_identifier(&db)
        .send()
        .await
        .expect("StopDBInstance");
    let hour = Utc::now() - TimeDelta::hours(5);
    let set = policy_set(&db, hour.hour(), &[]);
    let aws = Aws::new(&config, &table).with_policies(set.policies());
    let at = minute_start(hour).with_minute(15).expect("15 past") + TimeDelta::seconds(30);
    cpu(&cloudwatch, &db, at, 5.0).await;

    let outcome = tick(&aws, &set, at).await;

    assert_eq!(outcome.result, Status::Unchanged, "{outcome}");
    let decision = outcome.decision.as_ref().expect("a decision");
    assert!(
        decision
            .explanation
            .summary
            .starts_with(&format!(
                "resource busy (the source {db} is stopped: RDS creates read replicas only of an available source)"
            )),
        "{outcome}"
    );
    assert!(rds_replicas(&rds, &db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_without_backups_is_refused_with_a_clear_error() {
    let (config, table) = emulator().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 0).await;
    let hour = Utc::now() - TimeDelta::hours(5);
    let set = policy_set(&db, hour.hour(), &[]);
    let aws = Aws::new(&config, &table).with_policies(set.policies());

    let outcome = tick(&aws, &set, hour).await;

    let Status::Failed(why) = &outcome.result else {
        panic!("the pass should fail: {outcome}");
    };
    assert!(outcome.decision.is_none(), "{outcome}");
    assert!(
        why.contains(&format!("on {db} failed"))
            && why.contains("automated backups disabled (BackupRetentionPeriod 0)"),
        "{why}"
    );
    assert!(rds_replicas(&rds, &db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_grow_onto_a_replica_they_asked_for_which_is_retired_once_they_shrink() {
    let (config, table) = emulator().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    steady_ecs_service(&ecs, &db, "history", 4).await;
    let start = minute_start(Utc::now() - TimeDelta::minutes(30)) + TimeDelta::seconds(30);
    // The storefront's sale is hours away: outside it, the plan retires replicas.
    let set = policy_set(&db, (start + TimeDelta::hours(6)).hour(), &[history(&db)]);
    let aws = Aws::new(&config, &table).with_policies(set.policies());
    let replicas = format!("{db}-replicas");
    let names = ["history", replicas.as_str()];
    let at = |minutes: i64| start + TimeDelta::minutes(minutes);
    let history_cpu = MetricId {
        namespace: "AWS/ECS".into(),
        name: "CPUUtilization".into(),
        dimensions: vec![
            ("ClusterName".into(), db.clone()),
            ("ServiceName".into(), "history".into()),
        ],
    };
    cpu(&cloudwatch, &db, at(9), 12.0).await;
    minutes(&cloudwatch, &history_cpu, at(1), 11, 90.0).await;
    let owned = || async {
        rds_replicas(&rds, &db)
            .await
            .iter()
            .filter(|(_, tags)| tags.iter().any(|t| t.key() == Some("capstan:managed")))
            .count()
    };

    // 4 tasks hold the source's 200 connections: history is held there, and a replica is asked
    // for and created in the same pass.
    let first = pass(&aws, &set, &names, at(0)).await;
    let held = first.outcomes[0].decision.as_ref().expect("a decision");
    assert_eq!(held.desired, 4, "{}", first.outcomes[0]);
    assert_eq!(
        held.explanation.clamps.last().map(|c| c.kind),
        Some(ClampKind::ConnectionBudget)
    );
    assert!(
        matches!(&first.requests[..], [GuardRequest::DatabaseConnections { policy: Some(p), readers, .. }] if *p == replicas && readers == &["history"]),
        "{:?}",
        first.requests
    );
    assert_eq!(
        first.outcomes[1].result,
        Status::Applied,
        "{}",
        first.outcomes[1]
    );
    assert_eq!(owned().await, 1);
    assert_eq!(ecs_desired(&ecs, &db, "history").await, 4);

    // The replica is available: history's budget is 400, and it grows to 8.
    let second = pass(&aws, &set, &names, at(1)).await;
    assert_eq!(
        second.outcomes[0].result,
        Status::Applied,
        "{}",
        second.outcomes[0]
    );
    assert_eq!(ecs_desired(&ecs, &db, "history").await, 8);
    assert!(second.requests.is_empty(), "{:?}", second.requests);

    // CPU falls; history scales in to 4, while its 8 tasks still hold the replica's
    // connections: the plan's retirement is held back.
    minutes(&cloudwatch, &history_cpu, at(7), 6, 10.0).await;
    let third = pass(&aws, &set, &names, at(7)).await;
    assert_eq!(ecs_desired(&ecs, &db, "history").await, 4);
    let kept = third.outcomes[1].decision.as_ref().expect("a decision");
    assert_eq!(
        kept.explanation.fired.as_deref(),
        Some("replicas.retire"),
        "{}",
        third.outcomes[1]
    );
    assert_eq!(
        kept.explanation
            .clamps
            .last()
            .map(|c| (c.kind, c.from, c.to)),
        Some((ClampKind::ConnectionBudget, 0, 1)),
        "{}",
        third.outcomes[1]
    );
    assert_eq!(owned().await, 1);

    // 4 tasks fit the source alone, but the 4 removed at minute 7 may hold their connections
    // until they drain (5 minutes 30 seconds): the replica stays a while longer.
    minutes(&cloudwatch, &history_cpu, at(8), 1, 10.0).await;
    let fourth = pass(&aws, &set, &names, at(8)).await;
    let draining = fourth.outcomes[1].decision.as_ref().expect("a decision");
    assert_eq!(draining.desired, 1, "{}", fourth.outcomes[1]);
    assert_eq!(
        fourth.outcomes[0].decision.as_ref().map(|d| d.running),
        Some(8)
    );
    assert_eq!(owned().await, 1);
    assert_eq!(
        ecs_desired(&ecs, &db, "history").await,
        4,
        "held by its cooldown"
    );

    // Drained: the replica is retired.
    minutes(&cloudwatch, &history_cpu, at(13), 5, 10.0).await;
    let fifth = pass(&aws, &set, &names, at(13)).await;
    assert_eq!(
        fifth.outcomes[1].result,
        Status::Applied,
        "{}",
        fifth.outcomes[1]
    );
    assert_eq!(owned().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_describes_the_source_and_its_replicas_only() {
    let config = sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    for other in ["billing-db", "audit-db"] {
        rds_source(&rds, &unique(other), 0).await;
    }
    let theirs = format!("{db}-analytics");
    rds_replica(&rds, &db, &theirs).await;
    let (client, calls) = recorded(&config);
    let replicas = RdsReplicas::new(client);

    replicas
        .set_desired(&db, "orders-db-replicas", 1)
        .await
        .expect("one replica is created");
    let change = calls.take();
    let current = replicas.current(&db).await.expect("the replicas are read");
    let read = calls.take();

    let mine = format!("{db}-replica-1");
    assert_eq!(
        (current.desired, current.in_service, current.resource_max),
        (1, Some(1), Some(14))
    );
    let mut replicas = [mine, theirs];
    replicas.sort();
    assert_eq!(
        read,
        [
            format!("identifier {db}"),
            format!("db-instance-id {}", replicas.join(","))
        ]
    );
    assert_eq!(change.len(), 2, "{change:?}");
    assert_eq!(change[0], format!("identifier {db}"));
    assert!(
        change[1].starts_with("db-instance-id ") && change[1].contains(&replicas[0]),
        "the source's replica and the identifiers for new ones: {change:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replica_limit_counts_every_replica_capstan_would_have() {
    let config = sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    for n in 1..=13 {
        rds_replica(&rds, &db, &format!("{db}-theirs-{n}")).await;
    }
    let replicas = RdsReplicas::new(rds.clone());
    replicas
        .set_desired(&db, "orders-db-replicas", 1)
        .await
        .expect("a 14th replica fits");

    let refused = replicas
        .set_desired(&db, "orders-db-replicas", 3)
        .await
        .expect_err("3 of capstan's and 13 others are 16");

    assert_eq!(refused.kind(), ErrorKind::Invalid);
    assert_eq!(refused.operation(), "rds:CreateDBInstanceReadReplica");
    assert!(refused.message().contains("RDS's limit of 15"), "{refused}");
    assert_eq!(rds_replicas(&rds, &db).await.len(), 14, "nothing created");
    replicas
        .set_desired(&db, "orders-db-replicas", 2)
        .await
        .expect("2 of capstan's and 13 others are 15");
    assert_eq!(rds_replicas(&rds, &db).await.len(), 15);
    let current = replicas.current(&db).await.expect("the replicas are read");
    assert_eq!((current.desired, current.resource_max), (2, Some(2)));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_replicas_skip_identifiers_other_instances_hold() {
    let config = sdk_config().await;
    let rds = aws_sdk_rds::Client::new(&config);
    let db = unique("orders-db");
    rds_source(&rds, &db, 1).await;
    // Not a replica: an instance of its own under the first name capstan would use. RDS would
    // refuse to create a replica under it; moto would replace the instance instead.
    let standalone = format!("{db}-replica-1");
    rds_source(&rds, &standalone, 0).await;
    let theirs = format!("{db}-replica-2");
    rds_replica(&rds, &db, &theirs).await;
    let replicas = RdsReplicas::new(rds.clone());

    replicas
        .set_desired(&db, "orders-db-replicas", 1)
        .await
        .expect("one replica is created");

    let names: Vec<String> = rds_replicas(&rds, &db)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, [theirs, format!("{db}-replica-3")]);
    let answer = rds
        .describe_db_instances()
        .db_instance_identifier(&standalone)
        .send()
        .await
        .expect("the standalone instance is there");
    assert_eq!(
        answer.db_instances()[0].read_replica_source_db_instance_identifier(),
        None,
        "and still no replica"
    );
}
