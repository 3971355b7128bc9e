//! Splitting a policy set into shards, for a tick fanned out over several invocations.
//!
//! A tick over more policies than one invocation should evaluate is split by [`shards`], each
//! shard evaluated in a pass of its own. The cross-resource guards judge only the decisions of
//! one pass, so the policies a guard reads together must never be split between shards.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroUsize;

use capstan_engine::{Coupling, couplings};
use capstan_policy::model::Policy;

#[cfg(doc)]
use crate::Trigger;
#[cfg(doc)]
use capstan_engine::coupled;

/// One pass's share of a policy set, made by [`shards`].
#[derive(Debug, Clone)]
pub struct Shard<'a> {
    /// The policies, in the order of the input.
    pub policies: Vec<&'a Policy>,
    /// Whether the shard holds more than the `max` asked for: one group of policies that a
    /// guard reads together, too large to split, alone in its shard. Worth a warning: the
    /// invocation evaluating it may run long.
    pub oversized: bool,
}

/// `policies` split into shards of at most `max` policies each, for evaluation in separate
/// passes, keeping together the policies that a guard reads in one pass: a *group*.
///
/// **Groups.** Policies [`coupled`] by a cross-resource guard are in one group, directly or
/// through others, as [`Trigger::select`] wakes them. A group larger than `max` is never split:
/// it is a shard of its own, marked [`Shard::oversized`].
///
/// **Packing.** Groups are packed first-fit decreasing, for few shards: the largest group
/// first (equal sizes in the order of their first policy), each into the first shard made
/// that still has room for all of it, or else into a new shard. Within a shard, policies keep
/// the order of the input; shards are ordered by the position of their first policy. So the
/// result depends on the input alone, and policies coupled to none fill the shards in input
/// order, `max` at a time: `n` of them make `ceil(n / max)` shards. No policies, no shards.
///
/// Groups are found by their [`couplings`], not by calling `coupled` on every pair.
pub fn shards(policies: &[Policy], max: NonZeroUsize) -> Vec<Shard<'_>> {
    let max = max.get();
    let mut groups = groups(policies);
    // Stable: equal sizes stay in the order of their first policy.
    groups.sort_by_key(|group| std::cmp::Reverse(group.len()));
    let mut packed: Vec<(Vec<usize>, bool)> = Vec::new();
    // The shards with room for at least one more policy, in the order they were made.
    let mut open: Vec<usize> = Vec::new();
    for group in groups {
        if group.len() > max {
            packed.push((group, true));
            continue;
        }
        let fits = open
            .iter()
            .position(|&shard| packed[shard].0.len() + group.len() <= max);
        match fits {
            Some(at) => {
                let shard = open[at];
                packed[shard].0.extend(group);
                if packed[shard].0.len() == max {
                    open.remove(at);
                }
            }
            None => {
                if group.len() < max {
                    open.push(packed.len());
                }
                packed.push((group, false));
            }
        }
    }
    for (members, _) in &mut packed {
        members.sort_unstable();
    }
    packed.sort_by_key(|(members, _)| members[0]);
    packed
        .into_iter()
        .map(|(members, oversized)| Shard {
            policies: members.into_iter().map(|i| &policies[i]).collect(),
            oversized,
        })
        .collect()
}

