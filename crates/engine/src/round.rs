//! One pass's decisions over many policies at once: each policy decides, the cross-resource
//! guards run over all the decisions, the policies the guards' requests address decide again
//! answering them, and the guards have the last word over the answers too.

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_policy::model::Policy;

use crate::decide::{decide, decide_answering};
use crate::decision::Decision;
use crate::guards::{Request, apply_guards};
use crate::observe::{CurrentCapacity, Observations, ResourceState};

/// What one policy is decided from in a [`decide_all`] round, besides the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Its resource's capacity now.
    pub current: &'a CurrentCapacity,
    /// What earlier evaluations of it left to remember.
    pub state: &'a ResourceState,
}

/// The outcome of a [`decide_all`] round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    /// One decision per subject, in the order given.
    pub decisions: Vec<Decision>,
    /// What the cross-resource guards asked policies for (read replicas, partitions, a user
    /// shedding connections), whether or not the policy asked is among the subjects.
    pub requests: Vec<Request>,
}

/// Decides for every subject at `now`, then applies the cross-resource guards (see
/// [`crate::guards`]) over all the decisions at once. `all` is the whole policy set, so that a
/// budget's users that are not subjects are still charged for. A subject that a guard's request
/// addresses decides again, answering it (the `requests` module says how), and the guards then
/// run once more over every decision, answers included. Pure and deterministic.
pub fn decide_all(
    subjects: &[Subject<'_>],
    all: &[&Policy],
    observations: &Observations,
    now: DateTime<Utc>,
) -> Round {
    let first = subjects
        .iter()
        .map(|subject| {
            decide(
                subject.policy,
                observations,
                subject.current,
                subject.state,
                now,
            )
        })
        .collect();
    let guarded = apply_guards(all, first);
    let requests = guarded.requests;
    let addressed = |subject: &Subject<'_>| {
        requests
            .iter()
            .any(|request| request.addressee() == Some(subject.policy.name.as_str()))
    };
    if !subjects.iter().any(addressed) {
        return Round {
            decisions: guarded.decisions,
            requests,
        };
    }
    // `apply_guards` keeps the order: one decision back for each subject.
    let answered = subjects
        .iter()
        .zip(guarded.decisions)
        .map(|(subject, guarded)| {
            if addressed(subject) {
                decide_answering(
                    subject.policy,
                    observations,
                    subject.current,
                    subject.state,
                    now,
                    &requests,
                )
            } else {
                guarded
            }
        })
        .collect();
    Round {
        decisions: apply_guards(all, answered).decisions,
        requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{capacity, database, now, user};

    /// `checkout` (priority 10), which declares orders-db at 200 connections, and `orders`
    /// (priority 0), both using it at 50 connections per task, at least 1 task each.
    fn users_of_a_200_connection_budget() -> (Policy, Policy) {
        let mut checkout = user("checkout", 10, 1);
        checkout.databases = database(200);
        (checkout, user("orders", 0, 1))
    }

    /// A round over `subjects`, each at 3 tasks with nothing remembered, no metrics read.
    fn round_at_3_tasks(subjects: &[&Policy], all: &[&Policy]) -> Round {
        let (current, state) = (capacity(3), ResourceState::default());
        let subjects: Vec<Subject<'_>> = subjects
            .iter()
            .map(|policy| Subject {
                policy,
                current: &current,
                state: &state,
            })
            .collect();
        decide_all(&subjects, all, &Observations::new(), now())
    }

    #[test]
    fn a_user_over_its_budget_is_asked_to_shed_and_answers_in_the_same_round() {
        // Both users run 3 tasks: 300 connections of orders-db's 200.
        let (checkout, orders) = users_of_a_200_connection_budget();
        let round = round_at_3_tasks(&[&checkout, &orders], &[&checkout, &orders]);
        assert!(
            matches!(&round.requests[..], [Request::ShedConnections { policy, to: 1, .. }] if policy == "orders"),
            "{:?}",
            round.requests
        );
        let desired: Vec<(&str, u32)> = round
            .decisions
            .iter()
            .map(|decision| (decision.policy.as_str(), decision.desired))
            .collect();
        assert_eq!(desired, [("checkout", 3), ("orders", 1)]);
        assert_eq!(
            round.decisions[1].explanation.fired.as_deref(),
            Some("request")
        );
    }

    #[test]
    fn a_request_to_a_policy_outside_the_round_is_returned_and_changes_no_subject() {
        let (checkout, orders) = users_of_a_200_connection_budget();
        // orders is not read in this round; it is charged at its capacity.max (10 tasks), so
        // checkout may not grow, but nothing is asked of checkout either.
        let round = round_at_3_tasks(&[&checkout], &[&checkout, &orders]);
        assert_eq!(round.decisions.len(), 1);
        assert_eq!(round.decisions[0].desired, 3);
        assert!(
            round
                .requests
                .iter()
                .all(|request| request.addressee() != Some("checkout")),
            "{:?}",
            round.requests
        );
    }
}
