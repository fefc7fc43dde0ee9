//! Budgets of a run's state: how deep a variable path, how deeply nested and how large a value, and how
//! large the whole state may be. Every limit is here; `docs/ARCHITECTURE.md` lists them.
//!
//! A run that exceeds one fails with a `RunBudgetExceeded` error (checked after each contained piece of
//! work on the run, before anything is stored), so every stored run stays readable: serde_json refuses
//! documents nested more than 128 levels, and a stored state never comes close to that.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::run::{Obj, RunState, StepRecord, WaitReason};

/// Most segments a dotted variable name may have (`a.b.c` has 3); each segment is one level of nesting.
pub const MAX_VAR_PATH_SEGMENTS: usize = 32;

/// Most levels of arrays and objects in one value of a run's state (a variable, the output, a wait's
/// details, a plugin node's inputs) or of a ledger record. The stored document adds a few levels around
/// it and stays well under serde_json's 128.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Most bytes (encoded as JSON, approximately) of one variable, the output or a ledger record.
pub const MAX_VALUE_BYTES: usize = 8 << 20;

/// Most bytes (encoded as JSON, approximately) of a run's whole state.
pub const MAX_RUN_STATE_BYTES: usize = 16 << 20;

/// Default of [`RunBudgets::steps`].
pub const MAX_STEPS: u64 = 1_000_000;

/// Most iterations of one for/while loop or one loop_limit (the seed's cap for while and for; loop_limit
/// `max` above it fails there). A ForEach is bounded by its list, which is bounded by the value size.
pub const MAX_LOOP_ITERATIONS: u64 = 10_000;

/// Default of [`RunBudgets::child_runs`].
pub const MAX_CHILD_RUNS: u64 = 10_000;

/// Default of [`RunBudgets::ledger_records`].
pub const MAX_LEDGER_RECORDS: u64 = 1_000_000;

/// Default of [`RunBudgets::ledger_bytes`].
pub const MAX_LEDGER_BYTES: u64 = 1 << 30;

/// The per-run budgets an operator may set (`ABSTRACTGATEWAY_RUN_MAX_*`); one set per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBudgets {
    /// Steps a run may take between two waits for time, an event or a user (a wait for a child run does
    /// not count): an exec-edge cycle that never waits fails here.
    pub steps: u64,
    /// Child runs (subflows, agents) a run may start between two such waits.
    pub child_runs: u64,
    /// Records in a run's ledger over its life (a recurrent schedule's wrapper writes a few per
    /// execution of its target).
    pub ledger_records: u64,
    /// Bytes (encoded, approximately) of the records a run writes to its ledger over its life.
    pub ledger_bytes: u64,
}

impl Default for RunBudgets {
    fn default() -> Self {
        RunBudgets {
            steps: MAX_STEPS,
            child_runs: MAX_CHILD_RUNS,
            ledger_records: MAX_LEDGER_RECORDS,
            ledger_bytes: MAX_LEDGER_BYTES,
        }
    }
}

static STEPS: AtomicU64 = AtomicU64::new(MAX_STEPS);
static CHILD_RUNS: AtomicU64 = AtomicU64::new(MAX_CHILD_RUNS);
static LEDGER_RECORDS: AtomicU64 = AtomicU64::new(MAX_LEDGER_RECORDS);
static LEDGER_BYTES: AtomicU64 = AtomicU64::new(MAX_LEDGER_BYTES);

/// Sets the process's budgets (at startup; a zero keeps the default).
pub fn configure(b: RunBudgets) {
    let d = RunBudgets::default();
    let or = |v: u64, d: u64| if v == 0 { d } else { v };
    STEPS.store(or(b.steps, d.steps), Ordering::Relaxed);
    CHILD_RUNS.store(or(b.child_runs, d.child_runs), Ordering::Relaxed);
    LEDGER_RECORDS.store(or(b.ledger_records, d.ledger_records), Ordering::Relaxed);
    LEDGER_BYTES.store(or(b.ledger_bytes, d.ledger_bytes), Ordering::Relaxed);
}

/// The process's budgets.
pub fn budgets() -> RunBudgets {
    RunBudgets {
        steps: STEPS.load(Ordering::Relaxed),
        child_runs: CHILD_RUNS.load(Ordering::Relaxed),
        ledger_records: LEDGER_RECORDS.load(Ordering::Relaxed),
        ledger_bytes: LEDGER_BYTES.load(Ordering::Relaxed),
    }
}

/// The error a run fails with when it exceeds a budget starts with this.
pub const BUDGET_ERROR: &str = "RunBudgetExceeded";

