//! RDS read replicas of a plain (non-Aurora) MySQL, MariaDB or PostgreSQL instance: counting,
//! creating and deleting the ones capstan owns.
//!
//! # Ownership
//!
//! capstan tags every replica it creates `capstan:managed=true` and `capstan:policy=<policy>`,
//! and counts and deletes only replicas of the source carrying `capstan:managed=true`. A replica
//! someone else created, and the source itself, are never deleted: they are not in the list
//! deletions are chosen from.
//!
//! # Reading
//!
//! capstan asks RDS about the source and its replicas only, never about every instance of the
//! Region: `DescribeDBInstances` of the source, whose answer lists its replicas
//! (`ReadReplicaDBInstanceIdentifiers`), then one `DescribeDBInstances` filtered by
//! `db-instance-id` on those (none for a source without replicas). A change adds to that filter
//! the identifiers it could give new replicas, and skips every one an instance already has,
//! whoever made it: RDS identifiers are unique in a Region.
//!
//! # Status
//!
//! What the status of one of capstan's replicas means:
//!
//! | status | counts in `desired` | in service | target busy |
//! |---|---|---|---|
//! | `available`, replicating | yes | yes | no |
//! | `available`, replication `error`, `stopped`, `terminated`, ... | yes | no | no |
//! | failed: `failed`, `storage-full`, `incompatible-parameters`, ... (a status RDS does not leave by itself) | yes | no | no |
//! | `deleting` | no | no | yes |
//! | any other: `creating`, `modifying`, `backing-up`, ... | yes | no | yes |
//!
//! Replication is the `read replication` entry of the replica's `StatusInfos` (`replicating`,
//! `error`, `stopped`, `terminated`, `replication stop point set` or `reached`, per
//! DBInstanceStatusInfo in the RDS API reference); a replica without one counts by its status
//! alone. A replica that serves nothing (the second and third rows) is still capstan's: it
//! counts against RDS's limit and in `desired`, and is the first deleted when capstan scales in.
//! capstan creates no replacement while it exists: a replacement inherits the source's
//! parameter group and storage, so it would likely fail the same way, and capstan would keep
//! paying for instances past `capacity.max`. Each read logs it as a warning, for someone to
//! repair or delete it.
//!
//! The source makes the target busy in every status but `available`: RDS creates replicas only
//! of an available source (otherwise it answers `InvalidDBInstanceState`, "DB instance is not
//! in the available state"), and a source that has failed may need its replicas to recover its
//! data, so none is deleted either.
//!
//! An answer cut short is refused as [`ErrorKind::Malformed`]: the SDK's XML reader would take
//! it for a complete one listing fewer replicas, and capstan would create replicas it has.
//!
//! Creating a replica takes many minutes. capstan never waits for it inside one invocation: it
//! asks RDS to create the replica and reads its status on later evaluations, busy meanwhile, so
//! the engine stacks no further change.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbInstance, Filter, Tag};

use capstan_engine::CurrentCapacity;

use crate::answer::WholeDocument;
use crate::error::{AwsError, ErrorKind};
use crate::how_many;
use crate::rate::{Category, RateLimits};

const DESCRIBE: &str = "rds:DescribeDBInstances";
const CREATE: &str = "rds:CreateDBInstanceReadReplica";
const DELETE: &str = "rds:DeleteDBInstance";

/// The tag marking what capstan created; its value is `true`.
pub const MANAGED_TAG: &str = "capstan:managed";
/// The tag naming the policy a replica was created for.
pub const POLICY_TAG: &str = "capstan:policy";

/// Read replicas a source instance may have, per engine: 15 for MySQL, MariaDB and
/// PostgreSQL (RDS's quota for read replicas per source DB instance).
const MAX_REPLICAS: u32 = 15;

/// Identifiers tried for new replicas: twice the replicas a source may have, so that those
/// other instances already hold still leave enough.
const NAMES: u32 = 2 * MAX_REPLICAS;

/// Engines whose plain RDS instances capstan makes replicas of.
const ENGINES: &[&str] = &["mysql", "mariadb", "postgres"];

/// Statuses a DB instance does not leave by itself (the DB instance status table of the RDS
/// User Guide): it serves nothing until someone repairs it, or ever (`failed`).
const FAILED: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "storage-full",
];

/// Read replicas of RDS source instances.
#[derive(Debug, Clone)]
pub struct RdsReplicas {
    client: Client,
    limits: RateLimits,
}

