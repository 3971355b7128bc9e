//! Shared limits: resources drawing on one room grow within it together.
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

use capstan_policy::model::Policy;

use super::hold_back;
use crate::decision::{ClampKind, Decision};
use crate::observe::Share;

/// Grants the growth of resources sharing a pool within its room, in priority order.
pub(crate) fn apply(by_name: &BTreeMap<&str, &Policy>, decisions: &mut [Decision]) {
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

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Policy, Target};

    use crate::decision::ClampKind;
    use crate::guards::apply_guards;
    use crate::observe::Share;
    use crate::testing::{policy, wants};

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
}
