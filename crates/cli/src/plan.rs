//! `capstan plan [PATH...]`: what the evaluator would do now, read from live state, changing
//! nothing. Loads the policies as `capstan validate` does, reads metrics, capacity and
//! (optionally) cooldown state through `capstan-aws`, runs one pass of `capstan-runner` in
//! [`Mode::DryRun`] and prints each policy's resource, current -> desired, the rule and clamps
//! behind it, and what the cross-resource guards ask of other policies. The exit status tells
//! "no changes" (0) from "changes" (2); 1 is an error.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_aws::Aws;
use capstan_engine::model::{Policy, Target};
use capstan_engine::{Clamp, GuardRequest, ResourceState};
use capstan_policy::PolicySet;
use capstan_runner::ports::{Lease, SaveError, StateStore};
use capstan_runner::{Limits, Mode, Outcome, Pass, Ports, Status, evaluate};

/// The exit status of a plan with at least one change.
pub const CHANGES: u8 = 2;

/// Arguments of `capstan plan`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 no changes, 2 changes, 1 error (including a policy whose \
                        resource or state could not be read)."
)]
pub struct Args {
    /// Policy files or directories (a directory stands for its *.yaml and *.yml files).
    #[arg(default_value = "policies/")]
    paths: Vec<PathBuf>,
    /// Send every AWS call to this endpoint, e.g. an emulator's. By default, AWS's own
    /// endpoints; credentials and region come from the SDK's default chain.
    #[arg(long)]
    endpoint: Option<String>,
    /// The evaluator's DynamoDB state table, to honour running cooldowns and pacing. Without
    /// it, plan assumes no earlier actions and says so.
    #[arg(long)]
    state_table: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// How the plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// One row per policy, then each decision's explanation.
    Table,
    /// One JSON document with every decision in full.
    Json,
}

/// The plan of one policy.
#[derive(Debug, Serialize)]
struct Row<'a> {
    policy: &'a str,
    target: String,
    target_kind: &'static str,
    /// What the capacity counts: tasks, instances, replicas, partitions or brokers.
    unit: &'static str,
    status: Verdict,
    current: Option<u32>,
    desired: Option<u32>,
    /// The rule whose proposal was taken, e.g. `scale_out[0]`.
    rule: Option<&'a str>,
    clamps: &'a [Clamp],
    /// The explanation in one sentence, or why there is no decision.
    why: String,
    /// The runner's outcome in full.
    outcome: &'a Outcome,
}

/// What the evaluator would do for a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    /// It would change the capacity.
    Change,
    /// It would leave the capacity as it is.
    NoChange,
    /// Capacity or state could not be read: it would not act.
    Failed,
}

/// The whole plan, as `--output json` prints it.
#[derive(Debug, Serialize)]
struct Plan<'a> {
    at: DateTime<Utc>,
    endpoint: Option<&'a str>,
    state_table: Option<&'a str>,
    changes: usize,
    failed: usize,
    policies: Vec<Row<'a>>,
    /// What the cross-resource guards ask of other policies.
    requests: &'a [GuardRequest],
}

/// Plans every policy; prints the plan and returns its exit status, or fails when any
/// policy could not be evaluated (after printing the plan).
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let set = PolicySet::load(&args.paths)?;
    let policies: Vec<&Policy> = set.policies().iter().collect();
    let at = Utc::now();
    let pass = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(evaluate_all(args, &policies, at));

    let rows: Vec<Row<'_>> = policies
        .iter()
        .zip(&pass.outcomes)
        .map(|(policy, outcome)| row(policy, outcome))
        .collect();
    let count = |status| rows.iter().filter(|row| row.status == status).count();
    let plan = Plan {
        at,
        endpoint: args.endpoint.as_deref(),
        state_table: args.state_table.as_deref(),
        changes: count(Verdict::Change),
        failed: count(Verdict::Failed),
        policies: rows,
        requests: &pass.requests,
    };
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&plan)? + "\n",
        Output::Table => table(&plan),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    match (plan.failed, plan.changes) {
        (0, 0) => Ok(ExitCode::SUCCESS),
        (0, _) => Ok(ExitCode::from(CHANGES)),
        (failed, _) => anyhow::bail!(
            "{failed} of {} policies could not be evaluated; the evaluator would not act on them",
            plan.policies.len()
        ),
    }
}

/// One dry-run pass over `policies` at `at`, through AWS at `args.endpoint`.
async fn evaluate_all(args: &Args, policies: &[&Policy], at: DateTime<Utc>) -> Pass {
    let config = capstan_aws::load_config(args.endpoint.as_deref()).await;
    // Without a state table the adapter's own state store is never used.
    let aws = Aws::new(&config, args.state_table.clone().unwrap_or_default());
    match args.state_table {
        Some(_) => dry_run(policies, &aws, aws.state(), at).await,
        None => dry_run(policies, &aws, &NoEarlierActions, at).await,
    }
}

