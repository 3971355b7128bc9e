//! A `replicas` plan is on an `rds_replicas` policy, names an existing schedule as
//! `<policy>/<schedule>` (with a `count` within the policy's bounds) or is `ahead_of: forecast`
//! (on a policy with a `forecast`, and without a `count`: the forecast decides), has a lead time
//! longer than zero, and a `quiet` condition on a defined metric.
//!
//! Why: a plan ahead of a window that does not exist would never create a replica, and one with
//! no lead time would create it only once the peak has begun: too late, since creation takes
//! many minutes.
//!
//! Example: `replicas: { ahead_of: storefront/flash-sal, lead: 45m }` is rejected at the name,
//! with "did you mean `flash-sale`?".

use std::collections::BTreeMap;

use crate::checks::{metric_refs, thresholds, windows};
use crate::model::{self, AheadOf, MetricQuery, ReplicaPlan, Target};
use crate::raw::{PolicyFile, Replicas, Spanned};
use crate::suggest;
use crate::validate::{Findings, Parsed};

/// The file's plan: `Some(None)` without one, `None` once a problem has been recorded.
pub(crate) fn check(
    file: &PolicyFile,
    set: &[Parsed<'_>],
    queries: &BTreeMap<&str, Option<MetricQuery>>,
    out: &mut Findings<'_>,
) -> Option<Option<ReplicaPlan>> {
    let Some(Spanned {
        value: plan,
        referenced,
        ..
    }) = &file.replicas
    else {
        return Some(None);
    };
    if !matches!(file.target.value, Target::RdsReplicas { .. }) {
        out.error_with_help(
            *referenced,
            format!(
                "`replicas` plans read replicas, but this policy scales {}",
                file.target.value.kind()
            ),
            "use `replicas` on an rds_replicas policy",
        );
        return None;
    }
    let ahead_of = if plan.is_ahead_of_forecast() {
        forecast(file, plan, out)
    } else {
        scheduled(plan, set, file.capacity.value.max.value, out)
    };
    if plan.lead.value.as_secs() == 0 {
        out.error_with_help(
            plan.lead.referenced,
            "`replicas.lead` must be longer than 0s",
            "give the time a replica takes to create, e.g. `45m`",
        );
    }
    let quiet = match &plan.quiet {
        None => Some(None),
        Some(when) => condition(when, queries, out).map(Some),
    };
    Some(ReplicaPlan {
        ahead_of: ahead_of?,
        lead: plan.lead.value,
        retire_after: plan.retire_after.unwrap_or(model::Duration::from_secs(0)),
        quiet: quiet?,
    })
    .filter(|_| plan.lead.value.as_secs() > 0)
    .map(Some)
}

/// A plan ahead of the policy's own forecast: the policy has one, and the plan no `count`.
fn forecast(file: &PolicyFile, plan: &Replicas, out: &mut Findings<'_>) -> Option<AheadOf> {
    let mut valid = true;
    if file.forecast.is_none() {
        out.error_with_help(
            plan.ahead_of.referenced,
            "`ahead_of: forecast` needs the policy's `forecast`",
            "add one, e.g. `forecast: { metric: read_requests, per_replica: 2000 }`",
        );
        valid = false;
    }
    if let Some(count) = &plan.count {
        out.error_with_help(
            count.referenced,
            "`replicas.count` is for a schedule window: ahead of the forecast, it decides how many",
            "remove `count`; `forecast.per_replica` sets how much each replica serves",
        );
        valid = false;
    }
    valid.then_some(AheadOf::Forecast)
}

/// A plan ahead of a schedule window: the schedule it names and a `count` from 1 to `max`.
fn scheduled(
    plan: &Replicas,
    set: &[Parsed<'_>],
    max: u32,
    out: &mut Findings<'_>,
) -> Option<AheadOf> {
    let schedule = schedule(plan, set, out);
    let count = plan
        .count
        .as_ref()
        .map_or(model::DEFAULT_REPLICA_COUNT, |count| count.value);
    if let Some(at) = plan.count.as_ref().map(|count| count.referenced)
        && !(1..=max).contains(&count)
    {
        out.error_with_help(
            at,
            format!("`replicas.count` is {count}, outside 1 to `capacity.max` ({max})"),
            "plan at least one replica, and no more than the policy allows",
        );
        return None;
    }
    Some(AheadOf::Schedule {
        name: plan.ahead_of.value.clone(),
        schedule: Box::new(schedule?),
        count,
    })
}

/// The schedule `ahead_of` names, copied from its policy.
fn schedule(
    plan: &Replicas,
    set: &[Parsed<'_>],
    out: &mut Findings<'_>,
) -> Option<model::Schedule> {
    let at = plan.ahead_of.referenced;
    let Some((policy, name)) = plan.ahead_of.value.split_once('/') else {
        out.error_with_help(
            at,
            format!(
                "`ahead_of` is `{}`, neither `<policy>/<schedule>` nor `forecast`",
                plan.ahead_of.value
            ),
            "name the window, e.g. `storefront/flash-sale`, or write `forecast`",
        );
        return None;
    };
    let Some(owner) = set.iter().find(|p| p.file.name.value == policy) else {
        let names = set.iter().map(|p| p.file.name.value.as_str());
        let help = suggest::closest(policy, names)
            .map_or("name a policy of the set".to_owned(), |closest| {
                format!("did you mean `{closest}`?")
            });
        out.error_with_help(at, format!("no policy named `{policy}`"), help);
        return None;
    };
    let schedules = &owner.file.schedule;
    let Some(found) = schedules.iter().find(|s| s.name == name) else {
        let help = suggest::closest(name, schedules.iter().map(|s| s.name.as_str())).map_or(
            format!("`{policy}` has no schedule of that name"),
            |closest| format!("did you mean `{closest}`?"),
        );
        out.error_with_help(
            at,
            format!("policy `{policy}` has no schedule `{name}`"),
            help,
        );
        return None;
    };
    Some(crate::validate::schedule(found))
}

/// The quiet condition, checked like a rule's `when`.
fn condition(
    when: &Spanned<crate::raw::Condition>,
    queries: &BTreeMap<&str, Option<MetricQuery>>,
    out: &mut Findings<'_>,
) -> Option<model::Condition> {
    let metric = &when.value.metric;
    metric_refs::check(metric, queries.keys().copied(), out);
    let query = queries.get(metric.value.as_str()).and_then(Option::as_ref);
    let threshold = thresholds::check(when, out);
    let window = windows::check(&when.value, query, out);
    Some(model::Condition {
        metric: metric.value.clone(),
        threshold: threshold?,
        window: window?,
    })
}

#[cfg(test)]
mod tests {
    use crate::PolicySet;
    use crate::checks::testing::{EXAMPLE, diagnostics_of, sources};
    use crate::model::{AheadOf, Threshold};

    fn replicas(plan: &str) -> String {
        format!(
            "version: 1\nname: orders-db-replicas\ntarget: {{ rds_replicas: {{ source: orders-db }} }}\ncapacity: {{ min: 0, max: 3 }}\nmetrics:\n  source_cpu: {{ namespace: AWS/RDS, name: CPUUtilization, stat: Average, period: 1m }}\nreplicas: {plan}\n"
        )
    }

    #[test]
    fn a_plan_copies_the_schedule_it_names() {
        let text = replicas(
            "{ ahead_of: order-processing/flash-sale, lead: 45m, count: 2, retire_after: 30m, quiet: { metric: source_cpu, below: 40, for: 10m } }",
        );
        let set = PolicySet::from_sources(sources(&[EXAMPLE, &text]))
            .map_err(|r| r.to_string())
            .expect("valid");
        let plan = set.policies()[1].replicas.clone().expect("a plan");
        let AheadOf::Schedule {
            name,
            schedule,
            count,
        } = &plan.ahead_of
        else {
            panic!("a plan ahead of a schedule: {plan:?}");
        };
        assert_eq!(name, "order-processing/flash-sale");
        assert_eq!(schedule.name, "flash-sale");
        assert_eq!(schedule.duration.as_secs(), 3 * 3600);
        assert_eq!(
            (plan.lead.as_secs(), *count, plan.retire_after.as_secs()),
            (45 * 60, 2, 30 * 60)
        );
        let quiet = plan.quiet.expect("a quiet condition");
        assert_eq!(
            (quiet.threshold, quiet.window.window),
            (Threshold::Below(40.0), 10)
        );
    }

    #[test]
    fn a_missing_window_a_zero_lead_and_a_count_above_max_are_rejected() {
        let text = replicas("{ ahead_of: order-processing/flash-sal, lead: 0m, count: 4 }");
        let diagnostics = diagnostics_of(&[EXAMPLE, &text]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.message.as_str(), d.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "policy `order-processing` has no schedule `flash-sal`",
                    Some("did you mean `flash-sale`?")
                ),
                (
                    "`replicas.lead` must be longer than 0s",
                    Some("give the time a replica takes to create, e.g. `45m`")
                ),
                (
                    "`replicas.count` is 4, outside 1 to `capacity.max` (3)",
                    Some("plan at least one replica, and no more than the policy allows")
                ),
            ]
        );
        let unknown = replicas("{ ahead_of: order-processin/flash-sale, lead: 45m }");
        assert_eq!(
            diagnostics_of(&[EXAMPLE, &unknown])[0].help.as_deref(),
            Some("did you mean `order-processing`?")
        );
    }

    #[test]
    fn a_plan_on_another_kind_of_target_is_rejected() {
        let text = EXAMPLE.replace(
            "paused: false",
            "replicas: { ahead_of: order-processing/flash-sale, lead: 45m }",
        );
        assert_eq!(
            diagnostics_of(&[&text])[0].message,
            "`replicas` plans read replicas, but this policy scales ecs_service"
        );
    }

    /// The replica policy of `replicas(plan)` with `forecast` before its plan.
    fn with_forecast(forecast: &str, plan: &str) -> String {
        replicas(plan).replace(
            "\nreplicas:",
            &format!("\n  reads: {{ namespace: AWS/RDS, name: ReadIOPS, stat: Sum, period: 1m }}\n{forecast}replicas:"),
        )
    }

    #[test]
    fn a_plan_ahead_of_the_forecast_takes_the_policys_forecast() {
        let text = with_forecast(
            "forecast: { metric: reads, per_replica: 2000 }\n",
            "{ ahead_of: forecast, lead: 1h, retire_after: 30m, quiet: { metric: source_cpu, below: 40, for: 10m } }",
        );
        let set = PolicySet::from_sources(sources(&[&text]))
            .map_err(|r| r.to_string())
            .expect("valid");
        let policy = &set.policies()[0];
        let plan = policy.replicas.clone().expect("a plan");
        assert!(plan.is_ahead_of_forecast(), "{plan:?}");
        assert_eq!(
            (plan.lead.as_secs(), plan.retire_after.as_secs()),
            (3600, 30 * 60)
        );
        assert_eq!(
            policy.forecast.as_ref().map(|f| f.per_replica),
            Some(2000.0)
        );
    }

    #[test]
    fn ahead_of_forecast_needs_a_forecast_and_takes_no_count() {
        let found = |text: &str| -> Vec<String> {
            diagnostics_of(&[text])
                .iter()
                .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
                .collect()
        };
        let without = replicas("{ ahead_of: forecast, lead: 1h }");
        assert_eq!(
            found(&without),
            ["a.yaml:7:23: `ahead_of: forecast` needs the policy's `forecast`"]
        );
        let counted = with_forecast(
            "forecast: { metric: reads, per_replica: 2000 }\n",
            "{ ahead_of: forecast, lead: 1h, count: 2 }",
        );
        assert_eq!(
            found(&counted),
            [
                "a.yaml:9:50: `replicas.count` is for a schedule window: ahead of the forecast, it decides how many"
            ]
        );
    }
}
