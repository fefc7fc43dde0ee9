//! Provider tests over real HTTP on loopback: the shared fake LLM (a Python process) and small axum
//! servers speaking the providers' wire formats.

mod anthropic_wire;
mod config_rules;
mod failures;
mod fake_llm;
mod support;
