//! Blocks: immutable directories that hold a time range of every series,
//! compressed, with their own index — what the head's samples become once
//! they are old enough to stop changing.
//!
//! The bottleneck they remove: the head keeps everything in memory, and a
//! WAL replays everything on restart. A block moves a finished time range
//! to disk in the form queries want — sealed chunks (one to a few bytes a
//! sample) and an inverted index — so memory and restart time stay bounded
//! by the head's range, not by history. Written once and never modified, a
//! block needs no locks to read and is replaced, never edited, by
//! compaction. The layout follows Prometheus' TSDB blocks, simplified
//! (docs chapter 3, "Blocks"; byte layouts in `docs/src/formats/block.md`).
//!
//! ```text
//! <parent>/
//!   <id>/            a block: written as <id>.tmp/, renamed when complete
//!     chunks         the sealed chunks, each with its CRC32C, one series'
//!                    chunks contiguous, series in index order
//!     index          symbols, series (labels + chunk references), postings,
//!                    table of contents; every section CRC32C-checked
//!     meta.json      id, sequence, time range, stats, compaction history;
//!                    written last, so a directory without it is unfinished
//! ```
//!
//! One concept per file:
//!
//! - `meta.rs` — [`BlockMeta`], `meta.json`;
//! - `chunks_file.rs` — the `chunks` file's header and records;
//! - `index_file.rs` — the `index` file: encoding, validation, and the
//!   parsed [`BlockIndex`] that answers selectors from its postings;
//! - `writer.rs` — [`write_block`]: series in, a durable block directory out;
//! - `reader.rs` — [`Block`]: open, select, list labels;
//! - `compact.rs` — [`compact()`]: many blocks in, one merged block out.

pub mod chunks_file;
pub mod compact;
pub mod index_file;
pub mod meta;
pub mod reader;
pub mod writer;

use thiserror::Error;

use crate::chunk::ChunkError;

pub use compact::compact;
pub use index_file::{BlockIndex, ChunkMeta, IndexCorrupt, IndexSeries};
pub use meta::{BlockMeta, BlockStats, Compaction};
pub use reader::Block;
pub use writer::{SeriesChunks, write_block, write_block_chunks};

/// Why a block could not be written or read.
#[derive(Debug, Error)]
pub enum BlockError {
    /// The disk refused a read or write.
    #[error("block I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file of the block contradicts its format or its checksums.
    #[error("corrupt block file {path}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// Samples could not be sealed into a chunk.
    #[error("chunk of series {series}: {source}")]
    Chunk {
        /// `name{labels}`.
        series: String,
        /// Why.
        source: ChunkError,
    },
    /// The writer was handed a series it cannot store faithfully.
    #[error("series {series} cannot be written: {message}")]
    InvalidSeries {
        /// `name{labels}`.
        series: String,
        /// What was wrong.
        message: String,
    },
    /// The block id or another argument cannot be used.
    #[error("invalid block argument: {0}")]
    InvalidArgument(String),
    /// The target directory exists: blocks are never overwritten.
    #[error("block directory {path} already exists")]
    AlreadyExists {
        /// The directory.
        path: String,
    },
    /// Nothing to write: a block holds at least one sample.
    #[error("a block must hold at least one sample; nothing to write")]
    Empty,
}

impl BlockError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// `name{labels}`, for error messages.
pub(crate) fn series_key(name: &str, labels: &common::Labels) -> String {
    format!("{name}{labels}")
}
