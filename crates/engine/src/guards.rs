//! Cross-resource guards, applied over the decisions of a whole policy set in one pure pass.
//!
//! # Connection budget
//!
//! A database declared under `databases` has a budget of `max_connections - reserve`. Every
//! policy with `connections: { database, per_task }` is a user of it, and together the users'
//! desired capacity × `per_task` never exceeds the budget:
//!
//! 1. Paused policies and busy resources keep their capacity; it is charged first.
//! 2. Every other user is granted its `capacity.min` (validation checks that the minimums fit
//!    a declared budget).
//! 3. What is left goes to the users in priority order, highest `priority` first, then by
//!    name, each up to its desired capacity, in whole units.
//!
//! A user held below its desired capacity gets a [`ClampKind::ConnectionBudget`] clamp (the
//! budget wins over schedule floors and over the other guards, since running out of
//! connections takes the database's users down), and a [`Request`] asks for more connections:
//! for the `rds_replicas` policy whose source is the database, when there is one. Requests are
//! not acted on yet.
//!
//! A user among `policies` without a decision (not evaluated in the pass, or its capacity could
//! not be read) is charged at its `capacity.max`, the most it could be using, so the budget
//! holds whatever it runs. Pass the whole policy set as `policies` for that to work; a policy
//! absent from `policies` is not known to the guard at all.
//!
//! # Partition coupling
//!
//! A `track` rule with `topic: <msk_topic policy>` consumes that topic: the consumers' desired
//! capacity never exceeds the topic's current partition count (the topic policy's decision's
//! `current`), or the consumers' `capacity.min` if that is higher, with a
//! [`ClampKind::Partitions`] clamp. When the rule wanted more consumers than there are
//! partitions and its metric (lag) rose over its window (the newest datapoint above the
//! oldest), a [`Request::PartitionGrowth`] asks the topic's policy for as many partitions as
//! consumers wanted, within the topic's `capacity.max`; never for fewer than it has. Without a
//! decision for the topic's policy in the pass, the partition count is unknown and nothing is
//! capped. Paused policies and busy resources are left alone.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use capstan_policy::model::{Database, Policy, Target};

use crate::decide::label;
use crate::decision::{Action, Clamp, ClampKind, Decision, TrackOutcome};
use crate::observe::Direction;

/// Something a guard asks another policy for, to be acted on later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Users of a database wanted more connections than its budget.
    DatabaseConnections {
        /// The database's name.
        database: String,
        /// The `rds_replicas` policy on the database, if the set has one.
        policy: Option<String>,
        /// Connections the users' decisions asked for.
        wanted: u32,
        /// The budget they share.
        budget: u32,
        /// The users held back, in priority order.
        held_back: Vec<String>,
    },
    /// Consumers held back by a topic's partitions while lag grew.
    PartitionGrowth {
        /// The topic's `msk_topic` policy.
        policy: String,
        /// The consumers' policy.
        consumer: String,
        /// Partitions now.
        from: u32,
        /// Partitions asked for, above `from`.
        to: u32,
    },
}

impl Request {
    /// The policy asked: the database's `rds_replicas` policy or the topic's `msk_topic` policy;
    /// none for a database without a replica policy.
    pub fn addressee(&self) -> Option<&str> {
        match self {
            Self::DatabaseConnections { policy, .. } => policy.as_deref(),
            Self::PartitionGrowth { policy, .. } => Some(policy),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DatabaseConnections {
                database,
                policy,
                wanted,
                budget,
                held_back,
            } => {
                write!(
                    f,
                    "{database}: its users want {wanted} connections of {budget} (held back: {}); ",
                    held_back.join(", ")
                )?;
                match policy {
                    Some(policy) => write!(f, "{policy} is asked for one more read replica"),
                    None => write!(f, "no rds_replicas policy on it to ask"),
                }
            }
            Self::PartitionGrowth {
                policy,
                consumer,
                from,
                to,
            } => write!(
                f,
                "{consumer} is held back by its topic's {from} partitions while its lag grows; {policy} is asked for {to}"
            ),
        }
    }
}

/// The decisions after the guards, and what the guards ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guarded {
    /// The decisions, in the order given.
    pub decisions: Vec<Decision>,
    /// Requests to other policies.
    pub requests: Vec<Request>,
}

