//! A function binary's cold start, measured against a minimal Lambda Runtime API of our own: the
//! time from spawning the process to its first request for an invocation, and its peak resident
//! memory once it has answered one.
//!
//! The Runtime API is the HTTP interface a Lambda function polls for events
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>): `GET
//! /2018-06-01/runtime/invocation/next` answers the next event, `POST
//! .../invocation/<id>/response` takes its answer, `.../error` and `/runtime/init/error` its
//! failures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long a function may take to start and answer its one event.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The request id of the one invocation.
const REQUEST_ID: &str = "cold-start-0";

/// What one cold start measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStart {
    /// From spawning the process to its first request for an invocation: its initialisation.
    pub init: Duration,
    /// The process's peak resident set (`VmHWM`) once it answered the invocation, in KiB.
    pub peak_rss_kib: u64,
}

/// What the function told the Runtime API.
enum Heard {
    /// It asked for an invocation.
    Next(Instant),
    /// It answered the invocation, or reported an error (the path says which), with this body.
    Posted { path: String, body: String },
}

/// Spawns `binary` with `env` against a Runtime API of our own that hands it `event` (with a
/// deadline 60 seconds ahead) and measures its cold start. The process is killed once it has
/// answered. Its output is discarded.
///
/// # Panics
///
/// When the function fails to start, reports an error, or does not answer in time.
pub fn measure(binary: &Path, env: &[(&str, &str)], event: &Value) -> ColdStart {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the Runtime API");
    let address = listener.local_addr().expect("the Runtime API's address");
    let (heard, hearing) = mpsc::channel();
    let event = event.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let heard = heard.clone();
            let event = event.clone();
            std::thread::spawn(move || serve(stream, &event, &heard));
        }
    });
    let spawned = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cold-start")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cold-start")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let mut init = None;
    let result = loop {
        match hearing.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Heard::Next(at)) => {
                init.get_or_insert(at - spawned);
            }
            Ok(Heard::Posted { path, .. }) if path.ends_with("/response") => {
                break Ok(peak_rss_kib(child.id()));
            }
            Ok(Heard::Posted { path, body }) => break Err(format!("{path}: {body}")),
            Err(_) => break Err("no answer in time".to_owned()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    match (result, init) {
        (Ok(peak_rss_kib), Some(init)) => ColdStart { init, peak_rss_kib },
        (result, _) => panic!("{}: {result:?}", binary.display()),
    }
}

/// Answers the requests of one connection: the first `next` with `event`, later ones never (the
/// function waits there until it is killed); every post with 202.
fn serve(stream: TcpStream, event: &str, heard: &mpsc::Sender<Heard>) {
    let mut reader = BufReader::new(stream.try_clone().expect("cloning the connection"));
    let mut writer = stream;
    let mut served = false;
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/invocation/next") {
            let _ = heard.send(Heard::Next(Instant::now()));
            if served {
                // Held unanswered until the function is killed and the connection drops.
                let _ = reader.read(&mut [0; 1]);
                return;
            }
            served = true;
            let deadline = SystemTime::now() + Duration::from_secs(60);
            let deadline_ms = deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis());
            let _ = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:cold-start\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                event.len()
            );
        } else {
            let _ = writer.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
            let _ = heard.send(Heard::Posted { path, body });
        }
    }
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
