//! ECS services: reading and setting their desired count.

use std::collections::BTreeMap;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::{DeploymentRolloutState, Service};

use capstan_engine::CurrentCapacity;

use crate::answer::MissingMembers;
use crate::error::{AwsError, ErrorKind};
use crate::rate::{Category, RateLimits};

const DESCRIBE: &str = "ecs:DescribeServices";
const UPDATE: &str = "ecs:UpdateService";

/// The members of a service in a `DescribeServices` answer that capstan reads as counts. The
/// SDK reads a missing one as 0; capstan refuses a service whose answer lacks one.
const COUNTS: [&str; 3] = ["desiredCount", "runningCount", "pendingCount"];

/// How many services one `DescribeServices` call asks about: the API's limit.
pub const SERVICES_PER_CALL: usize = 10;

/// ECS services, by cluster and service name.
///
/// # When a service is busy
///
/// A service is busy while a deployment rolls out, which ECS shows in two ways:
/// - more than one deployment is listed: the `PRIMARY` one is replacing `ACTIVE` ones whose tasks
///   are still draining;
/// - the `PRIMARY` deployment's `rolloutState` is `IN_PROGRESS`: it has not reached steady
///   state, including a new service's first deployment.
///
/// A service being deleted (`DRAINING`) is busy as well. `rolloutState` is only reported for
/// the rolling-update (`ECS`) deployment controller without a Classic Load Balancer; without
/// it, only the number of deployments counts. Services using the `CODE_DEPLOY` or `EXTERNAL`
/// controllers roll out through task sets, which this rule does not look at (moto lists no
/// deployments for them). Changing the desired count, as capstan does, starts no deployment, so
/// capstan's own changes never make a service busy.
///
/// moto follows the same shapes, with one difference: it fixes `rolloutState` when the service
/// is created (`COMPLETED` if the server's `MOTO_ECS_SERVICE_RUNNING` is at least the desired
/// count, which it is for a desired count of 0, otherwise `IN_PROGRESS`) and never advances it,
/// so a service created with tasks stays busy there unless that variable is set.
#[derive(Debug, Clone)]
pub struct EcsServices {
    client: Client,
    limits: RateLimits,
}

