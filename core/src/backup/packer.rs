//! Compress and pack: `workers` compressors hand each blob to the one
//! shared packer, which encrypts it into the open pack of its type.
//!
//! In a version-2 repository, small data blobs are not compressed alone:
//! they are appended (raw) to the packer's one open frame, in the order
//! they come; the worker that fills it takes it out, compresses it as a
//! whole (outside the lock, like any blob) and adds it to the pack
//! (FORMAT.md §4.1). Dedup is unaffected: the walker sends each new blob
//! once, framed or not.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::id::BlobId;
use crate::keys::{SessionKey, SpaceKeys};
use crate::pack::{self, BlobType, FinishedPack, FrameBuf, Framing, PackWriter};
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
    /// None in a version-1 repository: nothing is framed.
    pub(super) framing: Option<Framing>,
    /// The open frame of data blobs.
    pub(super) frame: FrameBuf,
    /// Frame buffers back from the workers that compressed them.
    pub(super) spare_frames: Vec<FrameBuf>,
    pub(super) level: i32,
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
        self.open_pack(kind)?.add(id, stored, flags, raw_len);
        self.send_if_full(kind)
    }

    /// Encrypt one (maybe compressed) frame of data blobs into the pack.
    fn add_frame(&mut self, stored: &[u8], flags: u8, frame: &FrameBuf) -> Result<()> {
        self.open_pack(BlobType::Data)?
            .add_frame(stored, flags, &frame.members);
        self.send_if_full(BlobType::Data)
    }

    /// Append a small blob to the open frame; a frame that is now full is
    /// taken out (with a spare buffer left in its place) for the caller to
    /// compress.
    fn push_framed(&mut self, id: BlobId, raw: &[u8], framing: &Framing) -> Option<FrameBuf> {
        self.frame.push(id, raw, framing);
        if self.frame.raw.len() < framing.target {
            return None;
        }
        let spare = self.spare_frames.pop().unwrap_or_default();
        Some(std::mem::replace(&mut self.frame, spare))
    }

    fn open_pack(&mut self, kind: BlobType) -> Result<&mut PackWriter> {
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
        Ok(self.open[slot].as_mut().expect("just opened"))
    }

    fn send_if_full(&mut self, kind: BlobType) -> Result<()> {
        let slot = kind as usize;
        let w = self.open[slot].as_ref().expect("just used");
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

    /// Compress and add the last, partly filled frame, then send the
    /// partly filled packs.
    pub(super) fn flush(&mut self) -> Result<()> {
        if !self.frame.is_empty() {
            let level = self.level;
            let mut comp = zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::Invalid(format!("zstd level {level}: {e}")))?;
            let frame = std::mem::take(&mut self.frame);
            let mut out = Vec::new();
            let flags = pack::compress_frame(&mut comp, &frame, &mut out);
            let stored = if flags & pack::FLAG_COMPRESSED != 0 {
                &out[..]
            } else {
                &frame.raw[..]
            };
            self.add_frame(stored, flags, &frame)?;
        }
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
    let framing = Packer::lock(packer)?.framing;
    for job in rx {
        if let Some(f) = framing
            && job.kind == BlobType::Data
            && f.frames(job.data.len())
        {
            let full = Packer::lock(packer)?.push_framed(job.id, &job.data, &f);
            let _ = spare.try_send(job.data);
            if let Some(mut frame) = full {
                let flags = pack::compress_frame(&mut comp, &frame, &mut scratch);
                let stored = if flags & pack::FLAG_COMPRESSED != 0 {
                    &scratch[..]
                } else {
                    &frame.raw[..]
                };
                let mut p = Packer::lock(packer)?;
                p.add_frame(stored, flags, &frame)?;
                frame.clear();
                p.spare_frames.push(frame);
            }
            continue;
        }
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
