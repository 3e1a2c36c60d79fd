//! Index files (FORMAT.md §5) and the compact in-memory index.
//!
//! In memory, one blob costs one 48-byte [`Entry`] in a sorted array (plus a
//! share of the per-pack table), well under the 64 bytes the design allows.

use std::collections::HashMap;

use crate::crypto::{self, Key};
use crate::id::{BlobId, IndexId, PackId, SessionId, SpaceId};
use crate::keys::SpaceKeys;
use crate::pack::{
    self, BlobType, ENTRY_V2_LEN, FLAG_COMPRESSED, FLAG_FRAMED, FLAG_PADDED, PackEntry, PackHeader,
};
use crate::{Error, Result};

pub const INDEX_MAGIC: &[u8; 8] = b"PLHINDX1";
/// Version 2: entries carry `inner` (frames, FORMAT.md §5).
pub const INDEX_MAGIC_V2: &[u8; 8] = b"PLHINDX2";
const IENTRY_LEN: usize = 46;

/// One pack's part of an index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPack {
    pub pack: PackId,
    pub header: PackHeader,
}

/// A decoded index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    pub space: SpaceId,
    pub packs: Vec<IndexPack>,
}

pub fn index_key_name(id: &IndexId) -> String {
    crate::layout::index(id)
}

fn body_key(space: &SpaceKeys, id: &IndexId) -> Key {
    space.meta_key.derive("index", &[&id.0])
}