async fn dry_run<S: StateStore + Sync>(
    policies: &[&Policy],
    aws: &Aws,
    state: &S,
    at: DateTime<Utc>,
) -> Pass {
    let ports = Ports {
        metrics: aws.cloudwatch(),
        capacity: aws,
        state,
        holder: "capstan-plan",
        clock: &Utc::now,
        limits: Limits::default(),
    };
    evaluate(policies, policies, &ports, at, Mode::DryRun).await
}

/// The state store of a plan without `--state-table`: no resource was ever acted on.
struct NoEarlierActions;

/// Saving and leasing are refused: a plan records nothing (and, in a dry run, the runner asks
/// for neither).
#[derive(Debug, thiserror::Error)]
#[error("capstan plan records nothing")]
struct PlanRecordsNothing;

impl StateStore for NoEarlierActions {
    type Error = PlanRecordsNothing;

    async fn load(&self, _: &Target) -> Result<ResourceState, PlanRecordsNothing> {
        Ok(ResourceState::default())
    }

    async fn save(
        &self,
        _: &Target,
        _: &str,
        _: &ResourceState,
    ) -> Result<(), SaveError<PlanRecordsNothing>> {
        Err(SaveError::Store(PlanRecordsNothing))
    }

    async fn acquire_lease(&self, _: &Target, _: &str) -> Result<Lease, PlanRecordsNothing> {
        Err(PlanRecordsNothing)
    }

    async fn release_lease(&self, _: &Target, _: &str) -> Result<bool, PlanRecordsNothing> {
        Err(PlanRecordsNothing)
    }
}

/// The row of `policy`, given its outcome.
fn row<'a>(policy: &'a Policy, outcome: &'a Outcome) -> Row<'a> {
    let decision = outcome.decision.as_ref();
    let status = match &outcome.result {
        Status::Failed(_) => Verdict::Failed,
        _ if decision.is_some_and(|d| d.change().is_some()) => Verdict::Change,
        _ => Verdict::NoChange,
    };
    let why = match (&outcome.result, decision) {
        (_, Some(decision)) => decision.explanation.summary.clone(),
        (Status::Failed(error), None) => format!("no decision: {error}"),
        (_, None) => "no decision".to_owned(),
    };
    Row {
        policy: &policy.name,
        target: policy.target.to_string(),
        target_kind: policy.target.kind(),
        unit: unit(&policy.target),
        status,
        current: decision.map(|d| d.current),
        desired: decision.map(|d| d.desired),
        rule: decision.and_then(|d| d.explanation.fired.as_deref()),
        clamps: decision.map_or(&[], |d| d.explanation.clamps.as_slice()),
        why,
        outcome,
    }
}

/// What a target's capacity counts.
fn unit(target: &Target) -> &'static str {
    match target {
        Target::AutoscalingGroup { .. } => "instances",
        Target::EcsService { .. } => "tasks",
        Target::RdsReplicas { .. } => "replicas",
        Target::MskTopic { .. } => "partitions",
        Target::MskCluster { .. } => "brokers",
    }
}

/// The plan as a table, one row per policy, then each policy's explanation and a count.
fn table(plan: &Plan<'_>) -> String {
    let mut text = String::new();
    let state = match plan.state_table {
        Some(table) => format!("cooldown state from {table}"),
        None => "no --state-table: assuming no earlier actions (no cooldown or pacing running)"
            .to_owned(),
    };
    let _ = writeln!(text, "Plan at {}; {state}.\n", plan.at.to_rfc3339());
    let mut cells = vec![[
        "POLICY".to_owned(),
        "RESOURCE".to_owned(),
        "CURRENT -> DESIRED".to_owned(),
        "RULE".to_owned(),
        "CLAMPS".to_owned(),
    ]];
    for row in &plan.policies {
        let change = match (row.current, row.desired) {
            (Some(current), Some(desired)) => format!("{current} -> {desired} {}", row.unit),
            _ => "-".to_owned(),
        };
        let clamps = row
            .clamps
            .iter()
            .map(|clamp| {
                let kind = serde_json::to_value(clamp.kind).unwrap_or_default();
                format!(
                    "{} {}->{}",
                    kind.as_str().unwrap_or_default(),
                    clamp.from,
                    clamp.to
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        cells.push([
            row.policy.to_owned(),
            row.target.clone(),
            change,
            row.rule.unwrap_or("-").to_owned(),
            if clamps.is_empty() {
                "-".to_owned()
            } else {
                clamps
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|column| {
            cells
                .iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        let _ = writeln!(text, "{}", line.join("  ").trim_end());
    }
    text.push('\n');
    for row in &plan.policies {
        let _ = writeln!(text, "{}: {}", row.policy, row.why);
    }
    if !plan.requests.is_empty() {
        let _ = writeln!(text, "\nThe guards ask:");
        for request in plan.requests {
            let _ = writeln!(text, "  {request}");
        }
    }
    let _ = writeln!(
        text,
        "\n{} to change, {} unchanged, {} failed.",
        plan.changes,
        plan.policies
            .iter()
            .filter(|row| row.status == Verdict::NoChange)
            .count(),
        plan.failed,
    );
    text
}
