//! # craft3-storage — the storage slot, rebuilt as a time-series engine
//!
//! phase0 appends one JSON line per sample (60–110 bytes) and reopens the
//! file for each. Production time-series databases — Gorilla, Prometheus,
//! VictoriaMetrics — store a sample in one or two bytes and find a series
//! without scanning. This crate is built the same way, one concept per file.
//!
//! # Layout
//!
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
//! - `wal.rs` — the write-ahead log: segments of checksummed records,
//!   replayed on open, so an acknowledged sample survives a crash;
//! - `block/` — immutable on-disk blocks of two hours and more, written
//!   once: `chunks_file.rs` (sealed chunks with CRCs), `index_file.rs` (the
//!   block's inverted index), `meta.rs`, `writer.rs`, `reader.rs`, and
//!   `compact.rs` (small blocks merged into larger ones);
//! - `db.rs` — [`Db`]: WAL, head and blocks together, the head cut into
//!   blocks as it ages, blocks compacted and dropped past retention;
//! - `store.rs` — [`HeadStore`] (the head alone) and [`Db`] behind
//!   `common::MetricStore`;
//! - `args.rs` — the slot's command-line flags and `open()`
//!   (`platform --storage craft3`).
//!
//! - `bin/craft3-tsdb.rs` — look inside a data directory (blocks, WAL,
//!   series), or write into one, from the command line.
//!
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
