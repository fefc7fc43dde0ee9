//! `abstractgateway migrate --from-seed DIR`: moves what the seed (AbstractGateway 0.2.1, file or sqlite backend)
//! stored in its data dir into this gateway's: runs with their ledgers, the command inbox (what the seed applied is
//! marked applied, the rest is left for this runner), artifacts (the same ids), generated flows and deprecations.
//!
//! The seed's files are read, never written, and every one is hostile until checked: names that are not plain ids
//! are skipped, lines and files are read under caps, a blob must match its sha256, and the target must be a data
//! dir that holds no runs yet (a failed migration is redone on a fresh one). What is skipped is reported, not fatal.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::EXIT_USAGE;
use crate::artifacts::{ArtifactStore, NewArtifact, max_bytes_from_env};
use crate::run::{CommandOutcome, RunState};
use crate::store::{Batch, NewCommand, RunQuery, Store};

mod seed_db;

/// Ledger records written per batch (a long ledger is written in pieces; the run's state goes with the last).
const LEDGER_CHUNK: usize = 1000;
/// Longest line read from a ledger or the command inbox; a longer one is skipped.
const MAX_LINE: usize = 64 * 1024 * 1024;
/// Largest run, cursor, artifact-metadata or flow file read.
const MAX_FILE: u64 = 256 * 1024 * 1024;
/// Longest id accepted from a file name.
const MAX_ID: usize = 200;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The seed's data dir (its ABSTRACTGATEWAY_DATA_DIR, file or sqlite backend).
    #[arg(long = "from-seed", value_name = "DIR")]
    pub from_seed: PathBuf,
    /// The seed's sqlite database when it was not `DIR/gateway.sqlite3` (its ABSTRACTGATEWAY_DB_PATH).
    #[arg(long = "seed-db", value_name = "FILE")]
    pub seed_db: Option<PathBuf>,
    /// This gateway's data dir to fill; it must hold no runs yet.
    #[arg(long, env = "ABSTRACTGATEWAY_DATA_DIR", default_value = "runtime")]
    pub data_dir: PathBuf,
}

/// One part of a migration: the seed, the target data dir, its store, the report.
type Step = fn(&Seed, &Path, &Store, &mut Report) -> Result<(), String>;

/// The seed's data dir and where it kept runs, ledgers and its command inbox.
struct Seed {
    dir: PathBuf,
    state: SeedState,
}

/// The seed's two backends for runs, ledgers and commands (artifacts and flows are files with both).
enum SeedState {
    /// `run_<id>.json`, `ledger_<id>.jsonl`, `commands.jsonl`, `commands_cursor.json`.
    Files,
    /// `gateway.sqlite3`.
    Sqlite(seed_db::SeedDb),
}

impl Seed {
    /// `(run id, where it was read)` of every run.
    fn run_ids(&self, report: &mut Report) -> Result<Vec<(String, String)>, String> {
        self.ids_of(&RUN_FILES, report, |db| db.run_ids())
    }

    /// `(run id, where)` of every ledger, to report those without a run.
    fn ledger_ids(&self, report: &mut Report) -> Result<Vec<(String, String)>, String> {
        self.ids_of(&LEDGER_FILES, report, |db| db.ledger_run_ids())
    }

    /// The plain ids of one kind, with where each was found: the files of the file backend, or the rows `rows`
    /// gives of the database.
    fn ids_of(
        &self,
        kind: &IdKind,
        report: &mut Report,
        rows: impl FnOnce(&seed_db::SeedDb) -> Result<Vec<seed_db::Row<String>>, String>,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(match &self.state {
            SeedState::Files => files_of(&self.dir, kind.prefix, kind.suffix, report)
                .into_iter()
                .map(|(id, path)| (id, format!("{} {}", kind.file, path.display())))
                .collect(),
            SeedState::Sqlite(db) => plain_rows(rows(db)?, kind.row, report)
                .into_iter()
                .map(|id| {
                    let at = (kind.row_at)(&id);
                    (id, at)
                })
                .collect(),
        })
    }

    /// The bytes of a run's state.
    fn run_bytes(&self, id: &str) -> Result<Vec<u8>, String> {
        match &self.state {
            SeedState::Files => read_capped(&self.dir.join(format!("run_{id}.json")), MAX_FILE),
            SeedState::Sqlite(db) => db.run_json(id, MAX_FILE),
        }
    }

