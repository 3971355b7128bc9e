//! Validated policies built directly, for other crates' tests (the `test-util` feature, for
//! `[dev-dependencies]` only). [`policy`] is what validation makes of a file that gives only a
//! name, a target and capacity 1..=10, so its defaults are validation's; a test sets the
//! fields it is about, e.g. `Policy { scale_out: vec![rule(...)], ..policy("web", target) }`.

use std::collections::BTreeMap;

use crate::model::{
    Capacity, Condition, Connections, DEFAULT_TOLERANCE, Database, Datapoints, Guards, MetricQuery,
    Policy, Rule, Statistic, Step, Target, Threshold,
};

/// A policy named `name`, read from `policies/<name>.yaml`, that scales `target` within
/// 1..=10, with no metrics, rules or schedules and the default guards.
pub fn policy(name: &str, target: Target) -> Policy {
    Policy {
        name: name.into(),
        file: format!("policies/{name}.yaml"),
        target,
        capacity: Capacity { min: 1, max: 10 },
        metrics: BTreeMap::new(),
        scale_out: Vec::new(),
        scale_in: Vec::new(),
        track: Vec::new(),
        tolerance: DEFAULT_TOLERANCE,
        schedules: Vec::new(),
        forecast: None,
        guards: Guards::default(),
        paused: false,
        priority: 0,
        databases: BTreeMap::new(),
        connections: None,
        replicas: None,
    }
}

/// The ECS metric `metric` (e.g. `CPUUtilization`) of the service `service`, averaged over
/// periods of `period_secs`.
pub fn ecs_query(service: &str, metric: &str, period_secs: u32) -> MetricQuery {
    MetricQuery {
        namespace: "AWS/ECS".into(),
        name: metric.into(),
        dimensions: BTreeMap::from([("ServiceName".into(), service.into())]),
        stat: Statistic::Average,
        period_secs,
        math: None,
    }
}

/// A rule: at least `breaching` of the last `window` datapoints of `metric` beyond `threshold`.
pub fn rule(metric: &str, threshold: Threshold, breaching: u32, window: u32, step: Step) -> Rule {
    Rule {
        when: Condition {
            metric: metric.into(),
            threshold,
            window: Datapoints { breaching, window },
        },
        step,
    }
}

/// A policy's `databases` declaring one, `name`, at `max_connections` with no reserve.
pub fn databases(name: &str, max_connections: u32) -> BTreeMap<String, Database> {
    BTreeMap::from([(
        name.to_owned(),
        Database {
            max_connections,
            reserve: 0,
            source: "declared".into(),
        },
    )])
}

/// `per_task` connections to `database` per unit, which writes (not read-only).
pub fn connections(database: &str, per_task: u32) -> Connections {
    Connections {
        database: database.into(),
        per_task,
        read_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::policy;
    use crate::model::Target;
    use crate::{PolicySet, Source};

    #[test]
    fn the_policy_is_what_validation_makes_of_a_file_with_only_a_name_a_target_and_bounds() {
        let text = "version: 1\nname: web\ntarget: { autoscaling_group: { name: web-asg } }\ncapacity: { min: 1, max: 10 }\n";
        let source = Source {
            path: "policies/web.yaml".into(),
            text: text.into(),
        };
        let set = PolicySet::from_sources(vec![source]).unwrap_or_else(|report| panic!("{report}"));
        let built = policy(
            "web",
            Target::AutoscalingGroup {
                name: "web-asg".into(),
            },
        );
        // `Policy` holds parsed cron expressions, which have no equality: compare through `Debug`.
        assert_eq!(format!("{built:#?}"), format!("{:#?}", set.policies()[0]));
    }
}
