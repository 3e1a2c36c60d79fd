//! Frames (FORMAT.md §4.1, version 2): several small blobs compressed
//! together as one AEAD unit of a pack, so a tree of many small files
//! compresses about as well as a stream while each blob keeps its own id,
//! index entry and random access.
//!
//! A pack's *unit* is what one AEAD seal covers: a blob alone, or a frame.
//! Readers open a unit once ([`Unit::open`]) and take each of its blobs
//! from it ([`Unit::blob`]), which re-hashes the blob: inside a frame, blobs
//! are only authenticated as a group.

use std::io::Read;

use super::padding::{SLOT_PREFIX, slot_bytes, slot_len};
use super::{BlobType, FLAG_COMPRESSED, PackEntry, blob_aad, decompress};
use crate::crypto::{self, Key, counter_nonce};
use crate::id::PackId;
use crate::keys::SpaceKeys;
use crate::{Error, Result};

/// Header flag bit 1: the entry is a blob inside a frame.
pub const FLAG_FRAMED: u8 = 2;
/// Header flag bit 2 (with [`FLAG_FRAMED`], repository version 3): the
/// frame's blobs are in padded slots and the frame's stored bytes are
/// padded (FORMAT.md §4.2), so neither the index nor the pack's length
/// gives a small blob's exact length.
pub const FLAG_PADDED: u8 = 4;
/// The most raw bytes a frame may hold (a format limit: it bounds what a
/// reader allocates for one frame, whatever a header claims). Pulih writes
/// frames of about [`FRAME_TARGET`] plus one blob below [`FRAME_MAX_BLOB`].
pub const MAX_FRAME_RAW: u32 = 8 << 20;
/// Blobs shorter than this go into frames (a writer's choice).
pub const FRAME_MAX_BLOB: usize = 128 << 10;
/// A frame is closed once it holds this many raw bytes (a writer's choice;
/// see docs/FORMAT.md §4.1 for the measurements behind it).
pub const FRAME_TARGET: usize = 1 << 20;

/// A writer's framing choice: which blobs are framed, how large a frame
/// grows. `None` where frames may not be written (a version-1 repository).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    pub max_blob: usize,
    pub target: usize,
    /// Padded slots and stored lengths (FORMAT.md §4.2).
    pub padded: bool,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            max_blob: FRAME_MAX_BLOB,
            target: FRAME_TARGET,
            padded: false,
        }
    }
}

impl Framing {
    /// How a writer frames small blobs in a repository: not at all in a
    /// version-1 repository (its readers know no frames); padded in a
    /// version-3 one, where only blobs shorter than the chunker's minimum
    /// are framed (such a blob is always the last chunk of its file, which
    /// is how a restore places it without its exact length, §4.2).
    pub fn of_repo(config: &crate::config::ConfigBody) -> Option<Framing> {
        Framing::of_version(config.version, &config.chunker)
    }

    /// [`Framing::of_repo`] for format `version` and the chunker sizes a
    /// writer uses.
    pub fn of_version(version: u32, chunker: &crate::config::ChunkerParams) -> Option<Framing> {
        match version {
            0 | 1 => None,
            2 => Some(Framing::default()),
            _ => Some(Framing {
                max_blob: FRAME_MAX_BLOB.min(chunker.min_size as usize),
                padded: true,
                ..Framing::default()
            }),
        }
    }

    /// A writer's own choice (sizes) as the repository allows it: padded
    /// as the repository's version says, and where padded, framing only
    /// what the repository's choice frames (blobs shorter than the
    /// chunker's minimum, §4.2).
    pub fn within(self, repo: Framing) -> Framing {
        Framing {
            max_blob: if repo.padded {
                self.max_blob.min(repo.max_blob)
            } else {
                self.max_blob
            },
            target: self.target,
            padded: repo.padded,
        }
    }

    /// Whether a blob of `len` raw bytes goes into a frame.
    pub fn frames(&self, len: usize) -> bool {
        len < self.max_blob
    }

    /// Largest raw frame this choice writes.
    pub fn max_raw(&self) -> usize {
        self.target + self.largest_member()
    }

    /// The most raw bytes one framed blob takes: its length, or its slot's
    /// when padded.
    fn largest_member(&self) -> usize {
        if self.padded {
            slot_len(self.max_blob)
        } else {
            self.max_blob
        }
    }

