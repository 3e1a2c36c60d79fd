//! Repacking the live blobs of half-used packs (a reader's prune): into new
//! packs of the prune run's session, small data blobs into new frames where
//! the repository's version allows (FORMAT.md §4.1, §11), so a frame with
//! dead blobs becomes a frame of only the live ones.

use std::collections::HashSet;

use crate::id::{BlobId, PackId};
use crate::keys::{SessionKey, SpaceKeys};
use crate::pack::{self, BlobType, FinishedPack, FrameBuf, Framing, PackWriter};
use crate::{Error, Result};

/// A repacked pack is finished at this size.
const PACK_SIZE: usize = 16 << 20;

/// A finished new pack and the old packs whose blobs it holds.
pub(crate) type Repacked = (FinishedPack, Vec<PackId>);

pub(crate) struct Repacker<'a> {
    session: &'a SessionKey,
    keys: SpaceKeys,
    framing: Option<Framing>,
    comp: zstd::bulk::Compressor<'static>,
    writers: [Option<PackWriter>; 2],
    sources: [HashSet<PackId>; 2],
    frame: FrameBuf,
    frame_sources: HashSet<PackId>,
    scratch: Vec<u8>,
}

impl<'a> Repacker<'a> {
    pub(crate) fn new(
        session: &'a SessionKey,
        keys: SpaceKeys,
        framing: Option<Framing>,
        level: i32,
    ) -> Result<Self> {
        Ok(Repacker {
            session,
            keys,
            framing,
            comp: zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::Invalid(format!("zstd level {level}: {e}")))?,
            writers: [None, None],
            sources: [HashSet::new(), HashSet::new()],
            frame: FrameBuf::default(),
            frame_sources: HashSet::new(),
            scratch: Vec::new(),
        })
    }

    /// Add one live blob (its raw bytes) that was in pack `from`; returns
    /// the packs that are now full.
    pub(crate) fn add(
        &mut self,
        kind: BlobType,
        id: BlobId,
        raw: &[u8],
        from: PackId,
    ) -> Vec<Repacked> {
        if let Some(f) = self.framing
            && kind == BlobType::Data
            && f.frames(raw.len())
        {
            self.frame.push(id, raw, &f);
            self.frame_sources.insert(from);
            if self.frame.raw.len() >= f.target {
                return self.close_frame();
            }
            return Vec::new();
        }
        let session = self.session;
        self.writers[kind as usize]
            .get_or_insert_with(|| PackWriter::new(session, kind, 0))
            .add_raw(&mut self.comp, id, raw);
        self.sources[kind as usize].insert(from);
        self.take_if_full(kind)
    }

    fn writer(&mut self, kind: BlobType) -> &mut PackWriter {
        let session = self.session;
        self.writers[kind as usize].get_or_insert_with(|| PackWriter::new(session, kind, 0))
    }

    fn close_frame(&mut self) -> Vec<Repacked> {
        if self.frame.is_empty() {
            return Vec::new();
        }
        let frame = std::mem::take(&mut self.frame);
        let flags = pack::compress_frame(&mut self.comp, &frame, &mut self.scratch);
        let stored = if flags & pack::FLAG_COMPRESSED != 0 {
            std::mem::take(&mut self.scratch)
        } else {
            frame.raw
        };
        self.writer(BlobType::Data)
            .add_frame(&stored, flags, &frame.members);
        let from: Vec<PackId> = self.frame_sources.drain().collect();
        self.sources[BlobType::Data as usize].extend(from);
        self.take_if_full(BlobType::Data)
    }

    fn take_if_full(&mut self, kind: BlobType) -> Vec<Repacked> {
        let slot = kind as usize;
        match &self.writers[slot] {
            Some(w) if w.len() >= PACK_SIZE => self.take(kind).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn take(&mut self, kind: BlobType) -> Option<Repacked> {
        let slot = kind as usize;
        let w = self.writers[slot].take()?;
        let mut from: Vec<PackId> = self.sources[slot].drain().collect();
        from.sort();
        Some((w.finish(&self.keys), from))
    }

    /// The last frame and the partly filled packs.
    pub(crate) fn finish(mut self) -> Vec<Repacked> {
        let mut out = self.close_frame();
        for kind in [BlobType::Data, BlobType::Tree] {
            out.extend(self.take(kind));
        }
        out
    }
}