    /// A run's ledger records in order (unsound ones reported and left out).
    fn ledger(&self, id: &str, report: &mut Report) -> Result<Vec<Map<String, Value>>, String> {
        match &self.state {
            SeedState::Files => Ok(jsonl(
                &self.dir.join(format!("ledger_{id}.jsonl")),
                "ledger",
                report,
            )
            .into_iter()
            .map(|(_, m)| m)
            .collect()),
            SeedState::Sqlite(db) => Ok(db
                .ledger(id, MAX_LINE)?
                .into_iter()
                .filter_map(|(seq, rec)| {
                    rec.map_err(|e| report.skip(format!("ledger of run {id:?} seq {seq}: {e}")))
                        .ok()
                })
                .collect()),
        }
    }

    /// The command inbox as `(where, line)`, in any order.
    fn commands(&self, report: &mut Report) -> Result<Vec<(String, seed_db::Object)>, String> {
        match &self.state {
            SeedState::Files => Ok(jsonl(&self.dir.join("commands.jsonl"), "command", report)
                .into_iter()
                .map(|(n, m)| (format!("command line {n}"), m))
                .collect()),
            SeedState::Sqlite(db) => Ok(db
                .commands(MAX_LINE)?
                .into_iter()
                .enumerate()
                .filter_map(|(n, c)| match c {
                    Ok(m) => Some((format!("command row {}", n + 1), m)),
                    Err(e) => {
                        report.skip(e);
                        None
                    }
                })
                .collect()),
        }
    }

    /// The seq of the last command the seed applied.
    fn cursor(&self) -> u64 {
        match &self.state {
            SeedState::Files => match read_capped(&self.dir.join("commands_cursor.json"), MAX_FILE)
            {
                Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("cursor").and_then(Value::as_u64))
                    .unwrap_or(0),
                Err(_) => 0,
            },
            SeedState::Sqlite(db) => db.cursor(),
        }
    }
}

/// One kind of id the seed keeps: its files' names, and how each backend's place is named in the report.
struct IdKind {
    prefix: &'static str,
    suffix: &'static str,
    file: &'static str,
    row: &'static str,
    row_at: fn(&str) -> String,
}

const RUN_FILES: IdKind = IdKind {
    prefix: "run_",
    suffix: ".json",
    file: "run file",
    row: "run",
    row_at: |id| format!("run {id:?} of the seed database"),
};

const LEDGER_FILES: IdKind = IdKind {
    prefix: "ledger_",
    suffix: ".jsonl",
    file: "ledger",
    row: "ledger",
    row_at: |id| format!("the ledger of run {id:?}"),
};

/// The ids of `rows` that are plain ids; the others are reported.
fn plain_rows(rows: Vec<seed_db::Row<String>>, what: &str, report: &mut Report) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(id) if plain_id(&id) => out.push(id),
            Ok(id) => report.skip(format!(
                "{what} {id:?} of the seed database: not a plain id"
            )),
            Err(e) => report.skip(format!("a {what} row of the seed database: {e}")),
        }
    }
    out
}

/// What was moved, and what was not.
#[derive(Default)]
struct Report {
    runs: usize,
    records: usize,
    commands: usize,
    applied_by_seed: usize,
    artifacts: usize,
    flows: usize,
    skipped: Vec<String>,
}

impl Report {
    fn skip(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("warning: {what}");
        self.skipped.push(what);
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// A seed id taken from a file name: letters, digits, `-`, `_`, `.` and `:` (never a path).
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// A regular file's bytes, refused when larger than `max` (a symbolic link is not followed out of the seed's dir:
/// only regular files are read).
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes, over the {max}-byte cap", meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The lines of a JSONL file that are JSON objects, each with its line number; others are reported.
fn jsonl(path: &Path, what: &str, report: &mut Report) -> Vec<(usize, Map<String, Value>)> {
    jsonl_within(path, what, report, MAX_LINE)
}

/// Reads past the end of the current line without keeping it.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// [`jsonl`] with lines of at most `max_line` bytes: a longer one is skipped without being held in memory.
fn jsonl_within(
    path: &Path,
    what: &str,
    report: &mut Report,
    max_line: usize,
) -> Vec<(usize, Map<String, Value>)> {
    let file = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => std::fs::File::open(path),
        Ok(_) => {
            report.skip(format!("{what} {}: not a regular file", path.display()));
            return Vec::new();
        }
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                report.skip(format!("{what} {}: {e}", path.display()));
            }
            return Vec::new();
        }
    };
    let mut reader = match file {
        Ok(f) => BufReader::new(f),
        Err(e) => {
            report.skip(format!("{what} {}: {e}", path.display()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        n += 1;
        // Read at most one byte past the cap (and its newline) so a line without end cannot take all memory.
        let read = (&mut reader)
            .take(max_line as u64 + 2)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                report.skip(format!("{what} {}: {e}", path.display()));
                break;
            }
        }
        let ended = line.last() == Some(&b'\n');
        if line.len() - usize::from(ended) > max_line {
            report.skip(format!(
                "{what} {} line {n}: longer than {max_line} bytes",
                path.display()
            ));
            if !ended && skip_line(&mut reader).is_err() {
                break;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text.trim()) {
            Ok(Value::Object(m)) => out.push((n, m)),
            _ => report.skip(format!(
                "{what} {} line {n}: not a JSON object",
                path.display()
            )),
        }
    }
    out
}

/// The seed's files of one kind: `<prefix><id><suffix>` in `dir`, with plain ids, sorted.
fn files_of(dir: &Path, prefix: &str, suffix: &str, report: &mut Report) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            continue;
        };
        if plain_id(id) {
            out.push((id.to_string(), entry.path()));
        } else {
            report.skip(format!("{name}: not a plain id"));
        }
    }
    out.sort();
    out
}

