//! An `rds_replicas` source is a DB instance identifier as RDS stores it: 1 to 63 letters,
//! digits or hyphens, the first a letter, no two hyphens in a row and none at the end (the
//! `DBInstanceIdentifier` constraints of the CreateDBInstance API reference), in lowercase
//! ("stored as a lowercase string"). Across the set, a database declared under a source's name
//! written with capitals is rejected too.
//!
//! Why: RDS names a replica's source in lowercase, so a source written `Orders-DB` would never
//! match the replicas capstan creates of it: each would be left behind, never counted nor
//! retired. A database is tied to the replica policy of its source by name, so a database
//! declared as `Orders-DB` would never get the budget of `orders-db`'s replicas.
//!
//! Example: `target: { rds_replicas: { source: Orders-DB } }` is rejected at the target, with
//! "help: write `orders-db`".

use crate::model::Target;
use crate::raw::Spanned;
use crate::report::Diagnostic;
use crate::validate::{Findings, Parsed};

/// The longest DB instance identifier RDS accepts.
const MAX_LENGTH: usize = 63;

/// Records a problem if the target is an `rds_replicas` source RDS would not store as written.
pub(crate) fn source(target: &Spanned<Target>, out: &mut Findings<'_>) {
    let Target::RdsReplicas { source } = &target.value else {
        return;
    };
    let Some(why) = problem(source) else {
        return;
    };
    let lowercase = source.to_ascii_lowercase();
    let help = if problem(&lowercase).is_none() {
        format!("write `{lowercase}`")
    } else if let Some(identifier) = arn_identifier(source) {
        format!("name the instance by its identifier, `{identifier}`")
    } else {
        format!(
            "a DB instance identifier has 1 to {MAX_LENGTH} lowercase letters, digits or hyphens, starts with a letter, and has no two hyphens in a row and none at the end"
        )
    };
    out.error_with_help(
        target.referenced,
        format!("rds_replicas source `{source}` {why}"),
        help,
    );
}

/// A problem for each database declared under the name of an `rds_replicas` source written
/// with capitals.
pub(crate) fn databases(parsed: &[Parsed<'_>]) -> Vec<Diagnostic> {
    let sources: Vec<(&Parsed<'_>, String)> = parsed
        .iter()
        .filter_map(|file| match &file.file.target.value {
            Target::RdsReplicas { source } => Some((file, source.to_ascii_lowercase())),
            _ => None,
        })
        .collect();
    let mut diagnostics = Vec::new();
    for file in parsed {
        for (name, database) in &file.file.databases {
            let lowercase = name.to_ascii_lowercase();
            if *name == lowercase {
                continue;
            }
            let Some((owner, _)) = sources.iter().find(|(_, source)| *source == lowercase) else {
                continue;
            };
            diagnostics.push(
                Diagnostic::new(
                    file.source,
                    database.referenced,
                    format!(
                        "database `{name}` is the source of policy `{}` ({}) written with capitals: RDS stores DB instance identifiers in lowercase, and the two names must match for its read replicas to count in its budget",
                        owner.file.name.value,
                        owner.position(owner.file.target.referenced)
                    ),
                )
                .with_help(format!("write `{lowercase}`")),
            );
        }
    }
    diagnostics
}

/// Why RDS would not store `identifier` as written, if it would not.
fn problem(identifier: &str) -> Option<String> {
    let length = identifier.chars().count();
    if !(1..=MAX_LENGTH).contains(&length) {
        return Some(format!(
            "has {length} characters: a DB instance identifier has 1 to {MAX_LENGTH}"
        ));
    }
    if let Some(c) = identifier
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        return Some(format!(
            "has `{c}`: a DB instance identifier has only letters, digits and hyphens"
        ));
    }
    if !identifier.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("does not start with a letter, as a DB instance identifier must".to_owned());
    }
    if identifier.contains("--") {
        return Some("has two hyphens in a row, which a DB instance identifier may not".to_owned());
    }
    if identifier.ends_with('-') {
        return Some("ends with a hyphen, which a DB instance identifier may not".to_owned());
    }
    if identifier.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(
            "has capitals, but RDS stores DB instance identifiers in lowercase: the replicas capstan creates would never be matched to it"
                .to_owned(),
        );
    }
    None
}

