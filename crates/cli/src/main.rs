//! The capstan command line. Glue only: each subcommand is one module that parses its
//! arguments, calls the library crates and prints; the logic lives in `capstan-policy`,
//! `capstan-sim`, `capstan-engine`, `capstan-runner` and `capstan-aws`.

use std::process::ExitCode;

use capstan_policy::Report;
use clap::{Parser, Subcommand};

mod alarms;
mod backtest;
mod history;
mod plan;
mod scenarios;
mod schema;
mod simulate;
mod validate;

/// capstan: serverless scaling for AWS, driven by policy files kept in git.
#[derive(Debug, Parser)]
#[command(name = "capstan", version)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check policy files: every problem in the whole set is reported, with file:line:column.
    Validate(validate::Args),
    /// Print the JSON Schema of a policy file, for editors.
    Schema,
    /// Replay a metric trace through the policies with a simulated fleet, without AWS.
    Simulate(simulate::Args),
    /// Generate the simulation scenarios.
    Scenarios(scenarios::Args),
    /// Compare the CloudWatch alarms that wake the evaluator with what the policies need.
    Alarms(alarms::Args),
    /// Show what the evaluator would do now, from live metrics and capacity; changes nothing.
    /// Exit status: 0 no changes, 2 changes, 1 error.
    Plan(plan::Args),
    /// Replay the policies (and a proposed set) over the last days of CloudWatch history with a
    /// simulated fleet, beside the capacity that really ran.
    Backtest(backtest::Args),
    /// Print the evaluator's decisions from its decision log, newest first, per resource.
    History(history::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand; its exit status, unless it failed.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema => schema::run(),
        Command::Simulate(args) => simulate::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::History(args) => history::run(&args),
        Command::Scenarios(args) => scenarios::run(&args),
        Command::Alarms(args) => return alarms::run(&args),
        Command::Plan(args) => return plan::run(&args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// Prints an error once: a policy report as it renders itself (every line already says
/// `error:`), anything else as `error: ` and its cause chain.
fn print_error(error: &anyhow::Error) {
    match error.downcast_ref::<Report>() {
        Some(report) => eprintln!("{report}"),
        None => eprintln!("error: {error:#}"),
    }
}
