//! The second stage: parsed files checked as a whole set and turned into [`model`] policies.
//!
//! Every check in [`crate::checks`] runs on every file that parsed, and the checks across
//! files run too, so one pass reports every problem. A set with any problem yields no
//! policies at all: nothing acts on a partly valid set.

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Location;

use crate::checks::metric_kinds::Kind;
use crate::checks::steps::Direction;
use crate::checks::{
    amounts, bounds, connections, databases, delays, expression_cycles, expressions, forecast,
    grows_only, metric_kinds, metric_refs, periods, rds_identifiers, replicas, schedules, steps,
    thresholds, topics, track, unique_names, unique_targets, version, windows,
};
use crate::expression::Expression;
use crate::model::{
    self, DEFAULT_FALLBACK_AFTER, DEFAULT_MAX_PER_INTERVAL, DEFAULT_TOLERANCE, Duration,
    MetricQuery, Policy,
};
use crate::raw::Spanned;
use crate::report::{Diagnostic, Report};
use crate::{Source, limits, parse, raw};

/// Problems found in one file, each pointing into it.
pub(crate) struct Findings<'a> {
    source: &'a Source,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Findings<'a> {
    /// No problems yet in `source`.
    pub(crate) fn new(source: &'a Source) -> Self {
        Self {
            source,
            diagnostics: Vec::new(),
        }
    }

    /// Records a problem at `at`.
    pub(crate) fn error(&mut self, at: Location, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.source, at, message));
    }

    /// Records a problem at `at`, with a `help:` line.
    pub(crate) fn error_with_help(
        &mut self,
        at: Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diagnostics
            .push(Diagnostic::new(self.source, at, message).with_help(help));
    }

    /// Records a problem `offset` characters into the string value written at `at` (past its
    /// opening quote, if it is quoted), with a `help:` line if any.
    pub(crate) fn error_within(
        &mut self,
        at: Location,
        offset: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let mut diagnostic = Diagnostic::new(self.source, at, message);
        let opening = usize::try_from(diagnostic.column.saturating_sub(1))
            .ok()
            .and_then(|column| diagnostic.source_line.chars().nth(column));
        let quoted = matches!(opening, Some('"' | '\''));
        diagnostic.column += u64::try_from(offset + usize::from(quoted)).unwrap_or(0);
        self.diagnostics.push(match help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        });
    }

    /// Whether nothing is wrong so far.
    fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// A file that parsed, with its source for messages.
pub(crate) struct Parsed<'a> {
    /// Where it came from.
    pub(crate) source: &'a Source,
    /// What it says.
    pub(crate) file: raw::PolicyFile,
}

impl Parsed<'_> {
    /// `file:line:column` of `at`, for messages that point at another file.
    pub(crate) fn position(&self, at: Location) -> String {
        format!("{}:{}:{}", self.source.path, at.line(), at.column())
    }
}

/// Parses and checks every source; the policies in source order, or every problem found.
pub(crate) fn validate(sources: &[Source]) -> Result<Vec<Policy>, Report> {
    if let Some(first_past) = sources.get(limits::MAX_FILES) {
        return Err(Report::new(vec![Diagnostic::whole_file(
            first_past.path.clone(),
            format!(
                "file {} of a set of {}: a policy set holds at most {} files",
                limits::MAX_FILES + 1,
                sources.len(),
                limits::MAX_FILES
            ),
        )]));
    }
    let mut diagnostics = Vec::new();
    let mut parsed = Vec::new();
    for source in sources {
        match parse::parse(source) {
            Ok(file) => parsed.push(Parsed { source, file }),
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    let mut policies = Vec::new();
    for file in &parsed {
        let mut findings = Findings::new(file.source);
        let policy = policy(file, &parsed, &mut findings);
        debug_assert!(
            policy.is_some() || !findings.is_clean(),
            "a rejected policy must say why"
        );
        policies.extend(policy);
        diagnostics.extend(findings.diagnostics);
    }
    diagnostics.extend(unique_names::check(&parsed));
    diagnostics.extend(unique_targets::check(&parsed));
    diagnostics.extend(connections::check(&parsed));
    diagnostics.extend(rds_identifiers::databases(&parsed));
    diagnostics.extend(topics::check(&parsed));
    if diagnostics.is_empty() {
        Ok(policies)
    } else {
        Err(Report::new(in_file_order(diagnostics, sources)))
    }
}

/// Sorts problems by file (in the order given) and position within the file.
fn in_file_order(mut diagnostics: Vec<Diagnostic>, sources: &[Source]) -> Vec<Diagnostic> {
    let order: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.path.as_str(), i))
        .collect();
    diagnostics.sort_by_key(|d| (order.get(d.file.as_str()).copied(), d.line, d.column));
    diagnostics
}