/// What RDS says about a source and its replicas, after the checks.
struct Replicas {
    /// The source's engine.
    engine: String,
    /// The source's status.
    status: String,
    /// capstan's replicas.
    owned: Vec<DbInstance>,
    /// Replicas someone else made.
    unowned: u32,
    /// The identifiers asked about that an instance holds.
    taken: BTreeSet<String>,
}

/// What a replica's status means to capstan; see [Status](RdsReplicas#status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In service.
    Serving,
    /// Serves nothing and makes nothing busy.
    Broken,
    /// Being created or changed: the target is busy.
    Changing,
    /// Being deleted: no longer counted, and the target is busy.
    Deleting,
}

impl RdsReplicas {
    /// Replicas reached through the given client, whose answers are refused when cut short,
    /// within [`RateLimits::default`].
    pub fn new(client: Client) -> Self {
        let config = client.config().to_builder().interceptor(WholeDocument);
        Self {
            client: Client::from_conf(config.build()),
            limits: RateLimits::default(),
        }
    }

    /// The same replicas, reached within `limits`.
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The number of replicas of `source` capstan owns (not counting ones being deleted), how
    /// many of them are in service, and whether the target is busy, as [Status](Self#status)
    /// says. The resource's maximum is RDS's limit of 15 read replicas per source less the replicas capstan
    /// does not own.
    ///
    /// A missing source is [`ErrorKind::NotFound`]; an Aurora or other unsupported engine, or
    /// a source with automated backups disabled (RDS cannot create replicas of it), is
    /// [`ErrorKind::Invalid`].
    pub async fn current(&self, source: &str) -> Result<CurrentCapacity, AwsError> {
        let replicas = self.replicas(source, &[], DESCRIBE).await?;
        for replica in live(&replicas) {
            if state(replica) == State::Broken {
                tracing::warn!(
                    source,
                    replica = replica.db_instance_identifier().unwrap_or_default(),
                    status = %condition(replica),
                    "the replica serves nothing: it counts as capstan's but not in service, and is deleted first; repair or delete it"
                );
            }
        }
        Ok(capacity(source, &replicas))
    }

    /// Brings the replicas of `source` capstan owns to `desired`: creates the missing ones,
    /// tagged for `policy`, under identifiers no instance holds, or deletes owned ones, those
    /// that serve nothing first, then the newest. Returns without waiting for RDS to finish.
    pub async fn set_desired(
        &self,
        source: &str,
        policy: &str,
        desired: u32,
    ) -> Result<(), AwsError> {
        let names = replica_names(source);
        let replicas = self.replicas(source, &names, CREATE).await?;
        let live = live(&replicas);
        let have = how_many(live.iter());
        if desired > have && desired > limit(&replicas) {
            return Err(AwsError::new(
                CREATE,
                source,
                ErrorKind::Invalid,
                format!(
                    "{desired} replicas would exceed RDS's limit of {MAX_REPLICAS} read replicas per source: {} of its replicas are not capstan's",
                    replicas.unowned
                ),
            ));
        }
        let new = desired.saturating_sub(have) as usize;
        let free: Vec<&String> = names
            .iter()
            .filter(|name| !replicas.taken.contains(*name))
            .take(new)
            .collect();
        if free.len() < new {
            return Err(AwsError::new(
                CREATE,
                source,
                ErrorKind::Invalid,
                format!(
                    "other DB instances hold the identifiers capstan gives replicas ({} to {}), leaving too few for {new} new replicas",
                    names[0],
                    names[names.len() - 1]
                ),
            ));
        }
        for name in free {
            self.limits.take(Category::Rds, CREATE, name).await?;
            tracing::info!(source, replica = %name, "CreateDBInstanceReadReplica");
            self.client
                .create_db_instance_read_replica()
                .db_instance_identifier(name)
                .source_db_instance_identifier(source)
                .tags(tag(MANAGED_TAG, "true"))
                .tags(tag(POLICY_TAG, policy))
                .send()
                .await
                .map_err(|error| AwsError::from_sdk(CREATE, name, error))?;
        }
        for replica in retire_order(live)
            .into_iter()
            .take(have.saturating_sub(desired) as usize)
        {
            let name = replica.db_instance_identifier().unwrap_or_default();
            if name == source || !is_managed(replica) {
                continue;
            }
            self.limits.take(Category::Rds, DELETE, name).await?;
            tracing::info!(source, replica = name, "DeleteDBInstance");
            self.client
                .delete_db_instance()
                .db_instance_identifier(name)
                .skip_final_snapshot(true)
                .send()
                .await
                .map_err(|error| AwsError::from_sdk(DELETE, name, error))?;
        }
        Ok(())
    }