impl EcsServices {
    /// Services reached through the given client, within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            limits: RateLimits::default(),
        }
    }

    /// The same services, reached within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The service's desired count, its running tasks as in service (those its CPU and memory
    /// metrics average over), its running and pending tasks as running (more than desired while
    /// a deployment runs old and new tasks together), and whether a deployment makes it busy (see
    /// [When a service is busy](EcsServices#when-a-service-is-busy)).
    /// ECS services have no bounds of their own.
    ///
    /// A service ECS reports as missing, or as `INACTIVE` (deleted), is an
    /// [`ErrorKind::NotFound`] error naming `cluster/service`; so is a missing cluster. A service
    /// the answer lists without its `desiredCount`, `runningCount` or `pendingCount`, or with a
    /// negative one, is [`ErrorKind::Malformed`]: the SDK would read a missing count as 0.
    pub async fn current(&self, cluster: &str, service: &str) -> Result<CurrentCapacity, AwsError> {
        let answer = self.describe(cluster, &[service]).await?;
        read(&answer, cluster, service)
    }

    /// [`current`](Self::current) of each `(cluster, service)`, one answer per service in the
    /// order given, read [`SERVICES_PER_CALL`] services of one cluster per `DescribeServices`
    /// call. A service the answer lists as a failure, or does not list, is that service's
    /// error; a call that fails (e.g. on a missing cluster) is the error of each service it
    /// asked about.
    pub async fn current_all(
        &self,
        services: &[(&str, &str)],
    ) -> Vec<Result<CurrentCapacity, AwsError>> {
        let mut by_cluster: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, (cluster, _)) in services.iter().enumerate() {
            by_cluster.entry(cluster).or_default().push(index);
        }
        let mut answers = Vec::with_capacity(services.len());
        for (cluster, indices) in by_cluster {
            let names: Vec<&str> = indices
                .iter()
                .map(|&index| service_name(services[index].1))
                .collect();
            for run in crate::batches(&names, SERVICES_PER_CALL) {
                let asked: Vec<&str> = indices[run.clone()]
                    .iter()
                    .map(|&index| services[index].1)
                    .collect();
                let answer = self.describe(cluster, &asked).await;
                answers.extend(indices[run].iter().zip(asked).map(|(&index, service)| {
                    let capacity = match &answer {
                        Ok(answer) => read(answer, cluster, service),
                        Err(error) => Err(error.about(service_id(cluster, service))),
                    };
                    (index, capacity)
                }));
            }
        }
        crate::in_order(answers)
    }

    /// One `DescribeServices` call on `services` of `cluster`, with the services its answer
    /// lists without some of their [`COUNTS`]. Its error names the first service;
    /// [`current_all`](Self::current_all) renames it for each.
    async fn describe(&self, cluster: &str, services: &[&str]) -> Result<Described, AwsError> {
        let first = services.first().copied().unwrap_or_default();
        let resource = service_id(cluster, first);
        self.limits
            .take(Category::EcsServiceRead, DESCRIBE, &resource)
            .await?;
        let missing = MissingMembers::new("services", "serviceName", &COUNTS);
        let answer = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.iter().map(|s| (*s).to_owned()).collect()))
            .customize()
            .interceptor(missing.clone())
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE, resource, error))?;
        Ok(Described {
            answer,
            missing: missing.found(),
        })
    }

    /// Sets the service's desired count. This alone starts no deployment.
    pub async fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> Result<(), AwsError> {
        let resource = service_id(cluster, service);
        let desired = i32::try_from(desired).map_err(|_| {
            AwsError::new(
                UPDATE,
                &resource,
                ErrorKind::Invalid,
                format!("desired count {desired} is too large"),
            )
        })?;
        self.limits
            .take(Category::EcsServiceModify, UPDATE, &resource)
            .await?;
        tracing::info!(cluster, service, desired, "UpdateService");
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(UPDATE, resource, error))?;
        Ok(())
    }
}

/// A `DescribeServices` answer, and the services it lists without some of their [`COUNTS`],
/// by name, with the counts each lacks.
struct Described {
    answer: DescribeServicesOutput,
    missing: BTreeMap<String, Vec<&'static str>>,
}

/// How a service is named in errors and in stored state: `cluster/service`.
pub(crate) fn service_id(cluster: &str, service: &str) -> String {
    format!("{cluster}/{service}")
}

