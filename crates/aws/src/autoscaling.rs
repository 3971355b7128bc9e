//! EC2 Auto Scaling groups: reading and setting their desired capacity.

use std::collections::HashMap;

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState};

use capstan_engine::CurrentCapacity;

use crate::answer::WholeDocument;
use crate::error::{AwsError, ErrorKind};
use crate::how_many;
use crate::rate::{Category, RateLimits};

const DESCRIBE: &str = "autoscaling:DescribeAutoScalingGroups";
const SET_DESIRED: &str = "autoscaling:SetDesiredCapacity";

/// How many groups one `DescribeAutoScalingGroups` call asks about: the API takes 50 names by
/// default and up to `MaxRecords`, whose maximum is 100.
pub const NAMES_PER_CALL: usize = 100;

/// Auto Scaling groups, by name.
///
/// # Malformed answers
///
/// Auto Scaling keeps every group within its own bounds: each write that sets `MinSize`,
/// `MaxSize` or `DesiredCapacity` is refused or adjusted so that `MinSize <= DesiredCapacity <=
/// MaxSize`. An answer that breaks this (or lacks one of the three, or gives a negative one)
/// is not a state Auto Scaling holds: one of its numbers is wrong and capstan cannot tell which,
/// so any change worked out from it could go the wrong way. Such a group is refused as
/// [`ErrorKind::Malformed`], naming the three numbers, and not acted on; the other groups of the
/// same answer are read as usual. A policy's own `capacity` bounds are separate and only ever
/// narrow the group's.
///
/// The SDK's XML reader takes an answer cut short for a complete one with fewer groups; the
/// client refuses such an answer as unreadable, so that its groups fail as
/// [`ErrorKind::Malformed`] rather than as not found.
#[derive(Debug, Clone)]
pub struct AutoScalingGroups {
    client: Client,
    limits: RateLimits,
}

