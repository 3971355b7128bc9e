//! A `forecast` names a defined metric whose period divides an hour, has a finite positive
//! `per_replica`, a `history` of whole hours from `1d` to `14d` and a `lead` of at most `1d`
//! (`max_error`, a fraction, checks itself while being read).
//!
//! On an `rds_replicas` policy, a forecast is only for a plan `ahead_of: forecast`, and has no
//! `lead` of its own (the plan's `replicas.lead` says how far ahead).
//!
//! Why: the forecast learns from the metric's hourly peaks, so a period that does not divide
//! an hour would straddle them; less than a day of history cannot show a daily cycle, and
//! CloudWatch keeps one-minute datapoints for 15 days only; a `per_replica` of 0 divides by
//! zero; a lead longer than a day would raise tomorrow's floor today. A forecast floor on read
//! replicas would create them without waiting for a quiet source, which the plan does.
//!
//! Example: `forecast: { metric: requests, per_replica: 70, history: 12h }` is rejected at
//! `12h`.

use std::collections::BTreeMap;

use super::metric_refs;
use crate::model::{
    self, DEFAULT_FORECAST_HISTORY, DEFAULT_FORECAST_LEAD, DEFAULT_FORECAST_MAX_ERROR, Duration,
    MetricQuery, Target,
};
use crate::raw::{Forecast, Replicas, Spanned};
use crate::validate::Findings;

const HOUR: u64 = 3_600;
const DAY: u64 = 24 * HOUR;

