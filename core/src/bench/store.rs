//! An object store's speed as a backup and a restore meet it: PUTs and
//! GETs of pack-sized objects, several in flight at once (throughput), and
//! small objects one at a time (latency: the round trip of an index, a
//! snapshot, a pack header's range).
//!
//! Everything is written under a fresh scratch prefix,
//! `benchmark/<random>/` ([`layout::benchmark_scratch`]), and deleted
//! before [`measure`] returns, also when a request fails or `stop` fires
//! (no new request starts then; those in flight finish, so none lands
//! after the deleting).
//! No other key is read but `config` (only whether it exists), none is
//! written or deleted: a repository at the same URL is left as it was.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{mbs, sample};
use crate::storage::Store;
use crate::{Error, Result, layout};

/// What to measure.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Sizes of the throughput objects (a data pack is ~16 MiB).
    pub object_sizes: Vec<usize>,
    /// Objects of each size.
    pub objects: usize,
    /// Requests in flight at once in the throughput runs.
    pub in_flight: usize,
    pub small_size: usize,
    /// Small objects written, then read, one at a time.
    pub small_objects: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            object_sizes: vec![4 << 20, 16 << 20],
            objects: 8,
            in_flight: 4,
            small_size: 1024,
            small_objects: 20,
        }
    }
}

/// PUTs and GETs of one object size.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub object_bytes: u64,
    pub objects: u64,
    pub in_flight: u64,
    pub put_seconds: f64,
    pub get_seconds: f64,
    pub put_mbs: f64,
    pub get_mbs: f64,
}

