//! The CloudWatch alarms that wake the evaluator, derived from the policies, and the plan that
//! brings the alarms that exist in line with them.
//!
//! Each threshold rule (`scale_out` or `scale_in`) gets one metric alarm that goes to `ALARM`
//! exactly when the rule's condition holds, with the engine's own window semantics: the
//! policy's metric query (namespace, name, dimensions, statistic, period; for an expression
//! metric, its metric math, so the alarm is a metric math alarm), `M of N` as
//! `DatapointsToAlarm` of `EvaluationPeriods` (`for: 5m` on a one-minute metric is 5 of 5), and
//! strict thresholds (`above` is `GreaterThanThreshold`, `below` is `LessThanThreshold`, as
//! [`Threshold::is_breached_by`] decides). Target-tracking rules and schedules have no
//! threshold to alarm on; the scheduled tick evaluates them.
//!
//! Each stack keeps its alarms in its own [`AlarmNamespace`]: they are named
//! `<prefix>/<stack>/<policy>-<rule id>` (`capstan/shop-prod/web-asg-cpu-scale_out-0`) and tagged
//! [`MANAGED_TAG`], [`STACK_TAG`] (the stack's name) and [`POLICY_TAG`]. [`plan`] creates what is
//! missing, changes what differs, and deletes only the stack's own alarms: those in its
//! namespace that carry both the managed tag and its stack tag. Any other alarm is never
//! touched, whatever its name.
//!
//! ```
//! use capstan_engine::alarms::{self, AlarmNamespace, ExistingAlarm};
//! use capstan_policy::{PolicySet, Source};
//!
//! let text = "
//! version: 1
//! name: web
//! target: { autoscaling_group: { name: web-asg } }
//! capacity: { min: 2, max: 20 }
//! metrics:
//!   cpu: { namespace: AWS/EC2, name: CPUUtilization, stat: Average, period: 1m }
//! scale_out:
//!   - { when: { metric: cpu, above: 70, for: 5m }, add: 2 }
//! ";
//! let set = PolicySet::from_sources(vec![Source { path: "web.yaml".into(), text: text.into() }])?;
//! let namespace = AlarmNamespace::new("capstan", "shop-prod").expect("valid");
//! let desired = alarms::desired(set.policies(), &namespace);
//! assert_eq!(desired[0].name, "capstan/shop-prod/web-scale_out-0");
//! assert_eq!((desired[0].datapoints_to_alarm, desired[0].evaluation_periods), (5, 5));
//!
//! let stale = ExistingAlarm {
//!     name: "capstan/shop-prod/old-scale_in-0".into(),
//!     managed: true,
//!     stack: Some("shop-prod".into()),
//!     current: None,
//! };
//! let plan = alarms::plan(&namespace, desired, vec![stale]);
//! assert_eq!(plan.to_string().lines().last(), Some("1 to create, 0 to change, 1 to delete"));
//! # Ok::<(), capstan_policy::Report>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use capstan_policy::model::{MetricQuery, Policy, Rule, Threshold};

/// The tag (key, value) on every alarm capstan manages; only alarms carrying it are deleted.
pub const MANAGED_TAG: (&str, &str) = ("capstan:managed", "true");

/// The tag key whose value is the name of the stack whose alarm-sync created the alarm; a stack
/// changes and deletes only alarms carrying its own name here.
pub const STACK_TAG: &str = "capstan:stack";

/// The tag key whose value is the name of the policy an alarm serves.
pub const POLICY_TAG: &str = "capstan:policy";

/// The alarm name prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "capstan";

/// What separates the prefix, the stack and the rest of an alarm's name. Neither the prefix nor
/// a stack name may contain it (CloudFormation stack names are letters, digits and `-`).
pub const SEPARATOR: char = '/';

