//! The lister: readdir and lstat, threads of their own, ahead of the walker.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the lister found, in the order the walker descends: each source
/// path's lstat, then (for a directory) its listing, depth first.
pub(super) enum Listed {
    Top(std::io::Result<std::fs::Metadata>),
    Dir(PathBuf, std::io::Result<Listing>),
}

/// One directory's entries sorted by name, each with its lstat (taken
/// relative to the open directory), and the errors met reading it.
pub(super) struct Listing {
    pub(super) entries: Vec<(std::ffi::OsString, std::io::Result<std::fs::Metadata>)>,
    pub(super) errors: Vec<std::io::Error>,
}

/// Directories listed ahead of the walker (bounds the lister's lead).
pub(super) const LISTED_AHEAD: usize = 64;

/// Threads listing directories ahead of the order they are handed on in.
/// With a cold cache each directory is a few reads from the disk, one
/// after another on a single thread; several in flight keep the disk
/// busy. On the 2-core bench machine a no-change backup of the Debian
/// tree (6,799 directories, caches dropped) took about 1.0–1.1 s with
/// the listing on one thread (docs/BENCHMARKS.md, "Listing ahead").
const PREFETCHERS: usize = 4;

/// A directory listing that took this long, and longer than
/// [`PER_ENTRY_CACHED`] for each of its entries, waited for the disk: the
/// prefetchers start.
const SLOW_LISTING: Duration = Duration::from_millis(1);
/// Far more than a cached entry's readdir and lstat take (~1–2 µs): a
/// large directory listed from the cache is not taken for a disk wait.
const PER_ENTRY_CACHED: Duration = Duration::from_micros(20);

/// Directories listed (or being listed) ahead and not yet handed on:
/// bounds the listings held, whatever the tree's width.
const PREFETCH_AHEAD: usize = 256;

/// The lister: readdir and lstat off the walker's thread, so those system
/// calls (most of a no-change backup's time) overlap the walker's work
/// (cache and index lookups, trees, reading and chunking). It hands the
/// listings on in the order the walker walks — sources in order, entries
/// sorted, a directory's subdirectories after its listing, depth first —
/// and the walker descends by the lister's own metadata, so the two
/// cannot disagree. [`PREFETCHERS`] threads list the directories it will
/// need next, once a listing has waited for the disk; it lists one
/// itself when none has started it. Stops when the walker hangs up.
pub(super) fn list_sources(reals: &[PathBuf], tx: &crossbeam_channel::Sender<Listed>) {
    list_with(reals, tx, SLOW_LISTING)
}

/// [`list_sources`], the prefetchers starting after a listing of `slow`.
fn list_with(reals: &[PathBuf], tx: &crossbeam_channel::Sender<Listed>, slow: Duration) {
    let queue = Arc::new(Queue::default());
    let mut order = Order {
        queue: &queue,
        stack: Vec::new(),
        ahead: 0,
        slow,
        prefetchers: Vec::new(),
    };
    for p in reals {
        let meta = std::fs::symlink_metadata(p);
        let is_dir = matches!(&meta, Ok(m) if m.is_dir());
        if tx.send(Listed::Top(meta)).is_err() || (is_dir && !order.list_tree(p, tx)) {
            break;
        }
    }
    queue.close();
    for t in order.prefetchers {
        let _ = t.join();
    }
}

/// One directory's listing, by whichever thread gets to it first.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    done: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Queued,
    Taken,
    Done(std::io::Result<Listing>),
    Handed,
}

