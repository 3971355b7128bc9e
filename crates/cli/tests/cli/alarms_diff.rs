//! `capstan alarms diff` run as a user would, against moto's CloudWatch (through the CBOR
//! bridge), next to the alarm-sync function's handler on the same policies: the diff prints the
//! plan the sync then applies. Run with
//! `scripts/with-emulator.sh cargo test -p capstan --test cli alarms_diff::`.

use std::path::Path;
use std::process::Command;

use aws_sdk_cloudwatch::Client;
use chrono::{TimeDelta, Utc};
use serde_json::json;

use capstan_tests::alarms::{
    STACK, alarms, app, names, namespace, policy, policy_dir, prefix, put_foreign_alarm, sync,
    write_policy,
};
use capstan_tests::{endpoint, sdk_config};

/// `capstan alarms diff` on `policies` against the emulator: its exit code and output.
fn diff(prefix: &str, policies: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["alarms", "diff"])
        .args([
            "--endpoint",
            &endpoint(),
            "--prefix",
            prefix,
            "--stack",
            STACK,
        ])
        .arg(policies)
        .output()
        .expect("running capstan alarms diff");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = output.status.code().unwrap_or_else(|| {
        panic!(
            "capstan was killed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, stdout)
}

#[tokio::test]
async fn alarms_diff_prints_the_plan_the_sync_then_applies() {
    let prefix = prefix();
    let policies = policy_dir(&policy(70, true));

    let (code, printed) = diff(&prefix, policies.path());
    assert_eq!(code, 2, "{printed}");
    let created = sync(&app(&prefix, policies.path()).await).await;
    let planned: Vec<String> = printed
        .lines()
        .filter_map(|line| line.strip_prefix("+ create "))
        .map(|line| line.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(planned, names(&created["created"]));
    assert!(
        printed.ends_with("3 to create, 0 to change, 0 to delete\n"),
        "{printed}"
    );

    let (code, printed) = diff(&prefix, policies.path());
    assert_eq!(
        (code, printed.as_str()),
        (0, "0 to create, 0 to change, 0 to delete\n")
    );

    write_policy(policies.path(), &policy(80, false));
    let (code, printed) = diff(&prefix, policies.path());
    assert_eq!(code, 2, "{printed}");
    let ours = namespace(&prefix, STACK);
    let changed = format!("{ours}web-scale_out-0");
    let deleted = format!("{ours}web-scale_out-1");
    assert!(
        printed.contains(&format!("~ change {changed}: "))
            && printed.contains("    threshold: 70 -> 80\n"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("- delete {deleted}\n")),
        "{printed}"
    );
    let applied = sync(&app(&prefix, policies.path()).await).await;
    assert_eq!(
        applied,
        json!({ "created": [], "changed": [changed], "deleted": [deleted], "unchanged": 1 })
    );
    assert_eq!(diff(&prefix, policies.path()).0, 0);
}

#[tokio::test]
async fn alarms_diff_reports_a_name_held_by_an_alarm_capstan_does_not_own() {
    let client = Client::new(&sdk_config().await);
    let prefix = prefix();
    let held = format!("{}web-scale_in-0", namespace(&prefix, STACK));
    put_foreign_alarm(&client, &held, &[]).await;
    let policies = policy_dir(&policy(70, true));

    let (code, printed) = diff(&prefix, policies.path());

    assert_eq!(code, 1, "{printed}");
    assert!(
        printed.contains(&format!("! conflict {held}: ")),
        "{printed}"
    );
    let error = app(&prefix, policies.path())
        .await
        .handle(
            json!({ "capstan": "sync-alarms" }),
            Utc::now() + TimeDelta::minutes(5),
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("the sync must refuse a conflict"))
        .to_string();
    assert!(error.contains(&held), "{error}");
    assert_eq!(
        alarms(&client, &prefix).await.len(),
        1,
        "nothing was created"
    );
}
