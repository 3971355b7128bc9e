//! The fault-injecting proxy of `tests/emulator/proxy.py`, run in front of the emulator: its
//! process, its configuration and the calls it counted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::lambda::workspace_root;

/// How long the proxy may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy does to each AWS call it forwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Added to every call, in milliseconds.
    pub latency_ms: f64,
    /// The share of calls answered 503 without reaching the emulator (0 to 1).
    pub fail_before: f64,
    /// The share of calls forwarded, so that they take effect, and answered 503 (0 to 1).
    pub fail_after: f64,
    /// Seeds the draw that picks the failed calls.
    pub seed: u64,
}

/// The calls the proxy saw since it was last reset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Requests by operation (`DescribeServices`), each attempt of the SDK's retries one.
    pub calls: BTreeMap<String, u64>,
    /// Requests that reached the emulator, by operation.
    pub forwarded: BTreeMap<String, u64>,
    /// The operation invocations those requests were, by operation: the SDK's retries of one
    /// invocation count once (they share its `amz-sdk-invocation-id`).
    pub invocations: BTreeMap<String, u64>,
    /// Requests answered 503 before reaching the emulator, by operation.
    pub failed_before: BTreeMap<String, u64>,
    /// Requests forwarded and answered 503, by operation.
    pub failed_after: BTreeMap<String, u64>,
    /// The most requests in flight at once.
    pub max_in_flight: u64,
    /// The time the emulator spent answering the forwarded requests, summed over them, by
    /// operation.
    pub upstream: BTreeMap<String, Duration>,
}

impl Stats {
    /// Every request counted.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The time the emulator spent on every request, summed (requests in flight at once overlap).
    pub fn upstream_total(&self) -> Duration {
        self.upstream.values().sum()
    }

    /// The requests of `operation`.
    pub fn of(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }
}

/// Where the proxy starts holding calls (see [`Proxy::hold`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// At the call with this number, from 1, counted since the last reset.
    From(u64),
    /// At the first call of this operation (`UpdateService`).
    Operation(String),
}

/// The proxy process, forwarding to an upstream. Stopped on drop.
pub struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    /// Starts the proxy in front of `upstream` (a base URL such as the emulator's) on a free
    /// port, and waits until it listens.
    pub fn start(upstream: &str) -> Self {
        let root = workspace_root();
        let port_file = tempfile::NamedTempFile::new().expect("a port file");
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/emulator/proxy.py"))
            .args(["--upstream", upstream, "--port", "0", "--port-file"])
            .arg(port_file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the proxy (run scripts/bootstrap.sh first)");
        let started = Instant::now();
        let port = loop {
            let written = std::fs::read_to_string(port_file.path()).unwrap_or_default();
            if let Ok(port) = written.trim().parse() {
                break port;
            }
            let exited = child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && started.elapsed() < START_TIMEOUT,
                "the proxy did not start ({exited:?})"
            );
            std::thread::park_timeout(Duration::from_millis(50));
        };
        Self { child, port }
    }

    /// The proxy's base URL, for `CAPSTAN_AWS_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the latency and faults of every later call; the seed restarts the fault sequence.
    pub fn configure(&self, faults: Faults) {
        let settings = json!({
            "latency_ms": faults.latency_ms,
            "fail_before": faults.fail_before,
            "fail_after": faults.fail_after,
            "seed": faults.seed,
        });
        self.control("POST", "config", &settings.to_string());
    }

    /// Holds calls from `hold` on before they reach the emulator: that call and every later one
    /// wait at the proxy until [`Proxy::release`], so that a test can stop their caller between
    /// two AWS calls.
    pub fn hold(&self, hold: &Hold) {
        let settings = match hold {
            Hold::From(number) => json!({ "hold_from": number }),
            Hold::Operation(name) => json!({ "hold_operation": name }),
        };
        self.control("POST", "hold", &settings.to_string());
    }

    /// The operations of the calls held now, in the order they came, once one is or after
    /// `wait` (then none).
    pub fn held(&self, wait: Duration) -> Vec<String> {
        let answer = self.control("GET", &format!("held?wait={}", wait.as_secs_f64()), "");
        answer["held"]
            .as_array()
            .map(|held| {
                held.iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Lifts the hold and lets every held call go, `forward`ed to the emulator (it takes
    /// effect) or dropped (answered 503 without reaching it); answers how many, once each has
    /// gone.
    pub fn release(&self, forward: bool) -> u64 {
        let answer = self.control(
            "POST",
            "release",
            &json!({ "forward": forward }).to_string(),
        );
        answer["released"].as_u64().unwrap_or(0)
    }

    /// Sets the counters back to zero.
    pub fn reset(&self) {
        self.control("POST", "reset", "");
    }

    /// The calls counted since the last reset.
    pub fn stats(&self) -> Stats {
        let stats = self.control("GET", "stats", "");
        let counts = |name: &str| -> BTreeMap<String, u64> {
            stats[name]
                .as_object()
                .map(|counts| {
                    counts
                        .iter()
                        .map(|(operation, n)| (operation.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        Stats {
            calls: counts("calls"),
            forwarded: counts("forwarded"),
            invocations: counts("invocations"),
            failed_before: counts("failed_before"),
            failed_after: counts("failed_after"),
            max_in_flight: stats["max_in_flight"].as_u64().unwrap_or(0),
            upstream: stats["upstream_s"]
                .as_object()
                .map(|times| {
                    times
                        .iter()
                        .map(|(operation, seconds)| {
                            let seconds = seconds.as_f64().unwrap_or(0.0);
                            (operation.clone(), Duration::from_secs_f64(seconds))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// One request to the proxy's control endpoint `/__proxy/<action>`; its JSON answer.
    fn control(&self, method: &str, action: &str, body: &str) -> Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the proxy listens");
        write!(
            stream,
            "{method} /__proxy/{action} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("writing to the proxy");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("reading the proxy's answer");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "the proxy refused {method} {action}: {head}"
        );
        serde_json::from_str(body).expect("the proxy answers JSON")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
