//! `capacity.min` is at most `capacity.max`.
//!
//! Why: with `min` above `max` no capacity satisfies the policy, and which bound wins would be
//! an accident of the engine's clamping order.
//!
//! Example: `capacity: { min: 12, max: 3 }` is rejected at `12`.

use crate::raw::Capacity;
use crate::validate::Findings;

/// Records a problem if `capacity.min` is above `capacity.max`.
pub(crate) fn check(capacity: &Capacity, out: &mut Findings<'_>) {
    let (min, max) = (&capacity.min, &capacity.max);
    if min.value > max.value {
        out.error_with_help(
            min.referenced,
            format!(
                "capacity `min` ({}) is above `max` ({})",
                min.value, max.value
            ),
            "`min` must be at most `max`",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    #[test]
    fn equal_bounds_are_accepted() {
        valid(&EXAMPLE.replace(
            "capacity: { min: 2, max: 10 }",
            "capacity: { min: 8, max: 8 }",
        ));
    }

    #[test]
    fn min_above_max_is_rejected_at_min() {
        let errors = errors(&EXAMPLE.replace(
            "capacity: { min: 2, max: 10 }",
            "capacity: { min: 12, max: 10 }",
        ));
        assert_eq!(errors, ["6:18: capacity `min` (12) is above `max` (10)"]);
    }
}
