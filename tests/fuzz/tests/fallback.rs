//! The fuzz targets without libFuzzer, for a machine without a nightly toolchain: proptest feeds
//! each target the same seeds, mutated (bytes changed, inserted, removed or repeated, and
//! tokens that parsers trip on spliced in), and random bytes, for `CAPSTAN_FUZZ_SECONDS` each
//! (by default 10). A failure is shrunk to a small input and printed. Not coverage-guided: it
//! finds less than libFuzzer in the same time, and `scripts/fuzz.sh` says so when it falls back.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Inputs per proptest run (each with a seed of its own); runs repeat until the time is up.
const CASES_PER_RUN: u32 = 256;

/// Tokens that the parsers read specially, spliced into seeds.
const TOKENS: &[&str] = &[
    "\0",
    "\n",
    "\"",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "!!binary ",
    ".nan",
    "-.inf",
    "1e400",
    "99999999999999999999",
    "-1",
    "4294967296",
    "0",
    "p99.9",
    "1h30m",
    "9999999d",
    "0 25 * * *",
    "null",
    "true",
    "\u{feff}",
    "\u{ff}",
    "alarmData",
    "detail-type",
    "Records",
    "metricStat",
    "expression",
    "alarmRule",
    "Scheduled Event",
    "aws:sqs",
    "CloudWatch Alarm State Change",
    "9999-12-31T23:59:59Z",
    "+262142-01-01T00:00:00Z",
];

/// One edit of a seed, at a position taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    Repeat(usize, usize),
    Token(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Remove(at, len)),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Repeat(at, len)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Token(at, token)),
    ]
}

/// `seed` with `edits` applied in turn.
fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let at = |at: usize| at % (bytes.len() + 1);
        match *edit {
            Edit::Set(position, byte) if !bytes.is_empty() => {
                let position = position % bytes.len();
                bytes[position] = byte;
            }
            Edit::Set(..) => {}
            Edit::Insert(position, byte) => bytes.insert(at(position), byte),
            Edit::Remove(position, len) => {
                let start = at(position);
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
            Edit::Repeat(position, len) => {
                let start = at(position);
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Edit::Token(position, token) => {
                let position = at(position);
                bytes.splice(position..position, TOKENS[token].bytes());
            }
        }
    }
    bytes
}

/// The seeds mutated, or random bytes.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        proptest::sample::select(seeds),
        prop::collection::vec(edit(), 0..8),
    )
        .prop_map(|(seed, edits)| apply(seed, &edits));
    prop_oneof![4 => mutated, 1 => prop::collection::vec(any::<u8>(), 0..256)]
}

/// Every file of the repository directory `dir`, as bytes.
fn files(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).expect("a seed"))
        .collect()
}

/// Runs `target` on inputs made from `seeds` for the time given, and says how many it ran.
fn fuzz(name: &str, target: fn(&[u8]), seeds: Vec<Vec<u8>>) {
    let seconds = std::env::var("CAPSTAN_FUZZ_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(10);
    let strategy = inputs(seeds);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let runs = Cell::new(0u64);
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: CASES_PER_RUN,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |bytes| {
            runs.set(runs.get() + 1);
            target(&bytes);
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{name}: {failure}");
        }
    }
    println!(
        "fallback {name}: {} inputs in {seconds} s, no failure",
        runs.get()
    );
}

#[test]
fn policy_set() {
    let mut seeds = files("policies");
    seeds.push(seeds.join(&0u8));
    fuzz("policy_set", capstan_fuzz::policy_set, seeds);
}

#[test]
fn event() {
    fuzz("event", capstan_fuzz::event, files("tests/fixtures/events"));
}

#[test]
fn state_record() {
    fuzz(
        "state_record",
        capstan_fuzz::state_record,
        files("tests/fuzz/seeds/state_record"),
    );
}
