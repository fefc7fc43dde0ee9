//! The seed's sqlite backend (`ABSTRACTGATEWAY_STORE_BACKEND=sqlite`): runs, ledgers, the command inbox and the
//! command cursor in one database, `<data dir>/gateway.sqlite3` by default (artifacts stay files).
//!
//! The database is hostile input like the seed's files: it is opened read-only (and `query_only`), untrusted schema
//! functions are off, every table read must be a real table (a view of the same name could compute anything), values
//! are taken only with the type the seed writes (text, integer), and sizes are checked in SQL (`octet_length`, read
//! from the record header) before a value is loaded; SQLite's own length limit backs that up.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value};

/// The tables read; `runs` must exist, the others may be missing (nothing of that kind then).
const TABLES: [&str; 4] = ["runs", "ledger", "commands", "command_cursors"];
/// Largest value read from the database (a run's state; ledger records and payloads have lower caps).
const MAX_VALUE: u64 = 256 * 1024 * 1024 + 1;
/// The consumer whose cursor says which commands the seed applied.
const RUNNER_CONSUMER: &str = "gateway_runner";

/// An open seed database.
pub struct SeedDb {
    conn: Connection,
    /// Which of [`TABLES`] exist.
    present: Vec<&'static str>,
}

/// A row that could not be taken, with why.
pub type Row<T> = Result<T, String>;
/// A JSON object as the seed stored it (a ledger record, a command line).
pub type Object = Map<String, Value>;

impl SeedDb {
    /// Opens `path` read-only and checks its tables.
    pub fn open(path: &std::path::Path) -> Result<SeedDb, String> {
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", path.display()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA trusted_schema = OFF; PRAGMA query_only = ON; PRAGMA cell_size_check = ON;",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        // No value SQLite hands us (or builds for a length check) may be larger than what is ever read: a bigger
        // one is a row error, reported, instead of a gigabyte in memory.
        conn.set_limit(
            rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
            i32::try_from(MAX_VALUE).unwrap_or(i32::MAX),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut present = Vec::new();
        for table in TABLES {
            let kind: Option<String> = conn
                .query_row(
                    "SELECT type FROM sqlite_master WHERE name = ?1",
                    params![table],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            match kind.as_deref() {
                Some("table") => present.push(table),
                None if table != "runs" => {}
                None => {
                    return Err(format!(
                        "{}: no runs table: not a seed database",
                        path.display()
                    ));
                }
                Some(other) => {
                    return Err(format!(
                        "{}: {table} is a {other}, not a table: not a seed database",
                        path.display()
                    ));
                }
            }
        }
        Ok(SeedDb { conn, present })
    }

    fn has(&self, table: &str) -> bool {
        self.present.contains(&table)
    }

    /// Every run id, sorted; an id that is not text is reported by its row.
    pub fn run_ids(&self) -> Result<Vec<Row<String>>, String> {
        self.texts("SELECT run_id FROM runs ORDER BY run_id")
    }

    /// The ids of runs that have ledger records.
    pub fn ledger_run_ids(&self) -> Result<Vec<Row<String>>, String> {
        if !self.has("ledger") {
            return Ok(Vec::new());
        }
        self.texts("SELECT DISTINCT run_id FROM ledger ORDER BY run_id")
    }

    fn texts(&self, sql: &str) -> Result<Vec<Row<String>>, String> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| Ok(r.get::<_, String>(0).map_err(|e| e.to_string())))
            .map_err(|e| e.to_string())?;
        rows.map(|r| r.map_err(|e| e.to_string())).collect()
    }

