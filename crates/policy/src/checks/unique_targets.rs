//! No two policies scale the same resource. An ECS cluster named by its ARN,
//! `arn:<partition>:ecs:<region>:<account>:cluster/<name>`, is the cluster of that name: capstan
//! calls ECS in one account and Region, where both name the same cluster.
//!
//! Why: two policies on one resource would take turns overriding each other's capacity, each
//! blind to the other's cooldowns and bounds.
//!
//! Example: two files both with `target: { ecs_service: { cluster: shop, service: orders } }`,
//! or one of them with the cluster's ARN, are rejected at the second's target, naming the first
//! policy.

use super::repeats;
use crate::model::Target;
use crate::report::Diagnostic;
use crate::validate::Parsed;

/// A problem for each policy whose resource an earlier one already scales.
pub(crate) fn check(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let repeated = repeats(parsed, |p| resource(&p.file.target.value));
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

/// The resource `target` scales, one way of naming it.
fn resource(target: &Target) -> Target {
    match target {
        Target::EcsService { cluster, service } => Target::EcsService {
            cluster: cluster_name(cluster).to_owned(),
            service: service.clone(),
        },
        other => other.clone(),
    }
}

/// The name of an ECS cluster given by name or ARN.
fn cluster_name(cluster: &str) -> &str {
    match cluster.split_once(":cluster/") {
        Some((prefix, name)) if prefix.starts_with("arn:") && prefix.contains(":ecs:") => name,
        _ => cluster,
    }
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
    fn a_cluster_named_by_its_arn_is_the_cluster_of_that_name() {
        let other = EXAMPLE
            .replace("name: order-processing", "name: orders-by-arn")
            .replace(
                "cluster: shop, service",
                "cluster: \"arn:aws:ecs:eu-west-1:123456789012:cluster/shop\", service",
            );
        let diagnostics = diagnostics_of(&[EXAMPLE, &other]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.file.as_str(), d.line, d.column, d.message.as_str()))
            .collect();
        let message = "ecs_service arn:aws:ecs:eu-west-1:123456789012:cluster/shop/order-processing is already scaled by policy `order-processing` (a.yaml:5:3)";
        assert_eq!(found, [("b.yaml", 5, 3, message)]);
    }

    #[test]
    fn the_same_service_name_in_another_cluster_is_another_resource() {
        let other = EXAMPLE
            .replace("name: order-processing", "name: orders-eu")
            .replace("cluster: shop, service", "cluster: shop-eu, service");
        assert!(PolicySet::from_sources(sources(&[EXAMPLE, &other])).is_ok());
        let by_arn = EXAMPLE
            .replace("name: order-processing", "name: orders-eu")
            .replace(
                "cluster: shop, service",
                "cluster: \"arn:aws:ecs:eu-west-1:123456789012:cluster/shop-eu\", service",
            );
        assert!(PolicySet::from_sources(sources(&[EXAMPLE, &by_arn])).is_ok());
    }
}
