//! The alarm sync against moto's CloudWatch (through the CBOR bridge): the alarm-sync function's
//! handler, called directly, on its scheduled payload and on CloudFormation custom resource
//! requests answered to a local HTTP receiver, for one stack and for several stacks side by side.
//! `capstan alarms diff` is tested next to it in `crates/cli/tests/alarms_diff.rs`.
//! Run with `scripts/with-emulator.sh cargo test -p capstan-tests --test suite alarm_sync::`.

use std::collections::BTreeMap;
use std::fs;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use capstan_alarm_sync::{App, physical_id};
use capstan_tests::alarms::{
    STACK, alarms, app, names, namespace, policy, policy_dir, prefix, put_foreign_alarm, stack_app,
    sync, write_policy,
};
use capstan_tests::lambda::workspace_root;
use capstan_tests::{sdk_config, unique};

/// The tags of `alarm`, by key.
async fn tags(client: &Client, alarm: &MetricAlarm) -> BTreeMap<String, String> {
    let output = client
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().expect("alarm ARN"))
        .send()
        .await
        .expect("ListTagsForResource");
    output
        .tags()
        .iter()
        .map(|tag| {
            (
                tag.key().unwrap_or_default().to_owned(),
                tag.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_rule_on_an_expression_metric_gets_a_metric_math_alarm_that_a_second_sync_keeps() {
    let client = Client::new(&sdk_config().await);
    let prefix = prefix();
    let ours = namespace(&prefix, STACK);
    let busy = policy(70, false).replace(
        "  latency:",
        "  memory: { namespace: AWS/ECS, name: MemoryUtilization, dimensions: { ClusterName: shop, ServiceName: web }, stat: Average, period: 1m }\n  \
         busy: { expression: 'MAX([cpu, memory])', period: 1m }\n  latency:",
    );
    let busy = busy.replace("metric: cpu, above: 70", "metric: busy, above: 70");
    let policies = policy_dir(&busy);

    let first = sync(&app(&prefix, policies.path()).await).await;

    let out_busy = format!("{ours}web-scale_out-0");
    assert_eq!(
        names(&first["created"]),
        [&out_busy, &format!("{ours}web-scale_in-0")]
    );
    let found = alarms(&client, &prefix).await;
    let alarm = &found[&out_busy];
    assert_eq!((alarm.namespace(), alarm.metric_name()), (None, None));
    let entries: Vec<_> = alarm
        .metrics()
        .iter()
        .map(|e| {
            let name = e.metric_stat().and_then(|s| s.metric()?.metric_name());
            (e.id(), e.expression(), name, e.return_data())
        })
        .collect();
    assert_eq!(
        entries,
        [
            (Some("q0"), Some("MAX([m1, m2])"), None, Some(true)),
            (Some("m1"), None, Some("CPUUtilization"), Some(false)),
            (Some("m2"), None, Some("MemoryUtilization"), Some(false)),
        ]
    );
    assert_eq!(alarm.threshold(), Some(70.0));

    let second = sync(&app(&prefix, policies.path()).await).await;
    assert_eq!(
        second,
        json!({ "created": [], "changed": [], "deleted": [], "unchanged": 2 })
    );
}

#[tokio::test]
async fn sync_creates_the_alarms_then_changes_nothing_then_deletes_only_its_own() {
    let client = Client::new(&sdk_config().await);
    let prefix = prefix();
    let ours = namespace(&prefix, STACK);
    let hand_made = format!("{ours}hand-made");
    let elsewhere = unique("not-capstan");
    put_foreign_alarm(&client, &hand_made, &[]).await;
    put_foreign_alarm(&client, &elsewhere, &[("capstan:managed", "true")]).await;
    let policies = policy_dir(&policy(70, true));

    let first = sync(&app(&prefix, policies.path()).await).await;

    let out_cpu = format!("{ours}web-scale_out-0");
    let out_latency = format!("{ours}web-scale_out-1");
    let in_cpu = format!("{ours}web-scale_in-0");
    assert_eq!(names(&first["created"]), [&out_cpu, &out_latency, &in_cpu]);
    let found = alarms(&client, &prefix).await;
    let alarm = &found[&out_cpu];
    assert_eq!(alarm.namespace(), Some("AWS/ECS"));
    assert_eq!(alarm.metric_name(), Some("CPUUtilization"));
    let dimensions: Vec<(&str, &str)> = alarm
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
        .collect();
    assert_eq!(
        dimensions,
        [("ClusterName", "shop"), ("ServiceName", "web")]
    );
    assert_eq!(alarm.statistic(), Some(&Statistic::Average));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(
        (alarm.datapoints_to_alarm(), alarm.evaluation_periods()),
        (Some(5), Some(5))
    );
    assert_eq!(
        alarm.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold)
    );
    assert_eq!(alarm.threshold(), Some(70.0));
    assert_eq!(alarm.treat_missing_data(), Some("missing"));
    assert_eq!(
        tags(&client, alarm).await,
        BTreeMap::from([
            ("capstan:managed".to_owned(), "true".to_owned()),
            ("capstan:policy".to_owned(), "web".to_owned()),
            ("capstan:stack".to_owned(), STACK.to_owned())
        ])
    );
    let latency = &found[&out_latency];
    assert_eq!(latency.extended_statistic(), Some("p99"));
    assert_eq!(latency.statistic(), None);
    assert_eq!(
        (latency.datapoints_to_alarm(), latency.evaluation_periods()),
        (Some(3), Some(5))
    );
    let scale_in = &found[&in_cpu];
    assert_eq!(
        scale_in.comparison_operator(),
        Some(&ComparisonOperator::LessThanThreshold)
    );
    assert_eq!(
        (
            scale_in.datapoints_to_alarm(),
            scale_in.evaluation_periods(),
            scale_in.threshold()
        ),
        (Some(15), Some(15), Some(30.0))
    );

    let second = sync(&app(&prefix, policies.path()).await).await;
    assert_eq!(
        second,
        json!({ "created": [], "changed": [], "deleted": [], "unchanged": 3 })
    );

    write_policy(policies.path(), &policy(70, false));
    let third = sync(&app(&prefix, policies.path()).await).await;
    assert_eq!(
        third,
        json!({ "created": [], "changed": [], "deleted": [out_latency], "unchanged": 2 })
    );
    let left: Vec<String> = alarms(&client, &prefix).await.into_keys().collect();
    assert_eq!(left, [hand_made, in_cpu, out_cpu]);
    assert!(
        alarms(&client, &elsewhere).await.contains_key(&elsewhere),
        "an alarm without the prefix is never touched"
    );
}

/// One HTTP request as the receiver saw it.
struct Received {
    request_line: String,
    headers: String,
    body: Value,
}

/// Accepts one HTTP request on `listener`, answers 200 and returns it.
async fn receive(listener: &TcpListener) -> Received {
    let (mut stream, _) = listener.accept().await.expect("accepting the answer");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let read = stream.read(&mut chunk).await.expect("reading the answer");
        assert!(read > 0, "connection closed before the headers ended");
        raw.extend_from_slice(&chunk[..read]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length header");
    while raw.len() < header_end + length {
        let read = stream.read(&mut chunk).await.expect("reading the body");
        assert!(read > 0, "connection closed before the body ended");
        raw.extend_from_slice(&chunk[..read]);
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .expect("answering");
    let (request_line, headers) = head.split_once("\r\n").expect("a request line");
    Received {
        request_line: request_line.to_owned(),
        headers: headers.to_ascii_lowercase(),
        body: serde_json::from_slice(&raw[header_end..header_end + length]).expect("a JSON body"),
    }
}

/// AWS's sample `kind` request, answering to `url`, with capstan's properties.
fn request(kind: &str, url: &str, prefix: &str, physical_id: &str) -> Value {
    let path = workspace_root().join(format!("tests/fixtures/events/custom-resource-{kind}.json"));
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(path).expect("reading a sample")).expect("JSON");
    event["ResponseURL"] = json!(url);
    event["ResourceType"] = json!("Custom::CapstanAlarmSync");
    event["ResourceProperties"] = json!({
        "ServiceToken": event["ServiceToken"],
        "PolicySetHash": "0f3c9a",
        "AlarmPrefix": prefix,
    });
    if kind != "create" {
        event["PhysicalResourceId"] = json!(physical_id);
    }
    event
}

/// Invokes the handler with `event` while the receiver waits for its answer.
async fn invoke(app: &App, listener: &TcpListener, event: Value) -> (Value, Received) {
    let deadline = Utc::now() + TimeDelta::minutes(5);
    let (result, received) = tokio::join!(app.handle(event.clone(), deadline), receive(listener));
    let result = result.unwrap_or_else(|error| panic!("the handler failed: {error}"));
    assert_eq!(
        received.request_line,
        "PUT /cr-response-key?sig-params=sig-values HTTP/1.1"
    );
    assert!(
        received.headers.contains("content-type: \r\n"),
        "{}",
        received.headers
    );
    for echoed in ["RequestId", "StackId", "LogicalResourceId"] {
        assert_eq!(received.body[echoed], event[echoed], "{echoed}");
    }
    (result, received)
}

#[tokio::test]
async fn custom_resource_requests_sync_delete_and_always_answer() {
    let client = Client::new(&sdk_config().await);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!(
        "http://{}/cr-response-key?sig-params=sig-values",
        listener.local_addr().expect("address")
    );
    let prefix = prefix();
    let ours = namespace(&prefix, STACK);
    let hand_made = format!("{ours}hand-made");
    put_foreign_alarm(&client, &hand_made, &[]).await;
    let policies = policy_dir(&policy(70, true));
    let app = app("unused-default", policies.path()).await;
    let physical_id = physical_id(&ours);

    let (_, created) = invoke(&app, &listener, request("create", &url, &prefix, "")).await;
    assert_eq!(created.body["Status"], "SUCCESS", "{}", created.body);
    assert_eq!(created.body["PhysicalResourceId"], json!(physical_id));
    assert_eq!(
        created.body["Data"],
        json!({ "Created": "3", "Changed": "0", "Deleted": "0" })
    );
    assert_eq!(alarms(&client, &prefix).await.len(), 4);

    write_policy(policies.path(), &policy(90, true));
    let app = self::app("unused-default", policies.path()).await;
    let (_, updated) = invoke(
        &app,
        &listener,
        request("update", &url, &prefix, &physical_id),
    )
    .await;
    assert_eq!(updated.body["Status"], "SUCCESS", "{}", updated.body);
    assert_eq!(updated.body["PhysicalResourceId"], json!(physical_id));
    assert_eq!(updated.body["Data"]["Changed"], "1");
    let threshold = alarms(&client, &prefix).await[&format!("{ours}web-scale_out-0")].threshold();
    assert_eq!(threshold, Some(90.0));

    let (_, deleted) = invoke(
        &app,
        &listener,
        request("delete", &url, &prefix, &physical_id),
    )
    .await;
    assert_eq!(deleted.body["Status"], "SUCCESS", "{}", deleted.body);
    assert_eq!(deleted.body["PhysicalResourceId"], json!(physical_id));
    assert_eq!(deleted.body["Data"]["Deleted"], "3");
    let left: Vec<String> = alarms(&client, &prefix).await.into_keys().collect();
    assert_eq!(left, [hand_made], "only capstan's alarms are deleted");
}

#[tokio::test]
async fn an_invalid_policy_set_answers_failed_with_the_reason_and_changes_nothing() {
    let client = Client::new(&sdk_config().await);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!(
        "http://{}/cr-response-key?sig-params=sig-values",
        listener.local_addr().expect("address")
    );
    let prefix = prefix();
    let policies = policy_dir(&policy(70, true).replace("max: 10", "max: 0"));
    let app = app(&prefix, policies.path()).await;

    let (result, answer) = invoke(&app, &listener, request("create", &url, &prefix, "")).await;

    assert_eq!(answer.body["Status"], "FAILED", "{}", answer.body);
    let reason = answer.body["Reason"].as_str().expect("a reason");
    assert!(
        reason.contains("policy set invalid") && reason.contains("web.yaml"),
        "{reason}"
    );
    assert_eq!(result["status"], "FAILED");
    assert!(
        alarms(&client, &prefix).await.is_empty(),
        "no alarm was created"
    );
}

/// The names of the alarms of `stack` under `prefix`.
async fn names_of(client: &Client, prefix: &str, stack: &str) -> Vec<String> {
    alarms(client, &namespace(prefix, stack).to_string())
        .await
        .into_keys()
        .collect()
}

#[tokio::test]
async fn stacks_with_the_same_or_overlapping_prefixes_keep_each_others_alarms() {
    let client = Client::new(&sdk_config().await);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!(
        "http://{}/cr-response-key?sig-params=sig-values",
        listener.local_addr().expect("address")
    );
    let prefix = prefix();
    let staging_prefix = format!("{prefix}-stg");
    // Made before alarms carried their stack: tagged as capstan's, named <old prefix><policy>-...
    let legacy = format!("{prefix}-web-scale_out-0");
    put_foreign_alarm(
        &client,
        &legacy,
        &[("capstan:managed", "true"), ("capstan:policy", "web")],
    )
    .await;
    let policies = policy_dir(&policy(70, true));
    let shop = stack_app("shop", &prefix, policies.path()).await;
    let same_prefix = stack_app("shop-stg", &prefix, policies.path()).await;
    let longer_prefix = stack_app("shop", &staging_prefix, policies.path()).await;
    for app in [&shop, &same_prefix, &longer_prefix] {
        assert_eq!(names(&sync(app).await["created"]).len(), 3);
    }
    let three = |prefix: &str, stack: &str| {
        let ours = namespace(prefix, stack);
        vec![
            format!("{ours}web-scale_in-0"),
            format!("{ours}web-scale_out-0"),
            format!("{ours}web-scale_out-1"),
        ]
    };

    write_policy(policies.path(), &policy(70, false));
    let shop = stack_app("shop", &prefix, policies.path()).await;
    assert_eq!(
        sync(&shop).await,
        json!({ "created": [], "changed": [], "deleted": [three(&prefix, "shop")[2]], "unchanged": 2 })
    );
    assert_eq!(
        names_of(&client, &prefix, "shop-stg").await,
        three(&prefix, "shop-stg")
    );
    assert_eq!(
        names_of(&client, &staging_prefix, "shop").await,
        three(&staging_prefix, "shop")
    );

    // The stack's deletion: CloudFormation deletes its custom resource.
    let deletion = request(
        "delete",
        &url,
        &prefix,
        &physical_id(&namespace(&prefix, "shop")),
    );
    let (_, deleted) = invoke(&shop, &listener, deletion).await;
    assert_eq!(deleted.body["Status"], "SUCCESS", "{}", deleted.body);
    assert_eq!(deleted.body["Data"]["Deleted"], "2");
    assert!(names_of(&client, &prefix, "shop").await.is_empty());
    assert_eq!(
        names_of(&client, &prefix, "shop-stg").await,
        three(&prefix, "shop-stg")
    );
    assert_eq!(
        names_of(&client, &staging_prefix, "shop").await,
        three(&staging_prefix, "shop")
    );

    // The Delete CloudFormation sends for the resource as it was before alarms carried their
    // stack (physical id `capstan-alarms-<old prefix>`) deletes nothing.
    let old_resource = request(
        "delete",
        &url,
        &format!("{prefix}-"),
        &format!("capstan-alarms-{prefix}-"),
    );
    let (result, answer) = invoke(&same_prefix, &listener, old_resource).await;
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert_eq!(result["sync"], Value::Null, "nothing was planned");
    assert_eq!(
        names_of(&client, &prefix, "shop-stg").await,
        three(&prefix, "shop-stg")
    );
    assert!(
        alarms(&client, &legacy).await.contains_key(&legacy),
        "an alarm without the stack tag is left for the operator"
    );
}
