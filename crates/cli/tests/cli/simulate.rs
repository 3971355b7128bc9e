//! `capstan simulate` and `capstan scenarios generate` run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn capstan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("capstan runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const POLICY: &str = "version: 1
name: web
target: { ecs_service: { cluster: c, service: web } }
capacity: { min: 1, max: 10 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m }
scale_out:
  - { when: { metric: cpu, above: 80, for: 2m }, add: 1 }
";

#[test]
fn a_scenario_with_baseline_and_plot() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let plot = dir.path().join("out.svg");
    let out = capstan(
        &workspace_root(),
        &[
            "simulate",
            "scenarios/step-change",
            "--baseline",
            "target-tracking",
            "--plot",
            plot.to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("capstan on step-change"), "{stdout}");
    assert!(
        stdout.contains("target-tracking on step-change"),
        "{stdout}"
    );
    assert!(stdout.contains("under-provisioned"), "{stdout}");
    let svg = std::fs::read_to_string(plot).expect("plot written");
    assert!(svg.starts_with("<svg"), "{svg}");
}

#[test]
fn a_trace_file_with_policies_as_csv() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("web.yaml"), POLICY).expect("policy");
    std::fs::write(
        dir.path().join("trace.csv"),
        "timestamp,web.cpu\n2026-01-01T00:00:00Z,90\n2026-01-01T00:01:00Z,95\n2026-01-01T00:02:00Z,50\n\
         2026-01-01T00:03:00Z,50\n2026-01-01T00:04:00Z,50\n",
    )
    .expect("trace");
    let out = capstan(
        dir.path(),
        &[
            "simulate",
            "trace.csv",
            "--policies",
            "web.yaml",
            "--output",
            "csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    // 00:00 and 00:01 breach; their datapoints land 2 minutes after each minute and the
    // metric's default delay is 2m, so the pass at the end of 00:03 is the first to see both.
    assert_eq!(
        lines[4],
        "capstan,web,2026-01-01T00:03:00+00:00,,50,1,2,out,false"
    );
}

#[test]
fn a_replica_policy_is_left_out_and_said_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("policies/");
    std::fs::write(policies.join("web.yaml"), POLICY).expect("policy");
    std::fs::copy(
        workspace_root().join("policies/reports-db-replicas.yaml"),
        policies.join("replicas.yaml"),
    )
    .expect("the replica policy");
    std::fs::write(
        dir.path().join("trace.csv"),
        "timestamp,web.cpu\n2026-01-01T00:00:00Z,90\n2026-01-01T00:01:00Z,95\n",
    )
    .expect("trace");
    let left_out = "policies/replicas.yaml (reports-db-replicas): not simulated: an rds_replicas \
                    policy's replicas serve reads beside their source, whose own metrics its \
                    `quiet` rule reads; the simulated fleet is units that serve the demand alone";

    let out = capstan(
        dir.path(),
        &["simulate", "trace.csv", "--policies", "policies/"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), format!("{left_out}\n"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("capstan on web"), "{stdout}");
    assert!(!stdout.contains("reports-db-replicas"), "{stdout}");

    // With nothing else to simulate, it is an error.
    std::fs::remove_file(policies.join("web.yaml")).expect("removing web");
    let out = capstan(
        dir.path(),
        &["simulate", "trace.csv", "--policies", "policies/"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), format!("error: {left_out}\n"));
}

#[test]
fn a_broken_trace_names_file_and_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("web.yaml"), POLICY).expect("policy");
    std::fs::write(
        dir.path().join("trace.csv"),
        "timestamp,cpu\n2026-01-01T00:00:00Z,90\n2026-01-01T00:01:00Z,high\n",
    )
    .expect("trace");
    let out = capstan(
        dir.path(),
        &["simulate", "trace.csv", "--policies", "web.yaml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: trace.csv:3: `high` in column `cpu` is not a number\n"
    );
}

#[test]
fn generate_is_deterministic() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for sub in ["a", "b"] {
        let out = capstan(dir.path(), &["scenarios", "generate", sub, "--seed", "42"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for file in [
        "step-change/trace.csv",
        "diurnal-week/trace.csv",
        "flash-sale/policies/flash-sale.yaml",
    ] {
        let a = std::fs::read(dir.path().join("a").join(file)).expect("a");
        let b = std::fs::read(dir.path().join("b").join(file)).expect("b");
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
}