/// One stack's alarms: those whose names start with `<prefix>/<stack>/` (its name prefix).
///
/// Since neither part contains [`SEPARATOR`], the name prefix of one stack is never a prefix of
/// another's: `capstan/shop/` does not match `capstan/shop-stg/...`, nor `capstan-stg/shop/...`.
/// Stack names are unique within an account and region, so two stacks never share a
/// namespace; the EventBridge rule of each stack matches its own name prefix only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmNamespace {
    prefix: String,
    stack: String,
}

/// Why a prefix and stack name make no namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid alarm namespace: the {part} {value:?} {problem}")]
pub struct InvalidNamespace {
    part: &'static str,
    value: String,
    problem: &'static str,
}

impl AlarmNamespace {
    /// The namespace of the stack `stack` under `prefix`. Both must be non-empty and free of
    /// [`SEPARATOR`]: an empty prefix or stack, or one containing it, could overlap another
    /// stack's alarms.
    pub fn new(prefix: &str, stack: &str) -> Result<Self, InvalidNamespace> {
        for (part, value) in [("prefix", prefix), ("stack name", stack)] {
            let problem = if value.is_empty() {
                "is empty"
            } else if value.contains(SEPARATOR) {
                "contains '/'"
            } else {
                continue;
            };
            return Err(InvalidNamespace {
                part,
                value: value.to_owned(),
                problem,
            });
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            stack: stack.to_owned(),
        })
    }

    /// The stack's name: the value of its alarms' [`STACK_TAG`].
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Whether the alarm named `name` is in this namespace.
    pub fn contains(&self, name: &str) -> bool {
        name.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix(SEPARATOR))
            .and_then(|rest| rest.strip_prefix(&self.stack))
            .is_some_and(|rest| rest.starts_with(SEPARATOR))
    }

    /// Whether `alarm` is this stack's: in the namespace, tagged [`MANAGED_TAG`] and with this
    /// stack's [`STACK_TAG`]. Only such alarms are changed or deleted.
    pub fn owns(&self, alarm: &ExistingAlarm) -> bool {
        self.contains(&alarm.name) && alarm.managed && alarm.stack.as_deref() == Some(&self.stack)
    }
}

/// The name prefix `<prefix>/<stack>/`.
impl fmt::Display for AlarmNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}{SEPARATOR}", self.prefix, self.stack)
    }
}

/// How the alarms treat missing datapoints: `missing`, so a gap neither breaches nor clears the
/// alarm and its state stays as it was. With `breaching` or `notBreaching` every gap in a metric
/// (a quiet queue, a delayed datapoint) would flip the alarm and wake the evaluator for a
/// change of state that is not one; the evaluator applies the policy's own `missing_data`
/// rule to what it reads, and the scheduled tick catches anything an alarm stays silent about.
pub const TREAT_MISSING_DATA: &str = "missing";

/// Which side of the threshold puts an alarm in `ALARM`, named as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `GreaterThanThreshold`: the rule's `above`.
    GreaterThanThreshold,
    /// `LessThanThreshold`: the rule's `below`.
    LessThanThreshold,
}

impl Comparison {
    /// CloudWatch's name of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreaterThanThreshold => "GreaterThanThreshold",
            Self::LessThanThreshold => "LessThanThreshold",
        }
    }

    /// The operator named `name` by CloudWatch, if it is one capstan uses.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "GreaterThanThreshold" => Some(Self::GreaterThanThreshold),
            "LessThanThreshold" => Some(Self::LessThanThreshold),
            _ => None,
        }
    }
}

/// One metric alarm as capstan wants it (or as it was found).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    /// `<prefix>/<stack>/<policy>-<rule id>`.
    pub name: String,
    /// The stack whose alarm it is; the value of the [`STACK_TAG`] tag.
    pub stack: String,
    /// The policy whose rule the alarm watches; the value of the [`POLICY_TAG`] tag.
    pub policy: String,
    /// What the alarm is for, in words.
    pub description: String,
    /// The metric, statistic and period, exactly as the rule's condition reads them.
    pub metric: MetricQuery,
    /// Which side of the threshold alarms.
    pub comparison: Comparison,
    /// The rule's threshold.
    pub threshold: f64,
    /// N of `M of N`.
    pub evaluation_periods: u32,
    /// M of `M of N`.
    pub datapoints_to_alarm: u32,
    /// How missing data is treated; [`TREAT_MISSING_DATA`] for alarms capstan derives.
    pub treat_missing_data: String,
}

