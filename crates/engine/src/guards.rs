//! Cross-resource guards, applied over the decisions of a whole policy set in one pure pass.
//!
//! # Connection budget
//!
//! A database declared under `databases` has a budget of `max_connections - reserve` on its
//! source. Every policy with `connections: { database, per_task }` is a user of it. Users with
//! `read_only: true` may also connect to the database's read replicas: each replica in service
//! (`available`, per the decision in the pass of the `rds_replicas` policy whose source is the
//! database) adds as much again for them, since a replica has its source's instance class and
//! parameter group, so its `max_connections`. Together, the users' desired capacity ×
//! `per_task` never exceeds the source's budget plus the replicas', and the writers' alone
//! never exceeds the source's:
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
//! of the database's `rds_replicas` policy, when there is one and a read-only user is among
//! those held back (a replica does not help writers).
//!
//! A decision retiring replicas in service is held back, with a [`ClampKind::ConnectionBudget`]
//! clamp, while the connections the users hold now or want in the pass (each at the larger of
//! its current and desired capacity) need them.
//!
//! A user among `policies` without a decision (not evaluated in the pass, or its capacity could
//! not be read) is charged at its `capacity.max`, the most it could be using, so the budget
//! holds whatever it runs. Without a decision for the replica policy, no replica counts. Pass
//! the whole policy set as `policies` for that to work; a policy absent from `policies` is not
//! known to the guard at all.
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
        /// The budget they share: the source's, and each read replica's in service for the
        /// read-only users.
        budget: u32,
        /// The users held back, in priority order.
        held_back: Vec<String>,
        /// The read-only users among them, whom one more read replica would relieve; the
        /// replica policy is asked only for them.
        readers: Vec<String>,
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
                readers,
            } => {
                write!(
                    f,
                    "{database}: its users want {wanted} connections of {budget} (held back: {}); ",
                    held_back.join(", ")
                )?;
                match policy {
                    Some(policy) => write!(
                        f,
                        "{policy} is asked for one more read replica, for {}",
                        readers.join(", ")
                    ),
                    None if readers.is_empty() => {
                        write!(f, "they write, so a read replica would not help them")
                    }
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
        requests.extend(connection_budget(
            name,
            database,
            policies,
            &by_name,
            &mut decisions,
        ));
    }
    Guarded {
        decisions,
        requests,
    }
}

/// One user of a database in the pass: its decision's index, its policy, the connections each
/// of its units opens, and whether they only read.
struct User<'a> {
    index: usize,
    policy: &'a Policy,
    per_task: u64,
    read_only: bool,
}

/// Connections charged against a database: by every user, and by the writers among them.
#[derive(Debug, Clone, Copy, Default)]
struct Charged {
    all: u64,
    writes: u64,
}

impl Charged {
    /// Charges `units` units of `per_task` connections each.
    fn add(&mut self, units: u32, per_task: u64, read_only: bool) {
        let connections = u64::from(units) * per_task;
        self.all += connections;
        if !read_only {
            self.writes += connections;
        }
    }
}

/// A database's budgets in a pass: `per_instance` on the source, for every user, and as much
/// again on each of the `replicas` in service, for read-only users.
struct Budget {
    per_instance: u64,
    replicas: u32,
}

impl Budget {
    /// All the connections the database takes: the read-only users' budget.
    fn total(&self) -> u64 {
        self.per_instance * (1 + u64::from(self.replicas))
    }

    /// Units of `per_task` connections a user may still be granted beyond `charged`.
    fn room(&self, charged: Charged, per_task: u64, read_only: bool) -> u64 {
        let anywhere = self.total().saturating_sub(charged.all);
        let room = if read_only {
            anywhere
        } else {
            anywhere.min(self.per_instance.saturating_sub(charged.writes))
        };
        room / per_task
    }
}

