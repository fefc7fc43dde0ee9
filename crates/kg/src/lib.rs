//! Knowledge-graph memory (the seed's AbstractMemory triple store and its `memory_kg_*` effects).
//!
//! - [`graph`]: the durable triple store, kept in the gateway's own store (so it is written by the same committer,
//!   crash-safe with everything else and replicated in cluster mode);
//! - [`effects`]: `MEMORY_KG_ASSERT` / `_QUERY` / `_RESOLVE` as the seed runs them, called by the sandbox's `kg`
//!   capability for the built-in KG node component;
//! - [`packets`] and [`tokens`]: the token-budgeted "active memory" text a model reads.
//!
//! What it must not do: decide who may read which owner's graph from anything but the calling run (the caller
//! passes a [`effects::RunInfo`] built by the host), or search by similarity without an embeddings model.

pub mod effects;
pub mod graph;
pub mod model;
pub mod packets;
pub mod semantics;
pub mod tokens;

pub use graph::{Graph, KgError, Query};
pub use model::Assertion;

#[cfg(test)]
mod tests;
