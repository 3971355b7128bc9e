//! A function binary run as Lambda runs it, against a Lambda Runtime API of our own: one process
//! per execution environment, invocations handed to it with the request id and deadline a test
//! chooses, and the process killed (SIGKILL) whenever the test says, as Lambda stops an
//! environment. Also a function's cold start: the time from spawning the process to its first
//! request for an invocation, and its peak resident memory once it has answered one.
//!
//! The Runtime API is the HTTP interface a Lambda function polls for events
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>): `GET
//! /2018-06-01/runtime/invocation/next` answers the next event, `POST
//! .../invocation/<id>/response` takes its answer, `.../error` and `/runtime/init/error` its
//! failures.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long a function may take to start and answer its one event when its cold start is
/// measured.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// What one cold start measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStart {
    /// From spawning the process to its first request for an invocation: its initialisation.
    pub init: Duration,
    /// The process's peak resident set (`VmHWM`) once it answered the invocation, in KiB.
    pub peak_rss_kib: u64,
}

/// One invocation handed to a function.
struct Invocation {
    request_id: String,
    event: String,
    deadline: SystemTime,
}

/// The function's answer to an invocation: its response, or the error it reported (for an
/// initialisation error, the request id is empty).
#[derive(Debug)]
pub struct Answer {
    /// The invocation's request id.
    pub request_id: String,
    /// The response's JSON, or the error's body.
    pub result: Result<Value, String>,
}

/// What a function told the Runtime API.
enum Heard {
    /// It asked for an invocation.
    Next(Instant),
    /// It answered one.
    Answered(Answer),
}

/// A function process in an execution environment of its own, polling a Runtime API served
/// for it alone. Killed on drop.
pub struct Function {
    child: Child,
    spawned: Instant,
    ready: Option<Instant>,
    invocations: mpsc::Sender<Invocation>,
    heard: mpsc::Receiver<Heard>,
    /// Where the function's output goes.
    log: tempfile::NamedTempFile,
}

impl Function {
    /// Spawns `binary` with `env` set, against a Runtime API of its own.
    ///
    /// # Panics
    ///
    /// When the process cannot be spawned.
    pub fn spawn(binary: &Path, env: &[(&str, &str)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the Runtime API");
        let address = listener.local_addr().expect("the Runtime API's address");
        let (invocations, pending) = mpsc::channel::<Invocation>();
        let pending = Arc::new(Mutex::new(pending));
        let (heard, hearing) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (pending, heard) = (Arc::clone(&pending), heard.clone());
                std::thread::spawn(move || serve(stream, &pending, &heard));
            }
        });
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let spawned = Instant::now();
        let child = Command::new(binary)
            .envs(env.iter().copied())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "capstan-test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/capstan-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "capstan-test")
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("reopening the log file"))
            .stderr(log.reopen().expect("reopening the log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Self {
            child,
            spawned,
            ready: None,
            invocations,
            heard: hearing,
            log,
        }
    }

    /// Hands the function `event` as invocation `request_id`, which Lambda would stop at
    /// `deadline`. The function takes it when it next asks for one.
    pub fn invoke(&self, event: &Value, request_id: &str, deadline: SystemTime) {
        self.invoke_text(&event.to_string(), request_id, deadline);
    }

    /// [`Function::invoke`] with the event as text, sent as it is, however large or malformed.
    pub fn invoke_text(&self, event: &str, request_id: &str, deadline: SystemTime) {
        self.invocations
            .send(Invocation {
                request_id: request_id.to_owned(),
                event: event.to_owned(),
                deadline,
            })
            .expect("the Runtime API serves the function");
    }

    /// The next answer, once the function gives it or after `wait` (then none).
    pub fn answer(&mut self, wait: Duration) -> Option<Answer> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.heard.recv_timeout(left) {
                Ok(Heard::Next(at)) => {
                    self.ready.get_or_insert(at);
                }
                Ok(Heard::Answered(answer)) => return Some(answer),
                Err(_) => return None,
            }
        }
    }

    /// The function's output so far (its log records).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Stops the process at once, as Lambda stops an execution environment (SIGKILL): no
    /// code of the function runs after it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `binary` with `env` against a Runtime API of our own that hands it `event` (with a
/// deadline 60 seconds ahead) and measures its cold start. The process is killed once it has
/// answered.
///
/// # Panics
///
/// When the function fails to start, reports an error, or does not answer in time.
pub fn measure(binary: &Path, env: &[(&str, &str)], event: &Value) -> ColdStart {
    let mut function = Function::spawn(binary, env);
    function.invoke(
        event,
        "cold-start-0",
        SystemTime::now() + Duration::from_secs(60),
    );
    let answer = function.answer(ANSWER_TIMEOUT);
    let peak_rss_kib = peak_rss_kib(function.child.id());
    match (answer, function.ready) {
        (Some(Answer { result: Ok(_), .. }), Some(ready)) => ColdStart {
            init: ready - function.spawned,
            peak_rss_kib,
        },
        (answer, _) => panic!("{}: {answer:?}", binary.display()),
    }
}

/// Answers the requests of one connection: each `next` with the next invocation handed to the
/// function (waiting for one), each answer with 202.
fn serve(
    stream: TcpStream,
    pending: &Mutex<mpsc::Receiver<Invocation>>,
    heard: &mpsc::Sender<Heard>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("cloning the connection"));
    let mut writer = stream;
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/invocation/next") {
            let _ = heard.send(Heard::Next(Instant::now()));
            let next = pending.lock().map(|pending| pending.recv());
            let Ok(Ok(invocation)) = next else {
                // The function is gone and nothing more will be handed to it.
                return;
            };
            let deadline_ms = invocation
                .deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis());
            let _ = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:capstan-test\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{}",
                invocation.request_id,
                invocation.event.len(),
                invocation.event,
            );
        } else {
            let _ = writer.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
            let _ = heard.send(Heard::Answered(answer_of(&path, body)));
        }
    }
}

/// The answer a function posted to `path` with `body`.
fn answer_of(path: &str, body: String) -> Answer {
    let request_id = path
        .strip_prefix("/2018-06-01/runtime/invocation/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let result = if path.ends_with("/response") {
        serde_json::from_str(&body).map_err(|e| format!("the response is not JSON ({e}): {body}"))
    } else {
        Err(body)
    };
    Answer { request_id, result }
}

/// One HTTP/1.1 request: method, path and body (by `Content-Length` or chunked); None once the
/// connection is closed.
fn read_request(reader: &mut impl BufRead) -> Option<(String, String, String)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

/// The peak resident set of process `pid` (`VmHWM` of `/proc/<pid>/status`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}
