//! Rules, `track`, `forecast` and a replica plan's `quiet` do not use expression metrics yet.
//!
//! Why: the evaluator reads series only so far (issue 16 §1 is under way: the read, the local
//! evaluation and the alarms on expressions come next); until then, a rule on an expression
//! metric would never have data. This check goes once they do.
//!
//! Example: `when: { metric: conns_free, below: 20 }` with `conns_free` an expression is
//! rejected at `conns_free`.

use crate::raw::{PolicyFile, Spanned};
use crate::validate::Findings;

/// Records a problem at each use in `file` of a metric that `is_expression`.
pub(crate) fn check(
    file: &PolicyFile,
    is_expression: impl Fn(&str) -> bool,
    out: &mut Findings<'_>,
) {
    let rules = file.scale_out.iter().chain(&file.scale_in);
    let uses: Vec<&Spanned<String>> = rules
        .map(|rule| &rule.value.when.value.metric)
        .chain(file.track.iter().map(|rule| &rule.value.metric))
        .chain(file.forecast.iter().map(|forecast| &forecast.value.metric))
        .chain(
            file.replicas
                .iter()
                .filter_map(|plan| plan.value.quiet.as_ref())
                .map(|quiet| &quiet.value.metric),
        )
        .collect();
    for metric in uses {
        if is_expression(&metric.value) {
            out.error(
                metric.referenced,
                format!(
                    "`{}` is an expression metric, which rules cannot use yet",
                    metric.value
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors};

    #[test]
    fn a_rule_on_an_expression_metric_is_rejected_at_its_metric() {
        let text = EXAMPLE.replace(
            "conns_free: { namespace: Shop/Orders, name: AvailableConnectionsPercent, stat: Minimum,",
            "conns_free: { expression: \"cpu / 2\",",
        );
        assert_eq!(
            errors(&text),
            ["12:23: `conns_free` is an expression metric, which rules cannot use yet"]
        );
    }
}