/// The capacity of `service` (a name or an ARN) of `cluster` in a `DescribeServices` answer:
/// its failure if the answer lists one for it, [`ErrorKind::NotFound`] if the answer lists
/// neither it nor a failure for it, [`ErrorKind::Malformed`] if the answer lacks one of its
/// counts or gives a negative one.
fn read(described: &Described, cluster: &str, service: &str) -> Result<CurrentCapacity, AwsError> {
    let answer = &described.answer;
    let resource = service_id(cluster, service);
    let name = service_name(service);
    let failure = answer
        .failures()
        .iter()
        .find(|failure| failure.arn().map(service_name) == Some(name));
    if let Some(failure) = failure {
        let reason = failure.reason().unwrap_or("no reason given");
        let kind = if reason == "MISSING" {
            ErrorKind::NotFound
        } else {
            ErrorKind::Other
        };
        let detail = failure
            .detail()
            .map(|detail| format!(" ({detail})"))
            .unwrap_or_default();
        return Err(AwsError::new(
            DESCRIBE,
            resource,
            kind,
            format!("ECS reports the service {reason}{detail}"),
        ));
    }
    let Some(found) = answer
        .services()
        .iter()
        .find(|found| found.service_name() == Some(name))
    else {
        return Err(AwsError::new(
            DESCRIBE,
            resource,
            ErrorKind::NotFound,
            "ECS returned no such service",
        ));
    };
    if found.status() == Some("INACTIVE") {
        return Err(AwsError::new(
            DESCRIBE,
            resource,
            ErrorKind::NotFound,
            "the service is INACTIVE (deleted)",
        ));
    }
    if let Some(missing) = described.missing.get(name) {
        return Err(AwsError::malformed(
            DESCRIBE,
            resource,
            format!(
                "the answer lists the service without its {}",
                missing.join(", ")
            ),
        ));
    }
    // In the order of COUNTS.
    let values = [
        found.desired_count(),
        found.running_count(),
        found.pending_count(),
    ];
    let [desired, running, pending] = std::array::from_fn(|index| {
        u32::try_from(values[index]).map_err(|_| {
            AwsError::malformed(
                DESCRIBE,
                &resource,
                format!(
                    "the answer gives the service a {} of {}",
                    COUNTS[index], values[index]
                ),
            )
        })
    });
    let running = running?;
    Ok(CurrentCapacity {
        desired: desired?,
        resource_min: None,
        resource_max: None,
        busy: busy(found),
        in_service: Some(running),
        running: Some(running.saturating_add(pending?)),
        ..Default::default()
    })
}

