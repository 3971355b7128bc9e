//! One pass's decisions over many policies at once: each policy decides, the cross-resource
//! guards run over all the decisions, the policies the guards' requests address decide again
//! answering them, and the guards have the last word over the answers too.

use chrono::{DateTime, Utc};
use serde::Serialize;

use capstan_policy::model::Policy;

use crate::decide::{decide, decide_answering};
use crate::decision::Decision;
use crate::guards::{GuardRequest, apply_guards};
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
    pub requests: Vec<GuardRequest>,
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
    use crate::{Change, Direction};

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
            matches!(&round.requests[..], [GuardRequest::ShedConnections { policy, to: 1, .. }] if policy == "orders"),
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

    #[test]
    fn the_longest_durations_a_policy_may_name_decide_without_overflow() {
        // A schedule lasting 9999999999999d used to pass validation and make every decision
        // on its policy panic (chrono's range overflowed); durations now end at 3650d.
        let text = "
version: 1
name: web
target: { ecs_service: { cluster: prod, service: web } }
capacity: { min: 1, max: 10 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 455d }
scale_out:
  - { when: { metric: cpu, above: 70, for: 3640d }, add: 2 }
scale_in:
  - { when: { metric: cpu, below: 30, for: 3640d }, remove: 1 }
schedule:
  - { name: decade, cron: '0 17 * * FRI', timezone: UTC, duration: 3650d, min: 2 }
guards:
  cooldown: { out: 3650d, in: 3650d }
  stabilization: { in: 3650d }
  rate_limit: { in: { units: 1, per: 3650d } }
  scale_in_pacing: { max_per_interval: 1, interval: 3650d, drain: 3650d }
";
        let source = capstan_policy::Source {
            path: "web.yaml".into(),
            text: text.into(),
        };
        let set = capstan_policy::PolicySet::from_sources(vec![source])
            .unwrap_or_else(|report| panic!("{report}"));
        let web = &set.policies()[0];
        let current = capacity(3);
        let change = |direction| Change {
            at: now() - chrono::TimeDelta::minutes(1),
            direction,
            from: 3,
            to: 3,
        };
        for changes in [
            vec![],
            vec![change(Direction::Out)],
            vec![change(Direction::In)],
        ] {
            let state = ResourceState {
                changes,
                ..ResourceState::default()
            };
            let subject = Subject {
                policy: web,
                current: &current,
                state: &state,
            };
            let round = decide_all(&[subject], &[web], &Observations::new(), now());
            assert_eq!(round.decisions[0].desired, 3, "{}", round.decisions[0]);
        }
    }
}
