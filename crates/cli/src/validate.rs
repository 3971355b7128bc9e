//! `capstan validate [PATH...]`: reads and validates a policy set, prints `N policies valid`.

use std::io::Write;
use std::path::PathBuf;

use capstan_policy::PolicySet;

/// Arguments of `capstan validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files or directories (a directory stands for its *.yaml and *.yml files).
    #[arg(default_value = "policies/")]
    paths: Vec<PathBuf>,
}

/// Validates the set; the report of every problem is the error.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let set = PolicySet::load(&args.paths)?;
    let noun = if set.len() == 1 { "policy" } else { "policies" };
    writeln!(std::io::stdout().lock(), "{} {noun} valid", set.len())?;
    Ok(())
}
