//! [`Block`]: an opened block — its meta and index in memory, its chunks
//! on disk, read on demand.
//!
//! The bottleneck it removes: phase0 parses every line it ever wrote to
//! answer one question. A block answers from its in-memory index which
//! series match (postings), which of their chunks overlap the query's time
//! range (each chunk's min/max time), and then reads only those chunks —
//! with one positioned read per series, since a series' chunks are
//! contiguous in the `chunks` file (docs chapter 3, "Blocks").
//!
//! Reads use `pread` (`FileExt::read_exact_at`), which takes `&self` and
//! moves no shared cursor, so one `Block` behind an `Arc` serves any number
//! of query threads without a lock. The block is immutable: nothing here
//! ever writes.
//!
//! Nothing on disk is trusted. `open` validates `meta.json`, the `chunks`
//! header and the whole index (see `index_file.rs`), and checks the meta's
//! figures against the index; `select` checks each chunk's CRC before
//! decoding it and the decoded samples against the index's description. A
//! damaged block gives a [`BlockError`], never a panic or a wrong sample.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{LabelMatcher, TimeRange};

use super::chunks_file::{self, CHUNKS_FILE, CHUNKS_HEADER_LEN};
use super::index_file::{BlockIndex, ChunkMeta, INDEX_FILE, IndexSeries};
use super::meta::{BlockMeta, META_FILE};
use super::writer::SeriesChunks;
use super::{BlockError, series_key};
use crate::chunk::{Chunk, Sample};
use crate::head::SeriesSamples;

