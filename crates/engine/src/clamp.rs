//! The guards and bounds that turn a rule's proposal into the capacity asked for.
//!
//! They apply in this order, each recorded as a [`Clamp`] only when it changed the value:
//!
//! 1. **`missing_data: { fallback: N, after: K }`**: when some rule was missing data on this
//!    evaluation and the `K - 1` before it, the proposal is raised to `N` (never lowered).
//! 2. **Stabilization** (the Kubernetes HPA rule): a scale-in goes no lower than the highest
//!    recommendation of the last `stabilization.in` (default 5 minutes; while a recent flap is
//!    remembered, `stabilization.in_after_flap`, default an hour, when longer: see
//!    [`crate::flap`]), a scale-out no higher than the lowest of the last `stabilization.out`
//!    (default 0: none). A recommendation is what the rules asked for at one evaluation, the
//!    current capacity when none fired; the window holds those strictly after `now - window`,
//!    and this evaluation's own.
//! 3. **Bounds**, which are about safety: the policy's `capacity.min` and `capacity.max`, the
//!    floor of the open schedule windows (the highest `min` among them, never above
//!    `capacity.max`), the floor of the policy's `forecast` (see [`crate::forecast`]), then the
//!    resource's own bounds (an Auto Scaling group's `MinSize` and
//!    `MaxSize`: the service rejects anything outside them, so capstan never asks for it; when
//!    they leave no room inside the policy's bounds, the resource's win).
//! 4. **`max_step`** per direction, relative to the current capacity.
//! 5. **`rate_limit`** per direction (the HPA's scaling policies): over the last `per`, at most
//!    `units` and/or `percent` of the capacity at the period's start. That start is the current
//!    capacity less what capstan's changes in that direction moved within the period (changes
//!    strictly after `now - per`). With both amounts, `select` takes the most permissive
//!    (default) or the least permissive. Percentages round to whole units away from the start,
//!    so a percentage of 0 units allows nothing: pair it with `units` to scale out from 0.
//! 6. **Cooldown**: after the last change at `T`, no scale-out before `T + cooldown.out` and no
//!    scale-in before `T + cooldown.in`; at exactly `T + cooldown` the move is allowed.
//! 7. **`scale_in_pacing`**: a removal of at most `max_per_interval` units, and none until
//!    `max(interval, drain)` after the last change.
//! 8. **`multiple_of`** (an MSK cluster's broker count, in whole sets of its Availability
//!    Zones): a value that is not a multiple is rounded away from the current capacity (up for
//!    a scale-out, down for a scale-in) when that stays within the bounds of step 3, otherwise
//!    towards it. The service refuses anything else, so this wins over `max_step`.
//! 9. **Paused** policy, then **busy** resource: the capacity stays as it is; the clamp records
//!    what would have been asked for.
//!
//! Stabilization, `max_step`, rate limits, cooldowns and pacing limit only the part of a move
//! the rules asked for, never the part the bounds require: the bounds applied to the *current*
//! capacity give the capacity that must be reached whatever the rules say (the current capacity
//! itself when it is within bounds), and no guard holds the value short of it. So a capacity set
//! by hand outside the bounds, or a schedule floor opening, is corrected in one decision, during
//! a cooldown too. It follows that, unless paused or busy, the result is always within the
//! policy's bounds (given resource bounds that overlap them).

use chrono::{DateTime, Utc};

use capstan_policy::model::{Duration, MissingData, Policy, Select};

use crate::decision::{Action, Clamp, ClampKind, ForecastEvaluation, ScheduleWindow};
use crate::flap;
use crate::observe::{CurrentCapacity, Direction, ResourceState};

/// Everything the guards and bounds look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<'a> {
    /// The policy with the bounds and guards.
    pub policy: &'a Policy,
    /// Schedule windows open now.
    pub windows: &'a [ScheduleWindow],
    /// The policy's forecast, when it has one.
    pub forecast: Option<&'a ForecastEvaluation>,
    /// The resource's capacity and bounds.
    pub current: &'a CurrentCapacity,
    /// The memory of earlier evaluations and changes.
    pub state: &'a ResourceState,
    /// Whether some rule was missing data on this evaluation.
    pub data_missing: bool,
    /// The evaluation time.
    pub now: DateTime<Utc>,
}

