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
//! # Progress
//!
//! Creating a replica takes many minutes. capstan never waits for it inside one invocation: it
//! asks RDS to create the replica and reads its status on later evaluations. While any owned
//! replica (or the source) is in any status other than `available`, e.g. `creating`,
//! `modifying` or `deleting`, the target is busy and the engine stacks no further change.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbInstance, Tag};

use capstan_engine::CurrentCapacity;

use crate::error::{AwsError, ErrorKind};

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

/// Engines whose plain RDS instances capstan makes replicas of.
const ENGINES: &[&str] = &["mysql", "mariadb", "postgres"];

/// Read replicas of RDS source instances.
#[derive(Debug, Clone)]
pub struct RdsReplicas {
    client: Client,
}

/// What RDS says about a source and its replicas, after the checks.
struct Replicas {
    /// The source's engine.
    engine: String,
    /// The source's status.
    status: String,
    /// capstan's replicas, oldest first.
    owned: Vec<DbInstance>,
    /// Replicas someone else made.
    unowned: u32,
}

impl RdsReplicas {
    /// Replicas reached through the given client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The number of replicas of `source` capstan owns (not counting ones being deleted), and
    /// how many of them are `available` (in service). The resource's maximum is RDS's limit of
    /// [`MAX_REPLICAS`] less the replicas capstan does not own; the target is busy while the
    /// source or an owned replica is not `available`.
    ///
    /// A missing source is [`ErrorKind::NotFound`]; an Aurora or other unsupported engine, or
    /// a source with automated backups disabled (RDS cannot create replicas of it), is
    /// [`ErrorKind::Invalid`].
    pub async fn current(&self, source: &str) -> Result<CurrentCapacity, AwsError> {
        let replicas = self.replicas(source, DESCRIBE).await?;
        let live: Vec<&DbInstance> = replicas
            .owned
            .iter()
            .filter(|replica| replica.db_instance_status() != Some("deleting"))
            .collect();
        let busy = busy(source, &replicas);
        Ok(CurrentCapacity {
            desired: count(live.iter()),
            resource_max: Some(MAX_REPLICAS.saturating_sub(replicas.unowned)),
            resource_max_reason: Some(format!(
                "RDS allows {MAX_REPLICAS} read replicas of a {} source; {} of them are not capstan's",
                replicas.engine, replicas.unowned
            )),
            busy,
            in_service: Some(count(
                live.iter()
                    .filter(|replica| replica.db_instance_status() == Some("available")),
            )),
            ..Default::default()
        })
    }

