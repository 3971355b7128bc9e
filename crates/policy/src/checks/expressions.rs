//! A metric's `expression` is CloudWatch metric math of capstan's subset (see
//! [`crate::expression`]) over metrics the policy defines, at their period.
//!
//! Why: CloudWatch would refuse the query at every evaluation, or evaluate members over
//! periods unlike the expression's; caught here, the mistake is shown where it is written.
//!
//! Example: `expression: "100 * (1 - conns / 40O)"` is rejected at the `O` of `40O`, and
//! `expression: "conn / 400"` with only `conns` defined at `conn`, with "did you mean `conns`?".

use std::collections::BTreeMap;

use crate::expression::Expression;
use crate::model::Duration;
use crate::raw::Spanned;
use crate::suggest;
use crate::validate::Findings;

/// The parsed expression, or `None` after recording what is wrong with it. `period` is the
/// expression metric's, `periods` every metric's of the policy (`None` where invalid).
pub(crate) fn check(
    written: &Spanned<String>,
    period: &Spanned<Duration>,
    periods: &BTreeMap<&str, Option<u32>>,
    out: &mut Findings<'_>,
) -> Option<Expression> {
    let text = written.value.as_str();
    let expression = match Expression::parse(text) {
        Ok(expression) => expression,
        Err(error) => {
            out.error_within(written.referenced, error.offset, error.message, error.help);
            return None;
        }
    };
    if expression.metrics().is_empty() {
        out.error_with_help(
            written.referenced,
            "the expression refers to no metric",
            "numbers alone have no datapoints: refer to a metric of the policy",
        );
        return None;
    }
    let mut valid = true;
    for id in expression.metrics() {
        let at = offset_of(text, id);
        match periods.get(id) {
            None => {
                valid = false;
                let help = match suggest::closest(id, periods.keys().copied()) {
                    Some(closest) => format!("did you mean `{closest}`?"),
                    None => format!("define `{id}` under `metrics`"),
                };
                out.error_within(
                    written.referenced,
                    at,
                    format!("undefined metric `{id}`"),
                    Some(help),
                );
            }
            Some(Some(member)) if u64::from(*member) != period.value.as_secs() => {
                valid = false;
                out.error_within(
                    written.referenced,
                    at,
                    format!(
                        "member `{id}` has a period of {}, unlike the expression's {}",
                        Duration::from_secs(u64::from(*member)),
                        period.value
                    ),
                    Some("an expression and its members share one period".to_owned()),
                );
            }
            Some(_) => {}
        }
    }
    valid.then_some(expression)
}

