//! The gateway's index (SQLite, WAL, `synchronous=FULL`): one row per
//! object it holds, with its size, ETag, SHA-256, the credential that
//! wrote it and the gateway's own time of receipt. It is the only source
//! of truth for what exists: an object is listed, read or counted only
//! once its row is committed, which happens after the upstream store
//! acknowledged the bytes. Reserving a key is one transaction (absent →
//! pending), so two writers of one key cannot both win, whatever the
//! upstream store does with conditional writes (Garage ignores them).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
#[error("gateway index: {0}")]
pub struct IndexError(String);

impl From<rusqlite::Error> for IndexError {
    fn from(e: rusqlite::Error) -> Self {
        IndexError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, IndexError>;

/// States of a row, stored as integers.
const PENDING: i64 = 0;
const COMMITTED: i64 = 1;
const DELETING: i64 = 2;

/// One object, as the index has it.
#[derive(Clone, Debug)]
pub struct Row {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub sha256: String,
    pub writer: String,
    /// The gateway's time of receipt, Unix milliseconds.
    pub received_ms: i64,
}

/// What reserving a key for a new object found.
#[derive(Debug)]
pub enum Reserve {
    /// The key is ours to write: `len` bytes charged to the quota.
    Reserved,
    /// Another write of the key is under way.
    Busy,
    /// The object exists.
    Exists(Row),
    /// The bucket would go over its quota.
    OverQuota { used: u64, quota: u64 },
}

/// A row that was neither committed nor removed when the gateway stopped.
#[derive(Debug)]
pub struct Unfinished {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub deleting: bool,
}

#[derive(Clone)]
pub struct Index {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    state INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    writer TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    bucket TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    row_at(r, 0)
}

/// A [`Row`] from [`COLUMNS`] starting at column `at`.
fn row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        key: r.get(at)?,
        size: r.get::<_, i64>(at + 1)? as u64,
        etag: r.get(at + 2)?,
        sha256: r.get(at + 3)?,
        writer: r.get(at + 4)?,
        received_ms: r.get(at + 5)?,
    })
}

const COLUMNS: &str = "key, size, etag, sha256, writer, received_ms";