/// One file's policy, or `None` once a problem has been recorded in `out`. `set` is every file
/// that parsed, for references to other policies.
fn policy(parsed: &Parsed<'_>, set: &[Parsed<'_>], out: &mut Findings<'_>) -> Option<Policy> {
    let raw = &parsed.file;
    let capacity = &raw.capacity.value;
    version::check(&raw.version, out);
    rds_identifiers::source(&raw.target, out);
    bounds::check(capacity, out);
    let kinds: BTreeMap<&str, Option<Kind<'_>>> = raw
        .metrics
        .iter()
        .map(|(name, metric)| (name.as_str(), metric_kinds::check(name, metric, out)))
        .collect();
    let periods: BTreeMap<&str, Option<u32>> = raw
        .metrics
        .iter()
        .map(|(name, metric)| (name.as_str(), periods::check(&metric.value.period, out)))
        .collect();
    let series: BTreeMap<&str, Option<MetricQuery>> = kinds
        .iter()
        .map(|(name, kind)| (*name, metric_query(raw, name, kind.as_ref(), &periods)))
        .collect();
    let parsed_expressions: BTreeMap<&str, (&Spanned<String>, Option<Expression>)> = kinds
        .iter()
        .filter_map(|(name, kind)| match kind {
            Some(Kind::Expression(written)) => Some((*name, written)),
            _ => None,
        })
        .map(|(name, written)| {
            let period = &raw.metrics[name].value.period;
            let parsed = expressions::check(written, period, &periods, out);
            (name, (*written, parsed))
        })
        .collect();
    let parsed_asts: BTreeMap<&str, (&Spanned<String>, &Expression)> = parsed_expressions
        .iter()
        .filter_map(|(name, (written, parsed))| Some((*name, (*written, parsed.as_ref()?))))
        .collect();
    expression_cycles::check(&parsed_asts, out);
    let queries: BTreeMap<&str, Option<MetricQuery>> = series
        .iter()
        .map(|(name, query)| {
            let query = if parsed_asts.contains_key(name) {
                math_query(name, &parsed_asts, &series, &periods, &mut Vec::new())
            } else {
                query.clone()
            };
            (*name, query)
        })
        .collect();
    let scale_out = rules(&raw.scale_out, Direction::Out, &queries, out);
    let scale_in = rules(&raw.scale_in, Direction::In, &queries, out);
    grows_only::check(&raw.target.value, &raw.scale_in, out);
    let tracks: Option<Vec<model::Track>> = raw
        .track
        .iter()
        .map(|rule| {
            let query = queries
                .get(rule.value.metric.value.as_str())
                .and_then(Option::as_ref);
            track::check(rule, queries.keys().copied(), query, out)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    for schedule in &raw.schedule {
        schedules::check(schedule, capacity, out);
    }
    let guards = guards(&raw.guards, capacity, out);
    let declared: Vec<Option<(String, model::Database)>> = raw
        .databases
        .iter()
        .map(|(name, database)| Some((name.clone(), databases::check(name, database, out)?)))
        .collect();
    let connections = match &raw.connections {
        Some(block) => databases::connections(block, out).map(Some),
        None => Some(None),
    };
    let plan = replicas::check(raw, set, &queries, out);
    let forecast = forecast::check(
        raw.forecast.as_ref(),
        &raw.target.value,
        raw.replicas.as_ref().map(|plan| &plan.value),
        &queries,
        out,
    );
    let delays: BTreeMap<&str, Option<Duration>> = raw
        .metrics
        .iter()
        .map(|(name, metric)| {
            let period = periods.get(name.as_str()).copied().flatten();
            let delay = delays::check(metric.value.delay.as_ref(), period, out);
            (name.as_str(), delay)
        })
        .collect();
    let metrics: Option<BTreeMap<String, model::Metric>> = queries
        .iter()
        .map(|(name, query)| {
            Some((
                (*name).to_owned(),
                model::Metric {
                    query: query.clone()?,
                    delay: delays[name]?,
                },
            ))
        })
        .collect();
    let declared: Option<BTreeMap<String, model::Database>> = declared.into_iter().collect();
    let (
        true,
        Some(metrics),
        Some(scale_out),
        Some(scale_in),
        Some(track),
        Some(guards),
        Some(databases),
        Some(connections),
        Some(plan),
        Some(forecast),
    ) = (
        out.is_clean(),
        metrics,
        scale_out,
        scale_in,
        tracks,
        guards,
        declared,
        connections,
        plan,
        forecast,
    )
    else {
        return None;
    };
    Some(Policy {
        name: raw.name.value.clone(),
        file: parsed.source.path.clone(),
        target: raw.target.value.clone(),
        capacity: model::Capacity {
            min: capacity.min.value,
            max: capacity.max.value,
        },
        metrics,
        scale_out,
        scale_in,
        track,
        tolerance: raw
            .tolerance
            .as_ref()
            .map_or(DEFAULT_TOLERANCE, |t| t.value),
        schedules: raw.schedule.iter().map(schedule).collect(),
        forecast,
        guards,
        paused: raw.paused,
        priority: raw.priority,
        databases,
        connections,
        replicas: plan,
    })
}

/// The CloudWatch query of the metric `name` of `file`, if it is a series with a valid period.
fn metric_query(
    file: &raw::PolicyFile,
    name: &str,
    kind: Option<&Kind<'_>>,
    periods: &BTreeMap<&str, Option<u32>>,
) -> Option<MetricQuery> {
    let Some(Kind::Series {
        namespace,
        name: metric_name,
        stat,
    }) = kind
    else {
        return None;
    };
    Some(MetricQuery {
        namespace: (*namespace).to_owned(),
        name: (*metric_name).to_owned(),
        dimensions: file.metrics[name].value.dimensions.clone(),
        stat: (*stat).clone(),
        period_secs: periods.get(name).copied().flatten()?,
        math: None,
    })
}

/// The query of the expression metric `name` (one of `expressions`), its members' queries
/// resolved from `series` and, for members that are expressions, from `expressions` in turn;
/// `None` if a member has no valid query, or the expressions refer to one another in a cycle
/// (`within` holds the expressions being resolved; the cycle is reported elsewhere).
fn math_query<'a>(
    name: &'a str,
    expressions: &BTreeMap<&'a str, (&Spanned<String>, &'a Expression)>,
    series: &BTreeMap<&str, Option<MetricQuery>>,
    periods: &BTreeMap<&str, Option<u32>>,
    within: &mut Vec<&'a str>,
) -> Option<MetricQuery> {
    if within.contains(&name) {
        return None;
    }
    within.push(name);
    let (_, expression) = expressions.get(name)?;
    let members: Option<BTreeMap<String, MetricQuery>> = expression
        .metrics()
        .into_iter()
        .map(|member| {
            let query = if expressions.contains_key(member) {
                math_query(member, expressions, series, periods, within)?
            } else {
                series.get(member)?.clone()?
            };
            Some((member.to_owned(), query))
        })
        .collect();
    within.pop();
    let math = model::MathQuery {
        expression: expression.render(&str::to_owned),
        members: members?,
    };
    Some(MetricQuery::math(
        math,
        periods.get(name).copied().flatten()?,
    ))
}

