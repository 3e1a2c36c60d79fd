//! The restore's content: each needed range of each pack fetched once,
//! every blob authenticated and its id re-hashed, then written to every
//! place that needs it.
//!
//! From a local store, a few ranges of at most 1 MiB are read whole at
//! once. From an object store, ranges are larger (see
//! [`super::ranges::REMOTE`]) and streamed: each blob is opened and written
//! as soon as its bytes have arrived, while the rest of the range and other
//! ranges are still coming, so a read holds about one blob (plus a batch
//! being written), not its range. How many reads are in flight is measured
//! as the restore goes ([`crate::inflight::Window`]); the blobs that
//! arrived and wait to be written are bounded in bytes ([`HELD_MAX`] by
//! default), so a disk slower than the link holds the reads back instead
//! of piling their bytes up in memory.

use std::collections::VecDeque;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::RestoreProgress;
use super::ranges::{Range, Target};
use super::walk::Planned;
use crate::crypto::Key;
use crate::id::PackId;
use crate::inflight::Window;
use crate::keys::SpaceKeys;
use crate::pack::{self, PackEntry};
use crate::repo::Reader;
use crate::{Error, Result};

/// Reads in flight against an object store: where the window starts, and
/// the most it grows to. Each holds the blob arriving (≤ the chunker's
/// maximum, 2 MiB by default) beside what [`HELD_MAX`] bounds.
const REMOTE_START: usize = 8;
const REMOTE_MAX: usize = 48;
/// The most bytes of whole blobs (or frames) that arrived from an object
/// store and wait in batches to be written, over all reads, by default
/// (`RestoreOptions::held_bytes`). A read that finds it full hands its
/// batch to the writers and waits, no longer reading from its connection
/// (the store's bytes then wait in the kernel's socket buffers and on the
/// link, not in this process).
pub(super) const HELD_MAX: usize = 24 << 20;
/// Blobs that arrived are written in batches of about this many bytes (one
/// task on the blocking pool each), one batch per read at a time.
const WRITE_BATCH: usize = 1 << 20;

/// What the writers share.
#[derive(Clone)]
pub(super) struct Sink {
    pub(super) files: Arc<Vec<Planned>>,
    pub(super) keys: SpaceKeys,
    pub(super) progress: Arc<RestoreProgress>,
    /// Opens once every file exists: the reads start while the files are
    /// still being created, the writes wait for them.
    pub(super) created: Arc<Created>,
}

/// A gate the writers wait at until the restore's empty files are made
/// (or could not be: then every write fails, and the restore reports the
/// creation's own error).
#[derive(Default)]
pub(super) struct Created {
    state: std::sync::Mutex<Option<bool>>,
    opened: std::sync::Condvar,
}