/// Shares `database`'s budget among its users' decisions, holding back retirement of the read
/// replicas its users' connections need, and asks for more connections if users are held back.
fn connection_budget(
    name: &str,
    database: &Database,
    policies: &[&Policy],
    by_name: &BTreeMap<&str, &Policy>,
    decisions: &mut [Decision],
) -> Option<Request> {
    let mut users: Vec<User<'_>> = decisions
        .iter()
        .enumerate()
        .filter_map(|(index, decision)| {
            let policy = by_name.get(decision.policy.as_str())?;
            let connections = policy.connections.as_ref()?;
            (connections.database == name).then_some(User {
                index,
                policy,
                per_task: u64::from(connections.per_task),
                read_only: connections.read_only,
            })
        })
        .collect();
    users.sort_by_key(|user| (Reverse(user.policy.priority), user.policy.name.clone()));
    // Users with no decision: charged at the most they could be running.
    let mut unknown = Charged::default();
    for policy in policies {
        if let Some(connections) = &policy.connections
            && connections.database == name
            && !decisions.iter().any(|d| d.policy == policy.name)
        {
            unknown.add(
                policy.capacity.max,
                u64::from(connections.per_task),
                connections.read_only,
            );
        }
    }
    // What the users hold now or want in this pass, whichever is more.
    let mut in_use = unknown;
    for user in &users {
        let decision = &decisions[user.index];
        in_use.add(
            decision.current.max(decision.desired),
            user.per_task,
            user.read_only,
        );
    }
    let replica_policy = policies
        .iter()
        .find(|p| matches!(&p.target, Target::RdsReplicas { source } if source == name));
    let budget = Budget {
        per_instance: u64::from(database.budget()),
        replicas: replica_policy
            .and_then(|policy| decisions.iter_mut().find(|d| d.policy == policy.name))
            .map_or(0, |replicas| {
                keep_replicas_in_use(name, database, in_use, replicas)
            }),
    };
    let mut grants: Vec<u32> = users
        .iter()
        .map(|user| {
            let decision = &decisions[user.index];
            if fixed(decision) {
                decision.desired
            } else {
                decision.desired.min(user.policy.capacity.min)
            }
        })
        .collect();
    let mut charged = unknown;
    for (user, &grant) in users.iter().zip(&grants) {
        charged.add(grant, user.per_task, user.read_only);
    }
    for (user, grant) in users.iter().zip(&mut grants) {
        let decision = &decisions[user.index];
        if fixed(decision) {
            continue;
        }
        let room = budget.room(charged, user.per_task, user.read_only);
        let extra = u32::try_from(u64::from(decision.desired - *grant).min(room)).unwrap_or(0);
        *grant += extra;
        charged.add(extra, user.per_task, user.read_only);
    }
    let mut wanted = unknown;
    for user in &users {
        wanted.add(decisions[user.index].desired, user.per_task, user.read_only);
    }
    let mut held_back = Vec::new();
    let mut readers = Vec::new();
    for (user, &grant) in users.iter().zip(&grants) {
        let decision = &mut decisions[user.index];
        if grant >= decision.desired {
            continue;
        }
        held_back.push(decision.policy.clone());
        if user.read_only {
            readers.push(decision.policy.clone());
        }
        let detail = format!(
            "{}; at {} per unit, {} of them are granted, in priority order",
            describe(name, database, &budget, user.read_only),
            user.per_task,
            charged.all
        );
        hold_back(decision, ClampKind::ConnectionBudget, grant, detail);
    }
    if held_back.is_empty() {
        return None;
    }
    Some(Request::DatabaseConnections {
        database: name.to_owned(),
        policy: replica_policy
            .filter(|_| !readers.is_empty())
            .map(|p| p.name.clone()),
        wanted: u32::try_from(wanted.all).unwrap_or(u32::MAX),
        budget: u32::try_from(budget.total()).unwrap_or(u32::MAX),
        held_back,
        readers,
    })
}

