//! End to end: the real evaluator binary, run as Lambda runs it (against a Runtime API of the
//! tests' own, [`LambdaEvaluator`]), woken by AWS's sample events, reading CloudWatch and scaling
//! ECS services in the emulator.

use std::fs;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use capstan_tests::answers::{clamped_by, outcome};
use capstan_tests::events::{self, AlarmChange, tick};
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::{LambdaEvaluator, evaluator_function};
use capstan_tests::queue::ObservedQueue;
use capstan_tests::state_table;
use capstan_tests::topic::ObservedTopic;

/// Services of the scenario, each with its own policy and CPU trace.
const HOT: &str = "hot"; // CPU 90 for six minutes: breaches `above 70 for 5m`
const WARM: &str = "warm"; // CPU 90 but one minute of the window missing: holds
const COOL: &str = "cool"; // CPU 40: no breach
const PAUSED: &str = "paused"; // CPU 90, policy paused
const DEPLOYING: &str = "deploying"; // CPU 90, but a deployment is in progress

fn cpu(cluster: &str, service: &str) -> MetricId {
    MetricId::ecs_cpu(cluster, service)
}

fn policy_yaml(cluster: &str, service: &str, paused: bool) -> String {
    fleet::ecs_cpu_policy(cluster, service, "10m") + &format!("paused: {paused}\n")
}

/// The state change of the alarm on `metric` (named after its service) into `ALARM` at `at`.
fn alarm(metric: &MetricId, at: DateTime<Utc>) -> AlarmChange {
    AlarmChange {
        alarm: format!("capstan-{}", metric.dimensions[1].1),
        state: "ALARM",
        at,
        metric: metric.clone(),
    }
}

/// AWS's EventBridge sample, pointed at `metric` and stamped `at`.
fn eventbridge_alarm(metric: &MetricId, at: DateTime<Utc>) -> Value {
    alarm(metric, at).eventbridge()
}

/// AWS's direct alarm-action sample, pointed at `metric` and stamped `at`: the same alarm as
/// [`eventbridge_alarm`]'s.
fn alarm_action(metric: &MetricId, at: DateTime<Utc>) -> Value {
    alarm(metric, at).alarm_action()
}

/// AWS's SNS alarm sample, its message pointed at `metric` and stamped `at`.
fn sns_alarm(metric: &MetricId, at: DateTime<Utc>) -> Value {
    alarm(metric, at).sns()
}

