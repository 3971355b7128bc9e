//! `capstan schema`: prints the JSON Schema of a policy file, the source of
//! `docs/policy.schema.json`.

use std::io::Write;

/// Prints the schema, pretty, with a trailing newline.
pub fn run() -> anyhow::Result<()> {
    let schema = serde_json::to_string_pretty(&capstan_policy::schema())?;
    writeln!(std::io::stdout().lock(), "{schema}")?;
    Ok(())
}
