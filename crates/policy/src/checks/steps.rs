//! A rule has exactly one step, of a kind its direction allows: `scale_out` rules take `add`,
//! `set` or `add_percent`; `scale_in` rules take `remove`, `set` or `remove_percent`.
//!
//! Why: with no step a rule does nothing; with several it is unclear which applies; and a
//! scale-out rule that removes capacity (or the reverse) would fight the other direction's
//! guards and cooldowns.
//!
//! Example: `scale_out: [{ when: ..., remove: 1 }]` is rejected at `remove`'s value with
//! "scale_out rules take `add`, `set` or `add_percent`".

use super::amounts;
use crate::model::Step;
use crate::raw::{Rule, Spanned};
use crate::validate::Findings;

/// Which list a rule is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `scale_out`.
    Out,
    /// `scale_in`.
    In,
}

impl Direction {
    /// The list's key in a policy file.
    fn key(self) -> &'static str {
        match self {
            Self::Out => "scale_out",
            Self::In => "scale_in",
        }
    }

    /// The step keys a rule in this list may use.
    fn allowed(self) -> [&'static str; 3] {
        match self {
            Self::Out => ["add", "set", "add_percent"],
            Self::In => ["remove", "set", "remove_percent"],
        }
    }

    /// The allowed keys as prose: `` `add`, `set` or `add_percent` ``.
    fn allowed_prose(self) -> String {
        let [first, second, third] = self.allowed();
        format!("`{first}`, `{second}` or `{third}`")
    }
}

/// A step as written: its key, its amount and how it becomes a [`Step`].
type Written<'a> = (&'static str, &'a Spanned<u32>, fn(u32) -> Step);

/// The steps written in `rule`, in key order.
fn written(rule: &Rule) -> Vec<Written<'_>> {
    let steps = [
        ("add", &rule.add, Step::Add as fn(u32) -> Step),
        ("remove", &rule.remove, Step::Remove),
        ("set", &rule.set, Step::Set),
        ("add_percent", &rule.add_percent, Step::AddPercent),
        ("remove_percent", &rule.remove_percent, Step::RemovePercent),
    ];
    steps
        .into_iter()
        .filter_map(|(key, amount, step)| Some((key, amount.as_ref()?, step)))
        .collect()
}

/// The rule's step, or `None` after recording why it has not exactly one valid step.
pub(crate) fn check(
    rule: &Spanned<Rule>,
    direction: Direction,
    out: &mut Findings<'_>,
) -> Option<Step> {
    let help = format!(
        "{} rules take {}",
        direction.key(),
        direction.allowed_prose()
    );
    match written(&rule.value).as_slice() {
        [] => {
            out.error_with_help(rule.referenced, "rule has no step", help);
            None
        }
        [(key, amount, _)] if !direction.allowed().contains(key) => {
            out.error_with_help(
                amount.referenced,
                format!("`{key}` cannot be used in a {} rule", direction.key()),
                help,
            );
            None
        }
        [("set", amount, _)] => Some(Step::Set(amount.value)),
        [(key, amount, step)] => amounts::check(key, amount, out).map(step),
        [(first, ..), (second, amount, _), ..] => {
            out.error_with_help(
                amount.referenced,
                format!("rule has more than one step (`{first}` and `{second}`)"),
                format!("give exactly one; {help}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, helps, valid};
    use crate::model::Step;

    #[test]
    fn each_direction_takes_its_own_kinds() {
        let text = EXAMPLE
            .replace("add: 1 }", "add_percent: 50 }")
            .replace("remove: 1", "remove_percent: 25");
        let policy = valid(&text);
        assert_eq!(policy.scale_out[1].step, Step::AddPercent(50));
        assert_eq!(policy.scale_in[0].step, Step::RemovePercent(25));
        let policy = valid(
            &EXAMPLE
                .replace("add: 2", "set: 6")
                .replace("remove: 1", "set: 2"),
        );
        assert_eq!(
            (policy.scale_out[0].step, policy.scale_in[0].step),
            (Step::Set(6), Step::Set(2))
        );
    }

    #[test]
    fn a_rule_without_a_step_is_rejected_at_the_rule() {
        let text = EXAMPLE.replace(", add: 2 }", " }");
        assert_eq!(errors(&text), ["11:5: rule has no step"]);
        assert_eq!(
            helps(&text),
            [Some(
                "scale_out rules take `add`, `set` or `add_percent`".to_owned()
            )]
        );
    }

    #[test]
    fn a_rule_with_two_steps_is_rejected_at_the_second() {
        let errors = errors(&EXAMPLE.replace("add: 2 }", "add: 2, set: 4 }"));
        assert_eq!(
            errors,
            ["11:63: rule has more than one step (`add` and `set`)"]
        );
    }

    #[test]
    fn a_scale_in_step_in_scale_out_is_rejected() {
        let text = EXAMPLE.replace("add: 2", "remove: 2");
        assert_eq!(
            errors(&text),
            ["11:58: `remove` cannot be used in a scale_out rule"]
        );
    }

    #[test]
    fn a_scale_out_step_in_scale_in_is_rejected() {
        let text = EXAMPLE.replace("remove: 1", "add_percent: 10");
        assert_eq!(
            errors(&text),
            ["14:64: `add_percent` cannot be used in a scale_in rule"]
        );
        assert_eq!(
            helps(&text),
            [Some(
                "scale_in rules take `remove`, `set` or `remove_percent`".to_owned()
            )]
        );
    }
}