/// The identifier in a DB instance ARN, `arn:<partition>:rds:<region>:<account>:db:<identifier>`.
fn arn_identifier(value: &str) -> Option<String> {
    let (prefix, identifier) = value.split_once(":db:")?;
    let lowercase = identifier.to_ascii_lowercase();
    (prefix.starts_with("arn:") && prefix.contains(":rds:") && problem(&lowercase).is_none())
        .then_some(lowercase)
}

#[cfg(test)]
mod tests {
    use crate::PolicySet;
    use crate::checks::testing::{diagnostics_of, sources};

    /// A replica policy of `source`, declaring `database`.
    fn replicas(source: &str, database: &str) -> String {
        format!(
            "version: 1\nname: replicas\ntarget:\n  rds_replicas: {{ source: {source} }}\ncapacity: {{ min: 0, max: 3 }}\ndatabases:\n  {database}: {{ max_connections: 200 }}\n"
        )
    }

    /// The problems of one file, as `line:column: message (help)`.
    fn problems(texts: &[&str]) -> Vec<String> {
        diagnostics_of(texts)
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}: {} ({})",
                    d.file,
                    d.line,
                    d.column,
                    d.message,
                    d.help.as_deref().unwrap_or("no help")
                )
            })
            .collect()
    }

    #[test]
    fn a_source_with_capitals_is_rejected_with_its_lowercase_form() {
        assert_eq!(
            problems(&[&replicas("Orders-DB", "orders-db")]),
            [
                "a.yaml:4:3: rds_replicas source `Orders-DB` has capitals, but RDS stores DB instance identifiers in lowercase: the replicas capstan creates would never be matched to it (write `orders-db`)"
            ]
        );
    }

    #[test]
    fn a_source_that_is_no_db_instance_identifier_is_rejected_with_the_rules() {
        let rules = "a DB instance identifier has 1 to 63 lowercase letters, digits or hyphens, starts with a letter, and has no two hyphens in a row and none at the end";
        let cases = [
            (
                "orders_db",
                "has `_`: a DB instance identifier has only letters, digits and hyphens",
            ),
            (
                "1orders",
                "does not start with a letter, as a DB instance identifier must",
            ),
            (
                "orders--db",
                "has two hyphens in a row, which a DB instance identifier may not",
            ),
            (
                "orders-",
                "ends with a hyphen, which a DB instance identifier may not",
            ),
            (
                &"a".repeat(64),
                "has 64 characters: a DB instance identifier has 1 to 63",
            ),
        ];
        for (source, why) in cases {
            assert_eq!(
                problems(&[&replicas(source, "orders-db")]),
                [format!(
                    "a.yaml:4:3: rds_replicas source `{source}` {why} ({rules})"
                )],
                "{source}"
            );
        }
        assert!(PolicySet::from_sources(sources(&[&replicas(&"a".repeat(63), "db")])).is_ok());
    }

    #[test]
    fn a_source_given_as_an_arn_is_rejected_with_its_identifier() {
        let arn = "arn:aws:rds:eu-west-1:123456789012:db:Orders-DB";
        assert_eq!(
            problems(&[&replicas(arn, "orders-db")]),
            [format!(
                "a.yaml:4:3: rds_replicas source `{arn}` has `:`: a DB instance identifier has only letters, digits and hyphens (name the instance by its identifier, `orders-db`)"
            )]
        );
    }

    #[test]
    fn a_database_named_like_a_source_but_with_capitals_is_rejected() {
        let service = "version: 1\nname: history\ntarget: { ecs_service: { cluster: shop, service: history } }\ncapacity: { min: 1, max: 4 }\ndatabases:\n  Orders-DB: { max_connections: 200 }\n  Billing-DB: { max_connections: 100 }\nconnections: { database: Orders-DB, per_task: 50, read_only: true }\n";
        assert_eq!(
            problems(&[&replicas("orders-db", "orders-db-copy"), service]),
            [
                "b.yaml:6:14: database `Orders-DB` is the source of policy `replicas` (a.yaml:4:3) written with capitals: RDS stores DB instance identifiers in lowercase, and the two names must match for its read replicas to count in its budget (write `orders-db`)"
            ]
        );
    }
}
