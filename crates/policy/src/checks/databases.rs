//! A declared database has a connection limit: `max_connections`, or an `instance_class` and
//! `engine` whose default formula capstan knows; and `reserve` leaves some of it. A
//! `connections` block opens at least one connection per unit.
//!
//! Why: the connection budget caps services; a limit capstan cannot work out, a reserve that
//! eats the whole limit or a pool of 0 connections would cap everything at nothing, or nothing
//! at all, silently.
//!
//! Example: `databases: { orders-db: { instance_class: db.r6g.larg, engine: postgres } }` is
//! rejected at `db.r6g.larg` with "did you mean `db.r6g.large`?".

use super::amounts;
use crate::model::{self, INSTANCE_CLASS_MEMORY_GIB, default_max_connections};
use crate::raw::{self, Spanned};
use crate::suggest;
use crate::validate::Findings;

/// The database as the engine sees it, or `None` after recording every problem.
pub(crate) fn check(
    name: &str,
    database: &Spanned<raw::Database>,
    out: &mut Findings<'_>,
) -> Option<model::Database> {
    let db = &database.value;
    let (max_connections, source) = match (&db.max_connections, &db.instance_class) {
        (Some(max), None) => {
            if let Some(engine) = &db.engine {
                out.error_with_help(
                    engine.referenced,
                    "`engine` is only used with `instance_class`",
                    "remove `engine`, or replace `max_connections` with `instance_class`",
                );
                return None;
            }
            let key = format!("databases.{name}.max_connections");
            (amounts::check(&key, max, out)?, "declared".to_owned())
        }
        (None, Some(class)) => {
            let Some(engine) = &db.engine else {
                out.error_with_help(
                    database.referenced,
                    format!("database `{name}` has `instance_class` but no `engine`"),
                    "add `engine: mysql`, `mariadb` or `postgres`",
                );
                return None;
            };
            match default_max_connections(&class.value, engine.value) {
                Some(found) => found,
                None => {
                    let help = match suggest::closest(
                        &class.value,
                        INSTANCE_CLASS_MEMORY_GIB.iter().map(|(name, _)| *name),
                    ) {
                        Some(closest) => format!("did you mean `{closest}`?"),
                        None => "declare `max_connections` instead".to_owned(),
                    };
                    out.error_with_help(
                        class.referenced,
                        format!("unknown instance class `{}`", class.value),
                        help,
                    );
                    return None;
                }
            }
        }
        (None, None) => {
            out.error_with_help(
                database.referenced,
                format!("database `{name}` has no connection limit"),
                "add `max_connections: <n>`, or `instance_class` and `engine`",
            );
            return None;
        }
        (Some(_), Some(class)) => {
            out.error_with_help(
                class.referenced,
                format!("database `{name}` has both `max_connections` and `instance_class`"),
                "keep one: a declared `max_connections` wins over any formula",
            );
            return None;
        }
    };
    let reserve = db.reserve.as_ref().map_or(0, |r| r.value);
    if reserve >= max_connections {
        if let Some(at) = &db.reserve {
            out.error_with_help(
                at.referenced,
                format!(
                    "`reserve` ({reserve}) leaves none of `{name}`'s {max_connections} connections"
                ),
                "reserve must be below max_connections",
            );
        }
        return None;
    }
    Some(model::Database {
        max_connections,
        reserve,
        source,
    })
}

/// The connections block, if `per_task` is at least 1. Its database is checked across the set.
pub(crate) fn connections(
    connections: &Spanned<raw::Connections>,
    out: &mut Findings<'_>,
) -> Option<model::Connections> {
    let block = &connections.value;
    Some(model::Connections {
        database: block.database.value.clone(),
        per_task: amounts::check("connections.per_task", &block.per_task, out)?,
        read_only: block
            .read_only
            .as_ref()
            .is_some_and(|read_only| read_only.value),
    })
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    fn with(extra: &str) -> String {
        format!("{EXAMPLE}{extra}")
    }

    #[test]
    fn a_declared_limit_and_a_formula_both_give_a_budget() {
        let policy = valid(&with(
            "databases:\n  orders-db: { max_connections: 200, reserve: 20 }\n  pg: { instance_class: db.r6g.large, engine: postgres }\n  my: { instance_class: db.t3.medium, engine: mysql }\nconnections: { database: orders-db, per_task: 50 }\n",
        ));
        assert_eq!(policy.databases["orders-db"].budget(), 180);
        assert_eq!(policy.databases["pg"].max_connections, 1802);
        assert!(
            policy.databases["pg"]
                .source
                .starts_with("LEAST({DBInstanceClassMemory/9531392}, 5000)")
        );
        assert_eq!(policy.databases["my"].max_connections, 341);
        assert_eq!(policy.connections.map(|c| c.per_task), Some(50));
    }

    #[test]
    fn bad_databases_are_each_reported() {
        let errors = errors(&with(
            "databases:\n  a: { instance_class: db.r6g.larg, engine: postgres }\n  b: { max_connections: 10, reserve: 10 }\n  c: { reserve: 1 }\n  d: { instance_class: db.r6g.large }\nconnections: { database: a, per_task: 0 }\n",
        ));
        assert_eq!(
            errors,
            [
                "23:24: unknown instance class `db.r6g.larg`",
                "24:38: `reserve` (10) leaves none of `b`'s 10 connections",
                "25:6: database `c` has no connection limit",
                "26:6: database `d` has `instance_class` but no `engine`",
                "27:39: `connections.per_task` must be at least 1",
            ]
        );
    }
}