    /// The run's `run_json`, refused when longer than `max` bytes.
    pub fn run_json(&self, run_id: &str, max: u64) -> Row<Vec<u8>> {
        let (len, json): (Option<i64>, Option<String>) = self
            .conn
            .query_row(
                "SELECT octet_length(run_json), \
                 CASE WHEN octet_length(run_json) <= ?2 AND typeof(run_json) = 'text' THEN run_json END \
                 FROM runs WHERE run_id = ?1",
                params![run_id, max as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| e.to_string())?;
        match json {
            Some(j) => Ok(j.into_bytes()),
            None if len.is_some_and(|l| l as u64 > max) => Err(format!(
                "{} bytes, over the {max}-byte cap",
                len.unwrap_or(0)
            )),
            None => Err("run_json is not text".into()),
        }
    }

    /// The run's ledger records in seq order: each a JSON object, or why it is not one (too long, not text,
    /// not a JSON object).
    pub fn ledger(&self, run_id: &str, max: usize) -> Result<Vec<(i64, Row<Object>)>, String> {
        if !self.has("ledger") {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, octet_length(record_json), \
                 CASE WHEN octet_length(record_json) <= ?2 AND typeof(record_json) = 'text' \
                 THEN record_json END \
                 FROM ledger WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![run_id, max as i64], |r| {
                let seq: i64 = r.get(0).unwrap_or(0);
                let len: Option<i64> = r.get(1).unwrap_or(None);
                let json: Option<String> = r.get(2).unwrap_or(None);
                Ok((seq, len, json))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, len, json) = row.map_err(|e| e.to_string())?;
            let record = match json {
                Some(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(m)) => Ok(m),
                    _ => Err("not a JSON object".to_string()),
                },
                None if len.is_some_and(|l| l as u64 > max as u64) => {
                    Err(format!("longer than {max} bytes"))
                }
                None => Err("record_json is not text".to_string()),
            };
            out.push((seq, record));
        }
        Ok(out)
    }

    /// The command inbox in seq order, each as the file backend's line (`command_id`, `run_id`, `type`,
    /// `payload`, `ts`, `client_id`, `seq`), or why a row is unsound.
    pub fn commands(&self, max: usize) -> Result<Vec<Row<Object>>, String> {
        if !self.has("commands") {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, command_id, run_id, type, ts, client_id, octet_length(payload_json), \
                 CASE WHEN octet_length(payload_json) <= ?1 AND typeof(payload_json) = 'text' \
                 THEN payload_json END \
                 FROM commands ORDER BY seq",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![max as i64], |r| {
                let text = |i: usize| r.get::<_, Option<String>>(i).ok().flatten();
                let seq = r.get::<_, i64>(0).ok();
                let len = r.get::<_, Option<i64>>(6).ok().flatten();
                Ok((
                    seq,
                    text(1),
                    text(2),
                    text(3),
                    text(4),
                    text(5),
                    len,
                    text(7),
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, run, kind, ts, client, len, payload) = row.map_err(|e| e.to_string())?;
            let name = id.clone().unwrap_or_default();
            let payload = match payload {
                Some(p) => match serde_json::from_str::<Value>(&p) {
                    Ok(v) => v,
                    Err(_) => {
                        out.push(Err(format!("command {name}: payload_json is not JSON")));
                        continue;
                    }
                },
                None if len.is_some_and(|l| l as u64 > max as u64) => {
                    out.push(Err(format!(
                        "command {name}: payload longer than {max} bytes"
                    )));
                    continue;
                }
                None => Value::Object(Map::new()),
            };
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    m.insert(k.into(), Value::String(v));
                }
            };
            put("command_id", id);
            put("run_id", run);
            put("type", kind);
            put("ts", ts);
            put("client_id", client);
            m.insert("payload".into(), payload);
            if let Some(seq) = seq.filter(|s| *s > 0) {
                m.insert("seq".into(), Value::from(seq));
            }
            out.push(Ok(m));
        }
        Ok(out)
    }

    /// The seq of the last command the seed's runner applied (0: none).
    pub fn cursor(&self) -> u64 {
        if !self.has("command_cursors") {
            return 0;
        }
        self.conn
            .query_row(
                "SELECT cursor FROM command_cursors WHERE consumer_id = ?1",
                params![RUNNER_CONSUMER],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(0)
    }
}