/// Holds back a decision retiring read replicas in service while the connections the
/// database's users hold now or want in this pass (`in_use`) would not fit the budget of the
/// fewer replicas left. Returns how many replicas stay in service.
fn keep_replicas_in_use(
    name: &str,
    database: &Database,
    in_use: Charged,
    replicas: &mut Decision,
) -> u32 {
    let after = replicas.in_service.min(replicas.desired);
    if after == replicas.in_service || fixed(replicas) {
        return after;
    }
    let per_instance = u64::from(database.budget()).max(1);
    let needed = u32::try_from(in_use.all.div_ceil(per_instance).saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(replicas.in_service);
    if needed <= after {
        return after;
    }
    let keep = (replicas.desired + needed - after).min(replicas.current);
    let detail = format!(
        "{name}'s users hold or want {} connections, above the {} that the source and {after} read replicas allow at {per_instance} each",
        in_use.all,
        per_instance * (1 + u64::from(after))
    );
    hold_back(replicas, ClampKind::ConnectionBudget, keep, detail);
    needed
}

/// The budget `name` gives a user, for a clamp's detail.
fn describe(name: &str, database: &Database, budget: &Budget, read_only: bool) -> String {
    let source = format!(
        "{name} has a budget of {} connections ({} max_connections, {}; {} reserved)",
        budget.per_instance, database.max_connections, database.source, database.reserve
    );
    match (read_only, budget.replicas) {
        (_, 0) => source,
        (true, replicas) => format!(
            "{source} on its source and on each of its {replicas} read replicas in service, {} in all for read-only users",
            budget.total()
        ),
        (false, _) => format!("{source} on its source, where writers connect"),
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
            read_only: false,
        });
        policy
    }

    /// A user that only reads.
    fn reader(name: &str, min: u32) -> Policy {
        let mut policy = user(name, 0, min);
        if let Some(connections) = &mut policy.connections {
            connections.read_only = true;
        }
        policy.capacity.max = 40;
        policy
    }

    /// The `rds_replicas` policy of `orders-db`.
    fn replica_policy() -> Policy {
        let mut policy = policy();
        policy.name = "orders-db-replicas".into();
        policy.target = Target::RdsReplicas {
            source: "orders-db".into(),
        };
        policy
    }

    /// A decision of the replica policy: `current` replicas, `in_service` of them available,
    /// going to `desired`.
    fn replicas_decision(current: u32, in_service: u32, desired: u32) -> Decision {
        let mut decision = wants(&replica_policy(), current, desired);
        decision.in_service = in_service;
        decision.action = match desired.cmp(&current) {
            Ordering::Greater => Action::Scale(Direction::Out),
            Ordering::Less => Action::Scale(Direction::In),
            Ordering::Equal => Action::None,
        };
        decision
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
                readers: vec![],
            }]
        );
    }

    #[test]
    fn higher_priority_goes_first_then_name_and_minimums_are_kept() {
        let mut checkout = user("checkout", 10, 1);
        checkout.databases = database(500);
        let orders = user("orders", 0, 2);
        let audit = reader("audit", 1);
        let replicas = replica_policy();
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
            policy,
            held_back,
            readers,
            ..
        } = &guarded.requests[0]
        else {
            panic!("a connections request, got {:?}", guarded.requests);
        };
        assert_eq!(policy.as_deref(), Some("orders-db-replicas"));
        assert_eq!(held_back, &["audit".to_owned(), "orders".to_owned()]);
        assert_eq!(readers, &["audit".to_owned()]);
    }

    #[test]
    fn replicas_in_service_raise_the_readers_budget_but_not_the_writers() {
        // 200 per instance, 2 replicas available of 3: 600 connections for readers, 200 for writers.
        let mut orders = user("orders", 10, 1);
        orders.capacity.max = 40;
        orders.databases = database(200);
        let history = reader("history", 1);
        let replicas = replica_policy();
        let decisions = vec![
            wants(&orders, 2, 6),
            wants(&history, 2, 12),
            replicas_decision(3, 2, 3),
        ];
        let guarded = apply_guards(&[&orders, &history, &replicas], decisions);
        let desired: Vec<u32> = guarded.decisions.iter().map(|d| d.desired).collect();
        // orders first (priority 10): 4 writers fill the source; history gets the other 8.
        assert_eq!(desired, [4, 8, 3]);
        let detail = &guarded.decisions[1]
            .explanation
            .clamps
            .last()
            .expect("a clamp")
            .detail;
        assert!(
            detail
                .contains("each of its 2 read replicas in service, 600 in all for read-only users"),
            "{detail}"
        );
        assert_eq!(
            guarded.requests,
            [Request::DatabaseConnections {
                database: "orders-db".into(),
                policy: Some("orders-db-replicas".into()),
                wanted: 900,
                budget: 600,
                held_back: vec!["orders".into(), "history".into()],
                readers: vec!["history".into()],
            }]
        );
        assert!(
            guarded.requests[0]
                .to_string()
                .ends_with("orders-db-replicas is asked for one more read replica, for history")
        );
    }

    #[test]
    fn without_the_replica_policy_in_the_pass_readers_get_the_source_only() {
        let mut history = reader("history", 1);
        history.databases = database(200);
        let replicas = replica_policy();
        let guarded = apply_guards(&[&history, &replicas], vec![wants(&history, 2, 12)]);
        assert_eq!(guarded.decisions[0].desired, 4);
    }

    #[test]
    fn writers_held_back_do_not_ask_for_a_replica() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(200);
        let replicas = replica_policy();
        let guarded = apply_guards(
            &[&orders, &replicas],
            vec![wants(&orders, 2, 6), replicas_decision(1, 1, 1)],
        );
        assert_eq!(
            guarded.decisions[0].desired, 4,
            "a replica adds nothing for writers"
        );
        let [request] = &guarded.requests[..] else {
            panic!("one request, got {:?}", guarded.requests);
        };
        assert_eq!(request.addressee(), None);
        assert!(
            request
                .to_string()
                .ends_with("they write, so a read replica would not help them"),
            "{request}"
        );
    }

    #[test]
    fn replicas_readers_use_are_not_retired_under_them() {
        let mut history = reader("history", 1);
        history.databases = database(200);
        let replicas = replica_policy();
        // history's 10 tasks hold 500 connections: the source and 2 replicas are needed.
        let guarded = apply_guards(
            &[&history, &replicas],
            vec![wants(&history, 10, 10), replicas_decision(3, 3, 0)],
        );
        let [users, retiring] = &guarded.decisions[..] else {
            panic!("two decisions");
        };
        assert_eq!(retiring.desired, 2);
        let clamp = retiring.explanation.clamps.last().expect("a clamp");
        assert_eq!(
            (clamp.kind, clamp.from, clamp.to),
            (ClampKind::ConnectionBudget, 0, 2)
        );
        assert!(
            clamp
                .detail
                .starts_with("orders-db's users hold or want 500 connections, above the 200"),
            "{}",
            clamp.detail
        );
        assert_eq!(users.desired, 10, "the two replicas kept hold them");
        // Readers wanting more than the source holds keep a replica too, and get it.
        let guarded = apply_guards(
            &[&history, &replicas],
            vec![wants(&history, 4, 8), replicas_decision(1, 1, 0)],
        );
        let desired: Vec<u32> = guarded.decisions.iter().map(|d| d.desired).collect();
        assert_eq!(desired, [8, 1]);
        // Once the readers are down to 4 tasks, the source alone holds them.
        let guarded = apply_guards(
            &[&history, &replicas],
            vec![wants(&history, 4, 4), replicas_decision(3, 3, 0)],
        );
        assert_eq!(guarded.decisions[1].desired, 0);
    }

    #[test]
    fn a_replica_being_created_adds_nothing_yet() {
        let mut history = reader("history", 1);
        history.databases = database(200);
        let replicas = replica_policy();
        let guarded = apply_guards(
            &[&history, &replicas],
            vec![wants(&history, 2, 12), replicas_decision(2, 1, 2)],
        );
        assert_eq!(guarded.decisions[0].desired, 8);
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
