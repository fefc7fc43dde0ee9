//! Engine subprocesses: arguments only (no shell), bounded output, and a deadline after which the child is
//! killed and reaped.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{VoiceError, VoiceErrorCode};

/// Stderr kept for error messages; the rest is drained and dropped.
const STDERR_KEEP: usize = 16 * 1024;

/// What a finished engine produced.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (at most the cap).
    pub stdout: Vec<u8>,
    /// The start of standard error.
    pub stderr: String,
}

/// Reads `r` to the end, keeping at most `keep` bytes; sets `overflow` when more came.
fn drain<R: Read + Send + 'static>(
    mut r: R,
    keep: usize,
    overflow: Option<Arc<AtomicBool>>,
) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = keep.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room
                        && let Some(flag) = &overflow
                    {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        kept
    })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` with `stdin` fed to it; kills it when `timeout` passes or stdout exceeds `max_stdout`.
pub fn run(
    mut cmd: Command,
    program: &str,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max_stdout: usize,
) -> Result<Finished, VoiceError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            VoiceError::unavailable(format!("{program} is not installed (not found on PATH)"))
        }
        _ => VoiceError::unavailable(format!("cannot start {program}: {e}")),
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A thread, so a child that does not read its input cannot block us past the deadline.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let overflow = Arc::new(AtomicBool::new(false));
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        kill(&mut child);
        return Err(VoiceError::internal(format!(
            "{program}: pipes not available"
        )));
    };
    let out = drain(out, max_stdout, Some(overflow.clone()));
    let err = drain(err, STDERR_KEEP, None);
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill(&mut child);
                return Err(VoiceError::internal(format!("{program}: wait failed: {e}")));
            }
        }
        if overflow.load(Ordering::Relaxed) {
            kill(&mut child);
            return Err(VoiceError::too_large(format!(
                "{program} produced more than {max_stdout} bytes"
            )));
        }
        let now = Instant::now();
        if now >= deadline {
            kill(&mut child);
            return Err(VoiceError::retryable(
                VoiceErrorCode::Timeout,
                format!(
                    "{program} did not finish within {} ms and was killed",
                    timeout.as_millis()
                ),
            ));
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if overflow.load(Ordering::Relaxed) {
        return Err(VoiceError::too_large(format!(
            "{program} produced more than {max_stdout} bytes"
        )));
    }
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// The last non-empty line of an engine's stderr, for error messages.
pub fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_child_is_killed_at_the_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let t = Instant::now();
        let e = run(cmd, "sleep", None, Duration::from_millis(200), 1024).unwrap_err();
        assert_eq!(e.code, VoiceErrorCode::Timeout);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn stdin_is_fed_and_output_capped() {
        let cmd = Command::new("cat");
        let f = run(
            cmd,
            "cat",
            Some(b"hello".to_vec()),
            Duration::from_secs(10),
            1024,
        )
        .unwrap();
        assert_eq!(f.stdout, b"hello");
        let cmd = Command::new("cat");
        let e = run(
            cmd,
            "cat",
            Some(vec![b'x'; 100_000]),
            Duration::from_secs(10),
            1000,
        )
        .unwrap_err();
        assert_eq!(e.code, VoiceErrorCode::TooLarge);
    }

    #[test]
    fn a_missing_program_is_unavailable() {
        let cmd = Command::new("no-such-engine-here");
        let e = run(cmd, "no-such-engine-here", None, Duration::from_secs(1), 10).unwrap_err();
        assert_eq!(e.code, VoiceErrorCode::Unavailable);
    }
}
