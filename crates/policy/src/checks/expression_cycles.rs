//! No expression metric refers to itself, directly or through other expressions.
//!
//! Why: such a metric has no value; CloudWatch refuses the query.
//!
//! Example: `a: { expression: "b + 1" }` with `b: { expression: "a * 2" }` is rejected at both
//! expressions: "`a` refers to itself: a -> b -> a".

use std::collections::BTreeMap;

use crate::expression::Expression;
use crate::raw::Spanned;
use crate::validate::Findings;

/// Records a problem at each expression metric that is part of a cycle. `expressions` are the
/// policy's expression metrics that parsed, with where each is written.
pub(crate) fn check(
    expressions: &BTreeMap<&str, (&Spanned<String>, &Expression)>,
    out: &mut Findings<'_>,
) {
    for (name, (written, _)) in expressions {
        if let Some(path) = path_back(name, name, expressions, &mut Vec::new()) {
            out.error(
                written.referenced,
                format!("`{name}` refers to itself: {name} -> {}", path.join(" -> ")),
            );
        }
    }
}

/// The expression metrics from `from`'s members to `to`, if `to` is reachable; `seen` are
/// those already explored.
fn path_back<'n>(
    from: &str,
    to: &'n str,
    expressions: &BTreeMap<&'n str, (&Spanned<String>, &Expression)>,
    seen: &mut Vec<&'n str>,
) -> Option<Vec<&'n str>> {
    let (_, expression) = expressions.get(from)?;
    for member in expression.metrics() {
        let Some((&member, _)) = expressions.get_key_value(member) else {
            continue;
        };
        if member == to {
            return Some(vec![member]);
        }
        if seen.contains(&member) {
            continue;
        }
        seen.push(member);
        if let Some(mut path) = path_back(member, to, expressions, seen) {
            path.insert(0, member);
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    #[test]
    fn expressions_over_expressions_are_accepted() {
        let text = EXAMPLE.replace(
            "metrics:\n",
            "metrics:\n  a: { expression: \"b + 1\", period: 1m }\n  b: { expression: \"cpu * 2\", period: 1m }\n",
        );
        let policy = valid(&text);
        let a = policy.metric("a").math.as_ref().expect("a is metric math");
        let b = &a.members["b"];
        assert_eq!(a.expression, "(b + 1)");
        assert_eq!(
            b.math.as_ref().map(|math| &math.members["cpu"]),
            Some(policy.metric("cpu"))
        );
    }

    #[test]
    fn a_cycle_is_rejected_at_each_of_its_expressions() {
        let text = EXAMPLE.replace(
            "metrics:\n",
            "metrics:\n  a: { expression: \"b + cpu\", period: 1m }\n  b: { expression: \"a * 2\", period: 1m }\n  c: { expression: c, period: 1m }\n",
        );
        assert_eq!(
            errors(&text),
            [
                "8:20: `a` refers to itself: a -> b -> a",
                "9:20: `b` refers to itself: b -> a -> b",
                "10:20: `c` refers to itself: c -> c",
            ]
        );
    }
}
