//! The agent's local files cache: (path, size, mtime, ctime, inode) → the
//! blob ids of the file's content. An unchanged file is not read again.
//!
//! The cache is local and trusted only by the agent that wrote it; losing it
//! costs one full read, never data: every blob id it names is checked
//! against the repository's index before a file is skipped.
//!
//! On disk (`<repo>-<space>.files`), little-endian:
//!
//! ```text
//! magic "PLHFCAC1" ‖ u32 count ‖ count × entry ‖ BLAKE3(everything before)
//! entry = u32 path_len ‖ path ‖ u64 size ‖ i64 mtime_ns ‖ i64 ctime_ns
//!         ‖ u64 ino ‖ u64 dev ‖ u32 n ‖ n × 32-byte blob id
//! ```
//!
//! The checksum catches a torn or damaged file (then the cache is empty and
//! every file is read). Caches of earlier versions (`….files.json`) are
//! still read once and replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::id::{BlobId, RepoId, SpaceId};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"PLHFCAC1";
const SUM_LEN: usize = 32;

#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub content: Vec<BlobId>,
    /// Not stored: set by a backup for the files it saw this run.
    #[serde(skip)]
    pub seen: bool,
}

#[derive(Default, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct FilesCache {
    pub entries: HashMap<String, CacheEntry>,
}

/// Where the cache of one repository and dedup space lives.
pub fn cache_file(cache_dir: &Path, repo: RepoId, space: SpaceId) -> PathBuf {
    cache_dir.join(format!("{repo}-{space}.files"))
}

/// The JSON cache of earlier versions, read when no binary one exists.
fn legacy_json_file(path: &Path) -> PathBuf {
    path.with_extension("files.json")
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

/// A little-endian reader over untrusted bytes; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("truncated in {what}"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
}