pub fn run(args: MigrateArgs) -> ExitCode {
    let src = &args.from_seed;
    if !src.is_dir() {
        eprintln!("error: {} is not a directory", src.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let has_files = std::fs::read_dir(src).is_ok_and(|mut d| {
        d.any(|e| {
            e.ok().is_some_and(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                (n.starts_with("run_") && n.ends_with(".json"))
                    || n == "commands.jsonl"
                    || (n.starts_with("ledger_") && n.ends_with(".jsonl"))
            })
        })
    });
    let db_path = args
        .seed_db
        .clone()
        .unwrap_or_else(|| src.join("gateway.sqlite3"));
    // A dir with a database is the sqlite backend's (the seed's own file-to-sqlite migration leaves the files).
    let state = if args.seed_db.is_some() || db_path.exists() {
        match seed_db::SeedDb::open(&db_path) {
            Ok(db) => SeedState::Sqlite(db),
            Err(e) => {
                eprintln!("error: the seed's sqlite database {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else if has_files {
        SeedState::Files
    } else {
        eprintln!(
            "error: {} holds no seed runs, ledgers or commands (neither the file backend's files nor gateway.sqlite3)",
            src.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let seed = Seed {
        dir: src.clone(),
        state,
    };
    let mut report = Report::default();
    if matches!(seed.state, SeedState::Sqlite(_)) && has_files {
        report.skip(format!(
            "{}: the file backend's runs, ledgers and commands are ignored: the sqlite database is the seed's state",
            src.display()
        ));
    }
    if std::fs::create_dir_all(&args.data_dir).is_err() {
        return fail(format!("cannot create {}", args.data_dir.display()));
    }
    let store = match Store::open(&args.data_dir) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.list_runs(&RunQuery {
        limit: 1,
        ..Default::default()
    }) {
        Ok(runs) if runs.is_empty() => {}
        Ok(_) => {
            eprintln!(
                "error: {} already holds runs: migrate into a new data dir",
                args.data_dir.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => return fail(e),
    }
    let steps: [(&str, Step); 5] = [
        ("runs", migrate_runs),
        ("commands", migrate_commands),
        ("artifacts", migrate_artifacts),
        ("generated flows", migrate_flows),
        ("deprecations", migrate_deprecations),
    ];
    for (what, step) in steps {
        if let Err(e) = step(&seed, &args.data_dir, &store, &mut report) {
            return fail(format!(
                "migrating {what}: {e} (the target is incomplete: remove {} and migrate again)",
                args.data_dir.display()
            ));
        }
    }
    println!(
        "migrated from {}: {} runs, {} ledger records, {} commands ({} applied by the seed), {} artifacts, {} \
         generated flows; {} items skipped",
        src.display(),
        report.runs,
        report.records,
        report.commands,
        report.applied_by_seed,
        report.artifacts,
        report.flows,
        report.skipped.len()
    );
    ExitCode::SUCCESS
}

/// Each run with its ledger.
fn migrate_runs(
    seed: &Seed,
    _dst: &Path,
    store: &Store,
    report: &mut Report,
) -> Result<(), String> {
    let runs = seed.run_ids(report)?;
    let mut known = std::collections::HashSet::new();
    for (id, at) in runs {
        let bytes = match seed.run_bytes(&id) {
            Ok(b) => b,
            Err(e) => {
                report.skip(format!("{at}: {e}"));
                continue;
            }
        };
        let mut run: RunState = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                report.skip(format!("{at}: {e}"));
                continue;
            }
        };
        if run.run_id != id {
            report.skip(format!("{at}: names run {:?}", run.run_id));
            continue;
        }
        // The seed keeps the pause flag in vars; this gateway in the run's control.
        if let Some(control) = run
            .vars
            .get("_runtime")
            .and_then(|r| r.get("control"))
            .and_then(Value::as_object)
        {
            run.control.paused = control
                .get("paused")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let text = |k: &str| control.get(k).and_then(Value::as_str).map(str::to_string);
            run.control.pause_reason = text("pause_reason");
            run.control.paused_at = text("paused_at");
            run.control.resumed_at = text("resumed_at");
        }
        // Workspaces stay where the seed put them: a migrated run gets one of this gateway's when it needs one.
        run.workspace = None;
        run.inflight = None;
        let ledger = seed.ledger(&id, report)?;
        let mut seq = 0u64;
        for chunk in ledger.chunks(LEDGER_CHUNK) {
            let mut batch = Batch::new();
            for rec in chunk {
                seq += 1;
                let json = serde_json::to_vec(rec).map_err(|e| e.to_string())?;
                batch.append_ledger_json(&id, seq, json);
            }
            store.commit(batch).map_err(|e| format!("run {id}: {e}"))?;
        }
        run.ledger_len = seq;
        let mut batch = Batch::new();
        batch.put_run(&run);
        if let Err(e) = store.commit(batch) {
            return Err(format!("run {id}: {e}"));
        }
        known.insert(id);
        report.runs += 1;
        report.records += seq as usize;
    }
    for (id, at) in seed.ledger_ids(report)? {
        if !known.contains(&id) {
            report.skip(format!("{at} has no readable run; not migrated"));
        }
    }
    Ok(())
}

/// The command inbox in seed order; those at or below the seed's cursor were applied by the seed.
fn migrate_commands(
    seed: &Seed,
    _dst: &Path,
    store: &Store,
    report: &mut Report,
) -> Result<(), String> {
    let cursor = seed.cursor();
    let mut lines = seed.commands(report)?;
    let seq_of = |m: &Map<String, Value>| m.get("seq").and_then(Value::as_u64).unwrap_or(0);
    lines.sort_by_key(|(_, m)| seq_of(m));
    let mut batch = Batch::new();
    let mut last_applied = None;
    for (n, m) in lines {
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(command_id), Some(run_id), Some(kind)) =
            (text("command_id"), text("run_id"), text("type"))
        else {
            report.skip(format!("{n}: missing command_id, run_id or type"));
            continue;
        };
        let seed_seq = seq_of(&m);
        if seed_seq == 0 {
            report.skip(format!("command {command_id}: no seq"));
            continue;
        }
        let cmd = NewCommand {
            command_id: command_id.clone(),
            run_id,
            kind,
            payload: m.get("payload").cloned().unwrap_or_else(|| json!({})),
            ts: text("ts"),
            client_id: text("client_id"),
        };
        let appended = match store.append_command(cmd) {
            Ok(a) => a,
            Err(e) => {
                report.skip(format!("command {command_id}: {e}"));
                continue;
            }
        };
        if appended.duplicate {
            report.skip(format!("command {command_id}: its id appears twice"));
            continue;
        }
        report.commands += 1;
        if seed_seq <= cursor {
            batch.put_outcome(&CommandOutcome {
                command_id,
                seq: appended.seq,
                status: "applied".into(),
                reason: Some("applied by the seed before migration".into()),
                runs: Vec::new(),
                applied_at: crate::time::now_iso(),
            });
            last_applied = Some(appended.seq);
            report.applied_by_seed += 1;
        }
    }
    if let Some(seq) = last_applied {
        batch.set_command_cursor(seq);
    }
    store.commit(batch).map_err(|e| e.to_string())
}

/// `artifacts/refs/<id>.meta` with `artifacts/blobs/<blob>.bin`, each blob checked against its sha256.
fn migrate_artifacts(
    seed: &Seed,
    dst: &Path,
    _store: &Store,
    report: &mut Report,
) -> Result<(), String> {
    let src = &seed.dir;
    let max = max_bytes_from_env();
    let artifacts = ArtifactStore::open_with(dst, max).map_err(|e| e.to_string())?;
    let refs = src.join("artifacts").join("refs");
    for (id, path) in files_of(&refs, "", ".meta", report) {
        let meta: Value = match read_capped(&path, MAX_FILE)
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                report.skip(format!("artifact {id}: {e}"));
                continue;
            }
        };
        let text = |k: &str| {
            meta.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (run_id, blob_id, content_type) =
            (text("run_id"), text("blob_id"), text("content_type"));
        if blob_id.len() != 64 || !blob_id.chars().all(|c| c.is_ascii_hexdigit()) {
            report.skip(format!(
                "artifact {id}: blob id {blob_id:?} is not a sha256"
            ));
            continue;
        }
        let blob = src
            .join("artifacts")
            .join("blobs")
            .join(format!("{blob_id}.bin"));
        let content = match read_capped(&blob, max) {
            Ok(b) => b,
            Err(e) => {
                report.skip(format!("artifact {id}: blob {blob_id}: {e}"));
                continue;
            }
        };
        if hex::encode(Sha256::digest(&content)) != blob_id.to_ascii_lowercase() {
            report.skip(format!(
                "artifact {id}: blob {blob_id} does not match its sha256"
            ));
            continue;
        }
        let mut extra = NewArtifact::default();
        if let Some(tags) = meta.get("tags").and_then(Value::as_object) {
            extra.tags = tags
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect::<BTreeMap<_, _>>();
        }
        if let Some(m) = meta.get("metadata").and_then(Value::as_object) {
            extra.metadata = m.clone();
        }
        let content_type = if content_type.is_empty() {
            "application/octet-stream".to_string()
        } else {
            content_type
        };
        match artifacts.put(&run_id, &content, &content_type, extra) {
            Ok(stored) if stored.artifact_id == id => report.artifacts += 1,
            Ok(stored) => {
                report.artifacts += 1;
                report.skip(format!(
                    "artifact {id} of run {run_id} is stored as {} (its id does not follow the seed's rule)",
                    stored.artifact_id
                ));
            }
            Err(e) => report.skip(format!("artifact {id}: {e}")),
        }
    }
    Ok(())
}

/// `dynamic_flows/*.json`: the generated wrapper flows of scheduled runs, by their `id`.
fn migrate_flows(
    seed: &Seed,
    _dst: &Path,
    store: &Store,
    report: &mut Report,
) -> Result<(), String> {
    let src = &seed.dir;
    let dir = src.join("dynamic_flows");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut batch = Batch::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let flow: Value = match read_capped(&path, MAX_FILE)
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                report.skip(format!("generated flow {}: {e}", path.display()));
                continue;
            }
        };
        let Some(id) = flow
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| plain_id(id))
        else {
            report.skip(format!("generated flow {}: no plain id", path.display()));
            continue;
        };
        crate::runner::write_dynamic_flow(&mut batch, id, &flow);
        report.flows += 1;
    }
    store.commit(batch).map_err(|e| e.to_string())
}

