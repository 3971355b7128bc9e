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
/// be newer than the workspace's crates, functions, policies and manifests: a debug one by the workspace's build (`cargo
/// build --workspace --all-targets`, as scripts/test.sh builds it, so that it shares their one
/// build of the dependencies), a release one on its own (scripts/bench-pass.sh builds those it
/// runs).
///
/// # Panics
///
/// When the binary is missing or older than a source.
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
    let built = std::fs::metadata(&binary)
        .and_then(|metadata| metadata.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it first (`{build}`)",
                binary.display()
            )
        });
    let root = workspace_root();
    let newer = [
        "crates",
        "functions",
        "policies",
        "Cargo.toml",
        "Cargo.lock",
    ]
    .iter()
    .filter_map(|path| newest_change(&root.join(path)))
    .find(|(changed, _)| *changed > built);
    if let Some((_, source)) = newer {
        panic!(
            "{} is older than {}: build it again (`{build}`)",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// The newest modification under `path` (a file, or a folder walked whole), and where.
fn newest_change(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return Some((metadata.modified().ok()?, path.to_path_buf()));
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_change(&entry.ok()?.path()))
        .max_by_key(|(changed, _)| *changed)
}

/// A new execution environment of the debug evaluator reading the policies in `policies`,
/// keeping its state in `table`, calling AWS at `endpoint` with the emulator's test
/// credentials, with the settings `more`.
pub fn evaluator_function(
    policies: &Path,
    table: &str,
    endpoint: &str,
    more: &[(&str, &str)],
) -> Function {
    let mut env = vec![
        ("CAPSTAN_POLICY_DIR", policies.to_str().expect("UTF-8 path")),
        ("CAPSTAN_STATE_TABLE", table),
        ("CAPSTAN_AWS_ENDPOINT", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    env.extend_from_slice(more);
    Function::spawn(&built_binary("evaluator", Profile::Debug), &env)
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}
