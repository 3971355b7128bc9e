//! One token bucket, handing out its tokens in the order they are asked for.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::Limit;

/// A token bucket of [`Limit::burst`] tokens refilled at [`Limit::per_second`], full when made.
/// Asking for a token reserves one: the bucket's own if it has one, otherwise the next to be
/// refilled after those reserved before, so that callers get their turns in the order they asked.
#[derive(Debug)]
pub(super) struct Bucket {
    limit: Limit,
    /// The tokens in the bucket as of an instant; fewer than zero while turns are reserved ahead
    /// of the refill.
    tokens: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket of `limit`.
    pub(super) fn new(limit: Limit) -> Self {
        Self {
            limit,
            tokens: Mutex::new((limit.burst, Instant::now())),
        }
    }

    /// The bucket's size.
    pub(super) fn limit(&self) -> Limit {
        self.limit
    }

    /// Reserves a token asked for now: the instant it may be used (now, or the turn it waits
    /// for). A turn after `deadline` is not reserved: the answer is then `Err` with that turn, and
    /// the bucket is as if nobody had asked.
    pub(super) fn reserve(&self, deadline: Option<Instant>) -> Result<Instant, Instant> {
        // The state stays consistent whatever a panicking holder did: it is written whole, once.
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (left, at) = *tokens;
        let refilled = (now - at).as_secs_f64() * self.limit.per_second;
        let left = (left + refilled).min(self.limit.burst);
        let turn = if left >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - left) / self.limit.per_second)
        };
        if deadline.is_some_and(|deadline| turn > deadline) {
            *tokens = (left, now);
            return Err(turn);
        }
        *tokens = (left - 1.0, now);
        Ok(turn)
    }
}
