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
//! case, as in Prometheus) — except that runs of consecutive small chunks
//! are joined into one of up to [`COMPACTED_SAMPLES_PER_CHUNK`] samples
//! (decoded and re-encoded once, at the first compaction that sees them).
//! The head cuts 120-sample chunks so that little is re-decoded while
//! data is fresh; once compacted, a day-long query reads eight times
//! fewer chunks — each with its own header, checksum and decoder set-up,
//! a fifth of a day-long `avg_over_time` at 120 — and each chunk's header
//! is paid once per 960 samples on disk. Only overlapping series are
//! decoded, overlaid and re-encoded as a whole. Simplification: every input's chunks are held in memory
//! at once; a streaming k-way merge, series by series, is how a larger
//! system bounds compaction's memory (exercise 3.4).

use std::collections::BTreeMap;
use std::path::Path;

use common::Labels;

use super::BlockError;
use super::meta::BlockMeta;
use super::reader::Block;
use super::writer::{SeriesChunks, write_block_chunks};
use crate::chunk::{Chunk, ChunkError, EncodingPolicy, Sample};

/// The samples a compacted chunk holds at most: eight of the head's
/// 120-sample chunks (a query over a few minutes decodes at most one
/// such chunk more than it needs; a query over a day reads an eighth of
/// the chunks).
pub const COMPACTED_SAMPLES_PER_CHUNK: usize = 960;

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
        return join_small(all);
    }
    let mut samples: Vec<Sample> = Vec::new();
    for run in &runs {
        samples = overlay(&samples, &decode(run)?);
    }
    samples
        .chunks(COMPACTED_SAMPLES_PER_CHUNK)
        .map(|part| Chunk::encode(part, EncodingPolicy::Smallest))
        .collect()
}

/// Disjoint chunks in time order, with each run of consecutive chunks
/// that fits in [`COMPACTED_SAMPLES_PER_CHUNK`] joined into one chunk; a
/// chunk that joins nothing is kept as it is (already-compacted chunks are
/// copied at every later level).
fn join_small(chunks: Vec<Chunk>) -> Result<Vec<Chunk>, ChunkError> {
    let mut out = Vec::with_capacity(chunks.len());
    let mut group: Vec<Chunk> = Vec::new();
    let mut group_samples = 0;
    for chunk in chunks {
        if !group.is_empty() && group_samples + chunk.len() > COMPACTED_SAMPLES_PER_CHUNK {
            out.push(join(std::mem::take(&mut group))?);
            group_samples = 0;
        }
        group_samples += chunk.len();
        group.push(chunk);
    }
    if !group.is_empty() {
        out.push(join(group)?);
    }
    Ok(out)
}

/// One chunk holding `group`'s samples (the chunk itself when alone).
fn join(mut group: Vec<Chunk>) -> Result<Chunk, ChunkError> {
    if group.len() == 1
        && let Some(only) = group.pop()
    {
        return Ok(only);
    }
    Chunk::encode(&decode(&group)?, EncodingPolicy::Smallest)
}

/// Every sample of `chunks`, in order; a damaged chunk's error.
fn decode(chunks: &[Chunk]) -> Result<Vec<Sample>, ChunkError> {
    let mut samples = Vec::with_capacity(chunks.iter().map(Chunk::len).sum());
    for chunk in chunks {
        let mut iter = chunk.iter();
        samples.extend(iter.by_ref());
        if let Some(error) = iter.err() {
            return Err(error.clone());
        }
    }
    Ok(samples)
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

    fn samples_of(chunks: &[Chunk]) -> Vec<Sample> {
        chunks.iter().flat_map(|c| c.iter()).collect()
    }

    /// Twenty of the head's 120-sample chunks become 960 + 960 + 480, with
    /// the same samples bit for bit; a later compaction copies those.
    #[test]
    fn small_chunks_are_joined_once() {
        let samples: Vec<Sample> = (0..2_400)
            .map(|i| Sample::new(i * 10_000 + i % 7, (i as f64 * 0.37).sin() * 100.0))
            .collect();
        let small: Vec<Chunk> = samples
            .chunks(120)
            .map(|part| Chunk::encode(part, EncodingPolicy::Smallest).unwrap())
            .collect();
        let joined = join_small(small.clone()).unwrap();
        assert_eq!(
            joined.iter().map(Chunk::len).collect::<Vec<_>>(),
            vec![960, 960, 480]
        );
        assert!(Sample::same_bits(&samples_of(&joined), &samples));
        let smaller: usize = small.iter().map(Chunk::encoded_len).sum();
        let bigger: usize = joined.iter().map(Chunk::encoded_len).sum();
        assert!(bigger < smaller, "{bigger} bytes joined vs {smaller}");
        // Already joined: kept as they are.
        let again = join_small(joined.clone()).unwrap();
        assert_eq!(again.len(), 3);
        assert!(Sample::same_bits(&samples_of(&again), &samples));
        // Through copy_or_merge, as compaction calls it: two disjoint runs.
        let (first, second) = small.split_at(7);
        let merged = copy_or_merge(vec![first.to_vec(), second.to_vec()]).unwrap();
        assert_eq!(merged.len(), 3);
        assert!(Sample::same_bits(&samples_of(&merged), &samples));
    }
}