/// Applies the cross-resource guards to `decisions`, made for `policies` (matched by name).
/// Deterministic: the result depends on neither order.
pub fn apply_guards(policies: &[&Policy], mut decisions: Vec<Decision>) -> Guarded {
    let by_name: BTreeMap<&str, &Policy> = policies.iter().map(|p| (p.name.as_str(), *p)).collect();
    let databases: BTreeMap<&str, &Database> = policies
        .iter()
        .flat_map(|p| p.databases.iter().map(|(name, db)| (name.as_str(), db)))
        .collect();
    let mut requests = Vec::new();
    partitions(&by_name, &mut decisions, &mut requests);
    for (name, database) in databases {
        let mut users: Vec<(usize, &Policy, u32)> = decisions
            .iter()
            .enumerate()
            .filter_map(|(index, decision)| {
                let policy = by_name.get(decision.policy.as_str())?;
                let connections = policy.connections.as_ref()?;
                (connections.database == name).then_some((index, *policy, connections.per_task))
            })
            .collect();
        users.sort_by_key(|(_, policy, _)| (Reverse(policy.priority), policy.name.clone()));
        let budget = u64::from(database.budget());
        let mut grants: Vec<u32> = users
            .iter()
            .map(|&(index, policy, _)| {
                let decision = &decisions[index];
                if fixed(decision) {
                    decision.desired
                } else {
                    decision.desired.min(policy.capacity.min)
                }
            })
            .collect();
        let charged = |grants: &[u32]| -> u64 {
            users
                .iter()
                .zip(grants)
                .map(|(&(_, _, per), &grant)| u64::from(grant) * u64::from(per))
                .sum()
        };
        // Users with no decision: charged at the most they could be running.
        let unknown: u64 = policies
            .iter()
            .filter(|p| {
                p.connections.as_ref().is_some_and(|c| c.database == name)
                    && !decisions.iter().any(|d| d.policy == p.name)
            })
            .map(|p| {
                let per = p.connections.as_ref().map_or(0, |c| c.per_task);
                u64::from(p.capacity.max) * u64::from(per)
            })
            .sum();
        let mut used = charged(&grants) + unknown;
        for (slot, &(index, _, per)) in users.iter().enumerate() {
            let decision = &decisions[index];
            if fixed(decision) {
                continue;
            }
            let room = budget.saturating_sub(used) / u64::from(per);
            let extra = u64::from(decision.desired - grants[slot]).min(room);
            grants[slot] += u32::try_from(extra).unwrap_or(u32::MAX);
            used += extra * u64::from(per);
        }
        let wanted: u64 = users
            .iter()
            .map(|&(index, _, per)| u64::from(decisions[index].desired) * u64::from(per))
            .sum();
        let mut held_back = Vec::new();
        for (slot, &(index, _, per)) in users.iter().enumerate() {
            let decision = &mut decisions[index];
            if grants[slot] >= decision.desired {
                continue;
            }
            held_back.push(decision.policy.clone());
            let detail = format!(
                "{name} has a budget of {budget} connections ({} max_connections, {}; {} reserved) \
                 at {per} per unit; {used} of them are granted, in priority order",
                database.max_connections, database.source, database.reserve
            );
            hold_back(decision, ClampKind::ConnectionBudget, grants[slot], detail);
        }
        if !held_back.is_empty() {
            let policy = policies
                .iter()
                .find(|p| matches!(&p.target, Target::RdsReplicas { source } if source == name));
            requests.push(Request::DatabaseConnections {
                database: name.to_owned(),
                policy: policy.map(|p| p.name.clone()),
                wanted: u32::try_from(wanted).unwrap_or(u32::MAX),
                budget: database.budget(),
                held_back,
            });
        }
    }
    Guarded {
        decisions,
        requests,
    }
}

/// Whether a decision must be left as it is: its policy is paused or its resource busy.
fn fixed(decision: &Decision) -> bool {
    decision
        .explanation
        .clamps
        .iter()
        .any(|c| matches!(c.kind, ClampKind::Paused | ClampKind::ResourceBusy))
}

