//! A metric is either a series (`namespace`, `name` and `stat`, perhaps `dimensions`) or an
//! `expression`, never both nor neither.
//!
//! Why: GetMetricData asks for one or the other; a metric that mixes them is ambiguous, and one
//! missing a part of a series reads nothing.
//!
//! Example: `{ expression: "a / 2", stat: Average, period: 1m }` is rejected: an expression has
//! no statistic of its own, its members do.

use crate::model::Statistic;
use crate::raw::{Metric, Spanned};
use crate::validate::Findings;

/// What a metric is.
pub(crate) enum Kind<'m> {
    /// A CloudWatch series.
    Series {
        /// Its namespace.
        namespace: &'m str,
        /// Its name.
        name: &'m str,
        /// Its statistic.
        stat: &'m Statistic,
    },
    /// Metric math over other metrics, as written.
    Expression(&'m Spanned<String>),
}

/// The kind of the metric defined under `key`, or `None` after recording why it has none.
pub(crate) fn check<'m>(
    key: &str,
    metric: &'m Spanned<Metric>,
    out: &mut Findings<'_>,
) -> Option<Kind<'m>> {
    let m = &metric.value;
    let series = [
        ("namespace", m.namespace.is_some()),
        ("name", m.name.is_some()),
        ("stat", m.stat.is_some()),
        ("dimensions", !m.dimensions.is_empty()),
    ];
    let given: Vec<&str> = series.iter().filter(|f| f.1).map(|f| f.0).collect();
    match (&m.expression, &m.namespace, &m.name, &m.stat) {
        (Some(expression), None, None, None) if given.is_empty() => {
            Some(Kind::Expression(expression))
        }
        (Some(_), ..) => {
            out.error_with_help(
                metric.referenced,
                format!(
                    "metric `{key}` has both an `expression` and `{}`",
                    given.join("`, `")
                ),
                "an expression's members have the statistics and dimensions: remove them here",
            );
            None
        }
        (None, Some(namespace), Some(name), Some(stat)) => Some(Kind::Series {
            namespace,
            name,
            stat,
        }),
        (None, ..) => {
            let missing: Vec<&str> = series[..3].iter().filter(|f| !f.1).map(|f| f.0).collect();
            out.error_with_help(
                metric.referenced,
                format!("metric `{key}` has no `{}`", missing.join("`, `")),
                "give a series `namespace`, `name` and `stat`, or an `expression`",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    const CONNS: &str =
        "conns_free: { namespace: Shop/Orders, name: AvailableConnectionsPercent, stat: Minimum,";

    #[test]
    fn a_series_and_an_expression_are_each_accepted() {
        let text = EXAMPLE.replace(
            "metrics:\n",
            "metrics:\n  half: { expression: \"cpu / 2\", period: 1m }\n",
        );
        let policy = valid(&text);
        assert_eq!(policy.metric("cpu").name, "CPUUtilization");
        let half = policy
            .metric("half")
            .math
            .as_ref()
            .map(|math| &math.expression);
        assert_eq!(half.map(String::as_str), Some("(cpu / 2)"));
    }

    #[test]
    fn a_metric_with_both_or_neither_is_rejected_at_the_metric() {
        let both = EXAMPLE.replace(CONNS, "conns_free: { expression: cpu, stat: Minimum,");
        assert_eq!(
            errors(&both),
            ["9:15: metric `conns_free` has both an `expression` and `stat`"]
        );
        let neither = EXAMPLE.replace(CONNS, "conns_free: { namespace: Shop/Orders,");
        assert_eq!(
            errors(&neither),
            ["9:15: metric `conns_free` has no `name`, `stat`"]
        );
    }
}
