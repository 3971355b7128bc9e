//! Helpers for the checks' tests: the product owner's example policy and short ways to
//! validate a variant of it.

use crate::model::Policy;
use crate::report::Diagnostic;
use crate::{PolicySet, Source};

/// The example policy from the product owner; tests change one line of it at a time.
pub(crate) const EXAMPLE: &str = r#"# yaml-language-server: $schema=../docs/policy.schema.json
version: 1
name: order-processing
target:
  ecs_service: { cluster: shop, service: order-processing }
capacity: { min: 2, max: 10 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, dimensions: { ClusterName: shop, ServiceName: order-processing }, stat: Average, period: 1m }
  conns_free: { namespace: Shop/Orders, name: AvailableConnectionsPercent, stat: Minimum, period: 1m }
scale_out:
  - { when: { metric: cpu, above: 70, for: 5m }, add: 2 }
  - { when: { metric: conns_free, below: 20, datapoints: 3 of 5 }, add: 1 }
scale_in:
  - { when: { metric: cpu, below: 30, for: 15m }, remove: 1 }
schedule:
  - { name: flash-sale, cron: "0 17 * * FRI", timezone: Europe/London, duration: 3h, min: 8 }
guards:
  cooldown: { out: 2m, in: 10m }
  max_step: { out: 4, in: 1 }
  missing_data: hold
paused: false
"#;

/// Sources named `a.yaml`, `b.yaml`, ... in order.
pub(crate) fn sources(texts: &[&str]) -> Vec<Source> {
    let names = ('a'..='z').map(|c| format!("{c}.yaml"));
    names
        .zip(texts)
        .map(|(path, text)| Source {
            path,
            text: (*text).to_owned(),
        })
        .collect()
}

/// The problems of a set of files.
pub(crate) fn diagnostics_of(texts: &[&str]) -> Vec<Diagnostic> {
    match PolicySet::from_sources(sources(texts)) {
        Ok(_) => panic!("the policies should be rejected"),
        Err(report) => report.diagnostics().to_vec(),
    }
}

/// The problems of one file, as `line:column: message`.
pub(crate) fn errors(text: &str) -> Vec<String> {
    diagnostics_of(&[text])
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

/// The `help:` lines of one file's problems.
pub(crate) fn helps(text: &str) -> Vec<Option<String>> {
    diagnostics_of(&[text])
        .into_iter()
        .map(|d| d.help)
        .collect()
}

/// The one policy of a valid file.
pub(crate) fn valid(text: &str) -> Policy {
    match PolicySet::from_sources(sources(&[text])) {
        Ok(set) => set.policies()[0].clone(),
        Err(report) => panic!("the policy should be valid:\n{report}"),
    }
}