/// Caps consumers at their topics' partitions and asks for partition growth.
fn partitions(
    by_name: &BTreeMap<&str, &Policy>,
    decisions: &mut [Decision],
    requests: &mut Vec<Request>,
) {
    let current: BTreeMap<String, u32> = decisions
        .iter()
        .map(|d| (d.policy.clone(), d.current))
        .collect();
    for decision in decisions.iter_mut() {
        let Some(policy) = by_name.get(decision.policy.as_str()) else {
            continue;
        };
        if fixed(decision) {
            continue;
        }
        for (index, track) in policy.track.iter().enumerate() {
            let Some(topic) = &track.topic else {
                continue;
            };
            let Some(&partitions) = current.get(topic) else {
                continue;
            };
            let cap = partitions.max(policy.capacity.min);
            let wanted = decision
                .explanation
                .tracks
                .get(index)
                .and_then(|evaluation| match evaluation.outcome {
                    TrackOutcome::Proposed { proposed, .. } => Some(proposed),
                    _ => None,
                });
            let growing = decision.explanation.tracks.get(index).is_some_and(|e| {
                matches!((e.datapoints.first(), e.datapoints.last()), (Some(first), Some(last)) if e.datapoints.len() > 1 && last.value > first.value)
            });
            if decision.desired > cap {
                let detail = format!(
                    "track[{index}] consumes {topic}, which has {partitions} partitions; more consumers would sit idle"
                );
                hold_back(decision, ClampKind::Partitions, cap, detail);
            }
            let topic_max = by_name
                .get(topic.as_str())
                .map_or(partitions, |t| t.capacity.max);
            if let Some(wanted) = wanted
                && wanted > partitions
                && growing
            {
                let to = wanted.min(topic_max);
                if to > partitions {
                    requests.push(Request::PartitionGrowth {
                        policy: topic.clone(),
                        consumer: decision.policy.clone(),
                        from: partitions,
                        to,
                    });
                }
            }
        }
    }
}

