//! `docs/policy.schema.json` is exactly what `capstan schema` prints.

use std::path::Path;
use std::process::Command;

#[test]
fn the_checked_in_schema_is_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("schema")
        .output()
        .expect("capstan runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.schema.json");
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        printed == checked_in,
        "docs/policy.schema.json is out of date; regenerate it with \
         `cargo run -p capstan -- schema > docs/policy.schema.json`"
    );
}

#[test]
fn the_schema_is_pretty_json_with_a_trailing_newline() {
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .arg("schema")
        .output()
        .expect("capstan runs");
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let parsed: serde_json::Value = serde_json::from_str(&printed).expect("valid JSON");
    assert_eq!(
        printed,
        format!(
            "{}\n",
            serde_json::to_string_pretty(&parsed).expect("serialises")
        )
    );
    assert_eq!(parsed["title"], "capstan policy");
}

/// Every property name anywhere in `schema`.
fn keys(schema: &serde_json::Value, found: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::Object(properties)) = object.get("properties") {
                found.extend(properties.keys().cloned());
            }
            object.values().for_each(|value| keys(value, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, found)),
        _ => {}
    }
}

#[test]
fn every_key_of_the_schema_is_in_the_policy_reference() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let reference = std::fs::read_to_string(file).expect("docs/policy.md is readable");
    let mut found = Vec::new();
    keys(&capstan_policy::schema(), &mut found);
    assert!(
        found.len() > 30,
        "the schema has the policy's keys: {found:?}"
    );
    let missing: Vec<_> = found
        .iter()
        .filter(|key| {
            !reference.contains(&format!("`{key}`")) && !reference.contains(&format!(".{key}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/policy.md does not describe {missing:?}"
    );
}