    /// Reads the source, checks it can have replicas, and reads its replicas and the instances
    /// holding any of `names`, as [Reading](Self#reading) says; errors are reported as
    /// `operation` on `source`.
    async fn replicas(
        &self,
        source: &str,
        names: &[String],
        operation: &'static str,
    ) -> Result<Replicas, AwsError> {
        self.limits.take(Category::Rds, DESCRIBE, source).await?;
        let found = self
            .client
            .describe_db_instances()
            .db_instance_identifier(source)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(DESCRIBE, source, error))?;
        let Some(instance) = found.db_instances().first() else {
            return Err(AwsError::new(
                DESCRIBE,
                source,
                ErrorKind::NotFound,
                "RDS returned no such instance",
            ));
        };
        let engine = instance.engine().unwrap_or_default().to_owned();
        if !ENGINES.contains(&engine.as_str()) {
            return Err(AwsError::new(
                operation,
                source,
                ErrorKind::Invalid,
                format!(
                    "the source's engine is {engine}: capstan manages replicas of plain MySQL, MariaDB and PostgreSQL instances only (not Aurora)"
                ),
            ));
        }
        if instance.backup_retention_period().unwrap_or(0) == 0 {
            return Err(AwsError::new(
                operation,
                source,
                ErrorKind::Invalid,
                "the source has automated backups disabled (BackupRetentionPeriod 0), so RDS cannot create read replicas of it; set a backup retention period of at least 1 day",
            ));
        }
        // Cross-Region replicas are listed by ARN and not found here: they count as not capstan's.
        let mut replicas: BTreeSet<String> = instance
            .read_replica_db_instance_identifiers()
            .iter()
            .cloned()
            .collect();
        let asked: BTreeSet<String> = replicas.iter().chain(names).cloned().collect();
        let mut owned = Vec::new();
        let mut taken = BTreeSet::new();
        for described in self.describe(source, asked).await? {
            let identifier = described
                .db_instance_identifier()
                .unwrap_or_default()
                .to_owned();
            taken.insert(identifier.clone());
            if described.read_replica_source_db_instance_identifier() != Some(source) {
                continue;
            }
            replicas.insert(identifier);
            if is_managed(&described) {
                owned.push(described);
            }
        }
        Ok(Replicas {
            engine,
            status: instance
                .db_instance_status()
                .unwrap_or("unknown")
                .to_owned(),
            unowned: how_many(replicas.iter()).saturating_sub(how_many(owned.iter())),
            owned,
            taken,
        })
    }

    /// The instances holding any of `identifiers`, from one `DescribeDBInstances` filtered by
    /// `db-instance-id` (paged, should RDS page it); none asked, none read.
    async fn describe(
        &self,
        source: &str,
        identifiers: BTreeSet<String>,
    ) -> Result<Vec<DbInstance>, AwsError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let filter = Filter::builder()
            .name("db-instance-id")
            .set_values(Some(identifiers.into_iter().collect()))
            .build();
        let mut pages = self
            .client
            .describe_db_instances()
            .filters(filter)
            .into_paginator()
            .send();
        self.limits.take(Category::Rds, DESCRIBE, source).await?;
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AwsError::from_sdk(DESCRIBE, source, error))?;
            found.extend_from_slice(page.db_instances());
            self.limits
                .take_next_page(page.marker(), Category::Rds, DESCRIBE, source)
                .await?;
        }
        Ok(found)
    }
}

/// The capacity `replicas` give `source`, as [Status](RdsReplicas#status) says.
fn capacity(source: &str, replicas: &Replicas) -> CurrentCapacity {
    let live = live(replicas);
    CurrentCapacity {
        desired: how_many(live.iter()),
        resource_max: Some(limit(replicas)),
        resource_max_reason: Some(format!(
            "RDS allows {MAX_REPLICAS} read replicas of a {} source; {} of them are not capstan's",
            replicas.engine, replicas.unowned
        )),
        busy: busy(source, replicas),
        in_service: Some(how_many(
            live.iter()
                .filter(|replica| state(replica) == State::Serving),
        )),
        ..Default::default()
    }
}

/// capstan's replicas that are not being deleted.
fn live(replicas: &Replicas) -> Vec<&DbInstance> {
    replicas
        .owned
        .iter()
        .filter(|replica| state(replica) != State::Deleting)
        .collect()
}

/// How many replicas capstan may keep: RDS's limit less the replicas that are not capstan's.
fn limit(replicas: &Replicas) -> u32 {
    MAX_REPLICAS.saturating_sub(replicas.unowned)
}

