//! Policy names are unique across the whole set.
//!
//! Why: the name identifies a policy in decisions, alarms, schedule references and the state
//! table; two policies with one name would overwrite each other's memory.
//!
//! Example: `name: order-processing` in both `a.yaml` and `b.yaml` is rejected at `b.yaml`'s
//! name, saying where the first is.

use super::repeats;
use crate::report::Diagnostic;
use crate::validate::Parsed;

/// A problem for each policy whose name an earlier one already uses.
pub(crate) fn check(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let repeated = repeats(parsed, |p| p.file.name.value.as_str());
    repeated
        .into_iter()
        .map(|(earlier, later)| {
            let name = &later.file.name;
            let first = earlier.position(earlier.file.name.referenced);
            let message = format!("policy name `{}` is already used in {first}", name.value);
            Diagnostic::new(later.source, name.referenced, message)
                .with_help("policy names must be unique across the policy set")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, diagnostics_of};

    #[test]
    fn a_repeated_name_is_rejected_at_the_second() {
        let other = EXAMPLE.replace("service: order-processing }", "service: checkout }");
        let diagnostics = diagnostics_of(&[EXAMPLE, &other]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [(
                "b.yaml",
                3,
                7,
                "policy name `order-processing` is already used in a.yaml:3:7"
            )]
        );
    }
}
