//! `capstan history [POLICIES...]`: what the evaluator decided, read back from the decision
//! log in its state table (through `capstan-aws`), newest first, per resource: when, current ->
//! desired, what came of it (applied, unchanged, blocked by which guard, failed, deferred...),
//! the rule and the clamps behind it, and the evaluation that made it.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use capstan_aws::{DynamoStateStore, LoggedEvaluation};
use capstan_policy::PolicySet;
use capstan_policy::model::{Duration, Policy};

/// Resources whose logs are read at once.
const READS_IN_FLIGHT: usize = 4;

/// Arguments of `capstan history`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 printed, 1 an error (a log that could not be read).")]
pub struct Args {
    /// Policy files or directories (a directory stands for its *.yaml and *.yml files): the
    /// resources whose decisions are shown.
    #[arg(default_value = "policies/")]
    paths: Vec<PathBuf>,
    /// How far back to look.
    #[arg(long, default_value = "2h")]
    since: Duration,
    /// The evaluator's DynamoDB state table, which holds the decision log.
    #[arg(long)]
    state_table: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    output: Output,
    /// Send every AWS call to this endpoint, e.g. an emulator's. By default, AWS's own
    /// endpoints; credentials and region come from the SDK's default chain.
    #[arg(long)]
    endpoint: Option<String>,
}

/// How the history is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// Per resource, a line per evaluation, then its explanation.
    Human,
    /// One JSON document with every logged outcome in full.
    Json,
}

/// One resource's decisions, newest first.
#[derive(Debug, Serialize)]
struct ResourceHistory<'a> {
    policy: &'a str,
    target: String,
    entries: Vec<Entry>,
}

/// One logged evaluation, as the history shows it.
#[derive(Debug, Serialize)]
struct Entry {
    at: DateTime<Utc>,
    current: Option<u64>,
    desired: Option<u64>,
    /// What came of it, e.g. `applied`, `blocked by cooldown`, `failed: ...`.
    status: String,
    /// The rule whose proposal was taken, e.g. `scale_out[0]`.
    rule: Option<String>,
    /// The clamps applied, as `kind: detail`.
    clamps: Vec<String>,
    /// The explanation in one sentence.
    why: Option<String>,
    /// The evaluation that logged it.
    evaluator: String,
    /// The outcome in full.
    outcome: Value,
}

/// Reads every policy's log and prints it.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let set = PolicySet::load(&args.paths)?;
    let end = Utc::now();
    let start = end - args.since.as_delta();
    let logs = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(read_all(args, set.policies(), start, end))?;
    let histories: Vec<ResourceHistory<'_>> = set
        .policies()
        .iter()
        .zip(logs)
        .map(|(policy, log)| ResourceHistory {
            policy: &policy.name,
            target: policy.target.to_string(),
            entries: log.into_iter().rev().map(entry).collect(),
        })
        .collect();
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&histories)? + "\n",
        Output::Human => human(&histories, args.since),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// Each policy's log from `start` to `end`, in policy order, at most [`READS_IN_FLIGHT`] read
/// at once.
async fn read_all(
    args: &Args,
    policies: &[Policy],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<Vec<Vec<LoggedEvaluation>>> {
    let config = capstan_aws::load_config(args.endpoint.as_deref()).await;
    let store = DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), &args.state_table);
    let store = &store;
    stream::iter(policies)
        .map(|policy| async move {
            store
                .decision_log(&policy.target, start, end)
                .await
                .with_context(|| format!("reading the decision log of {}", policy.name))
        })
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await
}

/// A logged evaluation as the history shows it.
fn entry(logged: LoggedEvaluation) -> Entry {
    let outcome = logged.outcome;
    let decision = &outcome["decision"];
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let clamps = decision["explanation"]["clamps"]
        .as_array()
        .map(|clamps| {
            clamps
                .iter()
                .map(|clamp| {
                    format!(
                        "{}: {}",
                        clamp["kind"].as_str().unwrap_or("?"),
                        clamp["detail"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Entry {
        at: logged.at,
        current: decision["current"].as_u64(),
        desired: decision["desired"].as_u64(),
        status: status(&outcome),
        rule: text(&decision["explanation"]["fired"]),
        clamps,
        why: text(&decision["explanation"]["summary"]),
        evaluator: logged.evaluator,
        outcome,
    }
}

/// What came of an evaluation: its result (with the detail of a failure or a lease held
/// elsewhere), or, for a change the rules asked for that the guards held back entirely,
/// `blocked by` the last clamp that did.
fn status(outcome: &Value) -> String {
    let result = &outcome["result"];
    let label = result["status"]
        .as_str()
        .unwrap_or("unknown")
        .replace('_', " ");
    let decision = &outcome["decision"];
    let explanation = &decision["explanation"];
    let held_back = decision["current"] == decision["desired"]
        && explanation["proposed"] != decision["current"];
    let blocker = explanation["clamps"]
        .as_array()
        .and_then(|clamps| clamps.last())
        .and_then(|clamp| clamp["kind"].as_str());
    match (label.as_str(), held_back, blocker) {
        ("unchanged", true, Some(kind)) => format!("blocked by {kind}"),
        ("failed", ..) => format!("failed: {}", result["detail"].as_str().unwrap_or("?")),
        ("held by", ..) => format!(
            "not evaluated: {} held the lease",
            result["detail"]["holder"].as_str().unwrap_or("?")
        ),
        _ => label,
    }
}

/// The histories for people: a header per resource, a line per evaluation, newest first, each
/// followed by its explanation and clamps.
fn human(histories: &[ResourceHistory<'_>], since: Duration) -> String {
    let mut out = String::new();
    for history in histories {
        let _ = writeln!(out, "{} ({})", history.policy, history.target);
        if history.entries.is_empty() {
            let _ = writeln!(out, "  no decisions in the last {since}");
        }
        for entry in &history.entries {
            let change = match (entry.current, entry.desired) {
                (Some(current), Some(desired)) => format!("{current} -> {desired}"),
                _ => "no decision".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {}  {:<12} {:<28} {:<14} {}",
                entry.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                change,
                entry.status,
                entry.rule.as_deref().unwrap_or("-"),
                entry.evaluator,
            );
            if let Some(why) = &entry.why {
                let _ = writeln!(out, "      {why}");
            }
            for clamp in &entry.clamps {
                let _ = writeln!(out, "      clamp {clamp}");
            }
        }
    }
    out
}
