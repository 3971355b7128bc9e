//! The guards and bounds that turn a rule's proposal into the capacity asked for.
//!
//! They apply in this order, each recorded as a [`Clamp`] only when it changed the value:
//!
//! 1. **Bounds**, which are about safety: the policy's `capacity.min` and `capacity.max`, the
//!    floor of the open schedule windows (the highest `min` among them, never above
//!    `capacity.max`), then the resource's own bounds (an Auto Scaling group's `MinSize` and
//!    `MaxSize`: the service rejects anything outside them, so capstan never asks for it; when
//!    they leave no room inside the policy's bounds, the resource's win).
//! 2. **`max_step`** per direction, relative to the current capacity.
//! 3. **Cooldown**: after the last action at `T`, no scale-out before `T + cooldown.out` and no
//!    scale-in before `T + cooldown.in`; at exactly `T + cooldown` the move is allowed.
//! 4. **`scale_in_pacing`**: a removal of at most `max_per_interval` units, and none until
//!    `max(interval, drain)` after the last action.
//! 5. **Paused** policy, then **busy** resource: the capacity stays as it is; the clamp records
//!    what would have been asked for.
//!
//! `max_step`, cooldowns and pacing limit only the part of a move the rules asked for, never the part the
//! bounds require: the bounds applied to the *current* capacity give the capacity that must be
//! reached whatever the rules say (the current capacity itself when it is within bounds), and
//! neither guard holds the value short of it. So a capacity set by hand outside the bounds, or a
//! schedule floor opening, is corrected in one decision, during a cooldown too. It follows that,
//! unless paused or busy, the result is always within the policy's bounds (given resource bounds
//! that overlap them).

use chrono::{DateTime, Utc};

use capstan_policy::model::Policy;

use crate::decision::{Clamp, ClampKind, ScheduleWindow};
use crate::observe::{CurrentCapacity, ResourceState};

/// Everything the guards and bounds look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<'a> {
    /// The policy with the bounds and guards.
    pub policy: &'a Policy,
    /// Schedule windows open now.
    pub windows: &'a [ScheduleWindow],
    /// The resource's capacity and bounds.
    pub current: &'a CurrentCapacity,
    /// The last action, which starts the cooldowns.
    pub state: &'a ResourceState,
    /// The evaluation time.
    pub now: DateTime<Utc>,
}

/// A capacity being adjusted, with a record of each change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Adjusted {
    /// The capacity so far.
    pub value: u32,
    /// The changes, in the order made.
    pub clamps: Vec<Clamp>,
}

impl Adjusted {
    fn new(value: u32) -> Self {
        Self {
            value,
            clamps: Vec::new(),
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
    let required = bounded(limits, current).value;
    let mut adjusted = bounded(limits, proposal);
    max_step(limits, required, &mut adjusted);
    cooldown(limits, required, &mut adjusted);
    pacing(limits, required, &mut adjusted);
    hold(limits, &mut adjusted);
    adjusted
}

/// `value` within the policy's bounds, the schedule floor and the resource's bounds.
fn bounded(limits: &Limits<'_>, value: u32) -> Adjusted {
    let capacity = limits.policy.capacity;
    let current = limits.current;
    let mut adjusted = Adjusted::new(value);
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
    if let Some(min) = current.resource_min {
        adjusted.raise(ClampKind::ResourceMin, min, || {
            format!("the resource's own minimum is {min}")
        });
    }
    if let Some(max) = current.resource_max {
        adjusted.lower(ClampKind::ResourceMax, max, || {
            format!("the resource's own maximum is {max}")
        });
    }
    adjusted
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

/// Holds the move back to `required` while the cooldown for its direction runs.
fn cooldown(limits: &Limits<'_>, required: u32, adjusted: &mut Adjusted) {
    let Some(last) = limits.state.last_action else {
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
    let Some(last) = limits.state.last_action else {
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
