//! Evaluation: from "a sample was stored" to "this alert changed state".
//!
//! Streaming rules are answered from windows the samples update on ingest;
//! periodic rules ask the query slot at their group's interval; both step
//! the same state machines, whose state survives a restart. Recording
//! rules ride along with the periodic ones and write their answers back
//! into the pipeline.
//!
//! # Layout
//!
//! - `engine/` — [`StreamingAlertEngine`], the `common::AlertEngine` that
//!   ties the rest together: the streaming path, periodic answers, the
//!   restore, snapshots, one file each;
//! - `window.rs` — sliding-window count/sum/avg/min/max in amortised O(1)
//!   per sample, late samples included;
//! - `rule_index.rs` — which streaming rules a sample can feed, by metric
//!   and equality matcher, so 10,000 rules cost a sample only the few that
//!   watch its series;
//! - `periodic.rs` — rules a stream cannot answer, as instant queries to
//!   the query slot (`common::QueryEngine::instant`), group by group in
//!   file order;
//! - `recording.rs` — recording rules: the same queries, their answers
//!   named and written back through the queue, stale markers for series
//!   that ended;
//! - `state.rs` — the alert state machine (inactive → pending → firing →
//!   resolved, `for`, `keep_firing_for`), one event per transition;
//! - `store.rs` — the alert states on disk, so a restart neither pages
//!   again nor forgets a `for` timer.
//!
//! Docs: chapter 5, "Polling vs streaming", "The state machine" and
//! "Periodic rules and inhibition".

pub mod engine;
pub mod periodic;
pub mod recording;
pub mod rule_index;
pub mod state;
pub mod store;
pub mod window;

pub use engine::{
    AlertSnapshot, EngineError, EngineOptions, EngineStats, Outcome, StreamingAlertEngine,
};
