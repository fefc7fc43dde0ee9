//! The bytes of a log entry: batches of store operations, in a small length-prefixed binary form.
//!
//! The fields are already-encoded JSON or keys, so a binary frame copies them as they are instead of escaping them
//! into another JSON document. Decoding is strict and never panics: a log entry is input from the network.

use crate::run::{CommandRecord, RunStatus};

use super::super::batch::Op;
use super::super::{StoreError, keys};

/// First bytes of every entry: format 1.
const MAGIC: &[u8; 4] = b"AGL1";

const OP_RUN: u8 = 1;
const OP_LEDGER: u8 = 2;
const OP_OUTCOME: u8 = 3;
const OP_CURSOR: u8 = 4;
const OP_META: u8 = 5;
const OP_DELETE_META: u8 = 6;

const INTAKE_BATCH: u8 = 1;
const INTAKE_COMMAND: u8 = 2;

/// A decoded intake entry.
pub(crate) enum Intake {
    /// Changes applied together, or not at all when `guard` names a meta key that already exists.
    Batch { guard: Option<String>, ops: Vec<Op> },
    /// A new command; its seq is the entry's log position.
    Command(CommandRecord),
}

/// Encodes an owner entry: the ops of each batch of one group, in order.
pub(crate) fn encode_owned<'a>(batches: impl Iterator<Item = &'a [Op]>) -> Vec<u8> {
    let mut w = Writer::new();
    let batches: Vec<&[Op]> = batches.collect();
    w.u32(batches.len() as u32);
    for ops in batches {
        w.ops(ops);
    }
    w.0
}

/// Decodes an owner entry into its batches.
pub(crate) fn decode_owned(bytes: &[u8]) -> Result<Vec<Vec<Op>>, StoreError> {
    let mut r = Reader::new(bytes)?;
    let n = r.count()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(r.ops()?);
    }
    r.end()?;
    Ok(out)
}

/// Encodes an intake batch.
pub(crate) fn encode_intake_batch(guard: Option<&str>, ops: &[Op]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(INTAKE_BATCH);
    w.opt_str(guard);
    w.ops(ops);
    w.0
}

/// Encodes an intake command (its seq is left to the log).
pub(crate) fn encode_intake_command(record: &CommandRecord) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(record).map_err(|e| {
        StoreError::Invalid(format!(
            "command {} cannot be encoded: {e}",
            record.command_id
        ))
    })?;
    let mut w = Writer::new();
    w.u8(INTAKE_COMMAND);
    w.bytes(&json);
    Ok(w.0)
}

/// Decodes an intake entry.
pub(crate) fn decode_intake(bytes: &[u8]) -> Result<Intake, StoreError> {
    let mut r = Reader::new(bytes)?;
    let out = match r.u8()? {
        INTAKE_BATCH => {
            let guard = r.opt_str()?;
            if let Some(g) = &guard {
                keys::check_id("meta key", g)?;
            }
            Intake::Batch {
                guard,
                ops: r.ops()?,
            }
        }
        INTAKE_COMMAND => {
            let record: CommandRecord = serde_json::from_slice(r.bytes()?)
                .map_err(|e| corrupt(format!("intake command: {e}")))?;
            keys::check_id("command_id", &record.command_id)?;
            Intake::Command(record)
        }
        other => return Err(corrupt(format!("unknown intake kind {other}"))),
    };
    r.end()?;
    Ok(out)
}

fn corrupt(msg: String) -> StoreError {
    StoreError::Corrupt(format!("log entry: {msg}"))
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(MAGIC.to_vec())
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
            None => self.u8(0),
        }
    }
    fn ops(&mut self, ops: &[Op]) {
        self.u32(ops.len() as u32);
        for op in ops {
            self.op(op);
        }
    }
    fn op(&mut self, op: &Op) {
        match op {
            Op::Run {
                run_id,
                json,
                created_key,
                index,
                status,
                parent,
                ..
            } => {
                self.u8(OP_RUN);
                self.bytes(run_id.as_bytes());
                self.bytes(json);
                self.bytes(created_key);
                self.bytes(index);
                self.u8(status_code(*status));
                self.opt_str(parent.as_deref());
            }
            Op::Ledger { run_id, seq, json } => {
                self.u8(OP_LEDGER);
                self.bytes(run_id.as_bytes());
                self.u64(*seq);
                self.bytes(json);
            }
            Op::Outcome { command_id, json } => {
                self.u8(OP_OUTCOME);
                self.bytes(command_id.as_bytes());
                self.bytes(json);
            }
            Op::Cursor(seq) => {
                self.u8(OP_CURSOR);
                self.u64(*seq);
            }
            Op::Meta { key, value } => {
                self.u8(OP_META);
                self.bytes(key.as_bytes());
                self.bytes(value);
            }
            Op::DeleteMeta { key } => {
                self.u8(OP_DELETE_META);
                self.bytes(key.as_bytes());
            }
        }
    }
}

fn status_code(s: RunStatus) -> u8 {
    match s {
        RunStatus::Running => 0,
        RunStatus::Waiting => 1,
        RunStatus::Completed => 2,
        RunStatus::Failed => 3,
        RunStatus::Cancelled => 4,
    }
}

