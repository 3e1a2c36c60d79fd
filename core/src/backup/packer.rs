//! Compress and pack: `workers` compressors hand each blob to the one
//! shared packer, which encrypts it into the open pack of its type.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::id::BlobId;
use crate::keys::{SessionKey, SpaceKeys};
use crate::pack::{self, BlobType, FinishedPack, PackWriter};
use crate::{Error, Result};

use super::*;

/// The open packs (one per blob type) every worker appends to, so one data
/// pack is filled at a time, whatever the number of workers.
pub(super) struct Packer {
    pub(super) session: Arc<SessionKey>,
    pub(super) space: SpaceKeys,
    pub(super) open: [Option<PackWriter>; 2],
    /// Data-pack buffer tokens (see `backup`).
    pub(super) pool: crossbeam_channel::Receiver<Vec<u8>>,
    pub(super) tx: mpsc::Sender<FinishedPack>,
    pub(super) pack_size: usize,
    pub(super) capacity: usize,
}

impl Packer {
    pub(super) fn lock(p: &Mutex<Packer>) -> Result<std::sync::MutexGuard<'_, Packer>> {
        p.lock()
            .map_err(|_| Error::Task("a pack worker panicked".into()))
    }

    /// Encrypt one (maybe compressed) blob into the open pack of its type;
    /// a full pack goes to the uploader.
    fn add(
        &mut self,
        kind: BlobType,
        id: BlobId,
        stored: &[u8],
        flags: u8,
        raw_len: u32,
    ) -> Result<()> {
        let slot = kind as usize;
        if self.open[slot].is_none() {
            self.open[slot] = Some(match kind {
                BlobType::Data => {
                    // Wait for a token; a fresh one (or one whose buffer the
                    // store kept) gets its memory now, once.
                    let mut buf = self
                        .pool
                        .recv()
                        .map_err(|_| Error::Task("the uploader stopped".into()))?;
                    buf.clear();
                    buf.reserve_exact(self.capacity);
                    PackWriter::with_buffer(&self.session, kind, buf)
                }
                BlobType::Tree => PackWriter::new(&self.session, kind, 1 << 20),
            });
        }
        let w = self.open[slot].as_mut().expect("just opened");
        w.add(id, stored, flags, raw_len);
        // Full counting the header still to come, so a pack of many small
        // blobs stays within its buffer's capacity.
        if w.finished_len() >= self.pack_size {
            let w = self.open[slot].take().expect("just used");
            self.send(w)?;
        }
        Ok(())
    }

    fn send(&self, w: PackWriter) -> Result<()> {
        self.tx
            .blocking_send(w.finish(&self.space))
            .map_err(|_| Error::Task("the uploader stopped".into()))
    }

    /// Send the partly filled packs.
    pub(super) fn flush(&mut self) -> Result<()> {
        for w in std::mem::take(&mut self.open).into_iter().flatten() {
            if !w.is_empty() {
                self.send(w)?;
            }
        }
        Ok(())
    }
}

/// Compress chunks (in parallel with the other workers), then hand them
/// to the shared packer, which encrypts them into the open pack.
pub(super) fn pack_worker(
    rx: crossbeam_channel::Receiver<Job>,
    spare: crossbeam_channel::Sender<Vec<u8>>,
    packer: &Mutex<Packer>,
    level: i32,
) -> Result<()> {
    let mut comp = zstd::bulk::Compressor::new(level)
        .map_err(|e| Error::Invalid(format!("zstd level {level}: {e}")))?;
    let mut scratch = Vec::new();
    for job in rx {
        let flags = pack::compress(&mut comp, &job.data, &mut scratch);
        let stored = if flags & pack::FLAG_COMPRESSED != 0 {
            &scratch[..]
        } else {
            &job.data[..]
        };
        let added = Packer::lock(packer)
            .and_then(|mut p| p.add(job.kind, job.id, stored, flags, job.data.len() as u32));
        // The buffer is a token (see `backup`): back even on an error.
        let _ = spare.try_send(job.data);
        added?;
    }
    Ok(())
}
