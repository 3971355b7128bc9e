//! The real evaluator binary under `cargo lambda watch`, invoked with `cargo lambda invoke`, or
//! run as Lambda runs it against a Runtime API of the test's own ([`evaluator_function`]).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runtime_api::Function;

/// How long an invocation may wait for the function (seconds): the first one builds and starts
/// it, so a function that cannot start fails the invocation instead of hanging it. Below
/// nextest's 10-minute limit, with room for a build on 2 busy cores.
const INVOKE_TIMEOUT_SECS: &str = "540";

/// How long the runtime emulator may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How the function is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Cargo's `dev` profile, as the tests run it.
    Debug,
    /// Cargo's `release` profile, as it is deployed.
    Release,
}

/// The evaluator running under cargo lambda's Lambda runtime emulator. Stopped on drop.
pub struct LambdaEvaluator {
    watch: Child,
    port: u16,
    /// Where the watcher's output goes, the function's log records among it.
    log: tempfile::NamedTempFile,
}

impl LambdaEvaluator {
    /// Starts `cargo lambda watch` for the evaluator with `env` set for the function, and waits
    /// until its invoke port accepts connections. The function itself is built and started by
    /// the first invocation. Its output is kept for [`LambdaEvaluator::log_records`].
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, Profile::Debug)
    }

    /// Starts the evaluator as [`LambdaEvaluator::start`] does, built with `profile`.
    pub fn start_with(env: &[(&str, &str)], profile: Profile) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut watch = cargo();
        watch
            .current_dir(workspace_root())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--quiet",
                "--timeout",
                INVOKE_TIMEOUT_SECS,
                "--package",
                "capstan-evaluator",
            ])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .args((profile == Profile::Release).then_some("--release"))
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("reopening the log file"))
            .stderr(log.reopen().expect("reopening the log file"))
            .process_group(0);
        for (name, value) in env {
            watch.arg("--env-var").arg(format!("{name}={value}"));
        }
        let mut watch = watch
            .spawn()
            .expect("starting `cargo lambda watch` (is the venv's bin on PATH?)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = watch.try_wait().ok().flatten();
            assert!(
                exited.is_none() && started.elapsed() < START_TIMEOUT,
                "cargo lambda watch did not listen on {port} ({}); its output:\n{}",
                exited.map_or_else(|| "still running".to_owned(), |status| status.to_string()),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            std::thread::park_timeout(Duration::from_millis(100));
        }
        Self { watch, port, log }
    }

    /// The JSON records the function has written so far (the watcher's and cargo's own lines,
    /// which are not JSON objects, left out).
    pub fn log_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log.path())
            .expect("reading the function's log")
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Sends `event` to the evaluator and returns its answer, or the error it reported.
    pub fn invoke(&self, event: &Value) -> Result<Value, String> {
        let output = cargo()
            .current_dir(workspace_root())
            .args(["lambda", "invoke", "evaluator", "--output-format", "json"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
            ])
            .arg("--data-ascii")
            .arg(event.to_string())
            .output()
            .expect("running `cargo lambda invoke`");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() {
            serde_json::from_str(&stdout).map_err(|e| format!("answer is not JSON ({e}): {stdout}"))
        } else {
            Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for LambdaEvaluator {
    fn drop(&mut self) {
        // The watcher runs cargo, which runs the function: stop the whole process group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.watch.id())])
            .status();
        let _ = self.watch.wait();
    }
}

/// The debug evaluator binary, built once per test process the way `cargo lambda watch`
/// builds it (the package alone), for tests that run it against a Runtime API of their own
/// ([`crate::runtime_api::Function`]).
///
/// # Panics
///
/// When the build fails.
pub fn evaluator_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = cargo()
                .current_dir(workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "--locked",
                    "--package",
                    "capstan-evaluator",
                ])
                .status()
                .expect("running cargo build");
            assert!(status.success(), "building the evaluator: {status}");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from);
            target.join("debug").join("evaluator")
        })
        .clone()
}

/// A new execution environment of the debug evaluator ([`evaluator_binary`]) reading the
/// policies in `policies`, keeping its state in `table`, calling AWS at `endpoint` with the
/// emulator's test credentials, with the settings `more`.
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
    Function::spawn(&evaluator_binary(), &env)
}

/// `cargo`, without the variables cargo set for this process (it runs under `cargo test`,
/// nextest or `cargo run`). A nested cargo would read them as its own environment: build
/// scripts that watch them (ring's, for `CARGO_PKG_NAME` and the like) would rerun, and every
/// crate above them would be rebuilt, once for the function and again for the next outer build.
fn cargo() -> Command {
    let mut cargo = Command::new("cargo");
    for (name, _) in std::env::vars_os() {
        let set_by_cargo = name.to_str().is_some_and(|name| {
            name == "OUT_DIR"
                || name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_MANIFEST_LINKS",
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                ]
                .contains(&name)
        });
        if set_by_cargo {
            cargo.env_remove(name);
        }
    }
    cargo
}

/// The workspace root, where `cargo lambda` must run.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}
