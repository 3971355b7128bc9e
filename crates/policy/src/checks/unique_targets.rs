//! No two policies scale the same resource.
//!
//! Why: two policies on one resource would take turns overriding each other's capacity, each
//! blind to the other's cooldowns and bounds.
//!
//! Example: two files both with `target: { ecs_service: { cluster: shop, service: orders } }`
//! are rejected at the second's target, naming the first policy.

use super::repeats;
use crate::report::Diagnostic;
use crate::validate::Parsed;

/// A problem for each policy whose resource an earlier one already scales.
pub(crate) fn check(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let repeated = repeats(parsed, |p| p.file.target.value.clone());
    repeated
        .into_iter()
        .map(|(earlier, later)| {
            let target = &later.file.target;
            let message = format!(
                "{} is already scaled by policy `{}` ({})",
                target.value,
                earlier.file.name.value,
                earlier.position(earlier.file.target.referenced)
            );
            Diagnostic::new(later.source, target.referenced, message)
                .with_help("one resource takes one policy: merge the rules into that policy")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::PolicySet;
    use crate::checks::testing::{EXAMPLE, diagnostics_of, sources};

    #[test]
    fn a_resource_claimed_twice_is_rejected_at_the_second() {
        let other = EXAMPLE.replace("name: order-processing", "name: orders-copy");
        let diagnostics = diagnostics_of(&[EXAMPLE, &other]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.line, d.column, d.message.as_str()))
            .collect();
        let message = "ecs_service shop/order-processing is already scaled by policy `order-processing` (a.yaml:5:3)";
        assert_eq!(found, [("b.yaml", 5, 3, message)]);
    }

    #[test]
    fn the_same_service_name_in_another_cluster_is_another_resource() {
        let other = EXAMPLE
            .replace("name: order-processing", "name: orders-eu")
            .replace("cluster: shop, service", "cluster: shop-eu, service");
        assert!(PolicySet::from_sources(sources(&[EXAMPLE, &other])).is_ok());
    }
}
