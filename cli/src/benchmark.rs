//! `pulih benchmark`: this machine's speed at a backup's stages, and with
//! `--repo` a store's throughput and latency, to size a DRC and its link.
//! The measuring is `pulih_core::bench`'s; this file parses, prints and
//! explains.

use anyhow::{Context, Result};
use clap::Args;
use pulih_core::bench::{self, CpuFigures, sample, store};
use pulih_core::config::DEFAULT_COMPRESSION_LEVEL;
use pulih_core::storage::Store;

use crate::exit;
use crate::ops::table;

/// `pulih benchmark --help`.
pub const LONG_ABOUT: &str = "Measure this machine's speed at a backup's stages, each on one core and the best of three passes: \
keyed FastCDC chunking, keyed BLAKE3 blob ids, zstd compression at the repository default level \
through the backup's compressibility probe, AES-256-GCM encryption as packs are sealed, and zstd \
decompression as a restore does it. The data is generated in memory, the same bytes every run, a \
mix like the benchmark corpus (bench/make_corpus.py): text, CSV, random, and pieces of both.\n\n\
With --repo URL it also measures that store: PUT and GET throughput of pack-sized objects (4 MiB \
and 16 MiB, --in-flight at once) and the latency of 1 KiB objects one at a time (median and p90). \
It writes only under a new scratch prefix, benchmark/<random>/ below the URL, and deletes it \
before it ends (also on an error or Ctrl-C); a repository at the URL is not touched (only the \
existence of its `config` is checked). S3 credentials as for `pulih repo`: AWS_ACCESS_KEY_ID / \
AWS_SECRET_ACCESS_KEY, or files named by PULIH_S3_ACCESS_KEY_ID_FILE / PULIH_S3_SECRET_ACCESS_KEY_FILE.\n\n\
It then says what the figures mean: the rate a backup can reach on this machine's cores when the \
CPU is the limit, how long 1 GiB takes to upload and download at the store's rates, and what a \
first backup of this mix to the store could reach. Holds about twice --size in memory, and with \
--repo twice --objects × 16 MiB.";

#[derive(Args)]
pub struct BenchmarkArgs {
    /// Data to measure the stages on (e.g. 256MiB, 1GiB, 64M; plain bytes too).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    size: usize,
    /// Cores for the backup bound (default: this machine's).
    #[arg(long)]
    cores: Option<u32>,
    /// Also measure this store: a path, file:///PATH, s3://BUCKET/PREFIX?endpoint=URL&region=R.
    /// Writes only under benchmark/<random>/ below it and deletes that. Not read from PULIH_REPO.
    #[arg(long = "repo", value_name = "URL")]
    repo: Option<String>,
    /// Objects of each size (4 MiB, 16 MiB) for the store's throughput.
    #[arg(long, default_value_t = store::StoreOptions::default().objects as u64,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    objects: u64,
    /// Requests in flight at once for the store's throughput (a backup
    /// keeps 2 packs in flight, a restore up to 8 reads).
    #[arg(long, default_value_t = store::StoreOptions::default().in_flight as u64,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    in_flight: u64,
    /// Print one JSON object (every figure, and the raw bytes and seconds) instead of the table.
    #[arg(long)]
    json: bool,
}

/// `256MiB`, `1GiB`, `64M`, `512k`, `1000`: binary units (K, M, G, with
/// or without `iB`), or bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is no size (e.g. 256MiB, 1GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        u => return Err(format!("unknown unit `{u}` in `{s}` (use KiB, MiB or GiB)")),
    };
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes < 1 << 20 {
        return Err(format!("`{s}` is less than 1 MiB: too little to measure"));
    }
    Ok(bytes)
}

