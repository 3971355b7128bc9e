//! What the engine is told about the world: metric datapoints, the resource's current capacity
//! and the memory of earlier changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use capstan_policy::model::{Duration, MetricQuery, Policy};

use crate::decision::Decision;
use crate::flap;
use crate::forecast::History;

/// One value of a metric for the period starting at `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Start of the period.
    pub timestamp: DateTime<Utc>,
    /// The statistic's value over the period.
    pub value: f64,
}

/// The outcome of reading one metric: its datapoints, or why they could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricData {
    /// Datapoints in ascending time order; periods with no data are absent.
    Series(Vec<Datapoint>),
    /// The read failed; rules on this metric cannot fire and scale-in is blocked.
    Unavailable(String),
}

/// Every metric read for one evaluation, by query.
pub type Observations = BTreeMap<MetricQuery, MetricData>;

/// A resource's capacity as its service reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentCapacity {
    /// The desired count now set on the resource.
    pub desired: u32,
    /// The resource's own lower bound, if it has one (an Auto Scaling group's `MinSize`).
    pub resource_min: Option<u32>,
    /// The resource's own upper bound, if it has one (an Auto Scaling group's `MaxSize`).
    pub resource_max: Option<u32>,
    /// Where `resource_max` comes from, for the explanation, e.g. the row of MSK's
    /// partitions-per-broker table that applied.
    #[serde(default)]
    pub resource_max_reason: Option<String>,
    /// Capacity the resource accepts only in multiples of this, e.g. an MSK cluster's broker
    /// count in multiples of its Availability Zones.
    #[serde(default)]
    pub multiple_of: Option<u32>,
    /// Why the resource must not be changed now, e.g. an ECS deployment in progress.
    pub busy: Option<String>,
    /// How many of the `desired` units serve now, where the resource tells them apart: an RDS
    /// read replica still being created does not. `None` counts all of them.
    #[serde(default)]
    pub in_service: Option<u32>,
    /// How many units exist now, whatever `desired` says, where the resource tells: an ECS
    /// service's running and pending tasks (more than `desired` while a deployment runs old
    /// and new tasks side by side, or while removed tasks stop), an Auto Scaling group's
    /// instances. `None` when it does not say.
    #[serde(default)]
    pub running: Option<u32>,
    /// A limit the resource shares with others, when it has one: an MSK cluster's partition
    /// replicas, shared by its topics.
    #[serde(default)]
    pub share: Option<Share>,
}

/// Room that resources of one kind draw on together, so that growing several of them in one
/// pass must fit it as a whole (see [shared limits](crate::guards::shared_limits)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Which room: resources naming the same pool share it (an MSK cluster's ARN).
    pub pool: String,
    /// How much of the room one more unit of this resource takes (a topic's replication
    /// factor: each partition has that many replicas).
    pub per_unit: u32,
    /// The room left with every resource of the pool at its current count.
    pub room: u64,
    /// What the room is, for explanations.
    pub what: String,
}

/// Which way a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Capacity goes up.
    Out,
    /// Capacity goes down.
    In,
}

/// A change capstan made to a resource's capacity, or is about to make (an
/// [intent](ResourceState::intent)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Which way it went.
    pub direction: Direction,
    /// Capacity before the change.
    pub from: u32,
    /// Capacity after the change.
    pub to: u32,
}

/// A capacity the rules asked for at one evaluation, before any clamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The capacity asked for.
    pub capacity: u32,
}

/// What capstan remembers about a resource between evaluations. [`ResourceState::after`] gives
/// the state to store after each evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Changes capstan made, oldest first: always the latest, which starts the cooldowns, and
    /// the older ones a rate-limit period still counts.
    #[serde(default, rename = "actions")]
    pub changes: Vec<Change>,
    /// What the rules asked for at each evaluation within the longest stabilization window,
    /// oldest first, each run of equal ones kept as its latest (which every window's highest
    /// and lowest allow).
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    /// Consecutive evaluations, up to now, on which some rule was missing data.
    #[serde(default)]
    pub evaluations_without_data: u32,
    /// A change written down just before it was made and never confirmed: the evaluation
    /// stopped between acting and saving the state after it. [`ResourceState::reconcile`]
    /// settles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Change>,
    /// Whether the latest change may not have taken effect yet: set when a change is made,
    /// cleared by the first evaluation after it that finds the resource not busy. While the
    /// resource stays busy (an MSK update, an RDS replica being created), every evaluation moves
    /// the change's time up to its own, so that cooldowns and pacing count from when the change
    /// took effect, not from when it was asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settling: bool,
    /// The hourly peaks of the policy's `forecast` metric, as last read: the caller refreshes
    /// them when [`crate::forecast::history_read`] says so, and they are kept until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// When a change last reversed the one before it within [`crate::FLAP_WINDOW`], while that
    /// is remembered ([`crate::FLAP_MEMORY`]): it lengthens the scale-in window (see
    /// [`crate::flap`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapped_at: Option<DateTime<Utc>>,
}

