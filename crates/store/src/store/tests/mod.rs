//! Store tests: real databases in temp dirs; crash and lock tests run a child copy of this test binary. The
//! store's contract (commit, commands, ledger, runs) is in `crate::contract`, run on every backend.

mod active_listing;
mod child;
mod crash;
mod lock;
mod replica;
mod scope_indexes;
