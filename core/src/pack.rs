//! Packs (FORMAT.md §4): many encrypted blobs and an encrypted header that
//! lists them, so a pack describes itself.

use crate::crypto::{self, Key, Sealer, TAG_LEN, counter_nonce};
use crate::id::{BlobId, PackId, SessionId, SpaceId};
use crate::keys::{SessionKey, SpaceKeys};
use crate::{Error, Result};

mod frame;
mod padding;
pub use frame::{
    FLAG_FRAMED, FLAG_PADDED, FRAME_MAX_BLOB, FRAME_TARGET, FrameBuf, Framing, MAX_FRAME_RAW, Unit,
    check_entries, frame_blob, need_of, same_unit, units,
};
pub use padding::{max_blob_len, padded_stored_len, slot_len, summary_bucket};

pub const PACK_MAGIC: &[u8; 8] = b"PLHPACK1";
/// `space_id (16) ‖ header_len (4) ‖ magic (8)`.
pub const TRAILER_LEN: usize = 28;
/// Bytes one header entry takes (version 1).
pub const HEADER_ENTRY_LEN: usize = 42;
/// Bytes one header entry takes in version 2 (and one index entry in
/// index version 2): the version-1 fields, the offset and `inner`.
pub const ENTRY_V2_LEN: usize = 50;
pub const FLAG_COMPRESSED: u8 = 1;
/// Compression must save at least this share (in 1/100) to be kept.
const MIN_SAVING_PERCENT: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobType {
    Data = 0,
    Tree = 1,
}

impl BlobType {
    pub fn from_u8(b: u8) -> Option<BlobType> {
        match b {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
}

/// One blob of a pack. A blob alone: `offset`/`stored_len` are its own
/// sealed bytes, `inner` is 0. A blob in a frame ([`FLAG_FRAMED`]):
/// `offset`/`stored_len` (and type and flags) are the frame's, shared by
/// every blob of it, and the blob's raw bytes are
/// `inner..inner + raw_len` of the frame's decompressed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobType,
    pub flags: u8,
    pub id: BlobId,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub inner: u32,
}

impl PackEntry {
    pub fn is_framed(&self) -> bool {
        self.flags & FLAG_FRAMED != 0
    }
}

/// The decrypted header of a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackHeader {
    pub session: SessionId,
    pub entries: Vec<PackEntry>,
}

/// The object key of a pack.
pub fn pack_key_name(id: &PackId) -> String {
    crate::layout::pack(id)
}

fn blob_aad(pack: &PackId, id: &BlobId, kind: BlobType, flags: u8, raw_len: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(13 + 32 + 32 + 6);
    aad.extend_from_slice(b"pulih/v1/blob");
    aad.extend_from_slice(&pack.0);
    aad.extend_from_slice(&id.0);
    aad.push(kind as u8);
    aad.push(flags);
    aad.extend_from_slice(&raw_len.to_le_bytes());
    aad
}

fn header_key(space: &SpaceKeys, pack: &PackId) -> Key {
    space.meta_key.derive("pack-header", &[&pack.0])
}

fn header_aad(pack: &PackId, space: &SpaceId) -> Vec<u8> {
    [b"pulih/v1/pack-header".as_slice(), &pack.0, &space.0].concat()
}

/// Compress `raw` with zstd into `out` (cleared first) unless it does not
/// pay. Returns the flags: with [`FLAG_COMPRESSED`] the bytes to store are
/// `out`, without it they are `raw`. `out` is reused across calls.
pub fn compress(compressor: &mut zstd::bulk::Compressor<'_>, raw: &[u8], out: &mut Vec<u8>) -> u8 {
    out.clear();
    compress_at(compressor, raw, out, 0)
}

