//! The link's stop signal: every wait of its threads ends early when the
//! link is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[derive(Default)]
pub(super) struct Stop {
    stopped: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Stop {
    pub(super) fn set(&self) {
        let _g = self.lock.lock().unwrap();
        self.stopped.store(true, Ordering::SeqCst);
        self.cv.notify_all();
    }

    pub(super) fn is_set(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Waits until `deadline`: true when it came, false when stopped first.
    pub(super) fn wait_until(&self, deadline: Instant) -> bool {
        if Instant::now() >= deadline {
            return !self.is_set();
        }
        let mut g = self.lock.lock().unwrap();
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}
