//! Every rule names a metric defined under `metrics`.
//!
//! Why: a rule on an undefined metric could never fire, silently; usually it is a typo.
//!
//! Example: `when: { metric: cpuu, above: 70 }` with only `cpu` defined is rejected at `cpuu`
//! with "did you mean `cpu`?".

use crate::raw::Spanned;
use crate::suggest;
use crate::validate::Findings;

/// Records a problem unless `metric` is one of `defined`.
pub(crate) fn check<'a>(
    metric: &Spanned<String>,
    defined: impl Iterator<Item = &'a str> + Clone,
    out: &mut Findings<'_>,
) {
    let name = metric.value.as_str();
    if defined.clone().any(|d| d == name) {
        return;
    }
    let help = match suggest::closest(name, defined) {
        Some(closest) => format!("did you mean `{closest}`?"),
        None => format!("define `{name}` under `metrics`"),
    };
    out.error_with_help(
        metric.referenced,
        format!("undefined metric `{name}`"),
        help,
    );
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};

    #[test]
    fn defined_metrics_resolve() {
        let policy = valid(EXAMPLE);
        for rule in policy.rules() {
            assert_eq!(policy.metric(&rule.when.metric).period_secs, 60);
        }
    }

    #[test]
    fn an_undefined_metric_is_rejected_with_the_closest_name() {
        let text = EXAMPLE.replace("{ metric: cpu, above: 70", "{ metric: cpuu, above: 70");
        assert_eq!(errors(&text), ["11:23: undefined metric `cpuu`"]);
        assert_eq!(helps(&text), [Some("did you mean `cpu`?".to_owned())]);
    }

    #[test]
    fn an_undefined_metric_far_from_any_says_where_to_define_it() {
        let text = EXAMPLE.replace(
            "{ metric: cpu, above: 70",
            "{ metric: queue_depth, above: 70",
        );
        assert_eq!(
            helps(&text),
            [Some("define `queue_depth` under `metrics`".to_owned())]
        );
    }
}