/// The file's forecast: `Some(None)` without one, `None` once a problem has been recorded.
/// `target` is the policy's, `plan` its replica plan if any; `queries` are the file's metrics, `None` for one whose query is
/// invalid (reported elsewhere).
pub(crate) fn check(
    forecast: Option<&Spanned<Forecast>>,
    target: &Target,
    plan: Option<&Replicas>,
    queries: &BTreeMap<&str, Option<MetricQuery>>,
    out: &mut Findings<'_>,
) -> Option<Option<model::Forecast>> {
    let Some(Spanned {
        value: forecast,
        referenced,
    }) = forecast
    else {
        return Some(None);
    };
    let mut valid = true;
    let replicas = matches!(target, Target::RdsReplicas { .. });
    if replicas && !plan.is_some_and(Replicas::is_ahead_of_forecast) {
        out.error_with_help(
            *referenced,
            "`forecast` would create read replicas without waiting for a quiet source",
            "plan replicas ahead of it with `replicas: { ahead_of: forecast, lead: 1h }`, which checks `quiet`",
        );
        valid = false;
    }
    if let Some(lead) = forecast.lead.as_ref().filter(|_| replicas) {
        out.error_with_help(
            lead.referenced,
            "`forecast.lead` is not for read replicas: `replicas.lead` says how far ahead of a peak they are wanted",
            "remove it, and give `replicas.lead` the time to wait for a quiet source and create a replica",
        );
        valid = false;
    }
    let metric = &forecast.metric;
    metric_refs::check(metric, queries.keys().copied(), out);
    if let Some(Some(query)) = queries.get(metric.value.as_str())
        && !HOUR.is_multiple_of(u64::from(query.period_secs))
    {
        out.error_with_help(
            metric.referenced,
            format!(
                "`forecast.metric` `{}` has a period of {}, which does not divide an hour",
                metric.value,
                Duration::from_secs(query.period_secs.into())
            ),
            "forecast a metric whose period is 1m, 5m, 10m, 15m, 30m or 1h, for instance",
        );
        valid = false;
    }
    let per_replica = &forecast.per_replica;
    if !(per_replica.value.is_finite() && per_replica.value > 0.0) {
        out.error(
            per_replica.referenced,
            format!(
                "`forecast.per_replica` must be a positive number, not {}",
                per_replica.value
            ),
        );
        valid = false;
    }
    let history = forecast
        .history
        .as_ref()
        .map_or(DEFAULT_FORECAST_HISTORY, |h| h.value);
    if let Some(at) = forecast.history.as_ref().map(|h| h.referenced) {
        let seconds = history.as_secs();
        if !(DAY..=14 * DAY).contains(&seconds) || !seconds.is_multiple_of(HOUR) {
            out.error_with_help(
                at,
                format!("`forecast.history` must be whole hours from 1d to 14d, not {history}"),
                "a daily cycle needs a day; CloudWatch keeps one-minute datapoints for 15 days",
            );
            valid = false;
        }
    }
    let lead = forecast
        .lead
        .as_ref()
        .map_or(DEFAULT_FORECAST_LEAD, |l| l.value);
    if let Some(at) = forecast.lead.as_ref().map(|l| l.referenced)
        && lead.as_secs() > DAY
    {
        out.error_with_help(
            at,
            format!("`forecast.lead` must be at most 1d, not {lead}"),
            "give the time new units take to serve, e.g. `10m`",
        );
        valid = false;
    }
    valid.then(|| {
        Some(model::Forecast {
            metric: metric.value.clone(),
            per_replica: per_replica.value,
            history,
            lead,
            max_error: forecast.max_error.unwrap_or(DEFAULT_FORECAST_MAX_ERROR),
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};
    use crate::model::{DEFAULT_FORECAST_HISTORY, DEFAULT_FORECAST_LEAD, Duration};

    fn with_forecast(forecast: &str) -> String {
        EXAMPLE.replace("schedule:\n", &format!("forecast: {forecast}\nschedule:\n"))
    }

    #[test]
    fn a_forecast_becomes_the_model_with_its_defaults() {
        let policy = valid(&with_forecast("{ metric: conns_free, per_replica: 70 }"));
        let forecast = policy.forecast.expect("a forecast");
        assert_eq!(forecast.metric, "conns_free");
        assert!((forecast.per_replica - 70.0).abs() < f64::EPSILON);
        assert_eq!(
            (forecast.history, forecast.lead),
            (DEFAULT_FORECAST_HISTORY, DEFAULT_FORECAST_LEAD)
        );
        assert_eq!(forecast.max_error.get(), 0.25);
        let written = valid(&with_forecast(
            "{ metric: cpu, per_replica: 5, history: 7d, lead: 20m, max_error: 40% }",
        ));
        let forecast = written.forecast.expect("a forecast");
        assert_eq!(
            (forecast.history, forecast.lead),
            (Duration::from_secs(7 * 86_400), Duration::from_secs(1_200))
        );
        assert!((forecast.max_error.get() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn no_forecast_no_floor() {
        assert_eq!(valid(EXAMPLE).forecast, None);
    }

    #[test]
    fn bad_metrics_amounts_and_durations_are_each_reported_where_they_stand() {
        let text = with_forecast("{ metric: cpuu, per_replica: 0, history: 12h, lead: 2d }");
        assert_eq!(
            errors(&text),
            [
                "15:21: undefined metric `cpuu`",
                "15:40: `forecast.per_replica` must be a positive number, not 0",
                "15:52: `forecast.history` must be whole hours from 1d to 14d, not 12h",
                "15:63: `forecast.lead` must be at most 1d, not 2d",
            ]
        );
        let partial = with_forecast("{ metric: cpu, per_replica: 5, history: 30h30m }");
        assert_eq!(
            errors(&partial),
            ["15:51: `forecast.history` must be whole hours from 1d to 14d, not 1d6h30m"]
        );
    }

    #[test]
    fn a_forecast_on_read_replicas_is_rejected_at_the_block() {
        let text = with_forecast("{ metric: cpu, per_replica: 5 }").replace(
            "ecs_service: { cluster: shop, service: order-processing }",
            "rds_replicas: { source: orders-db }",
        );
        let errors = errors(&text);
        assert!(
            errors.contains(
                &"15:11: `forecast` would create read replicas without waiting for a quiet source"
                    .to_owned()
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn on_read_replicas_a_forecast_serves_a_plan_ahead_of_it_and_has_no_lead_of_its_own() {
        let text = with_forecast("{ metric: cpu, per_replica: 5, lead: 20m }")
            .replace(
                "ecs_service: { cluster: shop, service: order-processing }",
                "rds_replicas: { source: orders-db }",
            )
            .replace(
                "schedule:\n",
                "replicas: { ahead_of: forecast, lead: 1h }\nschedule:\n",
            );
        let errors = errors(&text);
        assert!(
            errors.contains(
                &"15:48: `forecast.lead` is not for read replicas: `replicas.lead` says how far ahead of a peak they are wanted"
                    .to_owned()
            ),
            "{errors:?}"
        );
        assert!(
            !errors
                .iter()
                .any(|e| e.contains("without waiting for a quiet source")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_metric_whose_period_does_not_divide_an_hour_is_rejected() {
        let text = with_forecast("{ metric: cpu, per_replica: 5 }")
            .replace("period: 1m }\n  conns", "period: 7m }\n  conns");
        let errors = errors(&text);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "15:21: `forecast.metric` `cpu` has a period of 7m, which does not divide an hour"
            )),
            "{errors:?}"
        );
    }
}
