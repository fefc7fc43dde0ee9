//! Store tests: real databases in temp dirs; crash and lock tests run a child copy of this test binary. The tests
//! of the store's contract (commit, commands, ledger, runs) run against both the embedded store and a replica (see
//! `backend`).

mod backend;
mod child;
mod commands;
mod commit;
mod crash;
mod ledger;
mod lock;
mod replica;
mod runs;