/// [`compress`] for a frame: no sample probe (a frame's first blob says
/// nothing of the others), the whole is tried and kept if it pays. The
/// flags returned are the frame's entries' ([`FrameBuf::flags`] too).
pub fn compress_frame(
    compressor: &mut zstd::bulk::Compressor<'_>,
    frame: &FrameBuf,
    out: &mut Vec<u8>,
) -> u8 {
    out.clear();
    compress_whole(compressor, &frame.raw, out, 0) | frame.flags()
}

/// Order-0 (byte-frequency) entropy of `sample`, in bits per byte.
fn entropy_bits(sample: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[b as usize] += 1;
    }
    let n = sample.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Below this many bits per byte, Huffman coding of the literals alone
/// saves ~6 %, twice [`MIN_SAVING_PERCENT`]: such a sample needs no zstd
/// probe to show that compression pays.
const LOW_ENTROPY_BITS: f64 = 7.5;

/// Compress `raw` into `buf` from `at` on (`buf` is truncated to `at`
/// first) unless it does not pay: with [`FLAG_COMPRESSED`], `buf[at..]` holds
/// the compressed bytes; without it `buf` is left at length `at`. Large
/// inputs are probed on a sample first, so incompressible data costs
/// little: a sample of low byte entropy goes straight to compression (text,
/// tables); a high-entropy one (random, already compressed — or repeated
/// random blocks, which only zstd sees through) is tried with zstd first.
/// Writing straight into a pack needs no scratch buffer.
fn compress_at(
    compressor: &mut zstd::bulk::Compressor<'_>,
    raw: &[u8],
    buf: &mut Vec<u8>,
    at: usize,
) -> u8 {
    const SAMPLE: usize = 64 * 1024;
    let mut pays = |input: &[u8], buf: &mut Vec<u8>| {
        buf.truncate(at);
        // Amortized growth: a pack started small (prune) is not
        // reallocated blob by blob; data packs already have the room.
        buf.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let mut dst = std::io::Cursor::new(&mut *buf);
        dst.set_position(at as u64);
        let pays = matches!(compressor.compress_to_buffer(input, &mut dst), Ok(n) if n * 100 <= input.len() * (100 - MIN_SAVING_PERCENT));
        if !pays {
            buf.truncate(at);
        }
        pays
    };
    if raw.len() > 4 * SAMPLE
        && entropy_bits(&raw[..SAMPLE]) >= LOW_ENTROPY_BITS
        && !pays(&raw[..SAMPLE], buf)
    {
        return 0;
    }
    compress_whole(compressor, raw, buf, at)
}

/// `raw` compressed into `buf[at..]` if that saves [`MIN_SAVING_PERCENT`]
/// (flags as [`compress_at`]).
fn compress_whole(
    compressor: &mut zstd::bulk::Compressor<'_>,
    raw: &[u8],
    buf: &mut Vec<u8>,
    at: usize,
) -> u8 {
    buf.truncate(at);
    // Amortized growth: a pack started small (prune) is not reallocated
    // blob by blob; data packs already have the room.
    buf.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    let mut dst = std::io::Cursor::new(&mut *buf);
    dst.set_position(at as u64);
    let pays = matches!(compressor.compress_to_buffer(raw, &mut dst), Ok(n) if n * 100 <= raw.len() * (100 - MIN_SAVING_PERCENT));
    if pays {
        FLAG_COMPRESSED
    } else {
        buf.truncate(at);
        0
    }
}

/// The buffer capacity a data pack of `pack_size` needs so that adding its
/// last blob (up to `max_blob` bytes, compressed in place) and finishing it
/// never reallocates.
pub fn pack_capacity(pack_size: usize, max_blob: usize) -> usize {
    pack_size + zstd::zstd_safe::compress_bound(max_blob) + TAG_LEN + 64 * 1024
}

/// Builds one pack in memory.
pub struct PackWriter {
    pub id: PackId,
    kind: BlobType,
    sealer: Sealer,
    session: SessionId,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

/// A finished pack, ready to upload.
pub struct FinishedPack {
    pub id: PackId,
    pub kind: BlobType,
    pub bytes: Vec<u8>,
    pub header: PackHeader,
}

impl PackWriter {
    pub fn new(session: &SessionKey, kind: BlobType, capacity: usize) -> PackWriter {
        Self::with_buffer(session, kind, Vec::with_capacity(capacity))
    }

