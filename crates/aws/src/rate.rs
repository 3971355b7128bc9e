//! Client-side rate limits, so that capstan never throttles itself: every AWS call of a limited
//! [`Category`] first takes a token from that category's bucket, and keeps to this process's share
//! of the limit AWS applies to the whole account and Region.
//!
//! AWS limits its APIs per account and Region with token buckets: a bucket holds at most `burst`
//! requests and refills at `per_second`. [`Category::limit`] gives, for each bucket capstan's calls
//! draw from, the limit AWS documents, or, where AWS documents none, the one capstan assumes
//! (docs/deploy.md, "Rate limits", lists them with their sources). Up to `concurrency` processes
//! (evaluator invocations) draw from the account's buckets at once, so each keeps to
//! [`Limit::share`]: the burst and the rate divided by the concurrency.
//!
//! A call takes its category's next token: at once when the bucket has one, otherwise it waits
//! its turn, behind the calls that asked before it. Calls made for a pass that must end by a
//! deadline ([`RateLimits::until`]) do not wait past it: a call whose turn would only come after
//! the deadline fails at once, as [`ErrorKind::Throttled`], naming the operation, the resource
//! and the limit, and takes no token. The SDK's own retries of a call take no token.

mod bucket;

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::error::{AwsError, ErrorKind};
use bucket::Bucket;

/// A token bucket's size: at most `burst` requests at once, `per_second` on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The bucket's capacity: how many requests may go at once after a quiet while.
    pub burst: f64,
    /// The bucket's refill rate: how many requests per second may go over time.
    pub per_second: f64,
}

impl Limit {
    /// One process's share of this limit when `concurrency` processes draw from it at once: the
    /// burst and the rate divided by the concurrency, with a burst of at least one request (a
    /// smaller bucket would never hold a whole token).
    pub fn share(self, concurrency: NonZeroUsize) -> Self {
        let processes = concurrency.get() as f64;
        Self {
            burst: (self.burst / processes).max(1.0),
            per_second: self.per_second / processes,
        }
    }
}

/// A bucket capstan's calls draw from: one per category of operations AWS limits together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// ECS's service read actions: `DescribeServices`.
    EcsServiceRead,
    /// ECS's service modify actions: `UpdateService`.
    EcsServiceModify,
    /// Every Amazon EC2 Auto Scaling action, one bucket for all: `DescribeAutoScalingGroups`,
    /// `SetDesiredCapacity`.
    AutoScaling,
    /// Every Amazon RDS action, one bucket for all: `DescribeDBInstances`,
    /// `CreateDBInstanceReadReplica`, `DeleteDBInstance`.
    Rds,
    /// MSK's reads: `DescribeClusterV2`, `DescribeClusterOperationV2`, `DescribeTopic`,
    /// `ListTopics`.
    MskRead,
    /// MSK's changes: `UpdateTopic`, `UpdateBrokerCount`.
    MskModify,
    /// CloudWatch `GetMetricData`.
    GetMetricData,
    /// CloudWatch `DescribeAlarms`.
    DescribeAlarms,
    /// CloudWatch `ListTagsForResource`.
    ListAlarmTags,
    /// CloudWatch `PutMetricAlarm`.
    PutMetricAlarm,
    /// CloudWatch `DeleteAlarms`.
    DeleteAlarms,
}

impl Category {
    /// Every category, in the order [`RateLimits`] keeps their buckets.
    const ALL: [Self; 11] = [
        Self::EcsServiceRead,
        Self::EcsServiceModify,
        Self::AutoScaling,
        Self::Rds,
        Self::MskRead,
        Self::MskModify,
        Self::GetMetricData,
        Self::DescribeAlarms,
        Self::ListAlarmTags,
        Self::PutMetricAlarm,
        Self::DeleteAlarms,
    ];

