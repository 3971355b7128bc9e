//! Auto Scaling groups through `capstan_aws::Aws` against moto. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_autoscaling::`.

use capstan_aws::autoscaling::NAMES_PER_CALL;
use capstan_aws::{AutoScalingGroups, Aws, ErrorKind};
use capstan_engine::CurrentCapacity;
use capstan_engine::model::Target;
use capstan_runner::ports::CapacityControl;
use capstan_tests::calls::{Calls, counts};
use capstan_tests::fleet::{asg_desired, autoscaling_group, ecs_service};
use capstan_tests::{sdk_config, unique};

/// A group of bounds 1..=5 at `desired`, with as many instances, all in service: moto launches
/// them at once.
fn capacity(desired: u32) -> CurrentCapacity {
    CurrentCapacity {
        desired,
        resource_min: Some(1),
        resource_max: Some(5),
        busy: None,
        in_service: Some(desired),
        running: Some(desired),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_is_read_with_its_own_bounds_and_set() {
    let config = sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let aws = Aws::new(&config, "unused-state-table");
    let name = unique("web");
    autoscaling_group(&asg, &name, 1, 5, 2).await;
    let group = Target::AutoscalingGroup { name: name.clone() };

    assert_eq!(
        aws.current(&group).await.expect("reading the group"),
        capacity(2)
    );

    aws.set_desired(&group, 4).await.expect("setting 4");
    // The bounds the engine keeps to are the group's own, as read (capacity's 1..=5).
    assert_eq!(
        aws.current(&group).await.expect("reading the group"),
        capacity(4)
    );

    assert_eq!(asg_desired(&asg, &name).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_group_is_not_found_by_name() {
    let config = sdk_config().await;
    let aws = Aws::new(&config, "unused-state-table");
    let name = unique("missing");
    let group = Target::AutoscalingGroup { name: name.clone() };

    let read = aws
        .current(&group)
        .await
        .expect_err("the group does not exist");
    assert_eq!(read.kind(), ErrorKind::NotFound);
    assert_eq!(read.resource(), name);
    assert_eq!(
        read.to_string(),
        format!(
            "autoscaling:DescribeAutoScalingGroups on {name} failed: NotFound: no Auto Scaling group has this name"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_are_read_a_hundred_per_call_each_answered_on_its_own() {
    let config = sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let calls = Calls::default();
    let groups = AutoScalingGroups::new(aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build(),
    ));
    let prefix = unique("fleet");
    let names: Vec<String> = (0..=NAMES_PER_CALL)
        .map(|n| format!("{prefix}-{n}"))
        .collect();
    for (n, name) in names.iter().enumerate() {
        // Group n has n % 3 instances: each answer is its own group's.
        let desired = i32::try_from(n % 3).expect("small");
        autoscaling_group(&asg, name, 0, 5, desired).await;
    }
    let missing = format!("{prefix}-missing");
    let mut asked: Vec<&str> = names.iter().map(String::as_str).collect();
    asked.insert(50, &missing);
    calls.take();

    let answers = groups.current_all(&asked).await;

    assert_eq!(
        calls.take(),
        counts([("DescribeAutoScalingGroups", 2)]),
        "{} names in calls of {NAMES_PER_CALL}",
        asked.len()
    );
    assert_eq!(answers.len(), asked.len());
    for (name, answer) in asked.iter().zip(answers) {
        if *name == missing {
            let error = answer.expect_err("no such group");
            assert_eq!(error.kind(), ErrorKind::NotFound);
            assert_eq!(error.resource(), missing);
            continue;
        }
        let n: u32 = name
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("n");
        assert_eq!(
            answer.expect("reading"),
            CurrentCapacity {
                desired: n % 3,
                resource_min: Some(0),
                resource_max: Some(5),
                busy: None,
                in_service: Some(n % 3),
                running: Some(n % 3),
                ..Default::default()
            },
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_of_every_kind_are_answered_in_the_order_asked() {
    let config = sdk_config().await;
    let (asg, ecs) = (
        aws_sdk_autoscaling::Client::new(&config),
        aws_sdk_ecs::Client::new(&config),
    );
    let aws = Aws::new(&config, "unused-state-table");
    let (web, cluster) = (unique("web"), unique("shop"));
    autoscaling_group(&asg, &web, 1, 5, 2).await;
    ecs_service(&ecs, &cluster, "idle", 0).await;
    let targets = [
        Target::EcsService {
            cluster: cluster.clone(),
            service: "idle".into(),
        },
        Target::RdsReplicas {
            source: unique("no-db"),
        },
        Target::AutoscalingGroup { name: web.clone() },
        Target::AutoscalingGroup {
            name: unique("missing"),
        },
        Target::EcsService {
            cluster,
            service: "missing".into(),
        },
    ];

    let batched = aws.current_all(&targets).await;

    let mut one_by_one = Vec::new();
    for target in &targets {
        one_by_one.push(aws.current(target).await);
    }
    assert_eq!(batched, one_by_one);
    assert_eq!(batched[2], Ok(capacity(2)));
    let kinds: Vec<Option<ErrorKind>> = batched
        .iter()
        .map(|answer| answer.as_ref().err().map(|error| error.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(ErrorKind::NotFound),
            None,
            Some(ErrorKind::NotFound),
            Some(ErrorKind::NotFound)
        ]
    );
}
