//! The machine's speed at a backup's stages, measured with the engine's
//! own functions on one core: keyed FastCDC chunking ([`Chunker`]), keyed
//! BLAKE3 blob ids ([`mac`], what `SpaceKeys::blob_id` computes), zstd at
//! the repository's default level through the backup's compressibility
//! probe ([`pack::compress`]), AES-256-GCM as a pack seals its blobs
//! ([`Sealer::seal_tail`]) and zstd decompression as a restore opens them
//! ([`pack::decompress`]). Each stage's figure is the best of
//! [`PASSES`] passes over the same data: a shared machine's neighbours
//! slow single passes by up to half; a limit is what the core can do.
//!
//! Used by `pulih benchmark` (on [`sample::generate`]'s data) and by
//! `core/examples/limits.rs` (on a corpus read from disk). [`store`]
//! measures an object store's throughput and latency.

pub mod sample;
pub mod store;

use std::time::Instant;

use serde::Serialize;

use crate::chunker::Chunker;
use crate::config::ChunkerParams;
use crate::crypto::{Key, Sealer, counter_nonce, mac};
use crate::pack::{self, FLAG_COMPRESSED};
use crate::{Error, Result};

/// Passes per stage; the fastest counts.
pub const PASSES: usize = 3;

/// Bytes per second as MB/s (10⁶ bytes).
pub fn mbs(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

/// Runs `pass` [`PASSES`] times; the shortest time in seconds and the last
/// pass's result.
pub fn best_of<T>(mut pass: impl FnMut() -> T) -> (f64, T) {
    let mut out = None;
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let t = Instant::now();
        let r = pass();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one pass ran"))
}

/// One core's time at each stage over the same data.
#[derive(Clone, Debug, Serialize)]
pub struct CpuFigures {
    /// Input bytes.
    pub bytes: u64,
    pub chunks: u64,
    /// Bytes after compression (what is encrypted and uploaded).
    pub stored_bytes: u64,
    /// Bytes the decompression pass produced (the compressed chunks' raw size).
    pub decompressed_bytes: u64,
    pub chunk_seconds: f64,
    pub hash_seconds: f64,
    pub compress_seconds: f64,
    pub encrypt_seconds: f64,
    pub decompress_seconds: f64,
    /// The XOR of the blob ids' first bytes: keeps the hashing pass from
    /// being optimized away (limits.rs prints it).
    #[serde(skip)]
    pub id_byte: u8,
}

impl CpuFigures {
    pub fn chunking_mbs(&self) -> f64 {
        mbs(self.bytes, self.chunk_seconds)
    }

    pub fn hashing_mbs(&self) -> f64 {
        mbs(self.bytes, self.hash_seconds)
    }

    /// Of input.
    pub fn compression_mbs(&self) -> f64 {
        mbs(self.bytes, self.compress_seconds)
    }

    /// Of the stored (compressed) bytes, which are what is encrypted.
    pub fn encryption_mbs(&self) -> f64 {
        mbs(self.stored_bytes, self.encrypt_seconds)
    }

    /// Of output.
    pub fn decompression_mbs(&self) -> f64 {
        mbs(self.decompressed_bytes, self.decompress_seconds)
    }

    /// The rate a backup pipeline can reach on `cores` cores when the CPU
    /// is the limit (these stages only, no I/O): `cores` × input bytes /
    /// the stages' summed seconds.
    pub fn backup_bound_mbs(&self, cores: f64) -> f64 {
        let s =
            self.chunk_seconds + self.hash_seconds + self.compress_seconds + self.encrypt_seconds;
        cores * mbs(self.bytes, s)
    }
}

/// Times every stage over `data`, chunked as one stream (a backup cuts at
/// each file's end too; the per-byte costs are the same), with the default
/// chunker sizes and zstd at `compression_level`.
pub fn measure_cpu(data: &[u8], compression_level: i32) -> Result<CpuFigures> {
    let key = Key([7; 32]);
    let chunker = Chunker::new(&key, ChunkerParams::default());
    let (chunk_seconds, chunks) = best_of(|| {
        let mut chunks = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let cut = chunker.next_cut(rest);
            chunks.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        chunks
    });

    let (hash_seconds, id_byte) = best_of(|| chunks.iter().fold(0u8, |a, c| a ^ mac(&key, c)[0]));

    let mut compressor = zstd::bulk::Compressor::new(compression_level)
        .map_err(|e| Error::Invalid(format!("zstd level {compression_level}: {e}")))?;
    let mut out = Vec::new();
    // A backup compresses into a scratch buffer and copies the stored
    // bytes into its open pack, a buffer it reuses pack after pack; the
    // copy is kept in. Here one buffer takes all the stored bytes (never
    // more than the input), its pages touched before the first pass: a
    // fresh allocation per chunk would time page faults instead, as many
    // as the allocator's state in the process happens to cause.
    let mut packed = vec![0u8; data.len()];
    packed.clear();
    let (compress_seconds, stored) = best_of(|| {
        packed.clear();
        chunks
            .iter()
            .map(|c| {
                let at = packed.len();
                let raw_len = if pack::compress(&mut compressor, c, &mut out) & FLAG_COMPRESSED != 0
                {
                    packed.extend_from_slice(&out);
                    Some(c.len())
                } else {
                    packed.extend_from_slice(c);
                    None
                };
                (at..packed.len(), raw_len)
            })
            .collect::<Vec<_>>()
    });

    let sealer = Sealer::new(&key);
    let mut buf = Vec::with_capacity(8 << 20);
    let (encrypt_seconds, ()) = best_of(|| {
        for (i, (at, _)) in stored.iter().enumerate() {
            buf.clear();
            buf.extend_from_slice(&packed[at.clone()]);
            sealer.seal_tail(counter_nonce(i as u64), b"aad", &mut buf, 0);
        }
    });

    // A restore's decompression allocates each blob's output, as here.
    let (decompress_seconds, decompressed) = best_of(|| -> std::io::Result<usize> {
        let mut n = 0;
        for (at, raw_len) in &stored {
            if let Some(raw_len) = raw_len {
                n += pack::decompress(&packed[at.clone()], *raw_len)?.len();
            }
        }
        Ok(n)
    });
    let decompressed = decompressed
        .map_err(|e| Error::Invalid(format!("decompressing a chunk just compressed: {e}")))?;

    Ok(CpuFigures {
        bytes: data.len() as u64,
        chunks: chunks.len() as u64,
        stored_bytes: packed.len() as u64,
        decompressed_bytes: decompressed as u64,
        chunk_seconds,
        hash_seconds,
        compress_seconds,
        encrypt_seconds,
        decompress_seconds,
        id_byte,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_is_timed_on_the_whole_sample() {
        let data = sample::generate(6 << 20);
        let f = measure_cpu(&data, crate::config::DEFAULT_COMPRESSION_LEVEL).unwrap();
        assert_eq!(f.bytes, 6 << 20);
        assert!(f.chunks >= 2, "1 MiB average chunks: {}", f.chunks);
        assert!(f.stored_bytes < f.bytes && f.stored_bytes > f.bytes / 4);
        assert!(f.decompressed_bytes > 0 && f.decompressed_bytes < f.bytes);
        for v in [
            f.chunking_mbs(),
            f.hashing_mbs(),
            f.compression_mbs(),
            f.encryption_mbs(),
            f.decompression_mbs(),
            f.backup_bound_mbs(2.0),
        ] {
            assert!(v.is_finite() && v > 0.0, "{f:?}");
        }
        assert!(f.backup_bound_mbs(2.0) < 2.0 * f.chunking_mbs());
    }
}
