//! What woke capstan, and which policies it wakes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_engine::coupled;
use capstan_policy::model::Policy;

/// What woke the evaluator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trigger {
    /// A CloudWatch alarm changed state.
    Alarm(AlarmTrigger),
    /// The scheduled tick: every policy is evaluated.
    Tick {
        /// When the tick was scheduled.
        at: DateTime<Utc>,
    },
}

/// A CloudWatch alarm state change, from whichever envelope delivered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmTrigger {
    /// The alarm's name.
    pub name: String,
    /// The state it entered: `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// When it entered that state.
    pub changed_at: Option<DateTime<Utc>>,
    /// The metrics the alarm watches (none for a composite alarm).
    pub metrics: Vec<AlarmMetric>,
}

/// A metric an alarm watches, by identity (statistic and period aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmMetric {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Metric name.
    pub name: String,
    /// Dimensions.
    pub dimensions: BTreeMap<String, String>,
}

impl Trigger {
    /// When the triggering event happened, if the event says.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Tick { at } => Some(*at),
            Self::Alarm(alarm) => alarm.changed_at,
        }
    }

    /// The policies this trigger wakes, in the order given: all of them for a tick; for an
    /// alarm, those that use one of its metrics (same namespace, name and dimensions; statistic
    /// and period may differ, since the alarm is only a trigger), and every policy coupled to
    /// one of those by a cross-resource guard ([`coupled`]), directly or through others, so
    /// that the guard sees all of them in the pass.
    pub fn select<'a>(&self, policies: &'a [Policy]) -> Vec<&'a Policy> {
        let Self::Alarm(alarm) = self else {
            return policies.iter().collect();
        };
        let mut woken: Vec<bool> = policies
            .iter()
            .map(|policy| alarm.watches_metric_of(policy))
            .collect();
        let mut reached: Vec<usize> = (0..policies.len()).filter(|&i| woken[i]).collect();
        while let Some(index) = reached.pop() {
            for (other, policy) in policies.iter().enumerate() {
                if !woken[other] && coupled(&policies[index], policy) {
                    woken[other] = true;
                    reached.push(other);
                }
            }
        }
        policies
            .iter()
            .zip(woken)
            .filter_map(|(policy, woken)| woken.then_some(policy))
            .collect()
    }
}

impl AlarmTrigger {
    fn watches_metric_of(&self, policy: &Policy) -> bool {
        policy.metrics.values().map(|m| &m.query).any(|query| {
            self.metrics.iter().any(|metric| {
                metric.namespace == query.namespace
                    && metric.name == query.name
                    && metric.dimensions == query.dimensions
            })
        })
    }
}