/// One request at a time, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub median_ms: f64,
    pub p90_ms: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Latency {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Latency {
            median_ms: at(0.5),
            p90_ms: at(0.9),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreFigures {
    /// Where the objects were, relative to the URL's prefix; gone now.
    pub scratch_prefix: String,
    /// Whether the URL holds a repository (its `config`), left untouched.
    pub repository_present: bool,
    pub throughput: Vec<Throughput>,
    pub small_object_bytes: u64,
    pub small_put: Latency,
    pub small_get: Latency,
}

impl StoreFigures {
    /// The largest objects' run: the closest to a backup's packs.
    pub fn largest(&self) -> Option<&Throughput> {
        self.throughput.iter().max_by_key(|t| t.object_bytes)
    }

    /// Seconds to upload 1 GiB in objects of the largest size.
    pub fn gib_upload_seconds(&self) -> Option<f64> {
        self.largest()
            .map(|t| (1u64 << 30) as f64 / 1e6 / t.put_mbs)
    }

    /// Seconds to download 1 GiB in objects of the largest size.
    pub fn gib_download_seconds(&self) -> Option<f64> {
        self.largest()
            .map(|t| (1u64 << 30) as f64 / 1e6 / t.get_mbs)
    }
}

/// Measures `store`; returns when the scratch prefix is deleted. When
/// `stop` finishes first no new request starts, the ones in flight finish,
/// the scratch prefix is deleted all the same and the answer is an error
/// saying so.
pub async fn measure(
    store: &Store,
    opts: &StoreOptions,
    stop: impl Future<Output = ()>,
) -> Result<StoreFigures> {
    if opts.objects == 0 || opts.in_flight == 0 || opts.small_objects == 0 {
        return Err(Error::Invalid(
            "a store benchmark needs at least one object and one request in flight".into(),
        ));
    }
    let repository_present = store.exists(layout::CONFIG).await?;
    let scratch = layout::benchmark_scratch(&format!("{:016x}", rand::random::<u64>()));
    if !store.list(&scratch).await?.is_empty() {
        return Err(Error::Invalid(format!(
            "the scratch prefix {scratch} is not empty; run again"
        )));
    }
    let run = Run {
        store,
        scratch: scratch.clone(),
        written: Mutex::new(Vec::new()),
        stopped: AtomicBool::new(false),
        opts,
    };
    let stopper = async {
        stop.await;
        run.stopped.store(true, Ordering::Relaxed);
        std::future::pending::<()>().await;
    };
    let measured = tokio::select! {
        r = run.all() => r,
        () = stopper => unreachable!("the stopper never finishes"),
    };
    let cleaned = run.clean().await;
    let (throughput, small_put, small_get) = match (measured, cleaned) {
        (Ok(m), Ok(())) => m,
        (Err(e), Ok(())) => return Err(e),
        (Ok(_), Err(c)) => return Err(c),
        (Err(e), Err(c)) => return Err(Error::Invalid(format!("{e}; and then: {c}"))),
    };
    Ok(StoreFigures {
        scratch_prefix: scratch,
        repository_present,
        throughput,
        small_object_bytes: opts.small_size as u64,
        small_put,
        small_get,
    })
}

struct Run<'a> {
    store: &'a Store,
    scratch: String,
    /// Every key a PUT was sent for, so that cleaning deletes it even when
    /// a listing does not show it yet.
    written: Mutex<Vec<String>>,
    /// Set when `stop` fired: no new request starts.
    stopped: AtomicBool,
    opts: &'a StoreOptions,
}

impl Run<'_> {
    fn go(&self) -> Result<()> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(Error::Invalid("interrupted".into()));
        }
        Ok(())
    }

    /// A key under the scratch prefix, recorded for [`Run::clean`].
    fn key(&self, name: &str) -> String {
        let k = format!("{}{name}", self.scratch);
        self.written.lock().expect("written keys").push(k.clone());
        k
    }

    async fn all(&self) -> Result<(Vec<Throughput>, Latency, Latency)> {
        let mut throughput = Vec::new();
        for &size in &self.opts.object_sizes {
            throughput.push(self.throughput(size).await?);
        }
        let (put, get) = self.latency().await?;
        Ok((throughput, put, get))
    }

    async fn throughput(&self, size: usize) -> Result<Throughput> {
        let (n, in_flight) = (self.opts.objects, self.opts.in_flight);
        let objects: Vec<(String, Bytes)> = (0..n)
            .map(|i| {
                let key = self.key(&format!("{}k-{i:03}", size >> 10));
                (key, sample::random((size * n + i) as u64, size).into())
            })
            .collect();
        let t = Instant::now();
        futures::stream::iter(&objects)
            .map(|(k, b)| async move {
                self.go()?;
                self.store.put(k, b.clone()).await
            })
            .buffer_unordered(in_flight)
            .try_collect::<()>()
            .await?;
        let put_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let got: Vec<(usize, Bytes)> = futures::stream::iter(objects.iter().enumerate())
            .map(|(i, (k, _))| async move {
                self.go()?;
                Ok::<_, Error>((i, self.store.get(k).await?))
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await?;
        let get_seconds = t.elapsed().as_secs_f64();
        for (i, b) in got {
            check(&objects[i], &b)?;
        }
        let bytes = (size * n) as u64;
        Ok(Throughput {
            object_bytes: size as u64,
            objects: n as u64,
            in_flight: in_flight as u64,
            put_seconds,
            get_seconds,
            put_mbs: mbs(bytes, put_seconds),
            get_mbs: mbs(bytes, get_seconds),
        })
    }

    async fn latency(&self) -> Result<(Latency, Latency)> {
        let objects: Vec<(String, Bytes)> = (0..self.opts.small_objects)
            .map(|i| {
                let key = self.key(&format!("small-{i:03}"));
                (key, sample::random(i as u64, self.opts.small_size).into())
            })
            .collect();
        let mut put_ms = Vec::new();
        for (k, b) in &objects {
            self.go()?;
            let t = Instant::now();
            self.store.put(k, b.clone()).await?;
            put_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let mut get_ms = Vec::new();
        for o in &objects {
            self.go()?;
            let t = Instant::now();
            let b = self.store.get(&o.0).await?;
            get_ms.push(t.elapsed().as_secs_f64() * 1e3);
            check(o, &b)?;
        }
        Ok((Latency::of(put_ms), Latency::of(get_ms)))
    }

    /// Deletes every key written and whatever else is under the scratch
    /// prefix, and on a local store its directories; then checks that
    /// nothing is left.
    async fn clean(&self) -> Result<()> {
        let mut keys = std::mem::take(&mut *self.written.lock().expect("written keys"));
        keys.extend(
            self.store
                .list(&self.scratch)
                .await?
                .into_iter()
                .map(|o| o.key),
        );
        keys.sort();
        keys.dedup();
        futures::stream::iter(&keys)
            .map(|k| async move {
                debug_assert!(k.starts_with(&self.scratch));
                match self.store.delete(k).await {
                    Ok(()) | Err(Error::Missing(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(self.opts.in_flight)
            .try_collect::<()>()
            .await?;
        if let Some(root) = self.store.local_dir() {
            // Only empty directories go: `benchmark/` stays while another
            // run's scratch prefix is in it.
            for dir in [self.scratch.as_str(), layout::BENCHMARK] {
                match std::fs::remove_dir(root.join(dir.trim_end_matches('/'))) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
                    Err(e) => return Err(Error::io(root.join(dir), e)),
                }
            }
        }
        let left = self.store.list(&self.scratch).await?.len();
        if left > 0 {
            return Err(Error::Invalid(format!(
                "{left} benchmark objects are left under {}{}; delete them",
                self.store.url(),
                self.scratch
            )));
        }
        Ok(())
    }
}

/// The store must give back what it was given.
fn check((key, sent): &(String, Bytes), got: &Bytes) -> Result<()> {
    if got != sent {
        return Err(Error::corrupt(
            format!("benchmark object `{key}`"),
            format!(
                "the store gave back {} bytes other than the {} written",
                got.len(),
                sent.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let l = Latency::of((1..=20).rev().map(f64::from).collect());
        assert_eq!((l.median_ms, l.p90_ms), (10.0, 18.0));
        let l = Latency::of(vec![5.0]);
        assert_eq!((l.median_ms, l.p90_ms), (5.0, 5.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_local_store_is_measured_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), b"{}").unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display()), false).unwrap();
        let opts = StoreOptions {
            object_sizes: vec![64 << 10, 256 << 10],
            objects: 3,
            in_flight: 2,
            small_size: 1024,
            small_objects: 5,
        };
        let f = measure(&store, &opts, std::future::pending())
            .await
            .unwrap();
        assert!(f.repository_present);
        assert!(f.scratch_prefix.starts_with(layout::BENCHMARK));
        assert_eq!(f.throughput.len(), 2);
        assert_eq!(f.largest().unwrap().object_bytes, 256 << 10);
        for t in &f.throughput {
            assert!(t.put_mbs > 0.0 && t.get_mbs.is_finite());
        }
        assert!(f.small_put.p90_ms >= f.small_put.median_ms);
        assert!(f.gib_upload_seconds().unwrap() > 0.0);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["config"], "only the repository's object stays");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_run_still_deletes_its_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display()), false).unwrap();
        let opts = StoreOptions {
            object_sizes: vec![1 << 20],
            objects: 20,
            in_flight: 2,
            ..StoreOptions::default()
        };
        // Stop once the first object is on disk: mid-run, however fast the disk.
        let root = dir.path().to_owned();
        let stop = async move {
            fn any_file(d: &std::path::Path) -> bool {
                std::fs::read_dir(d)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| {
                        let p = e.path();
                        p.is_file() || (p.is_dir() && any_file(&p))
                    })
            }
            while !any_file(&root) {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        let e = measure(&store, &opts, stop).await.unwrap_err();
        assert!(e.to_string().contains("interrupted"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
