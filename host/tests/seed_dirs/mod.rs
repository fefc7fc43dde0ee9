//! What the two `migrate --from-seed` tests share: running the command, copying a fixture dir, and checking that
//! the real server serves what the seed left (runs and their ledgers, command outcomes, the attachment) and goes on
//! with the ask-user run it left waiting.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::binary::{self, Server};

/// The attachment the seed stored for session `sess-1` (the same id in both fixtures).
pub const ATTACHMENT: &str = "272c0a48a0ba374927a7fe3162374c48";

/// `abstractgateway migrate --from-seed FROM --data-dir TO EXTRA...`.
pub fn migrate(from: &Path, to: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
        .args(["migrate", "--from-seed"])
        .arg(from)
        .arg("--data-dir")
        .arg(to)
        .args(extra)
        .env_remove("ABSTRACTGATEWAY_DATA_DIR")
        .output()
        .expect("binary runs")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// The runs of a seed fixture: `(run id, status the seed left it in)`, and the ledgers it wrote.
pub struct SeedRuns<'a> {
    pub runs: &'a [(&'a str, &'a str)],
    pub ledger: &'a dyn Fn(&str) -> Vec<Value>,
}

/// Each run has the seed's status and ledger (record for record), `commands` kept the seed's `applied` outcome,
/// and the attachment its id and bytes.
pub async fn served_as_the_seed_left_it(s: &Server, seed: &SeedRuns<'_>, commands: &[&str]) {
    for (run, status) in seed.runs {
        let (st, v) = s.get(&format!("/api/gateway/runs/{run}")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["status"], *status, "{run}: {v}");
        let ledger = s.ledger(run).await;
        assert!(!ledger.is_empty(), "{run}");
        assert_eq!(ledger, (seed.ledger)(run), "{run}");
    }
    // What the seed applied keeps its outcome and is not applied again.
    for id in commands {
        let (st, v) = s.get(&format!("/api/gateway/commands/{id}")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["outcome"]["status"], "applied", "{id}: {v}");
    }
    let r = binary::client()
        .get(s.url(&format!(
            "/api/gateway/runs/session_memory_sess-1/artifacts/{ATTACHMENT}/content"
        )))
        .bearer_auth(binary::TOKEN)
        .send()
        .await
        .expect("content");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.expect("bytes").as_ref(),
        b"RIFFxxxxWAVEfake audio bytes"
    );
}

/// The ask-user run the seed left waiting is answered here and completes, its ledger continuing the seed's.
pub async fn the_waiting_ask_goes_on(s: &Server, run: &str, seed_ledger: Vec<Value>) {
    let (st, v) = s
        .command(
            "answer-bob",
            run,
            "resume",
            json!({"wait_key": format!("user:{run}:ask"), "payload": {"response": "blue"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let done = s.wait_status(run, "completed").await;
    assert!(done["output"].to_string().contains("blue"), "{done}");
    let ledger = s.ledger(run).await;
    assert_eq!(ledger[..seed_ledger.len()], seed_ledger[..]);
    assert!(ledger.len() > seed_ledger.len());
}

/// A migration of a hostile copy of a fixture: it succeeds with the fixture's 6 runs and 2 commands, and stderr
/// names each unsound item in `says`.
pub fn migrated_around(out: &Output, says: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("6 runs"), "{stdout}");
    assert!(stdout.contains("2 commands"), "{stdout}");
    for said in says {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
}
