//! An `msk_topic` or `msk_cluster` policy has no `scale_in` rules.
//!
//! Why: Kafka cannot remove a topic's partitions, and capstan never removes brokers (their
//! partitions would have to move off first), so such a rule could never act; the adapters
//! refuse a lower count as well.
//!
//! Example: `scale_in: [{ when: { metric: lag, below: 100, for: 30m }, remove: 6 }]` on an
//! `msk_topic` is rejected at the rule with "an msk_topic's partitions never decrease".

use crate::model::Target;
use crate::raw::{Rule, Spanned};
use crate::validate::Findings;

/// Records a problem at each `scale_in` rule of a target that only grows.
pub(crate) fn check(target: &Target, scale_in: &[Spanned<Rule>], out: &mut Findings<'_>) {
    let what = match target {
        Target::MskTopic { .. } => {
            "an msk_topic's partitions never decrease: Kafka cannot remove them"
        }
        Target::MskCluster { .. } => {
            "an msk_cluster's brokers never decrease: capstan does not remove brokers"
        }
        _ => return,
    };
    for rule in scale_in {
        out.error_with_help(
            rule.referenced,
            what,
            "remove the scale_in rules; capacity.max bounds the growth",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{errors, valid};

    const TOPIC: &str = "version: 1
name: order-events-topic
target: { msk_topic: { cluster_arn: arn, topic: order-events } }
capacity: { min: 12, max: 96 }
metrics:
  lag: { namespace: AWS/Kafka, name: SumOffsetLag, stat: Maximum, period: 1m }
scale_out:
  - { when: { metric: lag, above: 50000, for: 10m }, add_percent: 50 }
";

    #[test]
    fn topics_and_clusters_only_grow() {
        valid(TOPIC);
        let shrinking = format!(
            "{TOPIC}scale_in:\n  - {{ when: {{ metric: lag, below: 100, for: 30m }}, remove: 6 }}\n"
        );
        assert_eq!(
            errors(&shrinking),
            ["10:5: an msk_topic's partitions never decrease: Kafka cannot remove them"]
        );
        let cluster = shrinking.replace(
            "msk_topic: { cluster_arn: arn, topic: order-events }",
            "msk_cluster: { cluster_arn: arn }",
        );
        assert_eq!(
            errors(&cluster),
            ["10:5: an msk_cluster's brokers never decrease: capstan does not remove brokers"]
        );
    }
}
