//! # craft1-ingestion — the ingestion slot, rebuilt
//!
//! phase0 served one request at a time on one thread and spoke one JSON
//! object per request. This crate climbs the staircase to a production
//! server and teaches it the protocols real agents speak:
//!
//! - `staircase/` — `threads.rs` (a thread per connection), `pool.rs` (a
//!   fixed pool with keep-alive), both serving connections with
//!   `staircase/connection.rs`;
//! - `server.rs` — hyper + tokio, the default;
//! - `handler.rs` — what every one of them does with a request: auth, rate
//!   limit (`rate_limit.rs`), gzip, the write protocols (`decode/`), the
//!   server's own metrics (`self_metrics.rs`), then the shared routes;
//! - `config.rs` — every limit in one place.
//!
//! The story, with the measured staircase, is `docs/src/ch01-ingestion.md`.

pub mod args;
pub mod config;
pub mod decode;
pub mod handler;
pub mod rate_limit;
pub mod self_metrics;
pub mod server;
pub mod staircase;

pub use config::ServerConfig;
pub use server::AsyncServer;
pub use staircase::pool::ThreadPoolServer;
pub use staircase::threads::ThreadPerConnectionServer;