impl FilesCache {
    /// Load; a missing or unreadable cache is an empty one (logged).
    pub fn load(path: &Path) -> FilesCache {
        match std::fs::read(path) {
            Ok(b) => Self::decode(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "files cache unreadable; reading every file");
                FilesCache::default()
            }),
            Err(_) => {
                let old = legacy_json_file(path);
                match std::fs::read(&old) {
                    Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
                    Err(_) => FilesCache::default(),
                }
            }
        }
    }

    /// Parse the binary form; an error names what is wrong.
    pub fn decode(bytes: &[u8]) -> std::result::Result<FilesCache, String> {
        if bytes.len() < MAGIC.len() + 4 + SUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a Pulih files cache (bad magic or too short)".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - SUM_LEN);
        if blake3::hash(body).as_bytes() != sum {
            return Err("checksum mismatch (torn or damaged file)".into());
        }
        let mut c = Cursor {
            b: &body[MAGIC.len()..],
        };
        let count = c.u32("the entry count")? as usize;
        // Each entry takes at least 48 bytes: no allocation beyond the input.
        if count > c.b.len() / 48 {
            return Err(format!("entry count {count} exceeds the file"));
        }
        let mut entries = HashMap::with_capacity(count);
        for i in 0..count {
            let len = c.u32("a path length")? as usize;
            let path = std::str::from_utf8(c.take(len, "a path")?)
                .map_err(|_| format!("entry {i}: path is not UTF-8"))?
                .to_owned();
            let size = c.u64("a size")?;
            let mtime_ns = c.u64("an mtime")? as i64;
            let ctime_ns = c.u64("a ctime")? as i64;
            let ino = c.u64("an inode")?;
            let dev = c.u64("a device")?;
            let n = c.u32("a blob count")? as usize;
            let ids = c.take(
                n.checked_mul(BlobId::LEN)
                    .ok_or_else(|| format!("entry {i}: blob count {n} overflows"))?,
                "blob ids",
            )?;
            let content = ids
                .chunks_exact(BlobId::LEN)
                .map(|b| BlobId::from_slice(b).expect("32 bytes"))
                .collect();
            let e = CacheEntry {
                seen: false,
                size,
                mtime_ns,
                ctime_ns,
                ino,
                dev,
                content,
            };
            if entries.insert(path, e).is_some() {
                return Err(format!("entry {i}: a path named twice"));
            }
        }
        if !c.b.is_empty() {
            return Err(format!("{} bytes after the last entry", c.b.len()));
        }
        Ok(FilesCache { entries })
    }

    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|(p, e)| 48 + p.len() + e.content.len() * BlobId::LEN)
            .sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + size + SUM_LEN);
        out.extend_from_slice(MAGIC);
        let count = u32::try_from(self.entries.len()).expect("fewer than 4 billion files");
        out.extend_from_slice(&count.to_le_bytes());
        for (p, e) in &self.entries {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p.as_bytes());
            for v in [e.size, e.mtime_ns as u64, e.ctime_ns as u64, e.ino, e.dev] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(e.content.len() as u32).to_le_bytes());
            for id in &e.content {
                out.extend_from_slice(&id.0);
            }
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Write atomically (temporary file, then rename); a cache of an
    /// earlier version beside it is removed. The cache names every
    /// backed-up path: it is readable by its owner only (0600, in a
    /// directory made 0700).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
        crate::storage::write_private_atomic(path, &self.encode(), false)?;
        let _ = std::fs::remove_file(legacy_json_file(path));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Review finding (issue 20, 8): the cache was written 0644 and lists
    /// every backed-up path. It is written 0600, also over an older 0644
    /// cache, in a directory made 0700.
    #[test]
    fn files_cache_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/agent/files.bin");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let cache = FilesCache::default();
        cache.save(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(path.with_extension("tmp"), b"left over").unwrap();
        std::fs::set_permissions(
            path.with_extension("tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        cache.save(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    proptest! {
        #[test]
        fn round_trip(files in proptest::collection::hash_map(".{0,40}", (any::<u64>(), any::<i64>(), any::<i64>(), any::<u64>(), any::<u64>(), proptest::collection::vec(any::<[u8; 32]>(), 0..5)), 0..30)) {
            let cache = FilesCache { entries: files.into_iter().map(|(p, (size, mtime_ns, ctime_ns, ino, dev, ids))| {
                (p, CacheEntry { seen: false, size, mtime_ns, ctime_ns, ino, dev, content: ids.into_iter().map(BlobId).collect() })
            }).collect() };
            let bytes = cache.encode();
            prop_assert_eq!(FilesCache::decode(&bytes).unwrap(), cache);
            // Any cut or flipped byte is refused, never misread.
            prop_assert!(FilesCache::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut bad = bytes.clone();
            let i = bytes.len() / 2;
            bad[i] ^= 1;
            prop_assert!(FilesCache::decode(&bad).is_err());
        }
    }

    #[test]
    fn a_json_cache_of_an_earlier_version_is_read_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(dir.path(), RepoId([1; 16]), SpaceId([2; 16]));
        let old = legacy_json_file(&path);
        assert!(old.to_str().unwrap().ends_with(".files.json"));
        let id = BlobId([9; 32]);
        std::fs::write(
            &old,
            format!(r#"{{"entries":{{"/srv/a":{{"size":3,"mtime_ns":1,"ctime_ns":2,"ino":4,"dev":5,"content":["{id}"]}}}}}}"#),
        )
        .unwrap();
        let cache = FilesCache::load(&path);
        assert_eq!(cache.entries["/srv/a"].content, vec![id]);
        cache.save(&path).unwrap();
        assert!(!old.exists());
        assert_eq!(FilesCache::load(&path), cache);
    }

    #[test]
    fn a_damaged_cache_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.files");
        std::fs::write(
            &path,
            b"PLHFCAC1 and then nonsense that is long enough to pass",
        )
        .unwrap();
        assert!(FilesCache::load(&path).entries.is_empty());
        assert!(
            FilesCache::decode(b"PLHFCAC1")
                .unwrap_err()
                .contains("magic or too short")
        );
    }
}