fn status_of(code: u8) -> Result<RunStatus, StoreError> {
    Ok(match code {
        0 => RunStatus::Running,
        1 => RunStatus::Waiting,
        2 => RunStatus::Completed,
        3 => RunStatus::Failed,
        4 => RunStatus::Cancelled,
        other => return Err(corrupt(format!("unknown run status {other}"))),
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StoreError> {
        match bytes.strip_prefix(MAGIC.as_slice()) {
            Some(rest) => Ok(Reader(rest)),
            None => Err(corrupt("not a format-1 entry".to_string())),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("truncated".to_string()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        keys::decode_seq(self.take(8)?).ok_or_else(|| corrupt("truncated".to_string()))
    }
    /// A count of items that each take at least one byte, so a hostile count cannot reserve more than the entry.
    fn count(&mut self) -> Result<usize, StoreError> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(corrupt(format!("count {n} exceeds the entry")));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| corrupt("an id is not UTF-8".to_string()))
    }
    fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            other => Err(corrupt(format!("bad option tag {other}"))),
        }
    }
    fn id(&mut self, what: &str) -> Result<String, StoreError> {
        let s = self.str()?;
        keys::check_id(what, &s)?;
        Ok(s)
    }
    fn ops(&mut self) -> Result<Vec<Op>, StoreError> {
        let n = self.count()?;
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            ops.push(self.op()?);
        }
        Ok(ops)
    }
    fn op(&mut self) -> Result<Op, StoreError> {
        Ok(match self.u8()? {
            OP_RUN => {
                let run_id = self.id("run_id")?;
                let json = self.bytes()?.to_vec();
                let created_key = self.bytes()?.to_vec();
                let index = self.bytes()?.to_vec();
                let status = status_of(self.u8()?)?;
                let parent = self.opt_str()?;
                if let Some(p) = &parent {
                    keys::check_id("parent_run_id", p)?;
                }
                Op::Run {
                    run_id,
                    json,
                    created_key,
                    index,
                    entry: None,
                    status,
                    parent,
                }
            }
            OP_LEDGER => Op::Ledger {
                run_id: self.id("run_id")?,
                seq: self.u64()?,
                json: self.bytes()?.to_vec(),
            },
            OP_OUTCOME => Op::Outcome {
                command_id: self.id("command_id")?,
                json: self.bytes()?.to_vec(),
            },
            OP_CURSOR => Op::Cursor(self.u64()?),
            OP_META => Op::Meta {
                key: self.id("meta key")?,
                value: self.bytes()?.to_vec(),
            },
            OP_DELETE_META => Op::DeleteMeta {
                key: self.id("meta key")?,
            },
            other => return Err(corrupt(format!("unknown op {other}"))),
        })
    }
    fn end(&self) -> Result<(), StoreError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!("{} trailing bytes", self.0.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops() -> Vec<Op> {
        vec![
            Op::Run {
                run_id: "r1".into(),
                json: b"{\"run_id\":\"r1\"}".to_vec(),
                created_key: keys::created_key("2026", "r1"),
                index: b"{}".to_vec(),
                entry: None,
                status: RunStatus::Waiting,
                parent: Some("p".into()),
            },
            Op::Ledger {
                run_id: "r1".into(),
                seq: 7,
                json: b"{}".to_vec(),
            },
            Op::Outcome {
                command_id: "c".into(),
                json: b"{}".to_vec(),
            },
            Op::Cursor(9),
            Op::Meta {
                key: "k".into(),
                value: vec![0, 255],
            },
            Op::DeleteMeta { key: "k".into() },
        ]
    }

    #[test]
    fn owned_entries_round_trip() {
        let a = sample_ops();
        let b = vec![Op::Cursor(1)];
        let bytes = encode_owned([a.as_slice(), b.as_slice()].into_iter());
        let back = decode_owned(&bytes).expect("decodes");
        assert_eq!(back.len(), 2);
        assert_eq!(encode_owned(back.iter().map(Vec::as_slice)), bytes);
    }

    #[test]
    fn intake_entries_round_trip() {
        let ops = sample_ops();
        let bytes = encode_intake_batch(Some("idem"), &ops);
        match decode_intake(&bytes).expect("decodes") {
            Intake::Batch { guard, ops: back } => {
                assert_eq!(guard.as_deref(), Some("idem"));
                assert_eq!(encode_intake_batch(Some("idem"), &back), bytes);
            }
            Intake::Command(_) => panic!("a batch came back as a command"),
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let bytes = encode_owned([sample_ops().as_slice()].into_iter());
        for cut in 0..bytes.len() {
            assert!(decode_owned(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_owned(&trailing).is_err());
        // A hostile count does not reserve memory beyond the entry.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_owned(&huge).is_err());
        assert!(decode_intake(b"AGL1\x09").is_err());
        assert!(decode_intake(b"nope").is_err());
    }

    #[test]
    fn ids_that_break_keys_are_refused_at_decode() {
        let bad = vec![Op::Meta {
            key: "a\0b".into(),
            value: vec![],
        }];
        let bytes = encode_owned([bad.as_slice()].into_iter());
        assert!(matches!(decode_owned(&bytes), Err(StoreError::Invalid(_))));
    }
}