pub async fn run(a: BenchmarkArgs) -> Result<u8> {
    // Open the store first: a bad URL fails before a minute of measuring.
    let store = a
        .repo
        .as_deref()
        .map(|url| Store::open(url, false).with_context(|| format!("opening {url}")))
        .transpose()?;
    let cores = a.cores.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        |c| c.max(1),
    );
    let size = a.size;
    let cpu = tokio::task::spawn_blocking(move || {
        let data = sample::generate(size);
        bench::measure_cpu(&data, DEFAULT_COMPRESSION_LEVEL)
    })
    .await
    .context("the measuring thread failed")??;
    let store = match &store {
        None => None,
        Some(s) => {
            let opts = store::StoreOptions {
                objects: a.objects as usize,
                in_flight: a.in_flight as usize,
                ..Default::default()
            };
            // SIGINT/SIGTERM from here on stop the run, which then
            // deletes its scratch objects before the process ends.
            let cancel = crate::serve::shutdown_on_signals();
            let stop = async {
                cancel.cancelled().await;
                eprintln!(
                    "stopping: the requests in flight finish, then the scratch prefix is deleted"
                );
            };
            let f = store::measure(s, &opts, stop)
                .await
                .with_context(|| format!("store benchmark of {}", s.url()))?;
            Some(f)
        }
    };
    let report = Report {
        cpu,
        cores,
        store: store.as_ref().zip(a.repo.as_deref()),
    };
    if a.json {
        println!("{}", serde_json::to_string(&report.json())?);
    } else {
        report.print();
    }
    Ok(exit::OK)
}

struct Report<'a> {
    cpu: CpuFigures,
    cores: u32,
    store: Option<(&'a store::StoreFigures, &'a str)>,
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        mib(bytes)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

