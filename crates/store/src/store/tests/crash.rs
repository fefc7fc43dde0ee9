//! SIGKILL a writer mid-flight: everything it saw acknowledged is there after reopen, nothing torn or reordered.

use std::time::{Duration, Instant};

use super::child::{ChildProc, child_dir};
use crate::run::RunStatus;
use crate::store::testutil::{command, run_state, step};
use crate::store::{Batch, Store};

/// Child side of `acknowledged_writes_survive_sigkill`: commits until killed, printing what was acknowledged.
#[test]
#[ignore = "run as a child process by acknowledged_writes_survive_sigkill"]
fn child_writer() {
    let Some(dir) = child_dir() else { return };
    let store = Store::open(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    std::thread::scope(|s| {
        // A second writer makes groups hold more than one request.
        let commands = store.clone();
        s.spawn(move || {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let a = commands
                    .append_command(command(&format!("c{i}"), "r"))
                    .unwrap();
                println!("cmd {}", a.seq);
            }
        });
        let mut run = run_state("r", 1, RunStatus::Running);
        let mut n = 0u64;
        while Instant::now() < deadline {
            n += 1;
            // Batch n: the run state says 2n records, and records 2n-1 and 2n come with it.
            run.ledger_len = 2 * n;
            run.vars.insert("n".into(), n.into());
            let mut b = Batch::new();
            b.put_run(&run);
            b.append_ledger("r", 2 * n - 1, &step(&run, 2 * n - 1));
            b.append_ledger("r", 2 * n, &step(&run, 2 * n));
            store.commit(b).unwrap();
            println!("acked {n}");
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let child = ChildProc::spawn("store::tests::crash::child_writer", dir.path());
    let parse = |prefix: &str, line: &str| {
        line.strip_prefix(prefix)
            .and_then(|n| n.parse::<u64>().ok())
    };
    child.wait_for(Duration::from_secs(60), |l| {
        parse("acked ", l).filter(|n| *n >= 150)
    });
    child.wait_for(Duration::from_secs(60), |l| {
        parse("cmd ", l).filter(|n| *n >= 20)
    });
    let rest = child.kill();
    let acked = rest
        .iter()
        .filter_map(|l| parse("acked ", l))
        .max()
        .unwrap_or(150);
    let acked_cmd = rest
        .iter()
        .filter_map(|l| parse("cmd ", l))
        .max()
        .unwrap_or(20);

    let store = Store::open(dir.path()).unwrap();
    let run = store.get_run("r").unwrap().unwrap();
    let len = store.ledger_len("r");
    // Atomic: the state and its records landed together.
    assert_eq!(run.ledger_len, len);
    assert_eq!(run.vars["n"], len / 2);
    assert!(
        len / 2 >= acked,
        "acknowledged {acked} batches, found {}",
        len / 2
    );
    // Prefix: every record up to the head, in order, untorn.
    let mut cursor = 0;
    loop {
        let page = store.ledger_after("r", cursor, 500).unwrap();
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert_eq!(e.seq, cursor + 1);
            let rec: serde_json::Value = serde_json::from_str(e.json.get()).unwrap();
            assert_eq!(rec["step_id"], format!("step-{}", e.seq));
            cursor = e.seq;
        }
    }
    assert_eq!(cursor, len);
    let commands = store.commands_after(0, usize::MAX).unwrap();
    println!(
        "acknowledged {acked} batches and {acked_cmd} commands; recovered {} and {}",
        len / 2,
        commands.len()
    );
    assert!(commands.len() as u64 >= acked_cmd);
    for (i, c) in commands.iter().enumerate() {
        assert_eq!(c.seq, i as u64 + 1);
        assert_eq!(c.command_id, format!("c{}", i + 1));
    }
}
