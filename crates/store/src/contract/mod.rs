//! The store's contract: what every way of opening a store must do (commit, commands, ledger, runs), written
//! once against a [`Backend`]. This crate's tests run every case on the embedded store and on a replica of the
//! in-process log; the cluster crate runs them on a replica of a real JetStream log (feature `contract`).

mod backend;
mod commands;
mod commit;
mod ledger;
mod runs;

pub use backend::{Backend, ExternalLog, Opened};

/// One contract case: a plain or an async test body.
#[derive(Clone, Copy)]
pub enum Case {
    Sync(fn(Backend)),
    Async(fn(Backend) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>),
}

/// Lists the cases once: [`cases`] for other crates, and here one `#[test]` per case and backend.
macro_rules! contract {
    ($($module:ident :: $name:ident $(($kind:ident))?),* $(,)?) => {
        /// Every case of the contract, by name.
        pub fn cases() -> Vec<(&'static str, Case)> {
            vec![$((concat!(stringify!($module), "::", stringify!($name)), contract!(@case $module::$name $($kind)?))),*]
        }

        #[cfg(test)]
        mod generated {
            $(contract!(@test $module::$name $($kind)?);)*
        }
    };
    (@case $module:ident::$name:ident) => { Case::Sync($module::$name) };
    (@case $module:ident::$name:ident async) => { Case::Async(|b| Box::pin($module::$name(b))) };
    (@test $module:ident::$name:ident) => {
        mod $name {
            use super::super::{Backend, $module};

            #[test]
            fn embedded() {
                $module::$name(Backend::Embedded)
            }

            #[test]
            fn replica() {
                $module::$name(Backend::replica())
            }
        }
    };
    (@test $module:ident::$name:ident async) => {
        mod $name {
            use super::super::{Backend, $module};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $module::$name(Backend::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn replica() {
                $module::$name(Backend::replica()).await
            }
        }
    };
}

contract! {
    commands::same_command_id_twice_returns_the_original_seq,
    commands::concurrent_appends_get_distinct_gapless_seqs,
    commands::seq_survives_reopen,
    commands::missing_fields_are_refused_or_filled,
    commands::outcome_and_cursor_round_trip,
    commands::watch_commands_wakes_on_append(async),
    commands::watch_outcomes_wakes_when_an_outcome_is_durable(async),
    commit::batch_lands_atomically_and_survives_reopen,
    commit::duplicate_ledger_seq_is_refused_instead_of_overwriting,
    commit::invalid_ids_refuse_the_whole_batch,
    commit::meta_round_trip_and_empty_batch,
    commit::submitted_batches_apply_in_submission_order,
    commit::concurrent_committers_share_fsyncs_and_all_land,
    commit::commit_async_does_not_need_a_blocking_thread(async),
    commit::a_guarded_batch_is_dropped_whole_once_its_key_exists,
    ledger::pages_follow_the_cursor_and_stop_at_the_head,
    ledger::records_keep_the_seed_key_order,
    ledger::heads_are_recovered_from_disk_after_reopen,
    ledger::watch_run_wakes_after_commit(async),
    runs::list_runs_is_newest_first_and_filters,
    runs::list_runs_decodes_only_what_it_returns,
    runs::a_changed_created_at_lists_the_run_once,
    runs::active_index_follows_the_status,
    runs::children_index_lists_direct_children,
    runs::an_undecodable_run_is_skipped_by_listing_and_reported_to_recovery,
}