impl Limits<'_> {
    /// The start of a window of `length` ending now.
    fn since(&self, length: Duration) -> DateTime<Utc> {
        self.now
            .checked_sub_signed(length.as_delta())
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// A capacity being adjusted, with a record of each change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Adjusted {
    /// The capacity so far.
    pub value: u32,
    /// The changes, in the order made.
    pub clamps: Vec<Clamp>,
    /// Whether the longer scale-in window after a flap prevented another (see
    /// [`flap::held_back`]).
    pub held_back_flap: bool,
}

impl Adjusted {
    fn new(value: u32) -> Self {
        Self {
            value,
            clamps: Vec::new(),
            held_back_flap: false,
        }
    }

    /// Sets the value to `to`, recording the change if there is one.
    fn set(&mut self, kind: ClampKind, to: u32, detail: impl FnOnce() -> String) {
        if to != self.value {
            self.clamps.push(Clamp {
                kind,
                from: self.value,
                to,
                detail: detail(),
            });
            self.value = to;
        }
    }

    /// Raises the value to at least `floor`.
    fn raise(&mut self, kind: ClampKind, floor: u32, detail: impl FnOnce() -> String) {
        self.set(kind, self.value.max(floor), detail);
    }

    /// Lowers the value to at most `ceiling`.
    fn lower(&mut self, kind: ClampKind, ceiling: u32, detail: impl FnOnce() -> String) {
        self.set(kind, self.value.min(ceiling), detail);
    }
}

/// Applies every guard and bound to `proposal`, the capacity the winning rule asks for (or the
/// current capacity when no rule fired).
pub(crate) fn apply(limits: &Limits<'_>, proposal: u32) -> Adjusted {
    let current = limits.current.desired;
    let required = bounded(limits, current);
    let mut adjusted = Adjusted::new(proposal);
    fallback(limits, &mut adjusted);
    stabilize(limits, &mut adjusted);
    bound(limits, &mut adjusted);
    max_step(limits, required, &mut adjusted);
    rate_limit(limits, required, &mut adjusted);
    cooldown(limits, required, &mut adjusted);
    pacing(limits, required, &mut adjusted);
    multiple(limits, &mut adjusted);
    // Before a pause or a busy resource holds it: they hold whatever the window says.
    adjusted.held_back_flap = flap::held_back(
        &limits.policy.guards,
        limits.state,
        current,
        proposal,
        adjusted.value,
        limits.now,
        |value| bounded(limits, value),
    );
    hold(limits, &mut adjusted);
    adjusted
}

/// Raises the value to the fallback capacity once data has been missing long enough.
fn fallback(limits: &Limits<'_>, adjusted: &mut Adjusted) {
    let MissingData::Fallback { capacity, after } = limits.policy.guards.missing_data else {
        return;
    };
    let evaluations = limits.state.evaluations_without_data.saturating_add(1);
    if limits.data_missing && evaluations >= after {
        adjusted.raise(ClampKind::MissingDataFallback, capacity, || {
            format!("data has been missing for {evaluations} evaluations (fallback after {after})")
        });
    }
}

/// Holds a move back to the most cautious recommendation of its direction's window.
fn stabilize(limits: &Limits<'_>, adjusted: &mut Adjusted) {
    let current = limits.current.desired;
    let guards = limits.policy.guards;
    let (name, window, flapped_at) = match Action::between(current, adjusted.value).direction() {
        Some(Direction::Out) => ("stabilization.out", guards.stabilization_out, None),
        Some(Direction::In) => flap::scale_in_window(&guards, limits.state, limits.now),
        None => return,
    };
    let recent = limits.state.recommended_within(window, limits.now);
    let detail = |extreme: &'static str, value: u32| {
        move || {
            let after = flapped_at.map_or(String::new(), |at| {
                format!(" (a flap at {} is remembered)", at.to_rfc3339())
            });
            format!("the {extreme} recommendation within {name} of {window}{after} was {value}")
        }
    };
    if adjusted.value > current {
        if let Some(lowest) = recent.min() {
            let ceiling = lowest.max(current);
            adjusted.lower(ClampKind::Stabilization, ceiling, detail("lowest", lowest));
        }
    } else if let Some(highest) = recent.max() {
        let floor = highest.min(current);
        adjusted.raise(ClampKind::Stabilization, floor, detail("highest", highest));
    }
}

