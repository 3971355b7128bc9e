//! A condition has exactly one threshold, `above` or `below`, and it is a finite number.
//!
//! Why: with neither the rule could never fire; with both it is unclear whether the band
//! inside or outside them breaches; `.nan` never compares and `.inf` never breaches.
//!
//! Example: `when: { metric: cpu, above: 70, below: 30 }` is rejected at `below`, with the
//! advice to write two rules.

use crate::model::Threshold;
use crate::raw::{Condition, Spanned};
use crate::validate::Findings;

/// The condition's threshold, or `None` after recording why there is not exactly one.
pub(crate) fn check(when: &Spanned<Condition>, out: &mut Findings<'_>) -> Option<Threshold> {
    let threshold = match (&when.value.above, &when.value.below) {
        (Some(above), None) => (above, Threshold::Above(above.value)),
        (None, Some(below)) => (below, Threshold::Below(below.value)),
        (None, None) => {
            out.error_with_help(
                when.referenced,
                "condition has no threshold",
                "add `above: <number>` or `below: <number>`",
            );
            return None;
        }
        (Some(_), Some(below)) => {
            out.error_with_help(
                below.referenced,
                "condition has both `above` and `below`",
                "write one rule per threshold",
            );
            return None;
        }
    };
    match threshold {
        (value, _) if !value.value.is_finite() => {
            out.error(
                value.referenced,
                format!("threshold `{}` is not a finite number", value.value),
            );
            None
        }
        (_, threshold) => Some(threshold),
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};
    use crate::model::Threshold;

    #[test]
    fn one_threshold_is_accepted() {
        let policy = valid(EXAMPLE);
        assert_eq!(policy.scale_out[0].when.threshold, Threshold::Above(70.0));
        assert_eq!(policy.scale_in[0].when.threshold, Threshold::Below(30.0));
    }

    #[test]
    fn no_threshold_is_rejected_at_the_condition() {
        let errors = errors(&EXAMPLE.replace(
            "{ metric: cpu, above: 70, for: 5m }",
            "{ metric: cpu, for: 5m }",
        ));
        assert_eq!(errors, ["11:13: condition has no threshold"]);
    }

    #[test]
    fn both_thresholds_are_rejected_at_below() {
        let errors =
            errors(&EXAMPLE.replace("above: 70, for: 5m", "above: 70, below: 10, for: 5m"));
        assert_eq!(errors, ["11:46: condition has both `above` and `below`"]);
    }

    #[test]
    fn a_non_finite_threshold_is_rejected() {
        let errors = errors(&EXAMPLE.replace("above: 70", "above: .nan"));
        assert_eq!(errors, ["11:35: threshold `NaN` is not a finite number"]);
    }
}