impl IndexFile {
    /// Version 1 unless a blob is framed. Each pack's entries are written
    /// in offset order (a frame's by `inner`).
    pub fn encode(&self, keys: &SpaceKeys, id: &IndexId) -> Vec<u8> {
        let v2 = self
            .packs
            .iter()
            .any(|p| p.header.entries.iter().any(PackEntry::is_framed));
        let mut clear = Vec::with_capacity(28 + 32 * self.packs.len());
        clear.extend_from_slice(if v2 { INDEX_MAGIC_V2 } else { INDEX_MAGIC });
        clear.extend_from_slice(&self.space.0);
        clear.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            clear.extend_from_slice(&p.pack.0);
        }
        let mut body = Vec::new();
        for p in &self.packs {
            body.extend_from_slice(&p.header.session.0);
            body.extend_from_slice(&(p.header.entries.len() as u32).to_le_bytes());
            let mut entries: Vec<&PackEntry> = p.header.entries.iter().collect();
            entries.sort_by_key(|e| (e.offset, e.inner));
            for e in entries {
                if v2 {
                    pack::encode_entry_v2(e, &mut body);
                    continue;
                }
                body.push(e.kind as u8);
                body.push(e.flags);
                body.extend_from_slice(&e.id.0);
                body.extend_from_slice(&e.offset.to_le_bytes());
                body.extend_from_slice(&e.stored_len.to_le_bytes());
                body.extend_from_slice(&e.raw_len.to_le_bytes());
            }
        }
        let aad = [b"pulih/v1/index".as_slice(), &id.0, &clear].concat();
        let ct = crypto::seal(&body_key(keys, id), [0; 12], &aad, &body);
        clear.extend_from_slice(&ct);
        clear
    }

    /// The clear part: the space and the pack ids. Not authenticated until
    /// [`IndexFile::decode`] succeeds.
    pub fn decode_clear(bytes: &[u8], id: &IndexId) -> Result<(SpaceId, Vec<PackId>, usize)> {
        let bad = |d: &str| Error::corrupt(format!("index {id}"), d.to_owned());
        if bytes.len() < 28 || (&bytes[..8] != INDEX_MAGIC && &bytes[..8] != INDEX_MAGIC_V2) {
            return Err(bad("not an index file (bad magic or truncated)"));
        }
        let space = SpaceId::from_slice(&bytes[8..24]).expect("16 bytes");
        let n = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")) as usize;
        let end = n
            .checked_mul(32)
            .and_then(|x| x.checked_add(28))
            .ok_or_else(|| bad("pack count overflows"))?;
        if bytes.len() < end {
            return Err(bad("truncated pack list"));
        }
        let packs = bytes[28..end]
            .chunks_exact(32)
            .map(|c| PackId::from_slice(c).expect("32 bytes"))
            .collect();
        Ok((space, packs, end))
    }

    /// Parse a decrypted index body for the given pack ids (exposed for
    /// fuzzing); `v2`: the body of a `PLHINDX2` file.
    pub fn decode_body(
        body: &[u8],
        pack_ids: Vec<PackId>,
        id: &IndexId,
        v2: bool,
    ) -> Result<Vec<IndexPack>> {
        let bad = |d: &str| Error::corrupt(format!("index {id}"), d.to_owned());
        let per = if v2 { ENTRY_V2_LEN } else { IENTRY_LEN };
        let mut packs = Vec::with_capacity(pack_ids.len());
        let mut pos = 0usize;
        for pack in pack_ids {
            if body.len() < pos + 20 {
                return Err(bad("truncated body"));
            }
            let session = SessionId::from_slice(&body[pos..pos + 16]).expect("16 bytes");
            let count =
                u32::from_le_bytes(body[pos + 16..pos + 20].try_into().expect("4 bytes")) as usize;
            pos += 20;
            let len = count
                .checked_mul(per)
                .ok_or_else(|| bad("entry count overflows"))?;
            if body.len() - pos < len {
                return Err(bad("truncated body"));
            }
            let mut entries = Vec::with_capacity(count);
            if v2 {
                for e in body[pos..pos + len].chunks_exact(per) {
                    entries.push(pack::decode_entry_v2(e).map_err(bad)?);
                }
                pack::check_entries(&entries, false)
                    .map_err(|d| bad(&format!("pack {pack}: {d}")))?;
            }
            for e in body[pos..pos + len]
                .chunks_exact(per)
                .take(if v2 { 0 } else { count })
            {
                let kind = BlobType::from_u8(e[0]).ok_or_else(|| bad("unknown blob type"))?;
                if e[1] & !FLAG_COMPRESSED != 0 {
                    return Err(bad("unknown blob flags"));
                }
                let u = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
                entries.push(PackEntry {
                    kind,
                    flags: e[1],
                    id: BlobId::from_slice(&e[2..34]).expect("32 bytes"),
                    offset: u(34),
                    stored_len: u(38),
                    raw_len: u(42),
                    inner: 0,
                });
            }
            pos += len;
            packs.push(IndexPack {
                pack,
                header: PackHeader { session, entries },
            });
        }
        if pos != body.len() {
            return Err(bad("trailing bytes after the last pack"));
        }
        Ok(packs)
    }

    pub fn decode(bytes: &[u8], keys: &SpaceKeys, id: &IndexId) -> Result<IndexFile> {
        let (space, pack_ids, end) = Self::decode_clear(bytes, id)?;
        let bad = |d: &str| Error::corrupt(format!("index {id}"), d.to_owned());
        if space != keys.space {
            return Err(bad("belongs to another dedup space"));
        }
        let aad = [b"pulih/v1/index".as_slice(), &id.0, &bytes[..end]].concat();
        let body = crypto::open(&body_key(keys, id), [0; 12], &aad, &bytes[end..])
            .ok_or_else(|| bad("does not authenticate (damaged or tampered with)"))?;
        let packs = Self::decode_body(&body, pack_ids, id, &bytes[..8] == INDEX_MAGIC_V2)?;
        Ok(IndexFile { space, packs })
    }
}

/// Where a blob is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub pack: PackId,
    pub session: SessionId,
    pub entry: PackEntry,
}

/// 48 bytes per blob: id, pack number (low 24 bits) with type and flags in
/// the top byte, offset, stored and raw length. A blob in a frame
/// ([`BIT_FRAMED`]) has the frame's number in `offset` (its offset and
/// stored length are in [`SpaceIndex::frames`], shared by the frame's
/// blobs) and its `inner` in `stored_len`, so frames cost no byte per blob.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: [u8; 32],
    pack_and_bits: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
}

const PACK_MASK: u32 = 0x00FF_FFFF;
const BIT_TREE: u32 = 1 << 24;
const BIT_COMPRESSED: u32 = 1 << 25;
const BIT_FRAMED: u32 = 1 << 26;
const BIT_PADDED: u32 = 1 << 27;

