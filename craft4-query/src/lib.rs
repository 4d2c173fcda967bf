//! # craft4-query — the query slot, rebuilt as a PromQL-style engine
//!
//! phase0 answers one question — the samples of one metric name in one time
//! range — and answers it by scanning the whole file on every request.
//! Prometheus users ask richer questions (`sum by (host) (rate(x[5m]))`),
//! and a production engine answers them from the store's index, in
//! parallel, with a cache, through the Prometheus HTTP API. Craft 4 builds
//! that engine one concept per file, in increments (issue 6):
//!
//! 1. **The language front end** — this increment, `lang/`: a hand-written
//!    lexer (`lexer.rs`), the expression tree and its canonical printer
//!    (`ast.rs`), a precedence-climbing parser that type-checks as it goes
//!    (`parser.rs`), the function table (`functions.rs`) and the error type
//!    (`error.rs`). No parser generator and no parser crate: the parser is
//!    the lesson, and its errors say where and what was expected.
//! 2. Still to come: the evaluator over `common::MetricStore` (instant and
//!    range queries, Prometheus' 5-minute lookback, counter resets), per-query
//!    sample budgets and timeouts, matcher push-down to craft 3's index,
//!    rayon-parallel evaluation across series and steps, the LRU result
//!    cache, the Prometheus HTTP API behind `common::QueryEngine`, and the
//!    differential check against real Prometheus.
//!
//! The story, with measurements once there is something to measure, is
//! docs chapter 4.

pub mod eval;
pub mod lang;
pub mod value;