impl ResourceState {
    /// The last change capstan made, if any.
    pub fn last_change(&self) -> Option<&Change> {
        self.changes.last()
    }

    /// This state with `intent` written down as the change about to be made.
    pub fn intending(&self, intent: Change) -> Self {
        Self {
            intent: Some(intent),
            ..self.clone()
        }
    }

    /// Settles an unconfirmed [`intent`](Self::intent) against the capacity the resource shows
    /// now. When it shows the intended capacity, the change counts as made: it joins the
    /// changes, so that its cooldown applies and it is not made again, and is returned. While
    /// the resource is busy, the change may still be under way (MSK and RDS change capacity
    /// asynchronously): the intent is kept for a later evaluation. Otherwise the change never
    /// took effect and the intent is dropped.
    ///
    /// capstan cannot tell its own change from someone else's that set the same capacity: such
    /// a change is counted as capstan's, which only delays capstan's next one by a cooldown.
    pub fn reconcile(&mut self, current: &CurrentCapacity) -> Option<Change> {
        let intent = self.intent?;
        if intent.to == current.desired {
            self.intent = None;
            self.flapped_at = self.flapped_at_with(&intent);
            self.changes.push(intent);
            self.settling = true;
            return Some(intent);
        }
        if current.busy.is_none() {
            self.intent = None;
        }
        None
    }

    /// The capacities recommended within `window` of `now`: strictly after `now - window`, and
    /// not after `now`.
    pub(crate) fn recommended_within(
        &self,
        window: Duration,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = u32> + '_ {
        let since = now
            .checked_sub_signed(window.as_delta())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.recommendations
            .iter()
            .filter(move |recommendation| recommendation.at > since && recommendation.at <= now)
            .map(|recommendation| recommendation.capacity)
    }

    /// When the last flap was, once `next` joins the changes.
    fn flapped_at_with(&self, next: &Change) -> Option<DateTime<Utc>> {
        match self.changes.last() {
            Some(previous)
                if flap::flaps((previous.at, previous.direction), (next.at, next.direction)) =>
            {
                Some(next.at)
            }
            _ => self.flapped_at,
        }
    }

