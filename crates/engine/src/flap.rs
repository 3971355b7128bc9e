//! Flaps: what one is, and how a recent one lengthens the scale-in window.
//!
//! A *flap* is a change that reverses the change before it within [`FLAP_WINDOW`]. A flap is
//! remembered for [`FLAP_MEMORY`] (in [`ResourceState::flapped_at`]), and while it is, a
//! scale-in waits for `stabilization.in_after_flap` (default an hour) instead of
//! `stabilization.in`, when that is longer. A scale-out never waits longer. A flap the longer
//! window prevented is remembered as one (see
//! [`Explanation::held_back_flap`](crate::Explanation::held_back_flap)).
//!
//! Why: on noisy traffic whose level sits between two capacities, a scale-in window of minutes
//! is soon followed by a scale-out, and the next scale-in by another (the trace's swings are
//! wider than a unit's share of the capacity). An hour-long window after a flap makes a
//! scale-in within the hour of a scale-out impossible: it goes no lower than the highest
//! recommendation of that hour. Traffic that does not flap keeps the short window and the
//! capacity it saves. Two days are longer than the daily cycle, so a flap at one hour of the
//! day (a trough followed by the morning's rise) is still remembered at that hour the next day.

use chrono::{DateTime, TimeDelta, Utc};

use capstan_policy::model::{Duration, Guards};

use crate::observe::{Direction, ResourceState};

/// How soon after a change a reversal of it counts as a flap: an hour. A demand cycle reverses
/// capacity twice a day whatever the policy (up in the morning, down at night), so counting
/// every reversal would rate a policy that moves in fewer, larger steps worse; a reversal within
/// the hour undoes a move the demand did not call for. An hour is twelve times the HPA's
/// 5-minute scale-down window and AWS's default 300-second cooldown, so slow oscillations
/// count too.
pub const FLAP_WINDOW: TimeDelta = TimeDelta::hours(1);

/// How long a flap lengthens the scale-in window: two days.
pub const FLAP_MEMORY: TimeDelta = TimeDelta::days(2);

/// Whether a move `next`, at a time and in a direction, reverses the move `previous` within
/// [`FLAP_WINDOW`] of it.
pub fn flaps(previous: (DateTime<Utc>, Direction), next: (DateTime<Utc>, Direction)) -> bool {
    previous.1 != next.1 && next.0 - previous.0 <= FLAP_WINDOW
}

/// The scale-in stabilization window at `now`: its name in the policy, its length, and the
/// flap that lengthened it, if one did.
pub(crate) fn scale_in_window(
    guards: &Guards,
    state: &ResourceState,
    now: DateTime<Utc>,
) -> (&'static str, Duration, Option<DateTime<Utc>>) {
    match remembered(state.flapped_at, now) {
        Some(at) if guards.stabilization_in_after_flap > guards.stabilization_in => (
            "stabilization.in_after_flap",
            guards.stabilization_in_after_flap,
            Some(at),
        ),
        _ => ("stabilization.in", guards.stabilization_in, None),
    }
}

/// Whether the capacity was held by the longer window where `stabilization.in` alone would have
/// scaled in within [`FLAP_WINDOW`] of a scale-out: a flap prevented. `proposal` is what the
/// rules asked for, `held` the capacity after every clamp, and `bounded` gives a value within
/// the bounds (a floor that holds the capacity anyway prevents nothing). Remembering it as a
/// flap keeps traffic that would flap at the same hour each day damped every day, not every
/// other one.
pub(crate) fn held_back(
    guards: &Guards,
    state: &ResourceState,
    current: u32,
    proposal: u32,
    held: u32,
    now: DateTime<Utc>,
    bounded: impl Fn(u32) -> u32,
) -> bool {
    let (_, _, flapped_at) = scale_in_window(guards, state, now);
    let scale_in_would_flap = state
        .last_change()
        .is_some_and(|last| flaps((last.at, last.direction), (now, Direction::In)));
    if flapped_at.is_none() || !scale_in_would_flap || held != current || proposal >= current {
        return false;
    }
    let highest = state
        .recommended_within(guards.stabilization_in, now)
        .max()
        .unwrap_or(0);
    let without = proposal.max(highest.min(current));
    without < current && bounded(without) < current
}

/// `flapped_at`, while it is still remembered at `now`.
pub(crate) fn remembered(
    flapped_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    flapped_at.filter(|at| now - *at < FLAP_MEMORY)
}
