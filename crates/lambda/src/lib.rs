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

/// Logs as Lambda's logging configuration asks, reading the variables Lambda sets from it as
/// `lambda_runtime`'s own default subscriber does: at the level of `AWS_LAMBDA_LOG_LEVEL` (the
/// configuration's `ApplicationLogLevel`), else of the filter `RUST_LOG` (for runs outside
/// Lambda), else `info`; one JSON object per line (fields at the top level, for CloudWatch Logs
/// Insights), unless `AWS_LAMBDA_LOG_FORMAT` is `Text`.
pub fn init_logging() {
    let variable = |name| std::env::var(name).ok();
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(
            variable("AWS_LAMBDA_LOG_LEVEL").as_deref(),
            variable("RUST_LOG").as_deref(),
        )));
    if in_text(variable("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        logs.init();
    } else {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}

/// The log filter for Lambda's log level `lambda` (`TRACE` to `FATAL`; tracing has no `FATAL`,
/// whose records are errors), else the filter `rust_log`, else `info`.
fn log_filter(lambda: Option<&str>, rust_log: Option<&str>) -> String {
    match lambda.map(str::to_ascii_lowercase).as_deref() {
        Some("fatal") => "error".to_owned(),
        Some(level) => level.to_owned(),
        None => rust_log.unwrap_or("info").to_owned(),
    }
}

/// Whether Lambda's log format `format` asks for plain text rather than JSON.
fn in_text(format: Option<&str>) -> bool {
    format.is_some_and(|format| format.eq_ignore_ascii_case("text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_log_level_comes_first_then_rust_log_then_info() {
        assert_eq!(log_filter(Some("DEBUG"), Some("warn")), "debug");
        assert_eq!(log_filter(Some("FATAL"), None), "error");
        assert_eq!(
            log_filter(None, Some("capstan_engine=debug")),
            "capstan_engine=debug"
        );
        assert_eq!(log_filter(None, None), "info");
    }

    #[test]
    fn logs_are_json_unless_lambda_asks_for_text() {
        assert!(!in_text(None));
        assert!(!in_text(Some("JSON")));
        assert!(in_text(Some("Text")));
    }

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
