//! Metric math evaluated locally: an expression metric's datapoints computed from its members'
//! series, as CloudWatch computes them inside GetMetricData: for `simulate` and `backtest`,
//! where no CloudWatch is asked.
//!
//! Semantics, per timestamp (docs/policy.md, "Expression metrics"):
//! - a number applies at every timestamp; between two series, an operator yields a value only
//!   at the timestamps where both have one;
//! - `AVG`, `MAX`, `MIN` and `SUM` of an array take, at each timestamp, the elements that have
//!   a value there (numbers always do);
//! - a value that is not a finite number (a division by zero) is dropped: CloudWatch returns
//!   no datapoint that is not a number.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{Expression, MetricQuery};
use crate::observe::Datapoint;
use capstan_policy::expression::{Aggregate, Operator};

/// An intermediate value: a number, or a series by timestamp.
enum Value {
    Number(f64),
    Series(BTreeMap<DateTime<Utc>, f64>),
}

/// The datapoints of `query`: for a series, `series(query)`; for metric math, its expression
/// evaluated over its members' datapoints, found the same way. Metric math whose expression does
/// not parse (validation accepts none) has none.
pub fn datapoints(
    query: &MetricQuery,
    series: &impl Fn(&MetricQuery) -> Vec<Datapoint>,
) -> Vec<Datapoint> {
    let Some(math) = &query.math else {
        return series(query);
    };
    let Ok(expression) = math.parse() else {
        return Vec::new();
    };
    let members: BTreeMap<&str, Vec<Datapoint>> = math
        .members
        .iter()
        .map(|(id, member)| (id.as_str(), datapoints(member, series)))
        .collect();
    let members = members
        .iter()
        .map(|(id, points)| (*id, points.as_slice()))
        .collect();
    evaluate(&expression, &members)
}

/// The datapoints of `expression`, in ascending time order, from the series of its members by
/// id (`members`; an id absent from it has no datapoints). An expression of numbers alone has
/// no timestamps, so no datapoints.
pub fn evaluate(expression: &Expression, members: &BTreeMap<&str, &[Datapoint]>) -> Vec<Datapoint> {
    match value(expression, members) {
        Value::Number(_) => Vec::new(),
        Value::Series(points) => points
            .into_iter()
            .filter(|(_, value)| value.is_finite())
            .map(|(timestamp, value)| Datapoint { timestamp, value })
            .collect(),
    }
}

fn value(expression: &Expression, members: &BTreeMap<&str, &[Datapoint]>) -> Value {
    match expression {
        Expression::Number(number) => Value::Number(*number),
        Expression::Metric(id) => Value::Series(
            members
                .get(id.as_str())
                .into_iter()
                .flat_map(|points| points.iter())
                .map(|point| (point.timestamp, point.value))
                .collect(),
        ),
        Expression::Negate(inner) => map(value(inner, members), |x| -x),
        Expression::Binary { op, left, right } => {
            binary(*op, value(left, members), value(right, members))
        }
        Expression::Abs(inner) => map(value(inner, members), f64::abs),
        Expression::Aggregate { function, elements } => {
            let elements: Vec<Value> = elements.iter().map(|e| value(e, members)).collect();
            aggregate(*function, &elements)
        }
    }
}

fn map(value: Value, f: impl Fn(f64) -> f64) -> Value {
    match value {
        Value::Number(x) => Value::Number(f(x)),
        Value::Series(points) => {
            Value::Series(points.into_iter().map(|(t, x)| (t, f(x))).collect())
        }
    }
}

fn binary(op: Operator, left: Value, right: Value) -> Value {
    let apply = |a: f64, b: f64| match op {
        Operator::Add => a + b,
        Operator::Subtract => a - b,
        Operator::Multiply => a * b,
        Operator::Divide => a / b,
    };
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => Value::Number(apply(a, b)),
        (Value::Series(a), Value::Number(b)) => map(Value::Series(a), |x| apply(x, b)),
        (Value::Number(a), Value::Series(b)) => map(Value::Series(b), |x| apply(a, x)),
        (Value::Series(a), Value::Series(b)) => Value::Series(
            a.into_iter()
                .filter_map(|(t, x)| Some((t, apply(x, *b.get(&t)?))))
                .collect(),
        ),
    }
}

