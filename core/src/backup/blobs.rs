//! Store each blob once: the dedup state the walker and the file readers
//! share (the space's index, read-only, and the ids this run has sent to
//! the pack workers), and what each thread tallies on the way.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::id::{BlobId, PackId};
use crate::index::SpaceIndex;
use crate::keys::SpaceKeys;
use crate::pack::BlobType;
use crate::{Error, Result};

use super::*;

pub(super) struct Blobs {
    keys: SpaceKeys,
    index: Arc<SpaceIndex>,
    /// Blob ids sent to the pack workers this run. Tested and inserted
    /// under one lock, so of two readers meeting the same new blob exactly
    /// one sends it (an id here is sent, or the run fails).
    seen: Mutex<HashSet<BlobId>>,
    tx: crossbeam_channel::Sender<Job>,
    /// The blob buffers not in use, a fixed number of tokens (see
    /// `backup`): taken only to carry a new blob, given back by the pack
    /// workers once it is packed.
    spare: crossbeam_channel::Receiver<Vec<u8>>,
    /// Disconnects when the last pack worker has ended: no buffer comes
    /// back after that.
    workers_alive: crossbeam_channel::Receiver<()>,
}

/// What one thread learned while storing; the walk adds them up at its end.
#[derive(Default)]
pub(super) struct Tally {
    /// Packs of earlier runs holding blobs this snapshot names.
    pub(super) used_packs: HashSet<PackId>,
    /// Bytes of data blobs sent to the pack workers.
    pub(super) bytes_new: u64,
}

impl Tally {
    pub(super) fn add(&mut self, other: Tally) {
        self.used_packs.extend(other.used_packs);
        self.bytes_new += other.bytes_new;
    }
}

fn workers_stopped() -> Error {
    Error::Task("the pack workers stopped".into())
}

impl Blobs {
    pub(super) fn new(
        keys: SpaceKeys,
        index: Arc<SpaceIndex>,
        tx: crossbeam_channel::Sender<Job>,
        spare: crossbeam_channel::Receiver<Vec<u8>>,
        workers_alive: crossbeam_channel::Receiver<()>,
    ) -> Blobs {
        Blobs {
            keys,
            index,
            seen: Mutex::new(HashSet::new()),
            tx,
            spare,
            workers_alive,
        }
    }

    fn seen(&self) -> Result<std::sync::MutexGuard<'_, HashSet<BlobId>>> {
        self.seen
            .lock()
            .map_err(|_| Error::Task("a file reader panicked".into()))
    }

    /// Can a file be recorded with these blobs without reading it (its
    /// files-cache entry)? Each must be in the index (its pack is then
    /// noted) or sent this run.
    pub(super) fn all_stored(&self, ids: &[BlobId], tally: &mut Tally) -> Result<bool> {
        let mut packs = Vec::with_capacity(ids.len());
        for id in ids {
            match self.index.lookup(id) {
                Some(loc) => packs.push(loc.pack),
                None if self.seen()?.contains(id) => {}
                None => return Ok(false),
            }
        }
        tally.used_packs.extend(packs);
        Ok(true)
    }

    /// Does this blob still need storing? Notes the pack of an indexed one;
    /// true for exactly one caller per new blob.
    fn is_new(&self, id: &BlobId, tally: &mut Tally) -> Result<bool> {
        if let Some(loc) = self.index.lookup(id) {
            tally.used_packs.insert(loc.pack);
            return Ok(false);
        }
        Ok(self.seen()?.insert(*id))
    }

    fn send(&self, kind: BlobType, id: BlobId, data: Vec<u8>, tally: &mut Tally) -> Result<()> {
        if kind == BlobType::Data {
            tally.bytes_new += data.len() as u64;
        }
        self.tx
            .send(Job { kind, id, data })
            .map_err(|_| workers_stopped())
    }

    /// A buffer for a blob; waits while every one is in use.
    fn buffer(&self) -> Result<Vec<u8>> {
        crossbeam_channel::select! {
            recv(self.spare) -> buf => buf.map_err(|_| workers_stopped()),
            recv(self.workers_alive) -> _ => Err(workers_stopped()),
        }
    }

    /// Store `data` (copied into a buffer) unless it is stored already.
    pub(super) fn store(&self, kind: BlobType, data: &[u8], tally: &mut Tally) -> Result<BlobId> {
        let id = self.keys.blob_id(data);
        if self.is_new(&id, tally)? {
            let mut buf = self.buffer()?;
            buf.clear();
            // Exactly: a buffer grows to the largest chunk it carries, not
            // to twice its last size.
            buf.reserve_exact(data.len());
            buf.extend_from_slice(data);
            self.send(kind, id, buf, tally)?;
        }
        Ok(id)
    }
}
