//! The CloudWatch alarms capstan manages: read them, plan a sync with
//! [`capstan_engine::alarms::plan`], apply the plan.
//!
//! Only one stack's [`AlarmNamespace`] is ever read, and ownership is decided by tags, never by
//! name alone: an alarm in the namespace without `capstan:managed=true` and the stack's
//! `capstan:stack` (checked with `ListTagsForResource`) is neither changed nor deleted.

use aws_sdk_cloudwatch::Client;
use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, MetricDataQuery, Statistic, Tag,
};
use chrono::{DateTime, Utc};

use capstan_engine::alarms::{
    self, AlarmNamespace, AlarmPlan, AlarmSpec, Comparison, ExistingAlarm, MANAGED_TAG, POLICY_TAG,
    STACK_TAG,
};
use capstan_engine::model::{self, Expression, MathQuery, MetricQuery};

use crate::cloudwatch::{data_queries, dimensions};
use crate::error::{AwsError, ErrorKind};
use crate::rate::{Category, RateLimits};

const DESCRIBE: &str = "cloudwatch:DescribeAlarms";
const LIST_TAGS: &str = "cloudwatch:ListTagsForResource";
const PUT: &str = "cloudwatch:PutMetricAlarm";
const DELETE: &str = "cloudwatch:DeleteAlarms";

/// CloudWatch alarms through `DescribeAlarms`, `ListTagsForResource`, `PutMetricAlarm` and
/// `DeleteAlarms`.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarms {
    client: Client,
    limits: RateLimits,
}

impl CloudWatchAlarms {
    /// The most alarm names CloudWatch accepts in one `DeleteAlarms` call.
    pub const MAX_DELETE_PER_CALL: usize = 100;

    /// Alarms on the given client, within [`RateLimits::default`] (alarm-sync runs alone).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            limits: RateLimits::default(),
        }
    }

    /// The same alarms, for work that must stop sending calls at `deadline`: a call whose turn
    /// under its rate limit would come after it fails at once (see [`RateLimits::until`]).
    pub fn until(self, deadline: Option<DateTime<Utc>>) -> Self {
        Self {
            limits: self.limits.until(deadline),
            ..self
        }
    }

    /// The metric alarms of `namespace` (every `DescribeAlarms` page of its name prefix), each
    /// with its capstan tags and its settings as capstan reads them.
    pub async fn existing(
        &self,
        namespace: &AlarmNamespace,
    ) -> Result<Vec<ExistingAlarm>, AwsError> {
        let prefix = namespace.to_string();
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_name_prefix(&prefix)
            .into_paginator()
            .send();
        self.limits
            .take(Category::DescribeAlarms, DESCRIBE, &prefix)
            .await?;
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AwsError::from_sdk(DESCRIBE, &prefix, error))?;
            for alarm in page.metric_alarms() {
                let Some(name) = alarm.alarm_name().filter(|name| namespace.contains(name)) else {
                    continue;
                };
                let tags = self.tags(name, alarm.alarm_arn()).await?;
                let value = |key: &str| {
                    tags.iter()
                        .find(|tag| tag.key() == Some(key))
                        .and_then(Tag::value)
                };
                let stack = value(STACK_TAG);
                found.push(ExistingAlarm {
                    name: name.to_owned(),
                    managed: value(MANAGED_TAG.0) == Some(MANAGED_TAG.1),
                    stack: stack.map(str::to_owned),
                    current: spec_of(
                        alarm,
                        stack.unwrap_or_default(),
                        value(POLICY_TAG).unwrap_or_default(),
                    ),
                });
            }
            self.limits
                .take_next_page(
                    page.next_token(),
                    Category::DescribeAlarms,
                    DESCRIBE,
                    &prefix,
                )
                .await?;
        }
        Ok(found)
    }

    /// The plan that brings the alarms of `namespace` in line with `desired`.
    pub async fn plan(
        &self,
        namespace: &AlarmNamespace,
        desired: Vec<AlarmSpec>,
    ) -> Result<AlarmPlan, AwsError> {
        Ok(alarms::plan(
            namespace,
            desired,
            self.existing(namespace).await?,
        ))
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
                    "alarms without the tags {}={} and this stack's {STACK_TAG} hold names the stack needs; rename them, or tag them if this stack may own them",
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
            let names = batch.join(", ");
            self.limits
                .take(Category::DeleteAlarms, DELETE, &names)
                .await?;
            self.client
                .delete_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|error| AwsError::from_sdk(DELETE, names, error))?;
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
        // Metric math is the call's `Metrics`, as GetMetricData is sent it: the expression
        // watched (ReturnData true) and its members (false); a series is named directly.
        let request = match (&metric.math, &metric.stat) {
            (Some(_), _) => request.set_metrics(Some(data_queries(&[metric]))),
            (None, stat) => {
                let request = request
                    .namespace(&metric.namespace)
                    .metric_name(&metric.name)
                    .set_dimensions(Some(dimensions(metric)))
                    .period(to_i32(metric.period_secs));
                match stat {
                    model::Statistic::Percentile(percentile) => {
                        request.extended_statistic(percentile)
                    }
                    other => request.statistic(Statistic::from(other.to_string().as_str())),
                }
            }
        };
        self.limits
            .take(Category::PutMetricAlarm, PUT, &spec.name)
            .await?;
        request
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(PUT, &spec.name, error))?;
        Ok(())
    }

    /// The tags of the alarm `name`; none when CloudWatch gave no ARN to ask with.
    async fn tags(&self, name: &str, arn: Option<&str>) -> Result<Vec<Tag>, AwsError> {
        let Some(arn) = arn else {
            return Ok(Vec::new());
        };
        self.limits
            .take(Category::ListAlarmTags, LIST_TAGS, name)
            .await?;
        let output = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(LIST_TAGS, name, error))?;
        Ok(output.tags().to_vec())
    }
}