/// `workflow_deprecations.json`, when it is the seed's shape.
fn migrate_deprecations(
    seed: &Seed,
    dst: &Path,
    _store: &Store,
    report: &mut Report,
) -> Result<(), String> {
    let src = &seed.dir;
    let path = src.join("workflow_deprecations.json");
    let Ok(bytes) = read_capped(&path, MAX_FILE) else {
        return Ok(());
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.get("bundles").is_some_and(Value::is_object) => {
            std::fs::write(dst.join("workflow_deprecations.json"), &bytes)
                .map_err(|e| e.to_string())
        }
        _ => {
            report.skip(format!(
                "{} is not the seed's deprecations file",
                path.display()
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Report, jsonl_within, plain_id};

    #[test]
    fn an_over_long_line_is_skipped_and_the_next_ones_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("l.jsonl");
        let long = format!("{{\"k\": \"{}\"}}", "x".repeat(100));
        let exact = "{\"a\": 12345678}"; // 16 bytes: exactly the cap
        std::fs::write(&path, format!("{long}\n{exact}\n{long}\n{{\"b\": 1}}")).expect("write");
        let mut report = Report::default();
        let got = jsonl_within(&path, "ledger", &mut report, 16);
        let lines: Vec<usize> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![2, 4]);
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        assert!(
            report
                .skipped
                .iter()
                .all(|s| s.contains("longer than 16 bytes"))
        );
    }

    #[test]
    fn only_plain_ids_become_run_ids() {
        for ok in [
            "75d2ed2e-fcde-42c8-8173-68e8be0b2b3b",
            "session_memory_sess-1",
            "scheduled:abc",
        ] {
            assert!(plain_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "x\u{0}",
            &"a".repeat(201),
        ] {
            assert!(!plain_id(bad), "{bad:?}");
        }
    }
}
