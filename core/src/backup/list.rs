//! The lister: readdir and lstat, a thread of its own, ahead of the walker.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

/// The lister: readdir and lstat, a thread of its own, so those system
/// calls (most of a no-change backup's time) overlap the walker's work
/// (cache and index lookups, trees, reading and chunking). It walks the
/// same order the walker does — sources in order, entries sorted, a
/// directory's subdirectories after its listing — and the walker descends
/// by the lister's own metadata, so the two cannot disagree. Stops when
/// the walker hangs up.
pub(super) fn list_sources(reals: &[PathBuf], tx: &crossbeam_channel::Sender<Listed>) {
    for p in reals {
        let meta = std::fs::symlink_metadata(p);
        let is_dir = matches!(&meta, Ok(m) if m.is_dir());
        if tx.send(Listed::Top(meta)).is_err() || (is_dir && !list_dir(p, tx)) {
            return;
        }
    }
}

/// List `path` and, depth first, its subdirectories; false once the
/// walker has hung up.
fn list_dir(path: &Path, tx: &crossbeam_channel::Sender<Listed>) -> bool {
    let listing = std::fs::read_dir(path).map(|rd| {
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
    });
    let subdirs: Vec<PathBuf> = match &listing {
        Ok(l) => l
            .entries
            .iter()
            .filter(|(_, m)| matches!(m, Ok(m) if m.is_dir()))
            .map(|(n, _)| path.join(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    if tx.send(Listed::Dir(path.to_owned(), listing)).is_err() {
        return false;
    }
    subdirs.iter().all(|d| list_dir(d, tx))
}
