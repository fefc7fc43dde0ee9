//! `abstractgateway migrate --from-seed` on a data dir written by the real seed with its sqlite backend
//! (`tests/fixtures/seed-sqlite-data-dir`, see its README): the real server then serves the seed's runs, ledgers
//! (record for record), command outcomes and attachment, and goes on with the run the seed left waiting. A hostile
//! database migrates what is sound and reports the rest; one that is not a seed database is refused.

mod binary;
mod seed_dirs;

use std::path::{Path, PathBuf};
use std::process::Output;

use binary::{Server, copy_bundles};
use rusqlite::{Connection, params};
use seed_dirs::{SeedRuns, copy_dir};
use serde_json::Value;

/// The runs the seed wrote (see the fixture's README).
const ASK_BOB: &str = "1062586d-0383-411a-b141-c888ce09a00b";
const ASK_CY: &str = "10054978-3f44-470b-a08b-a51d0b10d554";
const WAIT_EVENT: &str = "240c2448-d79a-4e6f-9358-ddb599be2ffa";
const ECHO_ADA: &str = "5efdf68f-28c3-4371-aaf1-a8c620cf2512";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-sqlite-data-dir")
}

fn migrate(from: &Path, to: &Path, extra: &[&str]) -> Output {
    seed_dirs::migrate(from, to, extra)
}

