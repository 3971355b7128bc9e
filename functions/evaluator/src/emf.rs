//! CloudWatch metrics in the Embedded Metric Format: one log record per decision, which
//! CloudWatch Logs turns into metrics in the `Capstan` namespace, per policy and target kind and
//! across all policies. The dashboard and alarms of `template.yaml` read them.
//!
//! See <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use capstan_runner::{Outcome, Status};

/// The metrics' namespace.
pub const NAMESPACE: &str = "Capstan";

/// The metrics of one outcome, each a count of 0 or 1, in the order they are declared.
fn counts(outcome: &Outcome) -> [(&'static str, u32); 5] {
    let decided = outcome.decision.is_some();
    let actuated = matches!(
        outcome.result,
        Status::Applied | Status::AppliedNotRecorded(_)
    );
    let blocked = outcome
        .decision
        .as_ref()
        .is_some_and(|decision| decision.blocked_by().is_some());
    let failed = matches!(
        outcome.result,
        Status::Failed(_) | Status::AppliedNotRecorded(_)
    ) || !outcome.warnings.is_empty();
    [
        // A decision was made (not when capacity or state could not be read).
        ("Decisions", u32::from(decided)),
        // A change was applied.
        ("Actuations", u32::from(actuated)),
        // A guard kept a requested change from taking effect (see `Decision::blocked_by`).
        ("BlockedByGuard", u32::from(blocked)),
        // Reading, acting or recording failed, or something went wrong around the result (a
        // metric that could not be read, a lease that could not be given back: its warnings).
        ("Errors", u32::from(failed)),
        // The pass reached its deadline before evaluating or acting on it.
        ("Deferred", u32::from(outcome.result == Status::Deferred)),
    ]
}

/// The EMF record of `outcome`, for a policy whose target is of kind `target_kind` (e.g.
/// `ecs_service`), stamped `at`: the dimensions `Policy` and `TargetKind`, and the counts
/// `Decisions`, `Actuations`, `BlockedByGuard`, `Errors` and `Deferred`, under the dimension sets
/// `[Policy, TargetKind]` and `[]`.
pub fn record(outcome: &Outcome, target_kind: &str, at: DateTime<Utc>) -> Value {
    let counts = counts(outcome);
    let metrics: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({ "Name": name, "Unit": "Count" }))
        .collect();
    let mut record = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Policy", "TargetKind"], []],
                "Metrics": metrics,
            }],
        },
        "Policy": outcome.policy,
        "TargetKind": target_kind,
    });
    for (name, count) in counts {
        record[name] = json!(count);
    }
    record
}

#[cfg(test)]
mod tests {
    use capstan_engine::model::Target;
    use capstan_engine::{Clamp, ClampKind, Decision};

    use super::*;
    use crate::testing::outcome;

    /// A decision of `web` on its ECS service.
    fn decision(current: u32, desired: u32, clamps: Vec<Clamp>) -> Decision {
        let target = Target::EcsService {
            cluster: "shop".into(),
            service: "web".into(),
        };
        crate::testing::decision(target, current, desired, clamps)
    }

    fn values(record: &Value) -> [u64; 5] {
        [
            "Decisions",
            "Actuations",
            "BlockedByGuard",
            "Errors",
            "Deferred",
        ]
        .map(|name| record[name].as_u64().unwrap_or_else(|| panic!("{name}")))
    }

    #[test]
    fn the_record_follows_the_emf_specification() {
        let at: DateTime<Utc> = "2026-11-20T12:00:05.250Z".parse().unwrap();
        let record = record(
            &outcome(Some(decision(2, 4, vec![])), Status::Applied),
            "ecs_service",
            at,
        );
        assert_eq!(
            record,
            json!({
                "_aws": {
                    "Timestamp": 1_795_176_005_250_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Capstan",
                        "Dimensions": [["Policy", "TargetKind"], []],
                        "Metrics": [
                            { "Name": "Decisions", "Unit": "Count" },
                            { "Name": "Actuations", "Unit": "Count" },
                            { "Name": "BlockedByGuard", "Unit": "Count" },
                            { "Name": "Errors", "Unit": "Count" },
                            { "Name": "Deferred", "Unit": "Count" },
                        ],
                    }],
                },
                "Policy": "web",
                "TargetKind": "ecs_service",
                "Decisions": 1,
                "Actuations": 1,
                "BlockedByGuard": 0,
                "Errors": 0,
                "Deferred": 0,
            })
        );
    }

    #[test]
    fn each_outcome_counts_what_happened() {
        let at = Utc::now();
        let busy = Clamp {
            kind: ClampKind::ResourceBusy,
            from: 4,
            to: 2,
            detail: "deployment in progress".into(),
        };
        let step = Clamp {
            kind: ClampKind::MaxStep,
            from: 6,
            to: 4,
            detail: "max_step.out is 2".into(),
        };
        let cases = [
            (
                outcome(Some(decision(2, 2, vec![])), Status::Unchanged),
                [1, 0, 0, 0, 0],
            ),
            (
                outcome(Some(decision(2, 2, vec![busy])), Status::Unchanged),
                [1, 0, 1, 0, 0],
            ),
            (
                outcome(Some(decision(2, 4, vec![step])), Status::Applied),
                [1, 1, 0, 0, 0],
            ),
            (
                outcome(Some(decision(2, 4, vec![])), Status::WouldApply),
                [1, 0, 0, 0, 0],
            ),
            (
                outcome(
                    Some(decision(2, 4, vec![])),
                    Status::AppliedNotRecorded("table gone".into()),
                ),
                [1, 1, 0, 1, 0],
            ),
            (
                outcome(
                    Some(decision(2, 4, vec![])),
                    Status::Failed("throttled".into()),
                ),
                [1, 0, 0, 1, 0],
            ),
            (
                outcome(None, Status::Failed("not found".into())),
                [0, 0, 0, 1, 0],
            ),
            (outcome(None, Status::Deferred), [0, 0, 0, 0, 1]),
            (
                Outcome {
                    warnings: vec!["CPUUtilization could not be read".into()],
                    ..outcome(Some(decision(2, 2, vec![])), Status::Unchanged)
                },
                [1, 0, 0, 1, 0],
            ),
            (
                outcome(Some(decision(2, 4, vec![])), Status::Deferred),
                [1, 0, 0, 0, 1],
            ),
        ];
        for (outcome, expected) in cases {
            assert_eq!(
                values(&record(&outcome, "ecs_service", at)),
                expected,
                "{outcome}"
            );
        }
    }
}
