//! What woke capstan, and which policies it wakes.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// One shard of a tick fanned out over several invocations ([`shards`](crate::shards)).
    Shard(ShardTrigger),
}

/// One shard of a fanned-out tick: the policies one invocation evaluates, by name. Sent to the
/// shard queue by the invocation that split the tick, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardTrigger {
    /// When the tick was scheduled.
    pub tick: DateTime<Utc>,
    /// The shard's number among the tick's shards, from 0.
    pub index: usize,
    /// How many shards the tick was split into.
    pub of: usize,
    /// The names of its policies.
    pub policies: Vec<String>,
}

impl ShardTrigger {
    /// The names of the shard's policies that `policies` lacks: the policy set changed between
    /// the split and this evaluation (a deploy), or the message was not made by this set.
    pub fn missing<'a>(&'a self, policies: &[Policy]) -> Vec<&'a str> {
        let known: HashSet<&str> = policies.iter().map(|p| p.name.as_str()).collect();
        self.policies
            .iter()
            .map(String::as_str)
            .filter(|name| !known.contains(name))
            .collect()
    }
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
    /// The metrics the alarm watches: its metric, or every metric its metric math reads.
    pub metrics: Vec<AlarmMetric>,
    /// A composite alarm's rule over other alarms, e.g. `ALARM(a) OR ALARM(b)`. A composite
    /// alarm watches no metric, so it wakes no policy (see docs/alarms.md on wiring one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
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
            Self::Shard(shard) => Some(shard.tick),
            Self::Alarm(alarm) => alarm.changed_at,
        }
    }

    /// The policies this trigger wakes, in the order given: all of them for a tick; those it
    /// names for a shard (see [`ShardTrigger::missing`] for the names not found); for an alarm,
    /// those that use one of its metrics (same namespace, name and dimensions; statistic and
    /// period may differ, since the alarm is only a trigger), and every policy coupled to one
    /// of those by a cross-resource guard ([`coupled`]), directly or through others, so that
    /// the guard sees all of them in the pass.
    pub fn select<'a>(&self, policies: &'a [Policy]) -> Vec<&'a Policy> {
        let alarm = match self {
            Self::Tick { .. } => return policies.iter().collect(),
            Self::Shard(shard) => {
                let named: HashSet<&str> = shard.policies.iter().map(String::as_str).collect();
                return policies
                    .iter()
                    .filter(|policy| named.contains(policy.name.as_str()))
                    .collect();
            }
            Self::Alarm(alarm) => alarm,
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
