//! The CloudWatch alarms capstan manages: read them, plan a sync with
//! [`capstan_engine::alarms::plan`], apply the plan.
//!
//! Ownership is decided by tags, never by name alone: an alarm whose name has the prefix but
//! which lacks `capstan:managed=true` (checked with `ListTagsForResource`) is neither changed nor
//! deleted.

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};

use capstan_engine::alarms::{
    self, AlarmPlan, AlarmSpec, Comparison, ExistingAlarm, MANAGED_TAG, POLICY_TAG,
};
use capstan_engine::model::{self, MetricQuery};

use crate::error::{AwsError, ErrorKind};

/// CloudWatch alarms through `DescribeAlarms`, `ListTagsForResource`, `PutMetricAlarm` and
/// `DeleteAlarms`.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarms {
    client: Client,
}

impl CloudWatchAlarms {
    /// The most alarm names CloudWatch accepts in one `DeleteAlarms` call.
    pub const MAX_DELETE_PER_CALL: usize = 100;

    /// Alarms on the given client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The metric alarms whose names start with `prefix` (every `DescribeAlarms` page), each
    /// with whether it carries the managed tag and its settings as capstan reads them.
    pub async fn existing(&self, prefix: &str) -> Result<Vec<ExistingAlarm>, AwsError> {
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|error| AwsError::from_sdk("cloudwatch:DescribeAlarms", prefix, error))?;
            for alarm in page.metric_alarms() {
                let Some(name) = alarm.alarm_name().filter(|name| name.starts_with(prefix)) else {
                    continue;
                };
                let tags = self.tags(name, alarm.alarm_arn()).await?;
                let owned = tags.iter().any(|tag| {
                    (tag.key(), tag.value()) == (Some(MANAGED_TAG.0), Some(MANAGED_TAG.1))
                });
                let policy = tags
                    .iter()
                    .find(|tag| tag.key() == Some(POLICY_TAG))
                    .and_then(Tag::value)
                    .unwrap_or_default();
                found.push(ExistingAlarm {
                    name: name.to_owned(),
                    owned,
                    current: spec_of(alarm, policy),
                });
            }
        }
        Ok(found)
    }

    /// The plan that brings the alarms named with `prefix` in line with `desired`. An empty
    /// prefix is refused: it would put every alarm of the account in scope.
    pub async fn plan(&self, desired: Vec<AlarmSpec>, prefix: &str) -> Result<AlarmPlan, AwsError> {
        if prefix.is_empty() {
            return Err(AwsError::new(
                "capstan:PlanAlarms",
                "alarm prefix",
                ErrorKind::Invalid,
                "the alarm name prefix is empty",
            ));
        }
        Ok(alarms::plan(desired, self.existing(prefix).await?))
    }

    /// Applies `plan`: puts the alarms to create or change, then deletes the ones to delete in
    /// batches of [`Self::MAX_DELETE_PER_CALL`]. A plan with conflicts is refused before any
    /// call, so nothing changes.
    pub async fn apply(&self, plan: &AlarmPlan) -> Result<(), AwsError> {
        if !plan.conflicts.is_empty() {
            return Err(AwsError::new(
                "capstan:SyncAlarms",
                plan.conflicts.join(", "),
                ErrorKind::Invalid,
                format!(
                    "alarms without the tag {}={} hold names capstan needs; rename them, or tag them if capstan may own them",
                    MANAGED_TAG.0, MANAGED_TAG.1
                ),
            ));
        }
        for spec in plan
            .create
            .iter()
            .chain(plan.change.iter().map(|change| &change.spec))
        {
            self.put(spec).await?;
        }
        for batch in plan.delete.chunks(Self::MAX_DELETE_PER_CALL) {
            self.client
                .delete_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|error| {
                    AwsError::from_sdk("cloudwatch:DeleteAlarms", batch.join(", "), error)
                })?;
        }
        Ok(())
    }

    /// Creates or overwrites one alarm, tagged as capstan's (CloudWatch applies the tags when it
    /// creates the alarm; an alarm capstan changes already carries them).
    async fn put(&self, spec: &AlarmSpec) -> Result<(), AwsError> {
        let metric = &spec.metric;
        let request = self
            .client
            .put_metric_alarm()
            .alarm_name(&spec.name)
            .alarm_description(&spec.description)
            .namespace(&metric.namespace)
            .metric_name(&metric.name)
            .set_dimensions(Some(
                metric
                    .dimensions
                    .iter()
                    .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                    .collect(),
            ))
            .period(to_i32(metric.period_secs))
            .evaluation_periods(to_i32(spec.evaluation_periods))
            .datapoints_to_alarm(to_i32(spec.datapoints_to_alarm))
            .threshold(spec.threshold)
            .comparison_operator(match spec.comparison {
                Comparison::GreaterThanThreshold => ComparisonOperator::GreaterThanThreshold,
                Comparison::LessThanThreshold => ComparisonOperator::LessThanThreshold,
            })
            .treat_missing_data(&spec.treat_missing_data)
            .set_tags(Some(
                spec.tags()
                    .into_iter()
                    .map(|(key, value)| Tag::builder().key(key).value(value).build())
                    .collect(),
            ));
        let request = match &metric.stat {
            model::Statistic::Percentile(percentile) => request.extended_statistic(percentile),
            other => request.statistic(Statistic::from(other.to_string().as_str())),
        };
        request
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("cloudwatch:PutMetricAlarm", &spec.name, error))?;
        Ok(())
    }

    /// The tags of the alarm `name`; none when CloudWatch gave no ARN to ask with.
    async fn tags(&self, name: &str, arn: Option<&str>) -> Result<Vec<Tag>, AwsError> {
        let Some(arn) = arn else {
            return Ok(Vec::new());
        };
        let output = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("cloudwatch:ListTagsForResource", name, error))?;
        Ok(output.tags().to_vec())
    }
}

