//! The SQLite state store: one file, WAL, migrations by `user_version`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use pulih_model::api::{ObjectChange, RunResult};
use rusqlite::{Connection, OptionalExtension, params};

use super::*;

/// Each entry migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    json TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE revisions (
    id INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL,
    applied_by TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE TABLE enroll_tokens (
    hash BLOB PRIMARY KEY,
    server TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE TABLE agents (
    server TEXT PRIMARY KEY,
    credential_hash BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen INTEGER,
    facts TEXT,
    observed_ip TEXT
);
CREATE TABLE runs (
    run_key TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    scheduled_for INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    result TEXT
);
CREATE INDEX runs_by_server ON runs (server, created_at);
CREATE INDEX runs_by_state ON runs (state);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    hash BLOB NOT NULL
);
"#,
    r#"
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'replicate';
ALTER TABLE runs ADD COLUMN params TEXT;
"#,
    r#"
CREATE TABLE maintenance (
    id INTEGER PRIMARY KEY,
    perangkat_daerah TEXT NOT NULL,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    report TEXT
);
"#,
    r#"
CREATE TABLE drills (
    id TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    perangkat_daerah TEXT NOT NULL,
    drc_target TEXT NOT NULL,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    report TEXT
);
CREATE INDEX drills_by_target ON drills (drc_target, state);
CREATE INDEX drills_by_server ON drills (server, created_at);
"#,
    r#"
ALTER TABLE drills ADD COLUMN kind TEXT NOT NULL DEFAULT 'drill';
"#,
    r#"
CREATE TABLE plan_runs (
    id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    order_text TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT
);
CREATE TABLE plan_members (
    drill TEXT PRIMARY KEY REFERENCES drills (id),
    run TEXT NOT NULL REFERENCES plan_runs (id),
    grp TEXT NOT NULL,
    server TEXT NOT NULL
);
CREATE INDEX plan_members_by_run ON plan_members (run);
"#,
    r#"
CREATE TABLE plan_teardowns (
    run TEXT NOT NULL REFERENCES plan_runs (id),
    drc_target TEXT NOT NULL,
    report TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (run, drc_target)
);
"#,
    r#"
CREATE TABLE plan_steps (
    run TEXT NOT NULL REFERENCES plan_runs (id),
    phase TEXT NOT NULL,
    name TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    at INTEGER NOT NULL,
    duration_s REAL NOT NULL
);
CREATE INDEX plan_steps_by_run ON plan_steps (run);
CREATE UNIQUE INDEX plan_approvals_once ON plan_steps (run, name) WHERE phase = 'approval';
"#,
    r#"
ALTER TABLE runs ADD COLUMN snapshot_id TEXT;
UPDATE runs SET snapshot_id = json_extract(result, '$.snapshot_id')
 WHERE kind = 'replicate' AND state IN ('succeeded', 'partial') AND json_valid(result);
CREATE INDEX runs_by_snapshot ON runs (snapshot_id) WHERE snapshot_id IS NOT NULL;
"#,
    r#"
CREATE TABLE signals (
    run_key TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    at INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    flag TEXT,
    cleared_at INTEGER,
    cleared_by TEXT
);
CREATE INDEX signals_by_server ON signals (server, at);
"#,
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn =
            Connection::open(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )
        .map_err(err)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.lock();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError(format!(
                "the catalog is at schema version {version}, newer than this controller knows ({known}); upgrade the controller"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads a TEXT column that holds a state or kind enum's string; an
/// unknown string is a conversion error naming the column and the value.
fn text<T>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr<Err = pulih_model::state::UnknownValue>,
{
    let s: String = r.get(i)?;
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn hash32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}

const DRILL_COLUMNS: &str = "id, server, perangkat_daerah, drc_target, trigger, state, requested_by, snapshot, created_at, started_at, finished_at, report, kind";

fn drill_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DrillRow> {
    Ok(DrillRow {
        id: r.get(0)?,
        server: r.get(1)?,
        perangkat_daerah: r.get(2)?,
        drc_target: r.get(3)?,
        trigger: r.get(4)?,
        state: text(r, 5)?,
        requested_by: r.get(6)?,
        snapshot: r.get(7)?,
        created_at: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        report_json: r.get(11)?,
        kind: text(r, 12)?,
    })
}

const PLAN_RUN_COLUMNS: &str =
    "id, plan, kind, state, spec, requested_by, order_text, created_at, finished_at, error";

fn plan_run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlanRunRow> {
    Ok(PlanRunRow {
        id: r.get(0)?,
        plan: r.get(1)?,
        kind: text(r, 2)?,
        state: text(r, 3)?,
        spec_json: r.get(4)?,
        requested_by: r.get(5)?,
        order: r.get(6)?,
        created_at: r.get(7)?,
        finished_at: r.get(8)?,
        error: r.get(9)?,
    })
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run_key: r.get(0)?,
        server: r.get(1)?,
        trigger: r.get(2)?,
        state: text(r, 3)?,
        scheduled_for: r.get(4)?,
        created_at: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        result_json: r.get(8)?,
        kind: text(r, 9)?,
        params_json: r.get(10)?,
    })
}

