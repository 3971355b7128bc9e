//! The real evaluator binary, run as Lambda runs it: against a Lambda Runtime API of the test's
//! own ([`Function`]), one execution environment per [`LambdaEvaluator`] or
//! [`evaluator_function`], each invocation with a request id of its own and a deadline 60
//! seconds ahead, as the template's timeout gives it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::runtime_api::{Answer, Function};

/// An invocation's deadline, from when it is sent: the function's timeout in template.yaml.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How long an invocation may take to answer: past its deadline, which a hung function does
/// not heed, and below nextest's 10-minute limit.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// How the function is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Cargo's `dev` profile, as the tests run it.
    Debug,
    /// Cargo's `release` profile, as it is deployed.
    Release,
}

/// The evaluator in an execution environment of its own, invoked one event at a time. Stopped
/// on drop.
pub struct LambdaEvaluator {
    function: Mutex<Function>,
    invocations: AtomicU64,
}

impl LambdaEvaluator {
    /// Starts the debug evaluator with `env` set for the function. Its output is kept for
    /// [`LambdaEvaluator::log_records`].
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, Profile::Debug)
    }

    /// Starts the debug evaluator reading the policies in `policies`, keeping its state in
    /// `table` and calling the emulator with its test credentials ([`emulator_settings`]), with
    /// the settings `more`.
    pub fn over(policies: &Path, table: &str, more: &[(&str, &str)]) -> Self {
        let endpoint = crate::endpoint();
        Self::start(&emulator_settings(policies, table, &endpoint, more))
    }

    /// Starts the evaluator as [`LambdaEvaluator::over`] does, in replay: each event is evaluated
    /// as of the time it carries, so that tests can lay their datapoints out before now.
    pub fn replaying(policies: &Path, table: &str, more: &[(&str, &str)]) -> Self {
        let mut settings = vec![("CAPSTAN_REPLAY", "true")];
        settings.extend_from_slice(more);
        Self::over(policies, table, &settings)
    }

    /// Starts the evaluator as [`LambdaEvaluator::start`] does, built with `profile`.
    pub fn start_with(env: &[(&str, &str)], profile: Profile) -> Self {
        Self {
            function: Mutex::new(Function::spawn(&built_binary("evaluator", profile), env)),
            invocations: AtomicU64::new(0),
        }
    }

    /// The JSON records the function has written so far (any other line left out).
    pub fn log_records(&self) -> Vec<Value> {
        self.function
            .lock()
            .expect("the function")
            .output()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Sends `event` to the evaluator and returns its answer, or the error it reported.
    pub fn invoke(&self, event: &Value) -> Result<Value, String> {
        self.invoke_text(&event.to_string())
    }

    /// Sends `event` as it is written, however large or deep, and returns the answer, or the
    /// error reported.
    pub fn invoke_text(&self, event: &str) -> Result<Value, String> {
        let number = self.invocations.fetch_add(1, Ordering::Relaxed);
        let mut function = self.function.lock().expect("the function");
        function.invoke_text(
            event,
            &format!("invocation-{number}"),
            SystemTime::now() + TIMEOUT,
        );
        match function.answer(ANSWER_TIMEOUT) {
            Some(Answer { result, .. }) => result,
            None => Err(format!(
                "no answer within {ANSWER_TIMEOUT:?}; the function's output:\n{}",
                function.output()
            )),
        }
    }
}

/// The binary `name` of the workspace built with `profile`, which must be built beforehand and
/// be newer than every source it was built from (as cargo's dep-info file beside it lists them):
/// a debug one by the workspace's build (`cargo build --workspace --all-targets`, as
/// scripts/test.sh builds it, so that it shares their one build of the dependencies), a release
/// one on its own (scripts/bench-pass.sh builds those it runs).
///
/// # Panics
///
/// When the binary or its dep-info file is missing, or the binary is older than a source.
pub fn built_binary(name: &str, profile: Profile) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let (binary, build) = match profile {
        Profile::Debug => (
            target.join("debug").join(name),
            "cargo build --workspace --all-targets".to_owned(),
        ),
        Profile::Release => (
            target.join("release").join(name),
            format!("cargo build --release --workspace --bin {name}"),
        ),
    };
    let missing =
        |path: &Path| -> ! { panic!("{} is missing: build it first (`{build}`)", path.display()) };
    let built = std::fs::metadata(&binary)
        .and_then(|metadata| metadata.modified())
        .unwrap_or_else(|_| missing(&binary));
    let dep_info = binary.with_extension("d");
    let sources = std::fs::read_to_string(&dep_info).unwrap_or_else(|_| missing(&dep_info));
    let newer = dep_info_sources(&sources).into_iter().find(|source| {
        std::fs::metadata(source)
            .and_then(|metadata| metadata.modified())
            .map_or(true, |changed| changed > built)
    });
    if let Some(source) = newer {
        panic!(
            "{} is older than {} (or it is gone): build it again (`{build}`)",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// The sources a cargo dep-info file (`target: source source...`, spaces in paths escaped
/// with a backslash) lists for its first target.
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let line = dep_info.lines().next().unwrap_or_default();
    let Some((_, sources)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    let mut path = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => path.extend(chars.next()),
            ' ' => {
                paths.extend((!path.is_empty()).then(|| PathBuf::from(std::mem::take(&mut path))))
            }
            c => path.push(c),
        }
    }
    paths.extend((!path.is_empty()).then(|| PathBuf::from(path)));
    paths
}

/// A new execution environment of the debug evaluator with [`emulator_settings`].
pub fn evaluator_function(
    policies: &Path,
    table: &str,
    endpoint: &str,
    more: &[(&str, &str)],
) -> Function {
    Function::spawn(
        &built_binary("evaluator", Profile::Debug),
        &emulator_settings(policies, table, endpoint, more),
    )
}

/// The settings of an evaluator reading the policies in `policies`, keeping its state in
/// `table`, calling AWS at `endpoint` with the emulator's test credentials, then `more`.
pub fn emulator_settings<'a>(
    policies: &'a Path,
    table: &'a str,
    endpoint: &'a str,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("CAPSTAN_POLICY_DIR", policies.to_str().expect("UTF-8 path")),
        ("CAPSTAN_STATE_TABLE", table),
        ("CAPSTAN_AWS_ENDPOINT", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    env.extend_from_slice(more);
    env
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::dep_info_sources;

    #[test]
    fn dep_info_lists_the_first_targets_sources_with_escaped_spaces() {
        let dep_info = "/t/debug/evaluator: /w/a.rs /w/my\\ dir/b.rs\n\n/w/a.rs:\n";
        assert_eq!(
            dep_info_sources(dep_info),
            [PathBuf::from("/w/a.rs"), PathBuf::from("/w/my dir/b.rs")]
        );
        assert!(dep_info_sources("").is_empty());
    }
}