/// The budget a run (or a start, or a child run) exceeded. Its text starts with [`BUDGET_ERROR`] and is the
/// run's failure message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// A dotted variable name with more than [`MAX_VAR_PATH_SEGMENTS`] segments (`name` shortened).
    #[error(
        "{BUDGET_ERROR}: variable name '{name}' has {segments} segments; at most {MAX_VAR_PATH_SEGMENTS} are allowed"
    )]
    VarPath { name: String, segments: usize },
    /// A value nested more than [`MAX_VALUE_DEPTH`] levels; `what` names it.
    #[error(
        "{BUDGET_ERROR}: {what} is nested more than {MAX_VALUE_DEPTH} levels deep; a run's state allows {MAX_VALUE_DEPTH}"
    )]
    TooDeep { what: String },
    /// A value, a ledger record or the whole state over its size limit.
    #[error("{BUDGET_ERROR}: {what} takes about {size} bytes; at most {limit} are allowed")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// [`RunBudgets::steps`] taken without waiting.
    #[error(
        "{BUDGET_ERROR}: the run took {max} steps without waiting for time, an event or a user \
         (an exec-edge cycle?)"
    )]
    Steps { max: u64 },
    /// [`RunBudgets::child_runs`] started without waiting.
    #[error(
        "{BUDGET_ERROR}: the run started {max} child runs without waiting for time, an event or a user"
    )]
    ChildRuns { max: u64 },
    /// The ledger would hold more than [`RunBudgets::ledger_records`] records.
    #[error("{BUDGET_ERROR}: the run's ledger would hold {n} records; at most {max} are allowed")]
    LedgerRecords { n: u64, max: u64 },
    /// The ledger would take more than [`RunBudgets::ledger_bytes`] bytes.
    #[error(
        "{BUDGET_ERROR}: the run's ledger would take about {total} bytes; at most {max} are allowed"
    )]
    LedgerBytes { total: u64, max: u64 },
}

/// Refuses a dotted variable name with more than [`MAX_VAR_PATH_SEGMENTS`] segments.
pub fn check_var_path(name: &str) -> Result<(), BudgetError> {
    let segments = name.split('.').count();
    if segments > MAX_VAR_PATH_SEGMENTS {
        return Err(BudgetError::VarPath {
            name: shorten(name),
            segments,
        });
    }
    Ok(())
}

/// Checks the variables a run would start with (or a child run would be created with).
pub fn check_vars(vars: &Obj) -> Result<(), BudgetError> {
    let mut total = 0;
    for (k, v) in vars {
        total += k.len() + 4 + check_value_named(v, || variable(k))?;
    }
    check_total(total)
}

/// Checks a run's whole state and the records about to be stored with it.
pub fn check_run(run: &RunState, records: &[StepRecord]) -> Result<(), BudgetError> {
    let mut total = BASE_BYTES;
    for (k, v) in &run.vars {
        total += k.len() + 4 + check_value_named(v, || variable(k))?;
    }
    if let Some(out) = &run.output {
        total += check_value(out, "the run's output")?;
    }
    if let Some(w) = &run.waiting {
        if let Some(d) = &w.details {
            total += check_value(d, "the wait's details")?;
        }
        for c in w.choices.iter().flatten() {
            total += check_value(c, "a choice of the wait")?;
        }
        total += w.prompt.as_ref().map_or(0, String::len);
    }
    if let Some(f) = &run.inflight {
        total += check_value(&f.inputs, "the inputs of the plugin node")?;
    }
    for e in &run.control.pending_events {
        total += check_value(e, "an event buffered while paused")?;
    }
    total += run.error.as_ref().map_or(0, String::len);
    check_total(total)?;
    for r in records {
        let mut size = 0;
        for v in [&r.effect, &r.result].into_iter().flatten() {
            size += check_value(v, "a ledger record")?;
        }
        if size > MAX_VALUE_BYTES {
            return Err(too_large("a ledger record", size, MAX_VALUE_BYTES));
        }
    }
    Ok(())
}

/// Counts one step of `run`, refusing it past [`RunBudgets::steps`].
pub fn count_step(run: &mut RunState) -> Result<(), BudgetError> {
    let max = STEPS.load(Ordering::Relaxed);
    if run.usage.steps >= max {
        return Err(BudgetError::Steps { max });
    }
    run.usage.steps += 1;
    Ok(())
}