/// All rules of one direction, if every one is valid. Every rule is checked either way.
fn rules(
    rules: &[Spanned<raw::Rule>],
    direction: Direction,
    queries: &BTreeMap<&str, Option<MetricQuery>>,
    out: &mut Findings<'_>,
) -> Option<Vec<model::Rule>> {
    let checked: Vec<Option<model::Rule>> = rules
        .iter()
        .map(|r| rule(r, direction, queries, out))
        .collect();
    checked.into_iter().collect()
}

/// One rule, if valid. All its checks run before any result is combined.
fn rule(
    rule: &Spanned<raw::Rule>,
    direction: Direction,
    queries: &BTreeMap<&str, Option<MetricQuery>>,
    out: &mut Findings<'_>,
) -> Option<model::Rule> {
    let when = &rule.value.when;
    let metric = &when.value.metric;
    metric_refs::check(metric, queries.keys().copied(), out);
    let query = queries.get(metric.value.as_str()).and_then(Option::as_ref);
    let threshold = thresholds::check(when, out);
    let window = windows::check(&when.value, query, out);
    let step = steps::check(rule, direction, out);
    Some(model::Rule {
        when: model::Condition {
            metric: metric.value.clone(),
            threshold: threshold?,
            window: window?,
        },
        step: step?,
    })
}

