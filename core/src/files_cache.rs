//! The agent's local files cache: (path, size, mtime, ctime, inode) → the
//! blob ids of the file's content. An unchanged file is not read again.
//!
//! The cache is local and trusted only by the agent that wrote it; losing it
//! costs one full read, never data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::id::{BlobId, RepoId, SpaceId};
use crate::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub content: Vec<BlobId>,
}

#[derive(Default, Serialize, Deserialize)]
pub struct FilesCache {
    pub entries: HashMap<String, CacheEntry>,
}

/// Where the cache of one repository and dedup space lives.
pub fn cache_file(cache_dir: &Path, repo: RepoId, space: SpaceId) -> PathBuf {
    cache_dir.join(format!("{repo}-{space}.files.json"))
}

/// The default cache directory: `$PULIH_CACHE_DIR`, `$XDG_CACHE_HOME/pulih`
/// or `~/.cache/pulih`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PULIH_CACHE_DIR") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("pulih");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache".into())
        .join(".cache/pulih")
}

impl FilesCache {
    /// Load; a missing or unreadable cache is an empty one (logged).
    pub fn load(path: &Path) -> FilesCache {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "files cache unreadable; reading every file");
                FilesCache::default()
            }),
            Err(_) => FilesCache::default(),
        }
    }

    /// Write atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(self).expect("cache serializes");
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }
}
