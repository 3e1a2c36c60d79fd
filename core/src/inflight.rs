//! How many reads to keep in flight against an object store.
//!
//! A link carries its bandwidth only with a bandwidth-delay product of
//! bytes in flight; neither factor is known before the reads start (a
//! loopback Garage, a city's WAN, a 100 Mbit/s line to a DRC). So it is
//! measured as the reads go: the window starts small and, after each round
//! (as many reads finished as the window allows), grows when that round
//! moved bytes clearly faster than the best round before: doubling until
//! a round fails to gain, then by a quarter. A growth that brought no gain
//! is taken back. Every few rounds without a gain it probes one step up
//! again (the link may have freed up), and the best rate seen decays a
//! little each round so it follows a link that slowed down. It never grows
//! past its `max`, which bounds the memory in flight.

use std::time::Instant;

/// The adaptive limit on reads in flight.
#[derive(Debug)]
pub struct Window {
    limit: usize,
    max: usize,
    slow_start: bool,
    round_start: Instant,
    round_done: usize,
    round_bytes: u64,
    best: f64,
    /// The limit before the last growth, until a round shows it paid.
    grown_from: Option<usize>,
    /// Rounds since the last growth.
    stale: usize,
}

/// A round counts as faster when it beats the best by this much.
const GAIN: f64 = 1.10;
/// The best rate's decay per round without a gain.
const DECAY: f64 = 0.97;
/// Rounds without a gain before probing one step up.
const PROBE_EVERY: usize = 8;

impl Window {
    pub fn new(start: usize, max: usize) -> Self {
        let max = max.max(1);
        Window {
            limit: start.clamp(1, max),
            max,
            slow_start: true,
            round_start: Instant::now(),
            round_done: 0,
            round_bytes: 0,
            best: 0.0,
            grown_from: None,
            stale: 0,
        }
    }

    /// A window that never changes (a local disk).
    pub fn fixed(n: usize) -> Self {
        Self::new(n, n)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// One read finished, having moved `bytes`.
    pub fn done(&mut self, bytes: u64) {
        self.done_at(bytes, Instant::now());
    }

    fn done_at(&mut self, bytes: u64, now: Instant) {
        self.round_done += 1;
        self.round_bytes += bytes;
        if self.round_done < self.limit {
            return;
        }
        let secs = now.duration_since(self.round_start).as_secs_f64().max(1e-6);
        let rate = self.round_bytes as f64 / secs;
        if rate > self.best * GAIN {
            self.best = rate;
            self.grow();
        } else {
            self.slow_start = false;
            self.best = (self.best * DECAY).max(rate);
            if let Some(before) = self.grown_from.take() {
                self.limit = before;
            }
            self.stale += 1;
            if self.stale >= PROBE_EVERY {
                self.grow();
            }
        }
        self.round_start = now;
        self.round_done = 0;
        self.round_bytes = 0;
    }

    fn grow(&mut self) {
        let to = if self.slow_start {
            self.limit * 2
        } else {
            self.limit + self.limit.div_ceil(4)
        }
        .min(self.max);
        self.grown_from = (to > self.limit).then_some(self.limit);
        self.limit = to;
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A link of `bw` bytes/s and `rtt`: a window of `w` reads of `size`
    /// bytes finishes a round in max(rtt, w·size/bw).
    fn run(bw: f64, rtt: f64, size: u64, rounds: usize, w: &mut Window, t: &mut Instant) {
        for _ in 0..rounds {
            let n = w.limit();
            let secs = rtt.max(n as f64 * size as f64 / bw);
            let step = Duration::from_secs_f64(secs / n as f64);
            for _ in 0..n {
                *t += step;
                w.done_at(size, *t);
            }
        }
    }

    #[test]
    fn the_window_grows_to_fill_the_bandwidth_delay_product_and_stops() {
        // 100 Mbit/s, 200 ms: a BDP of 2.5 MB, 2.4 reads of 1 MiB in flight;
        // a few more than that fill the link, many more gain nothing.
        let mut t = Instant::now();
        let mut w = Window::new(1, 64);
        w.round_start = t;
        run(12.5e6, 0.2, 1 << 20, 40, &mut w, &mut t);
        assert!(
            (3..=16).contains(&w.limit()),
            "limit {} for a BDP of 2.4 reads",
            w.limit()
        );
        // 1 Gbit/s, 200 ms: 24 reads in flight are needed.
        let mut w = Window::new(1, 64);
        w.round_start = t;
        run(125e6, 0.2, 1 << 20, 40, &mut w, &mut t);
        assert!(w.limit() >= 24, "limit {} for a BDP of 24 reads", w.limit());
    }

    #[test]
    fn the_window_never_passes_its_maximum_or_a_fixed_size() {
        let mut t = Instant::now();
        let mut w = Window::new(4, 10);
        run(1e12, 1.0, 1 << 20, 50, &mut w, &mut t);
        assert_eq!(w.limit(), 10);
        let mut f = Window::fixed(3);
        run(1e12, 1.0, 1 << 20, 50, &mut f, &mut t);
        assert_eq!(f.limit(), 3);
    }
}