    /// The state to remember after `decision`, made for `policy` from this state, and the change
    /// it led to, if one was applied. Keeps only what the policy's guards can still look at
    /// (and, for a user of a database, the changes whose removed units may still drain), the
    /// changes in time order, and an intent [`reconcile`](Self::reconcile) kept.
    pub fn after(&self, policy: &Policy, decision: &Decision, applied: Option<Change>) -> Self {
        let now = decision.at;
        let since = |length: Duration| {
            now.checked_sub_signed(length.as_delta())
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let guards = &policy.guards;
        let mut kept = guards.memory();
        if policy.connections.is_some() {
            kept = kept.max(crate::guards::drain(policy));
        }
        let memory = since(kept);
        let flapped_at = match applied {
            Some(next) => self.flapped_at_with(&next),
            None if decision.explanation.held_back_flap => Some(now),
            None => self.flapped_at,
        };
        let mut changes: Vec<Change> = self.changes.iter().copied().chain(applied).collect();
        let settling = applied.is_some() || (self.settling && decision.busy.is_some());
        if let (None, true, Some(last)) = (applied, settling, changes.last_mut()) {
            last.at = last.at.max(now);
        }
        changes.sort_by_key(|change| change.at);
        // Oldest first, so the ones to keep are a suffix; the latest is always kept.
        let older = changes.len().saturating_sub(1);
        let expired = changes[..older]
            .iter()
            .position(|change| change.at > memory)
            .unwrap_or(older);
        changes.drain(..expired);
        let window = since(guards.longest_stabilization());
        let recommendations = if window < now {
            let recent = self
                .recommendations
                .iter()
                .copied()
                .filter(|recommendation| recommendation.at > window)
                .chain([Recommendation {
                    at: now,
                    capacity: decision.explanation.proposed,
                }]);
            latest_of_each_run(recent)
        } else {
            Vec::new()
        };
        Self {
            changes,
            recommendations,
            evaluations_without_data: if decision.explanation.data_missing {
                self.evaluations_without_data.saturating_add(1)
            } else {
                0
            },
            intent: self.intent,
            settling,
            history: self.history.clone(),
            flapped_at: flap::remembered(flapped_at, now),
        }
    }
}

/// `recommendations`, oldest first, with each run of equal capacities kept as its latest: a
/// window holds the run's capacity exactly when it holds the run's latest recommendation, so
/// the highest and lowest of any window ending now are unchanged, and an hour's window after a
/// flap holds a few recommendations instead of one per evaluation.
fn latest_of_each_run(
    recommendations: impl Iterator<Item = Recommendation>,
) -> Vec<Recommendation> {
    let mut kept: Vec<Recommendation> = Vec::new();
    for recommendation in recommendations {
        match kept.last_mut() {
            Some(last) if last.capacity == recommendation.capacity => *last = recommendation,
            _ => kept.push(recommendation),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide;
    use crate::decision::Action;
    use crate::testing::{
        acted, capacity, now, observations, policy, recommended, scale_in_on_cpu, secs, steady,
    };
    use capstan_policy::model::Step;

    /// A busy resource at `desired`.
    fn busy(desired: u32) -> CurrentCapacity {
        CurrentCapacity {
            busy: Some("the cluster is UPDATING, not ACTIVE".into()),
            ..capacity(desired)
        }
    }

    /// The state after an evaluation at `now() + seconds` of a resource at `current`.
    fn evaluated(state: &ResourceState, current: &CurrentCapacity, seconds: i64) -> ResourceState {
        let policy = policy();
        let at = now() + secs(seconds);
        let decision = decide(&policy, &Observations::new(), current, state, at);
        state.after(&policy, &decision, None)
    }

    /// The change from `from` to `to` capstan made `seconds_ago`.
    fn change(seconds_ago: i64, from: u32, to: u32) -> Change {
        let Action::Scale(direction) = Action::between(from, to) else {
            panic!("no change from {from} to {to}");
        };
        Change {
            at: now() - secs(seconds_ago),
            direction,
            from,
            to,
        }
    }

    #[test]
    fn an_intent_the_resource_shows_joins_the_changes() {
        let mut state = ResourceState {
            changes: vec![change(600, 2, 3)],
            ..ResourceState::default()
        }
        .intending(change(60, 3, 5));
        assert_eq!(state.reconcile(&capacity(5)), Some(change(60, 3, 5)));
        assert_eq!(state.changes, [change(600, 2, 3), change(60, 3, 5)]);
        assert_eq!(state.intent, None);
    }

    #[test]
    fn an_intent_the_resource_does_not_show_is_dropped() {
        let before = ResourceState {
            changes: vec![change(600, 2, 3)],
            ..ResourceState::default()
        };
        let mut state = before.intending(change(60, 3, 5));
        assert_eq!(state.reconcile(&capacity(3)), None);
        assert_eq!(state, before);
        assert_eq!(
            state.reconcile(&capacity(5)),
            None,
            "nothing left to settle"
        );
    }

    #[test]
    fn an_intent_is_kept_while_the_resource_is_busy_and_counted_once_it_shows() {
        let mut state = ResourceState::default().intending(change(60, 3, 6));
        assert_eq!(state.reconcile(&busy(3)), None);
        assert_eq!(state.intent, Some(change(60, 3, 6)), "still under way");
        let mut later = evaluated(&state, &busy(3), 0);
        assert_eq!(
            later.intent,
            Some(change(60, 3, 6)),
            "remembered across evaluations"
        );
        assert_eq!(later.reconcile(&capacity(6)), Some(change(60, 3, 6)));
        assert_eq!(later.changes, [change(60, 3, 6)]);
    }

    #[test]
    fn someone_elses_change_to_the_intended_capacity_counts_as_capstans() {
        // capstan cannot tell them apart: the cooldown then delays capstan's next change.
        let mut state = ResourceState::default().intending(change(60, 3, 6));
        assert_eq!(state.reconcile(&capacity(6)), Some(change(60, 3, 6)));
        assert_eq!(state.last_change(), Some(&change(60, 3, 6)));
    }

    #[test]
    fn a_change_to_a_busy_resource_counts_from_when_it_settles() {
        let policy = policy();
        let made = change(0, 3, 6);
        let decision = decide(
            &policy,
            &Observations::new(),
            &capacity(3),
            &ResourceState::default(),
            now(),
        );
        let applied = ResourceState::default().after(&policy, &decision, Some(made));
        assert!(applied.settling);
        // Busy for ten minutes: the change's time follows the evaluations.
        let busy_then = evaluated(&applied, &busy(6), 600);
        assert_eq!(
            busy_then.last_change().map(|a| a.at),
            Some(now() + secs(600))
        );
        assert!(busy_then.settling);
        // Settled: the time stays where the last busy evaluation left it.
        let settled = evaluated(&busy_then, &capacity(6), 660);
        assert!(!settled.settling);
        assert_eq!(settled.last_change().map(|a| a.at), Some(now() + secs(600)));
        // A resource never busy after the change keeps the time it was made.
        let quick = evaluated(&applied, &capacity(6), 60);
        assert_eq!(quick.last_change().map(|a| a.at), Some(now()));
        assert!(!quick.settling);
        // Busy again later, for some other reason: the settled change stays where it was.
        let elsewhere = evaluated(&quick, &busy(6), 120);
        assert_eq!(elsewhere.last_change().map(|a| a.at), Some(now()));
    }

    #[test]
    fn a_change_reversing_the_one_before_within_the_hour_is_remembered_as_a_flap_for_two_days() {
        let policy = policy();
        let after_one = |ago: i64, applied: Change| {
            let state = ResourceState {
                changes: vec![change(ago, 2, 3)],
                ..ResourceState::default()
            };
            let decision = decide(&policy, &Observations::new(), &capacity(3), &state, now());
            state.after(&policy, &decision, Some(applied))
        };

        let flapped = after_one(3600, change(0, 3, 2));
        assert_eq!(flapped.flapped_at, Some(now()));
        // An hour and a second later it is a reversal, not a flap; the same way, neither.
        assert_eq!(after_one(3601, change(0, 3, 2)).flapped_at, None);
        assert_eq!(after_one(600, change(0, 3, 4)).flapped_at, None);
        // Remembered through evaluations that change nothing, until two days have passed.
        let day = 86_400;
        let next_day = evaluated(&flapped, &capacity(2), 2 * day - 1);
        assert_eq!(next_day.flapped_at, Some(now()));
        assert_eq!(evaluated(&next_day, &capacity(2), 2 * day).flapped_at, None);
        // The flap's changes are remembered as long as the guards need them, not two days.
        assert_eq!(next_day.changes, [change(0, 3, 2)]);
    }

    proptest::proptest! {
        #[test]
        fn keeping_the_latest_of_each_run_keeps_every_windows_extremes(
            capacities in proptest::collection::vec(0..4u32, 1..30),
            minutes in 0..32i64,
        ) {
            let count = i64::try_from(capacities.len()).expect("few");
            let all: Vec<Recommendation> = capacities
                .iter()
                .zip((0..count).rev())
                .map(|(&capacity, ago)| Recommendation { at: now() - secs(60 * ago), capacity })
                .collect();
            let kept = latest_of_each_run(all.iter().copied());
            let since = now() - secs(60 * minutes);
            let extremes = |list: &[Recommendation]| {
                let window = list.iter().filter(|r| r.at > since).map(|r| r.capacity);
                (window.clone().min(), window.max())
            };
            proptest::prop_assert_eq!(extremes(&kept), extremes(&all));
            proptest::prop_assert!(kept.windows(2).all(|pair| pair[0].capacity != pair[1].capacity));
        }
    }

    #[test]
    fn a_scale_in_the_longer_window_holds_back_within_the_hour_of_a_scale_out_renews_the_flap() {
        use capstan_policy::model::Duration;

        let mut policy = scale_in_on_cpu(Step::Remove(1));
        policy.guards.stabilization_in = Duration::from_secs(300);
        policy.guards.stabilization_in_after_flap = Duration::from_secs(3600);
        let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
        let yesterday = now() - secs(86_400);
        // The rules asked for 4 thirty minutes ago and for 3 since: the hour holds 4, the five
        // minutes would not.
        let mut asked = vec![4];
        asked.extend([3; 29]);
        let state = |last: Change, flapped_at: Option<DateTime<Utc>>| ResourceState {
            changes: vec![last],
            flapped_at,
            ..recommended(&asked)
        };
        let after_with = |policy: &Policy, state: &ResourceState| {
            let decision = decide(policy, &observations, &capacity(4), state, now());
            state.after(policy, &decision, None).flapped_at
        };
        let after = |state: &ResourceState| after_with(&policy, state);

        // A scale-out 20 minutes ago: the scale-in held back would have reversed it.
        let held = state(change(1200, 3, 4), Some(yesterday));
        let decision = decide(&policy, &observations, &capacity(4), &held, now());
        assert_eq!(decision.desired, 4, "held by the hour's window");
        assert_eq!(after(&held), Some(now()));
        // An hour and a second after the scale-out it would not have been a flap.
        assert_eq!(
            after(&state(change(3601, 3, 4), Some(yesterday))),
            Some(yesterday)
        );
        // After a scale-in, holding the next one back prevents no reversal.
        assert_eq!(
            after(&state(change(1200, 5, 4), Some(yesterday))),
            Some(yesterday)
        );
        // A floor that holds 4 anyway prevents the reversal, not the window.
        let mut floored = policy.clone();
        floored.capacity.min = 4;
        assert_eq!(after_with(&floored, &held), Some(yesterday));
    }

    #[test]
    fn a_reconciled_intent_that_reverses_the_change_before_is_a_flap() {
        let mut state = ResourceState {
            changes: vec![change(600, 2, 3)],
            ..ResourceState::default()
        }
        .intending(change(60, 3, 2));
        assert_eq!(state.reconcile(&capacity(2)), Some(change(60, 3, 2)));
        assert_eq!(state.flapped_at, Some(now() - secs(60)));
    }

    #[test]
    fn changes_are_remembered_in_time_order() {
        let mut policy = policy();
        policy.guards.stabilization_in = Duration::from_secs(600);
        let state = ResourceState {
            changes: vec![change(30, 2, 3)],
            ..ResourceState::default()
        };
        let decision = decide(&policy, &Observations::new(), &capacity(3), &state, now());
        let after = state.after(&policy, &decision, Some(change(90, 3, 4)));
        assert_eq!(after.changes, [change(90, 3, 4), change(30, 2, 3)]);
    }

    #[test]
    fn the_state_after_a_decision_keeps_what_the_guards_can_still_see() {
        use capstan_policy::model::{Duration, RateLimit, Select};

        let mut policy = scale_in_on_cpu(Step::Remove(1));
        policy.guards.stabilization_in = Duration::from_secs(300);
        policy.guards.stabilization_in_after_flap = Duration::from_secs(0);
        policy.guards.rate_limit_out = Some(RateLimit {
            units: Some(2),
            percent: None,
            per: Duration::from_secs(900),
            select: Select::MostPermissive,
        });
        let observations = observations(&policy, &[("cpu", steady(10.0, 5))]);
        let before = ResourceState {
            recommendations: recommended(&[9, 8, 7, 6, 6, 6]).recommendations,
            evaluations_without_data: 4,
            ..acted(&[(1200, Direction::Out, 2, 4), (800, Direction::Out, 4, 6)])
        };
        let decision = decide(&policy, &observations, &capacity(6), &before, now());
        assert_eq!(decision.desired, 6);
        let applied = Change {
            at: now(),
            direction: Direction::In,
            from: 6,
            to: 5,
        };

        let after = before.after(&policy, &decision, Some(applied));

        // Changes older than the longest period (15m) go, except the latest.
        assert_eq!(after.changes, [before.changes[1], applied]);
        // Recommendations older than 5m go; this one is added; of the three 6s, the latest.
        let kept: Vec<(i64, u32)> = after
            .recommendations
            .iter()
            .map(|r| ((now() - r.at).num_minutes(), r.capacity))
            .collect();
        assert_eq!(kept, [(4, 7), (1, 6), (0, 5)]);
        assert_eq!(after.evaluations_without_data, 0);
        // With nothing applied, the latest change stays however old.
        let old = acted(&[(7200, Direction::Out, 2, 4)]);
        assert_eq!(old.after(&policy, &decision, None).changes, old.changes);
    }
}