/// Characters before the first whole-word occurrence of the metric id `id` in `text`.
fn offset_of(text: &str, id: &str) -> usize {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(id)
        .find(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + id.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
        .map_or(0, |(at, _)| text[..at].chars().count())
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};
    use crate::expression::Expression;

    /// The example with an expression metric `free` written as `definition`.
    fn with(definition: &str) -> String {
        EXAMPLE.replace("metrics:\n", &format!("metrics:\n  free: {definition}\n"))
    }

    #[test]
    fn a_valid_expression_becomes_a_query_of_its_members_at_its_period() {
        let policy = valid(&with(
            "{ expression: \"100 * (1 - cpu / 400)\", period: 1m }",
        ));
        let free = policy.metric("free");
        assert_eq!(free.period_secs, 60);
        let math = free.math.as_ref().expect("metric math");
        assert_eq!(
            math.parse(),
            Ok(Expression::parse("100 * (1 - cpu / 400)").expect("parses"))
        );
        assert_eq!(
            math.members,
            [("cpu".to_owned(), policy.metric("cpu").clone())].into()
        );
    }

    #[test]
    fn threshold_and_track_rules_may_use_an_expression_metric() {
        let text = EXAMPLE
            .replace(
                "conns_free: { namespace: Shop/Orders, name: AvailableConnectionsPercent, stat: Minimum,",
                "conns_free: { expression: \"100 - cpu\",",
            )
            .replace("scale_in:\n", "track:\n  - { metric: conns_free, target: 50 }\nscale_in:\n");
        let policy = valid(&text);
        let rule = &policy.scale_out[1].when.metric;
        let query = policy.metric(rule);
        assert_eq!(rule, "conns_free");
        assert_eq!(policy.track[0].metric, "conns_free");
        assert_eq!(
            query.math.as_ref().map(|math| &math.members["cpu"]),
            Some(policy.metric("cpu"))
        );
    }

    #[test]
    fn a_replica_plan_quiet_rule_and_a_forecast_may_use_expression_metrics() {
        let policy = valid(
            "version: 1
name: orders-db-replicas
target:
  rds_replicas: { source: orders-db }
capacity: { min: 0, max: 3 }
metrics:
  cpu: { namespace: AWS/RDS, name: CPUUtilization, dimensions: { DBInstanceIdentifier: orders-db }, stat: Average, period: 1m }
  reads: { namespace: AWS/RDS, name: ReadIOPS, dimensions: { DBInstanceIdentifier: orders-db }, stat: Sum, period: 1m }
  writes: { namespace: AWS/RDS, name: WriteIOPS, dimensions: { DBInstanceIdentifier: orders-db }, stat: Sum, period: 1m }
  io: { expression: reads + writes, period: 1m }
  busy: { expression: \"MAX([cpu, 100 * writes / (reads + writes)])\", period: 1m }
forecast: { metric: io, per_replica: 500 }
replicas:
  ahead_of: forecast
  lead: 1h
  quiet: { metric: busy, below: 40, for: 10m }
",
        );
        let quiet = &policy.replicas.as_ref().expect("a plan").quiet;
        assert_eq!(quiet.as_ref().map(|q| q.metric.as_str()), Some("busy"));
        let busy = policy.metric("busy").math.as_ref().expect("metric math");
        assert_eq!(
            busy.members.keys().collect::<Vec<_>>(),
            ["cpu", "reads", "writes"]
        );
        let forecast = policy.forecast.as_ref().expect("a forecast");
        let io = policy.metric(&forecast.metric).math.as_ref();
        assert_eq!(io.map(|m| m.members.len()), Some(2));
    }

    #[test]
    fn a_syntax_error_points_into_the_expression_quoted_or_not() {
        assert_eq!(
            errors(&with("{ expression: \"cpu +\", period: 1m }")),
            ["8:29: the expression ends where a number, a metric id or `(` is expected"]
        );
        assert_eq!(
            errors(&with("{ expression: cpu * * 2, period: 1m }")),
            ["8:29: expected a number, a metric id or `(`, found `*`"]
        );
    }

    #[test]
    fn an_unknown_id_is_rejected_where_it_stands_with_the_closest_name() {
        let text = with("{ expression: \"1 - cpux / 2\", period: 1m }");
        assert_eq!(errors(&text), ["8:28: undefined metric `cpux`"]);
        assert_eq!(helps(&text), [Some("did you mean `cpu`?".to_owned())]);
    }

    #[test]
    fn an_expression_of_numbers_alone_is_rejected() {
        assert_eq!(
            errors(&with("{ expression: \"MAX([1, 2])\", period: 1m }")),
            ["8:23: the expression refers to no metric"]
        );
    }

    #[test]
    fn a_function_outside_the_subset_is_rejected_with_the_supported_ones() {
        let text = with("{ expression: \"RATE(cpu)\", period: 1m }");
        assert_eq!(
            errors(&text),
            ["8:24: function `RATE` is not in capstan's supported subset of metric math"]
        );
        assert_eq!(
            helps(&text),
            [Some(
                "supported functions: ABS, AVG, MAX, MIN, SUM".to_owned()
            )]
        );
    }

    #[test]
    fn an_id_that_is_not_a_cloudwatch_id_is_rejected() {
        assert_eq!(
            errors(&with("{ expression: \"Cpu * 2\", period: 1m }")),
            ["8:24: `Cpu` is not a valid CloudWatch metric id"]
        );
    }

    #[test]
    fn a_member_with_another_period_is_rejected_at_the_member() {
        assert_eq!(
            errors(&with(
                "{ expression: \"MAX([conns_free, cpu])\", period: 5m }"
            )),
            [
                "8:29: member `conns_free` has a period of 1m, unlike the expression's 5m",
                "8:41: member `cpu` has a period of 1m, unlike the expression's 5m",
            ]
        );
    }
}
