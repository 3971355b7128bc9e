//! How long the engine takes to decide, against one loopback HTTP round trip.
//!
//! 10,000 policies of 3 rules, each rule over 60 one-minute datapoints, go through
//! `capstan_engine::decide`; in the same run, one HTTP request and response over 127.0.0.1 (a
//! std `TcpListener` answering a minimal response) is timed. The ratio printed at the end,
//! engine time per policy ÷ round trip, says how much of one remote call a decision costs.
//!
//! Briefly, as CI can: `cargo bench -p capstan-sim --bench decide -- --warm-up-time 1 --measurement-time 2`.

#![allow(missing_docs, clippy::unwrap_used, reason = "a benchmark binary")]

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use capstan_engine::{CurrentCapacity, Datapoint, MetricData, Observations, ResourceState, decide};
use capstan_policy::model::Policy;
use capstan_policy::{PolicySet, Source};
use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput};

const POLICIES: usize = 10_000;
const DATAPOINTS: i64 = 60;

fn policies() -> Vec<Policy> {
    let sources = (0..POLICIES)
        .map(|i| Source {
            path: format!("p{i}.yaml"),
            text: format!(
                "version: 1
name: p{i}
target: {{ ecs_service: {{ cluster: bench, service: s{i} }} }}
capacity: {{ min: 2, max: 50 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ServiceName: s{i} }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: 70, for: 60m }}, add: 2 }}
  - {{ when: {{ metric: cpu, above: 90, datapoints: 30 of 60 }}, add_percent: 50 }}
scale_in:
  - {{ when: {{ metric: cpu, below: 30, for: 60m }}, remove: 1 }}
"
            ),
        })
        .collect();
    let set = PolicySet::from_sources(sources).unwrap();
    set.policies().to_vec()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T17:00:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn observations(policies: &[Policy]) -> Observations {
    let minute = now() - TimeDelta::seconds(30);
    policies
        .iter()
        .enumerate()
        .map(|(i, policy)| {
            let points = (0..DATAPOINTS)
                .map(|k| Datapoint {
                    timestamp: minute - TimeDelta::minutes(DATAPOINTS - k),
                    value: ((i as i64 * 7 + k * 13) % 100) as f64,
                })
                .collect();
            (policy.metric("cpu").clone(), MetricData::Series(points))
        })
        .collect()
}

fn decide_all(policies: &[Policy], observations: &Observations) -> u32 {
    let current = CurrentCapacity {
        desired: 10,
        resource_min: None,
        resource_max: None,
        busy: None,
        ..Default::default()
    };
    let state = ResourceState::default();
    policies
        .iter()
        .map(|p| decide(p, observations, &current, &state, now()).desired)
        .sum()
}

/// A loopback server answering every connection with a minimal HTTP response.
fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    addr
}

/// One request and its whole response, on a new connection (as a cold SDK call would).
fn round_trip(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    response.len()
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let policies = policies();
    let observations = observations(&policies);
    let addr = server();

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("engine");
    group.throughput(Throughput::Elements(POLICIES as u64));
    group.sample_size(10);
    group.bench_function("decide 10k policies x 3 rules x 60 datapoints", |b| {
        b.iter(|| decide_all(black_box(&policies), black_box(&observations)));
    });
    group.finish();
    criterion.bench_function("loopback HTTP round trip", |b| {
        b.iter(|| round_trip(black_box(addr)));
    });
    criterion.final_summary();

    let engine = median(5, || {
        black_box(decide_all(&policies, &observations));
    });
    let http = median(201, || {
        black_box(round_trip(addr));
    });
    let per_policy = engine.as_secs_f64() / POLICIES as f64;
    println!(
        "engine: {:.1} ms for {POLICIES} policies, {:.2} µs per policy; loopback HTTP round trip: {:.1} µs; ratio (per policy ÷ round trip): {:.4}",
        engine.as_secs_f64() * 1e3,
        per_policy * 1e6,
        http.as_secs_f64() * 1e6,
        per_policy / http.as_secs_f64()
    );
}
