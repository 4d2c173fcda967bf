//! # craft3-storage — the storage slot, rebuilt as a time-series engine
//!
//! phase0 appends one JSON line per sample (60–110 bytes) and reopens the
//! file for each. Production time-series databases — Gorilla, Prometheus,
//! VictoriaMetrics — store a sample in one or two bytes and find a series
//! without scanning. This crate is built the same way, one concept per file:
//!
//! - `chunk/` — compressed runs of one series' samples: `bits.rs` (the bit
//!   stream), `xor.rs` (Gorilla), `integers.rs` + `decimal.rs` (decimal
//!   mantissas, bit-packed), `mod.rs` (the per-chunk choice);
//! - `index/` — the inverted index: `postings.rs` (sorted series-id lists,
//!   intersect/union/difference), `mod.rs` (label pair → postings, the
//!   matchers `=`, `!=`, `=~`, `!~`);
//! - `head/` — the in-memory head: `series.rs` (the sharded series
//!   registry), `memseries.rs` (a series' chunks and out-of-order buffer),
//!   `mod.rs` (the `Head`);
//! - `store.rs` — `HeadStore`, the head behind `common::MetricStore`.
//!
//! Still to come (issue 5): the WAL (until then `HeadStore` is memory
//! only), blocks, compaction, retention.
//! The story, with measurements, is `docs/src/ch03-storage.md`.

pub mod args;
pub mod block;
pub mod chunk;
pub mod db;
pub mod head;
pub mod index;
pub mod store;
pub mod wal;

pub use block::{Block, BlockError, BlockMeta, compact, write_block};
pub use chunk::{Chunk, ChunkError, Encoding, EncodingPolicy, Sample};
pub use head::{Head, HeadConfig, HeadError};
pub use store::HeadStore;
