//! One direction of one connection: a reader that stamps each chunk it
//! reads with the time and queues it on the wire, and a writer that hands
//! each chunk on when its time plus the delay has come, at the
//! direction's rate. The two run at once, so bytes keep flowing while
//! earlier ones are still on their way.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bucket::Bucket;
use super::stop::Stop;
use super::wire::{Chunk, Rx, Tx, What, wire};

/// The most one read takes in: small enough that pacing stays smooth,
/// large enough that a fast uncapped link costs little.
const CHUNK: usize = 32 * 1024;

pub(super) struct Direction {
    /// `up` (client to server) or `down`, for the threads' names.
    pub name: &'static str,
    pub from: TcpStream,
    pub to: TcpStream,
    /// Nothing read counts as sent before this: what the handshake costs.
    pub floor: Instant,
    pub delay: Duration,
    /// The most bytes in flight (see `wire`).
    pub bound: usize,
    pub bucket: Option<Arc<Bucket>>,
    /// This direction goes dead after passing this many bytes.
    pub cut_after: Option<u64>,
    /// Set once the connection went dead: its readers then discard.
    pub dead: Arc<AtomicBool>,
    pub stop: Arc<Stop>,
}

impl Direction {
    /// Starts the reader and the writer.
    pub(super) fn spawn(self) -> io::Result<Vec<JoinHandle<()>>> {
        let (tx, rx) = wire(self.bound);
        let reader = Reader {
            from: self.from.try_clone()?,
            tx,
            floor: self.floor,
            cut_after: self.cut_after,
            dead: self.dead,
        };
        let writer = Writer {
            rx,
            to: self.to,
            from: self.from,
            delay: self.delay,
            bucket: self.bucket,
            stop: self.stop,
        };
        let reader = super::spawn(&format!("netem-{}-read", self.name), move || reader.run())?;
        let writer = super::spawn(&format!("netem-{}-write", self.name), move || writer.run())?;
        Ok(vec![reader, writer])
    }
}

struct Reader {
    from: TcpStream,
    tx: Tx,
    floor: Instant,
    cut_after: Option<u64>,
    dead: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        let mut passed = 0u64;
        loop {
            let read = self.from.read(&mut buf);
            let at = Instant::now().max(self.floor);
            let what = match read {
                Ok(0) => What::End,
                Ok(n) => What::Data(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => What::Broken,
            };
            if self.dead.load(Ordering::SeqCst) {
                // Nothing passes, not even the end: each side's socket
                // stays open until both ended (or the link stops).
                match what {
                    What::Data(_) => continue,
                    What::End | What::Broken => return,
                }
            }
            let what = match (what, self.cut_after) {
                (What::Data(mut d), Some(cut)) => {
                    let room = cut - passed;
                    if d.len() as u64 >= room {
                        d.truncate(room as usize);
                        self.dead.store(true, Ordering::SeqCst);
                    }
                    passed += d.len() as u64;
                    if d.is_empty() {
                        continue;
                    }
                    What::Data(d)
                }
                (what, _) => what,
            };
            let last = !matches!(what, What::Data(_));
            if !self.tx.push(Chunk { at, what }) || last {
                return;
            }
        }
    }
}

struct Writer {
    rx: Rx,
    to: TcpStream,
    /// Shut when `to` fails, so the sender learns the way is closed.
    from: TcpStream,
    delay: Duration,
    bucket: Option<Arc<Bucket>>,
    stop: Arc<Stop>,
}

impl Writer {
    fn run(mut self) {
        while let Some(chunk) = self.rx.pop() {
            if !self.stop.wait_until(chunk.at + self.delay) {
                return;
            }
            match chunk.what {
                What::Data(d) => {
                    if !self.write(&d) {
                        let _ = self.from.shutdown(Shutdown::Both);
                        return;
                    }
                }
                What::End => {
                    let _ = self.to.shutdown(Shutdown::Write);
                }
                What::Broken => {
                    let _ = self.to.shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// Writes `d` at the rate, in pieces; false when `to` failed or the
    /// link stopped.
    fn write(&mut self, d: &[u8]) -> bool {
        let piece = self.bucket.as_ref().map_or(d.len(), |b| b.piece()).max(1);
        for p in d.chunks(piece) {
            if let Some(b) = &self.bucket
                && !self.stop.wait_until(b.take(p.len(), Instant::now()))
            {
                return false;
            }
            if self.to.write_all(p).is_err() {
                return false;
            }
        }
        true
    }
}