/// The run's ledger as the seed's database holds it.
fn seed_ledger(run: &str) -> Vec<Value> {
    let db = Connection::open(fixture().join("gateway.sqlite3")).expect("seed db");
    let mut stmt = db
        .prepare("SELECT record_json FROM ledger WHERE run_id = ?1 ORDER BY seq")
        .expect("query");
    stmt.query_map(params![run], |r| r.get::<_, String>(0))
        .expect("rows")
        .map(|r| serde_json::from_str(&r.expect("row")).expect("a record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_sqlite_data_dir_is_served_and_its_waiting_runs_go_on() {
    let dir = tempfile::tempdir().expect("tmp");
    // The migration only reads the seed's database: the fixture itself is the source.
    let before = std::fs::read(fixture().join("gateway.sqlite3")).expect("db");
    let out = migrate(&fixture(), &dir.path().join("data"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("6 runs, 11 ledger records, 2 commands (2 applied by the seed), 5 artifacts"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(fixture().join("gateway.sqlite3")).expect("db"),
        before
    );
    copy_bundles(&dir.path().join("flows"));
    let s = Server::start_in(dir.path(), &[]).await;

    let seed = SeedRuns {
        runs: &[
            (ECHO_ADA, "completed"),
            (ASK_CY, "completed"),
            (ASK_BOB, "waiting"),
            (WAIT_EVENT, "waiting"),
        ],
        ledger: &seed_ledger,
    };
    seed_dirs::served_as_the_seed_left_it(&s, &seed, &["answer-cy", "late-one"]).await;
    let (_, ada) = s.get(&format!("/api/gateway/runs/{ECHO_ADA}")).await;
    assert_eq!(ada["session_id"], "sess-1");
    let seed_ada: Value = serde_json::from_str(
        &Connection::open(fixture().join("gateway.sqlite3"))
            .expect("seed db")
            .query_row(
                "SELECT run_json FROM runs WHERE run_id = ?1",
                params![ECHO_ADA],
                |r| r.get::<_, String>(0),
            )
            .expect("run"),
    )
    .expect("run JSON");
    assert_eq!(ada["output"], seed_ada["output"], "{ada}");
    assert!(ada["output"]["response"].is_string(), "{ada}");
    seed_dirs::the_waiting_ask_goes_on(&s, ASK_BOB, seed_ledger(ASK_BOB)).await;
}

#[test]
fn a_hostile_seed_database_migrates_what_is_sound_and_reports_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("seed");
    copy_dir(&fixture(), &src);
    {
        let db = Connection::open(src.join("gateway.sqlite3")).expect("db");
        // A run id that is a path, a run_json that is a blob, one that is not JSON, one naming another run;
        // ledger rows that are not objects or not text, a ledger without a run; a command with an empty type
        // (the seed's schema has no NULL type) and one whose payload is not JSON.
        let run_json: String = db
            .query_row(
                "SELECT run_json FROM runs WHERE run_id = ?1",
                params![ECHO_ADA],
                |r| r.get(0),
            )
            .expect("a run");
        for (id, json) in [
            ("../../etc/evil", Value::from("{}")),
            ("impostor", Value::from(run_json.clone())),
            ("broken", Value::from("{not json")),
        ] {
            db.execute(
                "INSERT INTO runs (run_id, workflow_id, status, run_json) VALUES (?1, 'w', 'completed', ?2)",
                params![id, json.as_str()],
            )
            .expect("insert");
        }
        db.execute(
            "INSERT INTO runs (run_id, workflow_id, status, run_json) VALUES ('blobby', 'w', 'completed', ?1)",
            params![b"{}".to_vec()],
        )
        .expect("insert");
        db.execute(
            "INSERT INTO ledger (run_id, seq, record_json) VALUES (?1, 100, '[1, 2]'), (?1, 101, 'garbage')",
            params![ASK_CY],
        )
        .expect("insert");
        db.execute(
            "INSERT INTO ledger (run_id, seq, record_json) VALUES (?1, 102, ?2)",
            params![ASK_CY, b"{}".to_vec()],
        )
        .expect("insert");
        db.execute(
            "INSERT INTO ledger (run_id, seq, record_json) VALUES ('orphan', 1, '{}')",
            [],
        )
        .expect("insert");
        // One record past the 64 MiB cap: reported from its size, never loaded.
        db.execute(
            "INSERT INTO ledger (run_id, seq, record_json) VALUES (?1, 103, printf('%.*c', 67108865, 'x'))",
            params![ASK_CY],
        )
        .expect("insert");
        db.execute(
            "INSERT INTO commands (command_id, run_id, type, payload_json, ts) VALUES \
             ('no-type', 'r', '', '{}', 't'), ('bad-payload', 'r', 'pause', '{nope', 't')",
            [],
        )
        .expect("insert");
    }
    seed_dirs::migrated_around(
        &migrate(&src, &tmp.path().join("data"), &[]),
        &[
            "run \"../../etc/evil\" of the seed database: not a plain id",
            "run \"impostor\" of the seed database: names run",
            "run \"broken\" of the seed database",
            "run \"blobby\" of the seed database: run_json is not text",
            "seq 100: not a JSON object",
            "seq 101: not a JSON object",
            "seq 102: record_json is not text",
            "seq 103: longer than 67108864 bytes",
            "the ledger of run \"orphan\" has no readable run",
            "command no-type: invalid store input: command type must not be empty",
            "payload_json is not JSON",
        ],
    );
    assert!(!tmp.path().join("etc").exists());
}

#[test]
fn a_database_that_is_not_the_seeds_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A `runs` that is a view (it could compute anything) is not a seed database.
    let src = tmp.path().join("view");
    std::fs::create_dir_all(&src).expect("dir");
    Connection::open(src.join("gateway.sqlite3"))
        .expect("db")
        .execute_batch(
            "CREATE TABLE t (x); CREATE VIEW runs AS SELECT x AS run_id, x AS run_json FROM t;",
        )
        .expect("schema");
    let out = migrate(&src, &tmp.path().join("data"), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("runs is a view, not a table"),
        "{out:?}"
    );
    // Not a database at all, named explicitly.
    let junk = tmp.path().join("junk.sqlite3");
    std::fs::write(&junk, b"this is not a database").expect("write");
    let out = migrate(
        &src,
        &tmp.path().join("data2"),
        &["--seed-db", &junk.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.sqlite3"),
        "{out:?}"
    );
    // A database without a runs table.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    Connection::open(other.join("gateway.sqlite3"))
        .expect("db")
        .execute_batch("CREATE TABLE something (x);")
        .expect("schema");
    let out = migrate(&other, &tmp.path().join("data3"), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no runs table"),
        "{out:?}"
    );
}
