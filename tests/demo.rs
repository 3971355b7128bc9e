//! The demo: the real evaluator against the emulated AWS, minute by simulated minute.
//!
//! It creates the resources of two shipped example policies (an ECS service and an Auto Scaling
//! group) in the emulator, then for each minute of a CPU trace writes that minute's datapoint
//! into CloudWatch and sends the evaluator a scheduled tick stamped with the simulated time,
//! printing each decision. Run it with `scripts/demo.sh`.

use std::fs;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use capstan_policy::PolicySet;
use capstan_policy::model::{Policy, Target};
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::{LambdaEvaluator, workspace_root};

/// The example policies the demo runs.
const POLICIES: [&str; 2] = [
    "policies/order-processing.yaml",
    "policies/web-asg-cpu.yaml",
];

/// Average CPU per simulated minute: quiet, a spike, then a long quiet tail for scale-in.
fn cpu_trace() -> Vec<f64> {
    let quiet = |n| std::iter::repeat_n(32.0, n);
    let spike = [
        55.0, 78.0, 88.0, 93.0, 95.0, 94.0, 96.0, 91.0, 92.0, 90.0, 87.0, 84.0, 72.0, 48.0,
    ];
    let tail = std::iter::repeat_n(18.0, 30);
    quiet(6).chain(spike).chain(tail).collect()
}

#[tokio::main]
async fn main() {
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);

    let root = workspace_root();
    let set = PolicySet::load(&POLICIES.map(|p| root.join(p)))
        .unwrap_or_else(|report| panic!("{report}"));
    let policy_dir = tempfile::tempdir().expect("tempdir");
    for path in POLICIES {
        fs::copy(
            root.join(path),
            policy_dir.path().join(path.trim_start_matches("policies/")),
        )
        .expect("copying a policy");
    }
    let table = "capstan-demo-state";
    capstan_aws::state::create_table(&dynamodb, table)
        .await
        .expect("creating the state table");

    println!("capstan demo: the evaluator Lambda against moto, one simulated minute per tick\n");
    for policy in set.policies() {
        create_resource(policy, &ecs, &autoscaling).await;
        println!(
            "  {:<18} {}  (capacity {}..={})",
            policy.name, policy.target, policy.capacity.min, policy.capacity.max
        );
    }

    let endpoint = capstan_tests::endpoint();
    let evaluator = LambdaEvaluator::start(&[
        (
            "CAPSTAN_POLICY_DIR",
            policy_dir.path().to_str().expect("UTF-8 path"),
        ),
        ("CAPSTAN_STATE_TABLE", table),
        ("CAPSTAN_AWS_ENDPOINT", &endpoint),
        ("CAPSTAN_MAX_EVENT_AGE_SECS", "86400"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);

    let trace = cpu_trace();
    let start = fleet::minute_start(Utc::now()) - TimeDelta::minutes(trace.len() as i64 + 1);
    println!("\nminute  cpu%  decisions");
    for (minute, cpu) in trace.iter().enumerate() {
        let at = start + TimeDelta::minutes(minute as i64);
        for policy in set.policies() {
            fleet::put_metric(&cloudwatch, &cpu_metric(policy), &[(at, *cpu)]).await;
        }
        let tick = json!({
            "version": "0", "id": format!("demo-{minute}"), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "region": "us-east-1", "resources": [], "detail": {},
            "time": (at + TimeDelta::seconds(65)).to_rfc3339(),
        });
        let answer = evaluator
            .invoke(&tick)
            .unwrap_or_else(|error| panic!("invoking the evaluator: {error}"));
        println!("{minute:>6}  {cpu:>4.0}  {}", describe(&answer));
    }

    println!("\nfinal desired capacity:");
    for policy in set.policies() {
        let desired = match &policy.target {
            Target::EcsService { cluster, service } => {
                fleet::ecs_desired(&ecs, cluster, service).await
            }
            Target::AutoscalingGroup { name } => fleet::asg_desired(&autoscaling, name).await,
            other => unreachable!("the demo policies target ECS and Auto Scaling, not {other}"),
        };
        println!("  {:<18} {desired}", policy.name);
    }
}

async fn create_resource(
    policy: &Policy,
    ecs: &aws_sdk_ecs::Client,
    autoscaling: &aws_sdk_autoscaling::Client,
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
        other => unreachable!("the demo policies target ECS and Auto Scaling, not {other}"),
    }
}

/// The policy's `cpu` metric, where the demo writes its trace.
fn cpu_metric(policy: &Policy) -> MetricId {
    let query = &policy.metrics["cpu"];
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

/// One line per tick: each policy's current -> desired, and why when something changed.
fn describe(answer: &Value) -> String {
    let outcomes = answer["outcomes"].as_array().cloned().unwrap_or_default();
    outcomes
        .iter()
        .map(|outcome| {
            let decision = &outcome["decision"];
            let (current, desired) = (&decision["current"], &decision["desired"]);
            let status = outcome["result"]["status"].as_str().unwrap_or("?");
            if status == "unchanged" {
                format!("{} {current}", outcome["policy"].as_str().unwrap_or("?"))
            } else {
                format!(
                    "{} {current} -> {desired} [{status}: {}]",
                    outcome["policy"].as_str().unwrap_or("?"),
                    decision["explanation"]["summary"]
                        .as_str()
                        .unwrap_or_default()
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