impl Index {
    /// Opens (or makes) `dir/index.sqlite`, readable by its owner only.
    pub fn open(dir: &Path) -> Result<Index> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| IndexError(format!("{}: {e}", dir.display())))?;
        let path = dir.join("index.sqlite");
        let conn =
            Connection::open(&path).map_err(|e| IndexError(format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| IndexError(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // An acknowledged write must survive a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Index {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut c = self
            .conn
            .lock()
            .map_err(|_| IndexError("poisoned".into()))?;
        f(&mut c)
    }

    /// Runs `f` off the async runtime (SQLite commits wait for the disk).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Index) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| IndexError(format!("task: {e}")))?
    }

    /// Reserves `key` for a new object of `len` bytes, charged to the
    /// bucket's usage at once (so concurrent writes cannot all pass the
    /// quota).
    pub fn reserve(
        &self,
        bucket: &str,
        key: &str,
        len: u64,
        writer: &str,
        quota: Option<u64>,
        now_ms: i64,
    ) -> Result<Reserve> {
        self.with(|c| {
            let tx = c.transaction()?;
            let found: Option<(i64, Row)> = tx
                .query_row(
                    &format!("SELECT state, {COLUMNS} FROM objects WHERE bucket=?1 AND key=?2"),
                    params![bucket, key],
                    |r| Ok((r.get(0)?, row_at(r, 1)?)),
                )
                .optional()?;
            match found {
                Some((COMMITTED, r)) => return Ok(Reserve::Exists(r)),
                Some(_) => return Ok(Reserve::Busy),
                None => {}
            }
            let used = usage_in(&tx, bucket)?;
            if let Some(quota) = quota
                && used.saturating_add(len) > quota
            {
                return Ok(Reserve::OverQuota { used, quota });
            }
            tx.execute(
                "INSERT INTO objects (bucket, key, state, size, etag, sha256, writer, received_ms)
                 VALUES (?1, ?2, ?3, ?4, '', '', ?5, ?6)",
                params![bucket, key, PENDING, len as i64, writer, now_ms],
            )?;
            add_usage(&tx, bucket, len as i64)?;
            tx.commit()?;
            Ok(Reserve::Reserved)
        })
    }

    /// Makes a reserved object visible, received at `received_ms`.
    pub fn commit(&self, bucket: &str, row: &Row, reserved: u64) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE objects SET state=?3, size=?4, etag=?5, sha256=?6, writer=?7, received_ms=?8
                 WHERE bucket=?1 AND key=?2 AND state=?9",
                params![
                    bucket,
                    row.key,
                    COMMITTED,
                    row.size as i64,
                    row.etag,
                    row.sha256,
                    row.writer,
                    row.received_ms,
                    PENDING
                ],
            )?;
            if n != 1 {
                return Err(IndexError(format!("{bucket}/{}: not reserved", row.key)));
            }
            add_usage(&tx, bucket, row.size as i64 - reserved as i64)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Gives a reservation back (the write failed).
    pub fn release(&self, bucket: &str, key: &str, reserved: u64) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM objects WHERE bucket=?1 AND key=?2 AND state=?3",
                params![bucket, key, PENDING],
            )?;
            if n == 1 {
                add_usage(&tx, bucket, -(reserved as i64))?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// A committed object.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Row>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM objects WHERE bucket=?1 AND key=?2 AND state=?3"),
                params![bucket, key, COMMITTED],
                row,
            )
            .optional()?)
        })
    }

    /// Committed objects whose key starts with `prefix` and sorts after
    /// `after`, in key order, at most `limit`. Keys are printable ASCII
    /// (the gateway refuses others), so the prefix's range ends at the
    /// prefix with its last byte raised by one.
    pub fn list(&self, bucket: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<Row>> {
        let end = match prefix.as_bytes().split_last() {
            Some((last, head)) if *last < 0x7f => {
                let mut e = head.to_vec();
                e.push(last + 1);
                String::from_utf8(e).map_err(|_| IndexError("prefix is not ASCII".into()))?
            }
            // No upper bound: the whole bucket after the start.
            _ => "\u{10ffff}".to_owned(),
        };
        let start = if after >= prefix { after } else { prefix };
        let inclusive = start == prefix && after < prefix;
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM objects
                 WHERE bucket=?1 AND state=?2 AND (key > ?3 OR (?4 AND key = ?3)) AND key < ?5
                 ORDER BY key LIMIT ?6"
            ))?;
            let rows = st
                .query_map(
                    params![bucket, COMMITTED, start, inclusive, end, limit as i64],
                    row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Hides a committed object for deletion; None when it is not there.
    pub fn mark_deleting(&self, bucket: &str, key: &str) -> Result<Option<Row>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let r = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM objects WHERE bucket=?1 AND key=?2 AND state=?3"
                    ),
                    params![bucket, key, COMMITTED],
                    row,
                )
                .optional()?;
            if r.is_some() {
                tx.execute(
                    "UPDATE objects SET state=?3 WHERE bucket=?1 AND key=?2",
                    params![bucket, key, DELETING],
                )?;
            }
            tx.commit()?;
            Ok(r)
        })
    }

    /// Removes a row marked for deletion once the upstream object is gone.
    pub fn remove(&self, bucket: &str, key: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let size: Option<i64> = tx
                .query_row(
                    "SELECT size FROM objects WHERE bucket=?1 AND key=?2 AND state=?3",
                    params![bucket, key, DELETING],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(size) = size {
                tx.execute(
                    "DELETE FROM objects WHERE bucket=?1 AND key=?2",
                    params![bucket, key],
                )?;
                add_usage(&tx, bucket, -size)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Adds committed rows for objects the index does not list (an
    /// import); returns how many were added and their bytes.
    pub fn import(&self, bucket: &str, rows: &[Row]) -> Result<(usize, u64)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (mut n, mut bytes) = (0, 0);
            for r in rows {
                n_added(
                    tx.execute(
                        "INSERT OR IGNORE INTO objects (bucket, key, state, size, etag, sha256, writer, received_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            bucket,
                            r.key,
                            COMMITTED,
                            r.size as i64,
                            r.etag,
                            r.sha256,
                            r.writer,
                            r.received_ms
                        ],
                    )?,
                    r.size,
                    &mut n,
                    &mut bytes,
                );
            }
            add_usage(&tx, bucket, bytes as i64)?;
            tx.commit()?;
            Ok((n, bytes))
        })
    }

    /// Rows left pending or deleting by a stop, for recovery at start.
    pub fn unfinished(&self) -> Result<Vec<Unfinished>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT bucket, key, size, state FROM objects WHERE state != ?1 ORDER BY bucket, key",
            )?;
            let rows = st
                .query_map(params![COMMITTED], |r| {
                    Ok(Unfinished {
                        bucket: r.get(0)?,
                        key: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        deleting: r.get::<_, i64>(3)? == DELETING,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The latest receive time the index holds (ms), 0 when empty: what
    /// the gateway's clock said last.
    pub fn latest_receipt(&self) -> Result<i64> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(received_ms), 0) FROM objects",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Bytes a bucket holds or has reserved.
    pub fn usage(&self, bucket: &str) -> Result<u64> {
        self.with(|c| usage_in(c, bucket))
    }
}

fn n_added(inserted: usize, size: u64, n: &mut usize, bytes: &mut u64) {
    if inserted == 1 {
        *n += 1;
        *bytes += size;
    }
}

fn usage_in(c: &Connection, bucket: &str) -> Result<u64> {
    let n: Option<i64> = c
        .query_row(
            "SELECT bytes FROM usage WHERE bucket=?1",
            params![bucket],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

fn add_usage(c: &Connection, bucket: &str, delta: i64) -> Result<()> {
    c.execute(
        "INSERT INTO usage (bucket, bytes) VALUES (?1, ?2)
         ON CONFLICT(bucket) DO UPDATE SET bytes = bytes + ?2",
        params![bucket, delta],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(ix: &Index, key: &str, size: u64) {
        assert!(matches!(
            ix.reserve("b", key, size, "w", None, 1).unwrap(),
            Reserve::Reserved
        ));
        ix.commit(
            "b",
            &Row {
                key: key.into(),
                size,
                etag: "e".into(),
                sha256: "s".into(),
                writer: "w".into(),
                received_ms: 5,
            },
            size,
        )
        .unwrap();
    }

    #[test]
    fn reserve_commit_list_delete_and_quota() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(dir.path()).unwrap();
        assert!(matches!(
            ix.reserve("b", "data/1", 10, "w", Some(15), 1).unwrap(),
            Reserve::Reserved
        ));
        // A second writer of the same key while the first is under way.
        assert!(matches!(
            ix.reserve("b", "data/1", 10, "w", None, 1).unwrap(),
            Reserve::Busy
        ));
        // Reserved bytes count against the quota.
        assert!(matches!(
            ix.reserve("b", "data/2", 10, "w", Some(15), 1).unwrap(),
            Reserve::OverQuota {
                used: 10,
                quota: 15
            }
        ));
        assert!(
            ix.get("b", "data/1").unwrap().is_none(),
            "pending is hidden"
        );
        ix.release("b", "data/1", 10).unwrap();
        assert_eq!(ix.usage("b").unwrap(), 0);
        committed(&ix, "data/1", 10);
        committed(&ix, "data/2", 3);
        committed(&ix, "index/1", 4);
        committed(&ix, "datb", 1);
        assert!(matches!(
            ix.reserve("b", "data/1", 10, "w", None, 1).unwrap(),
            Reserve::Exists(_)
        ));
        assert_eq!(ix.usage("b").unwrap(), 18);
        let keys = |p: &str, a: &str, l| {
            ix.list("b", p, a, l)
                .unwrap()
                .into_iter()
                .map(|r| r.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("data/", "", 10), ["data/1", "data/2"]);
        assert_eq!(keys("data/", "data/1", 10), ["data/2"]);
        assert_eq!(keys("", "", 2), ["data/1", "data/2"]);
        assert_eq!(keys("", "data/2", 10), ["datb", "index/1"]);
        assert!(ix.list("other", "", "", 10).unwrap().is_empty());
        let r = ix.mark_deleting("b", "data/1").unwrap().unwrap();
        assert_eq!(r.size, 10);
        assert!(ix.get("b", "data/1").unwrap().is_none());
        assert_eq!(ix.unfinished().unwrap().len(), 1);
        ix.remove("b", "data/1").unwrap();
        assert_eq!(ix.usage("b").unwrap(), 8);
        assert!(ix.unfinished().unwrap().is_empty());
    }
}
