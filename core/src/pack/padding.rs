//! Padded frames (FORMAT.md §4.2, format 3): the buckets a small blob's
//! slot and a frame's stored bytes are brought to, and reading a blob
//! back out of its slot.

use super::{FLAG_PADDED, PackEntry};

/// Bytes of a slot's length prefix.
pub(super) const SLOT_PREFIX: usize = 4;

/// `n` rounded up to a bucket: `floor` at least, and above it a multiple
/// of 2^(⌊log₂ n⌋ − `shift`), so at most 1/2^`shift` is added.
fn bucket(n: usize, floor: usize, shift: u32) -> usize {
    if n <= floor {
        return floor;
    }
    let g = 1usize << n.ilog2().saturating_sub(shift);
    n.div_ceil(g) * g
}

/// A byte count as a version-3 snapshot's summary keeps it (FORMAT.md §6):
/// 0 stays 0; otherwise 4 KiB at least, then rounded up to at most 1/256
/// more, so one small file's bytes do not show in a night's counts.
pub fn summary_bucket(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    bucket(n as usize, 4096, 8) as u64
}

/// The length of the slot a blob of `len` raw bytes takes in a padded
/// frame: its 4-byte length, its bytes and zeros up to a bucket (256
/// bytes at least, then at most 1/16 more).
pub fn slot_len(len: usize) -> usize {
    bucket(len + SLOT_PREFIX, 256, 4)
}

/// The stored length (before the AEAD tag) a padded frame of `len` stored
/// bytes is brought to: 4 KiB at least, then at most 1/32 more. A
/// compressed frame is padded with a zstd skippable frame, which takes 8
/// bytes at least.
pub fn padded_stored_len(len: usize, compressed: bool) -> usize {
    let t = bucket(len, 4096, 5);
    if compressed && t > len && t - len < 8 {
        bucket(len + 8, 4096, 5)
    } else {
        t
    }
}

/// Appends to `buf` (which holds a frame's `stored` bytes from `from` on)
/// the padding [`padded_stored_len`] asks for: zeros after an
/// uncompressed frame (readers stop at the last slot), a zstd skippable
/// frame after a compressed one (decoders skip it).
pub(super) fn pad_stored(buf: &mut Vec<u8>, from: usize, compressed: bool) {
    let len = buf.len() - from;
    let pad = padded_stored_len(len, compressed) - len;
    if pad == 0 {
        return;
    }
    let start = buf.len();
    buf.resize(start + pad, 0);
    if compressed {
        buf[start..start + 4].copy_from_slice(&0x184D_2A50u32.to_le_bytes());
        let n = (pad - 8) as u32;
        buf[start + 4..start + 8].copy_from_slice(&n.to_le_bytes());
    }
}

/// A padded slot's blob: `len ‖ bytes ‖ zeros`, `None` if `len` does not
/// fit.
pub(super) fn slot_bytes(slot: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(slot.get(..SLOT_PREFIX)?.try_into().ok()?) as usize;
    slot.get(SLOT_PREFIX..SLOT_PREFIX.checked_add(len)?)
}

/// The most raw bytes the blob of entry `e` can have: its `raw_len`, or
/// less its slot's length prefix when padded (the exact length is inside
/// the frame).
pub fn max_blob_len(e: &PackEntry) -> u32 {
    if e.flags & FLAG_PADDED != 0 {
        e.raw_len.saturating_sub(SLOT_PREFIX as u32)
    } else {
        e.raw_len
    }
}
