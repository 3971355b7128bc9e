//! What capstan's Lambda functions share, so each function is glue only: the policy set packaged
//! at build time (one copy, whichever function embeds it) and the JSON logging they all use.

use std::path::Path;

use capstan_policy::PolicySet;

/// The policy set packaged at build time ([`PolicySet::to_packaged`]): every `*.yaml`/`*.yml`
/// file of the directory named by `CAPSTAN_POLICIES` when the crate was built (by default, the
/// repository's `policies/`), validated then.
const PACKAGED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policies.bin"));

/// The policy set read and validated from `dir` when given (`CAPSTAN_POLICY_DIR`), otherwise
/// the packaged one, only loaded; an invalid set is its whole report, rendered.
pub fn load_policies(dir: Option<&str>) -> Result<PolicySet, String> {
    match dir {
        Some(dir) => PolicySet::load(&[Path::new(dir)]).map_err(|report| report.to_string()),
        None => PolicySet::from_packaged(PACKAGED)
            .map_err(|error| format!("the packaged policy set does not load: {error}")),
    }
}

/// Logs as one JSON object per line, at the level `RUST_LOG` asks for (by default, `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_set_is_the_repositorys_policies_as_validated() {
        let packaged = load_policies(None).expect("the packaged set loads");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        let read = load_policies(Some(dir)).expect("the repository's policies are valid");
        assert!(packaged.get("web-asg-cpu").is_some());
        assert!(
            packaged
                .policies()
                .iter()
                .all(|policy| policy.file.starts_with("policies/"))
        );
        assert_eq!(packaged.len(), read.len());
        // Read from `dir`, each file is named by its path there: compare the rest.
        let unnamed = |set: &PolicySet| {
            set.policies()
                .iter()
                .map(|policy| {
                    let file = policy
                        .file
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    format!(
                        "{:?}",
                        capstan_policy::model::Policy {
                            file,
                            ..policy.clone()
                        }
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(unnamed(&packaged), unnamed(&read));
    }
}