impl Report<'_> {
    /// A first backup of this mix to the store: the CPU bound, or the
    /// store's PUT rate over the share of bytes left after compression.
    fn backup_to_store_mbs(&self, s: &store::StoreFigures) -> Option<(f64, bool)> {
        let put = s.largest()?.put_mbs;
        let by_store = put * self.cpu.bytes as f64 / self.cpu.stored_bytes.max(1) as f64;
        let by_cpu = self.cpu.backup_bound_mbs(f64::from(self.cores));
        Some(if by_cpu <= by_store {
            (by_cpu, true)
        } else {
            (by_store, false)
        })
    }

    fn json(&self) -> serde_json::Value {
        let c = &self.cpu;
        let mut v = serde_json::json!({
            "sample": {
                "bytes": c.bytes,
                "mix": sample::MIX,
                "chunks": c.chunks,
                "stored_bytes": c.stored_bytes,
                "compression_level": DEFAULT_COMPRESSION_LEVEL,
                "passes": bench::PASSES,
            },
            "cpu": {
                "chunking_mbs": c.chunking_mbs(),
                "hashing_mbs": c.hashing_mbs(),
                "compression_mbs": c.compression_mbs(),
                "encryption_mbs": c.encryption_mbs(),
                "decompression_mbs": c.decompression_mbs(),
                "cores": self.cores,
                "backup_bound_mbs": c.backup_bound_mbs(f64::from(self.cores)),
                "measured": c,
            },
            "store": null,
        });
        if let Some((s, url)) = self.store {
            let mut sv = serde_json::to_value(s).expect("store figures serialize");
            sv["url"] = url.into();
            sv["gib_upload_seconds"] = s.gib_upload_seconds().into();
            sv["gib_download_seconds"] = s.gib_download_seconds().into();
            if let Some((mbs, cpu_bound)) = self.backup_to_store_mbs(s) {
                sv["backup_to_store_mbs"] = mbs.into();
                sv["backup_to_store_bound_by"] = if cpu_bound { "cpu" } else { "store" }.into();
            }
            v["store"] = sv;
        }
        v
    }

    fn print(&self) {
        let c = &self.cpu;
        println!(
            "Sampel / sample: {} ({}); {} potongan / chunks, {} tersimpan setelah kompresi / stored after compression",
            mib(c.bytes),
            sample::MIX,
            c.chunks,
            mib(c.stored_bytes),
        );
        println!(
            "Satu inti, terbaik dari {} putaran / one core, best of {} passes",
            bench::PASSES,
            bench::PASSES
        );
        println!();
        let rate = |v: f64, of: &str| format!("{v:.0} MB/s {of}").trim_end().to_owned();
        let mut rows = vec![
            vec![
                "pemotongan FastCDC / FastCDC chunking".into(),
                rate(c.chunking_mbs(), ""),
            ],
            vec![
                "hash BLAKE3 berkunci (id blob) / keyed BLAKE3 (blob ids)".into(),
                rate(c.hashing_mbs(), ""),
            ],
            vec![
                format!(
                    "kompresi zstd -{DEFAULT_COMPRESSION_LEVEL} dengan probe / zstd -{DEFAULT_COMPRESSION_LEVEL} compression with the probe"
                ),
                rate(c.compression_mbs(), "(masukan / of input)"),
            ],
            vec![
                "enkripsi AES-256-GCM / AES-256-GCM encryption".into(),
                rate(c.encryption_mbs(), "(byte tersimpan / of stored bytes)"),
            ],
            vec![
                "dekompresi zstd (pemulihan) / zstd decompression (restore)".into(),
                rate(c.decompression_mbs(), "(keluaran / of output)"),
            ],
        ];
        if let Some((s, _)) = self.store {
            for t in &s.throughput {
                let what = format!(
                    "{}, {} sekaligus / {} in flight",
                    size_label(t.object_bytes),
                    t.in_flight,
                    t.in_flight
                );
                rows.push(vec![format!("PUT store {what}"), rate(t.put_mbs, "")]);
                rows.push(vec![format!("GET store {what}"), rate(t.get_mbs, "")]);
            }
            let small = size_label(s.small_object_bytes);
            let lat = |l: &store::Latency| {
                format!("median {:.1} ms, p90 {:.1} ms", l.median_ms, l.p90_ms)
            };
            rows.push(vec![
                format!("PUT store {small}, satu per satu / one at a time"),
                lat(&s.small_put),
            ]);
            rows.push(vec![
                format!("GET store {small}, satu per satu / one at a time"),
                lat(&s.small_get),
            ]);
        }
        table(&["PENGUKURAN / MEASUREMENT", "HASIL / RESULT"], rows);
        println!();
        println!("Artinya / What it means:");
        println!(
            "- batas CPU sebuah cadangan pada {n} inti / a backup's CPU bound on {n} cores: {:.0} MB/s \
             (hanya tahap ini, tanpa I/O / these stages only, no I/O)",
            c.backup_bound_mbs(f64::from(self.cores)),
            n = self.cores
        );
        let Some((s, url)) = self.store else {
            println!("- ukur juga sebuah store dengan / measure a store too with --repo URL");
            return;
        };
        if let (Some(up), Some(down), Some(t)) = (
            s.gib_upload_seconds(),
            s.gib_download_seconds(),
            s.largest(),
        ) {
            let obj = size_label(t.object_bytes);
            println!(
                "- unggah 1 GiB / upload 1 GiB: {up:.1} s (PUT {obj}); unduh 1 GiB / download 1 GiB: {down:.1} s (GET {obj})"
            );
        }
        if let Some((mbs, cpu_bound)) = self.backup_to_store_mbs(s) {
            let by = if cpu_bound {
                "dibatasi CPU / bound by the CPU"
            } else {
                "dibatasi store / bound by the store"
            };
            println!(
                "- cadangan pertama campuran ini ke store ini / a first backup of this mix to this store: ≈ {mbs:.0} MB/s ({by})"
            );
        }
        println!(
            "- store: {url}; prefiks sementara / scratch prefix {} sudah dihapus / deleted{}",
            s.scratch_prefix,
            if s.repository_present {
                "; repositori di sana tidak disentuh / the repository there was not touched"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2048k"), Ok(2 << 20));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("12").is_err(), "under 1 MiB");
        assert!(parse_size("5TB").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