    /// Within the format's limit: a frame closed at `target` after a blob
    /// below `max_blob` (in its slot, when padded) never passes
    /// [`MAX_FRAME_RAW`].
    pub fn clamped(self) -> Framing {
        let max_blob = self.max_blob.min(MAX_FRAME_RAW as usize / 4);
        let c = Framing { max_blob, ..self };
        Framing {
            target: self
                .target
                .clamp(1, MAX_FRAME_RAW as usize - c.largest_member()),
            ..c
        }
    }
}

pub(super) fn frame_aad(pack: &PackId, kind: BlobType, flags: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(14 + 32 + 2);
    aad.extend_from_slice(b"pulih/v2/frame");
    aad.extend_from_slice(&pack.0);
    aad.push(kind as u8);
    aad.push(flags);
    aad
}

/// An open frame being filled: the blobs' raw bytes, one after another
/// (each in its slot when padded).
#[derive(Default)]
pub struct FrameBuf {
    pub raw: Vec<u8>,
    /// (id, length in `raw`) of each blob, in order: its raw length, or
    /// its slot's when padded.
    pub members: Vec<(crate::id::BlobId, u32)>,
    /// Blobs are in padded slots (every blob of a frame, or none).
    pub padded: bool,
}

impl FrameBuf {
    /// Appends one blob, in a padded slot (`len ‖ bytes ‖ zeros`) if
    /// `framing` pads.
    pub fn push(&mut self, id: crate::id::BlobId, raw: &[u8], framing: &Framing) {
        let start = self.raw.len();
        if framing.padded {
            self.raw
                .extend_from_slice(&(raw.len() as u32).to_le_bytes());
            self.raw.extend_from_slice(raw);
            self.raw.resize(start + slot_len(raw.len()), 0);
        } else {
            self.raw.extend_from_slice(raw);
        }
        self.padded = framing.padded;
        self.members.push((id, (self.raw.len() - start) as u32));
    }

