//! [`compact`]: several blocks in, one block out, holding the merge of
//! their series.
//!
//! The bottleneck it removes: the head cuts a block every couple of hours,
//! so a month of data would be hundreds of small blocks, and a query over
//! it would open, search and read each. Merging adjacent blocks into larger
//! ones keeps the count logarithmic in the data's age and re-encodes chunks
//! that were cut short, as Prometheus' leveled compactor does (docs
//! chapter 3, "Compaction").
//!
//! Duplicates: the store keeps the last write for a series and timestamp.
//! Among blocks, "last" is the block with the higher `sequence`; for equal
//! sequences, the block later in `inputs` wins. The inputs are not deleted:
//! the caller swaps them for the result (and deletes them) once the new
//! block is durable, so a crash in between leaves both — which the same
//! rule reads correctly.
//!
//! Chunks are copied, not re-encoded, when a series' chunks from the
//! inputs do not overlap in time (blocks of successive ranges, the usual
//! case, as in Prometheus); only overlapping series are decoded, overlaid
//! and re-encoded. Simplification: every input's chunks are held in memory
//! at once; a streaming k-way merge, series by series, is how a larger
//! system bounds compaction's memory (exercise 3.4).

use std::collections::BTreeMap;
use std::path::Path;

use common::Labels;

use super::BlockError;
use super::meta::BlockMeta;
use super::reader::Block;
use super::writer::{SeriesChunks, write_block_chunks};
use crate::chunk::{Chunk, ChunkError, EncodingPolicy, SAMPLES_PER_CHUNK, Sample};

/// Merges `inputs` into a new block `id` under `parent` with the given
/// `sequence` (pass the highest input sequence, so the result ranks as its
/// newest input did). Its level is one more than the highest input level;
/// its sources are the union of the inputs' sources (an input without
/// sources counts as its own).
///
/// # Errors
/// [`BlockError::Empty`] for no inputs; any error of reading an input
/// ([`Block::all_series`]) or of [`write_block`].
pub fn compact(
    inputs: &[&Block],
    parent: &Path,
    id: &str,
    sequence: u64,
) -> Result<BlockMeta, BlockError> {
    if inputs.is_empty() {
        return Err(BlockError::Empty);
    }
    // Oldest first, so each later input overwrites what came before.
    let mut ranked: Vec<&Block> = inputs.to_vec();
    ranked.sort_by_key(|block| block.meta().sequence); // stable: ties keep input order

    // Each series' chunks from every input, oldest input first.
    let mut gathered: BTreeMap<(String, Labels), Vec<Vec<Chunk>>> = BTreeMap::new();
    for block in &ranked {
        for series in block.all_series_chunks()? {
            gathered
                .entry((series.name, series.labels))
                .or_default()
                .push(series.chunks);
        }
    }
    let mut merged = Vec::with_capacity(gathered.len());
    for ((name, labels), runs) in gathered {
        let chunks = match copy_or_merge(runs) {
            Ok(chunks) => chunks,
            Err(source) => {
                return Err(BlockError::Chunk {
                    series: super::series_key(&name, &labels),
                    source,
                });
            }
        };
        merged.push(SeriesChunks {
            name,
            labels,
            chunks,
        });
    }

    let level = ranked
        .iter()
        .map(|block| block.meta().compaction.level)
        .max()
        .unwrap_or_default()
        .saturating_add(1);
    let mut sources: Vec<String> = ranked
        .iter()
        .flat_map(|block| {
            let meta = block.meta();
            if meta.compaction.sources.is_empty() {
                vec![meta.id.clone()]
            } else {
                meta.compaction.sources.clone()
            }
        })
        .collect();
    sources.sort();
    sources.dedup();

    write_block_chunks(parent, id, sequence, level, sources, merged)
}

/// One series' chunks from each input (oldest input first) as one run:
/// when no two chunks overlap in time — the usual case, blocks of
/// successive ranges — the chunks are kept as they are, in time order;
/// otherwise the samples are decoded, overlaid (newer input wins) and
/// re-encoded.
fn copy_or_merge(runs: Vec<Vec<Chunk>>) -> Result<Vec<Chunk>, ChunkError> {
    let mut all: Vec<Chunk> = runs.iter().flatten().cloned().collect();
    all.sort_by_key(|c| c.min_time().unwrap_or(i64::MAX));
    let disjoint = all
        .windows(2)
        .all(|pair| pair[0].max_time() < pair[1].min_time());
    if disjoint {
        return Ok(all);
    }
    let mut samples: Vec<Sample> = Vec::new();
    for run in &runs {
        let mut newer = Vec::new();
        for chunk in run {
            let mut iter = chunk.iter();
            newer.extend(iter.by_ref());
            if let Some(error) = iter.err() {
                return Err(error.clone());
            }
        }
        samples = overlay(&samples, &newer);
    }
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .map(|part| Chunk::encode(part, EncodingPolicy::Smallest))
        .collect()
}

/// Merges two strictly increasing runs; for a timestamp in both, `newer`'s
/// sample is kept.
fn overlay(older: &[Sample], newer: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while i < older.len() && j < newer.len() {
        match older[i].timestamp_ms.cmp(&newer[j].timestamp_ms) {
            std::cmp::Ordering::Less => {
                out.push(older[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(newer[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(newer[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&older[i..]);
    out.extend_from_slice(&newer[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_keeps_order_and_prefers_newer() {
        let older = [
            Sample::new(1, 1.0),
            Sample::new(3, 3.0),
            Sample::new(5, 5.0),
        ];
        let newer = [
            Sample::new(3, 30.0),
            Sample::new(4, 40.0),
            Sample::new(9, 90.0),
        ];
        let merged = overlay(&older, &newer);
        let expected = [
            Sample::new(1, 1.0),
            Sample::new(3, 30.0),
            Sample::new(4, 40.0),
            Sample::new(5, 5.0),
            Sample::new(9, 90.0),
        ];
        assert!(Sample::same_bits(&merged, &expected));
        assert!(overlay(&[], &[]).is_empty());
    }
}