/// `alarm`'s settings in capstan's terms (with the stack and policy its tags name), or `None`
/// when it is neither a single-metric alarm with a statistic, period and comparison capstan uses
/// nor a metric math alarm of capstan's subset.
fn spec_of(alarm: &MetricAlarm, stack: &str, policy: &str) -> Option<AlarmSpec> {
    let metric = match alarm.metrics() {
        [] => series_query(
            alarm.namespace(),
            alarm.metric_name(),
            alarm.dimensions(),
            alarm
                .extended_statistic()
                .or_else(|| alarm.statistic().map(Statistic::as_str)),
            alarm.period(),
        )?,
        entries => {
            let watched = entries.iter().find(|e| e.return_data() == Some(true))?;
            query_of(watched, entries, entries.len())?
        }
    };
    let evaluation_periods = u32::try_from(alarm.evaluation_periods()?).ok()?;
    Some(AlarmSpec {
        name: alarm.alarm_name()?.to_owned(),
        stack: stack.to_owned(),
        policy: policy.to_owned(),
        description: alarm.alarm_description().unwrap_or_default().to_owned(),
        metric,
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

/// A series query from the parts an alarm, or one of its `MetricStat` entries, reads back;
/// `None` when one is missing or out of range.
fn series_query(
    namespace: Option<&str>,
    name: Option<&str>,
    dimensions: &[Dimension],
    stat: Option<&str>,
    period: Option<i32>,
) -> Option<MetricQuery> {
    Some(MetricQuery {
        namespace: namespace?.to_owned(),
        name: name?.to_owned(),
        dimensions: dimensions
            .iter()
            .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
            .collect(),
        stat: stat?.parse().ok()?,
        period_secs: u32::try_from(period?).ok()?,
        math: None,
    })
}

/// The query of `entry`, one of a metric math alarm's `entries`: a series, or metric math over
/// the entries its expression names, at most `depth` deep (an alarm whose expressions name one
/// another in a cycle has none).
fn query_of(
    entry: &MetricDataQuery,
    entries: &[MetricDataQuery],
    depth: usize,
) -> Option<MetricQuery> {
    if let Some(stat) = entry.metric_stat() {
        let metric = stat.metric()?;
        return series_query(
            metric.namespace(),
            metric.metric_name(),
            metric.dimensions(),
            stat.stat(),
            stat.period(),
        );
    }
    let expression = Expression::parse(entry.expression()?).ok()?;
    let members: BTreeMap<String, MetricQuery> = expression
        .metrics()
        .into_iter()
        .map(|id| {
            let member = entries.iter().find(|e| e.id() == Some(id))?;
            Some((
                id.to_owned(),
                query_of(member, entries, depth.checked_sub(1)?)?,
            ))
        })
        .collect::<Option<_>>()?;
    let period_secs = match entry.period() {
        Some(period) => u32::try_from(period).ok()?,
        None => members.values().next()?.period_secs,
    };
    let math = MathQuery {
        expression: expression.render(&str::to_owned),
        members,
    };
    Some(MetricQuery::math(math, period_secs))
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
            stack: "shop".into(),
            policy: "web".into(),
            description: "wakes the evaluator".into(),
            metric: MetricQuery {
                namespace: "AWS/ECS".into(),
                name: "CPUUtilization".into(),
                dimensions: BTreeMap::from([("ServiceName".into(), "web".into())]),
                stat,
                period_secs: 60,
                math: None,
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

    fn shop() -> AlarmNamespace {
        AlarmNamespace::new("capstan", "shop").unwrap_or_else(|error| panic!("{error}"))
    }

    fn tags(pairs: &[(&str, &str)]) -> ListTagsForResourceOutput {
        pairs
            .iter()
            .fold(
                ListTagsForResourceOutput::builder(),
                |output, (key, value)| output.tags(Tag::builder().key(*key).value(*value).build()),
            )
            .build()
    }

    #[test]
    fn described_alarms_read_back_as_the_spec_they_were_put_with() {
        for stat in [
            model::Statistic::Average,
            model::Statistic::Percentile("p99.9".into()),
        ] {
            let wanted = spec("capstan/shop/web-scale_in-0", stat);
            assert_eq!(spec_of(&described(&wanted), "shop", "web"), Some(wanted));
        }
        let no_metric = MetricAlarm::builder()
            .alarm_name("capstan-math")
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .build();
        assert_eq!(spec_of(&no_metric, "shop", "web"), None);
    }

    #[tokio::test]
    async fn a_metric_math_alarm_is_put_with_metrics_and_reads_back_unchanged_mocked() {
        // Shaped after the PutMetricAlarm API reference: `Metrics` instead of the metric's name,
        // namespace, dimensions, period and statistic; the expression watched is the entry with
        // ReturnData true.
        let member = |name: &str| MetricQuery {
            name: name.into(),
            ..spec("", model::Statistic::Average).metric
        };
        let math = MathQuery {
            expression: "MAX([cpu, memory])".into(),
            members: BTreeMap::from([
                ("cpu".into(), member("CPUUtilization")),
                ("memory".into(), member("MemoryUtilization")),
            ]),
        };
        let wanted = AlarmSpec {
            metric: MetricQuery::math(math, 60),
            ..spec("capstan/shop/web-scale_in-0", model::Statistic::Average)
        };
        let sent = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = sent.clone();
        let put = mock!(Client::put_metric_alarm)
            .match_requests(move |request| {
                *seen.lock().expect("not poisoned") = Some(request.clone());
                true
            })
            .then_output(|| PutMetricAlarmOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&put]);

        CloudWatchAlarms::new(client)
            .put(&wanted)
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        let request = sent.lock().expect("not poisoned").take().expect("one call");
        assert_eq!(
            (request.namespace(), request.metric_name(), request.period()),
            (None, None, None)
        );
        let entries: Vec<_> = request
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
        let alarm = MetricAlarm::builder()
            .alarm_name(&wanted.name)
            .alarm_description(&wanted.description)
            .set_metrics(Some(request.metrics().to_vec()))
            .evaluation_periods(15)
            .datapoints_to_alarm(12)
            .threshold(30.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .treat_missing_data("missing")
            .build();
        let existing = ExistingAlarm {
            name: wanted.name.clone(),
            managed: true,
            stack: Some("shop".into()),
            current: spec_of(&alarm, "shop", "web"),
        };
        let plan = alarms::plan(&shop(), vec![wanted.clone()], vec![existing]);
        assert_eq!(plan.unchanged, [wanted.name], "{plan}");
    }

    #[tokio::test]
    async fn every_describe_page_of_the_namespace_is_read_and_ownership_comes_from_tags_mocked() {
        let first = mock!(Client::describe_alarms)
            .match_requests(|r| {
                r.next_token().is_none() && r.alarm_name_prefix() == Some("capstan/shop/")
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(described(&spec(
                        "capstan/shop/web-scale_in-0",
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
                        "capstan/shop/by-hand",
                        model::Statistic::Average,
                    )))
                    .metric_alarms(described(&spec(
                        "capstan/shop/of-staging",
                        model::Statistic::Average,
                    )))
                    .build()
            });
        let arn_ends = |suffix: &'static str| {
            move |r: &aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceInput| {
                r.resource_arn().is_some_and(|arn| arn.ends_with(suffix))
            }
        };
        let managed = mock!(Client::list_tags_for_resource)
            .match_requests(arn_ends(":capstan/shop/web-scale_in-0"))
            .then_output(|| {
                tags(&[
                    ("capstan:managed", "true"),
                    ("capstan:stack", "shop"),
                    ("capstan:policy", "web"),
                ])
            });
        let staging = mock!(Client::list_tags_for_resource)
            .match_requests(arn_ends(":capstan/shop/of-staging"))
            .then_output(|| tags(&[("capstan:managed", "true"), ("capstan:stack", "shop-stg")]));
        let unmanaged =
            mock!(Client::list_tags_for_resource).then_output(|| tags(&[("team", "web")]));
        let client = mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            [&first, &second, &managed, &staging, &unmanaged]
        );

        let found = CloudWatchAlarms::new(client)
            .existing(&shop())
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let owned: Vec<(&str, bool)> = found
            .iter()
            .map(|a| (a.name.as_str(), shop().owns(a)))
            .collect();
        assert_eq!(
            owned,
            [
                ("capstan/shop/web-scale_in-0", true),
                ("capstan/shop/by-hand", false),
                ("capstan/shop/of-staging", false)
            ]
        );
        assert_eq!(found[2].stack.as_deref(), Some("shop-stg"));
        assert_eq!(
            found[0]
                .current
                .as_ref()
                .map(|c| (c.stack.as_str(), c.policy.as_str())),
            Some(("shop", "web"))
        );
    }

    #[tokio::test]
    async fn deletes_go_in_batches_of_at_most_a_hundred_after_the_puts_mocked() {
        let put = mock!(Client::put_metric_alarm)
            .match_requests(|r| {
                let tags: Vec<(&str, &str)> = r
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
                    .collect();
                r.extended_statistic() == Some("p99")
                    && r.statistic().is_none()
                    && tags
                        == [
                            ("capstan:managed", "true"),
                            ("capstan:stack", "shop"),
                            ("capstan:policy", "web"),
                        ]
                    && r.treat_missing_data() == Some("missing")
            })
            .then_output(|| PutMetricAlarmOutput::builder().build());
        let delete = mock!(Client::delete_alarms)
            .match_requests(|r| r.alarm_names().len() <= CloudWatchAlarms::MAX_DELETE_PER_CALL)
            .then_output(|| DeleteAlarmsOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put, &delete]);
        let plan = AlarmPlan {
            create: vec![spec(
                "capstan/shop/web-scale_out-0",
                model::Statistic::Percentile("p99".into()),
            )],
            delete: (0..250)
                .map(|i| format!("capstan/shop/old-scale_out-{i}"))
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
            create: vec![spec(
                "capstan/shop/web-scale_out-1",
                model::Statistic::Average,
            )],
            conflicts: vec!["capstan/shop/web-scale_out-0".into()],
            ..AlarmPlan::default()
        };

        let error = CloudWatchAlarms::new(client).apply(&plan).await.err();

        assert_eq!(put.num_calls(), 0);
        let error = error.unwrap_or_else(|| panic!("a conflict must refuse the plan"));
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert_eq!(error.resource(), "capstan/shop/web-scale_out-0");
    }
}
