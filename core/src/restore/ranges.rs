//! Which reads a restore makes: each pack's needed blobs in offset order,
//! neighbours read together with the gaps between them.

use std::collections::HashMap;

use crate::id::{BlobId, PackId, SessionId};
use crate::pack::PackEntry;

pub(super) struct Target {
    pub(super) file: usize,
    pub(super) offset: u64,
    /// The blob's length as the plan placed it (the tree's sizes and the
    /// index's lengths); the blob opened must have it.
    pub(super) len: u64,
}

pub(super) struct PackPlan {
    pub(super) session: SessionId,
    pub(super) blobs: HashMap<BlobId, (PackEntry, Vec<Target>)>,
}

/// One read from a pack: `lo..hi`, holding `blobs`.
pub(super) struct Range {
    pub(super) pack: PackId,
    pub(super) session: SessionId,
    pub(super) lo: u64,
    pub(super) hi: u64,
    /// In offset order (a frame's blobs together, by `inner`).
    pub(super) blobs: Vec<(PackEntry, Vec<Target>)>,
}

/// How far one read reaches.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reach {
    /// The most one read fetches (a larger blob, up to the chunker's
    /// maximum, is read alone).
    pub(super) max_range: u64,
    /// Blobs this close in a pack are read in one range, the gap with them.
    pub(super) max_gap: u64,
}

/// A local store: each read is held whole until written, so memory is
/// about `concurrency` × the larger of this and the largest blob (whole
/// packs, 16–64 MiB, took several times more); a gap costs a disk read.
pub(super) const LOCAL: Reach = Reach {
    max_range: 1 << 20,
    max_gap: 256 << 10,
};

/// An object store: each request costs a round trip and is streamed, blob
/// by blob, as it arrives (memory does not grow with the range), so a pack
/// is read in few large ranges, and a gap of up to 1 MiB costs less than
/// another request. 8 MiB still splits a pack (16 MiB) in two, for more
/// requests in flight on a small restore.
pub(super) const REMOTE: Reach = Reach {
    max_range: 8 << 20,
    max_gap: 1 << 20,
};

/// Splits each pack's blobs into ranges, each pack's in offset order (the
/// packs in no particular order). The blobs of one frame are always in
/// one range, which fetches the frame once.
pub(super) fn ranges(plan: HashMap<PackId, PackPlan>, reach: Reach) -> Vec<Range> {
    let mut out = Vec::new();
    for (pack, pp) in plan {
        let mut blobs: Vec<(PackEntry, Vec<Target>)> = pp.blobs.into_values().collect();
        blobs.sort_by_key(|(e, _)| (e.offset, e.inner));
        let mut cur: Option<Range> = None;
        for (e, targets) in blobs {
            let (lo, hi) = (e.offset as u64, e.offset as u64 + e.stored_len as u64);
            if let Some(r) = &mut cur
                && (lo < r.hi || (lo <= r.hi + reach.max_gap && hi - r.lo <= reach.max_range))
            {
                r.hi = r.hi.max(hi);
                r.blobs.push((e, targets));
                continue;
            }
            out.extend(cur.take());
            cur = Some(Range {
                pack,
                session: pp.session,
                lo,
                hi,
                blobs: vec![(e, targets)],
            });
        }
        out.extend(cur);
    }
    out
}

#[cfg(test)]
mod range_tests {
    use super::*;
    use crate::pack;

    fn entry(offset: u32, len: u32) -> PackEntry {
        PackEntry {
            kind: pack::BlobType::Data,
            flags: 0,
            id: BlobId::random(),
            offset,
            stored_len: len,
            raw_len: len,
            inner: 0,
        }
    }

    fn framed(offset: u32, len: u32, inner: u32) -> PackEntry {
        PackEntry {
            flags: pack::FLAG_FRAMED,
            inner,
            raw_len: 10,
            ..entry(offset, len)
        }
    }

    fn plan_of(pack: PackId, blobs: &[(PackEntry, usize)]) -> HashMap<PackId, PackPlan> {
        let mut plan = HashMap::new();
        plan.insert(
            pack,
            PackPlan {
                session: SessionId::random(),
                blobs: blobs
                    .iter()
                    .map(|(e, n)| {
                        let targets = (0..*n)
                            .map(|i| Target {
                                file: i,
                                offset: 0,
                                len: 0,
                            })
                            .collect();
                        (e.id, (e.clone(), targets))
                    })
                    .collect(),
            },
        );
        plan
    }

    #[test]
    fn a_packs_blobs_are_read_in_ranges_of_neighbours_up_to_the_limit() {
        const M: u32 = 1 << 20;
        const G: u32 = LOCAL.max_gap as u32;
        let blobs = [
            // Adjacent: one range of exactly 1 MiB.
            (entry(0, M / 2), 1),
            (entry(M / 2, M / 2), 3),
            // A gap of exactly max_gap, but the range would pass 1 MiB.
            (entry(M + G, 1000), 1),
            // Within max_gap of the one before: the same range.
            (entry(M + G + 1000 + G, 10), 1),
            // max_gap + 1 after it: a new range.
            (entry(M + G + 1000 + G + 10 + G + 1, 10), 1),
            // Larger than max_range: read alone.
            (entry(3 * M, 3 * M), 2),
            // A frame larger than max_range: its blobs in one range.
            (framed(6 * M, 2 * M, 0), 1),
            (framed(6 * M, 2 * M, 10), 2),
            (framed(6 * M, 2 * M, 20), 1),
        ];
        let got = ranges(plan_of(PackId::random(), &blobs), LOCAL);
        let spans: Vec<(u64, u64, usize)> =
            got.iter().map(|r| (r.lo, r.hi, r.blobs.len())).collect();
        let (m, g) = (M as u64, G as u64);
        assert_eq!(
            spans,
            [
                (0, m, 2),
                (m + g, m + g + 1000 + g + 10, 2),
                (m + 3 * g + 1011, m + 3 * g + 1021, 1),
                (3 * m, 6 * m, 1),
                (6 * m, 8 * m, 3),
            ]
        );
        // Every blob once, with all its targets.
        let mut seen: Vec<(BlobId, usize)> = got
            .iter()
            .flat_map(|r| r.blobs.iter().map(|(e, t)| (e.id, t.len())))
            .collect();
        let mut want: Vec<(BlobId, usize)> = blobs.iter().map(|(e, n)| (e.id, *n)).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
    }
}
