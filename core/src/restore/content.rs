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
//! as the restore goes ([`crate::inflight::Window`]).

use std::collections::VecDeque;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

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
/// the most it grows to. Each holds about one blob (≤ the chunker's 4 MiB
/// maximum) and a write batch, so the maximum bounds memory to ~0.3 GiB.
const REMOTE_START: usize = 8;
const REMOTE_MAX: usize = 48;
/// Blobs that arrived are written in batches of about this many bytes (one
/// task on the blocking pool each), one batch per read at a time.
const WRITE_BATCH: usize = 1 << 20;

/// What the writers share.
#[derive(Clone)]
pub(super) struct Sink {
    pub(super) files: Arc<Vec<Planned>>,
    pub(super) keys: SpaceKeys,
    pub(super) progress: Arc<RestoreProgress>,
}

type Arrived = (PackEntry, Vec<Target>, Bytes);

impl Sink {
    /// Opens each blob and writes it to its places (on a blocking thread).
    fn write(&self, pk: &Key, pack_id: &PackId, blobs: &[Arrived]) -> Result<()> {
        for (entry, targets, ct) in blobs {
            let raw = pack::open_blob(pk, pack_id, entry, ct, &self.keys)?;
            for t in targets {
                let path = &self.files[t.file].path;
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
        }
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
) -> Result<()> {
    let remote = reader.repo.store.local_dir().is_none();
    let mut window = if remote {
        Window::new(REMOTE_START, REMOTE_MAX)
    } else {
        Window::fixed(local_concurrency.max(1))
    };
    let mut todo = ranges.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < window.limit() {
            let Some(r) = todo.next() else { break };
            let sink = sink.clone();
            running.push(async move {
                if remote {
                    streamed(reader, r, sink).await
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
        let mut arrived = Vec::with_capacity(r.blobs.len());
        for (entry, targets) in r.blobs {
            let s = (entry.offset as u64 - r.lo) as usize;
            let e = s + entry.stored_len as usize;
            if e > span.len() {
                return Err(truncated(&r.pack, &entry));
            }
            arrived.push((entry, targets, span.slice(s..e)));
        }
        sink.write(&pk, &r.pack, &arrived)
    })
    .await?;
    Ok(len)
}

type Writing = Option<tokio::task::JoinHandle<Result<()>>>;

/// One range streamed: each blob written once its bytes are here, in
/// batches, one batch at a time on the blocking pool while the next
/// arrives. Returns the bytes received. A batch being written is waited
/// for even when the read fails (nothing writes after the restore ends).
async fn streamed(reader: &Reader, r: Range, sink: Sink) -> Result<u64> {
    let mut writing: Writing = None;
    let result = stream_range(reader, r, sink, &mut writing).await;
    if let Some(w) = writing.take() {
        let written = w.await.map_err(|e| Error::Task(e.to_string()));
        if result.is_ok() {
            written??;
        }
    }
    result
}

async fn stream_range(reader: &Reader, r: Range, sink: Sink, writing: &mut Writing) -> Result<u64> {
    let session = reader.session(r.session).await?;
    let pk = session.pack_key(&r.pack);
    let pack_id = r.pack;
    let mut stream = reader
        .repo
        .store
        .get_range_stream(&pack::pack_key_name(&pack_id), r.lo..r.hi)
        .await?;
    let mut blobs: VecDeque<(PackEntry, Vec<Target>)> = r.blobs.into();
    // `buf` holds the bytes from offset `at` of the pack.
    let (mut buf, mut at, mut received) = (BytesMut::new(), r.lo, 0u64);
    let (mut batch, mut batch_bytes): (Vec<Arrived>, usize) = (Vec::new(), 0);
    let mut ended = false;
    while !blobs.is_empty() {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                received += chunk.len() as u64;
                buf.extend_from_slice(&chunk);
            }
            None => ended = true,
        }
        while let Some((e, _)) = blobs.front() {
            let (lo, hi) = (e.offset as u64, e.offset as u64 + e.stored_len as u64);
            if hi > at + buf.len() as u64 {
                break;
            }
            let _gap = buf.split_to((lo - at) as usize);
            let ct = buf.split_to((hi - lo) as usize).freeze();
            at = hi;
            let (entry, targets) = blobs.pop_front().expect("just looked");
            batch_bytes += ct.len();
            batch.push((entry, targets, ct));
        }
        if batch_bytes >= WRITE_BATCH || (blobs.is_empty() && !batch.is_empty()) {
            if let Some(w) = writing.take() {
                w.await.map_err(|e| Error::Task(e.to_string()))??;
            }
            let (sink, pk, job) = (sink.clone(), pk.clone(), std::mem::take(&mut batch));
            batch_bytes = 0;
            *writing = Some(tokio::task::spawn_blocking(move || {
                sink.write(&pk, &pack_id, &job)
            }));
        }
        if ended && !blobs.is_empty() {
            let (e, _) = blobs.front().expect("not empty");
            return Err(truncated(&pack_id, e));
        }
    }
    Ok(received)
}