impl AutoScalingGroups {
    /// Groups reached through the given client, whose answers are refused when cut short (see
    /// [Malformed answers](Self#malformed-answers)), within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        let config = client.config().to_builder().interceptor(WholeDocument);
        Self {
            client: Client::from_conf(config.build()),
            limits: RateLimits::default(),
        }
    }

    /// The same groups, reached within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The group's desired capacity, its own `MinSize`/`MaxSize`, its instances in any
    /// lifecycle state as running (an instance being terminated may still hold connections), and
    /// those `InService` as in service (the instances a group metric such as CPU is measured
    /// over; launches still `Pending` are not). A group is never busy.
    ///
    /// A group that does not exist is an [`ErrorKind::NotFound`] error naming it; a group whose
    /// `DesiredCapacityType` is not `units` (it counts vCPUs or memory, for attribute-based
    /// instance type selection) is [`ErrorKind::Invalid`]: capstan counts instances. A group
    /// whose sizes do not hold together is [`ErrorKind::Malformed`] (see
    /// [Malformed answers](Self#malformed-answers)).
    pub async fn current(&self, name: &str) -> Result<CurrentCapacity, AwsError> {
        self.describe(name)
            .await
            .map(|(group, sizes)| capacity(&group, sizes))
    }

    /// [`current`](Self::current) of each of `names`, one answer per name in the order given,
    /// read [`NAMES_PER_CALL`] groups per `DescribeAutoScalingGroups` call. A group missing
    /// from the answer is that group's [`ErrorKind::NotFound`] error; a call that fails is the
    /// error of each group it asked about.
    pub async fn current_all(&self, names: &[&str]) -> Vec<Result<CurrentCapacity, AwsError>> {
        let mut answers = Vec::with_capacity(names.len());
        for run in crate::batches(names, NAMES_PER_CALL) {
            let asked = &names[run];
            match self.describe_many(asked).await {
                Ok(found) => answers.extend(asked.iter().map(|name| {
                    checked(name, found.get(*name)).map(|(group, sizes)| capacity(group, sizes))
                })),
                Err(error) => answers.extend(asked.iter().map(|name| Err(error.about(*name)))),
            }
        }
        answers
    }

    /// Sets the group's desired capacity, without honouring the group's own cooldown (capstan
    /// keeps its own). The engine keeps `desired` within the group's `[MinSize, MaxSize]` as
    /// [`current`](Self::current) read them (`resource_min` and `resource_max`); should the
    /// group's bounds change in between, Auto Scaling refuses the value (`ValidationError`),
    /// and the error names the group. No call re-reads the group first: that would cost an Auto
    /// Scaling call, of the bucket the changes draw from, for every change.
    pub async fn set_desired(&self, name: &str, desired: u32) -> Result<(), AwsError> {
        let desired = i32::try_from(desired).map_err(|_| {
            AwsError::new(
                SET_DESIRED,
                name,
                ErrorKind::Invalid,
                format!("desired capacity {desired} is beyond what Auto Scaling takes"),
            )
        })?;
        self.limits
            .take(Category::AutoScaling, SET_DESIRED, name)
            .await?;
        tracing::info!(group = name, desired, "SetDesiredCapacity");
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(desired)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(SET_DESIRED, name, error))?;
        Ok(())
    }

    async fn describe(&self, name: &str) -> Result<(AutoScalingGroup, Sizes), AwsError> {
        let found = self.describe_many(&[name]).await?;
        checked(name, found.get(name)).map(|(group, sizes)| (group.clone(), sizes))
    }

    /// The groups of the given names that exist, by name, following `NextToken`. Errors name the
    /// first group asked about; [`current_all`](Self::current_all) renames them for each.
    async fn describe_many(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, AutoScalingGroup>, AwsError> {
        let first = names.first().copied().unwrap_or_default();
        let mut found = HashMap::new();
        let mut token = None;
        loop {
            self.limits
                .take(Category::AutoScaling, DESCRIBE, first)
                .await?;
            let answer = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(
                    names.iter().map(|name| (*name).to_owned()).collect(),
                ))
                .max_records(NAMES_PER_CALL as i32)
                .set_next_token(token)
                .send()
                .await
                .map_err(|error| AwsError::from_sdk(DESCRIBE, first, error))?;
            let page = answer.auto_scaling_groups.unwrap_or_default();
            let more = !page.is_empty();
            found.extend(
                page.into_iter()
                    .filter_map(|group| Some((group.auto_scaling_group_name.clone()?, group))),
            );
            token = answer.next_token.filter(|_| more);
            if token.is_none() {
                return Ok(found);
            }
        }
    }
}

/// A group's sizes, as checked: `min <= desired <= max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    min: u32,
    max: u32,
    desired: u32,
}

/// The capacity a group reports; see [`AutoScalingGroups::current`].
fn capacity(group: &AutoScalingGroup, sizes: Sizes) -> CurrentCapacity {
    CurrentCapacity {
        desired: sizes.desired,
        resource_min: Some(sizes.min),
        resource_max: Some(sizes.max),
        busy: None,
        in_service: Some(how_many(group.instances().iter().filter(|instance| {
            instance.lifecycle_state() == Some(&LifecycleState::InService)
        }))),
        running: Some(how_many(group.instances())),
        ..Default::default()
    }
}

/// The sizes of the group `name` as the answer gives them, if they hold together (see
/// [Malformed answers](AutoScalingGroups#malformed-answers)).
fn sizes(name: &str, group: &AutoScalingGroup) -> Result<Sizes, AwsError> {
    let malformed = |problem: String| AwsError::malformed(DESCRIBE, name, problem);
    let size = |member: &str, value: Option<i32>| {
        let value = value
            .ok_or_else(|| malformed(format!("the answer lists the group without its {member}")))?;
        u32::try_from(value)
            .map_err(|_| malformed(format!("the answer gives the group a {member} of {value}")))
    };
    let sizes = Sizes {
        min: size("MinSize", group.min_size())?,
        max: size("MaxSize", group.max_size())?,
        desired: size("DesiredCapacity", group.desired_capacity())?,
    };
    if (sizes.min..=sizes.max).contains(&sizes.desired) {
        Ok(sizes)
    } else {
        Err(malformed(format!(
            "the answer gives the group a DesiredCapacity of {} outside its own MinSize {} and MaxSize {}, which Auto Scaling never holds",
            sizes.desired, sizes.min, sizes.max
        )))
    }
}