    /// The limit on the whole account and Region: AWS's documented one, or, for Auto Scaling
    /// and MSK, whose numbers AWS does not publish, ECS's for the same kind of call (Auto
    /// Scaling's reads and changes share one bucket, so it gets the lower, ECS's for changes).
    /// A CloudWatch quota of N per second is a bucket of N refilled at N per second.
    pub fn limit(self) -> Limit {
        let (burst, per_second) = match self {
            Self::EcsServiceRead | Self::MskRead => (100.0, 20.0),
            Self::EcsServiceModify | Self::AutoScaling | Self::MskModify => (50.0, 5.0),
            Self::Rds => (300.0, 12.0),
            Self::GetMetricData => (50.0, 50.0),
            Self::DescribeAlarms => (9.0, 9.0),
            Self::ListAlarmTags => (10.0, 10.0),
            Self::PutMetricAlarm | Self::DeleteAlarms => (3.0, 3.0),
        };
        Limit { burst, per_second }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcsServiceRead => "ECS service read actions",
            Self::EcsServiceModify => "ECS service modify actions",
            Self::AutoScaling => "EC2 Auto Scaling API",
            Self::Rds => "RDS API",
            Self::MskRead => "MSK reads",
            Self::MskModify => "MSK changes",
            Self::GetMetricData => "CloudWatch GetMetricData",
            Self::DescribeAlarms => "CloudWatch DescribeAlarms",
            Self::ListAlarmTags => "CloudWatch ListTagsForResource",
            Self::PutMetricAlarm => "CloudWatch PutMetricAlarm",
            Self::DeleteAlarms => "CloudWatch DeleteAlarms",
        })
    }
}

/// This process's buckets, one per [`Category`], shared by every clone, and the deadline of the
/// work at hand.
///
/// By default, the whole account's limits (a process alone) and no deadline.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// One bucket per category, in the order of [`Category::ALL`].
    buckets: Arc<[Bucket]>,
    /// The processes sharing the account's buckets.
    concurrency: NonZeroUsize,
    /// When the calls made through these limits must have started by, if ever.
    deadline: Option<Instant>,
}

impl RateLimits {
    /// Buckets holding this process's [share](Limit::share) of each category's limit, when up to
    /// `concurrency` processes call AWS at once.
    pub fn shared_by(concurrency: NonZeroUsize) -> Self {
        Self {
            buckets: Category::ALL
                .iter()
                .map(|category| Bucket::new(category.limit().share(concurrency)))
                .collect(),
            concurrency,
            deadline: None,
        }
    }

    /// The same buckets, for calls that must start by `deadline` (none: they wait their turn
    /// however long). The deadline is on the wall clock, as Lambda gives it; it is read against
    /// the monotonic clock the buckets keep once, now.
    pub fn until(&self, deadline: Option<DateTime<Utc>>) -> Self {
        let deadline = deadline.map(|deadline| {
            let left = (deadline - Utc::now()).to_std().unwrap_or_default();
            Instant::now() + left
        });
        Self {
            deadline,
            ..self.clone()
        }
    }

    /// Takes a token for one call of `operation` on `resource`, waiting for its turn. When that
    /// turn would come after the deadline, takes none and fails at once, as
    /// [`ErrorKind::Throttled`].
    pub(crate) async fn take(
        &self,
        category: Category,
        operation: &'static str,
        resource: &str,
    ) -> Result<(), AwsError> {
        let bucket = &self.buckets[category as usize];
        match bucket.reserve(self.deadline) {
            Ok(turn) => {
                tokio::time::sleep_until(turn).await;
                Ok(())
            }
            Err(turn) => {
                let (share, limit) = (bucket.limit(), category.limit());
                let late = turn.saturating_duration_since(self.deadline.unwrap_or(turn));
                Err(AwsError::new(
                    operation,
                    resource,
                    ErrorKind::Throttled,
                    format!(
                        "not sent: its turn under capstan's share of the {category} rate limit ({} at once, {} per second: AWS's {} and {} divided by a concurrency of {}) comes {:.1} s after the deadline it must start by; a later pass or sync makes it",
                        share.burst,
                        share.per_second,
                        limit.burst,
                        limit.per_second,
                        self.concurrency,
                        late.as_secs_f64(),
                    ),
                ))
            }
        }
    }