/// `alarm`'s settings in capstan's terms, or `None` when it is not a single-metric alarm with a
/// statistic, period and comparison capstan uses (e.g. a metric-math alarm).
fn spec_of(alarm: &MetricAlarm, policy: &str) -> Option<AlarmSpec> {
    let stat = alarm
        .extended_statistic()
        .or_else(|| alarm.statistic().map(Statistic::as_str))?
        .parse()
        .ok()?;
    let evaluation_periods = u32::try_from(alarm.evaluation_periods()?).ok()?;
    Some(AlarmSpec {
        name: alarm.alarm_name()?.to_owned(),
        policy: policy.to_owned(),
        description: alarm.alarm_description().unwrap_or_default().to_owned(),
        metric: MetricQuery {
            namespace: alarm.namespace()?.to_owned(),
            name: alarm.metric_name()?.to_owned(),
            dimensions: alarm
                .dimensions()
                .iter()
                .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                .collect(),
            stat,
            period_secs: u32::try_from(alarm.period()?).ok()?,
        },
        comparison: Comparison::from_name(alarm.comparison_operator()?.as_str())?,
        threshold: alarm.threshold()?,
        evaluation_periods,
        datapoints_to_alarm: alarm
            .datapoints_to_alarm()
            .map_or(Some(evaluation_periods), |m| u32::try_from(m).ok())?,
        // Absent means CloudWatch's default, `missing`.
        treat_missing_data: alarm.treat_missing_data().unwrap_or("missing").to_owned(),
    })
}

