//! `abstractgateway migrate --from-seed` on a data dir written by the real seed (`tests/fixtures/seed-data-dir`, see
//! its README): the real server then serves the seed's runs, ledgers, command outcomes and artifacts, and goes on
//! with the runs the seed left waiting. A hostile copy of the data dir migrates what is sound and reports the rest.

mod binary;
mod seed_dirs;

use std::path::{Path, PathBuf};
use std::process::Output;

use binary::{Server, copy_bundles};
use seed_dirs::{ATTACHMENT, SeedRuns, copy_dir};
use serde_json::{Value, json};

/// The runs the seed wrote (see the fixture's README).
const ECHO_ADA: &str = "75d2ed2e-fcde-42c8-8173-68e8be0b2b3b";
const ASK_BOB: &str = "73463121-9ff0-4530-8aaa-926f2922c479";
const ASK_CY: &str = "e4f0d5ff-afd2-447a-abed-a4f7ec1fb298";
const WAIT_EVENT: &str = "6c3b5fce-d6a7-4366-a43c-6cf016074a00";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-data-dir")
}

fn migrate(from: &Path, to: &Path) -> Output {
    seed_dirs::migrate(from, to, &[])
}

fn seed_ledger(run: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture().join(format!("ledger_{run}.jsonl")))
        .expect("seed ledger")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_data_dir_is_served_and_its_waiting_runs_go_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = migrate(&fixture(), &dir.path().join("data"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("6 runs") && stdout.contains("2 commands (2 applied by the seed)"),
        "{stdout}"
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
    seed_dirs::served_as_the_seed_left_it(&s, &seed, &["answer-cy"]).await;
    let (_, ada) = s.get(&format!("/api/gateway/runs/{ECHO_ADA}")).await;
    assert_eq!(ada["session_id"], "sess-1");
    seed_dirs::the_waiting_ask_goes_on(&s, ASK_BOB, seed_ledger(ASK_BOB)).await;

    // Into a data dir that holds runs: refused, nothing changed.
    drop(s);
    let again = migrate(&fixture(), &dir.path().join("data"));
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds runs"));
}

#[test]
fn a_hostile_seed_dir_migrates_what_is_sound_and_reports_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("seed");
    copy_dir(&fixture(), &src);
    // A run file that is not JSON, one naming another run, one whose name is not a plain id, a ledger line that is
    // garbage, a command without a type, an artifact whose blob is another file or was tampered with.
    std::fs::write(src.join("run_broken.json"), "{not json").expect("write");
    let other = std::fs::read(src.join(format!("run_{ECHO_ADA}.json"))).expect("read");
    std::fs::write(src.join("run_impostor.json"), other).expect("write");
    std::fs::write(src.join("run_a b.json"), "{}").expect("write");
    let ledger = src.join(format!("ledger_{ASK_CY}.jsonl"));
    let mut text = std::fs::read_to_string(&ledger).expect("read");
    text.push_str("garbage line\n[1,2]\n");
    std::fs::write(&ledger, text).expect("write");
    let mut commands = std::fs::read_to_string(src.join("commands.jsonl")).expect("read");
    commands.push_str("{\"command_id\": \"x\", \"run_id\": \"y\", \"seq\": 9}\nnot json\n");
    std::fs::write(src.join("commands.jsonl"), commands).expect("write");
    let refs = src.join("artifacts/refs");
    std::fs::write(
        refs.join("0123456789abcdef0123456789abcdef.meta"),
        json!({"run_id": "x", "blob_id": "../../../../etc/passwd", "content_type": "text/plain"})
            .to_string(),
    )
    .expect("write");
    let meta: Value = serde_json::from_slice(
        &std::fs::read(refs.join(format!("{ATTACHMENT}.meta"))).expect("read"),
    )
    .expect("meta");
    let blob = src.join(format!(
        "artifacts/blobs/{}.bin",
        meta["blob_id"].as_str().expect("blob id")
    ));
    std::fs::write(&blob, b"tampered").expect("write");

    seed_dirs::migrated_around(
        &migrate(&src, &tmp.path().join("data")),
        &[
            "run_broken.json",
            "names run",
            "run_a b.json: not a plain id",
            "line",
            "missing command_id, run_id or type",
            "is not a sha256",
            "does not match its sha256",
        ],
    );

    // Not a seed data dir at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = migrate(&empty, &tmp.path().join("data2"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no seed runs"));
}
