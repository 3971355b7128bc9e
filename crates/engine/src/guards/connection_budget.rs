//! The connection budget: a database's connections shared by the services that use it.
//!
//! A database declared under `databases` has a budget of `max_connections - reserve` on its
//! source. Every policy with `connections: { database, per_task }` is a user of it. Users with
//! `read_only: true` may also connect to the database's read replicas: each replica in service
//! (`available`, per the decision in the pass of the `rds_replicas` policy whose source is the
//! database) adds as much again for them, since a replica has its source's instance class and
//! parameter group, so its `max_connections`. The writers' connections must fit the source's
//! budget; everyone's, the source's and the replicas' together.
//!
//! **Growth** is granted from what is left once every user is charged for the connections it
//! may hold now:
//!
//! - a user with a decision in the pass, at its [running](Decision::running) units: its current
//!   capacity, or more while units it removed still drain (for [`drain`]) or the resource runs
//!   more than it is set to (an ECS deployment). So room freed by a scale-in is granted only
//!   once the removed units are gone, and no scale-out depends on a scale-in made in the same
//!   pass, or on one that failed;
//! - a user without a decision (its read failed, or another evaluation holds its lease) at its
//!   `capacity.max`, the most it could be running. Without a decision for the replica policy,
//!   no replica counts.
//!
//! Then a growing user below its `capacity.min` is granted up to it (validation checks that
//! the minimums fit a declared budget), and what is left goes to the growing users in priority
//! order, highest `priority` first, then by name, each up to its desired capacity, in whole
//! units. A user held below its desired capacity (never below its current one) gets a
//! [`ClampKind::ConnectionBudget`] clamp (for growth, the budget wins over schedule floors,
//! since running out of connections takes the database's users down), and a
//! [`GuardRequest::DatabaseConnections`] asks for more connections: of the database's
//! `rds_replicas` policy, when there is one and a read-only user is among those held back (a
//! replica does not help writers).
//!
//! **A breach**, the users' decided capacities × `per_task` above the budget, comes only from
//! outside the pass's growth: `max_connections` lowered, a capacity set by hand, a minimum
//! raised. It is judged on what is known: users without a decision count for nothing, and the
//! readers' share only when the replica policy's decision is in the pass (writers connect to
//! the source alone, so theirs is always known). Users are then asked, lowest priority first
//! (then by name, in reverse), to go down by what covers the excess, never below their
//! `capacity.min`, each with a [`GuardRequest::ShedConnections`] that it answers as a scale-in.
//!
//! **Retirement** of read replicas in service is held back, with a
//! [`ClampKind::ConnectionBudget`] clamp, while the connections the users may hold now or want
//! in the pass (each at the larger of its running and desired units; a user without a
//! decision at its `capacity.max`) need them.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use capstan_policy::model::{Database, Duration, Policy};

use super::{GuardRequest, hold_back, replicas_of};
use crate::decision::{ClampKind, Decision};

/// How long a unit removed from `policy`'s resource may still hold connections: its
/// `scale_in_pacing.drain`, or [`DEFAULT_DRAIN`] without pacing.
pub fn drain(policy: &Policy) -> Duration {
    policy
        .guards
        .scale_in_pacing
        .map_or(DEFAULT_DRAIN, |pacing| pacing.drain)
}

/// How long a removed unit may hold connections, for a policy without `scale_in_pacing`: 5
/// minutes 30 seconds, an Application Load Balancer's default deregistration delay (300 s)
/// and ECS's default stop timeout (30 s).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(330);

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
/// replicas its users' connections need; asks for more connections if users are held back,
/// and asks users to shed connections if the budget is breached.
pub(crate) fn apply(
    name: &str,
    database: &Database,
    policies: &[&Policy],
    by_name: &BTreeMap<&str, &Policy>,
    decisions: &mut [Decision],
) -> Vec<GuardRequest> {
    let users = users(name, by_name, decisions);
    let unknown = unknown_users(name, policies, decisions);
    // What the users may hold now or want in this pass, whichever is more.
    let in_use = charge(unknown, &users, decisions, |decision| {
        decision.running.max(decision.desired)
    });
    // What they would hold with every decision granted.
    let wanted = charge(unknown, &users, decisions, |decision| {
        decision.running + decision.desired.saturating_sub(decision.current)
    });
    let replica_policy = policies.iter().find(|p| replicas_of(p) == Some(name));
    let replicas = replica_policy
        .and_then(|policy| decisions.iter_mut().find(|d| d.policy == policy.name))
        .map(|replicas| keep_replicas_in_use(name, database, in_use, replicas));
    let budget = Budget {
        per_instance: u64::from(database.budget()),
        replicas: replicas.unwrap_or(0),
    };
    let grants = grant_growth(&users, decisions, unknown, &budget);
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
            "{}; at {} per unit, its users may hold {} now and this pass grants what is left, in priority order",
            describe(name, database, &budget, user.read_only),
            user.per_task,
            in_use.all
        );
        hold_back(decision, ClampKind::ConnectionBudget, grant, detail);
    }
    let mut requests = shed(name, database, &users, decisions, replicas);
    if !held_back.is_empty() {
        requests.push(GuardRequest::DatabaseConnections {
            database: name.to_owned(),
            policy: replica_policy
                .filter(|_| !readers.is_empty())
                .map(|p| p.name.clone()),
            wanted: u32::try_from(wanted.all).unwrap_or(u32::MAX),
            budget: u32::try_from(budget.total()).unwrap_or(u32::MAX),
            held_back,
            readers,
        });
    }
    requests
}

