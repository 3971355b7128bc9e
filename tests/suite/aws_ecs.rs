//! ECS services through `capstan_aws::Aws` against moto. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_ecs::`.
//!
//! moto never starts tasks and fixes a deployment's `rolloutState` when the service is created:
//! `IN_PROGRESS` when it was created with tasks, `COMPLETED` when created with none (the emulator
//! runs without `MOTO_ECS_SERVICE_RUNNING`). The tests check that precondition first, so a change
//! in the emulator fails with a clear message rather than a puzzling one.

use aws_sdk_ecs::types::DeploymentRolloutState;

use capstan_aws::ecs::SERVICES_PER_CALL;
use capstan_aws::{Aws, EcsServices, ErrorKind};
use capstan_engine::CurrentCapacity;
use capstan_engine::model::Target;
use capstan_runner::ports::CapacityControl;
use capstan_tests::calls::{Calls, counts};
use capstan_tests::fleet::ecs_service;
use capstan_tests::{sdk_config, unique};

/// The id and rollout state of the service's only deployment, as ECS reports them.
async fn only_deployment(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> (String, DeploymentRolloutState) {
    let answer = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    let [deployment] = answer.services()[0].deployments() else {
        panic!("expected one deployment: {answer:?}");
    };
    let id = deployment.id().expect("deployment id").to_owned();
    (
        id,
        deployment.rollout_state().expect("rolloutState").clone(),
    )
}

/// A service at `desired` tasks, `in_service` of them running and the rest pending: moto counts
/// the tasks of a service it creates as pending and those of an update as running, though it
/// starts none.
fn capacity(desired: u32, in_service: u32, busy: Option<String>) -> CurrentCapacity {
    CurrentCapacity {
        desired,
        resource_min: None,
        resource_max: None,
        busy,
        in_service: Some(in_service),
        running: Some(desired),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_read_and_set() {
    let config = sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let aws = Aws::new(&config, "unused-state-table");
    let cluster = unique("shop");
    ecs_service(&ecs, &cluster, "orders", 2).await;
    let (deployment, rollout) = only_deployment(&ecs, &cluster, "orders").await;
    assert_eq!(
        rollout,
        DeploymentRolloutState::InProgress,
        "moto's rollout for a service created with tasks"
    );
    let orders = Target::EcsService {
        cluster: cluster.clone(),
        service: "orders".into(),
    };
    let busy = Some(format!(
        "deployment {deployment} in progress (rolloutState IN_PROGRESS, 1 deployment)"
    ));

    assert_eq!(
        aws.current(&orders).await.expect("reading the service"),
        capacity(2, 0, busy.clone())
    );

    aws.set_desired(&orders, 3).await.expect("setting 3");
    assert_eq!(
        aws.current(&orders).await.expect("reading the service"),
        capacity(3, 3, busy)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steady_service_stays_steady_when_scaled() {
    let config = sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let aws = Aws::new(&config, "unused-state-table");
    let cluster = unique("shop");
    ecs_service(&ecs, &cluster, "idle", 0).await;
    let (_, rollout) = only_deployment(&ecs, &cluster, "idle").await;
    assert_eq!(
        rollout,
        DeploymentRolloutState::Completed,
        "moto's rollout for a service created without tasks"
    );
    let idle = Target::EcsService {
        cluster: cluster.clone(),
        service: "idle".into(),
    };

    assert_eq!(
        aws.current(&idle).await.expect("reading the service"),
        capacity(0, 0, None)
    );

    aws.set_desired(&idle, 3).await.expect("setting 3");
    assert_eq!(
        aws.current(&idle).await.expect("reading the service"),
        capacity(3, 3, None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_deleted_services_are_not_found() {
    let config = sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let aws = Aws::new(&config, "unused-state-table");
    let cluster = unique("shop");
    ecs_service(&ecs, &cluster, "gone", 0).await;
    ecs.delete_service()
        .cluster(&cluster)
        .service("gone")
        .send()
        .await
        .expect("DeleteService");
    let target = |cluster: &str, service: &str| Target::EcsService {
        cluster: cluster.into(),
        service: service.into(),
    };

    let missing = aws
        .current(&target(&cluster, "missing"))
        .await
        .expect_err("no such service");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.resource(), format!("{cluster}/missing"));
    assert_eq!(
        missing.to_string(),
        format!(
            "ecs:DescribeServices on {cluster}/missing failed: NotFound: ECS reports the service MISSING"
        )
    );

    let update_missing = aws
        .set_desired(&target(&cluster, "missing"), 2)
        .await
        .expect_err("no such service");
    assert_eq!(update_missing.kind(), ErrorKind::NotFound);
    assert_eq!(
        update_missing.to_string(),
        format!(
            "ecs:UpdateService on {cluster}/missing failed: ServiceNotFoundException: Service not found."
        )
    );

    let deleted = aws
        .current(&target(&cluster, "gone"))
        .await
        .expect_err("the service was deleted");
    assert_eq!(deleted.kind(), ErrorKind::NotFound);
    assert_eq!(deleted.resource(), format!("{cluster}/gone"));

    let no_cluster = unique("no-cluster");
    let update = aws
        .set_desired(&target(&no_cluster, "orders"), 2)
        .await
        .expect_err("no such cluster");
    assert_eq!(update.kind(), ErrorKind::NotFound);
    assert_eq!(update.operation(), "ecs:UpdateService");
    assert_eq!(update.resource(), format!("{no_cluster}/orders"));
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_read_ten_per_call_per_cluster_each_answered_on_its_own() {
    let config = sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let calls = Calls::default();
    let services = EcsServices::new(aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build(),
    ));
    let (shop, jobs) = (unique("shop"), unique("jobs"));
    let no_cluster = unique("no-cluster");
    // 13 services asked of shop (12 exist), 10 of jobs, interleaved, and one of a cluster that
    // does not exist: by ARN for some, as the API accepts.
    let mut asked: Vec<(String, String)> = Vec::new();
    for n in 0..13 {
        asked.push((shop.clone(), format!("web-{n}")));
        if n < 10 {
            asked.push((jobs.clone(), format!("worker-{n}")));
        }
    }
    for (cluster, service) in &asked {
        if service != "web-7" {
            ecs_service(&ecs, cluster, service, 0).await;
        }
    }
    asked[3].1 = format!(
        "arn:aws:ecs:us-east-1:123456789012:service/{}/{}",
        asked[3].0, asked[3].1
    );
    asked.push((no_cluster.clone(), "orders".into()));
    let pairs: Vec<(&str, &str)> = asked
        .iter()
        .map(|(cluster, service)| (cluster.as_str(), service.as_str()))
        .collect();
    calls.take();

    let answers = services.current_all(&pairs).await;

    assert_eq!(
        calls.take(),
        counts([(
            "DescribeServices",
            13_usize.div_ceil(SERVICES_PER_CALL) + 1 + 1
        )]),
        "shop in 2 calls, jobs in 1, the missing cluster in 1"
    );
    assert_eq!(answers.len(), pairs.len());
    for ((cluster, service), answer) in pairs.iter().zip(&answers) {
        match (*cluster, *service) {
            (cluster, "web-7") => {
                let error = answer.as_ref().expect_err("web-7 does not exist");
                assert_eq!(error.kind(), ErrorKind::NotFound);
                assert_eq!(
                    error.to_string(),
                    format!(
                        "ecs:DescribeServices on {cluster}/web-7 failed: NotFound: ECS reports the service MISSING"
                    )
                );
            }
            (cluster, service) if cluster == no_cluster => {
                let error = answer.as_ref().expect_err("the cluster does not exist");
                assert_eq!(error.kind(), ErrorKind::NotFound);
                assert_eq!(error.operation(), "ecs:DescribeServices");
                assert_eq!(error.resource(), format!("{cluster}/{service}"));
            }
            (cluster, service) => assert_eq!(
                answer.as_ref().map_err(ToString::to_string),
                Ok(&capacity(0, 0, None)),
                "{cluster}/{service}"
            ),
        }
    }
    // The batch of one is the same read.
    assert_eq!(
        services.current(&shop, "web-0").await.expect("reading"),
        capacity(0, 0, None)
    );
    assert_eq!(calls.take(), counts([("DescribeServices", 1)]));
}
