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
//! Simplification: the inputs' series are decoded into memory (16 bytes a
//! sample) and merged there. A streaming k-way merge, series by series, is
//! how a larger system bounds compaction's memory.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

use common::Labels;

use super::BlockError;
use super::meta::BlockMeta;
use super::reader::Block;
use super::writer::write_block;
use crate::chunk::Sample;
use crate::head::SeriesSamples;

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

    let mut merged: BTreeMap<(String, Labels), Vec<Sample>> = BTreeMap::new();
    for block in &ranked {
        for series in block.all_series()? {
            match merged.entry((series.name, series.labels)) {
                Entry::Occupied(mut older) => {
                    let samples = overlay(older.get(), &series.samples);
                    *older.get_mut() = samples;
                }
                Entry::Vacant(slot) => {
                    slot.insert(series.samples);
                }
            }
        }
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

    let series = merged
        .into_iter()
        .map(|((name, labels), samples)| SeriesSamples {
            name,
            labels,
            samples,
        })
        .collect();
    write_block(parent, id, sequence, level, sources, series)
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