/// The users of database `name` with a decision in the pass, in priority order: highest
/// `priority` first, then by name.
fn users<'a>(
    name: &str,
    by_name: &BTreeMap<&str, &'a Policy>,
    decisions: &[Decision],
) -> Vec<User<'a>> {
    let mut users: Vec<User<'a>> = decisions
        .iter()
        .enumerate()
        .filter_map(|(index, decision)| {
            let policy = *by_name.get(decision.policy.as_str())?;
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
    users
}

/// The connections of the users of database `name` without a decision in the pass, each
/// charged at its `capacity.max`, the most it could be running.
fn unknown_users(name: &str, policies: &[&Policy], decisions: &[Decision]) -> Charged {
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
    unknown
}

/// `unknown`, and each of the `users` charged for the units `units` counts of its decision.
fn charge(
    unknown: Charged,
    users: &[User<'_>],
    decisions: &[Decision],
    units: impl Fn(&Decision) -> u32,
) -> Charged {
    let mut charged = unknown;
    for user in users {
        charged.add(units(&decisions[user.index]), user.per_task, user.read_only);
    }
    charged
}

/// The capacity each user is granted: its decided one, unless it grows and the budget left
/// once every user is charged for its running units (and `unknown` for the users without a
/// decision) does not hold it all; never below its current capacity.
fn grant_growth(
    users: &[User<'_>],
    decisions: &[Decision],
    unknown: Charged,
    budget: &Budget,
) -> Vec<u32> {
    let grows = |decision: &Decision| !decision.frozen() && decision.desired > decision.current;
    let mut grants: Vec<u32> = users
        .iter()
        .map(|user| {
            let decision = &decisions[user.index];
            if grows(decision) {
                let minimum = decision.current.max(user.policy.capacity.min);
                decision.desired.min(minimum)
            } else {
                decision.desired
            }
        })
        .collect();
    let mut charged = unknown;
    for (user, &grant) in users.iter().zip(&grants) {
        let decision = &decisions[user.index];
        let growth = grant.saturating_sub(decision.current);
        charged.add(decision.running + growth, user.per_task, user.read_only);
    }
    for (user, grant) in users.iter().zip(&mut grants) {
        let decision = &decisions[user.index];
        if !grows(decision) {
            continue;
        }
        let room = budget.room(charged, user.per_task, user.read_only);
        let extra = u32::try_from(u64::from(decision.desired - *grant).min(room)).unwrap_or(0);
        *grant += extra;
        charged.add(extra, user.per_task, user.read_only);
    }
    grants
}

/// Asks users to go down while their decided capacities breach the budget, lowest priority
/// first, each no lower than its `capacity.min`. The readers' share is judged only when the
/// `replicas` in service are known.
fn shed(
    name: &str,
    database: &Database,
    users: &[User<'_>],
    decisions: &[Decision],
    replicas: Option<u32>,
) -> Vec<GuardRequest> {
    let per_instance = u64::from(database.budget());
    let mut set = Charged::default();
    for user in users {
        set.add(decisions[user.index].desired, user.per_task, user.read_only);
    }
    let total = replicas.map(|replicas| per_instance * (1 + u64::from(replicas)));
    let mut writes_over = set.writes.saturating_sub(per_instance);
    let mut all_over = total.map_or(0, |total| set.all.saturating_sub(total));
    let mut requests = Vec::new();
    for user in users.iter().rev() {
        let decision = &decisions[user.index];
        let over = if user.read_only {
            all_over
        } else {
            all_over.max(writes_over)
        };
        if over == 0 || decision.frozen() {
            continue;
        }
        let spare = decision.desired.saturating_sub(user.policy.capacity.min);
        let cut = u32::try_from(over.div_ceil(user.per_task))
            .unwrap_or(u32::MAX)
            .min(spare);
        if cut == 0 {
            continue;
        }
        let (connections, budget) = if !user.read_only && writes_over > 0 {
            (set.writes, per_instance)
        } else {
            (set.all, total.unwrap_or(per_instance))
        };
        requests.push(GuardRequest::ShedConnections {
            policy: decision.policy.clone(),
            database: name.to_owned(),
            to: decision.desired - cut,
            connections: u32::try_from(connections).unwrap_or(u32::MAX),
            budget: u32::try_from(budget).unwrap_or(u32::MAX),
        });
        let freed = u64::from(cut) * user.per_task;
        all_over = all_over.saturating_sub(freed);
        if !user.read_only {
            writes_over = writes_over.saturating_sub(freed);
        }
    }
    requests
}

/// Holds back a decision retiring read replicas in service while the connections the
/// database's users may hold now or want in this pass (`in_use`) would not fit the budget of
/// the fewer replicas left. Returns how many replicas stay in service.
fn keep_replicas_in_use(
    name: &str,
    database: &Database,
    in_use: Charged,
    replicas: &mut Decision,
) -> u32 {
    let after = replicas.in_service.min(replicas.desired);
    if after == replicas.in_service || replicas.frozen() {
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
        "{name}'s users may hold or want {} connections, above the {} that the source and {after} read replicas allow at {per_instance} each",
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use capstan_policy::model::{Connections, Database, Target};

    use super::*;
    use crate::decide::decide;
    use crate::decision::Action;
    use crate::guards::apply_guards;
    use crate::observe::{Change, CurrentCapacity, Direction, ResourceState};
    use crate::testing::{capacity, database, now, policy, user, wants};

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
        decision.action = Action::between(current, desired);
        decision
    }

    /// A decision for `policy` at `current` with no change of its own: paused, or with the
    /// resource busy.
    fn frozen(policy: &Policy, current: u32, paused: bool) -> Decision {
        let mut policy = policy.clone();
        policy.paused = paused;
        let now_capacity = CurrentCapacity {
            busy: (!paused).then(|| "a deployment is in progress".to_owned()),
            ..capacity(current)
        };
        let decision = decide(
            &policy,
            &Default::default(),
            &now_capacity,
            &ResourceState::default(),
            now(),
        );
        assert!(decision.explanation.clamps.is_empty(), "no clamp recorded");
        decision
    }

    /// The connection requests among `requests` that ask a user to shed connections.
    fn sheds(requests: &[GuardRequest]) -> Vec<(&str, u32)> {
        requests
            .iter()
            .filter_map(|request| match request {
                GuardRequest::ShedConnections { policy, to, .. } => Some((policy.as_str(), *to)),
                _ => None,
            })
            .collect()
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
            [GuardRequest::DatabaseConnections {
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
        let GuardRequest::DatabaseConnections {
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
            [GuardRequest::DatabaseConnections {
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
                .starts_with("orders-db's users may hold or want 500 connections, above the 200"),
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
    fn a_user_without_a_decision_is_charged_at_its_max() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(500);
        let mut checkout = user("checkout", 0, 1);
        checkout.capacity.max = 6;
        let guarded = apply_guards(&[&orders, &checkout], vec![wants(&orders, 2, 8)]);
        assert_eq!(guarded.decisions[0].desired, 4);
    }

    #[test]
    fn a_user_without_a_decision_never_takes_another_below_its_capacity() {
        // checkout's read failed: it is charged at its max (300), which leaves orders no room,
        // but orders keeps its 6 tasks, and no one is asked to shed on that unknown charge.
        let mut orders = user("orders", 0, 1);
        orders.databases = database(500);
        let mut checkout = user("checkout", 0, 1);
        checkout.capacity.max = 6;
        let guarded = apply_guards(&[&orders, &checkout], vec![wants(&orders, 6, 6)]);
        assert_eq!(guarded.decisions[0].desired, 6);
        assert_eq!(guarded.decisions[0].change(), None);
        assert!(guarded.requests.is_empty(), "{:?}", guarded.requests);
    }

    #[test]
    fn a_user_growing_while_another_is_unknown_is_held_at_its_capacity_not_below() {
        // An alarm woke orders alone: checkout is charged at its max, and orders' scale-out is
        // held at the 4 tasks it has.
        let mut orders = user("orders", 0, 1);
        orders.databases = database(500);
        let mut checkout = user("checkout", 0, 1);
        checkout.capacity.max = 8;
        let guarded = apply_guards(&[&orders, &checkout], vec![wants(&orders, 4, 6)]);
        let decision = &guarded.decisions[0];
        assert_eq!((decision.desired, decision.change()), (4, None));
        let clamp = decision.explanation.clamps.last().expect("a clamp");
        assert_eq!(
            (clamp.kind, clamp.from, clamp.to),
            (ClampKind::ConnectionBudget, 6, 4)
        );
        assert!(sheds(&guarded.requests).is_empty());
    }

    #[test]
    fn a_failed_replica_read_never_cuts_the_readers_it_serves() {
        // order-history-readers at 24 tasks of 25 connections holds 600, more than orders-db's
        // 380 alone; the replica policy's read failed, so its replicas are unknown, not none.
        let mut readers = reader("order-history-readers", 2);
        readers.connections = Some(Connections {
            database: "orders-db".into(),
            per_task: 25,
            read_only: true,
        });
        let mut replicas = replica_policy();
        replicas.databases = BTreeMap::from([(
            "orders-db".to_owned(),
            Database {
                max_connections: 400,
                reserve: 20,
                source: "declared".into(),
            },
        )]);
        let guarded = apply_guards(&[&readers, &replicas], vec![wants(&readers, 24, 24)]);
        assert_eq!(guarded.decisions[0].desired, 24);
        assert!(guarded.requests.is_empty(), "{:?}", guarded.requests);
    }

    #[test]
    fn paused_and_busy_users_with_no_change_of_their_own_are_left_alone() {
        for paused in [true, false] {
            let mut orders = user("orders", 0, 1);
            orders.databases = database(200);
            let checkout = user("checkout", 10, 1);
            let held = frozen(&orders, 6, paused);
            let guarded = apply_guards(
                &[&orders, &checkout],
                vec![held.clone(), wants(&checkout, 1, 3)],
            );
            assert_eq!(guarded.decisions[0], held, "paused: {paused}");
            // orders' 6 tasks fill the budget: checkout does not grow, and orders is not asked
            // to shed since it may not change.
            assert_eq!(guarded.decisions[1].desired, 1);
            assert!(sheds(&guarded.requests).is_empty());
        }
    }

    #[test]
    fn a_breach_of_known_connections_asks_the_lowest_priority_user_to_shed() {
        // Both users are decided at 3 tasks: 300 connections of 200.
        let mut checkout = user("checkout", 10, 1);
        checkout.databases = database(200);
        let orders = user("orders", 0, 1);
        let guarded = apply_guards(
            &[&checkout, &orders],
            vec![wants(&checkout, 3, 3), wants(&orders, 3, 3)],
        );
        assert_eq!(sheds(&guarded.requests), [("orders", 1)]);
        assert!(
            guarded.requests[0]
                .to_string()
                .ends_with("above its budget of 200; orders is asked to go down to 1"),
            "{}",
            guarded.requests[0]
        );
        let desired: Vec<u32> = guarded.decisions.iter().map(|d| d.desired).collect();
        assert_eq!(desired, [3, 3], "the guard itself lowers no one");
    }

    #[test]
    fn room_freed_by_a_scale_in_is_granted_once_the_removed_units_have_drained() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(400);
        let checkout = user("checkout", 10, 1);
        // orders went 6 -> 4 `ago` seconds before: its two removed tasks drain for 5 min 30 s.
        let shrunk = |ago: i64| {
            let state = ResourceState {
                changes: vec![Change {
                    at: now() - chrono::TimeDelta::seconds(ago),
                    direction: Direction::In,
                    from: 6,
                    to: 4,
                }],
                ..ResourceState::default()
            };
            decide(&orders, &Default::default(), &capacity(4), &state, now())
        };
        let grown = |decision: Decision| {
            apply_guards(
                &[&orders, &checkout],
                vec![decision, wants(&checkout, 2, 4)],
            )
            .decisions[1]
                .desired
        };
        assert_eq!(shrunk(60).running, 6);
        assert_eq!(grown(shrunk(60)), 2, "8 tasks' worth held: none left");
        assert_eq!(shrunk(400).running, 4);
        assert_eq!(grown(shrunk(400)), 4, "drained: checkout gets the room");
        // A deployment running more tasks than desired is charged for them too.
        let deploying = CurrentCapacity {
            running: Some(6),
            ..capacity(4)
        };
        let decision = decide(
            &orders,
            &Default::default(),
            &deploying,
            &ResourceState::default(),
            now(),
        );
        assert_eq!(grown(decision), 2);
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