#[tokio::test(flavor = "multi_thread")]
async fn evaluator_scales_on_breach_and_holds_otherwise() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("e2e");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");

    let policies = tempfile::tempdir().expect("tempdir");
    for service in [HOT, WARM, COOL, PAUSED, DEPLOYING] {
        if service == DEPLOYING {
            fleet::deploying_ecs_service(&ecs, &cluster, service, 2).await;
        } else {
            fleet::steady_ecs_service(&ecs, &cluster, service, 2).await;
        }
        fs::write(
            policies.path().join(format!("{service}.yaml")),
            policy_yaml(&cluster, service, service == PAUSED),
        )
        .expect("writing a policy");
    }

    // Six minutes of CPU ending with the newest the default delay lets through; WARM lacks the
    // third of its last five.
    let now = Utc::now();
    let minutes = fleet::window_minutes(now, 6);
    let trace = |value: f64| minutes.iter().map(|at| (*at, value)).collect::<Vec<_>>();
    fleet::put_metric(&cloudwatch, &cpu(&cluster, HOT), &trace(90.0)).await;
    fleet::put_metric(&cloudwatch, &cpu(&cluster, COOL), &trace(40.0)).await;
    fleet::put_metric(&cloudwatch, &cpu(&cluster, PAUSED), &trace(90.0)).await;
    fleet::put_metric(&cloudwatch, &cpu(&cluster, DEPLOYING), &trace(90.0)).await;
    let mut gappy = trace(90.0);
    gappy.remove(3);
    fleet::put_metric(&cloudwatch, &cpu(&cluster, WARM), &gappy).await;

    let evaluator = LambdaEvaluator::replaying(policies.path(), &table, &[]);

    // The alarm on HOT's CPU, via EventBridge: HOT alone is woken, breaches, and goes 2 -> 4.
    let answer = evaluator
        .invoke(&eventbridge_alarm(&cpu(&cluster, HOT), now))
        .expect("EventBridge alarm");
    assert_eq!(
        answer["outcomes"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );
    assert_eq!(
        outcome(&answer, HOT)["result"]["status"],
        "applied",
        "{answer:#}"
    );
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 4);

    // The same state change delivered twice more, as the alarm's direct action and by
    // EventBridge again: both are recognised and not evaluated, so nothing acts twice.
    let deliveries = [
        ("alarm action", alarm_action(&cpu(&cluster, HOT), now)),
        (
            "EventBridge again",
            eventbridge_alarm(&cpu(&cluster, HOT), now),
        ),
    ];
    for (delivery, event) in deliveries {
        let again = evaluator.invoke(&event).expect(delivery);
        assert_eq!(again["outcomes"], json!([]), "{delivery}: {again:#}");
        let duplicate = &again["duplicates"][0];
        assert_eq!(
            duplicate["key"],
            json!(format!("alarm#capstan-{HOT}#{}", now.to_rfc3339())),
            "{delivery}: {again:#}"
        );
        assert!(
            duplicate["first_attempt"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "the first delivery is named: {again:#}"
        );
    }
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 4);
    let log = decision_log(&dynamodb, &table, &cluster, HOT).await;
    assert_eq!(log.len(), 1, "one decision for three deliveries: {log:#?}");
    assert_eq!(log[0]["result"]["status"], "applied", "{log:#?}");

    // Another state change of the same alarm is another event: evaluated, and the scale-out
    // cooldown holds HOT at 4.
    let answer = evaluator
        .invoke(&alarm_action(
            &cpu(&cluster, HOT),
            now - chrono::TimeDelta::seconds(1),
        ))
        .expect("alarm action");
    let hot = outcome(&answer, HOT);
    assert_eq!(hot["result"]["status"], "unchanged", "{answer:#}");
    assert!(clamped_by(hot, "cooldown"), "{answer:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 4);

    // COOL's alarm through SNS: CPU 40 does not breach.
    let answer = evaluator
        .invoke(&sns_alarm(&cpu(&cluster, COOL), now))
        .expect("SNS alarm");
    assert_eq!(
        outcome(&answer, COOL)["result"]["status"],
        "unchanged",
        "{answer:#}"
    );

    // The tick evaluates all five: WARM holds on its gap; PAUSED and DEPLOYING would scale but
    // do not.
    let answer = evaluator.invoke(&tick(now)).expect("tick");
    assert_eq!(
        answer["outcomes"].as_array().map(Vec::len),
        Some(5),
        "{answer:#}"
    );
    let warm = outcome(&answer, WARM);
    assert_eq!(warm["result"]["status"], "unchanged", "{answer:#}");
    assert_eq!(
        warm["decision"]["explanation"]["rules"][0]["outcome"], "missing_data",
        "{answer:#}"
    );
    for (service, clamp) in [(PAUSED, "paused"), (DEPLOYING, "resource_busy")] {
        let held = outcome(&answer, service);
        assert_eq!(held["result"]["status"], "unchanged", "{answer:#}");
        assert!(
            clamped_by(held, clamp),
            "{service} should be held by {clamp}: {answer:#}"
        );
    }
    assert_unchanged_since_first_alarm(&ecs, &cluster).await;

    // A malformed event is refused and changes nothing.
    let refused =
        evaluator.invoke(&json!({ "detail-type": "CloudWatch Alarm State Change", "detail": 7 }));
    let error = refused.expect_err("a malformed event must be an error");
    assert!(error.contains("malformed"), "{error}");
    let refused = evaluator
        .invoke(&json!({ "hello": "world" }))
        .expect_err("an unknown event must be an error");
    assert!(refused.contains("unrecognised event"), "{refused}");
    // Hostile events (docs/testing.md, "Hostile input"): a 6 MB event of no known shape, and
    // one nested 100,000 deep, which the runtime refuses before the handler runs.
    let keys: serde_json::Map<String, Value> = (0..300_000)
        .map(|i| (format!("key{i:07}"), json!("value")))
        .collect();
    let huge = Value::Object(keys).to_string();
    assert!(huge.len() > 6_000_000);
    let refused = evaluator
        .invoke_text(&huge)
        .expect_err("a 6 MB unknown event");
    assert!(
        refused.contains("unrecognised event (top-level keys: key0000000, ")
            && refused.contains("... 300000 keys in all)"),
        "{}",
        &refused[..refused.len().min(2_000)]
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let refused = evaluator.invoke_text(&deep).expect_err("a deep event");
    assert!(refused.contains("recursion limit exceeded"), "{refused}");
    let echoed_past_the_cut = evaluator
        .log_records()
        .iter()
        .map(Value::to_string)
        .find(|record| record.contains("key0000010") || record.contains(&"[".repeat(200)));
    assert_eq!(echoed_past_the_cut, None, "the log repeats the event whole");
    assert_unchanged_since_first_alarm(&ecs, &cluster).await;
}

/// The outcomes in the decision log of `service`, oldest first.
async fn decision_log(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    cluster: &str,
    service: &str,
) -> Vec<Value> {
    let answer = dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :decision)")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!("resource#ecs_service#{cluster}/{service}")),
        )
        .expression_attribute_values(":decision", AttributeValue::S("decision#".into()))
        .send()
        .await
        .expect("reading the decision log");
    answer
        .items()
        .iter()
        .map(|item| {
            let outcome = item["outcome"].as_s().expect("the outcome is a string");
            serde_json::from_str(outcome).expect("the outcome is JSON")
        })
        .collect()
}