/// A count or period for the API. Validation keeps them small; one too large still reaches
/// CloudWatch, whose refusal then names the problem.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_sdk_cloudwatch::operation::delete_alarms::DeleteAlarmsOutput;
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn spec(name: &str, stat: model::Statistic) -> AlarmSpec {
        AlarmSpec {
            name: name.into(),
            policy: "web".into(),
            description: "wakes the evaluator".into(),
            metric: MetricQuery {
                namespace: "AWS/ECS".into(),
                name: "CPUUtilization".into(),
                dimensions: BTreeMap::from([("ServiceName".into(), "web".into())]),
                stat,
                period_secs: 60,
            },
            comparison: Comparison::LessThanThreshold,
            threshold: 30.0,
            evaluation_periods: 15,
            datapoints_to_alarm: 12,
            treat_missing_data: "missing".into(),
        }
    }

    /// The alarm CloudWatch would describe after `put(spec)`.
    fn described(spec: &AlarmSpec) -> MetricAlarm {
        let alarm = MetricAlarm::builder()
            .alarm_name(&spec.name)
            .alarm_arn(format!(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
                spec.name
            ))
            .alarm_description(&spec.description)
            .namespace(&spec.metric.namespace)
            .metric_name(&spec.metric.name)
            .dimensions(
                Dimension::builder()
                    .name("ServiceName")
                    .value("web")
                    .build(),
            )
            .period(60)
            .evaluation_periods(15)
            .datapoints_to_alarm(12)
            .threshold(30.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .treat_missing_data("missing");
        match &spec.metric.stat {
            model::Statistic::Percentile(p) => alarm.extended_statistic(p),
            other => alarm.statistic(Statistic::from(other.to_string().as_str())),
        }
        .build()
    }

    fn managed_tags() -> ListTagsForResourceOutput {
        ListTagsForResourceOutput::builder()
            .tags(Tag::builder().key("capstan:managed").value("true").build())
            .tags(Tag::builder().key("capstan:policy").value("web").build())
            .build()
    }

    #[test]
    fn described_alarms_read_back_as_the_spec_they_were_put_with() {
        for stat in [
            model::Statistic::Average,
            model::Statistic::Percentile("p99.9".into()),
        ] {
            let wanted = spec("capstan-web-scale_in-0", stat);
            assert_eq!(spec_of(&described(&wanted), "web"), Some(wanted));
        }
        let math = MetricAlarm::builder()
            .alarm_name("capstan-math")
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .build();
        assert_eq!(spec_of(&math, "web"), None);
    }

    #[tokio::test]
    async fn every_describe_page_is_read_and_ownership_comes_from_tags_mocked() {
        let first = mock!(Client::describe_alarms)
            .match_requests(|r| {
                r.next_token().is_none() && r.alarm_name_prefix() == Some("capstan-")
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(described(&spec(
                        "capstan-web-scale_in-0",
                        model::Statistic::Average,
                    )))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_alarms)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(described(&spec(
                        "capstan-by-hand",
                        model::Statistic::Average,
                    )))
                    .build()
            });
        let managed = mock!(Client::list_tags_for_resource)
            .match_requests(|r| {
                r.resource_arn()
                    .is_some_and(|arn| arn.ends_with(":capstan-web-scale_in-0"))
            })
            .then_output(managed_tags);
        let unmanaged = mock!(Client::list_tags_for_resource)
            .then_output(|| ListTagsForResourceOutput::builder().build());
        let client = mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            [&first, &second, &managed, &unmanaged]
        );

        let found = CloudWatchAlarms::new(client)
            .existing("capstan-")
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let owned: Vec<(&str, bool)> = found.iter().map(|a| (a.name.as_str(), a.owned)).collect();
        assert_eq!(
            owned,
            [("capstan-web-scale_in-0", true), ("capstan-by-hand", false)]
        );
        assert_eq!(
            found[0].current.as_ref().map(|c| c.policy.as_str()),
            Some("web")
        );
    }

    #[tokio::test]
    async fn deletes_go_in_batches_of_at_most_a_hundred_after_the_puts_mocked() {
        let put = mock!(Client::put_metric_alarm)
            .match_requests(|r| {
                r.extended_statistic() == Some("p99")
                    && r.statistic().is_none()
                    && r.tags().len() == 2
                    && r.treat_missing_data() == Some("missing")
            })
            .then_output(|| PutMetricAlarmOutput::builder().build());
        let delete = mock!(Client::delete_alarms)
            .match_requests(|r| r.alarm_names().len() <= CloudWatchAlarms::MAX_DELETE_PER_CALL)
            .then_output(|| DeleteAlarmsOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put, &delete]);
        let plan = AlarmPlan {
            create: vec![spec(
                "capstan-web-scale_out-0",
                model::Statistic::Percentile("p99".into()),
            )],
            delete: (0..250)
                .map(|i| format!("capstan-old-scale_out-{i}"))
                .collect(),
            ..AlarmPlan::default()
        };

        CloudWatchAlarms::new(client)
            .apply(&plan)
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((put.num_calls(), delete.num_calls()), (1, 3));
    }

    #[tokio::test]
    async fn a_plan_with_conflicts_changes_nothing() {
        let put =
            mock!(Client::put_metric_alarm).then_output(|| PutMetricAlarmOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]);
        let plan = AlarmPlan {
            create: vec![spec("capstan-web-scale_out-1", model::Statistic::Average)],
            conflicts: vec!["capstan-web-scale_out-0".into()],
            ..AlarmPlan::default()
        };

        let error = CloudWatchAlarms::new(client).apply(&plan).await.err();

        assert_eq!(put.num_calls(), 0);
        let error = error.unwrap_or_else(|| panic!("a conflict must refuse the plan"));
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert_eq!(error.resource(), "capstan-web-scale_out-0");
    }

    #[tokio::test]
    async fn an_empty_prefix_is_refused() {
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []);
        let error = CloudWatchAlarms::new(client)
            .plan(Vec::new(), "")
            .await
            .err();
        assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Invalid));
    }
}
