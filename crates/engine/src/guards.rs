//! Cross-resource guards, applied over the decisions of a whole policy set in one pure pass.
//!
//! Two rules hold for every guard:
//!
//! - A guard never changes a [frozen](Decision::frozen) decision: a paused policy's, or a busy
//!   resource's.
//! - A guard never lowers a resource below its current capacity. It only holds growth back;
//!   where capacity must really be removed (a breached connection budget), it asks the policy
//!   for that with a [`Request`], which the policy answers like a rule's scale-in, through every
//!   scale-in guard (see [`crate::decide_all`]). So no guard ever acts on the strength of
//!   a read that failed or a decision that is not in the pass.
//!
//! Policies coupled by a guard ([`coupled`]) are woken together, so that a pass woken by one
//! user's alarm sees the others too, and a tick fanned out over several passes keeps them in
//! one.
//!
//! # Connection budget
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
//! [`Request::DatabaseConnections`] asks for more connections: of the database's
//! `rds_replicas` policy, when there is one and a read-only user is among those held back (a
//! replica does not help writers).
//!
//! **A breach**, the users' decided capacities × `per_task` above the budget, comes only from
//! outside the pass's growth: `max_connections` lowered, a capacity set by hand, a minimum
//! raised. It is judged on what is known: users without a decision count for nothing, and the
//! readers' share only when the replica policy's decision is in the pass (writers connect to
//! the source alone, so theirs is always known). Users are then asked, lowest priority first
//! (then by name, in reverse), to go down by what covers the excess, never below their
//! `capacity.min`, each with a [`Request::ShedConnections`] that it answers as a scale-in.
//!
//! **Retirement** of read replicas in service is held back, with a
//! [`ClampKind::ConnectionBudget`] clamp, while the connections the users may hold now or want
//! in the pass (each at the larger of its running and desired units; a user without a
//! decision at its `capacity.max`) need them.
//!
//! Pass the whole policy set as `policies`: a policy absent from it is not known to the guard
//! at all.
//!
//! # Partition coupling
//!
//! A `track` rule with `topic: <msk_topic policy>` consumes that topic: the consumers never
//! grow above the topic's current partition count (the topic policy's decision's `current`),
//! or their `capacity.min` if that is higher, with a [`ClampKind::Partitions`] clamp. Without a
//! decision for the topic's policy in the pass, the partition count is unknown and the
//! consumers do not grow at all. Consumers already above the partitions are held, not lowered.
//! When the rule wanted more consumers than there are partitions and its metric (lag) rose
//! over its window (the newest datapoint above the oldest), a [`Request::PartitionGrowth`] asks
//! the topic's policy for as many partitions as consumers wanted, within the topic's
//! `capacity.max`; never for fewer than it has.
//!
//! # Shared limits
//!
//! Resources whose capacity reports the same [`Share`] pool draw on one room: the topics of an
//! MSK cluster on the partition replicas its brokers may hold. Each resource's own maximum
//! already keeps it within the room on its own; together, their growth in one pass (each
//! unit taking `per_unit` of the room) is granted in priority order, then by name, up to the
//! room, and a resource held back gets a [`ClampKind::ResourceMax`] clamp. The room is what the
//! resources reported before the pass: growth already under way that a resource does not
//! show yet (a topic still `UPDATING`) is not counted, so a busy member holds the others back
//! instead.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use capstan_policy::model::{Database, Duration, Policy, Target};

use crate::decide::label;
use crate::decision::{Action, Clamp, ClampKind, Decision, TrackOutcome};
use crate::observe::Share;