    /// Start a pack in a recycled buffer (its contents are discarded).
    pub fn with_buffer(session: &SessionKey, kind: BlobType, mut buf: Vec<u8>) -> PackWriter {
        buf.clear();
        let id = PackId::random();
        PackWriter {
            id,
            kind,
            sealer: Sealer::new(&session.pack_key(&id)),
            session: session.id,
            buf,
            entries: Vec::new(),
        }
    }

    pub fn kind(&self) -> BlobType {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The pack's length once finished: blobs, encrypted header, trailer.
    pub fn finished_len(&self) -> usize {
        self.buf.len() + 21 + self.entries.len() * ENTRY_V2_LEN + TAG_LEN + TRAILER_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encrypt and append one blob; `stored` is the (maybe compressed)
    /// plaintext, `raw_len` the length before compression.
    pub fn add(&mut self, id: BlobId, stored: &[u8], flags: u8, raw_len: u32) -> u32 {
        let offset = self.buf.len();
        self.buf.extend_from_slice(stored);
        self.seal_from(offset, id, flags, raw_len)
    }

    /// Compress (when it pays) and encrypt one blob's plaintext into the
    /// pack, in place: no copy of the compressed bytes.
    pub fn add_raw(
        &mut self,
        comp: &mut zstd::bulk::Compressor<'_>,
        id: BlobId,
        raw: &[u8],
    ) -> u32 {
        let offset = self.buf.len();
        let flags = compress_at(comp, raw, &mut self.buf, offset);
        if flags & FLAG_COMPRESSED == 0 {
            self.buf.extend_from_slice(raw);
        }
        self.seal_from(offset, id, flags, raw.len() as u32)
    }

    /// Encrypt `buf[offset..]` in place as one blob and record it.
    fn seal_from(&mut self, offset: usize, id: BlobId, flags: u8, raw_len: u32) -> u32 {
        let offset = u32::try_from(offset).expect("packs stay below 4 GiB");
        let aad = blob_aad(&self.id, &id, self.kind, flags, raw_len);
        self.sealer.seal_tail(
            counter_nonce(offset as u64),
            &aad,
            &mut self.buf,
            offset as usize,
        );
        let stored_len = (self.buf.len() - offset as usize) as u32;
        self.entries.push(PackEntry {
            kind: self.kind,
            flags,
            id,
            offset,
            stored_len,
            raw_len,
            inner: 0,
        });
        stored_len
    }

    /// Encrypt and append one frame: `stored` is the (maybe compressed,
    /// per `flags`) concatenation of the `members`' raw bytes (or slots,
    /// with [`FLAG_PADDED`]), in order. A padded frame's stored bytes are
    /// padded here.
    pub fn add_frame(&mut self, stored: &[u8], flags: u8, members: &[(BlobId, u32)]) -> u32 {
        let flags = flags | FLAG_FRAMED;
        let offset = self.buf.len();
        self.buf.extend_from_slice(stored);
        if flags & FLAG_PADDED != 0 {
            padding::pad_stored(&mut self.buf, offset, flags & FLAG_COMPRESSED != 0);
        }
        let offset = u32::try_from(offset).expect("packs stay below 4 GiB");
        let aad = frame::frame_aad(&self.id, self.kind, flags);
        self.sealer.seal_tail(
            counter_nonce(offset as u64),
            &aad,
            &mut self.buf,
            offset as usize,
        );
        let stored_len = (self.buf.len() - offset as usize) as u32;
        let mut inner = 0u32;
        for (id, raw_len) in members {
            self.entries.push(PackEntry {
                kind: self.kind,
                flags,
                id: *id,
                offset,
                stored_len,
                raw_len: *raw_len,
                inner,
            });
            inner += raw_len;
        }
        stored_len
    }

    pub fn finish(mut self, space: &SpaceKeys) -> FinishedPack {
        let header = PackHeader {
            session: self.session,
            entries: std::mem::take(&mut self.entries),
        };
        let plain = encode_header(&header);
        let ct = crypto::seal(
            &header_key(space, &self.id),
            [0; 12],
            &header_aad(&self.id, &space.space),
            &plain,
        );
        // Exact growth if the header does not fit (never a doubling).
        self.buf.reserve_exact(ct.len() + TRAILER_LEN);
        self.buf.extend_from_slice(&ct);
        self.buf.extend_from_slice(&space.space.0);
        self.buf.extend_from_slice(&(ct.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(PACK_MAGIC);
        FinishedPack {
            id: self.id,
            kind: self.kind,
            bytes: self.buf,
            header,
        }
    }
}

/// Version 1 unless a blob is framed (so nothing a version-1 reader
/// cannot read is written where no frame is needed).
fn encode_header(h: &PackHeader) -> Vec<u8> {
    let v2 = h.entries.iter().any(PackEntry::is_framed);
    let per = if v2 { ENTRY_V2_LEN } else { HEADER_ENTRY_LEN };
    let mut out = Vec::with_capacity(21 + h.entries.len() * per);
    out.push(if v2 { 2 } else { 1 });
    out.extend_from_slice(&h.session.0);
    out.extend_from_slice(&(h.entries.len() as u32).to_le_bytes());
    for e in &h.entries {
        if v2 {
            encode_entry_v2(e, &mut out);
        } else {
            out.push(e.kind as u8);
            out.push(e.flags);
            out.extend_from_slice(&e.id.0);
            out.extend_from_slice(&e.stored_len.to_le_bytes());
            out.extend_from_slice(&e.raw_len.to_le_bytes());
        }
    }
    out
}

/// `type ‖ flags ‖ blob_id ‖ offset ‖ stored_len ‖ raw_len ‖ inner`: a
/// version-2 header entry and a version-2 index entry.
pub fn encode_entry_v2(e: &PackEntry, out: &mut Vec<u8>) {
    out.push(e.kind as u8);
    out.push(e.flags);
    out.extend_from_slice(&e.id.0);
    for x in [e.offset, e.stored_len, e.raw_len, e.inner] {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Parses one [`ENTRY_V2_LEN`]-byte entry.
pub fn decode_entry_v2(e: &[u8]) -> std::result::Result<PackEntry, &'static str> {
    let kind = BlobType::from_u8(e[0]).ok_or("unknown blob type")?;
    let flags = e[1];
    if flags & !(FLAG_COMPRESSED | FLAG_FRAMED | FLAG_PADDED) != 0 {
        return Err("unknown blob flags");
    }
    let u = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
    let entry = PackEntry {
        kind,
        flags,
        id: BlobId::from_slice(&e[2..34]).expect("32 bytes"),
        offset: u(34),
        stored_len: u(38),
        raw_len: u(42),
        inner: u(46),
    };
    if (entry.stored_len as usize) < TAG_LEN {
        return Err("blob shorter than its tag");
    }
    Ok(entry)
}

/// Parse a header's plaintext (version 1: offsets recomputed; version 2:
/// offsets given, checked to describe the whole pack, frames checked).
pub fn decode_header(plain: &[u8], what: &str) -> Result<PackHeader> {
    let bad = |d: &str| Error::corrupt(what.to_owned(), d.to_owned());
    if plain.len() < 21 || !matches!(plain[0], 1 | 2) {
        return Err(bad("header is too short or has an unknown version"));
    }
    let v2 = plain[0] == 2;
    let session = SessionId::from_slice(&plain[1..17]).expect("16 bytes");
    let count = u32::from_le_bytes(plain[17..21].try_into().expect("4 bytes")) as usize;
    let body = &plain[21..];
    let per = if v2 { ENTRY_V2_LEN } else { HEADER_ENTRY_LEN };
    if body.len()
        != count
            .checked_mul(per)
            .ok_or_else(|| bad("entry count overflows"))?
    {
        return Err(bad("header length does not match its entry count"));
    }
    let mut entries = Vec::with_capacity(count);
    if v2 {
        for e in body.chunks_exact(per) {
            entries.push(decode_entry_v2(e).map_err(bad)?);
        }
        check_entries(&entries, true).map_err(|d| bad(&d))?;
        return Ok(PackHeader { session, entries });
    }
    let mut offset: u64 = 0;
    for e in body.chunks_exact(per) {
        let kind = BlobType::from_u8(e[0]).ok_or_else(|| bad("unknown blob type"))?;
        let flags = e[1];
        if flags & !FLAG_COMPRESSED != 0 {
            return Err(bad("unknown blob flags"));
        }
        let id = BlobId::from_slice(&e[2..34]).expect("32 bytes");
        let stored_len = u32::from_le_bytes(e[34..38].try_into().expect("4 bytes"));
        let raw_len = u32::from_le_bytes(e[38..42].try_into().expect("4 bytes"));
        if (stored_len as usize) < TAG_LEN {
            return Err(bad("blob shorter than its tag"));
        }
        let off = u32::try_from(offset).map_err(|_| bad("pack larger than 4 GiB"))?;
        entries.push(PackEntry {
            kind,
            flags,
            id,
            offset: off,
            stored_len,
            raw_len,
            inner: 0,
        });
        offset += stored_len as u64;
    }
    Ok(PackHeader { session, entries })
}

/// The fixed trailer of a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub space: SpaceId,
    pub header_len: u32,
}

pub fn parse_trailer(pack: &PackId, tail: &[u8]) -> Result<Trailer> {
    let what = || format!("pack {pack}");
    if tail.len() < TRAILER_LEN || &tail[tail.len() - 8..] != PACK_MAGIC {
        return Err(Error::corrupt(
            what(),
            "no pack trailer (truncated or not a pack)",
        ));
    }
    let t = &tail[tail.len() - TRAILER_LEN..];
    Ok(Trailer {
        space: SpaceId::from_slice(&t[..16]).expect("16 bytes"),
        header_len: u32::from_le_bytes(t[16..20].try_into().expect("4 bytes")),
    })
}

pub fn decrypt_header(space: &SpaceKeys, pack: &PackId, header_ct: &[u8]) -> Result<PackHeader> {
    let what = format!("pack {pack}");
    let plain = crypto::open(
        &header_key(space, pack),
        [0; 12],
        &header_aad(pack, &space.space),
        header_ct,
    )
    .ok_or_else(|| Error::corrupt(what.clone(), "header does not authenticate"))?;
    decode_header(&plain, &what)
}

/// Decompress a blob stored with [`FLAG_COMPRESSED`] back to its `raw_len`
/// bytes (an error when it does not decompress to at most that many).
pub fn decompress(stored: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    zstd::bulk::decompress(stored, raw_len)
}

/// Decrypt, decompress and check one blob read from a pack: `ct` is its
/// unit's bytes (the blob's own, or its whole frame's). A reader wanting
/// several blobs of one frame opens it once with [`Unit::open`] instead.
pub fn open_blob(
    pack_key: &Key,
    pack: &PackId,
    entry: &PackEntry,
    ct: &[u8],
    space: &SpaceKeys,
) -> Result<Vec<u8>> {
    let need = need_of([entry]);
    let unit = Unit::open(pack_key, pack, entry, ct, need)?;
    Ok(unit.blob(pack, entry, space)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;
    use proptest::prelude::*;

    fn space() -> SpaceKeys {
        SpaceKeys::from_secret(SpaceId([9; 16]), &Key([4; 32]))
    }

    proptest! {
        #[test]
        fn header_round_trip(n in 0usize..50, seed in any::<u8>()) {
            let entries: Vec<PackEntry> = (0..n).scan(0u32, |off, i| {
                let e = PackEntry { kind: if i % 2 == 0 { BlobType::Data } else { BlobType::Tree }, flags: (i % 2) as u8,
                    id: BlobId([seed.wrapping_add(i as u8); 32]), offset: *off, stored_len: 16 + i as u32, raw_len: i as u32 * 3, inner: 0 };
                *off += e.stored_len;
                Some(e)
            }).collect();
            let h = PackHeader { session: SessionId([seed; 16]), entries };
            prop_assert_eq!(decode_header(&encode_header(&h), "t").unwrap(), h);
        }

        #[test]
        fn pack_round_trip(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..20)) {
            let sp = space();
            let session = SessionKey::generate();
            let mut w = PackWriter::new(&session, BlobType::Data, 0);
            let mut comp = zstd::bulk::Compressor::new(3).unwrap();
            let mut out = Vec::new();
            for b in &blobs {
                let flags = compress(&mut comp, b, &mut out);
                w.add(sp.blob_id(b), if flags == FLAG_COMPRESSED { &out } else { b }, flags, b.len() as u32);
            }
            let p = w.finish(&sp);
            let t = parse_trailer(&p.id, &p.bytes).unwrap();
            prop_assert_eq!(t.space, sp.space);
            let hend = p.bytes.len() - TRAILER_LEN;
            let h = decrypt_header(&sp, &p.id, &p.bytes[hend - t.header_len as usize..hend]).unwrap();
            prop_assert_eq!(&h, &p.header);
            let key = session.pack_key(&p.id);
            for (e, b) in h.entries.iter().zip(&blobs) {
                let ct = &p.bytes[e.offset as usize..(e.offset + e.stored_len) as usize];
                prop_assert_eq!(&open_blob(&key, &p.id, e, ct, &sp).unwrap(), b);
                // The same bytes under another pack id do not open.
                prop_assert!(open_blob(&key, &PackId([1; 32]), e, ct, &sp).is_err());
            }
        }
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let text = b"kota bontang ".repeat(50_000);
        let mut out = Vec::new();
        assert_eq!(compress(&mut comp, &text, &mut out), FLAG_COMPRESSED);
        assert!(out.len() < text.len() / 10);
        let mut rnd = vec![0u8; 600_000];
        use rand::RngCore;
        rand::thread_rng().fill_bytes(&mut rnd);
        assert_eq!(compress(&mut comp, &rnd, &mut out), 0);
        // High byte entropy but repetitive (a random 4 KiB block over and
        // over): the zstd probe sees through it, so it is compressed.
        let rep = rnd[..4096].repeat(150);
        assert!(entropy_bits(&rep[..64 * 1024]) > LOW_ENTROPY_BITS);
        assert_eq!(compress(&mut comp, &rep, &mut out), FLAG_COMPRESSED);
        assert!(out.len() < rep.len() / 10);
        // Low entropy in the sample, random after it: tried in full and
        // kept raw when the whole does not pay.
        let mut mixed = text[..64 * 1024].to_vec();
        let mut tail = vec![0u8; 4 << 20];
        rand::thread_rng().fill_bytes(&mut tail);
        mixed.extend_from_slice(&tail);
        assert!(entropy_bits(&mixed[..64 * 1024]) < LOW_ENTROPY_BITS);
        assert_eq!(compress(&mut comp, &mixed, &mut out), 0);
    }

    #[test]
    fn entropy_of_known_samples() {
        assert_eq!(entropy_bits(&[7; 1000]), 0.0);
        let all: Vec<u8> = (0..=255u8).cycle().take(256 * 64).collect();
        assert!((entropy_bits(&all) - 8.0).abs() < 1e-9);
        let two: Vec<u8> = [1u8, 2].repeat(500);
        assert!((entropy_bits(&two) - 1.0).abs() < 1e-9);
    }
}
