//! Content-defined chunking: FastCDC 2020 with a gear table keyed per
//! repository (FORMAT.md §9), so chunk boundaries do not fingerprint content.

use fastcdc::v2020::{MASKS, cut_gear, logarithm2};

use crate::config::ChunkerParams;
use crate::crypto::Key;

/// A keyed chunker. Cheap to clone; holds its 4 KiB gear tables.
#[derive(Clone)]
pub struct Chunker {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    pub fn new(key: &Key, params: ChunkerParams) -> Chunker {
        let mut xof = blake3::Hasher::new_keyed(&key.0);
        xof.update(b"pulih/v1/gear");
        let mut bytes = [0u8; 2048];
        xof.finalize_xof().fill(&mut bytes);
        let mut gear = Box::new([0u64; 256]);
        let mut gear_ls = Box::new([0u64; 256]);
        for i in 0..256 {
            gear[i] = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            gear_ls[i] = gear[i] << 1;
        }
        let bits = logarithm2(params.avg_size);
        // Normalization level 1.
        let mask_s = MASKS[(bits + 1) as usize];
        let mask_l = MASKS[(bits - 1) as usize];
        Chunker {
            gear,
            gear_ls,
            params,
            mask_s,
            mask_l,
        }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the next chunk at the start of `data`. `data` must hold at
    /// least `max_size` bytes unless it is the end of the stream.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        let (_, n) = cut_gear(
            data,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n
    }

    /// All chunk lengths of a complete buffer (tests and tools).
    pub fn cuts(&self, mut data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = self.next_cut(data);
            out.push(n);
            data = &data[n..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
        }
    }

    proptest! {
        #[test]
        fn cuts_cover_the_input_within_bounds(data in proptest::collection::vec(any::<u8>(), 0..20000)) {
            let c = Chunker::new(&Key([3; 32]), small());
            let cuts = c.cuts(&data);
            prop_assert_eq!(cuts.iter().sum::<usize>(), data.len());
            for (i, n) in cuts.iter().enumerate() {
                prop_assert!(*n <= 1024);
                if i + 1 < cuts.len() { prop_assert!(*n >= 64); }
            }
        }
    }

    #[test]
    fn boundaries_depend_on_the_key_and_resync_after_an_edit() {
        let mut data = vec![0u8; 200_000];
        let mut x = 1u64;
        for b in data.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 33) as u8;
        }
        let a = Chunker::new(&Key([1; 32]), small()).cuts(&data);
        let b = Chunker::new(&Key([2; 32]), small()).cuts(&data);
        assert_ne!(a, b, "different keys must give different boundaries");
        // Insert a byte near the start: most later chunks are unchanged.
        let mut edited = data.clone();
        edited.insert(100, 0xAA);
        let c = Chunker::new(&Key([1; 32]), small());
        let ends = |cuts: &[usize], shift: usize| -> std::collections::HashSet<usize> {
            cuts.iter()
                .scan(0, |s, n| {
                    *s += n;
                    Some(*s - shift)
                })
                .collect()
        };
        let before = ends(&a, 0);
        let after: std::collections::HashSet<usize> = ends(&c.cuts(&edited), 0)
            .into_iter()
            .filter(|e| *e > 2000)
            .map(|e| e - 1)
            .collect();
        let common = before.intersection(&after).count();
        assert!(
            common * 10 >= before.len() * 8,
            "only {common} of {} boundaries survived",
            before.len()
        );
    }
}

#[cfg(test)]
mod overwrite_tests {
    use super::*;

    #[test]
    fn an_overwrite_changes_few_chunks_at_real_sizes() {
        use rand::RngCore;
        for avg in [64 * 1024u32, 1024 * 1024] {
            let p = ChunkerParams {
                min_size: avg / 4,
                avg_size: avg,
                max_size: avg * 4,
            };
            let c = Chunker::new(&Key([1; 32]), p);
            let mut data = vec![0u8; 8_000_000];
            rand::thread_rng().fill_bytes(&mut data);
            let a = c.cuts(&data);
            data[4_000_000..4_000_010].copy_from_slice(b"XXXXXXXXXX");
            let b = c.cuts(&data);
            let ends = |v: &[usize]| {
                v.iter()
                    .scan(0, |s, n| {
                        *s += n;
                        Some(*s)
                    })
                    .collect::<std::collections::HashSet<usize>>()
            };
            let (ea, eb) = (ends(&a), ends(&b));
            let changed = ea.symmetric_difference(&eb).count();
            assert!(
                changed <= 4,
                "avg {avg}: {changed} boundaries moved of {}; sizes {:?}",
                a.len(),
                &a[..a.len().min(12)]
            );
        }
    }
}
