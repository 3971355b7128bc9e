//! EC2 Auto Scaling groups: reading and setting their desired capacity.

use std::collections::HashMap;

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::AutoScalingGroup;

use capstan_engine::CurrentCapacity;

use crate::count;
use crate::error::{AwsError, ErrorKind};
use crate::rate::{Category, RateLimits};

const DESCRIBE: &str = "autoscaling:DescribeAutoScalingGroups";
const SET_DESIRED: &str = "autoscaling:SetDesiredCapacity";

/// How many groups one `DescribeAutoScalingGroups` call asks about: the API takes 50 names by
/// default and up to `MaxRecords`, whose maximum is 100.
pub const NAMES_PER_CALL: usize = 100;

/// Auto Scaling groups, by name.
#[derive(Debug, Clone)]
pub struct AutoScalingGroups {
    client: Client,
    limits: RateLimits,
}

impl AutoScalingGroups {
    /// Groups reached through the given client, within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            limits: RateLimits::default(),
        }
    }

    /// The same groups, reached within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The group's desired capacity, its own `MinSize`/`MaxSize`, and its instances in any
    /// lifecycle state as running (an instance being terminated may still hold connections). A
    /// group is never busy.
    ///
    /// A group that does not exist is an [`ErrorKind::NotFound`] error naming it; a group whose
    /// `DesiredCapacityType` is not `units` (it counts vCPUs or memory, for attribute-based
    /// instance type selection) is [`ErrorKind::Invalid`]: capstan counts instances.
    pub async fn current(&self, name: &str) -> Result<CurrentCapacity, AwsError> {
        self.describe(name).await.map(|group| capacity(&group))
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
                Ok(found) => answers.extend(
                    asked
                        .iter()
                        .map(|name| checked(name, found.get(*name)).map(capacity)),
                ),
                Err(error) => answers.extend(asked.iter().map(|name| Err(error.about(*name)))),
            }
        }
        answers
    }

    /// Sets the group's desired capacity, without honouring the group's own cooldown (capstan
    /// keeps its own).
    ///
    /// A value outside the group's `[MinSize, MaxSize]` is refused with an
    /// [`ErrorKind::Invalid`] error before anything is changed. The engine already clamps to
    /// these bounds; this check guards against a caller that did not.
    pub async fn set_desired(&self, name: &str, desired: u32) -> Result<(), AwsError> {
        let group = self.describe(name).await?;
        let (min, max) = (group.min_size().unwrap_or(0), group.max_size().unwrap_or(0));
        let Some(desired) = i32::try_from(desired)
            .ok()
            .filter(|desired| (min..=max).contains(desired))
        else {
            return Err(AwsError::new(
                SET_DESIRED,
                name,
                ErrorKind::Invalid,
                format!("desired capacity {desired} is outside the group's bounds [{min}, {max}]"),
            ));
        };
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

    async fn describe(&self, name: &str) -> Result<AutoScalingGroup, AwsError> {
        let found = self.describe_many(&[name]).await?;
        checked(name, found.get(name)).cloned()
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

/// The capacity a group reports; see [`AutoScalingGroups::current`].
fn capacity(group: &AutoScalingGroup) -> CurrentCapacity {
    CurrentCapacity {
        desired: count(group.desired_capacity()),
        resource_min: Some(count(group.min_size())),
        resource_max: Some(count(group.max_size())),
        busy: None,
        running: Some(u32::try_from(group.instances().len()).unwrap_or(u32::MAX)),
        ..Default::default()
    }
}

/// The group `name` as found, if capstan can scale it: it exists and counts instances.
fn checked<'a>(
    name: &str,
    group: Option<&'a AutoScalingGroup>,
) -> Result<&'a AutoScalingGroup, AwsError> {
    let group = group.ok_or_else(|| {
        AwsError::new(
            DESCRIBE,
            name,
            ErrorKind::NotFound,
            "no Auto Scaling group has this name",
        )
    })?;
    match group.desired_capacity_type() {
        None | Some("units") => Ok(group),
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
}
