//! A schedule window can open and its floor is reachable: `duration` is longer than zero and
//! `min` is at most `capacity.max`.
//!
//! Why: a zero-length window never raises the floor, and a floor above `capacity.max` could
//! never be met; both mean the author expects capacity that will not be there.
//!
//! Example: with `capacity: { min: 2, max: 10 }`, a schedule `min: 12` is rejected at `12`.
//! A floor at or below `capacity.min` is allowed; it just has no effect.

use crate::raw::{Capacity, Schedule};
use crate::validate::Findings;

/// Records a problem for a zero-length window or a floor above `capacity.max`.
pub(crate) fn check(schedule: &Schedule, capacity: &Capacity, out: &mut Findings<'_>) {
    let (floor, max) = (&schedule.min, capacity.max.value);
    if schedule.duration.value.as_secs() == 0 {
        out.error(
            schedule.duration.referenced,
            format!(
                "schedule `{}` never opens: its `duration` is 0",
                schedule.name
            ),
        );
    }
    if floor.value > max {
        out.error_with_help(
            floor.referenced,
            format!(
                "schedule `{}` raises the floor to {}, above `capacity.max` ({max})",
                schedule.name, floor.value
            ),
            "lower the schedule's `min` or raise `capacity.max`",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    #[test]
    fn a_floor_up_to_max_is_accepted() {
        let policy = valid(&EXAMPLE.replace("duration: 3h, min: 8", "duration: 3h, min: 10"));
        assert_eq!(policy.schedules[0].min, 10);
        assert_eq!(policy.schedules[0].duration.as_secs(), 3 * 3600);
    }

    #[test]
    fn a_floor_above_max_is_rejected_at_the_floor() {
        let errors = errors(&EXAMPLE.replace("duration: 3h, min: 8", "duration: 3h, min: 12"));
        assert_eq!(
            errors,
            ["16:91: schedule `flash-sale` raises the floor to 12, above `capacity.max` (10)"]
        );
    }

    #[test]
    fn a_zero_length_window_is_rejected_at_the_duration() {
        let errors = errors(&EXAMPLE.replace("duration: 3h", "duration: 0m"));
        assert_eq!(
            errors,
            ["16:82: schedule `flash-sale` never opens: its `duration` is 0"]
        );
    }
}