impl AlarmSpec {
    /// The alarm for rule `index` of `policy`'s `side` (`scale_out` or `scale_in`).
    fn for_rule(
        namespace: &AlarmNamespace,
        policy: &Policy,
        side: &str,
        index: usize,
        rule: &Rule,
    ) -> Self {
        let condition = &rule.when;
        let (comparison, threshold) = match condition.threshold {
            Threshold::Above(limit) => (Comparison::GreaterThanThreshold, limit),
            Threshold::Below(limit) => (Comparison::LessThanThreshold, limit),
        };
        Self {
            name: format!("{namespace}{}-{side}-{index}", policy.name),
            stack: namespace.stack.clone(),
            policy: policy.name.clone(),
            description: format!(
                "capstan: wakes the evaluator when {side}[{index}] of policy {} may fire ({} {}, {} of {} datapoints)",
                policy.name,
                condition.metric,
                condition.threshold,
                condition.window.breaching,
                condition.window.window
            ),
            metric: policy.metric(&condition.metric).clone(),
            comparison,
            threshold,
            evaluation_periods: condition.window.window,
            datapoints_to_alarm: condition.window.breaching,
            treat_missing_data: TREAT_MISSING_DATA.to_owned(),
        }
    }

    /// The tags capstan puts on the alarm: [`MANAGED_TAG`], [`STACK_TAG`] and [`POLICY_TAG`].
    pub fn tags(&self) -> [(&str, &str); 3] {
        [
            MANAGED_TAG,
            (STACK_TAG, &self.stack),
            (POLICY_TAG, &self.policy),
        ]
    }

    /// What differs from `old` to `self`, one `field: old -> new` entry per field.
    fn differences_from(&self, old: &Self) -> Vec<String> {
        let fields = [
            ("policy", old.policy.clone(), self.policy.clone()),
            ("metric", old.metric.to_string(), self.metric.to_string()),
            (
                "comparison",
                old.comparison.as_str().to_owned(),
                self.comparison.as_str().to_owned(),
            ),
            (
                "threshold",
                old.threshold.to_string(),
                self.threshold.to_string(),
            ),
            (
                "datapoints",
                format!("{} of {}", old.datapoints_to_alarm, old.evaluation_periods),
                format!(
                    "{} of {}",
                    self.datapoints_to_alarm, self.evaluation_periods
                ),
            ),
            (
                "treat missing data",
                old.treat_missing_data.clone(),
                self.treat_missing_data.clone(),
            ),
            (
                "description",
                old.description.clone(),
                self.description.clone(),
            ),
        ];
        fields
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(field, old, new)| format!("{field}: {old} -> {new}"))
            .collect()
    }
}

impl fmt::Display for AlarmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.comparison {
            Comparison::GreaterThanThreshold => ">",
            Comparison::LessThanThreshold => "<",
        };
        write!(
            f,
            "{}: {} {operator} {} in {} of {} datapoints",
            self.name,
            self.metric,
            self.threshold,
            self.datapoints_to_alarm,
            self.evaluation_periods
        )
    }
}

/// The alarms `policies` need, one per threshold rule, scale-out rules first, in `namespace`.
pub fn desired<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    namespace: &AlarmNamespace,
) -> Vec<AlarmSpec> {
    policies
        .into_iter()
        .flat_map(|policy| {
            [
                ("scale_out", &policy.scale_out),
                ("scale_in", &policy.scale_in),
            ]
            .into_iter()
            .flat_map(move |(side, rules)| {
                rules.iter().enumerate().map(move |(index, rule)| {
                    AlarmSpec::for_rule(namespace, policy, side, index, rule)
                })
            })
        })
        .collect()
}

