//! The bandwidth cap of one direction of a link: a token bucket that
//! every connection's writer in that direction draws from.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The smallest burst: a few writes' worth, so one stream reaches the rate.
const BURST_MIN: usize = 32 * 1024;
/// The burst also covers this much time at the rate: a writer that wakes
/// up late (the timer, a loaded machine) makes up for it instead of
/// losing the time, as long as it is late by less than this.
const BURST_TIME: Duration = Duration::from_millis(10);

/// Tokens are bytes; they come at the rate, up to the burst. A writer
/// takes its bytes' tokens before writing and, when there are not
/// enough, goes into debt and waits until the debt is paid: writers of
/// the direction queue in the order they asked, none starves, and over
/// any span the bytes written are at most rate × span + burst.
pub(super) struct Bucket {
    bytes_per_sec: f64,
    burst: f64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket for `rate_bps` bits per second.
    pub(super) fn new(rate_bps: u64, now: Instant) -> Bucket {
        let bytes_per_sec = rate_bps as f64 / 8.0;
        let burst = (BURST_MIN as f64).max(bytes_per_sec * BURST_TIME.as_secs_f64());
        Bucket {
            bytes_per_sec,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                at: now,
            }),
        }
    }

    /// How many bytes one write should hand over at most, so the bytes
    /// leave about a millisecond apart rather than in big lumps.
    pub(super) fn piece(&self) -> usize {
        ((self.bytes_per_sec / 1000.0) as usize).clamp(1024, 16 * 1024)
    }

    /// Takes `n` bytes' tokens at `now`; returns when they may be written.
    pub(super) fn take(&self, n: usize, now: Instant) -> Instant {
        let mut s = self.state.lock().unwrap();
        let earned = now.saturating_duration_since(s.at).as_secs_f64() * self.bytes_per_sec;
        s.tokens = (s.tokens + earned).min(self.burst);
        s.at = s.at.max(now);
        s.tokens -= n as f64;
        if s.tokens >= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(-s.tokens / self.bytes_per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_lets_the_burst_through_then_paces_at_the_rate() {
        let t0 = Instant::now();
        // 8 Mbit/s: a million bytes a second; the burst is the minimum.
        let b = Bucket::new(8_000_000, t0);
        assert_eq!(b.take(BURST_MIN, t0), t0);
        about(b.take(10_000, t0) - t0, Duration::from_millis(10));
        // A second writer asking at once queues behind the first's debt.
        about(b.take(10_000, t0) - t0, Duration::from_millis(20));
    }

    fn about(got: Duration, want: Duration) {
        assert!(
            got.abs_diff(want) < Duration::from_micros(1),
            "{got:?} != {want:?}"
        );
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let t0 = Instant::now();
        let b = Bucket::new(8_000_000, t0);
        b.take(BURST_MIN, t0);
        // 5 ms later: 5000 bytes earned.
        let t1 = t0 + Duration::from_millis(5);
        assert_eq!(b.take(4000, t1), t1);
        assert!(b.take(2000, t1) > t1);
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.take(BURST_MIN, t2), t2);
        assert!(b.take(1000, t2) > t2);
    }

    #[test]
    fn fast_links_have_a_burst_of_some_milliseconds() {
        let t0 = Instant::now();
        // 1 Gbit/s: 125 MB/s, 10 ms of it is 1 250 000 bytes.
        let b = Bucket::new(1_000_000_000, t0);
        assert_eq!(b.take(1_250_000, t0), t0);
        assert!(b.take(1000, t0) > t0);
        assert_eq!(b.piece(), 16 * 1024);
        assert_eq!(Bucket::new(500_000, t0).piece(), 1024);
    }
}