/// A schedule as the engine sees it; [`schedules::check`] has vetted it.
pub(crate) fn schedule(schedule: &raw::Schedule) -> model::Schedule {
    model::Schedule {
        name: schedule.name.clone(),
        cron: schedule.cron.clone(),
        timezone: schedule.timezone,
        duration: schedule.duration.value,
        min: schedule.min.value,
    }
}

/// Guards as the file sets them, with [`model::Guards::default`] for what it leaves out.
fn guards(
    guards: &raw::Guards,
    capacity: &raw::Capacity,
    out: &mut Findings<'_>,
) -> Option<model::Guards> {
    let max_step_out = optional_amount("max_step.out", guards.max_step.out.as_ref(), out);
    let max_step_in = optional_amount("max_step.in", guards.max_step.in_.as_ref(), out);
    let pacing = match &guards.scale_in_pacing {
        None => Some(None),
        Some(pacing) => scale_in_pacing(pacing, out).map(Some),
    };
    let rate_limit_out = rate_limit("rate_limit.out", guards.rate_limit.out.as_ref(), out);
    let rate_limit_in = rate_limit("rate_limit.in", guards.rate_limit.in_.as_ref(), out);
    let default = model::Guards::default();
    Some(model::Guards {
        cooldown_out: guards.cooldown.out.unwrap_or(default.cooldown_out),
        cooldown_in: guards.cooldown.in_.unwrap_or(default.cooldown_in),
        max_step_out: max_step_out?,
        max_step_in: max_step_in?,
        missing_data: match &guards.missing_data {
            None => default.missing_data,
            Some(raw) => missing_data(raw, capacity, out)?,
        },
        scale_in_pacing: pacing?,
        stabilization_out: guards
            .stabilization
            .out
            .unwrap_or(default.stabilization_out),
        stabilization_in: guards.stabilization.in_.unwrap_or(default.stabilization_in),
        stabilization_in_after_flap: guards
            .stabilization
            .in_after_flap
            .unwrap_or(default.stabilization_in_after_flap),
        rate_limit_out: rate_limit_out?,
        rate_limit_in: rate_limit_in?,
    })
}

/// The behaviour on missing data; a fallback capacity must be within the policy's bounds and
/// wait for at least one evaluation.
fn missing_data(
    raw: &Spanned<raw::MissingData>,
    capacity: &raw::Capacity,
    out: &mut Findings<'_>,
) -> Option<model::MissingData> {
    let at = raw.referenced;
    let fallback = match raw.value {
        raw::MissingData::Mode(raw::MissingDataMode::Hold) => {
            return Some(model::MissingData::Hold);
        }
        raw::MissingData::Mode(raw::MissingDataMode::ScaleOut) => {
            return Some(model::MissingData::ScaleOut);
        }
        raw::MissingData::Fallback(fallback) => fallback,
    };
    let after = fallback.after.unwrap_or(DEFAULT_FALLBACK_AFTER);
    let mut valid = true;
    if after == 0 {
        out.error(at, "`missing_data.after` must be at least 1");
        valid = false;
    }
    let (min, max) = (capacity.min.value, capacity.max.value);
    if !(min..=max).contains(&fallback.fallback) {
        out.error(
            at,
            format!(
                "`missing_data.fallback` is {}, outside capacity {min}..={max}",
                fallback.fallback
            ),
        );
        valid = false;
    }
    valid.then_some(model::MissingData::Fallback {
        capacity: fallback.fallback,
        after,
    })
}

/// A rate limit: `Some(None)` when unlimited, `None` when invalid (no amount, an amount of 0
/// or a period of 0).
fn rate_limit(
    key: &str,
    limit: Option<&Spanned<raw::RateLimit>>,
    out: &mut Findings<'_>,
) -> Option<Option<model::RateLimit>> {
    let Some(limit) = limit else {
        return Some(None);
    };
    let raw = &limit.value;
    let units = optional_amount(&format!("{key}.units"), raw.units.as_ref(), out);
    let percent = optional_amount(&format!("{key}.percent"), raw.percent.as_ref(), out);
    if raw.units.is_none() && raw.percent.is_none() {
        out.error_with_help(
            limit.referenced,
            format!("`{key}` limits nothing"),
            "give `units`, `percent` or both",
        );
        return None;
    }
    if raw.per.as_secs() == 0 {
        out.error(
            limit.referenced,
            format!("`{key}.per` must be longer than 0s"),
        );
        return None;
    }
    Some(Some(model::RateLimit {
        units: units?,
        percent: percent?,
        per: raw.per,
        select: raw.select,
    }))
}

