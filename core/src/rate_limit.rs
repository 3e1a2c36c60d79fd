//! A request rate limit per client: a token bucket of `burst` requests
//! refilled at `per_second`, one bucket per key — the client's address at
//! the controller (`rate_limit_per_second`, `rate_limit_burst`; over it
//! 429 `rate_limited`, which agents and the CLI retry), the credential at
//! the DRC gateway (over it `SlowDown`, which S3 clients retry).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// More keys than this and the full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// None when `per_second` is 0 (no limit).
    pub fn new(per_second: f64, burst: f64) -> Option<RateLimiter<K>> {
        (per_second > 0.0).then(|| RateLimiter {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::default(),
        })
    }

    /// Takes one request from `key`'s bucket; Err: how long until the next.
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let l = RateLimiter::<std::net::IpAddr>::new(10.0, 3.0).unwrap();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..3 {
            l.check(a, t).unwrap();
        }
        let wait = l.check(a, t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        // Another address has its own bucket.
        l.check(b, t).unwrap();
        // A tenth of a second later: one more.
        l.check(a, t + Duration::from_millis(100)).unwrap();
        assert!(l.check(a, t + Duration::from_millis(100)).is_err());
        assert!(RateLimiter::<String>::new(0.0, 10.0).is_none());
    }
}