/// `value` within the bounds of [`bound`].
fn bounded(limits: &Limits<'_>, value: u32) -> u32 {
    let mut adjusted = Adjusted::new(value);
    bound(limits, &mut adjusted);
    adjusted.value
}

/// Keeps `adjusted` within the policy's bounds, the schedule floor and the resource's bounds.
fn bound(limits: &Limits<'_>, adjusted: &mut Adjusted) {
    let capacity = limits.policy.capacity;
    let current = limits.current;
    adjusted.raise(ClampKind::PolicyMin, capacity.min, || {
        format!("capacity.min is {}", capacity.min)
    });
    adjusted.lower(ClampKind::PolicyMax, capacity.max, || {
        format!("capacity.max is {}", capacity.max)
    });
    if let Some(window) = limits.windows.iter().max_by_key(|window| window.min) {
        let floor = window.min.min(capacity.max);
        adjusted.raise(ClampKind::ScheduleFloor, floor, || {
            format!(
                "schedule {} is open until {} with min {floor}",
                window.name,
                window.closes.to_rfc3339()
            )
        });
    }
    if let Some(forecast) = limits.forecast
        && let Some(floor) = forecast.floor()
    {
        adjusted.raise(ClampKind::ForecastFloor, floor.min(capacity.max), || {
            forecast.to_string()
        });
    }
    if let Some(min) = current.resource_min {
        adjusted.raise(ClampKind::ResourceMin, min, || {
            format!("the resource's own minimum is {min}")
        });
    }
    if let Some(max) = current.resource_max {
        adjusted.lower(ClampKind::ResourceMax, max, || {
            match &current.resource_max_reason {
                Some(reason) => format!("the resource's own maximum is {max}: {reason}"),
                None => format!("the resource's own maximum is {max}"),
            }
        });
    }
}

/// Limits the move away from the current capacity to `guards.max_step`, but never short of
/// `required`.
fn max_step(limits: &Limits<'_>, required: u32, adjusted: &mut Adjusted) {
    let current = limits.current.desired;
    let guards = limits.policy.guards;
    if adjusted.value > current
        && let Some(step) = guards.max_step_out
    {
        let ceiling = current.saturating_add(step).max(required);
        adjusted.lower(ClampKind::MaxStep, ceiling, || {
            format!("max_step.out is {step}")
        });
    } else if adjusted.value < current
        && let Some(step) = guards.max_step_in
    {
        let floor = current.saturating_sub(step).min(required);
        adjusted.raise(ClampKind::MaxStep, floor, || {
            format!("max_step.in is {step}")
        });
    }
}

/// Limits the move to what `guards.rate_limit` leaves in the current period, but never short
/// of `required`.
fn rate_limit(limits: &Limits<'_>, required: u32, adjusted: &mut Adjusted) {
    let current = limits.current.desired;
    let guards = limits.policy.guards;
    let Some(direction) = Action::between(current, adjusted.value).direction() else {
        return;
    };
    let (name, limit) = match direction {
        Direction::Out => ("rate_limit.out", guards.rate_limit_out),
        Direction::In => ("rate_limit.in", guards.rate_limit_in),
    };
    let Some(limit) = limit else {
        return;
    };
    let since = limits.since(limit.per);
    let moved: u32 = limits
        .state
        .changes
        .iter()
        .filter(|change| change.direction == direction && change.at > since)
        .map(|change| change.from.abs_diff(change.to))
        .fold(0, u32::saturating_add);
    let start = match direction {
        Direction::Out => current.saturating_sub(moved),
        Direction::In => current.saturating_add(moved),
    };
    let percent_of_start = |percent: u32| {
        let units = (u64::from(start) * u64::from(percent)).div_ceil(100);
        u32::try_from(units).unwrap_or(u32::MAX)
    };
    let allowed = limit
        .units
        .into_iter()
        .chain(limit.percent.map(percent_of_start));
    let room = match limit.select {
        Select::MostPermissive => allowed.max(),
        Select::LeastPermissive => allowed.min(),
    };
    let Some(room) = room else {
        return;
    };
    let detail = || {
        format!(
            "{name} allows {room} per {} from {start} at the period's start; {moved} moved since {}",
            limit.per,
            since.to_rfc3339()
        )
    };
    match direction {
        Direction::Out => {
            let ceiling = start.saturating_add(room).max(current).max(required);
            adjusted.lower(ClampKind::RateLimit, ceiling, detail);
        }
        Direction::In => {
            let floor = start.saturating_sub(room).min(current).min(required);
            adjusted.raise(ClampKind::RateLimit, floor, detail);
        }
    }
}

