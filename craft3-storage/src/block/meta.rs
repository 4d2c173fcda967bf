//! `meta.json`: what a block is — its id, its rank among blocks, the time
//! range it covers, how big it is and what it was compacted from.
//!
//! The bottleneck it removes: without it, deciding whether a block can
//! answer a query, or which of two blocks is newer, means opening its index.
//! With it, the store plans a query and a compaction from a few hundred
//! bytes of JSON per block (Prometheus keeps the same file; docs chapter 3,
//! "Blocks"). JSON rather than binary because an operator reads it with
//! `cat` and it is read once per block per open.
//!
//! It is written last, after `chunks` and `index` are on disk, so a
//! directory holding a `meta.json` holds a complete block. It carries no
//! checksum of its own; the reader checks every figure it can against the
//! index instead (stats, time range, id against the directory name).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BlockError;

/// The `meta.json` format this code writes and reads.
pub const META_VERSION: u32 = 1;

/// The file name inside a block directory.
pub const META_FILE: &str = "meta.json";

/// A block's description, as stored in `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMeta {
    /// Format version, [`META_VERSION`].
    pub version: u32,
    /// The block's id, also its directory name.
    pub id: String,
    /// Rank among blocks: for the same series and timestamp in two blocks,
    /// the block with the higher sequence holds the value that counts.
    pub sequence: u64,
    /// Earliest sample timestamp in the block (inclusive).
    pub min_time: i64,
    /// Latest sample timestamp in the block (inclusive).
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Where the block came from.
    pub compaction: Compaction,
}

/// How much a block holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockStats {
    /// Series with at least one sample.
    pub series: u64,
    /// Samples over all series.
    pub samples: u64,
    /// Chunks in the `chunks` file.
    pub chunks: u64,
    /// Size of `chunks` plus `index` in bytes (not `meta.json`, which
    /// would have to contain its own size).
    pub bytes: u64,
}

/// A block's compaction history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compaction {
    /// 1 for a block cut from the head; one more than its highest input for
    /// a compacted block.
    pub level: u32,
    /// Ids of the head-cut blocks whose samples this block holds, sorted.
    pub sources: Vec<String>,
}

impl BlockMeta {
    /// The JSON bytes written to `meta.json` (pretty, newline-terminated:
    /// operators read it).
    ///
    /// # Errors
    /// [`BlockError::InvalidArgument`] if serialisation fails, which plain
    /// strings and integers do not.
    pub fn to_json(&self) -> Result<Vec<u8>, BlockError> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| BlockError::InvalidArgument(format!("meta.json: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses `meta.json`'s bytes, refusing other versions. `path` names the
    /// file in errors.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] for bytes that are not a version-1 meta.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, BlockError> {
        let meta: Self = serde_json::from_slice(bytes)
            .map_err(|e| BlockError::corrupt(path, format!("not a block meta: {e}")))?;
        if meta.version != META_VERSION {
            return Err(BlockError::corrupt(
                path,
                format!(
                    "meta version {}, this build reads {META_VERSION}",
                    meta.version
                ),
            ));
        }
        if meta.min_time > meta.max_time {
            return Err(BlockError::corrupt(
                path,
                format!(
                    "min_time {} after max_time {}",
                    meta.min_time, meta.max_time
                ),
            ));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        BlockMeta {
            version: META_VERSION,
            id: "b-000001".into(),
            sequence: 7,
            min_time: -5,
            max_time: 1_700_000_000_000,
            stats: BlockStats {
                series: 2,
                samples: 300,
                chunks: 4,
                bytes: 1234,
            },
            compaction: Compaction {
                level: 2,
                sources: vec!["a".into(), "b".into()],
            },
        }
    }

    #[test]
    fn json_round_trips() {
        let meta = meta();
        let bytes = meta.to_json().expect("serialises");
        assert_eq!(
            BlockMeta::from_json(&bytes, Path::new("meta.json")).expect("parses"),
            meta
        );
    }

    #[test]
    fn other_versions_unknown_fields_and_inverted_ranges_are_refused() {
        let path = Path::new("meta.json");
        let mut other = meta();
        other.version = 2;
        assert!(BlockMeta::from_json(&other.to_json().expect("ok"), path).is_err());

        let mut inverted = meta();
        inverted.min_time = inverted.max_time + 1;
        assert!(BlockMeta::from_json(&inverted.to_json().expect("ok"), path).is_err());

        let json = String::from_utf8(meta().to_json().expect("ok")).expect("utf-8");
        let extra = json.replacen("\"version\"", "\"extra\": 1,\n  \"version\"", 1);
        assert!(BlockMeta::from_json(extra.as_bytes(), path).is_err());
        assert!(BlockMeta::from_json(b"{", path).is_err());
    }
}