/// A service's name from its name or its ARN (`arn:...:service/cluster/name`, or
/// `arn:...:service/name` in the older format ECS still uses in failures): what an answer's
/// services and failures are matched on.
fn service_name(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

/// Why the service must not be scaled now, if it must not: the rule documented on [`EcsServices`].
fn busy(service: &Service) -> Option<String> {
    if service.status() == Some("DRAINING") {
        return Some("the service is DRAINING (being deleted)".to_owned());
    }
    let deployments = service.deployments();
    let primary = deployments
        .iter()
        .find(|deployment| deployment.status() == Some("PRIMARY"))?;
    let rollout = primary.rollout_state();
    if deployments.len() == 1 && rollout != Some(&DeploymentRolloutState::InProgress) {
        return None;
    }
    Some(format!(
        "deployment {} in progress (rolloutState {}, {} deployment{})",
        primary.id().unwrap_or("without id"),
        rollout.map_or("not reported", DeploymentRolloutState::as_str),
        deployments.len(),
        if deployments.len() == 1 { "" } else { "s" },
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
    use aws_sdk_ecs::types::Deployment;
    use aws_sdk_ecs::types::error::ServiceNotFoundException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use chrono::{TimeDelta, Utc};
    use futures_util::future::join_all;
    use tokio::time::Instant;

    use super::*;
    use crate::rate::tests::{FOUR, assert_turns, since};

    fn deployment(id: &str, status: &str, rollout: Option<DeploymentRolloutState>) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .set_rollout_state(rollout)
            .build()
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service::builder()
            .status("ACTIVE")
            .desired_count(2)
            .set_deployments(Some(deployments))
            .build()
    }

    #[test]
    fn a_completed_single_deployment_is_not_busy() {
        let steady = service(vec![deployment(
            "ecs-svc/1",
            "PRIMARY",
            Some(DeploymentRolloutState::Completed),
        )]);
        assert_eq!(busy(&steady), None);
        let unreported = service(vec![deployment("ecs-svc/1", "PRIMARY", None)]);
        assert_eq!(busy(&unreported), None);
        assert_eq!(busy(&service(vec![])), None);
    }

    #[test]
    fn a_rollout_in_progress_is_busy() {
        let first = service(vec![deployment(
            "ecs-svc/1",
            "PRIMARY",
            Some(DeploymentRolloutState::InProgress),
        )]);
        assert_eq!(
            busy(&first).as_deref(),
            Some("deployment ecs-svc/1 in progress (rolloutState IN_PROGRESS, 1 deployment)")
        );
    }

    #[test]
    fn a_second_deployment_is_busy_even_without_rollout_state() {
        let replacing = service(vec![
            deployment("ecs-svc/2", "PRIMARY", None),
            deployment("ecs-svc/1", "ACTIVE", None),
        ]);
        assert_eq!(
            busy(&replacing).as_deref(),
            Some("deployment ecs-svc/2 in progress (rolloutState not reported, 2 deployments)")
        );
    }

    #[test]
    fn a_draining_service_is_busy() {
        let draining = Service::builder().status("DRAINING").build();
        assert_eq!(
            busy(&draining).as_deref(),
            Some("the service is DRAINING (being deleted)")
        );
    }

    #[tokio::test]
    async fn a_missing_service_names_the_operation_and_the_service() {
        let rule = mock!(Client::update_service).then_error(|| {
            // As the SDK deserializes it: the code and message in the metadata.
            let meta = ErrorMetadata::builder()
                .code("ServiceNotFoundException")
                .message("Service not found.")
                .build();
            UpdateServiceError::ServiceNotFoundException(
                ServiceNotFoundException::builder()
                    .message("Service not found.")
                    .meta(meta)
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);

        let error = EcsServices::new(client)
            .set_desired("shop", "order-processing", 3)
            .await
            .err();

        let error = error.unwrap_or_else(|| panic!("the update should fail"));
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            "ecs:UpdateService on shop/order-processing failed: ServiceNotFoundException: Service not found."
        );
    }

    /// `DescribeServices` answers as bodies: the SDK's JSON deserializer reads them, and no
    /// emulator answers a service without its counts or cuts its answers short.
    fn describe_services_answering(body: &'static str) -> (aws_smithy_mocks::Rule, Client) {
        let rule = mock!(Client::describe_services)
            .then_http_response(move || crate::raw_answer("application/x-amz-json-1.1", body));
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
        (rule, client)
    }

    #[tokio::test]
    async fn a_service_listed_without_a_count_is_refused_and_the_others_read_mocked() {
        let (_rule, client) = describe_services_answering(
            r#"{"services": [
                {"serviceName": "web", "status": "ACTIVE", "desiredCount": 3, "runningCount": 3, "pendingCount": 0},
                {"serviceName": "api", "status": "ACTIVE", "runningCount": 2, "pendingCount": 0},
                {"serviceName": "jobs", "status": "ACTIVE", "desiredCount": -1, "runningCount": 0, "pendingCount": 0}
            ], "failures": []}"#,
        );

        let answers = EcsServices::new(client)
            .current_all(&[("shop", "web"), ("shop", "api"), ("shop", "jobs")])
            .await;

        assert_eq!(answers[0].as_ref().map(|now| now.desired), Ok(3));
        let errors: Vec<(ErrorKind, String)> = answers[1..]
            .iter()
            .map(|answer| {
                let error = answer.clone().expect_err("refused");
                (error.kind(), error.to_string())
            })
            .collect();
        assert_eq!(
            errors,
            [
                (
                    ErrorKind::Malformed,
                    "ecs:DescribeServices on shop/api failed: Malformed: the answer lists the service without its desiredCount".to_owned()
                ),
                (
                    ErrorKind::Malformed,
                    "ecs:DescribeServices on shop/jobs failed: Malformed: the answer gives the service a desiredCount of -1".to_owned()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_read_fails_every_service_it_was_for_mocked() {
        let truncated = r#"{"services": [{"serviceName": "web", "status": "ACTIVE", "desiredCou"#;
        let wrong_type = r#"{"services": [{"serviceName": "web", "desiredCount": "three"}]}"#;
        for (body, cause) in [
            (truncated, "invalid input: unterminated string key"),
            (wrong_type, "type mismatch: expected integer"),
        ] {
            let (_rule, client) = describe_services_answering(body);

            let answers = EcsServices::new(client)
                .current_all(&[("shop", "web"), ("shop", "api")])
                .await;

            for (answer, service) in answers.into_iter().zip(["web", "api"]) {
                let error = answer.expect_err("an unreadable answer fails the call");
                assert_eq!(error.kind(), ErrorKind::Malformed);
                assert_eq!(
                    error.to_string(),
                    format!(
                        "ecs:DescribeServices on shop/{service} failed: Malformed: the answer could not be read: {cause}; \
                         received HTTP 200 with {} bytes of application/x-amz-json-1.1: `{body}`",
                        body.len()
                    )
                );
            }
        }
    }

    /// An `UpdateService` rule answering every call, noting in `sent` when each reached ECS:
    /// milliseconds after `start`.
    fn noted_updates(start: Instant, sent: &Arc<Mutex<Vec<u128>>>) -> Rule {
        let sent = Arc::clone(sent);
        mock!(Client::update_service).then_compute_output(move |_| {
            sent.lock().unwrap().push(since(start));
            UpdateServiceOutput::builder().build()
        })
    }

    /// Sets the desired count of services `svc-0` to `svc-{count - 1}` of `shop`, all at once as a
    /// pass does, each answer beside when it came: milliseconds after `start`.
    async fn set_all(
        services: &EcsServices,
        count: usize,
        start: Instant,
    ) -> Vec<(Result<(), AwsError>, u128)> {
        let changes = (0..count).map(|i| async move {
            let answer = services.set_desired("shop", &format!("svc-{i}"), 3).await;
            (answer, since(start))
        });
        join_all(changes).await
    }

    // Mocked: no emulator limits its rate, and the calls' timing runs on tokio's paused clock.
    #[tokio::test(start_paused = true)]
    async fn updates_keep_to_the_share_of_the_service_modify_limit_mocked() {
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rule = noted_updates(start, &sent);
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
        let services = EcsServices::new(client).with_rate_limits(RateLimits::shared_by(FOUR));

        let answers = set_all(&services, 15, start).await;

        assert!(
            answers.iter().all(|(answer, _)| answer.is_ok()),
            "{answers:?}"
        );
        // ECS's service modify actions allow 50 at once and 5 per second per account: one of 4
        // evaluators sends 12 at once, then one at 0.4, 1.2 and 2 seconds.
        let sent = sent.lock().unwrap().clone();
        assert_turns(&sent[..12], &[0; 12]);
        assert_turns(&sent[12..], &[400, 1200, 2000]);
    }

    // Mocked, as above.
    #[tokio::test(start_paused = true)]
    async fn an_update_whose_turn_comes_after_the_deadline_is_refused_before_it_mocked() {
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rule = noted_updates(start, &sent);
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
        let deadline = Utc::now() + TimeDelta::seconds(1);
        let services = EcsServices::new(client)
            .with_rate_limits(RateLimits::shared_by(FOUR).until(Some(deadline)));

        // 12 go at once and the 13th at 0.4 s, before the deadline; the 14th's turn, at 1.2 s,
        // is after it.
        let mut answers = set_all(&services, 14, start).await;

        let (refused, at) = answers.pop().unwrap();
        assert!(
            answers.iter().all(|(answer, _)| answer.is_ok()),
            "{answers:?}"
        );
        assert_turns(&[answers[12].1], &[400]);
        assert_eq!(at, 0, "refused at once, not at or after the deadline");
        assert_eq!(rule.num_calls(), 13, "the refused update never reached ECS");
        let refused = refused.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Throttled);
        assert!(
            refused.to_string().starts_with(
                "ecs:UpdateService on shop/svc-13 failed: Throttled: not sent: its turn under capstan's share of the ECS service modify actions rate limit (12.5 at once, 1.25 per second: AWS's 50 and 5 divided by a concurrency of 4) comes 0.2 s after the deadline it must start by"
            ),
            "{refused}"
        );
    }
}
