//! `capstan validate` run as a user would: on the shipped policies, and on broken files in a
//! temporary directory, checking the exit code, the `file:line:column` and the offending line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where `policies/` lives.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `capstan` with `args` in `dir`.
fn capstan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("capstan runs")
}

/// The example policy; broken files change one line of it.
const GOOD: &str = "\
version: 1
name: order-processing
target:
  ecs_service: { cluster: shop, service: order-processing }
capacity: { min: 2, max: 10 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m }
scale_out:
  - { when: { metric: cpu, above: 70, for: 5m }, add: 2 }
schedule:
  - { name: flash-sale, cron: \"0 17 * * FRI\", timezone: Europe/London, duration: 3h, min: 8 }
";

/// Writes `files` into a fresh directory and runs `capstan validate` on it, from inside it,
/// so messages name files as `policies/<name>`.
fn validate_files(files: &[(&str, &str)]) -> (i32, String, String) {
    let files: Vec<_> = files
        .iter()
        .map(|(name, text)| ((*name).to_owned(), text.as_bytes().to_vec()))
        .collect();
    validate_bytes(&files)
}

/// [`validate_files`] with each file's bytes as they are.
fn validate_bytes(files: &[(String, Vec<u8>)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("policies/ is created");
    for (name, bytes) in files {
        std::fs::write(policies.join(name), bytes).expect("the policy is written");
    }
    let output = capstan(dir.path(), &["validate", "policies/"]);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (
        output.status.code().expect("an exit code"),
        text(output.stdout),
        text(output.stderr),
    )
}

/// Asserts that `capstan validate` rejects `text` with exactly one error: `expected_header`
/// (`file:line:column: error: message`), followed by `offending_line` in the snippet.
fn assert_rejected(files: &[(&str, &str)], expected_header: &str, offending_line: &str) -> String {
    let (code, stdout, stderr) = validate_files(files);
    assert_eq!(code, 1, "stderr:\n{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(&format!("{expected_header}\n")),
        "stderr:\n{stderr}"
    );
    let snippet_line = stderr.lines().nth(2).unwrap_or_default();
    assert!(
        snippet_line.ends_with(&format!(" | {offending_line}")),
        "stderr:\n{stderr}"
    );
    assert!(stderr.ends_with("\n1 error\n"), "stderr:\n{stderr}");
    stderr
}

/// Asserts that `capstan validate` rejects `files` with exit status 1, nothing on stdout, and
/// stderr starting with `expected_header`; returns stderr.
fn assert_rejected_header(files: &[(&str, &str)], expected_header: &str) -> String {
    let (code, stdout, stderr) = validate_files(files);
    assert_eq!((code, stdout.as_str()), (1, ""), "stderr:\n{stderr}");
    assert!(
        stderr.starts_with(&format!("{expected_header}\n")),
        "stderr:\n{stderr}"
    );
    stderr
}

#[test]
fn the_shipped_policies_are_valid() {
    let output = capstan(&workspace_root(), &["validate", "policies/"]);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "11 policies valid\n"
    );
    assert!(output.status.success());
}

#[test]
fn the_default_path_is_policies() {
    let output = capstan(&workspace_root(), &["validate"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "11 policies valid\n"
    );
    assert!(output.status.success());
}

#[test]
fn a_valid_set_of_one_says_policy() {
    let (code, stdout, _) = validate_files(&[("orders.yaml", GOOD)]);
    assert_eq!((code, stdout.as_str()), (0, "1 policy valid\n"));
}

#[test]
fn a_yaml_syntax_error_is_located() {
    let broken = GOOD.replace("name: order-processing", "name: order-processing: v2");
    assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:2:23: error: mapping values are not allowed in this context",
        "name: order-processing: v2",
    );
}

#[test]
fn an_unknown_key_is_located_with_a_suggestion() {
    let broken = GOOD.replace("scale_out:", "scale_ot:");
    let stderr = assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:8:1: error: unknown key `scale_ot`",
        "scale_ot:",
    );
    assert!(
        stderr.contains("\n  = help: did you mean `scale_out`?\n"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn min_above_max_is_located_at_min() {
    let broken = GOOD.replace("min: 2, max: 10", "min: 12, max: 10");
    assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:5:18: error: capacity `min` (12) is above `max` (10)",
        "capacity: { min: 12, max: 10 }",
    );
}

#[test]
fn a_duplicate_name_across_two_files_points_at_the_second_and_names_the_first() {
    let second = GOOD.replace("service: order-processing", "service: checkout");
    assert_rejected(
        &[("a.yaml", GOOD), ("b.yaml", &second)],
        "policies/b.yaml:2:7: error: policy name `order-processing` is already used in policies/a.yaml:2:7",
        "name: order-processing",
    );
}

#[test]
fn an_undefined_metric_is_located_with_a_suggestion() {
    let broken = GOOD.replace("{ metric: cpu,", "{ metric: cpuu,");
    let stderr = assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:9:23: error: undefined metric `cpuu`",
        "  - { when: { metric: cpuu, above: 70, for: 5m }, add: 2 }",
    );
    assert!(
        stderr.contains("= help: did you mean `cpu`?"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn a_bad_cron_is_located_at_the_expression() {
    let broken = GOOD.replace("0 17 * * FRI", "0 17 * FRI");
    assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:11:31: error: invalid cron expression `0 17 * FRI`: \
         expected 5 fields (minute hour day-of-month month day-of-week), found 4",
        "  - { name: flash-sale, cron: \"0 17 * FRI\", timezone: Europe/London, duration: 3h, min: 8 }",
    );
}

#[test]
fn an_unknown_time_zone_is_located_with_a_suggestion() {
    let broken = GOOD.replace("Europe/London", "Europe/Londn");
    assert_rejected(
        &[("orders.yaml", &broken)],
        "policies/orders.yaml:11:57: error: unknown time zone `Europe/Londn` (did you mean `Europe/London`?)",
        "  - { name: flash-sale, cron: \"0 17 * * FRI\", timezone: Europe/Londn, duration: 3h, min: 8 }",
    );
}

#[test]
fn two_policies_on_one_resource_point_at_the_second_target() {
    let second = GOOD.replace("name: order-processing", "name: orders-again");
    assert_rejected(
        &[("a.yaml", GOOD), ("b.yaml", &second)],
        "policies/b.yaml:4:3: error: ecs_service shop/order-processing is already scaled by policy \
         `order-processing` (policies/a.yaml:4:3)",
        "  ecs_service: { cluster: shop, service: order-processing }",
    );
}

#[test]
fn an_rds_source_with_capitals_is_located_with_its_lowercase_form() {
    let replicas = "\
version: 1
name: orders-db-replicas
target:
  rds_replicas: { source: Orders-DB }
capacity: { min: 0, max: 3 }
";
    let stderr = assert_rejected(
        &[("replicas.yaml", replicas)],
        "policies/replicas.yaml:4:3: error: rds_replicas source `Orders-DB` has capitals, but RDS \
         stores DB instance identifiers in lowercase: the replicas capstan creates would never be \
         matched to it",
        "  rds_replicas: { source: Orders-DB }",
    );
    assert!(
        stderr.contains("\n  = help: write `orders-db`\n"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn every_problem_of_the_set_is_reported_and_counted() {
    let first = GOOD.replace("version: 1", "version: 2");
    let second = GOOD
        .replace("name: order-processing", "name: checkout")
        .replace("scale_out:", "scale_ot:");
    let (code, _, stderr) = validate_files(&[("a.yaml", &first), ("b.yaml", &second)]);
    assert_eq!(code, 1);
    let headers: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains(": error: "))
        .collect();
    assert_eq!(headers.len(), 2, "stderr:\n{stderr}");
    assert!(
        headers[0].starts_with("policies/a.yaml:1:10: "),
        "stderr:\n{stderr}"
    );
    assert!(
        headers[1].starts_with("policies/b.yaml:8:1: "),
        "stderr:\n{stderr}"
    );
    assert!(stderr.ends_with("\n2 errors\n"), "stderr:\n{stderr}");
}

#[test]
fn a_missing_path_fails() {
    let output = capstan(&workspace_root(), &["validate", "no/such/dir"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("no/such/dir: error: cannot read: "),
        "stderr:\n{stderr}"
    );
}

// Hostile input: each is refused with the file, the line and what is wrong (docs/testing.md,
// "Hostile input"), exit status 1 and nothing on stdout.

#[test]
fn a_billion_laughs_is_refused_at_its_first_list_without_expanding_it() {
    let mut bomb =
        String::from("scale_out:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("  - &a{level} [{aliases}]\n"));
    }
    let text = GOOD.replace(
        "scale_out:\n  - { when: { metric: cpu, above: 70, for: 5m }, add: 2 }\n",
        &bomb,
    );
    assert_rejected(
        &[("orders.yaml", &text)],
        "policies/orders.yaml:9:9: error: expected mapping start",
        "  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    );
}

#[test]
fn aliases_expanding_past_the_node_limit_are_refused() {
    let uses = "  - *rule\n".repeat(2_000);
    let text = GOOD.replace(
        "  - { when: { metric: cpu, above: 70, for: 5m }, add: 2 }\n",
        &format!("  - &rule {{ when: {{ metric: cpu, above: 70, for: 5m }}, add: 2 }}\n{uses}"),
    );
    let (code, stdout, stderr) = validate_files(&[("orders.yaml", &text)]);
    assert_eq!((code, stdout.as_str()), (1, ""), "stderr:\n{stderr}");
    let header = stderr.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("policies/orders.yaml:9:")
            && header.ends_with(
                ": error: more than 10000 YAML values, lists and mappings (an alias counts again \
                 at each use): a policy file is far smaller"
            ),
        "stderr:\n{stderr}"
    );
}

#[test]
fn nesting_100000_deep_is_refused_at_its_first_list() {
    let deep = format!("metrics: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let text = GOOD.replace(
        "metrics:\n  cpu: { namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m }\n",
        &deep,
    );
    let stderr = assert_rejected_header(
        &[("orders.yaml", &text)],
        "policies/orders.yaml:6:10: error: expected mapping start",
    );
    assert!(stderr.ends_with("\n1 error\n"), "stderr:\n{stderr}");
}

#[test]
fn numbers_beyond_their_type_and_non_finite_numbers_are_refused_at_the_value() {
    let cases = [
        (
            "max: 10",
            "max: 4294967296",
            "5:26",
            "invalid value: expected a whole number from 0 to 4294967295",
        ),
        (
            "max: 10",
            "max: 99999999999999999999",
            "5:26",
            "invalid value: expected a whole number from 0 to 4294967295",
        ),
        (
            "min: 2",
            "min: -1",
            "5:18",
            "invalid value: expected a whole number from 0 to 4294967295",
        ),
        (
            "above: 70",
            "above: .nan",
            "9:35",
            "threshold `NaN` is not a finite number",
        ),
        (
            "above: 70",
            "above: .inf",
            "9:35",
            "threshold `inf` is not a finite number",
        ),
        (
            "above: 70",
            "above: -.inf",
            "9:35",
            "threshold `-inf` is not a finite number",
        ),
        (
            "above: 70",
            "above: 1e400",
            "9:35",
            "invalid value: expected a finite number",
        ),
        (
            "for: 5m",
            "for: 99999999999999999999m",
            "9:44",
            "invalid duration `99999999999999999999m`",
        ),
    ];
    for (from, to, at, message) in cases {
        let text = GOOD.replacen(from, to, 1);
        let (code, stdout, stderr) = validate_files(&[("orders.yaml", &text)]);
        assert_eq!((code, stdout.as_str()), (1, ""), "{to}: stderr:\n{stderr}");
        assert!(
            stderr.starts_with(&format!("policies/orders.yaml:{at}: error: {message}")),
            "{to}: stderr:\n{stderr}"
        );
    }
}

#[test]
fn invalid_utf8_is_located_at_its_first_bad_byte() {
    let mut bytes = GOOD.as_bytes().to_vec();
    let at = GOOD.find("order-processing").expect("the name");
    bytes.splice(at + 5..at + 5, [0xff, 0xfe]);
    let (code, stdout, stderr) = validate_bytes(&[("orders.yaml".into(), bytes)]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        "policies/orders.yaml:2:12: error: not UTF-8: byte 0xff cannot start or continue a character\n  \
         |\n2 | name: order\n  |            ^\n  = help: save the file as UTF-8\n\n1 error\n"
    );
}

#[test]
fn a_10_mb_file_is_refused_unread() {
    let big = format!("{GOOD}# {}\n", "x".repeat(10 * 1024 * 1024));
    let (code, stdout, stderr) = validate_files(&[("orders.yaml", &big)]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        format!(
            "policies/orders.yaml: error: {} bytes: a policy file may hold at most 1048576 bytes (1 MiB)\n\n1 error\n",
            big.len()
        )
    );
}

#[test]
fn a_set_of_10000_policies_is_valid_and_one_more_is_refused() {
    let policy = |i: usize| {
        (
            format!("p{i:05}.yaml"),
            GOOD.replace("order-processing", &format!("svc-{i}"))
                .into_bytes(),
        )
    };
    let mut files: Vec<_> = (0..10_000).map(policy).collect();
    let (code, stdout, stderr) = validate_bytes(&files);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "10000 policies valid\n"),
        "{stderr}"
    );
    files.push(policy(10_000));
    let (code, stdout, stderr) = validate_bytes(&files);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        "policies/p10000.yaml: error: file 10001 of a set of 10001: a policy set holds at most 10000 files\n\n1 error\n"
    );
}
