//! capstan's fuzz targets: arbitrary bytes into each parser of untrusted input, checking that it
//! answers (a value or an error naming what was wrong) and never panics, hangs or overflows the
//! stack, and that what it accepts holds together. `scripts/fuzz.sh` runs them under libFuzzer
//! (`fuzz_targets/`, nightly) or, without nightly, with proptest (`tests/fallback.rs`); the
//! seeds are `policies/` and `tests/fixtures/events/`. See docs/testing.md, "Fuzzing".

use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use capstan_engine::{
    Change, CurrentCapacity, Direction, Observations, ResourceState, Subject, decide, decide_all,
};
use capstan_events::{Batch, ECHOED_CHARS};
use capstan_policy::model::Policy;
use capstan_policy::{Diagnostic, PolicySet, Source};
use capstan_runner::Trigger;

/// The files of one input: its parts between NUL bytes, so that one input can be a whole set.
const FILE_SEPARATOR: u8 = 0;

/// The repository's policies, which the events wake and the state records are decided for.
static SHIPPED: LazyLock<Vec<Policy>> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    PolicySet::load(&[dir])
        .unwrap_or_else(|report| panic!("{report}"))
        .into_policies()
});

/// The instant every state record is decided at.
static NOW: LazyLock<DateTime<Utc>> =
    LazyLock::new(|| "2026-11-20T12:00:00Z".parse().expect("a time"));

/// Policy files, as `capstan validate` and the functions' build read them: `bytes` split at
/// NUL bytes into files, each read as a source ([`Source::from_bytes`]) and the set validated
/// whole. A set that is refused names only its own files, at lines they have, each with that
/// line; a valid set packages and loads back as it was, and the engine decides on it (every
/// policy at once, guards included) without data, from no history and just after a change each
/// way, whatever durations and numbers it holds.
pub fn policy_set(bytes: &[u8]) {
    let mut sources = Vec::new();
    for (index, file) in bytes.split(|&b| b == FILE_SEPARATOR).enumerate() {
        match Source::from_bytes(format!("policies/{index}.yaml"), file.to_vec()) {
            Ok(source) => sources.push(source),
            Err(problem) => assert_names_the_file(&problem, file),
        }
    }
    match PolicySet::from_sources(sources.clone()) {
        Ok(set) => {
            let loaded = PolicySet::from_packaged(&set.to_packaged()).expect("a valid set loads");
            assert_eq!(format!("{loaded:?}"), format!("{set:?}"));
            decide_on(set.policies());
        }
        Err(report) => {
            assert!(!report.diagnostics().is_empty());
            for problem in report.diagnostics() {
                let source = sources
                    .iter()
                    .find(|source| source.path == problem.file)
                    .unwrap_or_else(|| panic!("a problem in no file of the set: {problem}"));
                assert_names_the_file(problem, source.text.as_bytes());
            }
            let _ = report.to_string();
        }
    }
}

/// Every policy of a valid set decided at once, at capacity 1, from each of [`HISTORIES`].
fn decide_on(policies: &[Policy]) {
    let all: Vec<&Policy> = policies.iter().collect();
    let current = CurrentCapacity {
        desired: 1,
        ..CurrentCapacity::default()
    };
    for state in HISTORIES.iter() {
        let subjects: Vec<Subject<'_>> = policies
            .iter()
            .map(|policy| Subject {
                policy,
                current: &current,
                state,
            })
            .collect();
        let _ = decide_all(&subjects, &all, &Observations::new(), *NOW);
    }
}

/// What a resource may remember: nothing, or a change out or in a minute before [`NOW`].
static HISTORIES: LazyLock<Vec<ResourceState>> = LazyLock::new(|| {
    let change = |direction, to| Change {
        at: *NOW - TimeDelta::minutes(1),
        direction,
        from: 1,
        to,
    };
    vec![
        ResourceState::default(),
        ResourceState {
            changes: vec![change(Direction::Out, 2)],
            ..ResourceState::default()
        },
        ResourceState {
            changes: vec![change(Direction::In, 0)],
            ..ResourceState::default()
        },
    ]
});

/// `problem` in the file of `text` points at one of its lines, and quotes it.
fn assert_names_the_file(problem: &Diagnostic, text: &[u8]) {
    if problem.line == 0 {
        return;
    }
    let text = String::from_utf8_lossy(text);
    let line = usize::try_from(problem.line - 1).expect("a line number");
    let quoted = text.lines().nth(line).unwrap_or_default();
    assert!(
        quoted.starts_with(&problem.source_line),
        "{problem}: line {} is {quoted:?}",
        problem.line
    );
}

/// An event, as the Lambda runtime hands it to the evaluator (JSON into a `Value`) and the
/// evaluator reads it ([`capstan_events::parse`]). An error is short whatever the event's size;
/// an alarm's key is its name and time; each trigger selects among the shipped policies and
/// serialises into the function's answer.
pub fn event(bytes: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    match capstan_events::parse(event) {
        Ok(Batch {
            deliveries,
            refused,
        }) => {
            for (_, error) in refused {
                assert_short(&error.to_string());
            }
            for delivery in deliveries {
                if let Trigger::Alarm(alarm) = &delivery.trigger {
                    let key = alarm
                        .changed_at
                        .map(|at| format!("alarm#{}#{}", alarm.name, at.to_rfc3339()));
                    assert_eq!(delivery.key, key);
                }
                let _ = delivery.trigger.select(&SHIPPED);
                serde_json::to_string(&delivery.trigger).expect("a trigger serialises");
            }
        }
        Err(error) => assert_short(&error.to_string()),
    }
}

/// An event's error repeats at most [`ECHOED_CHARS`] characters of what was received, beside
/// its own words.
fn assert_short(error: &str) {
    assert!(
        error.chars().count() <= ECHOED_CHARS + 500,
        "an error of {} characters",
        error.chars().count()
    );
}

/// A resource's state as the state table keeps it (its `memory` attribute: the engine's
/// [`ResourceState`] in JSON, read as crates/aws/src/state.rs reads it). A state that reads
/// writes back as the same state, settles its intent against any capacity, and is decided on
/// by every shipped policy.
pub fn state_record(bytes: &[u8]) {
    let Ok(memory) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(state) = serde_json::from_str::<ResourceState>(memory) else {
        return;
    };
    let written = serde_json::to_string(&state).expect("a state serialises");
    let read: ResourceState = serde_json::from_str(&written).expect("a written state reads");
    assert_eq!(read, state);
    for desired in [0, 1, 2, 10, u32::MAX] {
        let current = CurrentCapacity {
            desired,
            ..CurrentCapacity::default()
        };
        let mut state = state.clone();
        state.reconcile(&current);
        for policy in SHIPPED.iter() {
            let _ = decide(policy, &Observations::new(), &current, &state, *NOW);
        }
    }
}
