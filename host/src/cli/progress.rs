//! What a command shows while a component compiles on first use (the Python component takes 10–25 s): a line when
//! it starts and one when it ends, and on a terminal, `run`/`bundle`/`plugin` also tick the seconds meanwhile.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::sync::Mutex;

use crate::plugins::cache::{CompileEvent, on_compile};

/// Components smaller than this compile in well under a second: their compiles are not announced.
const ANNOUNCED_BYTES: usize = 1 << 20;

/// Reports compiles of large components on stderr; with `tick` and a terminal, a seconds counter runs until each
/// compile ends.
pub fn install(tick: bool) {
    let tick = tick && std::io::stderr().is_terminal();
    let tickers: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>> = Arc::default();
    let announced: Arc<Mutex<HashSet<String>>> = Arc::default();
    on_compile(move |event| match event {
        CompileEvent::Started { bytes, .. } if *bytes < ANNOUNCED_BYTES => {}
        CompileEvent::Finished { name, took, .. }
            if !announced.lock().is_ok_and(|mut a| a.remove(name)) && took.as_secs() < 1 => {}
        CompileEvent::Started { name, bytes } => {
            if let Ok(mut a) = announced.lock() {
                a.insert(name.clone());
            }
            eprintln!(
                "compiling component {name} ({:.1} MB) for its first use on this data dir (later starts reuse it)…",
                *bytes as f64 / 1_048_576.0
            );
            if tick {
                let done = Arc::new(AtomicBool::new(false));
                if let Ok(mut t) = tickers.lock() {
                    t.insert(name.clone(), done.clone());
                }
                let started = Instant::now();
                let _ = std::thread::Builder::new()
                    .name("compile-progress".into())
                    .spawn(move || {
                        while !done.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(250));
                            if !done.load(Ordering::Relaxed) {
                                eprint!("\r  compiling… {} s", started.elapsed().as_secs());
                                let _ = std::io::stderr().flush();
                            }
                        }
                    });
            }
        }
        CompileEvent::Finished { name, took, ok } => {
            if let Some(done) = tickers.lock().ok().and_then(|mut t| t.remove(name)) {
                done.store(true, Ordering::Relaxed);
                eprint!("\r\x1b[2K");
            }
            let verb = if *ok {
                "compiled"
            } else {
                "compiling failed for"
            };
            eprintln!("{verb} component {name} in {:.1} s", took.as_secs_f64());
        }
    });
}