    /// The flags the frame's entries carry besides compression.
    pub fn flags(&self) -> u8 {
        FLAG_FRAMED | if self.padded { FLAG_PADDED } else { 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn clear(&mut self) {
        self.raw.clear();
        self.members.clear();
        self.padded = false;
    }
}

/// One opened unit of a pack: a lone blob's raw bytes, or a frame's
/// decompressed bytes (as far as the blobs wanted from it reach).
pub struct Unit {
    raw: Vec<u8>,
    framed: bool,
}

fn unit_name(pack: &PackId, e: &PackEntry) -> String {
    if e.flags & FLAG_FRAMED != 0 {
        format!("frame at offset {} in pack {pack}", e.offset)
    } else {
        format!("blob {} in pack {pack}", e.id)
    }
}

impl Unit {
    /// Authenticate and decompress the unit `e` names (any entry of it),
    /// `ct` being its `stored_len` bytes. Of a frame, the first `need` bytes
    /// are produced: the end of the furthest blob wanted from it (at most
    /// [`MAX_FRAME_RAW`]).
    pub fn open(pk: &Key, pack: &PackId, e: &PackEntry, ct: &[u8], need: u64) -> Result<Unit> {
        let what = || unit_name(pack, e);
        let framed = e.flags & FLAG_FRAMED != 0;
        let aad = if framed {
            frame_aad(pack, e.kind, e.flags)
        } else {
            blob_aad(pack, &e.id, e.kind, e.flags, e.raw_len)
        };
        let plain =
            crypto::open(pk, counter_nonce(e.offset as u64), &aad, ct).ok_or_else(|| {
                Error::corrupt(what(), "does not authenticate (damaged or tampered with)")
            })?;
        let compressed = e.flags & FLAG_COMPRESSED != 0;
        let raw = if !framed {
            let raw = if compressed {
                decompress(&plain, e.raw_len as usize)
                    .map_err(|err| Error::corrupt(what(), err.to_string()))?
            } else {
                plain
            };
            if raw.len() != e.raw_len as usize {
                return Err(Error::corrupt(what(), "length differs from the index"));
            }
            raw
        } else {
            if need > MAX_FRAME_RAW as u64 {
                return Err(Error::corrupt(
                    what(),
                    format!("a blob reaches past {MAX_FRAME_RAW} bytes, the largest frame"),
                ));
            }
            let need = need as usize;
            if compressed {
                let mut out = vec![0u8; need];
                // The window a frame may ask of the decoder is bounded too:
                // no frame needs more than MAX_FRAME_RAW (2^23) of it.
                zstd::stream::read::Decoder::with_buffer(&plain[..])
                    .and_then(|mut d| {
                        d.window_log_max(MAX_FRAME_RAW.ilog2())?;
                        d.read_exact(&mut out)
                    })
                    .map_err(|err| {
                        Error::corrupt(
                            what(),
                            format!("does not decompress to {need} bytes: {err}"),
                        )
                    })?;
                out
            } else {
                let mut plain = plain;
                if plain.len() < need {
                    return Err(Error::corrupt(what(), "shorter than the blobs it holds"));
                }
                plain.truncate(need);
                plain
            }
        };
        Ok(Unit { raw, framed })
    }

    /// The blob `e` (an entry of this unit), its id re-hashed.
    pub fn blob(&self, pack: &PackId, e: &PackEntry, space: &SpaceKeys) -> Result<&[u8]> {
        let what = || format!("blob {} in pack {pack}", e.id);
        let bytes = if self.framed {
            frame_blob(&self.raw, e).map_err(|d| Error::corrupt(what(), d))?
        } else {
            &self.raw[..]
        };
        if space.blob_id(bytes) != e.id {
            return Err(Error::corrupt(what(), "content does not hash to its id"));
        }
        Ok(bytes)
    }

    /// Decompressed bytes held.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// The bytes framed entry `e` names in a frame's decompressed bytes `raw`
/// (not yet checked against its id): `raw[inner..inner + raw_len]`, or of
/// a padded slot there the `len` bytes after its length. The frame's
/// plaintext is the writer's (an agent's), so any bytes and any entry
/// give an error, never a panic (fuzz target `pack_header`).
pub fn frame_blob<'a>(raw: &'a [u8], e: &PackEntry) -> std::result::Result<&'a [u8], &'static str> {
    let (s, end) = (e.inner as usize, e.inner as usize + e.raw_len as usize);
    let slot = raw.get(s..end).ok_or("lies beyond the end of its frame")?;
    if e.flags & FLAG_PADDED != 0 {
        slot_bytes(slot).ok_or("its slot's length does not fit the slot")
    } else {
        Ok(slot)
    }
}

/// Where one unit's wanted blobs end in its raw bytes (what
/// [`Unit::open`] needs to produce).
pub fn need_of<'a>(entries: impl IntoIterator<Item = &'a PackEntry>) -> u64 {
    entries
        .into_iter()
        .map(|e| e.inner as u64 + e.raw_len as u64)
        .max()
        .unwrap_or(0)
}

/// Whether two entries are in the same unit of a pack.
pub fn same_unit(a: &PackEntry, b: &PackEntry) -> bool {
    a.offset == b.offset
}

/// Splits entries (sorted by offset) into runs of one unit each.
pub fn units<T>(items: &[T], entry: impl Fn(&T) -> &PackEntry) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || !same_unit(entry(&items[i - 1]), entry(&items[i])) {
            out.push(&items[start..i]);
            start = i;
        }
    }
    out.retain(|u| !u.is_empty());
    out
}

