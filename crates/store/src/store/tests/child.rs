//! Runs one `#[ignore]`d test of this binary as a separate process, so tests can hold locks across processes and
//! SIGKILL a writer mid-flight.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Environment variable that tells a child test which data dir to use (absent in normal test runs).
pub(crate) const CHILD_DIR_VAR: &str = "AG_STORE_TEST_CHILD_DIR";

/// A child process and the lines it prints.
pub(crate) struct ChildProc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

impl ChildProc {
    /// Starts `test` (a full test path) of the current test binary on `dir`.
    pub fn spawn(test: &str, dir: &Path) -> ChildProc {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_VAR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child test process");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProc {
            child,
            lines,
            seen: Default::default(),
        }
    }

    /// Waits for the first line that `pick` accepts; panics after `within`.
    pub fn wait_for<T>(&self, within: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = pick(&line);
                    self.seen.borrow_mut().push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(e) => panic!("child process gave no expected line within {within:?}: {e}"),
            }
        }
    }

    /// SIGKILLs the child, reaps it and returns every line it printed.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().expect("kill child");
        self.child.wait().expect("reap child");
        let mut rest = self.seen.take();
        // The reader thread ends at EOF, which the kill brings.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            rest.push(line);
        }
        rest
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // Never leave a writer behind when an assertion fails first.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The data dir a child test must use, or None in a normal test run (the child test then does nothing).
pub(crate) fn child_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os(CHILD_DIR_VAR)?;
    // libtest has printed "test <name> ... " without a newline; end it so our lines parse cleanly.
    println!();
    Some(dir.into())
}