/// An alarm that exists, as found in CloudWatch.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingAlarm {
    /// Its name.
    pub name: String,
    /// Whether it carries [`MANAGED_TAG`].
    pub managed: bool,
    /// The value of its [`STACK_TAG`], if it has one (alarms capstan made before stacks were
    /// told apart have none: no stack owns them, see [`AlarmNamespace::owns`]).
    pub stack: Option<String>,
    /// Its settings, or `None` when it is not a single-metric alarm capstan can read (it is then
    /// rewritten if the stack owns and needs it).
    pub current: Option<AlarmSpec>,
}

/// An alarm to rewrite, with what changes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    /// The alarm as it will be.
    pub spec: AlarmSpec,
    /// What changes, `field: old -> new`.
    pub differences: Vec<String>,
}

/// What a sync does: the same plan is printed by `capstan alarms diff` and applied by the
/// alarm-sync function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmPlan {
    /// Alarms to create.
    pub create: Vec<AlarmSpec>,
    /// The stack's alarms to rewrite.
    pub change: Vec<AlarmChange>,
    /// The stack's alarms that no policy needs any more.
    pub delete: Vec<String>,
    /// Alarms that are already as they should be.
    pub unchanged: Vec<String>,
    /// Names the stack needs that an alarm it does not own already has. capstan never touches
    /// such an alarm, so a plan with conflicts must not be applied.
    pub conflicts: Vec<String>,
}

impl AlarmPlan {
    /// Whether applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.change.is_empty() && self.delete.is_empty()
    }
}

impl fmt::Display for AlarmPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for spec in &self.create {
            writeln!(f, "+ create {spec}")?;
        }
        for change in &self.change {
            writeln!(f, "~ change {}", change.spec)?;
            for difference in &change.differences {
                writeln!(f, "    {difference}")?;
            }
        }
        for name in &self.delete {
            writeln!(f, "- delete {name}")?;
        }
        for name in &self.conflicts {
            writeln!(
                f,
                "! conflict {name}: an alarm without the tags {}={} and this stack's {STACK_TAG} has this name; capstan leaves it alone",
                MANAGED_TAG.0, MANAGED_TAG.1
            )?;
        }
        write!(
            f,
            "{} to create, {} to change, {} to delete",
            self.create.len(),
            self.change.len(),
            self.delete.len()
        )?;
        if !self.conflicts.is_empty() {
            write!(f, ", {} in conflict", self.conflicts.len())?;
        }
        Ok(())
    }
}