    /// [`take`](Self::take)s a token for the page a paginator asks for after one whose answer
    /// names `next` (its next token or marker); none when it names none, or an empty one, as the
    /// SDK's paginators then stop.
    pub(crate) async fn take_next_page(
        &self,
        next: Option<&str>,
        category: Category,
        operation: &'static str,
        resource: &str,
    ) -> Result<(), AwsError> {
        match next {
            Some(next) if !next.is_empty() => self.take(category, operation, resource).await,
            _ => Ok(()),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::shared_by(NonZeroUsize::MIN)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use futures_util::future::join_all;

    use super::*;

    /// The concurrency of the template's default deployment.
    pub(crate) const FOUR: NonZeroUsize = NonZeroUsize::new(4).unwrap();

    /// The milliseconds since `start`, now.
    pub(crate) fn since(start: Instant) -> u128 {
        (Instant::now() - start).as_millis()
    }

    /// When each of `count` calls of `category`, made one after another from now, got its token:
    /// milliseconds from the first call.
    async fn turns(limits: &RateLimits, category: Category, count: usize) -> Vec<u128> {
        let start = Instant::now();
        let mut turns = Vec::with_capacity(count);
        for _ in 0..count {
            let taken = limits.take(category, "test:Call", "resource").await;
            assert!(
                taken.is_ok(),
                "without a deadline every call waits its turn: {taken:?}"
            );
            turns.push(since(start));
        }
        turns
    }

    /// Asserts `turns` are `expected`, each to the millisecond the timer rounds a turn up to.
    #[track_caller]
    pub(crate) fn assert_turns(turns: &[u128], expected: &[u128]) {
        assert_eq!(turns.len(), expected.len(), "{turns:?}");
        for (turn, expected) in turns.iter().zip(expected) {
            assert!(
                turn.abs_diff(*expected) <= 1,
                "{turns:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn a_share_divides_burst_and_rate_by_the_concurrency_with_a_whole_request_at_least() {
        assert_eq!(
            Category::EcsServiceModify.limit().share(FOUR),
            Limit {
                burst: 12.5,
                per_second: 1.25
            }
        );
        assert_eq!(
            Category::PutMetricAlarm.limit().share(FOUR),
            Limit {
                burst: 1.0,
                per_second: 0.75
            }
        );
        assert_eq!(
            Category::Rds.limit().share(NonZeroUsize::MIN),
            Category::Rds.limit()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_one_request_per_refill() {
        let limits = RateLimits::default();
        // PutMetricAlarm: 3 at once, then one every third of a second.
        assert_turns(
            &turns(&limits, Category::PutMetricAlarm, 6).await,
            &[0, 0, 0, 333, 667, 1000],
        );
        // A quiet while refills the bucket to its burst, and no further.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_turns(
            &turns(&limits, Category::PutMetricAlarm, 4).await,
            &[0, 0, 0, 333],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_of_several_evaluators_keeps_to_its_share() {
        // ECS service modify actions: 50 at once and 5 per second for the account, so 12.5 at
        // once and 1.25 per second for each of 4 evaluators.
        let limits = RateLimits::shared_by(FOUR);
        let turns = turns(&limits, Category::EcsServiceModify, 15).await;
        assert_turns(&turns[..12], &[0; 12]);
        assert_turns(&turns[12..], &[400, 1200, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_a_bucket_and_get_their_turns_in_the_order_they_asked() {
        let limits = RateLimits::default();
        let start = Instant::now();
        // DeleteAlarms: 3 at once, then one every third of a second, whichever clone asks.
        let calls = (0..5).map(|_| {
            let limits = limits.clone();
            async move {
                let taken = limits.take(Category::DeleteAlarms, "test:Call", "r").await;
                taken.map(|()| since(start))
            }
        });
        let answers: Vec<_> = join_all(calls).await;
        let taken: Vec<u128> = answers.into_iter().flatten().collect();
        assert_turns(&taken, &[0, 0, 0, 333, 667]);
        // Another category's bucket is untouched.
        assert_turns(
            &turns(&limits, Category::PutMetricAlarm, 3).await,
            &[0, 0, 0],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_after_the_deadline_is_refused_at_once_and_takes_no_token() {
        let limits = RateLimits::default();
        let start = Instant::now();
        let pass = limits.until(Some(Utc::now() + TimeDelta::milliseconds(900)));
        // PutMetricAlarm: 3 at once, then at 333 and 667 ms, before the deadline; the next turn
        // (1,000 ms) is after it.
        assert_turns(
            &turns(&pass, Category::PutMetricAlarm, 5).await,
            &[0, 0, 0, 333, 667],
        );
        let asked = Instant::now();
        let refused = pass
            .take(
                Category::PutMetricAlarm,
                "cloudwatch:PutMetricAlarm",
                "web-high",
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("the turn after the deadline is refused"));
        assert_eq!(Instant::now(), asked, "refused without waiting");
        assert!(since(start) < 900, "refused before the deadline");
        assert_eq!(refused.kind(), ErrorKind::Throttled);
        assert_eq!(
            refused.to_string(),
            "cloudwatch:PutMetricAlarm on web-high failed: Throttled: not sent: its turn under capstan's share of the CloudWatch PutMetricAlarm rate limit (3 at once, 3 per second: AWS's 3 and 3 divided by a concurrency of 1) comes 0.1 s after the deadline it must start by; a later pass or sync makes it"
        );
        // The refused call took no token: a call without a deadline gets that turn.
        assert_turns(&turns(&limits, Category::PutMetricAlarm, 1).await, &[333]);
        assert_turns(&[since(start)], &[1000]);
    }
}
