//! What capstan's Lambda functions share, so each function is glue only: the policy set packaged
//! at build time (one copy, whichever function embeds it) and the JSON logging they all use.

use std::path::Path;

use capstan_policy::{PolicySet, Source};

mod packaged {
    include!(concat!(env!("OUT_DIR"), "/policies.rs"));
}

/// The policy files packaged at build time, as (path, contents): every `*.yaml`/`*.yml` file of
/// the directory named by `CAPSTAN_POLICIES` when the crate was built (by default, the
/// repository's `policies/`).
fn packaged_sources() -> Vec<Source> {
    packaged::EMBEDDED
        .iter()
        .map(|(path, text)| Source {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// The policy set read from `dir` when given (`CAPSTAN_POLICY_DIR`), otherwise the packaged one;
/// an invalid set is its whole report, rendered.
pub fn load_policies(dir: Option<&str>) -> Result<PolicySet, String> {
    match dir {
        Some(dir) => PolicySet::load(&[Path::new(dir)]),
        None => PolicySet::from_sources(packaged_sources()),
    }
    .map_err(|report| report.to_string())
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
    fn the_repositorys_policies_are_packaged_and_valid() {
        let set = load_policies(None).expect("the packaged set is valid");
        assert!(set.get("web-asg-cpu").is_some());
        let sources = packaged_sources();
        assert!(
            sources
                .iter()
                .all(|source| source.path.starts_with("policies/") && !source.text.is_empty())
        );
    }
}