/// An opened, validated block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: BlockIndex,
    chunks: File,
    chunks_path: PathBuf,
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json` and the whole `index`,
    /// validates both, and keeps `chunks` open for reads.
    ///
    /// # Errors
    /// [`BlockError::Io`] when a file cannot be read (a missing `meta.json`
    /// means an unfinished block); [`BlockError::Corrupt`] when a file
    /// contradicts its format, its checksums or the other files.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta_path = dir.join(META_FILE);
        let meta_bytes = fs::read(&meta_path).map_err(|e| BlockError::io(&meta_path, e))?;
        let meta = BlockMeta::from_json(&meta_bytes, &meta_path)?;
        // The directory name is the id: this refuses a `.tmp` directory
        // (whose meta names the final id) and a meta copied from elsewhere.
        let dir_name = dir.file_name().and_then(|name| name.to_str());
        if dir_name != Some(meta.id.as_str()) {
            return Err(BlockError::corrupt(
                &meta_path,
                format!("meta id {:?} differs from the directory name", meta.id),
            ));
        }

        let chunks_path = dir.join(CHUNKS_FILE);
        let chunks = File::open(&chunks_path).map_err(|e| BlockError::io(&chunks_path, e))?;
        let chunks_len = chunks
            .metadata()
            .map_err(|e| BlockError::io(&chunks_path, e))?
            .len();
        if chunks_len < CHUNKS_HEADER_LEN {
            return Err(BlockError::corrupt(&chunks_path, "shorter than its header"));
        }
        let mut header = [0; CHUNKS_HEADER_LEN as usize];
        chunks
            .read_exact_at(&mut header, 0)
            .map_err(|e| BlockError::io(&chunks_path, e))?;
        chunks_file::check_header(&header).map_err(|m| BlockError::corrupt(&chunks_path, m))?;

        let index_path = dir.join(INDEX_FILE);
        let index_bytes = fs::read(&index_path).map_err(|e| BlockError::io(&index_path, e))?;
        let index = BlockIndex::decode(&index_bytes, chunks_len)
            .map_err(|e| BlockError::corrupt(&index_path, e.to_string()))?;

        check_meta_against_index(&meta, &index, chunks_len + index_bytes.len() as u64)
            .map_err(|m| BlockError::corrupt(&meta_path, m))?;

        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            chunks_path,
        })
    }

    /// The block's `meta.json`.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// Series in the block.
    pub fn series_count(&self) -> usize {
        self.index.series().len()
    }

    /// True when the block may hold a sample in `range`.
    pub fn overlaps(&self, range: TimeRange) -> bool {
        self.meta.min_time <= range.end_ms && range.start_ms <= self.meta.max_time
    }

    /// Label names in use, sorted, `__name__` included.
    pub fn label_names(&self) -> Vec<String> {
        self.index.label_names()
    }

    /// Values of label `name` (`__name__`: metric names), sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.index.label_values(name)
    }

    /// Series matching every matcher, with their samples in `range` (both
    /// ends inclusive), ordered by (name, labels); series without a sample
    /// in `range` are left out.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] when a chunk needed fails its CRC or does
    /// not decode to what the index describes; [`BlockError::Io`] when the
    /// read fails.
    pub fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesSamples>, BlockError> {
        if range.start_ms > range.end_ms || !self.overlaps(range) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for id in self.index.select(matchers) {
            // Ids come from the index's own postings, validated at open.
            let Some(series) = self.index.series().get(id as usize) else {
                continue;
            };
            let samples = self.read_samples(series, range)?;
            if !samples.is_empty() {
                out.push(SeriesSamples {
                    name: series.name.clone(),
                    labels: series.labels.clone(),
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// Every series with every sample: what compaction reads.
    ///
    /// # Errors
    /// As [`Block::select`].
    pub fn all_series(&self) -> Result<Vec<SeriesSamples>, BlockError> {
        self.select(&[], TimeRange::ALL)
    }

    /// Every series with its chunks as stored (CRC-checked, parsed and
    /// checked against the index, not decoded sample by sample): what
    /// compaction copies when blocks do not overlap.
    ///
    /// # Errors
    /// As [`Block::select`].
    pub fn all_series_chunks(&self) -> Result<Vec<SeriesChunks>, BlockError> {
        let mut out = Vec::with_capacity(self.index.series().len());
        for series in self.index.series() {
            let chunks = self.read_chunks(series, &series.chunks)?;
            out.push(SeriesChunks {
                name: series.name.clone(),
                labels: series.labels.clone(),
                chunks,
            });
        }
        Ok(out)
    }

    /// The chunks `wanted` (a contiguous run of `series`' chunks) with one
    /// positioned read, each CRC-checked, parsed, and checked against the
    /// index's count and time range.
    fn read_chunks(
        &self,
        series: &IndexSeries,
        wanted: &[ChunkMeta],
    ) -> Result<Vec<Chunk>, BlockError> {
        let Some((first, last)) = wanted.first().zip(wanted.last()) else {
            return Ok(Vec::new());
        };
        let (start, end) = (first.offset, last.end());
        // Both within the chunks file's size, checked at open.
        let mut buffer = vec![0; (end - start) as usize];
        self.chunks
            .read_exact_at(&mut buffer, start)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    BlockError::corrupt(&self.chunks_path, "shorter than when it was opened")
                }
                _ => BlockError::io(&self.chunks_path, e),
            })?;
        let mut chunks = Vec::with_capacity(wanted.len());
        let mut rest = buffer.as_slice();
        for meta in wanted {
            let (data, after) = chunks_file::take_record(rest, meta.data_len)
                .map_err(|m| self.corrupt_chunk(series, meta.offset, m))?;
            rest = after;
            let chunk = Chunk::from_bytes(data)
                .map_err(|e| self.corrupt_chunk(series, meta.offset, e.to_string()))?;
            if chunk.len() != meta.samples as usize
                || chunk.min_time() != Some(meta.min_time)
                || chunk.max_time() != Some(meta.max_time)
            {
                return Err(self.corrupt_chunk(
                    series,
                    meta.offset,
                    format!(
                        "holds {} samples in {:?}..={:?}, the index says {} in {}..={}",
                        chunk.len(),
                        chunk.min_time(),
                        chunk.max_time(),
                        meta.samples,
                        meta.min_time,
                        meta.max_time
                    ),
                ));
            }
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    fn corrupt_chunk(&self, series: &IndexSeries, offset: u64, message: String) -> BlockError {
        BlockError::corrupt(
            &self.chunks_path,
            format!(
                "series {} chunk at {offset}: {message}",
                series_key(&series.name, &series.labels)
            ),
        )
    }

    /// The samples of `series` in `range`: one read covering the chunks
    /// that overlap it, each CRC-checked, decoded and checked against the
    /// index.
    fn read_samples(
        &self,
        series: &IndexSeries,
        range: TimeRange,
    ) -> Result<Vec<Sample>, BlockError> {
        // Chunks are in time order and do not overlap (checked at open), so
        // those overlapping `range` are one contiguous run.
        let first = series
            .chunks
            .partition_point(|c| c.max_time < range.start_ms);
        let last = series
            .chunks
            .partition_point(|c| c.min_time <= range.end_ms);
        let Some(wanted) = series.chunks.get(first..last).filter(|w| !w.is_empty()) else {
            return Ok(Vec::new());
        };
        let chunks = self.read_chunks(series, wanted)?;
        let mut samples = Vec::new();
        for (meta, chunk) in wanted.iter().zip(&chunks) {
            let mut iter = chunk.iter();
            let mut count = 0u32;
            let mut previous: Option<i64> = None;
            for sample in iter.by_ref() {
                let ts = sample.timestamp_ms;
                let in_order = match previous {
                    None => ts == meta.min_time,
                    Some(previous) => previous < ts && ts <= meta.max_time,
                };
                if !in_order {
                    return Err(self.corrupt_chunk(
                        series,
                        meta.offset,
                        format!("timestamp {ts} out of order or outside the chunk's range"),
                    ));
                }
                previous = Some(ts);
                count += 1;
                if range.contains(ts) {
                    samples.push(sample);
                }
            }
            if let Some(error) = iter.err() {
                return Err(self.corrupt_chunk(series, meta.offset, error.to_string()));
            }
            if count != meta.samples || previous != Some(meta.max_time) {
                return Err(self.corrupt_chunk(
                    series,
                    meta.offset,
                    format!(
                        "decoded {count} samples ending at {previous:?}, the index says {} ending at {}",
                        meta.samples, meta.max_time
                    ),
                ));
            }
        }
        Ok(samples)
    }
}

/// The meta's figures must be the index's: a damaged digit in `meta.json`
/// would otherwise misplace the block in time or misreport its size.
fn check_meta_against_index(
    meta: &BlockMeta,
    index: &BlockIndex,
    bytes: u64,
) -> Result<(), String> {
    let series = index.series();
    let chunks = series.iter().flat_map(|s| &s.chunks);
    let actual = (
        series.len() as u64,
        chunks.clone().map(|c| u64::from(c.samples)).sum::<u64>(),
        chunks.clone().count() as u64,
        bytes,
        chunks.clone().map(|c| c.min_time).min(),
        chunks.map(|c| c.max_time).max(),
    );
    let claimed = (
        meta.stats.series,
        meta.stats.samples,
        meta.stats.chunks,
        meta.stats.bytes,
        Some(meta.min_time),
        Some(meta.max_time),
    );
    if actual == claimed {
        Ok(())
    } else {
        Err(format!(
            "meta claims (series, samples, chunks, bytes, min_time, max_time) = {claimed:?}, \
             the index holds {actual:?}"
        ))
    }
}