/// Paced scale-in, if its amount is at least 1 and its interval longer than 0.
fn scale_in_pacing(
    pacing: &Spanned<raw::ScaleInPacing>,
    out: &mut Findings<'_>,
) -> Option<model::ScaleInPacing> {
    let raw = &pacing.value;
    let max_per_interval = match &raw.max_per_interval {
        Some(amount) => amounts::check("scale_in_pacing.max_per_interval", amount, out),
        None => Some(DEFAULT_MAX_PER_INTERVAL),
    };
    if raw.interval.as_secs() == 0 {
        out.error_with_help(
            pacing.referenced,
            "`scale_in_pacing.interval` must be longer than 0s",
            "for no pacing, leave `scale_in_pacing` out",
        );
        return None;
    }
    Some(model::ScaleInPacing {
        max_per_interval: max_per_interval?,
        interval: raw.interval,
        drain: raw.drain.unwrap_or(Duration::from_secs(0)),
    })
}

/// An optional amount (a step or rate limit): `Some(None)` when absent, `None` when invalid.
fn optional_amount(
    key: &str,
    limit: Option<&Spanned<u32>>,
    out: &mut Findings<'_>,
) -> Option<Option<u32>> {
    match limit {
        None => Some(None),
        Some(limit) => amounts::check(key, limit, out).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, diagnostics_of, valid};
    use crate::model::{Guards, MissingData, Statistic, Step, Target};

    const MINIMAL: &str = "version: 1\nname: web\ntarget: { autoscaling_group: { name: web-asg } }\ncapacity: { min: 2, max: 2 }\n";

    #[test]
    fn a_policy_with_only_bounds_is_valid_and_gets_default_guards() {
        let policy = valid(MINIMAL);
        assert_eq!(
            policy.target,
            Target::AutoscalingGroup {
                name: "web-asg".into()
            }
        );
        assert!(policy.rules().next().is_none() && policy.schedules.is_empty() && !policy.paused);
        let guards = policy.guards;
        assert_eq!(
            (guards.cooldown_out.as_secs(), guards.cooldown_in.as_secs()),
            (0, 300)
        );
        assert_eq!((guards.max_step_out, guards.max_step_in), (None, None));
        assert_eq!(guards.missing_data, MissingData::Hold);
        assert_eq!(guards, Guards::default());
    }

    #[test]
    fn scale_in_pacing_defaults_to_one_unit_and_no_drain() {
        let text = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: hold\n  scale_in_pacing: { interval: 10m, drain: 15m }",
        );
        let pacing = valid(&text).guards.scale_in_pacing.expect("pacing");
        assert_eq!((pacing.max_per_interval, pacing.wait().as_secs()), (1, 900));
        let bad = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: hold\n  scale_in_pacing: { max_per_interval: 0, interval: 0s }",
        );
        assert_eq!(
            crate::checks::testing::errors(&bad),
            [
                "21:20: `scale_in_pacing.interval` must be longer than 0s",
                "21:40: `scale_in_pacing.max_per_interval` must be at least 1",
            ]
        );
    }

    #[test]
    fn stabilization_defaults_to_none_out_five_minutes_in_and_an_hour_after_a_flap() {
        let windows = |guards: crate::model::Guards| {
            (
                guards.stabilization_out.as_secs(),
                guards.stabilization_in.as_secs(),
                guards.stabilization_in_after_flap.as_secs(),
            )
        };
        assert_eq!(windows(valid(EXAMPLE).guards), (0, 300, 3600));
        let text = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: hold\n  stabilization: { out: 1m, in: 10m, in_after_flap: 2h }",
        );
        assert_eq!(windows(valid(&text).guards), (60, 600, 7200));
    }

    #[test]
    fn rate_limits_are_read_and_checked() {
        use crate::model::{Duration, RateLimit, Select};

        let text = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: hold\n  rate_limit:\n    out: { units: 4, percent: 100, per: 1m }\n    in: { percent: 10, per: 2h, select: least_permissive }",
        );
        let guards = valid(&text).guards;
        assert_eq!(
            guards.rate_limit_out,
            Some(RateLimit {
                units: Some(4),
                percent: Some(100),
                per: Duration::from_secs(60),
                select: Select::MostPermissive,
            })
        );
        assert_eq!(
            guards
                .rate_limit_in
                .map(|limit| (limit.units, limit.percent, limit.select)),
            Some((None, Some(10), Select::LeastPermissive))
        );
        // The longest period or window: the rate limit's 2h, above the hour after a flap.
        assert_eq!(guards.memory().as_secs(), 7200);
        let bad = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: hold\n  rate_limit: { out: { per: 1m }, in: { units: 0, per: 0s } }",
        );
        assert_eq!(
            crate::checks::testing::errors(&bad),
            [
                "21:22: `rate_limit.out` limits nothing",
                "21:39: `rate_limit.in.per` must be longer than 0s",
                "21:48: `rate_limit.in.units` must be at least 1",
            ]
        );
    }

    #[test]
    fn a_fallback_must_be_within_the_bounds_and_wait_at_least_once() {
        let text = EXAMPLE.replace("missing_data: hold", "missing_data: { fallback: 6 }");
        assert_eq!(
            valid(&text).guards.missing_data,
            MissingData::Fallback {
                capacity: 6,
                after: 3
            }
        );
        let bad = EXAMPLE.replace(
            "missing_data: hold",
            "missing_data: { fallback: 12, after: 0 }",
        );
        assert_eq!(
            crate::checks::testing::errors(&bad),
            [
                "20:17: `missing_data.after` must be at least 1",
                "20:17: `missing_data.fallback` is 12, outside capacity 2..=10",
            ]
        );
    }

    #[test]
    fn missing_data_scale_out_is_accepted() {
        let policy = valid(&EXAMPLE.replace("missing_data: hold", "missing_data: scale_out"));
        assert_eq!(policy.guards.missing_data, MissingData::ScaleOut);
    }

    #[test]
    fn the_example_becomes_the_model_the_engine_uses() {
        let policy = valid(EXAMPLE);
        assert_eq!(policy.file, "a.yaml");
        assert_eq!(
            policy.target,
            Target::EcsService {
                cluster: "shop".into(),
                service: "order-processing".into()
            }
        );
        let cpu = policy.metric("cpu");
        assert_eq!(
            (cpu.namespace.as_str(), cpu.name.as_str(), &cpu.stat),
            ("AWS/ECS", "CPUUtilization", &Statistic::Average)
        );
        assert_eq!(
            cpu.dimensions.get("ServiceName").map(String::as_str),
            Some("order-processing")
        );
        assert_eq!(policy.scale_in[0].step, Step::Remove(1));
        assert_eq!(
            (
                policy.guards.cooldown_out.as_secs(),
                policy.guards.cooldown_in.as_secs()
            ),
            (120, 600)
        );
        let schedule = &policy.schedules[0];
        assert_eq!(
            (
                schedule.name.as_str(),
                schedule.cron.as_str(),
                schedule.timezone.0
            ),
            ("flash-sale", "0 17 * * FRI", chrono_tz::Europe::London)
        );
    }

    #[test]
    fn every_problem_in_every_file_is_reported_in_file_and_line_order() {
        let broken = EXAMPLE
            .replace("add: 1 }", "add: 0 }")
            .replace("version: 1", "version: 3");
        let unparsable = MINIMAL.replace("capacity:", "capacty:");
        let diagnostics = diagnostics_of(&[&broken, &unparsable]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.line))
            .collect();
        assert_eq!(found, [("a.yaml", 2), ("a.yaml", 12), ("b.yaml", 4)]);
    }

    #[test]
    fn an_invalid_policy_does_not_hide_a_duplicate_name() {
        let broken = EXAMPLE.replace("version: 1", "version: 3");
        let diagnostics = diagnostics_of(&[&broken, EXAMPLE]);
        let files: Vec<_> = diagnostics.iter().map(|d| d.file.as_str()).collect();
        assert_eq!(files, ["a.yaml", "b.yaml", "b.yaml"], "{diagnostics:#?}");
    }
}
