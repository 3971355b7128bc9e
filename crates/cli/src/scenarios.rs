//! `capstan scenarios generate [DIR]`: writes the standard simulation scenarios (seeded,
//! deterministic) and, given the WorldCup98 trace, the `worldcup` scenario.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `capstan scenarios`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// `scenarios` subcommands.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write the six standard scenarios (and worldcup, given --worldcup) under DIR.
    Generate {
        /// Where to write them.
        #[arg(default_value = "scenarios/")]
        dir: PathBuf,
        /// Seed of the noise; the same seed always writes the same bytes.
        #[arg(long, default_value_t = capstan_sim::generate::DEFAULT_SEED)]
        seed: u64,
        /// The WorldCup98 requests-per-minute trace (`period,count`) to cut `worldcup` from.
        #[arg(long)]
        worldcup: Option<PathBuf>,
    },
}

/// Generates the scenarios.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Command::Generate {
        dir,
        seed,
        worldcup,
    } = &args.command;
    let mut files = capstan_sim::generate::standard(*seed);
    if let Some(source) = worldcup {
        let text = std::fs::read_to_string(source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        files.extend(capstan_sim::generate::worldcup(&text).map_err(anyhow::Error::msg)?);
    }
    capstan_sim::generate::write(dir, &files)
        .with_context(|| format!("cannot write under {}", dir.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "{} files written under {}",
        files.len(),
        dir.display()
    )?;
    Ok(())
}