impl Slot {
    /// Claims the listing; false if another thread has.
    fn take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let queued = matches!(*s, SlotState::Queued);
        if queued {
            *s = SlotState::Taken;
        }
        queued
    }

    fn fill(&self, l: std::io::Result<Listing>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = SlotState::Done(l);
        self.done.notify_all();
    }

    /// The listing: listed here if no prefetcher started it, else waited for.
    fn get(&self, path: &Path) -> std::io::Result<Listing> {
        if self.take() {
            return list_dir(path);
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut *s, SlotState::Handed) {
                SlotState::Done(l) => return l,
                other => {
                    *s = other;
                    s = self.done.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

/// A directory to list and where its listing goes.
type Job = (PathBuf, Arc<Slot>);

/// Directories for the prefetchers, the one needed soonest on top, and
/// whether the lister has closed it.
#[derive(Default)]
struct Queue {
    jobs: Mutex<(Vec<Job>, bool)>,
    more: Condvar,
}

impl Queue {
    fn push(&self, batch: Vec<Job>) {
        let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        q.0.extend(batch);
        self.more.notify_all();
    }

    fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.more.notify_all();
    }

    fn serve(&self) {
        loop {
            let (path, slot) = {
                let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if q.1 {
                        return;
                    }
                    if let Some(job) = q.0.pop() {
                        break job;
                    }
                    q = self.more.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            if slot.take() {
                slot.fill(list_dir(&path));
            }
        }
    }
}

/// The depth-first order the listings are handed on in: the directories
/// still to hand on, the next on top, each with its slot once it has been
/// given to the prefetchers.
struct Order<'a> {
    queue: &'a Arc<Queue>,
    stack: Vec<(PathBuf, Option<Arc<Slot>>)>,
    /// Directories given to the prefetchers and not yet handed on.
    ahead: usize,
    /// A listing this long waited for the disk.
    slow: Duration,
    /// Started once a listing waited for the disk ([`SLOW_LISTING`]):
    /// from a warm cache one thread lists faster than several hand their
    /// listings over (each new thread's memory is fresh pages, and this
    /// machine's page faults on fresh memory are dear).
    prefetchers: Vec<std::thread::JoinHandle<()>>,
}

impl Order<'_> {
    /// Hands on `root`'s listing and, depth first, its subdirectories';
    /// false once the walker has hung up.
    fn list_tree(&mut self, root: &Path, tx: &crossbeam_channel::Sender<Listed>) -> bool {
        self.stack.push((root.to_owned(), None));
        while let Some((path, slot)) = self.stack.pop() {
            let listing = match slot {
                Some(slot) => {
                    self.ahead -= 1;
                    slot.get(&path)
                }
                None if self.prefetchers.is_empty() => {
                    let t = Instant::now();
                    let l = list_dir(&path);
                    let entries = l.as_ref().map_or(0, |l| l.entries.len()) as u32;
                    if t.elapsed() >= self.slow.max(PER_ENTRY_CACHED * entries) {
                        self.start_prefetchers();
                    }
                    l
                }
                None => list_dir(&path),
            };
            if let Ok(l) = &listing {
                let subdirs = l
                    .entries
                    .iter()
                    .filter(|(_, m)| matches!(m, Ok(m) if m.is_dir()))
                    .map(|(n, _)| (path.join(n), None));
                let at = self.stack.len();
                self.stack.extend(subdirs);
                self.stack[at..].reverse();
            }
            if tx.send(Listed::Dir(path, listing)).is_err() {
                return false;
            }
            self.prefetch();
        }
        true
    }

    fn start_prefetchers(&mut self) {
        for _ in 0..PREFETCHERS {
            let queue = self.queue.clone();
            match std::thread::Builder::new()
                .name("pulih-lister".into())
                .spawn(move || queue.serve())
            {
                Ok(t) => self.prefetchers.push(t),
                Err(_) => break,
            }
        }
    }

    /// Gives the prefetchers the directories needed soonest that they do
    /// not have yet, up to [`PREFETCH_AHEAD`] at a time.
    fn prefetch(&mut self) {
        if self.prefetchers.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        for (path, slot) in self.stack.iter_mut().rev().take(2 * PREFETCH_AHEAD) {
            if self.ahead + batch.len() >= PREFETCH_AHEAD {
                break;
            }
            if slot.is_none() {
                let s = Arc::new(Slot::default());
                *slot = Some(s.clone());
                batch.push((path.clone(), s));
            }
        }
        if !batch.is_empty() {
            self.ahead += batch.len();
            // The soonest needed last: the prefetchers take from the top.
            batch.reverse();
            self.queue.push(batch);
        }
    }
}

/// One directory's entries and their lstat, sorted by name.
fn list_dir(path: &Path) -> std::io::Result<Listing> {
    std::fs::read_dir(path).map(|rd| {
        let mut l = Listing {
            entries: Vec::new(),
            errors: Vec::new(),
        };
        for entry in rd {
            match entry {
                // fstatat on the open directory: no path walk per file.
                Ok(e) => l.entries.push((e.file_name(), e.metadata())),
                Err(e) => l.errors.push(e),
            }
        }
        l.entries
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        l
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order a single thread lists in: depth first, names sorted.
    fn reference(dir: &Path, out: &mut Vec<(PathBuf, Vec<std::ffi::OsString>)>) {
        let l = list_dir(dir).unwrap();
        let names: Vec<_> = l.entries.iter().map(|(n, _)| n.clone()).collect();
        let subdirs: Vec<_> = l
            .entries
            .iter()
            .filter(|(_, m)| m.as_ref().unwrap().is_dir())
            .map(|(n, _)| dir.join(n))
            .collect();
        out.push((dir.to_owned(), names));
        for d in subdirs {
            reference(&d, out);
        }
    }

    /// Wider than the prefetchers' lead at the top, deep chains below,
    /// files and empty directories between.
    fn make_tree(root: &Path) {
        for i in 0..(PREFETCH_AHEAD + 40) {
            let d = root.join(format!("w{i:03}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), b"x").unwrap();
            if i % 50 == 0 {
                let mut deep = d.clone();
                for k in 0..20 {
                    deep = deep.join(format!("d{k}"));
                    std::fs::create_dir_all(deep.join("kosong")).unwrap();
                    std::fs::write(deep.join("g"), b"y").unwrap();
                }
            }
        }
    }

    #[test]
    fn the_listings_come_depth_first_in_name_order_as_one_thread_lists() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        make_tree(&a);
        make_tree(&b);
        let mut want = Vec::new();
        reference(&a, &mut want);
        reference(&b, &mut want);
        // Prefetchers from the first listing on, and (from this warm
        // cache) none.
        for slow in [Duration::ZERO, SLOW_LISTING] {
            let got = listed(&[a.clone(), b.clone()], slow);
            assert_eq!(got.len(), want.len());
            assert!(got == want, "the listings came in another order");
        }
    }

    fn listed(roots: &[PathBuf], slow: Duration) -> Vec<(PathBuf, Vec<std::ffi::OsString>)> {
        let roots = roots.to_vec();
        let (tx, rx) = crossbeam_channel::bounded(LISTED_AHEAD);
        let lister = std::thread::spawn(move || list_with(&roots, &tx, slow));
        let mut got = Vec::new();
        let mut tops = 0;
        for l in rx {
            match l {
                Listed::Top(m) => {
                    assert!(m.unwrap().is_dir());
                    tops += 1;
                }
                Listed::Dir(p, l) => {
                    let names = l.unwrap().entries.into_iter().map(|(n, _)| n).collect();
                    got.push((p, names));
                }
            }
        }
        lister.join().unwrap();
        assert_eq!(tops, 2);
        got
    }

    #[test]
    fn the_lister_stops_when_the_walker_hangs_up() {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let root = dir.path().to_owned();
        let lister = std::thread::spawn(move || list_with(&[root], &tx, Duration::ZERO));
        for _ in 0..5 {
            rx.recv().unwrap();
        }
        drop(rx);
        lister.join().unwrap();
    }
}
