//! Partition coupling: consumers capped at their topic's partitions.
//!
//! A `track` rule with `topic: <msk_topic policy>` consumes that topic: the consumers never
//! grow above the topic's current partition count (the topic policy's decision's `current`),
//! or their `capacity.min` if that is higher, with a [`ClampKind::Partitions`] clamp. Without a
//! decision for the topic's policy in the pass, the partition count is unknown and the
//! consumers do not grow at all. Consumers already above the partitions are held, not lowered.
//! When the rule wanted more consumers than there are partitions and its metric (lag) rose
//! over its window (the newest datapoint above the oldest), a
//! [`GuardRequest::PartitionGrowth`] asks the topic's policy for as many partitions as
//! consumers wanted, within the topic's `capacity.max`; never for fewer than it has.

use std::collections::BTreeMap;

use capstan_policy::model::Policy;

use super::{GuardRequest, hold_back};
use crate::decision::{ClampKind, Decision, TrackOutcome};

/// Caps consumers' growth at their topics' partitions and asks for partition growth.
pub(crate) fn apply(
    by_name: &BTreeMap<&str, &Policy>,
    decisions: &mut [Decision],
    requests: &mut Vec<GuardRequest>,
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
                    requests.push(GuardRequest::PartitionGrowth {
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

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Policy, Target, Track, TrackGoal};

    use crate::decide::decide;
    use crate::decision::ClampKind;
    use crate::guards::{GuardRequest, apply_guards};
    use crate::observe::ResourceState;
    use crate::testing::{capacity, now, policy, wants};

    /// The topic `order-events-topic` and `consumers` (up to 20) tracking 1,000 of lag per
    /// consumer on it.
    fn topic_and_consumers() -> (Policy, Policy) {
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
        (topic, consumers)
    }

    #[test]
    fn consumers_are_capped_at_partitions_and_growing_lag_asks_for_more() {
        use crate::observe::MetricData;
        use crate::testing::series;

        let (mut topic, consumers) = topic_and_consumers();
        topic.capacity = capstan_policy::model::Capacity { min: 4, max: 8 };
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
            [GuardRequest::PartitionGrowth {
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
    fn consumers_do_not_grow_while_their_topics_partitions_are_unknown_and_are_never_lowered() {
        let (topic, consumers) = topic_and_consumers();
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
}