/// Holds the move back to `required` while the cooldown for its direction runs.
fn cooldown(limits: &Limits<'_>, required: u32, adjusted: &mut Adjusted) {
    let Some(last) = limits.state.last_change() else {
        return;
    };
    let current = limits.current.desired;
    let guards = limits.policy.guards;
    let (name, length) = if adjusted.value > current {
        ("cooldown.out", guards.cooldown_out)
    } else if adjusted.value < current {
        ("cooldown.in", guards.cooldown_in)
    } else {
        return;
    };
    let ends = last
        .at
        .checked_add_signed(length.as_delta())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if limits.now < ends {
        adjusted.set(ClampKind::Cooldown, required, || {
            format!(
                "{name} of {length} after the change {} -> {} at {} runs until {}",
                last.from,
                last.to,
                last.at.to_rfc3339(),
                ends.to_rfc3339()
            )
        });
    }
}

/// Paces a scale-in: at most `max_per_interval` units, and none until `max(interval, drain)`
/// after the last change (of either direction, so a removal is never closer than that to the
/// one before it); never short of `required`.
fn pacing(limits: &Limits<'_>, required: u32, adjusted: &mut Adjusted) {
    let current = limits.current.desired;
    let Some(pacing) = limits.policy.guards.scale_in_pacing else {
        return;
    };
    if adjusted.value >= current {
        return;
    }
    let floor = current
        .saturating_sub(pacing.max_per_interval)
        .min(required);
    adjusted.raise(ClampKind::ScaleInPacing, floor, || {
        format!(
            "scale_in_pacing removes at most {} per {}",
            pacing.max_per_interval, pacing.interval
        )
    });
    let Some(last) = limits.state.last_change() else {
        return;
    };
    let wait = pacing.wait();
    let ends = last
        .at
        .checked_add_signed(wait.as_delta())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if limits.now < ends && adjusted.value < current {
        adjusted.set(ClampKind::ScaleInPacing, required.max(adjusted.value), || {
            format!(
                "scale_in_pacing waits {wait} (interval {}, drain {}) after the change {} -> {} at {}, until {}",
                pacing.interval,
                pacing.drain,
                last.from,
                last.to,
                last.at.to_rfc3339(),
                ends.to_rfc3339()
            )
        });
    }
}

/// Rounds to a multiple of `multiple_of`: away from the current capacity when the result stays
/// within the bounds, otherwise towards it; left as it is when no multiple fits the bounds.
fn multiple(limits: &Limits<'_>, adjusted: &mut Adjusted) {
    let Some(unit) = limits.current.multiple_of.filter(|&unit| unit > 1) else {
        return;
    };
    let value = adjusted.value;
    if value.is_multiple_of(unit) {
        return;
    }
    let (lowest, highest) = (bounded(limits, 0), bounded(limits, u32::MAX));
    let down = value / unit * unit;
    let up = down.checked_add(unit);
    let fits = |candidate: &u32| (lowest..=highest).contains(candidate);
    let (away, towards) = if value < limits.current.desired {
        (Some(down), up)
    } else {
        (up, Some(down))
    };
    if let Some(to) = away.filter(fits).or(towards.filter(fits)) {
        adjusted.set(ClampKind::MultipleOf, to, || {
            format!("the resource takes multiples of {unit}")
        });
    }
}

/// Keeps the current capacity when the policy is paused or the resource is busy.
fn hold(limits: &Limits<'_>, adjusted: &mut Adjusted) {
    let current = limits.current.desired;
    let would = adjusted.value;
    if limits.policy.paused {
        adjusted.set(ClampKind::Paused, current, || {
            format!("the policy is paused; it would ask for {would}")
        });
    }
    if let Some(reason) = &limits.current.busy {
        adjusted.set(ClampKind::ResourceBusy, current, || {
            format!("{reason}; capstan would ask for {would}")
        });
    }
}

#[cfg(test)]
mod tests;