/// Lowers `decision` to `to`, recording why.
fn hold_back(decision: &mut Decision, kind: ClampKind, to: u32, detail: String) {
    decision.explanation.clamps.push(Clamp {
        kind,
        from: decision.desired,
        to,
        detail,
    });
    decision.desired = to;
    decision.action = match to.cmp(&decision.current) {
        Ordering::Greater => Action::Scale(Direction::Out),
        Ordering::Less => Action::Scale(Direction::In),
        Ordering::Equal => Action::None,
    };
    decision.explanation.summary = format!(
        "{}; clamped by {} to {to}",
        decision.explanation.summary,
        label(kind)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use capstan_policy::model::{Connections, Database, Target};

    use super::*;
    use crate::decide;
    use crate::observe::ResourceState;
    use crate::testing::{capacity, now, policy};

    fn database(max_connections: u32) -> BTreeMap<String, Database> {
        BTreeMap::from([(
            "orders-db".to_owned(),
            Database {
                max_connections,
                reserve: 0,
                source: "declared".into(),
            },
        )])
    }

    fn user(name: &str, priority: i32, min: u32) -> Policy {
        let mut policy = policy();
        policy.name = name.into();
        policy.target = Target::EcsService {
            cluster: "prod".into(),
            service: name.into(),
        };
        policy.capacity.min = min;
        policy.priority = priority;
        policy.connections = Some(Connections {
            database: "orders-db".into(),
            per_task: 50,
        });
        policy
    }

    /// A decision for `policy` from `current` to `desired`, as if a rule had asked for it.
    fn wants(policy: &Policy, current: u32, desired: u32) -> Decision {
        let mut decision = decide(
            policy,
            &Default::default(),
            &capacity(current),
            &ResourceState::default(),
            now(),
        );
        decision.desired = desired;
        decision.action = Action::Scale(Direction::Out);
        decision
    }

    #[test]
    fn one_service_is_capped_at_budget_over_per_task() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(200);
        let guarded = apply_guards(&[&orders], vec![wants(&orders, 3, 6)]);
        let decision = &guarded.decisions[0];
        assert_eq!(decision.desired, 4);
        assert_eq!(decision.change(), Some((Direction::Out, 4)));
        let clamp = decision.explanation.clamps.last().expect("a clamp");
        assert_eq!(
            (clamp.kind, clamp.from, clamp.to),
            (ClampKind::ConnectionBudget, 6, 4)
        );
        assert!(
            decision
                .explanation
                .summary
                .ends_with("clamped by connection budget to 4")
        );
        assert_eq!(
            guarded.requests,
            [Request::DatabaseConnections {
                database: "orders-db".into(),
                policy: None,
                wanted: 300,
                budget: 200,
                held_back: vec!["orders".into()],
            }]
        );
    }

    #[test]
    fn higher_priority_goes_first_then_name_and_minimums_are_kept() {
        let mut checkout = user("checkout", 10, 1);
        checkout.databases = database(500);
        let orders = user("orders", 0, 2);
        let audit = user("audit", 0, 1);
        let replicas = {
            let mut p = policy();
            p.name = "orders-db-replicas".into();
            p.target = Target::RdsReplicas {
                source: "orders-db".into(),
            };
            p
        };
        let decisions = vec![
            wants(&orders, 2, 5),
            wants(&audit, 1, 5),
            wants(&checkout, 2, 6),
        ];
        let guarded = apply_guards(&[&orders, &audit, &checkout, &replicas], decisions);
        let desired: Vec<u32> = guarded.decisions.iter().map(|d| d.desired).collect();
        // 10 units: minimums 2 + 1 + 1, then checkout 6, then audit (before orders by name) 1.
        assert_eq!(desired, [2, 2, 6]);
        let Request::DatabaseConnections {
            policy, held_back, ..
        } = &guarded.requests[0]
        else {
            panic!("a connections request, got {:?}", guarded.requests);
        };
        assert_eq!(policy.as_deref(), Some("orders-db-replicas"));
        assert_eq!(held_back, &["audit".to_owned(), "orders".to_owned()]);
    }

    #[test]
    fn consumers_are_capped_at_partitions_and_growing_lag_asks_for_more() {
        use capstan_policy::model::{Track, TrackGoal};

        use crate::observe::MetricData;
        use crate::testing::series;

        let mut topic = policy();
        topic.name = "order-events-topic".into();
        topic.target = Target::MskTopic {
            cluster_arn: "arn".into(),
            topic: "order-events".into(),
        };
        topic.capacity = capstan_policy::model::Capacity { min: 4, max: 8 };
        let mut consumers = policy();
        consumers.name = "consumers".into();
        consumers.capacity.max = 20;
        consumers.track.push(Track {
            metric: "cpu".into(),
            goal: TrackGoal::PerReplica(1000.0),
            window: 3,
            partitions: None,
            topic: Some("order-events-topic".into()),
        });
        let lag = |values: &[f64]| {
            let values: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
            [(
                consumers.metric("cpu").clone(),
                MetricData::Series(series(now(), 60, &values)),
            )]
            .into_iter()
            .collect()
        };
        let run = |observations| {
            let decision = decide(
                &consumers,
                &observations,
                &capacity(2),
                &ResourceState::default(),
                now(),
            );
            let topic_decision = decide(
                &topic,
                &Default::default(),
                &capacity(4),
                &ResourceState::default(),
                now(),
            );
            apply_guards(&[&consumers, &topic], vec![decision, topic_decision])
        };
        let growing = run(lag(&[6000.0, 9000.0, 12000.0]));
        let decision = &growing.decisions[0];
        assert_eq!(decision.desired, 4);
        assert_eq!(
            decision.explanation.clamps.last().map(|c| c.kind),
            Some(ClampKind::Partitions)
        );
        assert!(
            decision
                .explanation
                .summary
                .ends_with("; clamped by partitions to 4"),
            "{}",
            decision.explanation.summary
        );
        assert_eq!(
            growing.requests,
            [Request::PartitionGrowth {
                policy: "order-events-topic".into(),
                consumer: "consumers".into(),
                from: 4,
                to: 8,
            }]
        );
        let shrinking = run(lag(&[12000.0, 9000.0, 9000.0]));
        assert_eq!(shrinking.decisions[0].desired, 4);
        assert!(shrinking.requests.is_empty());
    }

    #[test]
    fn a_user_without_a_decision_is_charged_at_its_max() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(500);
        let mut checkout = user("checkout", 0, 1);
        checkout.capacity.max = 6;
        let guarded = apply_guards(&[&orders, &checkout], vec![wants(&orders, 2, 8)]);
        assert_eq!(guarded.decisions[0].desired, 4);
    }

    #[test]
    fn within_budget_nothing_changes() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(200);
        let decision = wants(&orders, 3, 4);
        let guarded = apply_guards(&[&orders], vec![decision.clone()]);
        assert_eq!(guarded.decisions, [decision]);
        assert!(guarded.requests.is_empty());
    }
}