/// Counts one child run started by `run`, refusing it past [`RunBudgets::child_runs`].
pub fn count_child(run: &mut RunState) -> Result<(), BudgetError> {
    let max = CHILD_RUNS.load(Ordering::Relaxed);
    if run.usage.children >= max {
        return Err(BudgetError::ChildRuns { max });
    }
    run.usage.children += 1;
    Ok(())
}

/// A run that now waits for time, an event or a user starts its step and child budgets again.
pub fn note_wait(run: &mut RunState) {
    let external = run.waiting.as_ref().is_some_and(|w| {
        matches!(
            w.reason,
            WaitReason::Event | WaitReason::Until | WaitReason::User
        )
    });
    if external && run.status == crate::run::RunStatus::Waiting {
        run.usage.steps = 0;
        run.usage.children = 0;
    }
}

/// Counts the records about to be appended to `run`'s ledger, refusing them past
/// [`RunBudgets::ledger_records`] or [`RunBudgets::ledger_bytes`].
pub fn count_records(run: &mut RunState, records: &[StepRecord]) -> Result<(), BudgetError> {
    let (max_n, max_bytes) = (
        LEDGER_RECORDS.load(Ordering::Relaxed),
        LEDGER_BYTES.load(Ordering::Relaxed),
    );
    let n = run.ledger_len + records.len() as u64;
    if n > max_n {
        return Err(BudgetError::LedgerRecords { n, max: max_n });
    }
    let bytes: usize = records
        .iter()
        .flat_map(|r| [&r.effect, &r.result])
        .flatten()
        .map(|v| measure(v, 0).unwrap_or(MAX_VALUE_BYTES) + RECORD_BYTES)
        .sum();
    let total = run.usage.ledger_bytes.saturating_add(bytes as u64);
    if total > max_bytes {
        return Err(BudgetError::LedgerBytes {
            total,
            max: max_bytes,
        });
    }
    run.usage.ledger_bytes = total;
    Ok(())
}

/// Rough encoded size of a record's fixed fields.
const RECORD_BYTES: usize = 256;

/// What a run that exceeded a budget keeps: every variable within budget (the others are dropped), no
/// output, no wait details, no buffered events, no plugin node; if the rest is still too large, no
/// variables at all. The stored state is then readable, and the failure record says what was exceeded.
pub fn shed(run: &mut RunState) {
    run.vars
        .retain(|k, v| check_value(v, k).is_ok_and(|n| n <= MAX_VALUE_BYTES));
    run.output = None;
    run.inflight = None;
    run.control.pending_events.clear();
    if let Some(w) = run.waiting.as_mut() {
        w.details = None;
        w.choices = None;
    }
    if check_run(run, &[]).is_err() {
        run.vars.clear();
    }
}

/// Rough encoded size of the fixed fields of a run.
const BASE_BYTES: usize = 1024;

fn check_total(total: usize) -> Result<(), BudgetError> {
    if total > MAX_RUN_STATE_BYTES {
        return Err(too_large("the run's state", total, MAX_RUN_STATE_BYTES));
    }
    Ok(())
}

/// The approximate encoded size of `v`, or the error naming `what` when it is nested too deeply or too
/// large.
fn check_value(v: &Value, what: &str) -> Result<usize, BudgetError> {
    check_value_named(v, || what.to_string())
}

/// [`check_value`] whose label is built only when the value is refused (every step checks every variable).
fn check_value_named(v: &Value, what: impl FnOnce() -> String) -> Result<usize, BudgetError> {
    let Some(size) = measure(v, 0) else {
        return Err(BudgetError::TooDeep { what: what() });
    };
    if size > MAX_VALUE_BYTES {
        return Err(too_large(&what(), size, MAX_VALUE_BYTES));
    }
    Ok(size)
}

fn variable(name: &str) -> String {
    format!("variable '{}'", shorten(name))
}

fn too_large(what: &str, size: usize, limit: usize) -> BudgetError {
    BudgetError::TooLarge {
        what: what.to_string(),
        size,
        limit,
    }
}

/// Approximate encoded size; `None` past [`MAX_VALUE_DEPTH`] levels (the walk stops there, so its own
/// recursion is bounded).
fn measure(v: &Value, depth: usize) -> Option<usize> {
    match v {
        Value::Null | Value::Bool(_) => Some(5),
        Value::Number(_) => Some(8),
        Value::String(s) => Some(s.len() + 2),
        Value::Array(a) => {
            if depth >= MAX_VALUE_DEPTH {
                return None;
            }
            a.iter()
                .try_fold(2, |n, x| Some(n + 1 + measure(x, depth + 1)?))
        }
        Value::Object(m) => {
            if depth >= MAX_VALUE_DEPTH {
                return None;
            }
            m.iter().try_fold(2, |n, (k, x)| {
                Some(n + k.len() + 4 + measure(x, depth + 1)?)
            })
        }
    }
}

