//! The machine's limits for a backup, measured with Pulih's own building
//! blocks on one core: FastCDC chunking, keyed BLAKE3, zstd through the
//! same compressibility probe a backup uses, AES-256-GCM (ring), and zstd
//! decompression for restores, each the best of three passes
//! (`pulih_core::bench`, which `pulih benchmark` uses too, on generated
//! data). Run by `bench/repo_bench.sh`:
//!
//!   cargo run --release -p pulih-core --example limits -- CORPUS_DIR [CORES]
//!
//! It reads the corpus's files into memory (the whole corpus, so the mix of
//! data is the backup's), then times every stage over the same chunks. The
//! last line is the bound a backup pipeline can reach on CORES cores when
//! the CPU is the limit: CORES × bytes / (the stages' summed seconds).

use std::path::{Path, PathBuf};

use pulih_core::bench::measure_cpu;
use pulih_core::config::DEFAULT_COMPRESSION_LEVEL;

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let t = e.file_type()?;
        if t.is_dir() {
            files(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        return Err("usage: limits CORPUS_DIR [CORES]".into());
    };
    let cores: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    let mut paths = Vec::new();
    files(Path::new(&dir), &mut paths)?;
    if paths.is_empty() {
        return Err(format!("{dir}: no files to measure").into());
    }
    // Files are chunked as one stream here (a backup cuts at each file's
    // end): the per-byte costs are the same.
    let mut data = Vec::new();
    for p in &paths {
        data.extend_from_slice(&std::fs::read(p)?);
    }
    let f = measure_cpu(&data, DEFAULT_COMPRESSION_LEVEL)?;
    let n = f.bytes as f64;
    println!(
        "corpus: {:.0} MB in {} chunks (avg {:.0} KiB), stored {:.0} MB after compression (id byte {})",
        n / 1e6,
        f.chunks,
        n / f.chunks as f64 / 1024.0,
        f.stored_bytes as f64 / 1e6,
        f.id_byte
    );
    println!("- FastCDC chunking: {:.0} MB/s", f.chunking_mbs());
    println!("- BLAKE3 keyed (blob ids): {:.0} MB/s", f.hashing_mbs());
    println!(
        "- zstd -3 with the backup's compressibility probe, this mix: {:.0} MB/s of input",
        f.compression_mbs()
    );
    println!(
        "- AES-256-GCM (ring) of the stored bytes: {:.0} MB/s",
        f.encryption_mbs()
    );
    println!(
        "- zstd decompression (restore): {:.0} MB/s of output",
        f.decompression_mbs()
    );
    println!(
        "- CPU bound of a backup on {cores} cores (these stages only, no I/O): {:.0} MB/s",
        f.backup_bound_mbs(cores)
    );
    Ok(())
}