/// `live` in the order to delete them: those that serve nothing first, then the newest.
fn retire_order(mut live: Vec<&DbInstance>) -> Vec<&DbInstance> {
    let serving = |replica: &DbInstance| state(replica) == State::Serving;
    live.sort_by(|a, b| {
        serving(a).cmp(&serving(b)).then_with(|| {
            (b.instance_create_time(), b.db_instance_identifier())
                .partial_cmp(&(a.instance_create_time(), a.db_instance_identifier()))
                .unwrap_or(Ordering::Equal)
        })
    });
    live
}

/// Why no change must be made now, as [Status](RdsReplicas#status) says.
fn busy(source: &str, replicas: &Replicas) -> Option<String> {
    let status = replicas.status.as_str();
    if status != "available" {
        let why = if FAILED.contains(&status) {
            "its replicas are kept, as they may be needed to recover its data"
        } else {
            "RDS creates read replicas only of an available source"
        };
        return Some(format!("the source {source} is {status}: {why}"));
    }
    let pending = replicas
        .owned
        .iter()
        .find(|replica| matches!(state(replica), State::Changing | State::Deleting))?;
    Some(format!(
        "replica {} is {}",
        pending
            .db_instance_identifier()
            .unwrap_or("without identifier"),
        pending
            .db_instance_status()
            .unwrap_or("in no reported status")
    ))
}

/// What `replica`'s status means to capstan.
fn state(replica: &DbInstance) -> State {
    match replica.db_instance_status() {
        Some("available") => match replication(replica) {
            None | Some("replicating") => State::Serving,
            Some(_) => State::Broken,
        },
        Some("deleting") => State::Deleting,
        Some(status) if FAILED.contains(&status) => State::Broken,
        _ => State::Changing,
    }
}

/// The status of `replica`'s replication, if RDS reports one.
fn replication(replica: &DbInstance) -> Option<&str> {
    replica
        .status_infos()
        .iter()
        .find(|info| info.status_type() == Some("read replication"))
        .and_then(|info| info.status())
}

/// `replica`'s status, with its replication's when RDS reports one, for messages.
fn condition(replica: &DbInstance) -> String {
    let status = replica
        .db_instance_status()
        .unwrap_or("in no reported status");
    match replication(replica) {
        Some(replication) => format!("{status}, replication {replication}"),
        None => status.to_owned(),
    }
}