/// A long name cut for an error message.
fn shorten(name: &str) -> String {
    const KEEP: usize = 60;
    match name.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn var_paths_are_bounded() {
        assert!(check_var_path(&vec!["a"; MAX_VAR_PATH_SEGMENTS].join(".")).is_ok());
        let e = check_var_path(&vec!["a"; 200].join("."))
            .expect_err("refused")
            .to_string();
        assert!(e.starts_with(BUDGET_ERROR), "{e}");
        assert!(e.contains("200 segments"), "{e}");
    }

    #[test]
    fn nesting_and_sizes_are_bounded() {
        let mut run = crate::run::new_run_state("w", "n", Obj::new(), None, None, None);
        run.vars.insert("ok".into(), nested(MAX_VALUE_DEPTH));
        assert!(check_run(&run, &[]).is_ok());
        // A run at the limit is stored and read back.
        let bytes = serde_json::to_vec(&run).expect("encode");
        assert!(serde_json::from_slice::<RunState>(&bytes).is_ok());
        run.vars.insert("deep".into(), nested(MAX_VALUE_DEPTH + 1));
        let e = check_run(&run, &[]).expect_err("too deep").to_string();
        assert!(e.contains("variable 'deep'"), "{e}");
        run.vars.remove("deep");
        run.vars
            .insert("big".into(), json!("x".repeat(MAX_VALUE_BYTES)));
        assert!(
            check_run(&run, &[])
                .expect_err("too big")
                .to_string()
                .contains("'big'")
        );
        run.vars.remove("big");
        for i in 0..3 {
            run.vars
                .insert(format!("part{i}"), json!("x".repeat(MAX_VALUE_BYTES - 100)));
        }
        let e = check_run(&run, &[]).expect_err("state too big").to_string();
        assert!(e.contains("the run's state"), "{e}");
        shed(&mut run);
        assert!(check_run(&run, &[]).is_ok());
        let mut rec = StepRecord::new(&run, "n", "completed");
        rec.result = Some(nested(MAX_VALUE_DEPTH + 1));
        assert!(check_run(&run, &[rec]).is_err());
    }

    /// The failure texts stay the ones runs have always recorded.
    #[test]
    fn budget_errors_keep_their_text() {
        let cases = [
            (
                BudgetError::VarPath {
                    name: "a.b".into(),
                    segments: 40,
                },
                "RunBudgetExceeded: variable name 'a.b' has 40 segments; at most 32 are allowed",
            ),
            (
                BudgetError::TooDeep {
                    what: "variable 'x'".into(),
                },
                "RunBudgetExceeded: variable 'x' is nested more than 64 levels deep; a run's state allows 64",
            ),
            (
                BudgetError::TooLarge {
                    what: "the run's state".into(),
                    size: 20,
                    limit: 10,
                },
                "RunBudgetExceeded: the run's state takes about 20 bytes; at most 10 are allowed",
            ),
            (
                BudgetError::Steps { max: 5 },
                "RunBudgetExceeded: the run took 5 steps without waiting for time, an event or a user \
                 (an exec-edge cycle?)",
            ),
            (
                BudgetError::ChildRuns { max: 7 },
                "RunBudgetExceeded: the run started 7 child runs without waiting for time, an event or a user",
            ),
            (
                BudgetError::LedgerRecords { n: 3, max: 2 },
                "RunBudgetExceeded: the run's ledger would hold 3 records; at most 2 are allowed",
            ),
            (
                BudgetError::LedgerBytes { total: 9, max: 8 },
                "RunBudgetExceeded: the run's ledger would take about 9 bytes; at most 8 are allowed",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        let mut run = crate::run::new_run_state("w", "n", Obj::new(), None, None, None);
        run.usage.steps = u64::MAX;
        assert!(matches!(
            count_step(&mut run),
            Err(BudgetError::Steps { .. })
        ));
    }

    #[test]
    fn shedding_keeps_what_fits() {
        let mut run = crate::run::new_run_state("w", "n", Obj::new(), None, None, None);
        run.vars.insert("deep".into(), nested(MAX_VALUE_DEPTH + 5));
        run.vars.insert("kept".into(), json!({"x": 1}));
        run.output = Some(json!(1));
        shed(&mut run);
        assert!(!run.vars.contains_key("deep"));
        assert_eq!(run.vars.get("kept"), Some(&json!({"x": 1})));
        assert_eq!(run.output, None);
    }
}
