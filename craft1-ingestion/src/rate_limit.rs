//! A token bucket per client IP: each client may send `rate` requests per
//! second on average and bursts of up to `burst`; beyond that it gets 429
//! with `Retry-After` instead of starving everyone else.
//!
//! phase0 had no notion of fairness: one client flooding the single thread
//! delayed all the others. Story: docs chapter 1, "Protection".

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Buckets idle this long are forgotten when the table is pruned.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// The table is pruned when it grows past this many clients.
const PRUNE_AT: usize = 100_000;

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Per-client token buckets.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` at once (at least 1).
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client` at `now`; when none is left, how long
    /// until one will be.
    ///
    /// # Errors
    /// The wait until the next token, for `Retry-After`.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if buckets.len() > PRUNE_AT {
            buckets.retain(|_, b| now.saturating_duration_since(b.refilled) < FORGET_AFTER);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(3600)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let limiter = RateLimiter::new(10.0, 3.0);
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(client, t0).is_ok(), "the burst is allowed");
        }
        let wait = limiter.check(client, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(
            limiter.check(other, t0).is_ok(),
            "clients have their own buckets"
        );
        assert!(
            limiter
                .check(client, t0 + Duration::from_millis(100))
                .is_ok(),
            "refilled at the rate"
        );
        assert!(
            limiter
                .check(client, t0 + Duration::from_millis(100))
                .is_err()
        );
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.check(client, later).is_ok());
        }
        assert!(limiter.check(client, later).is_err());
    }
}