/// Whether capstan created `instance`: it carries `capstan:managed=true`.
fn is_managed(instance: &DbInstance) -> bool {
    instance
        .tag_list()
        .iter()
        .any(|tag| tag.key() == Some(MANAGED_TAG) && tag.value() == Some("true"))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The identifiers capstan gives replicas of `source`, in the order it uses them:
/// `<source>-replica-<n>` for `n` from 1 to [`NAMES`], cut to RDS's 63 characters.
fn replica_names(source: &str) -> Vec<String> {
    (1..=NAMES)
        .map(|n| {
            let suffix = format!("-replica-{n}");
            let keep = 63 - suffix.len();
            let stem = source.get(..keep).unwrap_or(source).trim_end_matches('-');
            format!("{stem}{suffix}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::primitives::DateTime;
    use aws_sdk_rds::types::DbInstanceStatusInfo;
    use aws_sdk_rds::types::builders::DbInstanceBuilder;

    use super::*;

    /// One of capstan's replicas in `status`, created `minute` minutes into the epoch.
    fn owned(name: &str, status: &str, minute: i64) -> DbInstanceBuilder {
        DbInstance::builder()
            .db_instance_identifier(name)
            .db_instance_status(status)
            .instance_create_time(DateTime::from_secs(minute * 60))
            .tag_list(tag(MANAGED_TAG, "true"))
    }

    /// One of capstan's replicas for which RDS reports no replication status.
    fn replica(name: &str, status: &str, minute: i64) -> DbInstance {
        owned(name, status, minute).build()
    }

    /// One of capstan's replicas, `available`, with its replication in `replication`.
    fn replicating(name: &str, minute: i64, replication: &str) -> DbInstance {
        let info = DbInstanceStatusInfo::builder()
            .status_type("read replication")
            .status(replication)
            .normal(replication == "replicating")
            .build();
        owned(name, "available", minute).status_infos(info).build()
    }

    /// A source in `status` with capstan's replicas `owned`.
    fn replicas(status: &str, owned: Vec<DbInstance>) -> Replicas {
        Replicas {
            engine: "postgres".into(),
            status: status.into(),
            owned,
            unowned: 0,
            taken: BTreeSet::new(),
        }
    }

    #[test]
    fn replica_names_count_from_one_and_fit_rds_limit() {
        let names = replica_names("orders-db");
        assert_eq!(names[..2], ["orders-db-replica-1", "orders-db-replica-2"]);
        assert_eq!(names.len(), 30);
        let long = "a".repeat(63);
        assert!(replica_names(&long).iter().all(|name| name.len() <= 63));
    }

    #[test]
    fn a_replica_being_created_or_deleted_makes_the_target_busy() {
        let ready = replicas(
            "available",
            vec![replica("orders-db-replica-1", "available", 1)],
        );
        assert_eq!(busy("orders-db", &ready), None);
        for status in ["creating", "modifying", "backing-up", "deleting"] {
            let changing = replicas(
                "available",
                vec![
                    replica("orders-db-replica-1", "available", 1),
                    replica("orders-db-replica-2", status, 2),
                ],
            );
            assert_eq!(
                busy("orders-db", &changing),
                Some(format!("replica orders-db-replica-2 is {status}"))
            );
        }
    }

    #[test]
    fn a_source_in_any_status_but_available_makes_the_target_busy() {
        for status in [
            "backing-up",
            "storage-optimization",
            "maintenance",
            "modifying",
        ] {
            assert_eq!(
                busy("orders-db", &replicas(status, Vec::new())),
                Some(format!(
                    "the source orders-db is {status}: RDS creates read replicas only of an available source"
                ))
            );
        }
        assert_eq!(
            busy("orders-db", &replicas("storage-full", Vec::new())).as_deref(),
            Some(
                "the source orders-db is storage-full: its replicas are kept, as they may be needed to recover its data"
            )
        );
    }

    #[test]
    fn a_failed_replica_counts_but_neither_serves_nor_makes_the_target_busy() {
        let owned = vec![
            replicating("orders-db-replica-1", 1, "replicating"),
            replica("orders-db-replica-2", "storage-full", 2),
            replica("orders-db-replica-3", "incompatible-parameters", 3),
            replica("orders-db-replica-4", "failed", 4),
            replica("orders-db-replica-5", "deleting", 5),
        ];
        let current = capacity("orders-db", &replicas("available", owned));
        assert_eq!(
            (current.desired, current.in_service, current.busy),
            (
                4,
                Some(1),
                Some("replica orders-db-replica-5 is deleting".into())
            )
        );
        let without_deleting = vec![
            replica("orders-db-replica-2", "storage-full", 2),
            replica("orders-db-replica-4", "failed", 4),
        ];
        let current = capacity("orders-db", &replicas("available", without_deleting));
        assert_eq!(
            (current.desired, current.in_service, current.busy),
            (2, Some(0), None)
        );
    }

    #[test]
    fn a_replica_whose_replication_is_not_running_is_not_in_service() {
        for status in [
            "error",
            "stopped",
            "terminated",
            "replication stop point reached",
        ] {
            let owned = vec![
                replica("orders-db-replica-1", "available", 1),
                replicating("orders-db-replica-2", 2, status),
            ];
            let current = capacity("orders-db", &replicas("available", owned));
            assert_eq!(
                (current.desired, current.in_service, current.busy.as_deref()),
                (2, Some(1), None),
                "{status}"
            );
        }
    }

    #[test]
    fn replicas_that_serve_nothing_are_retired_first_then_the_newest() {
        let owned = replicas(
            "available",
            vec![
                replica("orders-db-replica-1", "available", 1),
                replica("orders-db-replica-2", "available", 3),
                replicating("orders-db-replica-3", 2, "error"),
                replica("orders-db-replica-4", "storage-full", 0),
            ],
        );
        let order: Vec<&str> = retire_order(live(&owned))
            .iter()
            .filter_map(|replica| replica.db_instance_identifier())
            .collect();
        assert_eq!(
            order,
            [
                "orders-db-replica-3",
                "orders-db-replica-4",
                "orders-db-replica-2",
                "orders-db-replica-1"
            ]
        );
    }

    #[test]
    fn only_tagged_instances_are_owned() {
        let tagged = DbInstance::builder()
            .tag_list(tag(MANAGED_TAG, "true"))
            .build();
        let other = DbInstance::builder()
            .tag_list(tag("team", "orders"))
            .build();
        let not_true = DbInstance::builder()
            .tag_list(tag(MANAGED_TAG, "false"))
            .build();
        assert!(is_managed(&tagged));
        assert!(!is_managed(&other) && !is_managed(&not_true));
    }
}
