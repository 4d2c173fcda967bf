//! # craft4-query — the query slot, rebuilt as a PromQL-style engine
//!
//! phase0 answers one question — the samples of one metric name in one time
//! range — and answers it by scanning the whole file on every request.
//! Prometheus users ask richer questions (`sum by (host) (rate(x[5m]))`),
//! and a production engine answers them from the store's index, in
//! parallel, with a cache, through the Prometheus HTTP API. Craft 4 is
//! that engine; the language it evaluates (lexer, parser, expression tree,
//! function table, durations) is the `promql` crate, which craft 5 reads
//! rules with.
//!
//! # Layout
//!
//! - `eval/` — the evaluator over `common::MetricStore`: every node
//!   evaluated once for all steps (`steps.rs`), one store `select` per
//!   selector with every matcher pushed down (`selector.rs`), functions with
//!   Prometheus' extrapolation and counter resets (`functions/`),
//!   streaming aggregation (`aggregate.rs`), vector matching (`binary.rs`),
//!   subqueries (`subquery.rs`), the sample budget and timeout
//!   (`limits.rs`); rayon across series and step chunks.
//! - `value.rs` — results: scalars, instant vectors, range vectors.
//! - `api/` — the Prometheus HTTP API: parameters, time parsing, JSON
//!   shapes (`mod.rs`, `params.rs`, `timestamp.rs`, `query.rs`,
//!   `metadata.rs`, `format.rs`), and `routes.rs`, the `RouteSet` craft 4 contributes
//!   to the platform's router.
//! - `civil.rs` — the calendar in integer arithmetic, for RFC 3339 times
//!   and the calendar functions.
//! - `cache.rs` — the LRU result cache for range queries over time that
//!   can no longer change, and its invalidation hook.
//! - `engine.rs` — `Craft4QueryEngine`, all of it behind
//!   `common::QueryEngine`, and `slot()`: the engine, its routes and its
//!   append observer, as the platform wires them.
//! - `args.rs` — the slot's command-line flags and `build()`
//!   (`platform --query craft4`).
//!
//! Measured in `examples/query_figures.rs` (the chapter's three queries and
//! the 100 M-sample aggregation) and `benches/query.rs` (single thread vs
//! rayon, phase0's scan vs craft 3 + craft 4, cache hit vs miss). The
//! story, with the measurements, is docs chapter 4.

pub mod api;
pub mod args;
pub mod cache;
mod civil;
pub mod engine;
pub mod eval;
pub mod value;
