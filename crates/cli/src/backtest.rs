//! `capstan backtest POLICIES`: replays the policies (and, with `--against`, a second set, such
//! as a pull request's) over the last `--since` of CloudWatch history, read through
//! `capstan-aws`, with the real engine and a simulated fleet (all logic in
//! `capstan_sim::backtest`), and prints each set's figures beside the capacity that really ran.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};

use capstan_aws::{CloudWatchReader, DynamoStateStore};
use capstan_policy::PolicySet;
use capstan_policy::model::{Duration, Policy};
use capstan_sim::backtest::history::{History, Resolution, queries};
use capstan_sim::backtest::{PolicySetToReplay, backtest, report};
use capstan_sim::output::{self, Format};

/// Arguments of `capstan backtest`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 replayed, 1 an error (history that could not be read, no policy \
                  that could be replayed, --since beyond CloudWatch's retention, an unreadable \
                  --against), 2 an argument that does not parse."
)]
pub struct Args {
    /// Policy files or directories: the set running now.
    #[arg(required = true, value_name = "POLICIES")]
    paths: Vec<PathBuf>,
    /// How much history to replay, up to CloudWatch's retention: 15d of one-minute datapoints,
    /// 63d of five-minute ones (the finer is read whenever it is kept).
    #[arg(long, default_value = "14d")]
    since: Duration,
    /// A directory of a second policy set, replayed beside the first (a pull request's).
    #[arg(long)]
    against: Option<PathBuf>,
    /// Write an SVG plot of demand and capacity here (with several policies, one file each,
    /// named `<stem>-<policy>.svg`).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Output format: human, csv or json.
    #[arg(long, default_value = "human")]
    output: Format,
    /// Time from a scale-out to the new units serving, in the replayed fleets.
    #[arg(long, default_value = "3m")]
    warmup: Duration,
    /// The evaluator's DynamoDB state table: the capacity history of a resource without
    /// capacity metrics is read from capstan's decision log there.
    #[arg(long)]
    state_table: Option<String>,
    /// Send every AWS call to this endpoint, e.g. an emulator's. By default, AWS's own
    /// endpoints; credentials and region come from the SDK's default chain.
    #[arg(long)]
    endpoint: Option<String>,
}

/// Reads the history, replays the sets, prints the report and writes the plots.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let resolution = Resolution::for_span(args.since)?;
    let current = PolicySet::load(&args.paths)?;
    let against = args.against.as_deref().map(load_against).transpose()?;
    let mut sets = vec![PolicySetToReplay {
        name: "current",
        policies: current.policies(),
    }];
    if let Some(against) = &against {
        sets.push(PolicySetToReplay {
            name: "proposed",
            policies: against.policies(),
        });
    }

    let period = resolution.period();
    let end = Utc::now()
        .duration_trunc(period)
        .context("cannot round the time")?;
    let start = (end - args.since.as_delta())
        .duration_trunc(period)
        .context("cannot round the time")?;
    eprintln!(
        "reading {} of {}-minute datapoints from CloudWatch...",
        args.since,
        resolution.period_secs / 60
    );
    let history = read(args, &sets, resolution, start, end)?;
    let result = backtest(
        &sets,
        &history,
        resolution,
        args.warmup.as_delta(),
        |policy, set| {
            eprintln!("replaying {policy} ({set})...");
        },
    );
    std::io::stdout()
        .lock()
        .write_all(report::render(&result, args.output).as_bytes())?;

    if let Some(path) = &args.plot {
        let replayed: Vec<_> = result
            .policies
            .iter()
            .filter(|p| !p.runs.is_empty())
            .collect();
        for policy in &replayed {
            let file = match replayed.len() {
                1 => path.clone(),
                _ => per_policy(path, &policy.policy),
            };
            let title = format!("{}: backtest", policy.policy);
            output::plot(&file, &title, &policy.runs, policy.load).map_err(anyhow::Error::msg)?;
            eprintln!("plot written to {}", file.display());
        }
    }
    match result
        .policies
        .iter()
        .filter(|p| p.skipped.is_some())
        .count()
    {
        skipped if skipped == result.policies.len() => {
            anyhow::bail!("no policy could be replayed")
        }
        _ => Ok(()),
    }
}

/// The `--against` set, from a directory that must be readable.
fn load_against(dir: &Path) -> anyhow::Result<PolicySet> {
    std::fs::read_dir(dir)
        .with_context(|| format!("--against {}: not a readable directory", dir.display()))?;
    Ok(PolicySet::load(&[dir.to_path_buf()])?)
}

/// `path` with `-<policy>` added to its stem.
fn per_policy(path: &Path, policy: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "backtest".into(), |s| s.to_string_lossy().into_owned());
    let extension = path
        .extension()
        .map_or_else(|| "svg".into(), |e| e.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-{policy}.{extension}"))
}

/// Every metric and capacity series of `sets` from `start` to `end`, through CloudWatch, and
/// with `--state-table` each resource's decision log.
fn read(
    args: &Args,
    sets: &[PolicySetToReplay<'_>],
    resolution: Resolution,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<History> {
    let policies: Vec<&Policy> = sets.iter().flat_map(|set| set.policies).collect();
    let queries = queries(policies.iter().copied(), resolution);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let config = runtime.block_on(capstan_aws::load_config(args.endpoint.as_deref()));
    let observations = runtime.block_on(
        CloudWatchReader::new(aws_sdk_cloudwatch::Client::new(&config))
            .read_history(&queries, start, end),
    )?;
    let mut history = History {
        start,
        minutes: usize::try_from((end - start).num_minutes())?,
        observations,
        logged: BTreeMap::new(),
    };
    if let Some(table) = &args.state_table {
        let store = DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), table);
        for policy in policies {
            if !history.needs_decision_log(&policy.target, resolution.period_secs) {
                continue;
            }
            let capacity = runtime.block_on(store.logged_capacity(&policy.target, start, end))?;
            history.logged.insert(policy.target.clone(), capacity);
        }
    }
    Ok(history)
}
