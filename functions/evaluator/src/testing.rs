//! Decisions and outcomes for the evaluator's unit tests.

use capstan_engine::model::Target;
use capstan_engine::{Action, Clamp, Decision, Explanation};
use capstan_runner::{Outcome, Status};

/// A decision of the policy `web` on `target`, from `current` to `desired`, with `clamps`.
pub(crate) fn decision(target: Target, current: u32, desired: u32, clamps: Vec<Clamp>) -> Decision {
    Decision {
        policy: "web".into(),
        target,
        at: "2026-11-20T12:00:00Z".parse().expect("a time"),
        current,
        in_service: current,
        running: current,
        desired,
        paused: false,
        busy: None,
        share: None,
        action: Action::between(current, desired),
        explanation: Explanation {
            clamps,
            ..Explanation::default()
        },
    }
}

/// The outcome for `web` of `decision`, with `result` and no warnings.
pub(crate) fn outcome(decision: Option<Decision>, result: Status) -> Outcome {
    Outcome {
        policy: "web".into(),
        decision,
        result,
        warnings: Vec::new(),
    }
}