/// `function` of the array `args`, at each timestamp any element has.
fn aggregate(function: Aggregate, args: &[Value]) -> Value {
    let reduce = |values: Vec<f64>| -> f64 {
        match function {
            Aggregate::Max => values.into_iter().fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Min => values.into_iter().fold(f64::INFINITY, f64::min),
            Aggregate::Sum => values.into_iter().sum(),
            Aggregate::Avg => {
                let count = values.len() as f64;
                values.into_iter().sum::<f64>() / count
            }
        }
    };
    let at = |t: Option<&DateTime<Utc>>| -> Vec<f64> {
        args.iter()
            .filter_map(|arg| match (arg, t) {
                (Value::Number(x), _) => Some(*x),
                (Value::Series(points), Some(t)) => points.get(t).copied(),
                (Value::Series(_), None) => None,
            })
            .collect()
    };
    let timestamps: std::collections::BTreeSet<&DateTime<Utc>> = args
        .iter()
        .flat_map(|arg| match arg {
            Value::Series(points) => points.keys().collect(),
            Value::Number(_) => Vec::new(),
        })
        .collect();
    if args.iter().all(|arg| matches!(arg, Value::Number(_))) {
        return Value::Number(reduce(at(None)));
    }
    Value::Series(
        timestamps
            .into_iter()
            .map(|t| (*t, reduce(at(Some(t)))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Utc};

    use super::evaluate;
    use crate::model::Expression;
    use crate::observe::Datapoint;

    fn minute(m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, m, 0)
            .single()
            .expect("a time")
    }

    /// A series with a value at each `(minute, value)`.
    fn series(points: &[(u32, f64)]) -> Vec<Datapoint> {
        points
            .iter()
            .map(|&(m, value)| Datapoint {
                timestamp: minute(m),
                value,
            })
            .collect()
    }

    /// `text` evaluated over `members`, as `(minute, value)` pairs.
    fn eval(text: &str, members: &[(&str, &[Datapoint])]) -> Vec<(u32, f64)> {
        let expression = Expression::parse(text).expect("parses");
        let members: BTreeMap<&str, &[Datapoint]> = members.iter().copied().collect();
        evaluate(&expression, &members)
            .into_iter()
            .map(|p| (chrono::Timelike::minute(&p.timestamp), p.value))
            .collect()
    }

    #[test]
    fn numbers_apply_at_every_timestamp_of_the_series() {
        let conns = series(&[(0, 100.0), (1, 200.0), (2, 400.0)]);
        assert_eq!(
            eval("100 * (1 - conns / 400)", &[("conns", &conns)]),
            [(0, 75.0), (1, 50.0), (2, 0.0)]
        );
        assert_eq!(eval("-conns + 1", &[("conns", &conns[..1])]), [(0, -99.0)]);
    }

    #[test]
    fn between_two_series_only_timestamps_both_have_are_kept() {
        let errors = series(&[(0, 1.0), (1, 2.0), (3, 3.0)]);
        let invocations = series(&[(0, 10.0), (2, 10.0), (3, 30.0)]);
        assert_eq!(
            eval(
                "100 * errors / invocations",
                &[("errors", &errors), ("invocations", &invocations)]
            ),
            [(0, 10.0), (3, 10.0)]
        );
    }

    #[test]
    fn a_division_by_zero_has_no_datapoint() {
        let a = series(&[(0, 1.0), (1, 0.0), (2, 4.0)]);
        let b = series(&[(0, 0.0), (1, 0.0), (2, 2.0)]);
        assert_eq!(eval("a / b", &[("a", &a), ("b", &b)]), [(2, 2.0)]);
    }

    #[test]
    fn array_functions_take_the_elements_present_at_each_timestamp() {
        let a = series(&[(0, 1.0), (1, 5.0)]);
        let b = series(&[(0, 3.0), (2, 7.0)]);
        let members = [("a", a.as_slice()), ("b", b.as_slice())];
        assert_eq!(
            eval("MAX([a, b])", &members),
            [(0, 3.0), (1, 5.0), (2, 7.0)]
        );
        assert_eq!(
            eval("MIN([a, b, 2])", &members),
            [(0, 1.0), (1, 2.0), (2, 2.0)]
        );
        assert_eq!(
            eval("SUM([a, b])", &members),
            [(0, 4.0), (1, 5.0), (2, 7.0)]
        );
        assert_eq!(
            eval("AVG([a, b])", &members),
            [(0, 2.0), (1, 5.0), (2, 7.0)]
        );
    }

    #[test]
    fn a_query_of_metric_math_is_computed_from_its_members_series_nested_too() {
        use crate::model::{MathQuery, MetricQuery};
        use crate::testing::query;

        let (cpu, memory) = (query("CPUUtilization", 60), query("MemoryUtilization", 60));
        let busiest = MetricQuery::math(
            MathQuery {
                expression: "MAX([cpu, memory])".into(),
                members: [
                    ("cpu".into(), cpu.clone()),
                    ("memory".into(), memory.clone()),
                ]
                .into(),
            },
            60,
        );
        let spare = MetricQuery::math(
            MathQuery {
                expression: "100 - busiest".into(),
                members: [("busiest".into(), busiest)].into(),
            },
            60,
        );
        let recorded = |q: &MetricQuery| match q {
            q if *q == cpu => series(&[(0, 50.0), (1, 80.0)]),
            q if *q == memory => series(&[(0, 90.0), (1, 60.0), (2, 70.0)]),
            _ => Vec::new(),
        };
        let values: Vec<(u32, f64)> = super::datapoints(&spare, &recorded)
            .into_iter()
            .map(|p| (chrono::Timelike::minute(&p.timestamp), p.value))
            .collect();
        assert_eq!(values, [(0, 10.0), (1, 20.0), (2, 30.0)]);
        assert_eq!(super::datapoints(&cpu, &recorded), recorded(&cpu));
    }

    #[test]
    fn abs_and_missing_members() {
        let a = series(&[(0, -2.0), (1, 3.0)]);
        assert_eq!(eval("ABS(a)", &[("a", &a)]), [(0, 2.0), (1, 3.0)]);
        assert_eq!(eval("a + unread", &[("a", &a)]), []);
        assert_eq!(eval("1 + 2", &[]), []);
    }
}
