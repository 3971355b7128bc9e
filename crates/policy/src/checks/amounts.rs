//! Step amounts and step limits are at least 1: `add`, `remove`, `add_percent`,
//! `remove_percent` and `guards.max_step`.
//!
//! Why: a step of 0 never changes capacity, and a `max_step` of 0 blocks every action in its
//! direction; both look like a policy that scales but is not. (`set: 0` is a capacity, not an
//! amount, and is allowed; `paused: true` is the way to stop a policy acting.)
//!
//! Example: `{ when: ..., add: 0 }` is rejected at `0`.

use crate::raw::Spanned;
use crate::validate::Findings;

/// The amount, or `None` after recording that it is 0.
pub(crate) fn check(key: &str, amount: &Spanned<u32>, out: &mut Findings<'_>) -> Option<u32> {
    if amount.value == 0 {
        out.error(amount.referenced, format!("`{key}` must be at least 1"));
        return None;
    }
    Some(amount.value)
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};
    use crate::model::Step;

    #[test]
    fn positive_amounts_and_limits_are_accepted() {
        let policy = valid(EXAMPLE);
        assert_eq!(policy.scale_out[0].step, Step::Add(2));
        assert_eq!(
            (policy.guards.max_step_out, policy.guards.max_step_in),
            (Some(4), Some(1))
        );
    }

    #[test]
    fn a_zero_step_is_rejected_at_the_amount() {
        let errors = errors(&EXAMPLE.replace("add: 2", "add: 0"));
        assert_eq!(errors, ["11:55: `add` must be at least 1"]);
    }

    #[test]
    fn set_zero_is_a_capacity_and_allowed() {
        let text = EXAMPLE
            .replace("capacity: { min: 2", "capacity: { min: 0")
            .replace("remove: 1", "set: 0");
        assert_eq!(valid(&text).scale_in[0].step, Step::Set(0));
    }

    #[test]
    fn a_zero_max_step_is_rejected() {
        let errors =
            errors(&EXAMPLE.replace("max_step: { out: 4, in: 1 }", "max_step: { out: 0, in: 0 }"));
        assert_eq!(
            errors,
            [
                "19:20: `max_step.out` must be at least 1",
                "19:27: `max_step.in` must be at least 1"
            ]
        );
    }
}
