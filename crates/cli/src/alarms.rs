//! `capstan alarms diff --stack NAME [--endpoint URL] [--prefix P] [PATH...]`: what the alarm
//! sync of the stack would create, change and delete, computed exactly as the alarm-sync
//! function computes it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use capstan_aws::CloudWatchAlarms;
use capstan_engine::alarms::{self, AlarmNamespace, DEFAULT_PREFIX};
use capstan_policy::PolicySet;
use clap::builder::NonEmptyStringValueParser;

/// Arguments of `capstan alarms`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the alarms.
    #[command(subcommand)]
    command: Command,
}

/// The `alarms` subcommands.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the alarms a sync would create, change and delete. Exits 0 when the alarms match
    /// the policies, 2 when a sync would change something, 1 on error.
    Diff(DiffArgs),
}

/// Arguments of `capstan alarms diff`.
#[derive(Debug, clap::Args)]
struct DiffArgs {
    /// Send the CloudWatch calls to this endpoint (e.g. an emulator). By default, AWS's own,
    /// with the usual credential and region chain.
    #[arg(long)]
    endpoint: Option<String>,
    /// The stack whose alarms to compare (its CloudFormation stack name, `CAPSTAN_STACK` of its
    /// alarm-sync function).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    stack: String,
    /// Prefix of the alarms capstan manages (the stack's `AlarmPrefix`).
    #[arg(long, default_value = DEFAULT_PREFIX, value_parser = NonEmptyStringValueParser::new())]
    prefix: String,
    /// Policy files or directories (a directory stands for its *.yaml and *.yml files).
    #[arg(default_value = "policies/")]
    paths: Vec<PathBuf>,
}

/// Prints the plan; the exit code says whether it changes anything. Names held by alarms
/// capstan does not own are an error, as they are for the sync.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Command::Diff(args) = &args.command;
    let namespace = AlarmNamespace::new(&args.prefix, &args.stack)?;
    let set = PolicySet::load(&args.paths)?;
    let desired = alarms::desired(set.policies(), &namespace);
    let plan = tokio::runtime::Runtime::new()?.block_on(async {
        let config = capstan_aws::load_config(args.endpoint.as_deref()).await;
        CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(&config))
            .plan(&namespace, desired)
            .await
    })?;
    writeln!(std::io::stdout().lock(), "{plan}")?;
    if !plan.conflicts.is_empty() {
        bail!(
            "{} alarm name(s) capstan needs are held by alarms it does not own; the sync refuses to run until they are renamed",
            plan.conflicts.len()
        );
    }
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
