//! # craft1-ingestion — the ingestion slot, rebuilt
//!
//! phase0 served one request at a time on one thread and spoke one JSON
//! object per request. This crate climbs the staircase to a production
//! server and teaches it the protocols real agents speak:
//!
//! # Layout
//!
//! - `staircase/` — the blocking steps: `threads.rs` (a thread per
//!   connection), `pool.rs` (a fixed pool with keep-alive), both serving
//!   connections with `connection.rs`.
//! - [`server`] — hyper + tokio, the default.
//! - [`handler`] — what every step does with a request: auth, rate limit,
//!   gzip, the write protocols, the server's own `GET /metrics`; every
//!   other request to the pipeline's router.
//! - [`decode`] — one file per wire format: JSON, line protocol,
//!   remote_write, the exposition format, gzip, and the number reader the
//!   hand-written ones share.
//! - [`scrape`] — pull beside push: `prometheus.yml`'s targets scraped
//!   into the queue, with `up` and staleness.
//! - [`rate_limit`] — per-client token buckets.
//! - [`self_metrics`] — the server's own counters in Prometheus' text format.
//! - [`config`] — every limit in one place; [`args`] — the same as flags,
//!   and the server each step builds from them.
//!
//! The story, with the measured staircase, is `docs/src/ch01-ingestion.md`.

pub mod args;
pub mod config;
pub mod decode;
pub mod handler;
pub mod rate_limit;
pub mod scrape;
pub mod self_metrics;
pub mod server;
pub mod staircase;

pub use config::ServerConfig;
pub use server::AsyncServer;
pub use staircase::pool::ThreadPoolServer;
pub use staircase::threads::ThreadPerConnectionServer;
