//! The data `pulih benchmark` measures on: generated in memory, the same
//! bytes for the same size on every machine, in the mix of the corpus
//! `bench/make_corpus.py` builds for `bench/repo_bench.sh` (and so for
//! `core/examples/limits.rs`), laid out in the order limits.rs reads that
//! corpus's files (by path):
//!
//! | share | like the corpus's | bytes |
//! |---|---|---|
//! | 30 % | `acak/`, `arsip/` | random (stands for random and already-compressed files: zstd's probe rejects both) |
//! | 20 % | `besar/` | 4 MiB pieces, each text or random (half and half) |
//! | 20 % | `csv/` | CSV rows (NIK, name, kelurahan, date, amount) |
//! | 10 % | `kecil/` | 1-16 KiB pieces, random and text in turn |
//! | 20 % | `teks/` | lines of 5-15 words from make_corpus.py's 17 words |
//!
//! The generator is a SplitMix64 stream from a fixed seed, so a size gives
//! the same bytes in every run and every version.

/// The mix, in words, for the command's output.
pub const MIX: &str = "30 % random, 20 % 4 MiB pieces (half text), 20 % CSV, 10 % small pieces (half text), 20 % text";

const WORDS: [&str; 17] = [
    "kota",
    "bontang",
    "pusat",
    "data",
    "layanan",
    "warga",
    "dinas",
    "arsip",
    "surat",
    "keputusan",
    "kesehatan",
    "pendidikan",
    "anggaran",
    "daerah",
    "pemulihan",
    "cadangan",
    "server",
];

/// SplitMix64: tiny, fast, and fixed forever (unlike a library's default
/// generator), which is all a deterministic sample needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((u128::from(self.next()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    fn random(&mut self, out: &mut Vec<u8>, n: usize) {
        let end = out.len() + n;
        while out.len() + 8 <= end {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        let rest = end - out.len();
        out.extend_from_slice(&self.next().to_le_bytes()[..rest]);
    }

    fn text(&mut self, out: &mut Vec<u8>, n: usize) {
        let end = out.len() + n;
        while out.len() < end {
            for w in 0..self.range(5, 15) {
                if w > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(
                    WORDS[self.range(0, WORDS.len() as u64 - 1) as usize].as_bytes(),
                );
            }
            out.push(b'\n');
        }
        out.truncate(end);
    }

    fn csv(&mut self, out: &mut Vec<u8>, n: usize) {
        let end = out.len() + n;
        out.extend_from_slice(b"nik,nama,kelurahan,tanggal,nominal\n");
        let mut i = 0u64;
        while out.len() < end {
            let row = format!(
                "6474{:012},Warga {i},Kelurahan {},2026-{:02}-{:02},{}\n",
                self.range(0, 999_999_999_999),
                self.range(1, 40),
                self.range(1, 12),
                self.range(1, 28),
                self.range(1000, 10_000_000),
            );
            out.extend_from_slice(row.as_bytes());
            i += 1;
        }
        out.truncate(end);
    }
}

/// `size` bytes of the mix above, the same for the same size.
pub fn generate(size: usize) -> Vec<u8> {
    let mut rng = Rng(1);
    let mut out = Vec::with_capacity(size);
    let share = |percent: usize| size / 100 * percent + size % 100 * percent / 100;
    rng.random(&mut out, share(30));
    // Disk-image-like: 4 MiB pieces, each text or random.
    let end = out.len() + share(20);
    while out.len() < end {
        let n = (4 << 20).min(end - out.len());
        if rng.next() & 1 == 0 {
            rng.text(&mut out, n);
        } else {
            rng.random(&mut out, n);
        }
    }
    rng.csv(&mut out, share(20));
    // Small files, random and text in turn.
    let end = out.len() + share(10);
    let mut i = 0;
    while out.len() < end {
        let n = (rng.range(1024, 16384) as usize).min(end - out.len());
        if i % 2 == 0 {
            rng.random(&mut out, n);
        } else {
            rng.text(&mut out, n);
        }
        i += 1;
    }
    let rest = size - out.len();
    rng.text(&mut out, rest);
    out
}

/// `n` random bytes from `seed`: a store benchmark's object bodies
/// (packs are encrypted, so random; one seed per object, so a store that
/// deduplicates cannot skip the work).
pub fn random(seed: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    Rng(seed ^ 0x5075_6c69_6862_656e).random(&mut out, n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_exact_and_the_bytes_repeat() {
        for size in [0, 1, 99, 100, 1 << 20, (3 << 20) + 7] {
            let a = generate(size);
            assert_eq!(a.len(), size);
            assert_eq!(a, generate(size), "size {size} is deterministic");
        }
        assert_eq!(random(3, 1001).len(), 1001);
        assert_eq!(random(3, 64), random(3, 64));
        assert_ne!(random(3, 64), random(4, 64));
    }

    #[test]
    fn the_mix_compresses_like_the_corpus() {
        // Text and CSV (40 %, zstd -3: 5.6x and 3x) and half the pieces
        // compress, the random 30 % does not: stored/raw is about 0.6, as
        // for the corpus (0.61 at 256 MiB).
        let data = generate(8 << 20);
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let ratio = z.len() as f64 / data.len() as f64;
        assert!((0.5..0.75).contains(&ratio), "stored/raw {ratio:.2}");
        let text = &data[data.len() - 100_000..];
        assert!(
            text.iter()
                .all(|b| b.is_ascii_lowercase() || *b == b' ' || *b == b'\n')
        );
    }
}