/// HOT at the 4 tasks the first alarm gave it, every other service at its starting 2.
async fn assert_unchanged_since_first_alarm(ecs: &aws_sdk_ecs::Client, cluster: &str) {
    for (service, desired) in [(HOT, 4), (WARM, 2), (COOL, 2), (PAUSED, 2), (DEPLOYING, 2)] {
        assert_eq!(
            fleet::ecs_desired(ecs, cluster, service).await,
            desired,
            "{service}"
        );
    }
}

/// Writes the claim of the event `key` in progress by `by` until `until`, as an attempt that
/// is still running (or died) leaves it.
async fn claim_in_progress(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    by: &str,
    until: DateTime<Utc>,
) {
    let now = Utc::now();
    let epoch = |at: DateTime<Utc>| AttributeValue::N(at.timestamp().to_string());
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("event#{key}")))
        .item("sk", AttributeValue::S("claim".into()))
        .item("claimed_by", AttributeValue::S(by.into()))
        .item("claimed_at", AttributeValue::S(now.to_rfc3339()))
        .item("progress", AttributeValue::S("in_progress".into()))
        .item("in_progress_until", epoch(until))
        .item("expires_at", epoch(now + chrono::TimeDelta::days(7)))
        .send()
        .await
        .expect("writing a claim");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_in_progress_elsewhere_is_left_to_a_retry_and_an_expired_claim_is_taken_over() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("e2e-claims");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    fleet::steady_ecs_service(&ecs, &cluster, HOT, 2).await;
    let now = Utc::now();
    let trace: Vec<_> = fleet::window_minutes(now, 6)
        .into_iter()
        .map(|at| (at, 90.0))
        .collect();
    fleet::put_metric(&cloudwatch, &cpu(&cluster, HOT), &trace).await;
    let policies = tempfile::tempdir().expect("tempdir");
    fs::write(
        policies.path().join("hot.yaml"),
        policy_yaml(&cluster, HOT, false),
    )
    .expect("writing a policy");
    let evaluator = LambdaEvaluator::replaying(policies.path(), &table, &[]);
    let key = format!("alarm#capstan-{HOT}#{}", now.to_rfc3339());
    let alarm = eventbridge_alarm(&cpu(&cluster, HOT), now);

    // Another attempt is handling the same state change: this delivery is not evaluated, and
    // the invocation fails so that Lambda retries it later.
    let until = now + chrono::TimeDelta::minutes(10);
    claim_in_progress(&dynamodb, &table, &key, "request-elsewhere", until).await;
    let error = evaluator
        .invoke(&alarm)
        .expect_err("a delivery in progress elsewhere fails");
    assert!(
        error.contains(&format!(
            "event {key} is being handled by request-elsewhere"
        )),
        "{error}"
    );
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 2);
    assert_eq!(
        decision_log(&dynamodb, &table, &cluster, HOT).await,
        Vec::<Value>::new()
    );

    // That attempt died and its claim expired: the next delivery takes it over and acts.
    let expired = Utc::now() - chrono::TimeDelta::seconds(1);
    claim_in_progress(&dynamodb, &table, &key, "request-elsewhere", expired).await;
    let answer = evaluator.invoke(&alarm).expect("the claim expired");
    assert_eq!(
        outcome(&answer, HOT)["result"]["status"],
        "applied",
        "{answer:#}"
    );
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 4);
    let claim = dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("event#{key}")))
        .key("sk", AttributeValue::S("claim".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading the claim")
        .item
        .expect("the claim");
    assert_eq!(
        claim["progress"],
        AttributeValue::S("completed".into()),
        "{claim:?}"
    );
    assert_ne!(
        claim["claimed_by"],
        AttributeValue::S("request-elsewhere".into()),
        "{claim:?}"
    );

    // Completed: a further delivery is a duplicate.
    let again = evaluator.invoke(&alarm).expect("a duplicate");
    assert_eq!(again["outcomes"], json!([]), "{again:#}");
    assert_eq!(again["duplicates"][0]["key"], json!(key), "{again:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_and_an_invalid_policy_set_never_act() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("e2e-dry");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    fleet::steady_ecs_service(&ecs, &cluster, HOT, 2).await;
    let now = Utc::now();
    let trace: Vec<_> = fleet::window_minutes(now, 6)
        .into_iter()
        .map(|at| (at, 90.0))
        .collect();
    fleet::put_metric(&cloudwatch, &cpu(&cluster, HOT), &trace).await;

    let valid = tempfile::tempdir().expect("tempdir");
    fs::write(
        valid.path().join("hot.yaml"),
        policy_yaml(&cluster, HOT, false),
    )
    .expect("writing a policy");
    let invalid = tempfile::tempdir().expect("tempdir");
    let broken = policy_yaml(&cluster, HOT, false).replace("min: 1, max: 10", "min: 5, max: 3");
    fs::write(invalid.path().join("hot.yaml"), broken).expect("writing a policy");

    let endpoint = capstan_tests::endpoint();
    let settings = |policies: &tempfile::TempDir, dry_run: &str, paused: &str| {
        let dir = policies.path().to_str().expect("UTF-8 path").to_owned();
        [
            ("CAPSTAN_POLICY_DIR", dir),
            ("CAPSTAN_STATE_TABLE", table.clone()),
            ("CAPSTAN_REPLAY", "true".to_owned()),
            ("CAPSTAN_AWS_ENDPOINT", endpoint.clone()),
            ("DRY_RUN", dry_run.to_owned()),
            ("CAPSTAN_PAUSED", paused.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
    };
    let start = |env: [(&str, String); 9]| {
        LambdaEvaluator::start(&env.each_ref().map(|(name, value)| (*name, value.as_str())))
    };

    // DRY_RUN: the breach is decided and explained, and nothing changes.
    let evaluator = start(settings(&valid, "true", "false"));
    let answer = evaluator.invoke(&tick(now)).expect("tick");
    let hot = outcome(&answer, HOT);
    assert_eq!(hot["result"]["status"], "would_apply", "{answer:#}");
    assert_eq!(hot["decision"]["desired"], 4, "{answer:#}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 2);
    drop(evaluator);

    // CAPSTAN_PAUSED: the breach is decided and explained as paused, and nothing changes.
    let evaluator = start(settings(&valid, "false", "true"));
    let answer = evaluator.invoke(&tick(now)).expect("tick");
    assert_eq!(answer["paused"], true, "{answer:#}");
    let hot = outcome(&answer, HOT);
    assert_eq!(hot["result"]["status"], "unchanged", "{answer:#}");
    assert_eq!(
        hot["decision"]["explanation"]["clamps"][0]["kind"], "paused",
        "{answer:#}"
    );
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 2);
    drop(evaluator);

    // An invalid policy set (min above max): every invocation is refused.
    let evaluator = start(settings(&invalid, "false", "false"));
    let error = evaluator
        .invoke(&tick(now))
        .expect_err("an invalid set must refuse to act");
    assert!(error.contains("policy set invalid"), "{error}");
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, HOT).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_decision_is_published_with_its_explanation_and_counted() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("e2e-blocked");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    let topic = ObservedTopic::create(&config, &capstan_tests::unique("decisions")).await;

    // Both breach; DEPLOYING's deployment is in progress, so ResourceBusy blocks its scale-out.
    let policies = tempfile::tempdir().expect("tempdir");
    fleet::steady_ecs_service(&ecs, &cluster, HOT, 2).await;
    fleet::deploying_ecs_service(&ecs, &cluster, DEPLOYING, 2).await;
    let now = Utc::now();
    let trace: Vec<_> = fleet::window_minutes(now, 6)
        .into_iter()
        .map(|at| (at, 90.0))
        .collect();
    for service in [HOT, DEPLOYING] {
        fs::write(
            policies.path().join(format!("{service}.yaml")),
            policy_yaml(&cluster, service, false),
        )
        .expect("writing a policy");
        fleet::put_metric(&cloudwatch, &cpu(&cluster, service), &trace).await;
    }

    let evaluator = LambdaEvaluator::replaying(
        policies.path(),
        &table,
        &[("CAPSTAN_DECISIONS_TOPIC", &topic.arn)],
    );
    let answer = evaluator.invoke(&tick(now)).expect("tick");
    assert_eq!(
        outcome(&answer, HOT)["result"]["status"],
        "applied",
        "{answer:#}"
    );
    assert_eq!(
        outcome(&answer, DEPLOYING)["result"]["status"],
        "unchanged",
        "{answer:#}"
    );
    assert_eq!(fleet::ecs_desired(&ecs, &cluster, DEPLOYING).await, 2);

    // The topic heard of the blocked decision alone, with its explanation.
    let received = topic.received().await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(
        received[0]["Subject"], "capstan: deploying blocked by resource_busy",
        "{received:#?}"
    );
    let message: Value = serde_json::from_str(received[0]["Message"].as_str().expect("message"))
        .expect("the message is JSON");
    assert_eq!(message["reason"], "blocked", "{message:#}");
    assert_eq!(message["policy"], DEPLOYING, "{message:#}");
    assert_eq!(
        message["blocked_by"]["kind"], "resource_busy",
        "{message:#}"
    );
    assert_eq!(
        (&message["blocked_by"]["from"], &message["blocked_by"]["to"]),
        (&json!(4), &json!(2)),
        "{message:#}"
    );
    let explained = message["outcome"]["decision"]["explanation"]["summary"]
        .as_str()
        .expect("the explanation's summary");
    assert!(
        explained.starts_with("resource busy (") && explained.contains("would scale 2 -> 4"),
        "{explained}"
    );

    // One EMF record per decision, counting what happened.
    let records = evaluator.log_records();
    let emf = |policy: &str| {
        records
            .iter()
            .find(|record| record.get("_aws").is_some() && record["Policy"] == policy)
            .unwrap_or_else(|| panic!("no EMF record for {policy} in {records:#?}"))
    };
    let deploying = emf(DEPLOYING);
    assert_eq!(
        deploying["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Capstan",
        "{deploying:#}"
    );
    assert_eq!(deploying["TargetKind"], "ecs_service", "{deploying:#}");
    let counts = |record: &Value| {
        ["Decisions", "Actuations", "BlockedByGuard", "Errors"].map(|name| record[name].clone())
    };
    assert_eq!(counts(deploying), [json!(1), json!(0), json!(1), json!(0)]);
    assert_eq!(counts(emf(HOT)), [json!(1), json!(1), json!(0), json!(0)]);
}

/// `service`'s policy of [`policy_yaml`], using the database `database` at 10 connections a
/// task (1,000 of them, declared by `declares`): a connection budget couples it to the
/// database's other users.
fn database_user_yaml(cluster: &str, service: &str, database: &str, declares: bool) -> String {
    let mut policy = policy_yaml(cluster, service, false);
    policy.push_str(&format!(
        "connections: {{ database: {database}, per_task: 10 }}\n"
    ));
    if declares {
        policy.push_str(&format!(
            "databases:\n  {database}: {{ max_connections: 1000, reserve: 0 }}\n"
        ));
    }
    policy
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tick_over_more_policies_than_one_invocation_fans_out_and_each_is_evaluated_once() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("e2e-fan-out");
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    let queue = ObservedQueue::create(&config, &capstan_tests::unique("shards")).await;

    // Seven services, all breaching; s1 and s4 share a database, so a guard reads them together.
    let services: Vec<String> = (0..7).map(|n| format!("s{n}")).collect();
    let database = capstan_tests::unique("db");
    let policies = tempfile::tempdir().expect("tempdir");
    let now = Utc::now();
    let trace: Vec<_> = fleet::window_minutes(now, 6)
        .into_iter()
        .map(|at| (at, 90.0))
        .collect();
    for service in &services {
        fleet::steady_ecs_service(&ecs, &cluster, service, 2).await;
        fleet::put_metric(&cloudwatch, &cpu(&cluster, service), &trace).await;
        let policy = match service.as_str() {
            "s1" => database_user_yaml(&cluster, service, &database, true),
            "s4" => database_user_yaml(&cluster, service, &database, false),
            _ => policy_yaml(&cluster, service, false),
        };
        fs::write(policies.path().join(format!("{service}.yaml")), policy)
            .expect("writing a policy");
    }
    let evaluator = LambdaEvaluator::replaying(
        policies.path(),
        &table,
        &[
            ("CAPSTAN_SHARD_QUEUE", &queue.url),
            ("CAPSTAN_MAX_RESOURCES_PER_INVOCATION", "3"),
        ],
    );

    // The tick evaluates nothing itself: it sends its shards to the queue.
    let answer = evaluator.invoke(&tick(now)).expect("tick");
    assert_eq!(answer["outcomes"], json!([]), "{answer:#}");
    let sent = answer["fanned_out"][0]["shards"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for service in &services {
        assert_eq!(fleet::ecs_desired(&ecs, &cluster, service).await, 2);
    }

    // Read back: every policy in exactly one shard of at most 3, s1 with s4.
    let messages = queue.take_all().await;
    assert_eq!(messages.len(), sent.len(), "{answer:#}");
    assert_eq!(
        messages.len(),
        3,
        "7 policies, at most 3 a shard: {messages:#?}"
    );
    let shards: Vec<Value> = messages
        .iter()
        .map(|(_, body)| serde_json::from_str(body).expect("a shard is JSON"))
        .collect();
    let mut named: Vec<String> = Vec::new();
    for shard in &shards {
        let policies: Vec<String> =
            serde_json::from_value(shard["policies"].clone()).expect("a shard names its policies");
        assert!(policies.len() <= 3, "{shard}");
        let coupled = ["s1", "s4"].map(|s| policies.iter().any(|p| p == s));
        assert!(coupled[0] == coupled[1], "s1 and s4 share a shard: {shard}");
        named.extend(policies);
    }
    named.sort();
    assert_eq!(named, services, "{shards:#?}");

    // Each shard delivered as SQS delivers it: each policy evaluated once, each service 2 -> 4.
    let mut evaluated: Vec<String> = Vec::new();
    for message in &messages {
        let answer = evaluator
            .invoke(&events::sqs(std::slice::from_ref(message)))
            .expect("a shard");
        assert_eq!(answer.get("batchItemFailures"), None, "{answer:#}");
        for outcome in answer["outcomes"].as_array().expect("outcomes") {
            assert_eq!(outcome["result"]["status"], "applied", "{answer:#}");
            evaluated.push(outcome["policy"].as_str().expect("a name").to_owned());
        }
    }
    evaluated.sort();
    assert_eq!(evaluated, services);
    for service in &services {
        assert_eq!(fleet::ecs_desired(&ecs, &cluster, service).await, 4);
    }

    // A shard delivered again, beside a message that is no shard: the shard is a duplicate,
    // the other message alone is refused, for SQS to deliver again and then dead-letter.
    let again = [
        messages[0].clone(),
        ("not-a-shard".to_owned(), "hello".to_owned()),
    ];
    let answer = evaluator.invoke(&events::sqs(&again)).expect("a batch");
    assert_eq!(answer["outcomes"], json!([]), "{answer:#}");
    assert_eq!(
        answer["duplicates"].as_array().map(Vec::len),
        Some(1),
        "{answer:#}"
    );
    assert_eq!(
        answer["batchItemFailures"],
        json!([{ "itemIdentifier": "not-a-shard" }]),
        "{answer:#}"
    );

    // A shard whose claim another attempt holds is refused alone, for SQS to deliver later.
    let shard = &shards[1];
    let key = format!(
        "shard#{}#{}/{}",
        shard["tick"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .expect("the tick's time")
            .with_timezone(&Utc)
            .to_rfc3339(),
        shard["index"],
        shard["of"]
    );
    claim_in_progress(
        &dynamodb,
        &table,
        &key,
        "request-elsewhere",
        Utc::now() + chrono::TimeDelta::minutes(10),
    )
    .await;
    let (id, body) = &messages[1];
    let redelivered = (format!("{id}-again"), body.clone());
    let answer = evaluator
        .invoke(&events::sqs(std::slice::from_ref(&redelivered)))
        .expect("a shard in progress elsewhere");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{ "itemIdentifier": redelivered.0 }]),
        "{answer:#}"
    );
    for service in &services {
        let log = decision_log(&dynamodb, &table, &cluster, service).await;
        assert_eq!(log.len(), 1, "{service}: {log:#?}");
        assert_eq!(fleet::ecs_desired(&ecs, &cluster, service).await, 4);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tick_that_cannot_send_its_shards_fails_and_gives_its_claim_back_for_the_retry() {
    let config = capstan_tests::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = capstan_tests::unique("state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    let cluster = capstan_tests::unique("e2e-no-queue");
    let policies = tempfile::tempdir().expect("tempdir");
    for service in [HOT, COOL] {
        fs::write(
            policies.path().join(format!("{service}.yaml")),
            policy_yaml(&cluster, service, false),
        )
        .expect("writing a policy");
    }
    let endpoint = capstan_tests::endpoint();
    let missing = format!(
        "{endpoint}/123456789012/{}",
        capstan_tests::unique("missing")
    );
    let event = tick(Utc::now());
    let invoke = || {
        let mut evaluator = evaluator_function(
            policies.path(),
            &table,
            &endpoint,
            &[
                ("CAPSTAN_SHARD_QUEUE", &missing),
                ("CAPSTAN_MAX_RESOURCES_PER_INVOCATION", "1"),
            ],
        );
        evaluator.invoke(
            &event,
            "tick-request",
            SystemTime::now() + Duration::from_secs(60),
        );
        evaluator
            .answer(Duration::from_secs(120))
            .expect("an answer")
            .result
    };

    // The shards cannot be sent: the invocation fails, naming the queue, and its claim is given
    // back, so that Lambda's retry (the same request id, another attempt) is not kept out.
    for attempt in ["first", "retry"] {
        let error = invoke().expect_err("the shard queue is missing");
        assert!(
            error.contains("missing") && !error.contains("is being handled by"),
            "{attempt}: {error}"
        );
        let claims: Vec<_> = state_table::scan(&dynamodb, &table)
            .await
            .into_iter()
            .filter(|item| item.get("sk") == Some(&AttributeValue::S("claim".into())))
            .collect();
        assert_eq!(claims, Vec::new(), "{attempt}: the claim was given back");
    }
}