/// The groups of [`shards`], as positions in `policies`: each group in ascending order, the
/// groups in the order of their first policy. Policies sharing a [`Coupling`] are joined.
fn groups(policies: &[Policy]) -> Vec<Vec<usize>> {
    let mut sets = Sets::new(policies.len());
    let mut first_with: HashMap<Coupling<'_>, usize> = HashMap::new();
    for (index, policy) in policies.iter().enumerate() {
        for coupling in couplings(policy) {
            match first_with.entry(coupling) {
                Entry::Occupied(first) => sets.join(*first.get(), index),
                Entry::Vacant(first) => {
                    first.insert(index);
                }
            }
        }
    }
    let mut group_of: Vec<Option<usize>> = vec![None; policies.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for index in 0..policies.len() {
        let root = sets.root(index);
        let group = *group_of[root].get_or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(index);
    }
    groups
}

/// Disjoint sets of positions (union-find, with path halving and union by size).
struct Sets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl Sets {
    fn new(len: usize) -> Self {
        Self {
            parent: (0..len).collect(),
            size: vec![1; len],
        }
    }

    fn root(&mut self, mut index: usize) -> usize {
        while self.parent[index] != index {
            self.parent[index] = self.parent[self.parent[index]];
            index = self.parent[index];
        }
        index
    }

    fn join(&mut self, one: usize, other: usize) {
        let (one, other) = (self.root(one), self.root(other));
        if one == other {
            return;
        }
        let (big, small) = if self.size[one] >= self.size[other] {
            (one, other)
        } else {
            (other, one)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::time::Instant;

    use capstan_engine::coupled;
    use capstan_policy::model::{Connections, Policy, Target, Track, TrackGoal};
    use capstan_policy::{PolicySet, Source};

    use super::{Shard, shards};

    const CLUSTER: &str = "arn:aws:kafka:eu-west-2:123456789012:cluster/orders/3f1c2a9e";
    const OTHER_CLUSTER: &str = "arn:aws:kafka:eu-west-2:123456789012:cluster/audit/7b4d4e21";

    fn max(max: usize) -> NonZeroUsize {
        NonZeroUsize::new(max).expect("a positive max")
    }

    /// The policy set of `texts`, validated.
    fn set(texts: &[String]) -> PolicySet {
        let sources = texts
            .iter()
            .enumerate()
            .map(|(index, text)| Source {
                path: format!("{index}.yaml"),
                text: text.clone(),
            })
            .collect();
        PolicySet::from_sources(sources).unwrap_or_else(|report| panic!("{report:?}"))
    }

    /// An ECS service coupled to nothing.
    fn service(name: &str) -> String {
        format!(
            "version: 1\nname: {name}\ntarget: {{ ecs_service: {{ cluster: shop, service: {name} }} }}\ncapacity: {{ min: 1, max: 10 }}\n"
        )
    }

    /// An ECS service whose tasks open 10 connections each to `database`.
    fn user(name: &str, database: &str) -> String {
        format!(
            "{}connections: {{ database: {database}, per_task: 10 }}\n",
            service(name)
        )
    }

    /// The read replicas of `source`, declaring it as a database of 400 connections.
    fn replicas(name: &str, source: &str) -> String {
        format!(
            "version: 1\nname: {name}\ntarget: {{ rds_replicas: {{ source: {source} }} }}\ndatabases:\n  {source}: {{ max_connections: 400, reserve: 20 }}\ncapacity: {{ min: 0, max: 3 }}\n"
        )
    }

    /// The topic `name` on the MSK cluster `cluster`.
    fn topic(name: &str, cluster: &str) -> String {
        format!(
            "version: 1\nname: {name}\ntarget:\n  msk_topic: {{ cluster_arn: \"{cluster}\", topic: {name} }}\ncapacity: {{ min: 12, max: 96 }}\n"
        )
    }

    /// An ECS service consuming the topic of the policy `topic`, one task per 1,000 messages
    /// of lag.
    fn consumer(name: &str, topic: &str) -> String {
        format!(
            "{}metrics:\n  lag: {{ namespace: AWS/Kafka, name: SumOffsetLag, dimensions: {{ Topic: {topic} }}, stat: Maximum, period: 1m }}\ntrack:\n  - {{ metric: lag, per_replica: 1000, topic: {topic} }}\n",
            service(name)
        )
    }

    /// The names in each shard, `+` after the last one of an oversized shard.
    fn names<'a>(shards: &[Shard<'a>]) -> Vec<Vec<&'a str>> {
        shards
            .iter()
            .map(|shard| {
                let mut names: Vec<&str> = shard.policies.iter().map(|p| p.name.as_str()).collect();
                if shard.oversized {
                    names.push("+");
                }
                names
            })
            .collect()
    }

    #[test]
    fn policies_coupled_to_none_fill_shards_in_input_order() {
        let all: Vec<String> = (0..7).map(|i| service(&format!("s{i}"))).collect();
        let set = set(&all);
        assert_eq!(
            names(&shards(set.policies(), max(3))),
            [vec!["s0", "s1", "s2"], vec!["s3", "s4", "s5"], vec!["s6"]]
        );
        for max in 1..=8 {
            let made = shards(set.policies(), super::tests::max(max));
            assert_eq!(made.len(), 7usize.div_ceil(max), "max {max}");
            assert!(made.iter().all(|shard| !shard.oversized));
        }
        assert!(shards(&[], max(3)).is_empty());
    }

    #[test]
    fn a_database_its_users_and_its_replica_policy_share_a_shard() {
        let set = set(&[
            service("web"),
            user("orders", "orders-db"),
            service("search"),
            replicas("orders-db-replicas", "orders-db"),
            service("images"),
            user("history", "orders-db"),
            user("billing", "billing-db"),
            replicas("billing-db-replicas", "billing-db"),
        ]);
        // Largest first: orders-db's three fill a shard, billing-db's two start the next, which
        // web joins; search and images make a third.
        assert_eq!(
            names(&shards(set.policies(), max(3))),
            [
                vec!["web", "billing", "billing-db-replicas"],
                vec!["orders", "orders-db-replicas", "history"],
                vec!["search", "images"],
            ]
        );
    }

    #[test]
    fn a_topic_its_consumers_and_the_topics_of_its_cluster_share_a_shard() {
        let set = set(&[
            consumer("fulfilment", "order-events"),
            service("web"),
            topic("order-events", CLUSTER),
            service("search"),
            consumer("analytics", "order-events"),
            topic("audit-events", OTHER_CLUSTER),
            topic("payment-events", CLUSTER),
        ]);
        assert_eq!(
            names(&shards(set.policies(), max(4))),
            [
                vec!["fulfilment", "order-events", "analytics", "payment-events"],
                vec!["web", "search", "audit-events"],
            ]
        );
    }

    #[test]
    fn the_example_policies_keep_their_couplings() {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        let set = PolicySet::load(&[directory]).unwrap_or_else(|report| panic!("{report:?}"));
        let made = shards(set.policies(), max(2));
        let shard_of = |name: &str| {
            made.iter()
                .position(|shard| shard.policies.iter().any(|p| p.name == name))
                .unwrap_or_else(|| panic!("{name} in no shard"))
        };
        assert_eq!(
            shard_of("order-history-readers"),
            shard_of("orders-db-replicas")
        );
        assert_eq!(shard_of("order-fulfilment"), shard_of("order-events-topic"));
        check(set.policies(), 2, &made);
    }

    #[test]
    fn a_group_larger_than_max_is_one_oversized_shard() {
        let set = set(&[
            service("web"),
            user("orders", "orders-db"),
            user("history", "orders-db"),
            replicas("orders-db-replicas", "orders-db"),
            service("search"),
            user("billing", "orders-db"),
        ]);
        let made = shards(set.policies(), max(2));
        assert_eq!(
            names(&made),
            [
                vec!["web", "search"],
                vec!["orders", "history", "orders-db-replicas", "billing", "+"],
            ]
        );
        let oversized: Vec<usize> = made
            .iter()
            .filter(|shard| shard.oversized)
            .map(|shard| shard.policies.len())
            .collect();
        assert_eq!(oversized, [4]);
    }

    /// A small, seeded generator (SplitMix64): the same cases on every run.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            usize::try_from((z ^ (z >> 31)) % bound as u64).expect("below a usize")
        }
    }

    /// `count` policies coupled at random, from a validated one: users of `databases`
    /// databases, replica policies (some of a source without users, or two of one source),
    /// topics on `clusters` clusters, consumers of one or two policies (some named by no
    /// policy of the set, or by one that is no topic), and policies coupled to none. Unvalidated
    /// on purpose, so that the grouping is checked beyond what validation lets through.
    fn generated(
        random: &mut Random,
        count: usize,
        databases: usize,
        clusters: usize,
    ) -> Vec<Policy> {
        let base = set(&[service("base")]).policies()[0].clone();
        (0..count)
            .map(|index| {
                let mut policy = base.clone();
                policy.name = format!("p{index}");
                if random.below(3) == 0 {
                    policy.connections = Some(Connections {
                        database: format!("db{}", random.below(databases)),
                        per_task: 1,
                        read_only: random.below(2) == 0,
                    });
                }
                policy.target = match random.below(6) {
                    0 => Target::RdsReplicas {
                        source: format!("db{}", random.below(databases + 1)),
                    },
                    1 => Target::MskTopic {
                        cluster_arn: format!("cluster{}", random.below(clusters)),
                        topic: policy.name.clone(),
                    },
                    _ => policy.target,
                };
                for _ in 0..random.below(3).saturating_sub(1) * (1 + random.below(2)) {
                    policy.track.push(Track {
                        metric: "lag".into(),
                        goal: TrackGoal::PerReplica(1000.0),
                        window: 1,
                        partitions: None,
                        topic: Some(format!("p{}", random.below(count + 3))),
                    });
                }
                policy
            })
            .collect()
    }

    /// Checks `made` for `policies` and `max`: against the groups recomputed pairwise with
    /// `coupled`, each grown to its transitive closure.
    fn check(policies: &[Policy], max: usize, made: &[Shard<'_>]) {
        let together = coupled;
        let mut group = vec![usize::MAX; policies.len()];
        for start in 0..policies.len() {
            if group[start] != usize::MAX {
                continue;
            }
            group[start] = start;
            let mut reached = vec![start];
            while let Some(index) = reached.pop() {
                for other in 0..policies.len() {
                    if group[other] == usize::MAX && together(&policies[index], &policies[other]) {
                        group[other] = start;
                        reached.push(other);
                    }
                }
            }
        }
        let position = |policy: &Policy| {
            policies
                .iter()
                .position(|p| std::ptr::eq(p, policy))
                .expect("a policy of the input")
        };
        let mut shard_of = vec![usize::MAX; policies.len()];
        for (index, shard) in made.iter().enumerate() {
            let positions: Vec<usize> = shard.policies.iter().map(|p| position(p)).collect();
            assert!(!positions.is_empty(), "shard {index} is empty");
            assert!(positions.is_sorted(), "shard {index} is out of input order");
            for &at in &positions {
                assert_eq!(shard_of[at], usize::MAX, "p{at} is in two shards");
                shard_of[at] = index;
            }
            let groups: std::collections::BTreeSet<usize> =
                positions.iter().map(|&at| group[at]).collect();
            assert_eq!(
                shard.oversized,
                positions.len() > max,
                "shard {index} of {} policies, max {max}",
                positions.len()
            );
            if shard.oversized {
                assert_eq!(groups.len(), 1, "an oversized shard holds one group");
            }
        }
        assert!(
            shard_of.iter().all(|&shard| shard != usize::MAX),
            "a policy in no shard"
        );
        let mut found = vec![usize::MAX; policies.len()];
        for (index, members) in super::groups(policies).iter().enumerate() {
            for &at in members {
                found[at] = index;
            }
        }
        for one in 0..policies.len() {
            for other in 0..policies.len() {
                assert_eq!(
                    group[one] == group[other],
                    found[one] == found[other],
                    "p{one} and p{other}: the groups differ from coupled's closure"
                );
                if group[one] == group[other] {
                    assert_eq!(shard_of[one], shard_of[other], "p{one} and p{other} split");
                }
            }
        }
        let firsts: Vec<usize> = made
            .iter()
            .map(|shard| position(shard.policies[0]))
            .collect();
        assert!(firsts.is_sorted(), "shards out of order: {firsts:?}");
        // Few shards: no two of those within max would fit in one.
        let sizes: Vec<usize> = made
            .iter()
            .filter(|shard| !shard.oversized)
            .map(|shard| shard.policies.len())
            .collect();
        for (index, one) in sizes.iter().enumerate() {
            for other in &sizes[index + 1..] {
                assert!(
                    one + other > max,
                    "shards of {one} and {other} fit in {max}"
                );
            }
        }
    }

    #[test]
    fn generated_sets_are_sharded_by_coupled_closure_each_policy_once_deterministically() {
        let mut random = Random(7);
        for case in 0..300 {
            let count = random.below(40);
            let (databases, clusters) = (1 + random.below(4), 1 + random.below(3));
            let policies = generated(&mut random, count, databases, clusters);
            let max = 1 + random.below(8);
            let made = shards(&policies, super::tests::max(max));
            check(&policies, max, &made);
            let again = shards(&policies, super::tests::max(max));
            assert_eq!(
                names(&made),
                names(&again),
                "case {case}: not deterministic"
            );
        }
    }

    /// `count` policies shaped like a large deployment, in runs of ten: four services coupled
    /// to none, two users of a database and one replica policy (400 databases), a topic (on
    /// 40 clusters) and its consumer, and one more service.
    fn fleet(count: usize) -> Vec<Policy> {
        let base = set(&[service("base")]).policies()[0].clone();
        (0..count)
            .map(|index| {
                let mut policy = base.clone();
                policy.name = format!("p{index}");
                let run = index / 10;
                let database = format!("db{}", run % 400);
                match index % 10 {
                    4 | 5 => {
                        policy.connections = Some(Connections {
                            database,
                            per_task: 1,
                            read_only: false,
                        });
                    }
                    6 => policy.target = Target::RdsReplicas { source: database },
                    7 => {
                        policy.target = Target::MskTopic {
                            cluster_arn: format!("cluster{}", run % 40),
                            topic: policy.name.clone(),
                        };
                    }
                    8 => policy.track.push(Track {
                        metric: "lag".into(),
                        goal: TrackGoal::PerReplica(1000.0),
                        window: 1,
                        partitions: None,
                        topic: Some(format!("p{}", index - 1)),
                    }),
                    _ => {}
                }
                policy
            })
            .collect()
    }

    /// Prints the time taken, for a run in release; asserts none.
    #[test]
    fn five_thousand_policies_are_sharded_in_linear_time() {
        let policies = fleet(5_000);
        let started = Instant::now();
        let made = shards(&policies, max(100));
        let took = started.elapsed();
        let oversized = made.iter().filter(|shard| shard.oversized).count();
        println!(
            "sharding 5,000 policies into {} shards of at most 100 ({oversized} oversized) took {took:?}",
            made.len()
        );
        check(&policies[..500], 100, &shards(&policies[..500], max(100)));
    }
}