/// Checks the entries of a version-2 header or index (sorted by offset):
/// units do not overlap (and, with `contiguous`, start at 0 and follow
/// one another: a pack header describes all of its pack), a unit is one
/// unframed blob or framed blobs agreeing on type, flags and stored
/// length, and every framed blob lies within [`MAX_FRAME_RAW`].
pub fn check_entries(entries: &[PackEntry], contiguous: bool) -> std::result::Result<(), String> {
    let mut end = 0u64;
    for unit in units(entries, |e| e) {
        let first = &unit[0];
        let lo = first.offset as u64;
        if lo < end || (contiguous && lo != end) {
            return Err(format!(
                "entries at offset {lo} overlap or leave a gap (the one before ends at {end})"
            ));
        }
        end = lo + first.stored_len as u64;
        let framed = first.flags & FLAG_FRAMED != 0;
        if first.flags & FLAG_PADDED != 0 && !framed {
            return Err(format!("blob at offset {lo} is padded but not framed"));
        }
        if !framed && (unit.len() > 1 || first.inner != 0) {
            return Err(format!(
                "unframed blob at offset {lo} shares its place or has an inner offset"
            ));
        }
        for e in unit {
            if e.kind != first.kind || e.flags != first.flags || e.stored_len != first.stored_len {
                return Err(format!(
                    "blobs of the frame at offset {lo} disagree on type, flags or length"
                ));
            }
            if e.flags & FLAG_PADDED != 0 && (e.raw_len as usize) < SLOT_PREFIX {
                return Err(format!("padded blob {} has no room for its length", e.id));
            }
            if framed && e.inner as u64 + e.raw_len as u64 > MAX_FRAME_RAW as u64 {
                return Err(format!(
                    "blob {} reaches past {MAX_FRAME_RAW} bytes into its frame",
                    e.id
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::crypto::Key;
    use crate::id::{BlobId, SpaceId};
    use crate::keys::{SessionKey, SpaceKeys};
    use proptest::prelude::*;

    fn space() -> SpaceKeys {
        SpaceKeys::from_secret(SpaceId([9; 16]), &Key([4; 32]))
    }

    fn unit_bytes<'a>(p: &'a FinishedPack, e: &PackEntry) -> &'a [u8] {
        &p.bytes[e.offset as usize..(e.offset + e.stored_len) as usize]
    }

    proptest! {
        /// Frames and lone blobs mixed in one pack: the header round-trips
        /// (version 2), and each blob comes back from its unit, whether the
        /// frame was opened for all its blobs or only as far as one.
        #[test]
        fn frames_round_trip(
            groups in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(0u8..4, 0..3000), 1..8), 1..6),
            padded in any::<bool>(),
        ) {
            let framing = Framing { padded, ..Framing::default() };
            let sp = space();
            let session = SessionKey::generate();
            let mut w = PackWriter::new(&session, BlobType::Data, 0);
            let mut comp = zstd::bulk::Compressor::new(3).unwrap();
            let mut out = Vec::new();
            let mut all = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                if i % 3 == 2 {
                    // A lone blob between frames.
                    w.add_raw(&mut comp, sp.blob_id(&g[0]), &g[0]);
                    all.push(g[0].clone());
                    continue;
                }
                let mut f = FrameBuf::default();
                for b in g {
                    f.push(sp.blob_id(b), b, &framing);
                    all.push(b.clone());
                }
                let flags = compress_frame(&mut comp, &f, &mut out);
                let stored = if flags & FLAG_COMPRESSED != 0 { &out[..] } else { &f.raw[..] };
                w.add_frame(stored, flags, &f.members);
            }
            let p = w.finish(&sp);
            let t = parse_trailer(&p.id, &p.bytes).unwrap();
            let hend = p.bytes.len() - TRAILER_LEN;
            let h = decrypt_header(&sp, &p.id, &p.bytes[hend - t.header_len as usize..hend]).unwrap();
            prop_assert_eq!(&h, &p.header);
            prop_assert!(check_entries(&h.entries, true).is_ok());
            let key = session.pack_key(&p.id);
            for (e, b) in h.entries.iter().zip(&all) {
                prop_assert_eq!(&open_blob(&key, &p.id, e, unit_bytes(&p, e), &sp).unwrap(), b);
                // Padded: the entry gives the slot's bucket, the pack the
                // frame's padded length, never the blob's own length.
                if padded && e.is_framed() {
                    prop_assert_eq!(e.flags & FLAG_PADDED, FLAG_PADDED);
                    prop_assert_eq!(e.raw_len as usize, slot_len(b.len()));
                    prop_assert!(e.raw_len >= 256);
                    let stored = e.stored_len as usize - crate::crypto::TAG_LEN;
                    prop_assert!(stored >= 4096);
                    prop_assert_eq!(stored, padded_stored_len(stored, false));
                } else {
                    prop_assert_eq!(e.flags & FLAG_PADDED, 0);
                    prop_assert_eq!(e.raw_len as usize, b.len());
                }
            }
            for u in units(&h.entries, |e| e) {
                let unit = Unit::open(&key, &p.id, &u[0], unit_bytes(&p, &u[0]), need_of(u)).unwrap();
                for e in u {
                    let got = unit.blob(&p.id, e, &sp).unwrap();
                    prop_assert_eq!(sp.blob_id(got), e.id);
                }
                // Under another pack id the unit does not open.
                prop_assert!(Unit::open(&key, &PackId([1; 32]), &u[0], unit_bytes(&p, &u[0]), need_of(u)).is_err());
            }
        }
    }

    proptest! {
        /// Version-2 headers from arbitrary entries: decoding never
        /// panics, and what it accepts keeps the frame rules (what the
        /// fuzz target `pack_header` checks, here on every test run).
        #[test]
        fn garbage_v2_headers_are_refused_or_sound(
            entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), ENTRY_V2_LEN), 0..12),
            small in any::<bool>(),
        ) {
            let mut plain = vec![2u8];
            plain.extend_from_slice(&[5; 16]);
            plain.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for mut e in entries {
                if small {
                    // Plausible values, so some headers pass the checks.
                    e[0] &= 1;
                    e[1] &= 7;
                    for i in [35, 36, 37, 39, 40, 41, 43, 44, 45, 47, 48, 49] {
                        e[i] = 0;
                    }
                }
                plain.extend_from_slice(&e);
            }
            if let Ok(h) = decode_header(&plain, "fuzz") {
                let mut off = 0u64;
                for u in units(&h.entries, |e| e) {
                    prop_assert_eq!(u[0].offset as u64, off);
                    for e in u {
                        prop_assert_eq!((e.offset, e.stored_len, e.kind, e.flags), (u[0].offset, u[0].stored_len, u[0].kind, u[0].flags));
                        prop_assert!(e.inner as u64 + e.raw_len as u64 <= MAX_FRAME_RAW as u64 || !e.is_framed());
                        prop_assert!(e.flags & FLAG_PADDED == 0 || (e.is_framed() && e.raw_len >= 4));
                    }
                    off += u[0].stored_len as u64;
                }
            }
        }
    }

    fn framed_pack(blobs: &[Vec<u8>]) -> (SessionKey, FinishedPack) {
        let sp = space();
        let session = SessionKey::generate();
        let mut w = PackWriter::new(&session, BlobType::Data, 0);
        let mut f = FrameBuf::default();
        for b in blobs {
            f.push(sp.blob_id(b), b, &Framing::default());
        }
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let mut out = Vec::new();
        let flags = compress_frame(&mut comp, &f, &mut out);
        let stored = if flags & FLAG_COMPRESSED != 0 {
            &out[..]
        } else {
            &f.raw[..]
        };
        w.add_frame(stored, flags, &f.members);
        (session, w.finish(&sp))
    }

    #[test]
    fn small_similar_blobs_compress_better_in_one_frame() {
        let blobs: Vec<Vec<u8>> = (0..64)
            .map(|i| {
                format!(
                    "#!/bin/sh\n# script {i}\nset -eu\nexec /usr/lib/pulih/run --job {i} \"$@\"\n"
                )
                .repeat(3)
                .into_bytes()
            })
            .collect();
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let mut out = Vec::new();
        let alone: usize = blobs
            .iter()
            .map(|b| {
                if compress(&mut comp, b, &mut out) & FLAG_COMPRESSED != 0 {
                    out.len()
                } else {
                    b.len()
                }
            })
            .sum();
        let (_, p) = framed_pack(&blobs);
        assert!(p.header.entries[0].flags & FLAG_COMPRESSED != 0);
        let framed = p.header.entries[0].stored_len as usize;
        assert!(framed * 3 < alone, "framed {framed} vs alone {alone}");
    }

    #[test]
    fn a_tampered_frame_or_a_lying_entry_is_an_error_never_a_panic() {
        let sp = space();
        let blobs: Vec<Vec<u8>> = (0..5).map(|i| vec![b'a' + i; 1000]).collect();
        let (session, p) = framed_pack(&blobs);
        let key = session.pack_key(&p.id);
        let e = p.header.entries[2].clone();
        assert_eq!(
            (e.flags & FLAG_FRAMED, e.inner, e.raw_len),
            (FLAG_FRAMED, 2000, 1000)
        );
        // One flipped byte: the frame does not authenticate.
        let mut bad = unit_bytes(&p, &e).to_vec();
        bad[3] ^= 1;
        let err = open_blob(&key, &p.id, &e, &bad, &sp)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not authenticate") && err.contains(&p.id.to_string()),
            "{err}"
        );
        // An entry pointing elsewhere in the frame: the hash catches it.
        let mut moved = e.clone();
        moved.inner = 1000;
        let err = open_blob(&key, &p.id, &moved, unit_bytes(&p, &e), &sp)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not hash"), "{err}");
        // Past the frame's end, and past the format's limit: errors.
        moved.inner = 4900;
        assert!(open_blob(&key, &p.id, &moved, unit_bytes(&p, &e), &sp).is_err());
        moved.inner = MAX_FRAME_RAW;
        let err = open_blob(&key, &p.id, &moved, unit_bytes(&p, &e), &sp)
            .unwrap_err()
            .to_string();
        assert!(err.contains("largest frame"), "{err}");
        // The headers' checks refuse what would make a reader go astray.
        let mut es = p.header.entries.clone();
        assert!(check_entries(&es, true).is_ok());
        es[1].stored_len += 1;
        assert!(check_entries(&es, true).is_err());
        let mut es = p.header.entries.clone();
        es[4].raw_len = MAX_FRAME_RAW;
        assert!(check_entries(&es, true).is_err());
        let mut es = p.header.entries.clone();
        es[0].offset = 16;
        assert!(check_entries(&es, true).is_err());
        let mut es = p.header.entries.clone();
        es[3].flags = FLAG_FRAMED;
        assert!(check_entries(&es, true).is_err());
    }

    /// The buckets: a floor, then at most 1/16 (slots) or 1/32 (stored)
    /// more, so a tiny secret and its neighbours share one length and a
    /// large blob pays little.
    #[test]
    fn padding_buckets_hide_small_lengths_and_cost_little() {
        for len in [0, 1, 4, 9, 100, 252] {
            assert_eq!(slot_len(len), 256, "{len}");
        }
        assert_eq!(slot_len(253), 272);
        for len in (0..200_000).step_by(97) {
            let s = slot_len(len);
            assert!(
                s >= len + 4 && s <= 256.max((len + 4) + (len + 4) / 16),
                "{len} → {s}"
            );
            let t = padded_stored_len(len, true);
            assert!(
                t >= 4096.max(len) && t <= 4096.max(len + 8 + (len + 8) / 32),
                "{len} → {t}"
            );
            assert!(
                t == len || t - len >= 8,
                "a skippable frame needs 8 bytes: {len} → {t}"
            );
            assert_eq!(padded_stored_len(t, true), t, "a padded length is a bucket");
        }
        // A summary's byte counts: 0 stays 0, small counts look alike,
        // large ones move by at most 1/256.
        let sb = crate::pack::summary_bucket;
        assert_eq!(
            (sb(0), sb(1), sb(9), sb(3000), sb(4096)),
            (0, 4096, 4096, 4096, 4096)
        );
        for n in (4097..10_000_000u64).step_by(9973) {
            assert!(sb(n) >= n && sb(n) <= n + n / 256, "{n} → {}", sb(n));
            assert_eq!(sb(sb(n)), sb(n));
        }
        // The skippable frame a compressed frame is padded with: zstd
        // decodes past it (the frame's content first, then nothing).
        let mut buf = zstd::bulk::compress(b"isi bingkai", 3).unwrap();
        crate::pack::padding::pad_stored(&mut buf, 0, true);
        assert_eq!(buf.len(), 4096);
        assert_eq!(zstd::decode_all(&buf[..]).unwrap(), b"isi bingkai");
    }

    /// A framing choice at the format's limit, padded or not: a frame
    /// filled to just under its target and closed by its largest blob
    /// (in that blob's slot) is within what readers accept.
    #[test]
    fn a_framing_choice_is_kept_within_the_format_limit() {
        for padded in [false, true] {
            for (max_blob, target) in [
                (64 << 20, 64 << 20),
                (32 << 10, 8 << 20),
                (128 << 10, 1 << 20),
            ] {
                let f = Framing {
                    max_blob,
                    target,
                    padded,
                }
                .clamped();
                assert!(f.max_raw() <= MAX_FRAME_RAW as usize, "{f:?}");
                let mut buf = FrameBuf::default();
                let small = vec![7u8; 100];
                while buf.raw.len() + slot_len(small.len()) < f.target {
                    buf.push(BlobId([1; 32]), &small, &f);
                }
                buf.push(BlobId([2; 32]), &vec![9u8; f.max_blob - 1], &f);
                let mut inner = 0u64;
                for (_, len) in &buf.members {
                    inner += *len as u64;
                }
                assert!(inner <= MAX_FRAME_RAW as u64, "{f:?}: {inner}");
            }
        }
        assert_eq!(Framing::default().clamped(), Framing::default());
        let v3 = Framing::of_version(3, &crate::config::ChunkerParams::default()).unwrap();
        assert_eq!(v3.clamped(), v3);
    }

    #[test]
    fn version_one_encoding_when_nothing_is_framed() {
        let sp = space();
        let session = SessionKey::generate();
        let mut w = PackWriter::new(&session, BlobType::Data, 0);
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        w.add_raw(&mut comp, BlobId([1; 32]), b"hello");
        let p = w.finish(&sp);
        assert_eq!(encode_header(&p.header)[0], 1);
        let (_, p) = framed_pack(&[b"hello".to_vec()]);
        assert_eq!(encode_header(&p.header)[0], 2);
    }
}