    /// Brings the replicas of `source` capstan owns to `desired`: creates the missing ones,
    /// tagged for `policy`, or deletes the newest owned ones. Returns without waiting for RDS to
    /// finish; see [Progress](RdsReplicas#progress).
    pub async fn set_desired(
        &self,
        source: &str,
        policy: &str,
        desired: u32,
    ) -> Result<(), AwsError> {
        let replicas = self.replicas(source, CREATE).await?;
        let live: Vec<&DbInstance> = replicas
            .owned
            .iter()
            .filter(|replica| replica.db_instance_status() != Some("deleting"))
            .collect();
        let have = count(live.iter());
        if desired
            .saturating_sub(have)
            .saturating_add(replicas.unowned)
            > MAX_REPLICAS
        {
            return Err(AwsError::new(
                CREATE,
                source,
                ErrorKind::Invalid,
                format!(
                    "{desired} replicas would exceed RDS's limit of {MAX_REPLICAS} ({} are not capstan's)",
                    replicas.unowned
                ),
            ));
        }
        let taken: Vec<&str> = replicas
            .owned
            .iter()
            .filter_map(|replica| replica.db_instance_identifier())
            .collect();
        for name in replica_names(source, &taken)
            .into_iter()
            .take(desired.saturating_sub(have) as usize)
        {
            tracing::info!(source, replica = %name, "CreateDBInstanceReadReplica");
            self.client
                .create_db_instance_read_replica()
                .db_instance_identifier(&name)
                .source_db_instance_identifier(source)
                .tags(tag(MANAGED_TAG, "true"))
                .tags(tag(POLICY_TAG, policy))
                .send()
                .await
                .map_err(|error| AwsError::from_sdk(CREATE, &name, error))?;
        }
        for replica in live
            .iter()
            .rev()
            .take(have.saturating_sub(desired) as usize)
        {
            let name = replica.db_instance_identifier().unwrap_or_default();
            if name == source || !is_managed(replica) {
                continue;
            }
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

    /// Reads the source and its replicas, and checks the source can have replicas; errors are
    /// reported as `operation` on `source`.
    async fn replicas(&self, source: &str, operation: &'static str) -> Result<Replicas, AwsError> {
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
        let mut owned = Vec::new();
        let mut unowned = 0;
        let mut pages = self.client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AwsError::from_sdk(DESCRIBE, source, error))?;
            for replica in page.db_instances() {
                if replica.read_replica_source_db_instance_identifier() != Some(source) {
                    continue;
                }
                if is_managed(replica) {
                    owned.push(replica.clone());
                } else {
                    unowned += 1;
                }
            }
        }
        owned.sort_by(|a, b| {
            (a.instance_create_time(), a.db_instance_identifier())
                .partial_cmp(&(b.instance_create_time(), b.db_instance_identifier()))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(Replicas {
            engine,
            status: instance
                .db_instance_status()
                .unwrap_or("unknown")
                .to_owned(),
            owned,
            unowned,
        })
    }
}

/// Why no change must be made now: the source or an owned replica is not `available` (see
/// [Progress](RdsReplicas#progress)).
fn busy(source: &str, replicas: &Replicas) -> Option<String> {
    if replicas.status != "available" {
        return Some(format!("the source {source} is {}", replicas.status));
    }
    let pending = replicas
        .owned
        .iter()
        .find(|replica| replica.db_instance_status() != Some("available"))?;
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

/// How many `items` there are, as a capacity.
fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
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

/// Identifiers for new replicas of `source`, `<source>-replica-<n>` for the smallest unused
/// `n`s, cut to RDS's 63 characters; in order, as many as could ever be needed.
fn replica_names(source: &str, taken: &[&str]) -> Vec<String> {
    (1..=MAX_REPLICAS)
        .map(|n| {
            let suffix = format!("-replica-{n}");
            let keep = 63 - suffix.len();
            let stem = source.get(..keep).unwrap_or(source).trim_end_matches('-');
            format!("{stem}{suffix}")
        })
        .filter(|name| !taken.contains(&name.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names_skip_taken_ones_and_fit_rds_limit() {
        let names = replica_names("orders-db", &["orders-db-replica-1"]);
        assert_eq!(names[..2], ["orders-db-replica-2", "orders-db-replica-3"]);
        let long = "a".repeat(70);
        assert!(
            replica_names(&long, &[])
                .iter()
                .all(|name| name.len() <= 63)
        );
    }

    #[test]
    fn a_replica_being_created_or_a_busy_source_makes_the_target_busy() {
        let replica = |name: &str, status: &str| {
            DbInstance::builder()
                .db_instance_identifier(name)
                .db_instance_status(status)
                .build()
        };
        let replicas = |status: &str, owned: Vec<DbInstance>| Replicas {
            engine: "postgres".into(),
            status: status.into(),
            owned,
            unowned: 0,
        };
        let ready = replicas(
            "available",
            vec![replica("orders-db-replica-1", "available")],
        );
        assert_eq!(busy("orders-db", &ready), None);
        let creating = replicas(
            "available",
            vec![
                replica("orders-db-replica-1", "available"),
                replica("orders-db-replica-2", "creating"),
            ],
        );
        assert_eq!(
            busy("orders-db", &creating).as_deref(),
            Some("replica orders-db-replica-2 is creating")
        );
        let modifying = replicas("modifying", Vec::new());
        assert_eq!(
            busy("orders-db", &modifying).as_deref(),
            Some("the source orders-db is modifying")
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
