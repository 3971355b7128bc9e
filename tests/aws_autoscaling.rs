//! Auto Scaling groups through `capstan_aws::Aws` against moto. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test aws_autoscaling`.

use capstan_aws::{Aws, ErrorKind};
use capstan_engine::CurrentCapacity;
use capstan_engine::model::Target;
use capstan_engine::ports::CapacityControl;
use capstan_tests::fleet::{asg_desired, autoscaling_group};
use capstan_tests::{sdk_config, unique};

/// A group of bounds 1..=5 at `desired`, with as many instances: moto launches them at once.
fn capacity(desired: u32) -> CurrentCapacity {
    CurrentCapacity {
        desired,
        resource_min: Some(1),
        resource_max: Some(5),
        busy: None,
        running: Some(desired),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_is_read_set_and_kept_within_its_bounds() {
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
    assert_eq!(
        aws.current(&group).await.expect("reading the group"),
        capacity(4)
    );

    let refused = aws
        .set_desired(&group, 9)
        .await
        .expect_err("9 is above MaxSize 5");
    assert_eq!(refused.kind(), ErrorKind::Invalid);
    assert_eq!(refused.operation(), "autoscaling:SetDesiredCapacity");
    assert_eq!(refused.resource(), name);
    assert_eq!(
        refused.to_string(),
        format!(
            "autoscaling:SetDesiredCapacity on {name} failed: Invalid: desired capacity 9 is outside the group's bounds [1, 5]"
        )
    );
    assert_eq!(
        asg_desired(&asg, &name).await,
        4,
        "the refused value never reached the group"
    );
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
    let set = aws
        .set_desired(&group, 1)
        .await
        .expect_err("the group does not exist");

    for error in [read, set] {
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(error.resource(), name);
        assert_eq!(
            error.to_string(),
            format!(
                "autoscaling:DescribeAutoScalingGroups on {name} failed: NotFound: no Auto Scaling group has this name"
            )
        );
    }
}