const RUN_COLUMNS: &str = "run_key, server, trigger, state, scheduled_for, created_at, started_at, finished_at, result, kind, params";

fn agent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRow> {
    Ok(AgentRow {
        server: r.get(0)?,
        credential_hash: hash32(r.get(1)?),
        enrolled_at: r.get(2)?,
        last_seen: r.get(3)?,
        facts_json: r.get(4)?,
        observed_ip: r.get(5)?,
    })
}

impl StateStore for SqliteStore {
    fn objects(&self) -> StoreResult<Vec<StoredObject>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT kind, name, json FROM objects ORDER BY kind, name")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredObject {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    json: r.get(2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn apply(
        &self,
        objects: &[StoredObject],
        applied_by: &str,
        changes: &[ObjectChange],
        now: i64,
    ) -> StoreResult<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let changes_json = serde_json::to_string(changes).map_err(|e| StoreError(e.to_string()))?;
        tx.execute(
            "INSERT INTO revisions (applied_at, applied_by, changes) VALUES (?1, ?2, ?3)",
            params![now, applied_by, changes_json],
        )
        .map_err(err)?;
        let rev = tx.last_insert_rowid();
        for o in objects {
            tx.execute(
                "INSERT INTO objects (kind, name, json, revision) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, name) DO UPDATE SET json = excluded.json, revision = excluded.revision",
                params![o.kind, o.name, o.json, rev],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(rev)
    }

    fn revisions(&self, limit: u32) -> StoreResult<Vec<StoredRevision>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, applied_at, applied_by, changes FROM revisions ORDER BY id DESC LIMIT ?1")
            .map_err(err)?;
        let rows = stmt
            .query_map([limit], |r| {
                let changes: String = r.get(3)?;
                Ok(StoredRevision {
                    id: r.get(0)?,
                    applied_at: r.get(1)?,
                    applied_by: r.get(2)?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn add_enroll_token(&self, hash: &[u8; 32], server: &str, expires_at: i64) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO enroll_tokens (hash, server, expires_at) VALUES (?1, ?2, ?3)",
                params![&hash[..], server, expires_at],
            )
            .map_err(err)?;
        Ok(())
    }

    fn consume_enroll_token(
        &self,
        hash: &[u8; 32],
        server: &str,
        now: i64,
    ) -> StoreResult<TokenCheck> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let row: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT server, expires_at, used_at FROM enroll_tokens WHERE hash = ?1",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        let check = match row {
            None => TokenCheck::Unknown,
            Some((_, _, Some(_))) => TokenCheck::Used,
            Some((s, _, None)) if s != server => TokenCheck::OtherServer,
            Some((_, exp, None)) if exp < now => TokenCheck::Expired,
            Some(_) => {
                tx.execute(
                    "UPDATE enroll_tokens SET used_at = ?1 WHERE hash = ?2",
                    params![now, &hash[..]],
                )
                .map_err(err)?;
                TokenCheck::Accepted
            }
        };
        tx.commit().map_err(err)?;
        Ok(check)
    }

    fn set_agent_credential(&self, server: &str, hash: &[u8; 32], now: i64) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO agents (server, credential_hash, enrolled_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (server) DO UPDATE SET credential_hash = excluded.credential_hash, enrolled_at = excluded.enrolled_at",
                params![server, &hash[..], now],
            )
            .map_err(err)?;
        Ok(())
    }

    fn agent(&self, server: &str) -> StoreResult<Option<AgentRow>> {
        self.lock()
            .prepare_cached(
                "SELECT server, credential_hash, enrolled_at, last_seen, facts, observed_ip FROM agents WHERE server = ?1",
            )
            .map_err(err)?
            .query_row([server], agent_row)
            .optional()
            .map_err(err)
    }

    fn agents(&self) -> StoreResult<Vec<AgentRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT server, credential_hash, enrolled_at, last_seen, facts, observed_ip FROM agents")
            .map_err(err)?;
        let rows = stmt.query_map([], agent_row).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn heartbeat(
        &self,
        server: &str,
        now: i64,
        facts_json: &str,
        observed_ip: &str,
    ) -> StoreResult<()> {
        self.lock()
            .prepare_cached(
                "UPDATE agents SET last_seen = ?2, facts = ?3, observed_ip = ?4 WHERE server = ?1",
            )
            .map_err(err)?
            .execute(params![server, now, facts_json, observed_ip])
            .map_err(err)?;
        Ok(())
    }

    fn queue_run(
        &self,
        server: &str,
        run_key: &str,
        job: &QueuedJob,
        now: i64,
    ) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO runs (run_key, server, trigger, state, created_at, kind, params) VALUES (?1, ?2, 'manual', 'queued', ?3, ?4, ?5)",
                params![run_key, server, now, job.kind.as_str(), job.params_json],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn queued_runs(&self, server: &str) -> StoreResult<Vec<RunRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE server = ?1 AND state = 'queued' ORDER BY created_at"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([server], run_row).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn start_run(
        &self,
        server: &str,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO runs (run_key, server, trigger, state, scheduled_for, created_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
            params![run_key, server, trigger, scheduled_for, now],
        )
        .map_err(err)?;
        let n = conn
            .execute(
                "UPDATE runs SET state = 'running', started_at = ?3 WHERE run_key = ?1 AND server = ?2 AND state IN ('queued', 'running')",
                params![run_key, server, now],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn finish_run(
        &self,
        server: &str,
        run_key: &str,
        result: &RunResult,
        now: i64,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(result).map_err(|e| StoreError(e.to_string()))?;
        let parse = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        };
        // An agent's clock (or a lying agent) cannot put a run in the
        // future, where it would count as a recent success for ever.
        let started = parse(&result.started_at).unwrap_or(now).min(now);
        let finished = parse(&result.finished_at).unwrap_or(now).min(now);
        let scheduled = result.scheduled_for.as_deref().and_then(parse);
        // Only a kept snapshot is recorded as this run's (it is what no
        // other run may report again).
        let snapshot = result
            .snapshot_id
            .as_deref()
            .filter(|_| matches!(result.state, RunState::Succeeded | RunState::Partial));
        self.lock()
            .execute(
                "INSERT INTO runs (run_key, server, trigger, state, scheduled_for, created_at, started_at, finished_at, result, snapshot_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)
                 ON CONFLICT (run_key) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
                     finished_at = excluded.finished_at, result = excluded.result, snapshot_id = excluded.snapshot_id",
                params![run_key, server, result.trigger, result.state.as_str(), scheduled, started, finished, json, snapshot],
            )
            .map_err(err)?;
        Ok(())
    }

    fn snapshot_reported(
        &self,
        snapshot: &str,
        except_run: &str,
    ) -> StoreResult<Option<(String, String)>> {
        self.lock()
            .prepare_cached(
                "SELECT server, run_key FROM runs WHERE snapshot_id = ?1 AND run_key != ?2 AND kind = 'replicate' AND state IN ('succeeded', 'partial') LIMIT 1",
            )
            .map_err(err)?
            .query_row(params![snapshot, except_run], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(err)
    }

    fn record_signals(
        &self,
        run_key: &str,
        server: &str,
        at: i64,
        metrics: &str,
        flag: Option<&str>,
    ) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                "INSERT INTO signals (run_key, server, at, metrics, flag) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(run_key) DO NOTHING",
                params![run_key, server, at, metrics, flag],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn recent_signals(&self, server: &str, except_run: &str, n: u32) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT metrics FROM signals WHERE server = ?1 AND run_key != ?2 AND flag IS NULL ORDER BY at DESC LIMIT ?3",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![server, except_run, n], |r| r.get::<_, String>(0))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn previous_snapshot(
        &self,
        server: &str,
        except_run: &str,
    ) -> StoreResult<Option<(String, String)>> {
        self.lock()
            .prepare_cached(
                "SELECT run_key, snapshot_id FROM runs WHERE server = ?1 AND run_key != ?2 AND kind = 'replicate'
                 AND state IN ('succeeded', 'partial') AND snapshot_id IS NOT NULL
                 ORDER BY finished_at DESC, rowid DESC LIMIT 1",
            )
            .map_err(err)?
            .query_row(params![server, except_run], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(err)
    }

    fn confirmed_snapshots(&self, server: &str, since: i64) -> StoreResult<Vec<(String, String)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT run_key, snapshot_id FROM runs WHERE server = ?1 AND kind = 'replicate'
                 AND state IN ('succeeded', 'partial') AND snapshot_id IS NOT NULL AND finished_at >= ?2
                 ORDER BY finished_at DESC, rowid DESC",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![server, since], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn maintenance_reports_since(&self, since: i64) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT report FROM maintenance WHERE created_at >= ?1 AND report IS NOT NULL",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![since], |r| r.get::<_, String>(0))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn open_anomalies(&self) -> StoreResult<std::collections::HashMap<String, (String, i64)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT server, flag, at FROM signals WHERE flag IS NOT NULL AND cleared_at IS NULL ORDER BY at",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn clear_anomalies(&self, server: &str, by: &str, now: i64) -> StoreResult<u64> {
        let n = self
            .lock()
            .execute(
                "UPDATE signals SET cleared_at = ?2, cleared_by = ?3 WHERE server = ?1 AND flag IS NOT NULL AND cleared_at IS NULL",
                params![server, now, by],
            )
            .map_err(err)?;
        Ok(n as u64)
    }

    fn running_count(&self, servers: &[String], since: i64) -> StoreResult<u64> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT server FROM runs WHERE state = 'running' AND started_at >= ?1")
            .map_err(err)?;
        let rows = stmt
            .query_map([since], |r| r.get::<_, String>(0))
            .map_err(err)?;
        let mut n = 0;
        for s in rows {
            if servers.contains(&s.map_err(err)?) {
                n += 1;
            }
        }
        Ok(n)
    }

    fn run(&self, run_key: &str) -> StoreResult<Option<RunRow>> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE run_key = ?1"
            ))
            .map_err(err)?
            .query_row([run_key], run_row)
            .optional()
            .map_err(err)
    }

    fn runs(&self, server: Option<&str>, limit: u32) -> StoreResult<Vec<RunRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR server = ?1) ORDER BY created_at DESC, run_key LIMIT ?2"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![server, limit], run_row)
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn run_summaries(&self) -> StoreResult<HashMap<String, RunSummary>> {
        let conn = self.lock();
        let mut out: HashMap<String, RunSummary> = HashMap::new();
        let mut stmt = conn
            .prepare_cached(
                "SELECT server, MAX(finished_at) FROM runs WHERE kind = 'replicate' AND state IN ('succeeded', 'partial') GROUP BY server",
            )
            .map_err(err)?;
        for row in stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(err)?
        {
            let (server, t) = row.map_err(err)?;
            out.entry(server).or_default().last_success = t;
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.server, r.state FROM runs r
                 JOIN (SELECT server, MAX(created_at) AS c FROM runs WHERE kind = 'replicate' GROUP BY server) m
                   ON r.server = m.server AND r.created_at = m.c
                 WHERE r.kind = 'replicate'",
            )
            .map_err(err)?;
        for row in stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, text::<RunState>(r, 1)?))
            })
            .map_err(err)?
        {
            let (server, state) = row.map_err(err)?;
            out.entry(server).or_default().last_state = Some(state);
        }
        Ok(out)
    }

    fn run_counts_since(&self, since: i64) -> StoreResult<(u64, u64, u64)> {
        let conn = self.lock();
        let count = |sql: &str, p: Option<i64>| -> StoreResult<u64> {
            let n: i64 = match p {
                Some(p) => conn.query_row(sql, [p], |r| r.get(0)),
                None => conn.query_row(sql, [], |r| r.get(0)),
            }
            .map_err(err)?;
            Ok(n as u64)
        };
        Ok((
            count("SELECT COUNT(*) FROM runs WHERE state = 'running'", None)?,
            count(
                "SELECT COUNT(*) FROM runs WHERE kind = 'replicate' AND state IN ('succeeded', 'partial') AND finished_at >= ?1",
                Some(since),
            )?,
            count(
                "SELECT COUNT(*) FROM runs WHERE kind = 'replicate' AND state = 'failed' AND finished_at >= ?1",
                Some(since),
            )?,
        ))
    }

    fn queue_maintenance(&self, pds: &[String], trigger: &str, now: i64) -> StoreResult<Vec<i64>> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let mut ids = Vec::new();
        for pd in pds {
            tx.execute(
                "INSERT INTO maintenance (perangkat_daerah, trigger, state, created_at) VALUES (?1, ?2, 'queued', ?3)",
                params![pd, trigger, now],
            )
            .map_err(err)?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    fn set_maintenance_state(&self, id: i64, state: MaintenanceState) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE maintenance SET state = ?2 WHERE id = ?1",
                params![id, state.as_str()],
            )
            .map_err(err)?;
        Ok(())
    }

    fn finish_maintenance(
        &self,
        id: i64,
        state: MaintenanceState,
        report_json: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE maintenance SET state = ?2, report = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), report_json, now],
            )
            .map_err(err)?;
        Ok(())
    }

    fn maintenance_runs(&self, limit: u32) -> StoreResult<Vec<MaintenanceRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, perangkat_daerah, trigger, state, created_at, finished_at, report FROM maintenance ORDER BY id DESC LIMIT ?1",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(MaintenanceRow {
                    id: r.get(0)?,
                    perangkat_daerah: r.get(1)?,
                    trigger: r.get(2)?,
                    state: text(r, 3)?,
                    created_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    report_json: r.get(6)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn queue_drill(&self, d: &DrillRow) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                &format!("INSERT OR IGNORE INTO drills ({DRILL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
                    d.id,
                    d.server,
                    d.perangkat_daerah,
                    d.drc_target,
                    d.trigger,
                    d.state.as_str(),
                    d.requested_by,
                    d.snapshot,
                    d.created_at,
                    d.started_at,
                    d.finished_at,
                    d.report_json,
                    d.kind.as_str()
                ],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn queued_drills(&self, drc_target: &str) -> StoreResult<Vec<DrillRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DRILL_COLUMNS} FROM drills WHERE drc_target = ?1 AND state = 'queued' ORDER BY created_at, rowid"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([drc_target], drill_row).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn start_drill(&self, id: &str, now: i64) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                "UPDATE drills SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'queued'",
                params![id, now],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn finish_drill(
        &self,
        id: &str,
        state: DrillState,
        report_json: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.lock()
            .execute(
                "UPDATE drills SET state = ?2, report = ?3, finished_at = ?4 WHERE id = ?1 AND state IN ('queued', 'running')",
                params![id, state.as_str(), report_json, now],
            )
            .map_err(err)?;
        Ok(())
    }

    fn expire_drills(&self, started_before: i64, now: i64) -> StoreResult<Vec<String>> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let ids: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT id FROM drills WHERE state = 'running' AND started_at < ?1")
                .map_err(err)?;
            let rows = stmt
                .query_map([started_before], |r| r.get(0))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        tx.execute(
            "UPDATE drills SET state = 'failed', finished_at = ?2 WHERE state = 'running' AND started_at < ?1",
            params![started_before, now],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    fn drill(&self, id: &str) -> StoreResult<Option<DrillRow>> {
        self.lock()
            .prepare_cached(&format!("SELECT {DRILL_COLUMNS} FROM drills WHERE id = ?1"))
            .map_err(err)?
            .query_row([id], drill_row)
            .optional()
            .map_err(err)
    }

    fn drills(&self, server: Option<&str>, limit: u32) -> StoreResult<Vec<DrillRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DRILL_COLUMNS} FROM drills WHERE (?1 IS NULL OR server = ?1) ORDER BY created_at DESC, rowid DESC LIMIT ?2"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![server, limit], drill_row)
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn drill_summaries(&self) -> StoreResult<HashMap<String, (DrillRow, Option<i64>)>> {
        let conn = self.lock();
        let mut out = HashMap::new();
        // The newest finished drill of each server (SQLite's bare columns
        // with MAX() come from the row holding the maximum).
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DRILL_COLUMNS}, MAX(finished_at) FROM drills WHERE kind = 'drill' AND finished_at IS NOT NULL GROUP BY server"
            ))
            .map_err(err)?;
        for row in stmt.query_map([], drill_row).map_err(err)? {
            let d = row.map_err(err)?;
            out.insert(d.server.clone(), (d, None));
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT server, MAX(finished_at) FROM drills WHERE kind = 'drill' AND state = 'passed' GROUP BY server",
            )
            .map_err(err)?;
        for row in stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(err)?
        {
            let (server, t) = row.map_err(err)?;
            if let Some(e) = out.get_mut(&server) {
                e.1 = t;
            }
        }
        Ok(out)
    }

    fn active_failovers(&self) -> StoreResult<HashMap<String, String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.server, f.id FROM drills AS f WHERE f.kind = 'failover' AND f.state = 'passed' \
                 AND f.rowid = (SELECT g.rowid FROM drills AS g WHERE g.kind = 'failover' AND g.state = 'passed' AND g.server = f.server ORDER BY g.finished_at DESC, g.rowid DESC LIMIT 1) \
                 AND NOT EXISTS (SELECT 1 FROM drills AS b WHERE b.kind = 'failback' AND b.state = 'passed' AND b.snapshot = f.id)",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn create_plan_run(&self, r: &PlanRunRow) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                &format!("INSERT OR IGNORE INTO plan_runs ({PLAN_RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    r.id,
                    r.plan,
                    r.kind.as_str(),
                    r.state.as_str(),
                    r.spec_json,
                    r.requested_by,
                    r.order,
                    r.created_at,
                    r.finished_at,
                    r.error
                ],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn plan_run(&self, id: &str) -> StoreResult<Option<PlanRunRow>> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {PLAN_RUN_COLUMNS} FROM plan_runs WHERE id = ?1"
            ))
            .map_err(err)?
            .query_row([id], plan_run_row)
            .optional()
            .map_err(err)
    }

    fn plan_runs(&self, limit: u32) -> StoreResult<Vec<PlanRunRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {PLAN_RUN_COLUMNS} FROM plan_runs ORDER BY created_at DESC, rowid DESC LIMIT ?1"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([limit], plan_run_row).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn set_plan_run_state(
        &self,
        id: &str,
        from: &[PlanRunState],
        state: PlanRunState,
        error: Option<&str>,
        finished_at: Option<i64>,
    ) -> StoreResult<bool> {
        let from = serde_json::to_string(from).map_err(|e| StoreError(e.to_string()))?;
        let n = self
            .lock()
            .execute(
                "UPDATE plan_runs SET state = ?3, error = ?4, finished_at = ?5 \
                 WHERE id = ?1 AND state IN (SELECT value FROM json_each(?2))",
                params![id, from, state.as_str(), error, finished_at],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn add_plan_member(
        &self,
        run: &str,
        group: &str,
        server: &str,
        drill: &str,
    ) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO plan_members (drill, run, grp, server) VALUES (?1, ?2, ?3, ?4)",
                params![drill, run, group, server],
            )
            .map_err(err)?;
        Ok(())
    }

    fn plan_members(&self, run: &str) -> StoreResult<Vec<PlanMember>> {
        let conn = self.lock();
        let cols = DRILL_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {cols}, m.grp, m.server FROM plan_members AS m JOIN drills AS d ON d.id = m.drill \
                 WHERE m.run = ?1 ORDER BY d.created_at, d.rowid"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map([run], |r| {
                Ok(PlanMember {
                    drill: drill_row(r)?,
                    group: r.get(13)?,
                    server: r.get(14)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn plan_run_of(&self, drill: &str) -> StoreResult<Option<String>> {
        self.lock()
            .prepare_cached("SELECT run FROM plan_members WHERE drill = ?1")
            .map_err(err)?
            .query_row([drill], |r| r.get(0))
            .optional()
            .map_err(err)
    }

    fn pending_plan_teardowns(&self, drc_target: &str) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT r.id FROM plan_runs AS r JOIN plan_members AS m ON m.run = r.id \
                 JOIN drills AS d ON d.id = m.drill \
                 WHERE r.kind = 'drill' AND r.state IN ('passed', 'rolled-back') AND d.drc_target = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM plan_teardowns AS t WHERE t.run = r.id AND t.drc_target = ?1) \
                 ORDER BY r.id",
            )
            .map_err(err)?;
        let rows = stmt.query_map([drc_target], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn record_plan_teardown(
        &self,
        run: &str,
        drc_target: &str,
        report_json: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO plan_teardowns (run, drc_target, report, at) VALUES (?1, ?2, ?3, ?4)",
                params![run, drc_target, report_json, now],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn plan_teardowns(&self, run: &str) -> StoreResult<Vec<(String, String)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT drc_target, report FROM plan_teardowns WHERE run = ?1 ORDER BY drc_target",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn add_plan_step(&self, r: &PlanStepRow) -> StoreResult<bool> {
        let n = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO plan_steps (run, phase, name, ok, detail, actor, at, duration_s) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![r.run, r.phase.as_str(), r.name, r.ok, r.detail, r.actor, r.at, r.duration_s],
            )
            .map_err(err)?;
        Ok(n == 1)
    }

    fn plan_steps(&self, run: &str) -> StoreResult<Vec<PlanStepRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT run, phase, name, ok, detail, actor, at, duration_s FROM plan_steps \
                 WHERE run = ?1 ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([run], |r| {
                Ok(PlanStepRow {
                    run: r.get(0)?,
                    phase: text(r, 1)?,
                    name: r.get(2)?,
                    ok: r.get(3)?,
                    detail: r.get(4)?,
                    actor: r.get(5)?,
                    at: r.get(6)?,
                    duration_s: r.get(7)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn audit(&self, actor: &str, action: &str, detail: &str, now: i64) -> StoreResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let prev: Vec<u8> = tx
            .query_row("SELECT hash FROM audit ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?
            .unwrap_or_else(|| vec![0u8; 32]);
        let mut h = blake3::Hasher::new();
        h.update(&prev);
        for part in [now.to_string().as_str(), actor, action, detail] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        tx.execute(
            "INSERT INTO audit (at, actor, action, detail, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, actor, action, detail, &h.finalize().as_bytes()[..]],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DrillState::{Failed, Passed};
    use RecoveryKind::{Drill, Failback, Failover};

    fn row(id: &str, kind: RecoveryKind) -> DrillRow {
        DrillRow {
            id: id.into(),
            server: "siak".into(),
            perangkat_daerah: "disdukcapil".into(),
            drc_target: "drc".into(),
            trigger: "manual".into(),
            state: DrillState::Queued,
            requested_by: "admin".into(),
            snapshot: "latest".into(),
            created_at: 100,
            started_at: None,
            finished_at: None,
            report_json: None,
            kind,
        }
    }

    #[test]
    fn recoveries_start_once_finish_once_and_a_silent_executor_is_expired() {
        let dir = tempfile::tempdir().unwrap();
        let st = SqliteStore::open(&dir.path().join("c.db")).unwrap();
        assert!(st.queue_drill(&row("d1", Drill)).unwrap());
        assert!(!st.queue_drill(&row("d1", Drill)).unwrap(), "queued once");
        assert_eq!(st.queued_drills("drc").unwrap().len(), 1);
        assert!(st.start_drill("d1", 200).unwrap());
        assert!(!st.start_drill("d1", 201).unwrap(), "started once");
        assert!(st.queued_drills("drc").unwrap().is_empty());
        // Still within its time: not expired.
        assert!(st.expire_drills(150, 300).unwrap().is_empty());
        assert_eq!(st.expire_drills(250, 300).unwrap(), ["d1"]);
        let d = st.drill("d1").unwrap().unwrap();
        assert_eq!((d.state, d.finished_at), (Failed, Some(300)));
        // A late report does not overwrite the outcome.
        st.finish_drill("d1", Passed, "{}", 400).unwrap();
        assert_eq!(st.drill("d1").unwrap().unwrap().state, Failed);
    }

    #[test]
    fn a_failover_is_active_until_a_failback_of_it_passes() {
        let dir = tempfile::tempdir().unwrap();
        let st = SqliteStore::open(&dir.path().join("c.db")).unwrap();
        for (id, kind, snapshot, finished) in [
            ("f1", Failover, "latest", 10),
            ("b1", Failback, "f1", 20),
            ("f2", Failover, "latest", 30),
        ] {
            let mut r = row(id, kind);
            r.snapshot = snapshot.into();
            st.queue_drill(&r).unwrap();
            st.start_drill(id, finished - 1).unwrap();
            st.finish_drill(id, Passed, "{}", finished).unwrap();
        }
        assert_eq!(st.active_failovers().unwrap()["siak"], "f2");
        let mut b2 = row("b2", Failback);
        b2.snapshot = "f2".into();
        st.queue_drill(&b2).unwrap();
        st.start_drill("b2", 40).unwrap();
        assert_eq!(
            st.active_failovers().unwrap()["siak"],
            "f2",
            "until it passed"
        );
        st.finish_drill("b2", Passed, "{}", 41).unwrap();
        assert!(
            st.active_failovers().unwrap().is_empty(),
            "f1 ended long ago and must not come back"
        );
    }

    #[test]
    fn a_plan_run_moves_only_from_the_states_asked_and_lists_its_members_in_order() {
        use PlanRunState::{RollingBack, Running, Stopped};
        let dir = tempfile::tempdir().unwrap();
        let st = SqliteStore::open(&dir.path().join("c.db")).unwrap();
        let run = PlanRunRow {
            id: "p1".into(),
            plan: "layanan".into(),
            kind: Drill,
            state: PlanRunState::Running,
            spec_json: "{}".into(),
            requested_by: "admin".into(),
            order: None,
            created_at: 100,
            finished_at: None,
            error: None,
        };
        assert!(st.create_plan_run(&run).unwrap());
        assert!(!st.create_plan_run(&run).unwrap(), "created once");
        for (id, group) in [
            ("p1-g0-a-1", "data"),
            ("p1-g1-b-1", "app"),
            ("p1-g1-b-2", "app"),
        ] {
            st.queue_drill(&row(id, Drill)).unwrap();
            st.add_plan_member("p1", group, id.split('-').nth(2).unwrap(), id)
                .unwrap();
        }
        let members = st.plan_members("p1").unwrap();
        let ids: Vec<&str> = members.iter().map(|m| m.drill.id.as_str()).collect();
        assert_eq!(ids, ["p1-g0-a-1", "p1-g1-b-1", "p1-g1-b-2"]);
        assert_eq!(
            (members[1].group.as_str(), members[1].server.as_str()),
            ("app", "b")
        );
        assert_eq!(st.plan_run_of("p1-g1-b-2").unwrap().as_deref(), Some("p1"));
        assert_eq!(st.plan_run_of("other").unwrap(), None);
        // Only from the states named: a second stop or a pass of a
        // stopped run changes nothing.
        assert!(
            st.set_plan_run_state("p1", &[Running], Stopped, Some("why"), None)
                .unwrap()
        );
        assert!(
            !st.set_plan_run_state("p1", &[Running], PlanRunState::Passed, None, Some(9))
                .unwrap()
        );
        let r = st.plan_run("p1").unwrap().unwrap();
        assert_eq!((r.state, r.error.as_deref()), (Stopped, Some("why")));
        assert!(
            st.set_plan_run_state(
                "p1",
                &[Stopped, PlanRunState::Passed],
                RollingBack,
                None,
                None
            )
            .unwrap()
        );
        assert_eq!(st.plan_run("p1").unwrap().unwrap().error, None);
        assert_eq!(st.plan_runs(10).unwrap().len(), 1);

        // A role approves a run once; a step may run many times (resume).
        let step = |phase: StepPhase, name: &str, ok: bool, at: i64| PlanStepRow {
            run: "p1".into(),
            phase,
            name: name.into(),
            ok,
            detail: format!("exit code {}", u8::from(!ok)),
            actor: "Kepala DKIS".into(),
            at,
            duration_s: 0.5,
        };
        assert!(
            st.add_plan_step(&step(StepPhase::Approval, "dkis-head", true, 1))
                .unwrap()
        );
        assert!(
            !st.add_plan_step(&step(StepPhase::Approval, "dkis-head", true, 2))
                .unwrap(),
            "one approval per role"
        );
        assert!(
            st.add_plan_step(&step(StepPhase::Approval, "walidata", true, 3))
                .unwrap()
        );
        assert!(
            st.add_plan_step(&step(StepPhase::Pre, "umumkan", false, 4))
                .unwrap()
        );
        assert!(
            st.add_plan_step(&step(StepPhase::Pre, "umumkan", true, 5))
                .unwrap()
        );
        let steps = st.plan_steps("p1").unwrap();
        let seen: Vec<(StepPhase, &str, bool)> = steps
            .iter()
            .map(|s| (s.phase, s.name.as_str(), s.ok))
            .collect();
        assert_eq!(
            seen,
            [
                (StepPhase::Approval, "dkis-head", true),
                (StepPhase::Approval, "walidata", true),
                (StepPhase::Pre, "umumkan", false),
                (StepPhase::Pre, "umumkan", true)
            ]
        );
        assert_eq!(steps[0].at, 1, "the first approval is the one kept");
        assert!(st.plan_steps("other").unwrap().is_empty());
    }

    /// Every state and kind is stored as the same TEXT it always was, and
    /// reads back as itself; an unknown string is an error naming it.
    #[test]
    fn states_and_kinds_are_stored_as_their_strings() {
        let dir = tempfile::tempdir().unwrap();
        let st = SqliteStore::open(&dir.path().join("c.db")).unwrap();
        let column = |sql: &str, id: &str| -> String {
            st.lock().query_row(sql, [id], |r| r.get(0)).unwrap()
        };
        let table = [
            (DrillState::Queued, "queued"),
            (DrillState::Running, "running"),
            (DrillState::Passed, "passed"),
            (DrillState::Failed, "failed"),
        ];
        for (i, (state, text)) in table.iter().enumerate() {
            let kind = RecoveryKind::ALL[i % 3];
            let id = format!("d{i}");
            st.queue_drill(&DrillRow {
                state: *state,
                ..row(&id, kind)
            })
            .unwrap();
            let back = st.drill(&id).unwrap().unwrap();
            assert_eq!((back.state, back.kind), (*state, kind));
            assert_eq!(column("SELECT state FROM drills WHERE id = ?1", &id), *text);
            assert_eq!(
                column("SELECT kind FROM drills WHERE id = ?1", &id),
                kind.as_str()
            );
        }
        for (i, state) in PlanRunState::ALL.iter().enumerate() {
            let id = format!("p{i}");
            st.create_plan_run(&PlanRunRow {
                id: id.clone(),
                plan: "layanan".into(),
                kind: RecoveryKind::Failover,
                state: *state,
                spec_json: "{}".into(),
                requested_by: "admin".into(),
                order: None,
                created_at: i as i64,
                finished_at: None,
                error: None,
            })
            .unwrap();
            assert_eq!(st.plan_run(&id).unwrap().unwrap().state, *state);
            assert_eq!(
                column("SELECT state FROM plan_runs WHERE id = ?1", &id),
                state.as_str()
            );
        }
        assert_eq!(
            PlanRunState::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            [
                "awaiting-approval",
                "running",
                "stopped",
                "passed",
                "rolling-back",
                "rolled-back"
            ]
        );
        for (i, phase) in StepPhase::ALL.iter().enumerate() {
            st.add_plan_step(&PlanStepRow {
                run: "p0".into(),
                phase: *phase,
                name: format!("s{i}"),
                ok: true,
                detail: String::new(),
                actor: "controller".into(),
                at: 0,
                duration_s: 0.0,
            })
            .unwrap();
        }
        let phases: Vec<StepPhase> = st
            .plan_steps("p0")
            .unwrap()
            .iter()
            .map(|s| s.phase)
            .collect();
        assert_eq!(phases, StepPhase::ALL);
        let texts: Vec<String> = {
            let conn = st.lock();
            let mut q = conn
                .prepare("SELECT phase FROM plan_steps ORDER BY rowid")
                .unwrap();
            q.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(texts, ["approval", "pre", "post"]);
        // Runs: each job kind queued, each finished state recorded.
        for (i, (kind, text)) in [
            (JobKind::Replicate, "replicate"),
            (JobKind::Verify, "verify"),
            (JobKind::Restore, "restore"),
            (JobKind::Failback, "failback"),
        ]
        .into_iter()
        .enumerate()
        {
            let key = format!("r{i}");
            let job = QueuedJob {
                kind,
                params_json: None,
            };
            assert!(st.queue_run("siak", &key, &job, 1).unwrap());
            let r = st.run(&key).unwrap().unwrap();
            assert_eq!((r.kind, r.state), (kind, RunState::Queued));
            assert_eq!(
                column("SELECT kind FROM runs WHERE run_key = ?1", &key),
                text
            );
            assert_eq!(
                column("SELECT state FROM runs WHERE run_key = ?1", &key),
                "queued"
            );
        }
        assert!(st.start_run("siak", "r0", "manual", None, 2).unwrap());
        assert_eq!(st.run("r0").unwrap().unwrap().state, RunState::Running);
        for (state, text) in [
            (RunState::Succeeded, "succeeded"),
            (RunState::Partial, "partial"),
            (RunState::Failed, "failed"),
        ] {
            let result = RunResult {
                trigger: "manual".into(),
                scheduled_for: None,
                started_at: "2026-11-24T00:00:00Z".into(),
                finished_at: "2026-11-24T00:01:00Z".into(),
                state,
                snapshot_id: None,
                files: 0,
                bytes_read: 0,
                bytes_new: 0,
                bytes_stored: 0,
                duration_s: 0.0,
                errors: Vec::new(),
            };
            st.finish_run("siak", text, &result, 3).unwrap();
            assert_eq!(st.run(text).unwrap().unwrap().state, state);
            assert_eq!(
                column("SELECT state FROM runs WHERE run_key = ?1", text),
                text
            );
        }
        // Maintenance: queued, then each state it moves to.
        let id = st.queue_maintenance(&["dkis".into()], "manual", 1).unwrap()[0];
        let m_state = || st.maintenance_runs(1).unwrap()[0].state;
        let m_text = || {
            column(
                "SELECT state FROM maintenance WHERE CAST(id AS TEXT) = ?1",
                &id.to_string(),
            )
        };
        assert_eq!(
            (m_state(), m_text()),
            (MaintenanceState::Queued, "queued".into())
        );
        for (state, text) in [
            (MaintenanceState::Running, "running"),
            (MaintenanceState::Succeeded, "succeeded"),
            (MaintenanceState::Skipped, "skipped"),
            (MaintenanceState::Failed, "failed"),
        ] {
            st.finish_maintenance(id, state, "{}", 2).unwrap();
            assert_eq!((m_state(), m_text()), (state, text.to_string()));
        }

        // A row with a string no enum knows (a newer controller's) is an
        // error that names the column's value, not a silent default.
        st.lock()
            .execute("UPDATE drills SET state = 'paused' WHERE id = 'd0'", [])
            .unwrap();
        let e = st.drill("d0").unwrap_err().to_string();
        assert!(e.contains("`paused` is not a DrillState"), "{e}");
    }
}
