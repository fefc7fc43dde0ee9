//! Store tests: real databases in temp dirs; crash and lock tests run a child copy of this test binary.

mod child;
mod commands;
mod commit;
mod crash;
mod ledger;
mod lock;
mod replica;
mod runs;