/// Something a guard asks a policy for, answered by [`crate::decide_all`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Users of a database wanted more connections than its budget.
    DatabaseConnections {
        /// The database's name.
        database: String,
        /// The `rds_replicas` policy on the database, if the set has one.
        policy: Option<String>,
        /// Connections the users would hold with every decision granted.
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
    /// A user of a database whose budget is breached is asked to go down.
    ShedConnections {
        /// The user's policy.
        policy: String,
        /// The database's name.
        database: String,
        /// The capacity asked for, below the decided one.
        to: u32,
        /// Connections the users' decided capacities hold: every user's, or the writers'
        /// when the source's share is the one breached.
        connections: u32,
        /// The budget breached: the source's and its replicas', or the source's alone.
        budget: u32,
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
    /// The policy asked: the database's `rds_replicas` policy, the user asked to shed
    /// connections or the topic's `msk_topic` policy; none for a database without a replica
    /// policy.
    pub fn addressee(&self) -> Option<&str> {
        match self {
            Self::DatabaseConnections { policy, .. } => policy.as_deref(),
            Self::ShedConnections { policy, .. } | Self::PartitionGrowth { policy, .. } => {
                Some(policy)
            }
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
            Self::ShedConnections {
                policy,
                database,
                to,
                connections,
                budget,
            } => write!(
                f,
                "{database}: its users are set to hold {connections} connections, above its budget of {budget}; {policy} is asked to go down to {to}"
            ),
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
pub(crate) struct Guarded {
    /// The decisions, in the order given.
    pub decisions: Vec<Decision>,
    /// Requests to policies.
    pub requests: Vec<Request>,
}

/// Applies the cross-resource guards to `decisions`, made for `policies` (matched by name).
/// Deterministic: the result depends on neither order.
pub(crate) fn apply_guards(policies: &[&Policy], mut decisions: Vec<Decision>) -> Guarded {
    let by_name: BTreeMap<&str, &Policy> = policies.iter().map(|p| (p.name.as_str(), *p)).collect();
    let databases: BTreeMap<&str, &Database> = policies
        .iter()
        .flat_map(|p| p.databases.iter().map(|(name, db)| (name.as_str(), db)))
        .collect();
    let mut requests = Vec::new();
    partitions(&by_name, &mut decisions, &mut requests);
    share_limits(&by_name, &mut decisions);
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

/// Whether a guard couples `one` and `other`: they share a [`Coupling`]. Coupled policies are
/// woken together, and a fanned-out tick keeps them in one shard, so that the guard sees them
/// in one pass.
pub fn coupled(one: &Policy, other: &Policy) -> bool {
    let theirs = couplings(other);
    couplings(one)
        .iter()
        .any(|coupling| theirs.contains(coupling))
}

/// What a guard reads together, named so that two policies with one in common are
/// [`coupled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Coupling<'a> {
    /// A database's connection budget, by the source's identifier: its users, and the
    /// `rds_replicas` policy of the source, whose replicas add to the readers' budget.
    Database(&'a str),
    /// A topic's partitions, by its `msk_topic` policy's name: that policy, and the consumers
    /// whose `track` rules name it.
    Topic(&'a str),
    /// The partition room of an MSK cluster's brokers, by the cluster's ARN: its topics' policies
    /// ([shared limits](self#shared-limits)).
    Cluster(&'a str),
}

/// Every [`Coupling`] of `policy`.
pub fn couplings(policy: &Policy) -> Vec<Coupling<'_>> {
    let mut couplings: Vec<Coupling<'_>> = database_of(policy)
        .into_iter()
        .chain(replicas_of(policy))
        .map(Coupling::Database)
        .collect();
    if let Target::MskTopic { cluster_arn, .. } = &policy.target {
        couplings.extend([
            Coupling::Topic(&policy.name),
            Coupling::Cluster(cluster_arn),
        ]);
    }
    couplings.extend(
        policy
            .track
            .iter()
            .filter_map(|track| track.topic.as_deref())
            .map(Coupling::Topic),
    );
    couplings
}

/// The database `policy` uses, if it is a user of one.
fn database_of(policy: &Policy) -> Option<&str> {
    policy
        .connections
        .as_ref()
        .map(|connections| connections.database.as_str())
}

/// The source whose read replicas `policy` scales, if it scales replicas.
fn replicas_of(policy: &Policy) -> Option<&str> {
    match &policy.target {
        Target::RdsReplicas { source } => Some(source),
        _ => None,
    }
}

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
fn connection_budget(
    name: &str,
    database: &Database,
    policies: &[&Policy],
    by_name: &BTreeMap<&str, &Policy>,
    decisions: &mut [Decision],
) -> Vec<Request> {
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
    // What the users may hold now or want in this pass, whichever is more.
    let mut in_use = unknown;
    for user in &users {
        let decision = &decisions[user.index];
        in_use.add(
            decision.running.max(decision.desired),
            user.per_task,
            user.read_only,
        );
    }
    let replica_policy = policies.iter().find(|p| replicas_of(p) == Some(name));
    let replicas = replica_policy
        .and_then(|policy| decisions.iter_mut().find(|d| d.policy == policy.name))
        .map(|replicas| keep_replicas_in_use(name, database, in_use, replicas));
    let budget = Budget {
        per_instance: u64::from(database.budget()),
        replicas: replicas.unwrap_or(0),
    };
    let grants = grant_growth(&users, decisions, unknown, &budget);
    let mut wanted = unknown;
    for user in &users {
        let decision = &decisions[user.index];
        let growth = decision.desired.saturating_sub(decision.current);
        wanted.add(decision.running + growth, user.per_task, user.read_only);
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
            "{}; at {} per unit, its users may hold {} now and this pass grants what is left, in priority order",
            describe(name, database, &budget, user.read_only),
            user.per_task,
            in_use.all
        );
        hold_back(decision, ClampKind::ConnectionBudget, grant, detail);
    }
    let mut requests = shed(name, database, &users, decisions, replicas);
    if !held_back.is_empty() {
        requests.push(Request::DatabaseConnections {
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
) -> Vec<Request> {
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
        requests.push(Request::ShedConnections {
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

/// Caps consumers' growth at their topics' partitions and asks for partition growth.
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
        if decision.frozen() {
            continue;
        }
        for (index, track) in policy.track.iter().enumerate() {
            let Some(topic) = &track.topic else {
                continue;
            };
            let known = current.get(topic).copied();
            let cap = known
                .unwrap_or(0)
                .max(policy.capacity.min)
                .max(decision.current);
            if decision.desired > cap {
                let detail = match known {
                    Some(partitions) => format!(
                        "track[{index}] consumes {topic}, which has {partitions} partitions; more consumers would sit idle"
                    ),
                    None => format!(
                        "track[{index}] consumes {topic}, whose partition count is unknown in this pass (its policy has no decision: its read failed or another evaluation holds it), so the consumers do not grow"
                    ),
                };
                hold_back(decision, ClampKind::Partitions, cap, detail);
            }
            let Some(partitions) = known else {
                continue;
            };
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

/// Grants the growth of resources sharing a pool within its room, in priority order.
fn share_limits(by_name: &BTreeMap<&str, &Policy>, decisions: &mut [Decision]) {
    let mut pools: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, decision) in decisions.iter().enumerate() {
        if let Some(share) = &decision.share {
            pools.entry(share.pool.clone()).or_default().push(index);
        }
    }
    let priority = |decision: &Decision| {
        by_name
            .get(decision.policy.as_str())
            .map_or(0, |p| p.priority)
    };
    for members in pools.into_values() {
        // A member that cannot grow now (busy: perhaps growing already) holds the rest back.
        let busy = members.iter().any(|&i| decisions[i].busy.is_some());
        let mut room = members
            .iter()
            .filter_map(|&i| decisions[i].share.as_ref().map(|share| share.room))
            .min()
            .unwrap_or(0);
        let mut growing: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| !decisions[i].frozen() && decisions[i].desired > decisions[i].current)
            .collect();
        growing.sort_by_key(|&i| {
            (
                Reverse(priority(&decisions[i])),
                decisions[i].policy.clone(),
            )
        });
        let names: Vec<String> = growing
            .iter()
            .map(|&i| decisions[i].policy.clone())
            .collect();
        for index in growing {
            let decision = &mut decisions[index];
            let Some(Share { per_unit, what, .. }) = decision.share.clone() else {
                continue;
            };
            let per_unit = u64::from(per_unit.max(1));
            let wanted = decision.desired - decision.current;
            let granted = if busy {
                0
            } else {
                u32::try_from(u64::from(wanted).min(room / per_unit)).unwrap_or(0)
            };
            room -= u64::from(granted) * per_unit;
            if granted < wanted {
                let why = if busy {
                    "another resource sharing it is busy, so its growth may be under way unseen"
                        .to_owned()
                } else {
                    format!(
                        "growing in this pass: {}, in priority order",
                        names.join(", ")
                    )
                };
                let detail = format!("{what} are shared; {why}");
                hold_back(
                    decision,
                    ClampKind::ResourceMax,
                    decision.current + granted,
                    detail,
                );
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
    decision.action = Action::between(decision.current, to);
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
    use crate::decide::{decide, decide_answering};
    use crate::observe::ResourceState;
    use crate::observe::{CurrentCapacity, Direction, LastAction, Share};
    use crate::testing::{capacity, database, now, policy, user};

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
    fn sheds(requests: &[Request]) -> Vec<(&str, u32)> {
        requests
            .iter()
            .filter_map(|request| match request {
                Request::ShedConnections { policy, to, .. } => Some((policy.as_str(), *to)),
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
    fn shedding_connections_is_a_scale_in_through_every_scale_in_guard() {
        let mut orders = user("orders", 0, 1);
        orders.guards.max_step_in = Some(1);
        orders.guards.cooldown_in = Duration::from_secs(600);
        let request = [Request::ShedConnections {
            policy: "orders".into(),
            database: "orders-db".into(),
            to: 1,
            connections: 300,
            budget: 200,
        }];
        let answer =
            |orders: &Policy, state: &ResourceState, observations: &crate::Observations| {
                decide_answering(orders, observations, &capacity(3), state, now(), &request)
            };
        let none = ResourceState::default();
        let stepped = answer(&orders, &none, &Default::default());
        assert_eq!(stepped.change(), Some((Direction::In, 2)), "max_step.in");
        assert_eq!(stepped.explanation.fired.as_deref(), Some("request"));
        let recent = ResourceState {
            actions: vec![LastAction {
                at: now() - chrono::TimeDelta::minutes(2),
                direction: Direction::Out,
                from: 2,
                to: 3,
            }],
            ..ResourceState::default()
        };
        assert_eq!(
            answer(&orders, &recent, &Default::default()).change(),
            None,
            "cooldown.in"
        );
        // With a metric a rule reads unavailable, scale-in is blocked, this one too.
        orders.scale_out.push(crate::testing::rule(
            "cpu",
            capstan_policy::model::Threshold::Above(70.0),
            1,
            1,
            capstan_policy::model::Step::Add(1),
        ));
        let unreadable = [(
            orders.metric("cpu").clone(),
            crate::MetricData::Unavailable("throttled".into()),
        )]
        .into_iter()
        .collect();
        let blocked = answer(&orders, &none, &unreadable);
        assert_eq!(blocked.change(), None);
        assert!(
            blocked
                .explanation
                .summary
                .contains("1 asked for on request (orders-db's users are set to hold 300 connections, above its budget of 200), but scale-in is blocked: cpu is unavailable (throttled)"),
            "{}",
            blocked.explanation.summary
        );
    }

    #[test]
    fn a_group_asked_to_shed_stays_within_its_own_min_size() {
        let mut web = user("web", 0, 1);
        web.target = Target::AutoscalingGroup { name: "web".into() };
        let request = [Request::ShedConnections {
            policy: "web".into(),
            database: "orders-db".into(),
            to: 1,
            connections: 300,
            budget: 200,
        }];
        let group = CurrentCapacity {
            resource_min: Some(3),
            ..capacity(4)
        };
        let decision = decide_answering(
            &web,
            &Default::default(),
            &group,
            &ResourceState::default(),
            now(),
            &request,
        );
        assert_eq!(decision.change(), Some((Direction::In, 3)));
        assert_eq!(
            decision.explanation.clamps.last().map(|c| c.kind),
            Some(ClampKind::ResourceMin)
        );
    }

    #[test]
    fn room_freed_by_a_scale_in_is_granted_once_the_removed_units_have_drained() {
        let mut orders = user("orders", 0, 1);
        orders.databases = database(400);
        let checkout = user("checkout", 10, 1);
        // orders went 6 -> 4 `ago` seconds before: its two removed tasks drain for 5 min 30 s.
        let shrunk = |ago: i64| {
            let state = ResourceState {
                actions: vec![LastAction {
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
    fn consumers_do_not_grow_while_their_topics_partitions_are_unknown_and_are_never_lowered() {
        use capstan_policy::model::{Track, TrackGoal};

        let mut topic = policy();
        topic.name = "order-events-topic".into();
        topic.target = Target::MskTopic {
            cluster_arn: "arn".into(),
            topic: "order-events".into(),
        };
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
        // The topic's read failed: the consumers stay at 3.
        let guarded = apply_guards(&[&consumers, &topic], vec![wants(&consumers, 3, 8)]);
        let decision = &guarded.decisions[0];
        assert_eq!(decision.desired, 3);
        let clamp = decision.explanation.clamps.last().expect("a clamp");
        assert_eq!(clamp.kind, ClampKind::Partitions);
        assert!(
            clamp.detail.contains("partition count is unknown"),
            "{}",
            clamp.detail
        );
        // 10 consumers on a topic of 6 partitions: held at 10, not lowered to 6.
        let topic_decision = wants(&topic, 6, 6);
        let guarded = apply_guards(
            &[&consumers, &topic],
            vec![wants(&consumers, 10, 12), topic_decision],
        );
        assert_eq!(guarded.decisions[0].desired, 10);
    }

    #[test]
    fn policies_sharing_a_budget_a_topic_or_a_clusters_room_are_coupled_and_no_others() {
        let named = |name: &str, target: Target| {
            let mut policy = policy();
            policy.name = name.into();
            policy.target = target;
            policy
        };
        let topic = |name: &str, cluster: &str| {
            named(
                name,
                Target::MskTopic {
                    cluster_arn: cluster.into(),
                    topic: name.into(),
                },
            )
        };
        let (orders, payments, audit) = (
            topic("orders", "arn:a"),
            topic("payments", "arn:a"),
            topic("audit", "arn:b"),
        );
        let mut consumer = policy();
        consumer.track.push(capstan_policy::model::Track {
            metric: "lag".into(),
            goal: capstan_policy::model::TrackGoal::PerReplica(1000.0),
            window: 1,
            partitions: None,
            topic: Some("audit".into()),
        });
        let user = |name: &str| {
            let mut user = policy();
            user.name = name.into();
            user.connections = Some(capstan_policy::model::Connections {
                database: "orders-db".into(),
                per_task: 10,
                read_only: true,
            });
            user
        };
        let replicas = named(
            "orders-db-replicas",
            Target::RdsReplicas {
                source: "orders-db".into(),
            },
        );
        let (web, history) = (user("web"), user("history"));
        for (one, other) in [
            (&orders, &payments),
            (&audit, &consumer),
            (&web, &history),
            (&web, &replicas),
        ] {
            assert!(coupled(one, other), "{} and {}", one.name, other.name);
            assert!(coupled(other, one), "{} and {}", other.name, one.name);
        }
        for (one, other) in [
            (&orders, &audit),
            (&orders, &consumer),
            (&web, &orders),
            (&replicas, &consumer),
        ] {
            assert!(!coupled(one, other), "{} and {}", one.name, other.name);
        }
    }

    #[test]
    fn topics_of_one_cluster_grow_together_within_the_room_they_share() {
        let topic = |name: &str, priority: i32| {
            let mut policy = policy();
            policy.name = name.into();
            policy.priority = priority;
            policy.target = Target::MskTopic {
                cluster_arn: "arn".into(),
                topic: name.into(),
            };
            policy.capacity.max = 100;
            policy
        };
        // 30 replicas free; each partition has 3 replicas; both want 8 partitions more.
        let grows = |policy: &Policy, current: u32, busy: Option<&str>| {
            let mut decision = wants(policy, current, current + 8);
            decision.share = Some(Share {
                pool: "arn".into(),
                per_unit: 3,
                room: 30,
                what: "the partition replicas arn's brokers may hold".into(),
            });
            decision.busy = busy.map(str::to_owned);
            decision
        };
        let (orders, payments) = (topic("orders", 0), topic("payments", 5));
        let guarded = apply_guards(
            &[&orders, &payments],
            vec![grows(&orders, 12, None), grows(&payments, 6, None)],
        );
        let desired: Vec<u32> = guarded.decisions.iter().map(|d| d.desired).collect();
        // payments first (priority 5): 8 partitions, 24 replicas; orders gets the other 2.
        assert_eq!(desired, [14, 14]);
        let clamp = guarded.decisions[0]
            .explanation
            .clamps
            .last()
            .expect("a clamp");
        assert_eq!(
            (clamp.kind, clamp.from, clamp.to),
            (ClampKind::ResourceMax, 20, 14)
        );
        assert!(
            clamp
                .detail
                .contains("growing in this pass: payments, orders"),
            "{}",
            clamp.detail
        );
        // While one of them is busy (perhaps growing already), the other does not grow.
        let guarded = apply_guards(
            &[&orders, &payments],
            vec![
                grows(&orders, 12, None),
                grows(&payments, 6, Some("the topic is UPDATING")),
            ],
        );
        assert_eq!(guarded.decisions[0].desired, 12);
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
