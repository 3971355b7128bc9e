//! What the engine is told about the world: metric datapoints, the resource's current capacity
//! and the memory of earlier actions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use capstan_policy::model::{Duration, MetricQuery, Policy};

use crate::decision::Decision;

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

/// The last change capstan made to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Changes capstan made, oldest first: always the latest, which starts the cooldowns, and
    /// the older ones a rate-limit period still counts.
    #[serde(default)]
    pub actions: Vec<LastAction>,
    /// What the rules asked for at each evaluation within the longest stabilization window,
    /// oldest first.
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    /// Consecutive evaluations, up to now, on which some rule was missing data.
    #[serde(default)]
    pub evaluations_without_data: u32,
    /// A change written down just before it was made and never confirmed: the evaluation
    /// stopped between acting and saving the state after it. [`ResourceState::reconcile`]
    /// settles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<LastAction>,
}

impl ResourceState {
    /// The last change capstan made, if any.
    pub fn last_action(&self) -> Option<&LastAction> {
        self.actions.last()
    }

    /// This state with `intent` written down as the change about to be made.
    pub fn intending(&self, intent: LastAction) -> Self {
        Self {
            intent: Some(intent),
            ..self.clone()
        }
    }

    /// Settles an unconfirmed [`intent`](Self::intent) against the capacity the resource shows
    /// now. When it shows the intended capacity, the change was made: it joins the actions, so
    /// that its cooldown applies and it is not made again, and is returned. Otherwise the change
    /// never took effect and the intent is dropped.
    pub fn reconcile(&mut self, current: &CurrentCapacity) -> Option<LastAction> {
        let intent = self.intent.take()?;
        (intent.to == current.desired).then(|| {
            self.actions.push(intent);
            intent
        })
    }

    /// The state to remember after `decision`, made for `policy` from this state, and the change
    /// it led to, if one was applied. Keeps only what the policy's guards can still look at.
    pub fn after(&self, policy: &Policy, decision: &Decision, applied: Option<LastAction>) -> Self {
        let now = decision.at;
        let since = |length: Duration| {
            now.checked_sub_signed(length.as_delta())
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let guards = &policy.guards;
        let memory = since(guards.memory());
        let mut actions: Vec<LastAction> = self.actions.iter().copied().chain(applied).collect();
        // Oldest first, so the ones to keep are a suffix; the latest is always kept.
        let older = actions.len().saturating_sub(1);
        let expired = actions[..older]
            .iter()
            .position(|action| action.at > memory)
            .unwrap_or(older);
        actions.drain(..expired);
        let window = since(guards.stabilization_out.max(guards.stabilization_in));
        let recommendations = if window < now {
            self.recommendations
                .iter()
                .copied()
                .filter(|recommendation| recommendation.at > window)
                .chain([Recommendation {
                    at: now,
                    capacity: decision.explanation.proposed,
                }])
                .collect()
        } else {
            Vec::new()
        };
        Self {
            actions,
            recommendations,
            evaluations_without_data: if decision.explanation.data_missing {
                self.evaluations_without_data.saturating_add(1)
            } else {
                0
            },
            intent: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{capacity, now, secs};

    fn action(seconds_ago: i64, from: u32, to: u32) -> LastAction {
        LastAction {
            at: now() - secs(seconds_ago),
            direction: if to > from {
                Direction::Out
            } else {
                Direction::In
            },
            from,
            to,
        }
    }

    #[test]
    fn an_intent_the_resource_shows_joins_the_actions() {
        let mut state = ResourceState {
            actions: vec![action(600, 2, 3)],
            ..ResourceState::default()
        }
        .intending(action(60, 3, 5));
        assert_eq!(state.reconcile(&capacity(5)), Some(action(60, 3, 5)));
        assert_eq!(state.actions, [action(600, 2, 3), action(60, 3, 5)]);
        assert_eq!(state.intent, None);
    }

    #[test]
    fn an_intent_the_resource_does_not_show_is_dropped() {
        let before = ResourceState {
            actions: vec![action(600, 2, 3)],
            ..ResourceState::default()
        };
        let mut state = before.intending(action(60, 3, 5));
        assert_eq!(state.reconcile(&capacity(3)), None);
        assert_eq!(state, before);
        assert_eq!(
            state.reconcile(&capacity(5)),
            None,
            "nothing left to settle"
        );
    }
}
