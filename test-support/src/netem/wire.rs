//! One direction's bytes in flight: a queue of chunks, each stamped with
//! the time it was read, bounded in bytes (the reader waits when it is
//! full, as a sender does when its window is), ended from either side.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// What a reader read, and when.
pub(super) struct Chunk {
    pub at: Instant,
    pub what: What,
}

pub(super) enum What {
    Data(Vec<u8>),
    /// The sender closed its side (FIN): pass on as a half-close.
    End,
    /// Reading failed (a reset): pass on as a close of both sides.
    Broken,
}

impl Chunk {
    fn len(&self) -> usize {
        match &self.what {
            What::Data(d) => d.len(),
            What::End | What::Broken => 0,
        }
    }
}

struct Shared {
    state: Mutex<State>,
    not_full: Condvar,
    not_empty: Condvar,
    bound: usize,
}

struct State {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    tx_gone: bool,
    rx_gone: bool,
}

/// The reader's end.
pub(super) struct Tx(Arc<Shared>);
/// The writer's end.
pub(super) struct Rx(Arc<Shared>);

/// A wire holding at most `bound` bytes (one chunk more when empty).
pub(super) fn wire(bound: usize) -> (Tx, Rx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            chunks: VecDeque::new(),
            bytes: 0,
            tx_gone: false,
            rx_gone: false,
        }),
        not_full: Condvar::new(),
        not_empty: Condvar::new(),
        bound,
    });
    (Tx(shared.clone()), Rx(shared))
}

impl Tx {
    /// Queues `chunk`, waiting for room; false once the writer is gone.
    pub(super) fn push(&self, chunk: Chunk) -> bool {
        let w = &self.0;
        let mut s = w.state.lock().unwrap();
        while !s.rx_gone && s.bytes > 0 && s.bytes + chunk.len() > w.bound {
            s = w.not_full.wait(s).unwrap();
        }
        if s.rx_gone {
            return false;
        }
        s.bytes += chunk.len();
        s.chunks.push_back(chunk);
        w.not_empty.notify_one();
        true
    }
}

impl Rx {
    /// The next chunk, waiting for one; None once the reader is gone and
    /// everything it queued was taken.
    pub(super) fn pop(&self) -> Option<Chunk> {
        let w = &self.0;
        let mut s = w.state.lock().unwrap();
        loop {
            if let Some(chunk) = s.chunks.pop_front() {
                s.bytes -= chunk.len();
                w.not_full.notify_one();
                return Some(chunk);
            }
            if s.tx_gone {
                return None;
            }
            s = w.not_empty.wait(s).unwrap();
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().tx_gone = true;
        self.0.not_empty.notify_all();
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().rx_gone = true;
        self.0.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Chunk {
        Chunk {
            at: Instant::now(),
            what: What::Data(vec![7; n]),
        }
    }

    #[test]
    fn chunks_come_out_in_order_then_none_after_the_reader_left() {
        let (tx, rx) = wire(100);
        assert!(tx.push(data(10)));
        assert!(tx.push(data(20)));
        drop(tx);
        assert_eq!(rx.pop().unwrap().len(), 10);
        assert_eq!(rx.pop().unwrap().len(), 20);
        assert!(rx.pop().is_none());
    }

    #[test]
    fn a_full_wire_holds_the_reader_until_the_writer_takes() {
        let (tx, rx) = wire(100);
        assert!(
            tx.push(data(150)),
            "an empty wire takes one chunk of any size"
        );
        let t = std::thread::spawn(move || tx.push(data(10)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.is_finished(), "the reader waits for room");
        assert_eq!(rx.pop().unwrap().len(), 150);
        assert!(t.join().unwrap());
        assert_eq!(rx.pop().unwrap().len(), 10);
    }

    #[test]
    fn a_reader_waiting_for_room_gives_up_when_the_writer_left() {
        let (tx, rx) = wire(100);
        assert!(tx.push(data(100)));
        let t = std::thread::spawn(move || tx.push(data(10)));
        drop(rx);
        assert!(!t.join().unwrap());
    }
}