/// The in-memory index of one dedup space.
#[derive(Default)]
pub struct SpaceIndex {
    packs: Vec<(PackId, SessionId)>,
    pack_pos: HashMap<PackId, u32>,
    entries: Vec<Entry>,
    /// (offset, stored length) of each frame: 8 bytes per frame, which
    /// holds tens of blobs.
    frames: Vec<(u32, u32)>,
    /// Fan-out over the ids' top `fanout_bits` bits: the entries of bucket
    /// `k` are `entries[fanout[k]..fanout[k + 1]]`. At most one bucket per
    /// two blobs (≤ 2 bytes per blob), so a lookup searches ~2 entries.
    fanout: Vec<u32>,
    fanout_bits: u32,
    sorted: bool,
}

/// An id's first 8 bytes as one integer (orders like the bytes).
fn prefix(id: &[u8; 32]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
}

impl SpaceIndex {
    pub fn new() -> Self {
        SpaceIndex {
            sorted: true,
            ..Default::default()
        }
    }

    /// Add a pack's blobs. Adding a pack twice is harmless.
    pub fn add_pack(&mut self, pack: PackId, header: &PackHeader) {
        if self.pack_pos.contains_key(&pack) {
            return;
        }
        let n = self.packs.len() as u32;
        assert!(n <= PACK_MASK, "more than 16M packs in one space");
        self.packs.push((pack, header.session));
        self.pack_pos.insert(pack, n);
        let mut last_frame: Option<(u32, u32)> = None;
        for e in &header.entries {
            let mut bits = n;
            if e.kind == BlobType::Tree {
                bits |= BIT_TREE;
            }
            if e.flags & FLAG_COMPRESSED != 0 {
                bits |= BIT_COMPRESSED;
            }
            if e.flags & FLAG_PADDED != 0 {
                bits |= BIT_PADDED;
            }
            let (offset, stored_len) = if e.is_framed() {
                bits |= BIT_FRAMED;
                let frame = (e.offset, e.stored_len);
                if last_frame != Some(frame) {
                    self.frames.push(frame);
                    last_frame = Some(frame);
                }
                let k = u32::try_from(self.frames.len() - 1).expect("fewer than 4G frames");
                (k, e.inner)
            } else {
                (e.offset, e.stored_len)
            };
            self.entries.push(Entry {
                id: e.id.0,
                pack_and_bits: bits,
                offset,
                stored_len,
                raw_len: e.raw_len,
            });
        }
        self.sorted = false;
    }

    /// Sort for lookups; call after the last [`SpaceIndex::add_pack`].
    pub fn finalize(&mut self) {
        if !self.sorted {
            self.entries.sort_unstable_by(|a, b| {
                a.id.cmp(&b.id).then(a.pack_and_bits.cmp(&b.pack_and_bits))
            });
            self.entries.dedup_by(|a, b| a.id == b.id);
            self.entries.shrink_to_fit();
            self.frames.shrink_to_fit();
            self.sorted = true;
        }
        self.build_fanout();
    }

    fn build_fanout(&mut self) {
        let n = self.entries.len();
        // 2^bits ≤ n / 2 buckets (none for a tiny index).
        let bits = if n < 4 { 0 } else { (n / 2).ilog2().min(24) };
        self.fanout_bits = bits;
        self.fanout.clear();
        if bits == 0 {
            self.fanout.shrink_to_fit();
            return;
        }
        let buckets = 1usize << bits;
        self.fanout.reserve_exact(buckets + 1);
        let mut i = 0usize;
        for k in 0..buckets {
            self.fanout.push(i as u32);
            while i < n && (prefix(&self.entries[i].id) >> (64 - bits)) as usize == k {
                i += 1;
            }
        }
        self.fanout.push(n as u32);
    }

    fn find(&self, id: &BlobId) -> Option<&Entry> {
        debug_assert!(self.sorted, "finalize() before lookups");
        // Ids are keyed hashes, so their first 8 bytes almost always decide:
        // compare those as one integer (the same order as the bytes), and
        // the rest only on a tie; the fan-out narrows the search first.
        let key = prefix(&id.0);
        let (lo, hi) = if self.fanout_bits == 0 {
            (0, self.entries.len())
        } else {
            let k = (key >> (64 - self.fanout_bits)) as usize;
            (self.fanout[k] as usize, self.fanout[k + 1] as usize)
        };
        self.entries[lo..hi]
            .binary_search_by(|e| {
                prefix(&e.id)
                    .cmp(&key)
                    .then_with(|| e.id[8..].cmp(&id.0[8..]))
            })
            .ok()
            .map(|i| &self.entries[lo + i])
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.find(id).is_some()
    }

