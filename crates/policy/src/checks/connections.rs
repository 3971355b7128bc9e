//! Across the set: each database is declared once, every `connections.database` names a
//! declared database, and the users' `capacity.min`s fit its budget together.
//!
//! Why: two declarations of one database could disagree on its limit; a reference to an
//! undeclared database would leave a service uncapped by mistake; and minimums that need more
//! connections than the budget could never all be met, so either a floor or the budget would
//! have to give.
//!
//! Example: `connections: { database: orders-bd, per_task: 50 }` with only `orders-db`
//! declared is rejected at `orders-bd` with "did you mean `orders-db`?".

use std::collections::BTreeMap;

use crate::report::Diagnostic;
use crate::suggest;
use crate::validate::Parsed;

/// A problem for each repeated database, each dangling reference and each over-committed budget.
pub(crate) fn check(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut declared: BTreeMap<&str, &Parsed<'_>> = BTreeMap::new();
    for file in parsed {
        for (name, database) in &file.file.databases {
            match declared.get(name.as_str()) {
                Some(first) => {
                    let at = first.position(first.file.databases[name].referenced);
                    diagnostics.push(
                        Diagnostic::new(
                            file.source,
                            database.referenced,
                            format!("database `{name}` is already declared in {at}"),
                        )
                        .with_help("declare each database once in the policy set"),
                    );
                }
                None => {
                    declared.insert(name, file);
                }
            }
        }
    }
    let mut minimums: BTreeMap<&str, u64> = BTreeMap::new();
    for file in parsed {
        let Some(connections) = &file.file.connections else {
            continue;
        };
        let database = &connections.value.database;
        if declared.contains_key(database.value.as_str()) {
            let min = u64::from(file.file.capacity.value.min.value);
            *minimums.entry(database.value.as_str()).or_default() +=
                min * u64::from(connections.value.per_task.value);
            continue;
        }
        let help = match suggest::closest(&database.value, declared.keys().copied()) {
            Some(closest) => format!("did you mean `{closest}`?"),
            None => format!(
                "declare it: `databases: {{ {}: {{ max_connections: <n> }} }}`",
                database.value
            ),
        };
        diagnostics.push(
            Diagnostic::new(
                file.source,
                database.referenced,
                format!("undeclared database `{}`", database.value),
            )
            .with_help(help),
        );
    }
    for (name, needed) in minimums {
        let file = declared[name];
        let database = &file.file.databases[name];
        let Some(max) = database
            .value
            .max_connections
            .as_ref()
            .map(|m| u64::from(m.value))
        else {
            continue; // Formula limits are checked by the engine's guard, not here.
        };
        let reserve = database
            .value
            .reserve
            .as_ref()
            .map_or(0, |r| u64::from(r.value));
        let budget = max.saturating_sub(reserve);
        if needed > budget {
            diagnostics.push(
                Diagnostic::new(
                    file.source,
                    database.referenced,
                    format!(
                        "the `capacity.min`s of `{name}`'s users need {needed} connections, above its budget of {budget}"
                    ),
                )
                .with_help("lower a user's `capacity.min` or `per_task`, or raise `max_connections`"),
            );
        }
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use crate::PolicySet;
    use crate::checks::testing::{EXAMPLE, diagnostics_of, sources};

    fn service(name: &str, database: &str) -> String {
        EXAMPLE
            .replace("name: order-processing", &format!("name: {name}"))
            .replace(
                "service: order-processing }",
                &format!("service: {name} }}"),
            )
            + &format!("connections: {{ database: {database}, per_task: 50 }}\n")
    }

    #[test]
    fn services_share_a_database_declared_once() {
        let owner =
            service("orders", "orders-db") + "databases:\n  orders-db: { max_connections: 200 }\n";
        let set = PolicySet::from_sources(sources(&[&owner, &service("checkout", "orders-db")]));
        assert!(
            set.is_ok(),
            "{}",
            set.err().map(|r| r.to_string()).unwrap_or_default()
        );
    }

    #[test]
    fn an_undeclared_database_is_rejected_with_a_suggestion() {
        let owner =
            service("orders", "orders-db") + "databases:\n  orders-db: { max_connections: 400 }\n";
        let diagnostics = diagnostics_of(&[&owner, &service("checkout", "orders-bd")]);
        let found: Vec<_> = diagnostics
            .iter()
            .map(|d| {
                (
                    d.file.as_str(),
                    d.line,
                    d.message.as_str(),
                    d.help.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [(
                "b.yaml",
                22,
                "undeclared database `orders-bd`",
                Some("did you mean `orders-db`?")
            )]
        );
    }

    #[test]
    fn a_database_declared_twice_or_overcommitted_is_rejected() {
        let owner =
            service("orders", "orders-db") + "databases:\n  orders-db: { max_connections: 150 }\n";
        let other = service("checkout", "orders-db")
            + "databases:\n  orders-db: { max_connections: 200 }\n";
        let diagnostics = diagnostics_of(&[&owner, &other]);
        let messages: Vec<_> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the `capacity.min`s of `orders-db`'s users need 200 connections, above its budget of 150",
                "database `orders-db` is already declared in a.yaml:24:14",
            ]
        );
    }
}
