//! The policy set in packaged form: validated once, when a function is built, and only loaded
//! at a cold start. Reading YAML is most of the cost of loading a set (nine tenths of it at
//! 1,000 policies); the packaged form is the validated [`model`](crate::model) in a compact
//! binary form ([postcard](https://docs.rs/postcard)), which loads more than ten times faster and needs
//! no checks, since the set was valid when it was packaged.
//!
//! The form is private to one build: a function reads only what the same build of this crate
//! wrote, so it carries no version of its own.

use crate::model::Policy;
use crate::set::PolicySet;

impl PolicySet {
    /// The set in packaged form, for [`from_packaged`](Self::from_packaged).
    pub fn to_packaged(&self) -> Vec<u8> {
        postcard::to_stdvec(self.policies()).expect("a validated policy set serialises")
    }

    /// The set [`to_packaged`](Self::to_packaged) wrote, as it was then: not validated again.
    ///
    /// # Errors
    ///
    /// The bytes are not a set this build packaged.
    pub fn from_packaged(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes::<Vec<Policy>>(bytes).map(Self::validated)
    }
}

#[cfg(test)]
mod tests {
    use crate::{PolicySet, Source};

    /// The repository's policies, read from `policies/`.
    fn shipped() -> PolicySet {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        PolicySet::load(&[dir]).expect("the shipped policies are valid")
    }

    #[test]
    fn a_packaged_set_loads_as_it_was_validated() {
        let set = shipped();
        assert!(set.len() >= 9, "every shipped policy: {}", set.len());
        let loaded = PolicySet::from_packaged(&set.to_packaged()).expect("loads");
        // `Policy` holds a parsed cron expression, which has no equality: compare everything,
        // parsed values included, through `Debug`.
        assert_eq!(format!("{loaded:#?}"), format!("{set:#?}"));
    }

    #[test]
    fn every_value_survives_packaging() {
        // Values whose written and serialised forms differ, and defaults filled in.
        let text = "
version: 1
name: sale
target: { ecs_service: { cluster: shop, service: web } }
capacity: { min: 2, max: 40 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, stat: p99.5, period: 5m, delay: 90s,
         dimensions: { ClusterName: shop, ServiceName: web } }
  headroom: { expression: 'MAX([ABS(100 - cpu), -cpu / 2.5])', period: 5m }
scale_out:
  - when: { metric: cpu, above: 70.5, datapoints: 3 of 5 }
    add_percent: 50
track:
  - { metric: cpu, target: 55, for: 15m }
tolerance: 2.5%
schedule:
  - { name: friday, cron: '0 17 * * FRI', timezone: Europe/London, duration: 1h30m, min: 10 }
guards:
  cooldown: { out: 2m, in: 10m }
  max_step: { out: 4, in: 1 }
  missing_data: { fallback: 8, after: 2 }
  stabilization: { in: 10m }
  rate_limit: { in: { units: 4, percent: 50, per: 5m, select: least_permissive } }
  scale_in_pacing: { max_per_interval: 1, interval: 10m, drain: 7m }
";
        let source = Source {
            path: "sale.yaml".into(),
            text: text.into(),
        };
        let set = PolicySet::from_sources(vec![source]).unwrap_or_else(|report| panic!("{report}"));
        let packaged = set.to_packaged();
        let loaded = PolicySet::from_packaged(&packaged).expect("loads");
        assert_eq!(format!("{loaded:#?}"), format!("{set:#?}"));
        for written in ["3 of 5", "0 17 * * FRI", "Europe/London", "1h30m", "p99.5"] {
            let written = written.as_bytes();
            assert!(
                packaged
                    .windows(written.len())
                    .any(|bytes| bytes == written),
                "{written:?} as written"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_a_packaged_set_are_refused() {
        assert!(PolicySet::from_packaged(b"").is_err());
        let packaged = shipped().to_packaged();
        assert!(PolicySet::from_packaged(&packaged[..packaged.len() / 2]).is_err());
    }
}