    pub fn lookup(&self, id: &BlobId) -> Option<Location> {
        self.find(id).map(|e| self.location(e))
    }

    fn location(&self, e: &Entry) -> Location {
        let (pack, session) = self.packs[(e.pack_and_bits & PACK_MASK) as usize];
        let framed = e.pack_and_bits & BIT_FRAMED != 0;
        let (offset, stored_len, inner) = if framed {
            let (o, s) = self.frames[e.offset as usize];
            (o, s, e.stored_len)
        } else {
            (e.offset, e.stored_len, 0)
        };
        let flags = if e.pack_and_bits & BIT_COMPRESSED != 0 {
            FLAG_COMPRESSED
        } else {
            0
        } | if framed { FLAG_FRAMED } else { 0 }
            | if e.pack_and_bits & BIT_PADDED != 0 {
                FLAG_PADDED
            } else {
                0
            };
        Location {
            pack,
            session,
            entry: PackEntry {
                kind: if e.pack_and_bits & BIT_TREE != 0 {
                    BlobType::Tree
                } else {
                    BlobType::Data
                },
                flags,
                id: BlobId(e.id),
                offset,
                stored_len,
                raw_len: e.raw_len,
                inner,
            },
        }
    }

    /// Every blob's location (order unspecified).
    pub fn iter(&self) -> impl Iterator<Item = Location> + '_ {
        self.entries.iter().map(|e| self.location(e))
    }

    /// For each pack holding tree blobs: where its last tree blob ends
    /// (the packer keeps one blob type per pack, so that is the pack's
    /// blobs, all of them).
    pub fn tree_pack_ends(&self) -> HashMap<PackId, u64> {
        let mut ends: HashMap<u32, u64> = HashMap::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.pack_and_bits & BIT_TREE != 0)
        {
            let l = self.location(e).entry;
            let end = ends.entry(e.pack_and_bits & PACK_MASK).or_default();
            *end = (*end).max(l.offset as u64 + l.stored_len as u64);
        }
        ends.into_iter()
            .map(|(n, end)| (self.packs[n as usize].0, end))
            .collect()
    }

    pub fn has_pack(&self, pack: &PackId) -> bool {
        self.pack_pos.contains_key(pack)
    }

    pub fn packs(&self) -> impl Iterator<Item = &(PackId, SessionId)> {
        self.packs.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes resident per blob entry.
    pub const fn entry_size() -> usize {
        std::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(SpaceIndex::entry_size(), 48);
    }

    fn arb_pack() -> impl Strategy<Value = IndexPack> {
        (
            any::<[u8; 32]>(),
            any::<[u8; 16]>(),
            proptest::collection::vec(
                (any::<[u8; 32]>(), any::<bool>(), 16u32..1000, any::<u32>()),
                0..20,
            ),
        )
            .prop_map(|(p, s, es)| IndexPack {
                pack: PackId(p),
                header: PackHeader {
                    session: SessionId(s),
                    entries: es
                        .into_iter()
                        .scan(0u32, |off, (id, t, sl, rl)| {
                            let e = PackEntry {
                                kind: if t { BlobType::Tree } else { BlobType::Data },
                                flags: t as u8,
                                id: BlobId(id),
                                offset: *off,
                                stored_len: sl,
                                raw_len: rl,
                                inner: 0,
                            };
                            *off += sl;
                            Some(e)
                        })
                        .collect(),
                },
            })
    }

    fn pack_of(ids: &[[u8; 32]]) -> PackHeader {
        PackHeader {
            session: SessionId([7; 16]),
            entries: ids
                .iter()
                .enumerate()
                .map(|(i, id)| PackEntry {
                    kind: BlobType::Data,
                    flags: 0,
                    id: BlobId(*id),
                    offset: i as u32 * 10,
                    stored_len: 10,
                    raw_len: 10,
                    inner: 0,
                })
                .collect(),
        }
    }

    /// The fan-out finds every id (incl. the first and last bucket and ids
    /// sharing their top bits) and no other, at every size, and again after
    /// more packs are added and the index finalized anew.
    #[test]
    fn fanout_finds_every_id_and_no_other() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for n in [0usize, 1, 3, 4, 5, 17, 1000, 5000] {
            let mut ids: Vec<[u8; 32]> = (0..n).map(|_| rng.r#gen()).collect();
            if n >= 4 {
                ids[0] = [0; 32];
                ids[1] = [0xFF; 32];
                let mut near = ids[2];
                near[31] ^= 1;
                ids[3] = near;
            }
            let mut idx = SpaceIndex::new();
            let (a, b) = ids.split_at(n / 2);
            idx.add_pack(PackId([1; 32]), &pack_of(a));
            idx.finalize();
            for id in a {
                assert!(idx.contains(&BlobId(*id)), "n={n}");
            }
            idx.add_pack(PackId([2; 32]), &pack_of(b));
            idx.finalize();
            for id in &ids {
                assert!(idx.contains(&BlobId(*id)), "n={n}");
            }
            for _ in 0..200 {
                let other: [u8; 32] = rng.r#gen();
                assert_eq!(idx.contains(&BlobId(other)), ids.contains(&other));
            }
            if n >= 4 {
                let mut near = ids[1];
                near[31] = 0xFE;
                assert!(!idx.contains(&BlobId(near)));
            }
        }
    }

    /// A pack with frames: the index file is version 2, and the compact
    /// in-memory index (48 bytes per blob, frames in a side table) gives
    /// back every entry exactly as the pack header has it.
    #[test]
    fn framed_entries_round_trip_through_the_file_and_the_memory_index() {
        let keys = SpaceKeys::from_secret(SpaceId([1; 16]), &Key([2; 32]));
        let session = crate::keys::SessionKey::generate();
        let mut w = crate::pack::PackWriter::new(&session, BlobType::Data, 0);
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let mut n = 0u8;
        for frame in 0..4 {
            let mut f = crate::pack::FrameBuf::default();
            for i in 0..(frame + 2) {
                n += 1;
                f.push(
                    BlobId([n; 32]),
                    &vec![i as u8; 100 * i + 1],
                    &crate::pack::Framing::default(),
                );
            }
            w.add_frame(&f.raw, 0, &f.members);
            n += 1;
            w.add_raw(&mut comp, BlobId([n; 32]), b"alone");
        }
        let p = w.finish(&keys);
        let file = IndexFile {
            space: keys.space,
            packs: vec![IndexPack {
                pack: p.id,
                header: p.header.clone(),
            }],
        };
        let id = IndexId::random();
        let bytes = file.encode(&keys, &id);
        assert_eq!(&bytes[..8], INDEX_MAGIC_V2);
        assert_eq!(IndexFile::decode(&bytes, &keys, &id).unwrap(), file);
        let mut idx = SpaceIndex::new();
        idx.add_pack(p.id, &p.header);
        idx.finalize();
        assert_eq!(idx.frames.len(), 4);
        for e in &p.header.entries {
            assert_eq!(&idx.lookup(&e.id).unwrap().entry, e);
        }
        assert_eq!(SpaceIndex::entry_size(), 48);
    }

    proptest! {
        #[test]
        fn index_file_round_trip_and_lookup(packs in proptest::collection::vec(arb_pack(), 0..6)) {
            let keys = SpaceKeys::from_secret(SpaceId([1; 16]), &Key([2; 32]));
            let f = IndexFile { space: keys.space, packs };
            let id = IndexId::random();
            let bytes = f.encode(&keys, &id);
            prop_assert_eq!(&IndexFile::decode(&bytes, &keys, &id).unwrap(), &f);
            // Another id (a renamed object) or another space fails.
            prop_assert!(IndexFile::decode(&bytes, &keys, &IndexId::random()).is_err());
            let other = SpaceKeys::from_secret(SpaceId([1; 16]), &Key([3; 32]));
            prop_assert!(IndexFile::decode(&bytes, &other, &id).is_err());
            let mut idx = SpaceIndex::new();
            for p in &f.packs { idx.add_pack(p.pack, &p.header); }
            idx.finalize();
            for p in &f.packs {
                for e in &p.header.entries {
                    let loc = idx.lookup(&e.id).unwrap();
                    prop_assert!(loc.entry.id == e.id);
                }
            }
            prop_assert!(!idx.contains(&BlobId([0xEE; 32])) || f.packs.iter().any(|p| p.header.entries.iter().any(|e| e.id.0 == [0xEE; 32])));
        }

        #[test]
        fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let keys = SpaceKeys::from_secret(SpaceId([1; 16]), &Key([2; 32]));
            let _ = IndexFile::decode(&bytes, &keys, &IndexId::default());
        }
    }
}
