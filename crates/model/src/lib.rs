//! The run model every layer of the gateway shares: a run's state, its statuses and waits (`run`), and
//! the seed's ISO-8601 time formats (`time`). Data only: no IO, no threads.

pub mod run;
pub mod time;
