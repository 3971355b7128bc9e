//! What the decisions topic hears: every decision a guard blocked and every failed actuation,
//! with the decision's explanation.

use serde_json::{Value, json};

use capstan_engine::model::Target;
use capstan_runner::{Mode, Outcome, Status};

/// A message for the decisions topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// A one-line subject, e.g. `capstan: web blocked by resource_busy`.
    pub subject: String,
    /// The message: why it was sent, the outcome in a sentence and in full.
    pub message: Value,
}

/// The notice for `outcome` of a policy scaling `target` in a pass run in `mode`, if it
/// deserves one: when reading, acting or recording failed, or when a guard blocked a change
/// (see `Decision::blocked_by`).
pub fn notice(outcome: &Outcome, target: &Target, mode: Mode) -> Option<Notice> {
    let blocked_by = outcome
        .decision
        .as_ref()
        .and_then(|decision| decision.blocked_by());
    let failed = matches!(
        outcome.result,
        Status::Failed(_) | Status::AppliedNotRecorded(_)
    );
    let (reason, subject) = match blocked_by {
        _ if failed => ("failed", format!("capstan: {} failed", outcome.policy)),
        Some(clamp) => (
            "blocked",
            format!(
                "capstan: {} blocked by {}",
                outcome.policy,
                json!(clamp.kind).as_str().unwrap_or_default()
            ),
        ),
        None => return None,
    };
    Some(Notice {
        subject,
        message: json!({
            "reason": reason,
            "policy": outcome.policy,
            "target": target.to_string(),
            "mode": mode,
            "summary": outcome.to_string(),
            "blocked_by": blocked_by,
            "outcome": outcome,
        }),
    })
}

#[cfg(test)]
mod tests {
    use capstan_engine::{Clamp, ClampKind, Decision};

    use super::*;
    use crate::testing::outcome;

    fn target() -> Target {
        Target::AutoscalingGroup { name: "web".into() }
    }

    /// `web` held at 2 by `clamps`, where a rule asked for 4.
    fn held(clamps: Vec<Clamp>) -> Decision {
        let mut decision = crate::testing::decision(target(), 2, 2, clamps);
        decision.explanation.summary = "paused, would scale 2 -> 4: scale_out[0] fired".into();
        decision
    }

    #[test]
    fn a_blocked_decision_is_sent_with_its_explanation() {
        let paused = Clamp {
            kind: ClampKind::Paused,
            from: 4,
            to: 2,
            detail: "the policy is paused; it would ask for 4".into(),
        };
        let outcome = outcome(Some(held(vec![paused])), Status::Unchanged);
        let notice = notice(&outcome, &target(), Mode::Act).expect("blocked");
        assert_eq!(notice.subject, "capstan: web blocked by paused");
        assert_eq!(notice.message["reason"], "blocked");
        assert_eq!(notice.message["target"], "autoscaling_group web");
        assert_eq!(notice.message["mode"], "act");
        assert_eq!(notice.message["blocked_by"]["kind"], "paused");
        assert_eq!(
            notice.message["summary"],
            "web [autoscaling_group web]: 2 -> 2 (paused, would scale 2 -> 4: scale_out[0] fired); unchanged"
        );
        assert_eq!(
            notice.message["outcome"]["decision"]["explanation"]["clamps"][0]["detail"],
            "the policy is paused; it would ask for 4"
        );
    }

    #[test]
    fn failures_are_sent_and_quiet_decisions_are_not() {
        let failed = outcome(None, Status::Failed("ecs:DescribeServices failed".into()));
        let notice = notice(&failed, &target(), Mode::Act).expect("failed");
        assert_eq!(notice.subject, "capstan: web failed");
        assert_eq!(notice.message["reason"], "failed");
        assert_eq!(notice.message["blocked_by"], Value::Null);
        assert_eq!(
            notice.message["summary"],
            "web: no decision: ecs:DescribeServices failed"
        );

        let not_recorded = outcome(
            Some(held(vec![])),
            Status::AppliedNotRecorded("table gone".into()),
        );
        assert!(notice_of(&not_recorded).is_some());

        let stepped = Clamp {
            kind: ClampKind::MaxStep,
            from: 6,
            to: 4,
            detail: "max_step.out is 2".into(),
        };
        for quiet in [
            outcome(Some(held(vec![])), Status::Unchanged),
            outcome(Some(held(vec![stepped])), Status::Applied),
            outcome(Some(held(vec![])), Status::WouldApply),
        ] {
            assert_eq!(notice_of(&quiet), None, "{quiet}");
        }
    }

    fn notice_of(outcome: &Outcome) -> Option<Notice> {
        notice(outcome, &target(), Mode::Act)
    }
}