/// The plan that turns the alarms of `namespace` among `existing` into `desired` (the alarms
/// the namespace's stack needs): create what is missing, change what differs, delete what the
/// stack owns ([`AlarmNamespace::owns`]) and no longer needs. Alarms outside the namespace are
/// ignored; alarms in it that the stack does not own are left alone, and when one holds a
/// name the stack needs, that is a conflict.
pub fn plan(
    namespace: &AlarmNamespace,
    desired: Vec<AlarmSpec>,
    existing: Vec<ExistingAlarm>,
) -> AlarmPlan {
    let mut existing: BTreeMap<String, ExistingAlarm> = existing
        .into_iter()
        .filter(|alarm| namespace.contains(&alarm.name))
        .map(|alarm| (alarm.name.clone(), alarm))
        .collect();
    let mut plan = AlarmPlan::default();
    for spec in desired {
        match existing.remove(&spec.name) {
            None => plan.create.push(spec),
            Some(found) if !namespace.owns(&found) => plan.conflicts.push(spec.name),
            Some(found) => {
                let differences = match &found.current {
                    Some(current) => spec.differences_from(current),
                    None => vec!["not a single-metric alarm capstan can read".to_owned()],
                };
                if differences.is_empty() {
                    plan.unchanged.push(spec.name);
                } else {
                    plan.change.push(AlarmChange { spec, differences });
                }
            }
        }
    }
    plan.delete = existing
        .into_values()
        .filter(|alarm| namespace.owns(alarm))
        .map(|alarm| alarm.name)
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use capstan_policy::model::{Statistic, Step, Threshold};

    use super::*;
    use crate::testing::{policy, rule};

    fn web() -> Policy {
        let mut web = policy();
        web.metrics.get_mut("memory").expect("memory").query.stat =
            Statistic::Percentile("p99".into());
        web.scale_out = vec![
            rule("cpu", Threshold::Above(70.0), 5, 5, Step::Add(2)),
            rule("memory", Threshold::Above(80.5), 3, 5, Step::Add(1)),
        ];
        web.scale_in = vec![rule("cpu", Threshold::Below(30.0), 15, 15, Step::Remove(1))];
        web
    }

    fn namespace(prefix: &str, stack: &str) -> AlarmNamespace {
        AlarmNamespace::new(prefix, stack).unwrap_or_else(|error| panic!("{error}"))
    }

    fn shop() -> AlarmNamespace {
        namespace("capstan", "shop")
    }

    /// How CloudWatch would show the alarm `spec` once its stack's alarm-sync put it.
    fn owned(spec: &AlarmSpec) -> ExistingAlarm {
        ExistingAlarm {
            name: spec.name.clone(),
            managed: true,
            stack: Some(spec.stack.clone()),
            current: Some(spec.clone()),
        }
    }

    /// An alarm put by hand, or by capstan before alarms carried their stack.
    fn found_alarm(name: &str, managed: bool, stack: Option<&str>) -> ExistingAlarm {
        ExistingAlarm {
            name: name.into(),
            managed,
            stack: stack.map(str::to_owned),
            current: None,
        }
    }

    #[test]
    fn one_alarm_per_threshold_rule_with_the_engines_window_and_strict_thresholds() {
        let web = web();
        let alarms = desired([&web], &shop());

        let names: Vec<&str> = alarms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "capstan/shop/web-scale_out-0",
                "capstan/shop/web-scale_out-1",
                "capstan/shop/web-scale_in-0"
            ]
        );
        let [cpu_out, memory_out, cpu_in] = <[AlarmSpec; 3]>::try_from(alarms).expect("three");
        assert_eq!(cpu_out.metric, web.metrics["cpu"].query);
        assert_eq!(cpu_out.comparison, Comparison::GreaterThanThreshold);
        assert_eq!(cpu_out.threshold, 70.0);
        assert_eq!(
            (cpu_out.datapoints_to_alarm, cpu_out.evaluation_periods),
            (5, 5)
        );
        assert_eq!(cpu_out.treat_missing_data, "missing");
        assert_eq!(
            cpu_out.tags(),
            [
                ("capstan:managed", "true"),
                ("capstan:stack", "shop"),
                ("capstan:policy", "web")
            ]
        );
        assert_eq!(memory_out.metric.stat, Statistic::Percentile("p99".into()));
        assert_eq!(
            (
                memory_out.datapoints_to_alarm,
                memory_out.evaluation_periods
            ),
            (3, 5)
        );
        assert_eq!(memory_out.threshold, 80.5);
        assert_eq!(cpu_in.comparison, Comparison::LessThanThreshold);
        assert_eq!(
            (cpu_in.datapoints_to_alarm, cpu_in.evaluation_periods),
            (15, 15)
        );
        assert_eq!(
            cpu_in.description,
            "capstan: wakes the evaluator when scale_in[0] of policy web may fire (cpu below 30, 15 of 15 datapoints)"
        );
    }

    #[test]
    fn a_rule_on_an_expression_metric_alarms_on_its_metric_math() {
        let mut web = policy();
        let math = capstan_policy::model::MathQuery {
            expression: "MAX([cpu, memory])".into(),
            members: [
                ("cpu".to_owned(), web.metric("cpu").clone()),
                ("memory".to_owned(), web.metric("memory").clone()),
            ]
            .into(),
        };
        let busy = capstan_policy::model::Metric {
            query: MetricQuery::math(math, 60),
            delay: web.metrics["cpu"].delay,
        };
        web.metrics.insert("busy".into(), busy.clone());
        web.scale_out = vec![rule("busy", Threshold::Above(70.0), 5, 5, Step::Add(2))];
        let alarms = desired([&web], &shop());
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].metric, busy.query);
        assert_eq!(
            alarms[0].metric.to_string(),
            format!(
                "MAX([{{{}}}, {{{}}}]) per 60s",
                web.metric("cpu"),
                web.metric("memory")
            )
        );
    }

    #[test]
    fn policies_without_threshold_rules_need_no_alarm() {
        assert!(desired([&policy()], &shop()).is_empty());
    }

    #[test]
    fn comparison_names_round_trip_and_others_are_not_ours() {
        for comparison in [
            Comparison::GreaterThanThreshold,
            Comparison::LessThanThreshold,
        ] {
            assert_eq!(Comparison::from_name(comparison.as_str()), Some(comparison));
        }
        assert_eq!(Comparison::from_name("GreaterThanOrEqualToThreshold"), None);
    }

    #[test]
    fn missing_alarms_are_created_and_matching_ones_left_as_they_are() {
        let wanted = desired([&web()], &shop());
        let first = plan(&shop(), wanted.clone(), Vec::new());
        assert_eq!(first.create, wanted);
        assert!(!first.is_empty());

        let again = plan(&shop(), wanted.clone(), wanted.iter().map(owned).collect());
        assert!(again.is_empty(), "{again}");
        assert_eq!(again.unchanged.len(), 3);
        assert_eq!(again.to_string(), "0 to create, 0 to change, 0 to delete");
    }

    #[test]
    fn changed_settings_are_rewritten_and_say_what_changes() {
        let wanted = desired([&web()], &shop());
        let mut found: Vec<ExistingAlarm> = wanted.iter().map(owned).collect();
        let old = found[0].current.as_mut().expect("current");
        old.threshold = 60.0;
        old.datapoints_to_alarm = 3;
        old.treat_missing_data = "breaching".into();
        found[1].current = None;

        let plan = plan(&shop(), wanted, found);

        assert_eq!(plan.change.len(), 2);
        assert_eq!(
            plan.change[0].differences,
            [
                "threshold: 60 -> 70",
                "datapoints: 3 of 5 -> 5 of 5",
                "treat missing data: breaching -> missing"
            ]
        );
        assert_eq!(
            plan.change[1].differences,
            ["not a single-metric alarm capstan can read"]
        );
        assert!(plan.to_string().contains("~ change capstan/shop/web-scale_out-0: AWS/ECS/CPUUtilization Average per 60s ServiceName=web > 70 in 5 of 5 datapoints\n    threshold: 60 -> 70\n"), "{plan}");
    }

    #[test]
    fn only_owned_alarms_no_policy_needs_are_deleted() {
        let mut web = web();
        let wanted = desired([&web], &shop());
        let mut found: Vec<ExistingAlarm> = wanted.iter().map(owned).collect();
        found.push(found_alarm("capstan/shop/hand-made", false, None));
        web.scale_out.pop();

        let plan = plan(&shop(), desired([&web], &shop()), found);

        assert_eq!(plan.delete, ["capstan/shop/web-scale_out-1"]);
        assert!(plan.create.is_empty() && plan.change.is_empty());
        assert!(
            plan.to_string()
                .contains("- delete capstan/shop/web-scale_out-1\n"),
            "{plan}"
        );
    }

    #[test]
    fn a_needed_name_held_by_an_unowned_alarm_is_a_conflict_not_a_change() {
        let wanted = desired([&web()], &shop());
        let squatter = found_alarm(&wanted[0].name, false, None);

        let plan = plan(&shop(), wanted, vec![squatter]);

        assert_eq!(plan.conflicts, ["capstan/shop/web-scale_out-0"]);
        assert_eq!(plan.create.len(), 2);
        assert!(plan.change.is_empty() && plan.delete.is_empty());
        assert!(
            plan.to_string()
                .ends_with("2 to create, 0 to change, 0 to delete, 1 in conflict")
        );
    }

    #[test]
    fn a_namespace_never_matches_another_stacks_alarms() {
        let shop = shop();
        assert_eq!(shop.to_string(), "capstan/shop/");
        assert!(shop.contains("capstan/shop/web-scale_out-0"));
        for elsewhere in [
            "capstan/shop-stg/web-scale_out-0",
            "capstan-stg/shop/web-scale_out-0",
            "capstan/shopping/web-scale_out-0",
            "capstan/shop",
            "capstan-shop/web-scale_out-0",
            "capstan-web-scale_out-0",
        ] {
            assert!(!shop.contains(elsewhere), "{elsewhere}");
        }
    }

    #[test]
    fn a_namespace_needs_a_prefix_and_stack_without_the_separator() {
        for (prefix, stack) in [
            ("", "shop"),
            ("capstan", ""),
            ("cap/stan", "shop"),
            ("capstan", "a/b"),
        ] {
            let error = AlarmNamespace::new(prefix, stack).err();
            assert!(error.is_some(), "{prefix:?} {stack:?} was accepted");
        }
        assert_eq!(
            AlarmNamespace::new("capstan", "").map_err(|e| e.to_string()),
            Err("invalid alarm namespace: the stack name \"\" is empty".to_owned())
        );
    }

    #[test]
    fn stacks_sharing_a_prefix_keep_each_others_alarms_through_sync_and_deletion() {
        let web = web();
        let (shop, staging) = (shop(), namespace("capstan", "shop-stg"));
        let mut everything: Vec<ExistingAlarm> = desired([&web], &shop)
            .iter()
            .chain(&desired([&web], &staging))
            .map(owned)
            .collect();
        // Tagged as capstan's before alarms carried their stack, by either stack.
        everything.push(found_alarm("capstan-web-scale_out-0", true, None));
        // Copied into this namespace with another stack's tag, or without any.
        everything.push(found_alarm("capstan/shop/copied", true, Some("shop-stg")));
        everything.push(found_alarm("capstan/shop/legacy", true, None));

        let mut fewer = web.clone();
        fewer.scale_out.pop();
        let sync = plan(&shop, desired([&fewer], &shop), everything.clone());
        assert_eq!(sync.delete, ["capstan/shop/web-scale_out-1"]);
        assert_eq!(sync.unchanged.len(), 2);
        assert!(sync.create.is_empty() && sync.change.is_empty() && sync.conflicts.is_empty());

        let deletion = plan(&shop, Vec::new(), everything);
        assert_eq!(
            deletion.delete,
            [
                "capstan/shop/web-scale_in-0",
                "capstan/shop/web-scale_out-0",
                "capstan/shop/web-scale_out-1"
            ]
        );
    }

    #[test]
    fn an_alarm_of_the_namespace_tagged_for_another_stack_is_a_conflict() {
        let wanted = desired([&web()], &shop());
        let other = found_alarm(&wanted[0].name, true, Some("shop-stg"));
        let legacy = found_alarm(&wanted[1].name, true, None);

        let plan = plan(&shop(), wanted, vec![other, legacy]);

        assert_eq!(
            plan.conflicts,
            [
                "capstan/shop/web-scale_out-0",
                "capstan/shop/web-scale_out-1"
            ]
        );
        assert!(plan.delete.is_empty() && plan.change.is_empty());
    }
}