impl Created {
    pub(super) fn open(&self, ok: bool) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(ok);
        self.opened.notify_all();
    }

    /// Blocks (a blocking-pool thread) until the files are made.
    fn wait(&self) -> Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match *s {
                Some(true) => return Ok(()),
                Some(false) => {
                    return Err(Error::Task(
                        "the restore's files could not be created".into(),
                    ));
                }
                None => s = self.opened.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

/// One unit's bytes (a blob's, or a frame's) and the blobs wanted from it.
type Arrived = (Vec<(PackEntry, Vec<Target>)>, Bytes);

impl Sink {
    /// Opens each unit once (a frame is decompressed once for all its
    /// blobs) and writes each blob to its places (on a blocking thread).
    fn write(&self, pk: &Key, pack_id: &PackId, units: &[Arrived]) -> Result<()> {
        self.created.wait()?;
        for (blobs, ct) in units {
            let need = pack::need_of(blobs.iter().map(|(e, _)| e));
            let unit = pack::Unit::open(pk, pack_id, &blobs[0].0, ct, need)?;
            for (entry, targets) in blobs {
                let raw = unit.blob(pack_id, entry, &self.keys)?;
                self.write_blob(raw, targets)?;
            }
        }
        Ok(())
    }

    fn write_blob(&self, raw: &[u8], targets: &[Target]) -> Result<()> {
        for t in targets {
            let path = &self.files[t.file].path;
            if raw.len() as u64 != t.len {
                return Err(Error::corrupt(
                    format!("{}", path.display()),
                    format!(
                        "a data blob of {} bytes where the tree's sizes place {} bytes at offset {}",
                        raw.len(),
                        t.len,
                        t.offset
                    ),
                ));
            }
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            // In pieces: see `storage::LOCAL_WRITE`.
            let mut at = t.offset;
            for piece in raw.chunks(crate::storage::LOCAL_WRITE) {
                f.write_all_at(piece, at).map_err(|e| Error::io(path, e))?;
                at += piece.len() as u64;
            }
        }
        self.progress
            .bytes
            .fetch_add(raw.len() as u64 * targets.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn truncated(pack: &PackId, entry: &PackEntry) -> Error {
    Error::corrupt(
        format!("pack {pack}"),
        format!(
            "blob {} lies beyond the end of the pack (truncated)",
            entry.id
        ),
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// Fetches and writes every range.
pub(super) async fn fetch(
    reader: &Reader,
    ranges: Vec<Range>,
    sink: Sink,
    local_concurrency: usize,
    held_max: usize,
) -> Result<()> {
    let remote = reader.repo.store.local_dir().is_none();
    let mut window = if remote {
        Window::new(REMOTE_START, REMOTE_MAX)
    } else {
        Window::fixed(local_concurrency.max(1))
    };
    let held = Held::new(held_max);
    let mut todo = ranges.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < window.limit() {
            let Some(r) = todo.next() else { break };
            let sink = sink.clone();
            let held = held.clone();
            running.push(async move {
                if remote {
                    streamed(reader, r, sink, held).await
                } else {
                    whole(reader, r, sink).await
                }
            });
        }
        match running.next().await {
            Some(done) => window.done(done?),
            None => break,
        }
    }
    tracing::debug!(
        window = window.limit(),
        "restore: reads in flight at the end"
    );
    Ok(())
}

/// One range read whole, then written (a local store). Returns its length.
async fn whole(reader: &Reader, r: Range, sink: Sink) -> Result<u64> {
    let session = reader.session(r.session).await?;
    let span = reader
        .repo
        .store
        .get_range(&pack::pack_key_name(&r.pack), r.lo..r.hi)
        .await?;
    let pk = session.pack_key(&r.pack);
    let len = r.hi - r.lo;
    blocking(move || {
        let mut arrived: Vec<Arrived> = Vec::with_capacity(r.blobs.len());
        for (entry, targets) in r.blobs {
            if let Some((blobs, _)) = arrived.last_mut()
                && pack::same_unit(&blobs[0].0, &entry)
            {
                blobs.push((entry, targets));
                continue;
            }
            let s = (entry.offset as u64 - r.lo) as usize;
            let e = s + entry.stored_len as usize;
            if e > span.len() {
                return Err(truncated(&r.pack, &entry));
            }
            arrived.push((vec![(entry, targets)], span.slice(s..e)));
        }
        sink.write(&pk, &r.pack, &arrived)
    })
    .await?;
    Ok(len)
}

type Writing = Option<tokio::task::JoinHandle<Result<()>>>;

/// What all reads may hold of arrived blobs waiting to be written, in
/// KiB shares of a semaphore.
#[derive(Clone)]
struct Held {
    shares: Arc<Semaphore>,
    total: u32,
}

impl Held {
    fn new(bytes: usize) -> Self {
        let total = (bytes >> 10).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
        Held {
            shares: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// The shares of `len` bytes: never more than the whole, so a blob
    /// larger than the bound still passes, alone.
    fn shares_of(&self, len: usize) -> u32 {
        (len.div_ceil(1 << 10)).clamp(1, self.total as usize) as u32
    }
}

/// Blobs that arrived, waiting to be written, and their shares of what
/// may be held (given back once they are written).
#[derive(Default)]
struct Batch {
    units: Vec<Arrived>,
    bytes: usize,
    held: Option<OwnedSemaphorePermit>,
}

impl Batch {
    /// Hands the batch to a blocking thread once the one before it is
    /// written.
    async fn write(
        &mut self,
        sink: &Sink,
        pk: &Key,
        pack_id: PackId,
        writing: &mut Writing,
    ) -> Result<()> {
        if let Some(w) = writing.take() {
            w.await.map_err(|e| Error::Task(e.to_string()))??;
        }
        let Batch { units, held, .. } = std::mem::take(self);
        let (sink, pk) = (sink.clone(), pk.clone());
        *writing = Some(tokio::task::spawn_blocking(move || {
            let done = sink.write(&pk, &pack_id, &units);
            drop((units, held));
            done
        }));
        Ok(())
    }

    /// Takes `len` bytes' share of what may be held: at once if it is
    /// free, else after handing this batch to the writers (whose finished
    /// writes give shares back, so a read never waits on itself).
    async fn hold(
        &mut self,
        len: usize,
        budget: &Held,
        to: (&Sink, &Key, PackId, &mut Writing),
    ) -> Result<()> {
        let n = budget.shares_of(len);
        let permit = match budget.shares.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(_) => {
                if !self.units.is_empty() {
                    let (sink, pk, pack_id, writing) = to;
                    self.write(sink, pk, pack_id, writing).await?;
                }
                budget
                    .shares
                    .clone()
                    .acquire_many_owned(n)
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?
            }
        };
        match &mut self.held {
            Some(h) => h.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

/// One range streamed: each blob written once its bytes are here, in
/// batches, one batch at a time on the blocking pool while the next
/// arrives. Returns the bytes received. A batch being written is waited
/// for even when the read fails (nothing writes after the restore ends).
async fn streamed(reader: &Reader, r: Range, sink: Sink, held: Held) -> Result<u64> {
    let mut writing: Writing = None;
    let result = stream_range(reader, r, sink, &held, &mut writing).await;
    if let Some(w) = writing.take() {
        let written = w.await.map_err(|e| Error::Task(e.to_string()));
        if result.is_ok() {
            written??;
        }
    }
    result
}

async fn stream_range(
    reader: &Reader,
    r: Range,
    sink: Sink,
    held: &Held,
    writing: &mut Writing,
) -> Result<u64> {
    let session = reader.session(r.session).await?;
    let pk = session.pack_key(&r.pack);
    let pack_id = r.pack;
    let mut stream = reader
        .repo
        .store
        .get_range_stream(&pack::pack_key_name(&pack_id), r.lo..r.hi)
        .await?;
    let mut blobs: VecDeque<(PackEntry, Vec<Target>)> = r.blobs.into();
    let mut arrived = Arrivals::new(r.lo);
    let mut received = 0u64;
    let mut batch = Batch::default();
    let mut ended = false;
    while !blobs.is_empty() {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                received += chunk.len() as u64;
                arrived.push(chunk);
            }
            None => ended = true,
        }
        while let Some((e, _)) = blobs.front() {
            let (lo, hi) = (e.offset as u64, e.offset as u64 + e.stored_len as u64);
            let Some(ct) = arrived.take(lo, hi) else {
                break;
            };
            // The unit's blobs: one, or every wanted blob of a frame.
            let mut unit = vec![blobs.pop_front().expect("just looked")];
            while let Some((next, _)) = blobs.front()
                && pack::same_unit(&unit[0].0, next)
            {
                unit.push(blobs.pop_front().expect("just looked"));
            }
            batch
                .hold(ct.len(), held, (&sink, &pk, pack_id, writing))
                .await?;
            batch.bytes += ct.len();
            batch.units.push((unit, ct));
        }
        if batch.bytes >= WRITE_BATCH || (blobs.is_empty() && !batch.units.is_empty()) {
            batch.write(&sink, &pk, pack_id, writing).await?;
        }
        if ended && !blobs.is_empty() {
            let (e, _) = blobs.front().expect("not empty");
            return Err(truncated(&pack_id, e));
        }
    }
    Ok(received)
}

/// The bytes of a range as they arrived, in the pieces the connection
/// gave them: a blob within one piece is a slice of it (no copy), one
/// across pieces is copied once into a buffer of its own size.
struct Arrivals {
    pieces: VecDeque<Bytes>,
    /// The pack offset of the first byte held.
    at: u64,
    len: u64,
}

impl Arrivals {
    fn new(at: u64) -> Self {
        Arrivals {
            pieces: VecDeque::new(),
            at,
            len: 0,
        }
    }

    fn push(&mut self, piece: Bytes) {
        self.len += piece.len() as u64;
        self.pieces.push_back(piece);
    }

    /// Drops `n` bytes from the front.
    fn skip(&mut self, mut n: u64) {
        self.at += n;
        self.len -= n;
        while n > 0 {
            let front = self.pieces.front_mut().expect("n ≤ len");
            if (front.len() as u64) <= n {
                n -= front.len() as u64;
                self.pieces.pop_front();
            } else {
                front.advance(n as usize);
                n = 0;
            }
        }
    }

    /// The pack's bytes `lo..hi` (lo ≥ every earlier `hi`), once all have
    /// arrived; the bytes before `hi` are dropped.
    fn take(&mut self, lo: u64, hi: u64) -> Option<Bytes> {
        if hi > self.at + self.len {
            return None;
        }
        self.skip(lo - self.at);
        let n = (hi - lo) as usize;
        let front = self.pieces.front()?;
        let out = if front.len() >= n {
            front.slice(..n)
        } else {
            let mut v = Vec::with_capacity(n);
            for p in &self.pieces {
                let want = (n - v.len()).min(p.len());
                v.extend_from_slice(&p[..want]);
                if v.len() == n {
                    break;
                }
            }
            Bytes::from(v)
        };
        self.skip(n as u64);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_come_out_whole_across_pieces_and_gaps_are_dropped() {
        let pack: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        // Arrives from offset 100 in pieces of odd sizes.
        let mut a = Arrivals::new(100);
        let mut pos = 100;
        let mut got = Vec::new();
        // Blobs at 100..150 (inside a piece), 160..3000 (across pieces),
        // 3000..3001, 5000..9999.
        let want = [(100, 150), (160, 3000), (3000, 3001), (5000, 9999)];
        let mut next = 0;
        for size in [70, 1, 999, 3333, 17, 10_000] {
            let end = (pos + size).min(pack.len());
            a.push(Bytes::copy_from_slice(&pack[pos..end]));
            pos = end;
            while next < want.len() {
                let (lo, hi) = want[next];
                match a.take(lo as u64, hi as u64) {
                    Some(b) => {
                        got.push(b);
                        next += 1;
                    }
                    None => break,
                }
            }
        }
        assert_eq!(got.len(), want.len());
        for (b, (lo, hi)) in got.iter().zip(want) {
            assert_eq!(&b[..], &pack[lo..hi]);
        }
        assert_eq!(a.take(9999, 10_001), None, "not there: the range ended");
    }
}