/// The group `name` as found, with its sizes, if capstan can scale it: it exists, counts
/// instances and its sizes hold together.
fn checked<'a>(
    name: &str,
    group: Option<&'a AutoScalingGroup>,
) -> Result<(&'a AutoScalingGroup, Sizes), AwsError> {
    let group = group.ok_or_else(|| {
        AwsError::new(
            DESCRIBE,
            name,
            ErrorKind::NotFound,
            "no Auto Scaling group has this name",
        )
    })?;
    match group.desired_capacity_type() {
        None | Some("units") => Ok((group, sizes(name, group)?)),
        Some(other) => Err(AwsError::new(
            DESCRIBE,
            name,
            ErrorKind::Invalid,
            format!(
                "the group's DesiredCapacityType is {other}: capstan scales groups whose capacity counts instances (units) only"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsError;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    #[tokio::test]
    async fn a_refused_call_names_the_operation_and_the_group() {
        let rule = mock!(Client::describe_auto_scaling_groups).then_error(|| {
            DescribeAutoScalingGroupsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message(
                        "User is not authorized to perform: autoscaling:DescribeAutoScalingGroups",
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&rule]);

        let error = AutoScalingGroups::new(client).current("web").await.err();

        let error = error.unwrap_or_else(|| panic!("the read should fail"));
        assert_eq!(error.kind(), ErrorKind::AccessDenied);
        assert_eq!(
            error.to_string(),
            "autoscaling:DescribeAutoScalingGroups on web failed: AccessDenied: \
             User is not authorized to perform: autoscaling:DescribeAutoScalingGroups"
        );
    }

    #[tokio::test]
    async fn pages_are_followed_and_each_group_answered_mocked() {
        use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
        let group = |name: &str, desired: i32| {
            AutoScalingGroup::builder()
                .auto_scaling_group_name(name)
                .min_size(0)
                .max_size(10)
                .desired_capacity(desired)
                .build()
        };
        let first = mock!(Client::describe_auto_scaling_groups)
            .match_requests(|input| {
                input.next_token().is_none() && input.max_records() == Some(100)
            })
            .then_output(move || {
                DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(group("web", 2))
                    .next_token("web")
                    .build()
            });
        let second = mock!(Client::describe_auto_scaling_groups)
            .match_requests(|input| input.next_token() == Some("web"))
            .then_output(move || {
                DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(group("api", 3))
                    .build()
            });
        let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&first, &second]);

        let answers = AutoScalingGroups::new(client)
            .current_all(&["api", "gone", "web"])
            .await;

        let desired: Vec<Result<u32, ErrorKind>> = answers
            .into_iter()
            .map(|answer| answer.map(|now| now.desired).map_err(|error| error.kind()))
            .collect();
        assert_eq!(desired, [Ok(3), Err(ErrorKind::NotFound), Ok(2)]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_group_counting_vcpus_is_refused_mocked_answer_shaped_after_the_api_reference() {
        // DescribeAutoScalingGroups returns DesiredCapacityType for attribute-based groups.
        let rule = mock!(Client::describe_auto_scaling_groups).then_output(|| {
            aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(
                    AutoScalingGroup::builder()
                        .auto_scaling_group_name("web")
                        .min_size(0)
                        .max_size(64)
                        .desired_capacity(16)
                        .desired_capacity_type("vcpu")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&rule]);

        let error = AutoScalingGroups::new(client).current("web").await.err();

        let error = error.unwrap_or_else(|| panic!("a group counting vCPUs is refused"));
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert!(
            error.to_string().contains("DesiredCapacityType is vcpu"),
            "{error}"
        );
    }

    #[test]
    fn a_group_whose_sizes_do_not_hold_together_is_refused() {
        let group = |min: Option<i32>, max: Option<i32>, desired: Option<i32>| {
            AutoScalingGroup::builder()
                .auto_scaling_group_name("web")
                .set_min_size(min)
                .set_max_size(max)
                .set_desired_capacity(desired)
                .build()
        };
        let refusal = |min, max, desired| {
            let error = sizes("web", &group(min, max, desired)).expect_err("refused");
            assert_eq!(error.kind(), ErrorKind::Malformed);
            assert_eq!(error.operation(), DESCRIBE);
            error.message().to_owned()
        };

        assert_eq!(
            sizes("web", &group(Some(1), Some(5), Some(5))),
            Ok(Sizes {
                min: 1,
                max: 5,
                desired: 5
            })
        );
        assert_eq!(
            refusal(Some(1), Some(5), Some(9)),
            "the answer gives the group a DesiredCapacity of 9 outside its own MinSize 1 and MaxSize 5, which Auto Scaling never holds"
        );
        assert_eq!(
            refusal(Some(3), Some(2), Some(2)),
            "the answer gives the group a DesiredCapacity of 2 outside its own MinSize 3 and MaxSize 2, which Auto Scaling never holds"
        );
        assert_eq!(
            refusal(Some(1), Some(5), None),
            "the answer lists the group without its DesiredCapacity"
        );
        assert_eq!(
            refusal(Some(-1), Some(5), Some(2)),
            "the answer gives the group a MinSize of -1"
        );
    }

    /// A `DescribeAutoScalingGroups` answer of `groups` (`<member>` elements), as Auto Scaling
    /// writes it.
    fn describe_answer(groups: &str) -> String {
        format!(
            r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups>{groups}</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>7c6e177f</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>"#
        )
    }

    #[tokio::test]
    async fn an_answer_cut_short_or_of_the_wrong_type_fails_every_group_it_was_for_mocked() {
        // The SDK's XML reader reads these bodies; no emulator cuts its answers short or
        // writes a word for a number.
        let member = |desired: &str| {
            format!(
                "<member><AutoScalingGroupName>web</AutoScalingGroupName><MinSize>1</MinSize>\
                 <MaxSize>5</MaxSize><DesiredCapacity>{desired}</DesiredCapacity></member>"
            )
        };
        let whole = describe_answer(&member("2"));
        let cut = whole[..whole.find("<MaxSize>").expect("a MaxSize")].to_owned();
        let wrong_type = describe_answer(&member("two"));
        for (body, cause) in [
            (
                cut,
                "the XML document ends before the end tag of its root element \
                 `DescribeAutoScalingGroupsResponse`: the body was cut short",
            ),
            (
                wrong_type,
                "error parsing XML: expected (integer: \
                 `com.amazonaws.autoscaling#AutoScalingGroupDesiredCapacity`)",
            ),
        ] {
            let answer = body.clone();
            let rule = mock!(Client::describe_auto_scaling_groups)
                .then_http_response(move || crate::raw_answer("text/xml", answer.clone()));
            let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&rule]);

            let answers = AutoScalingGroups::new(client)
                .current_all(&["web", "api"])
                .await;

            for (answer, name) in answers.into_iter().zip(["web", "api"]) {
                let error = answer.expect_err("an unreadable answer fails the call");
                assert_eq!(error.kind(), ErrorKind::Malformed);
                let shown: String = body.chars().take(100).collect();
                assert_eq!(
                    error.to_string(),
                    format!(
                        "autoscaling:DescribeAutoScalingGroups on {name} failed: Malformed: the answer could not be read: {cause}; \
                         received HTTP 200 with {} bytes of text/xml: `{shown}...`",
                        body.len()
                    )
                );
            }
        }
    }

    #[test]
    fn only_instances_in_service_count_as_in_service_and_every_one_as_running() {
        use aws_sdk_autoscaling::types::Instance;
        let instance = |id: &str, state: LifecycleState| {
            Instance::builder()
                .instance_id(id)
                .lifecycle_state(state)
                .build()
        };
        let group = AutoScalingGroup::builder()
            .auto_scaling_group_name("web")
            .instances(instance("i-1", LifecycleState::InService))
            .instances(instance("i-2", LifecycleState::InService))
            .instances(instance("i-3", LifecycleState::Pending))
            .instances(instance("i-4", LifecycleState::Terminating))
            .build();
        let sizes = Sizes {
            min: 0,
            max: 10,
            desired: 3,
        };

        let now = capacity(&group, sizes);

        assert_eq!(
            (now.desired, now.in_service, now.running),
            (3, Some(2), Some(4))
        );
    }
}
