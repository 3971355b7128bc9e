//! Across the set: a `track` rule's `topic` names a policy of the set whose target is an
//! `msk_topic`.
//!
//! Why: the consumers' cap and the partition-growth requests come from that policy; a name
//! that matches none (or a policy on something else) would leave the consumers uncapped.
//!
//! Example: `{ metric: lag, per_replica: 1000, topic: order-event-topic }` with only
//! `order-events-topic` in the set is rejected at the name, with "did you mean
//! `order-events-topic`?".

use std::collections::BTreeMap;

use crate::model::Target;
use crate::report::Diagnostic;
use crate::suggest;
use crate::validate::Parsed;

/// A problem for each `topic` that names no `msk_topic` policy.
pub(crate) fn check(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let kinds: BTreeMap<&str, &Target> = parsed
        .iter()
        .map(|p| (p.file.name.value.as_str(), &p.file.target.value))
        .collect();
    let topics = || {
        kinds
            .iter()
            .filter(|(_, target)| matches!(target, Target::MskTopic { .. }))
            .map(|(name, _)| *name)
    };
    let mut diagnostics = Vec::new();
    for file in parsed {
        for rule in &file.file.track {
            let Some(topic) = &rule.value.topic else {
                continue;
            };
            let problem = match kinds.get(topic.value.as_str()) {
                Some(Target::MskTopic { .. }) => continue,
                Some(target) => Diagnostic::new(
                    file.source,
                    topic.referenced,
                    format!(
                        "policy `{}` scales {}, not an msk_topic",
                        topic.value,
                        target.kind()
                    ),
                )
                .with_help("`topic` names the msk_topic policy of the topic consumed"),
                None => {
                    let help = match suggest::closest(&topic.value, topics()) {
                        Some(closest) => format!("did you mean `{closest}`?"),
                        None => "add an msk_topic policy for the topic, or use `partitions: <n>`"
                            .to_owned(),
                    };
                    Diagnostic::new(
                        file.source,
                        topic.referenced,
                        format!("no msk_topic policy named `{}`", topic.value),
                    )
                    .with_help(help)
                }
            };
            diagnostics.push(problem);
        }
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use crate::PolicySet;
    use crate::checks::testing::{EXAMPLE, diagnostics_of, sources};

    const TOPIC: &str = "version: 1\nname: order-events-topic\ntarget: { msk_topic: { cluster_arn: arn, topic: order-events } }\ncapacity: { min: 12, max: 96 }\n";

    fn consumer(topic: &str) -> String {
        EXAMPLE.replace(
            "schedule:\n",
            &format!("track:\n  - {{ metric: conns_free, per_replica: 1000, topic: {topic} }}\nschedule:\n"),
        )
    }

    #[test]
    fn a_topic_names_an_msk_topic_policy() {
        let set = PolicySet::from_sources(sources(&[&consumer("order-events-topic"), TOPIC]))
            .map_err(|r| r.to_string())
            .expect("valid");
        let track = &set.policies()[0].track[0];
        assert_eq!(track.topic.as_deref(), Some("order-events-topic"));
    }

    #[test]
    fn an_unknown_or_wrong_kind_of_topic_is_rejected() {
        let diagnostics = diagnostics_of(&[&consumer("order-event-topic"), TOPIC]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.line, d.message.as_str(), d.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [(
                16,
                "no msk_topic policy named `order-event-topic`",
                Some("did you mean `order-events-topic`?")
            )]
        );
        let diagnostics = diagnostics_of(&[&consumer("order-processing")]);
        assert_eq!(
            diagnostics[0].message,
            "policy `order-processing` scales ecs_service, not an msk_topic"
        );
    }
}
