//! [`Block`]: an opened block — its meta and index in memory, its chunks
//! on disk, read on demand.
//!
//! The bottleneck it removes: phase0 parses every line it ever wrote to
//! answer one question. A block answers from its in-memory index which
//! series match (postings), which of their chunks overlap the query's time
//! range (each chunk's min/max time), and then reads only those chunks —
//! with one positioned read per series, since a series' chunks are
//! contiguous in the `chunks` file (docs chapter 3, "Blocks"). Series are
//! independent, so `select` reads and decodes them in parallel (rayon),
//! each decoded straight into its output buffer (docs chapter 4, "From
//! scan to index": what a query spends its time on).
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
use rayon::prelude::*;

use super::chunks_file::{self, CHUNKS_FILE, CHUNKS_HEADER_LEN};
use super::index_file::{BlockIndex, ChunkMeta, INDEX_FILE, IndexSeries};
use super::meta::{BlockMeta, META_FILE};
use super::writer::SeriesChunks;
use super::{BlockError, series_key};
use crate::chunk::varint::ByteReader;
use crate::chunk::{Chunk, Encoding, Sample, decimal};
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
    /// in `range` are left out. Series are read and decoded in parallel
    /// (rayon): each is one positioned read and its own chunks, so they
    /// share nothing.
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
        let found: Vec<Option<SeriesSamples>> = self
            .matching(matchers, range)
            .into_par_iter()
            .map(|series| {
                let mut samples = Vec::with_capacity(samples_bound(series, range));
                self.read_samples_into(series, range, &mut samples)?;
                Ok((!samples.is_empty()).then(|| SeriesSamples {
                    name: series.name.clone(),
                    labels: series.labels.clone(),
                    samples,
                }))
            })
            .collect::<Result<_, BlockError>>()?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The index entries of the series matching every matcher that have a
    /// chunk overlapping `range`, ordered by (name, labels): what
    /// [`Block::select`] reads, for a caller (`Db`) that merges several
    /// blocks' samples of a series into one buffer with
    /// [`Block::read_samples_into`].
    pub fn matching(&self, matchers: &[LabelMatcher], range: TimeRange) -> Vec<&IndexSeries> {
        if range.start_ms > range.end_ms || !self.overlaps(range) {
            return Vec::new();
        }
        self.index
            .select(matchers)
            .into_iter()
            // Ids come from the index's own postings, validated at open.
            .filter_map(|id| self.index.series().get(id as usize))
            .filter(|series| !chunks_in(series, range).is_empty())
            .collect()
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

    /// Appends the samples of `series` (an entry of this block's index) in
    /// `range` to `out`: one read covering the chunks that overlap it, each
    /// CRC-checked, decoded straight into `out` and checked against the
    /// index as it goes (count, first and last timestamp, strictly
    /// increasing). Reserve [`samples_bound`] first to grow `out` once.
    ///
    /// # Errors
    /// As [`Block::select`]; `out` may then hold part of the samples.
    pub fn read_samples_into(
        &self,
        series: &IndexSeries,
        range: TimeRange,
        out: &mut Vec<Sample>,
    ) -> Result<(), BlockError> {
        let wanted = chunks_in(series, range);
        let Some((first, last)) = wanted.first().zip(wanted.last()) else {
            return Ok(());
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
        let mut rest = buffer.as_slice();
        let mut scratch = DecodeScratch::default();
        for meta in wanted {
            let (data, after) = chunks_file::take_record(rest, meta.data_len)
                .map_err(|m| self.corrupt_chunk(series, meta.offset, m))?;
            rest = after;
            self.decode_into(series, meta, data, range, &mut scratch, out)?;
        }
        Ok(())
    }

    /// Decodes one chunk's bytes (CRC already checked) into `out`, keeping
    /// the samples in `range`.
    ///
    /// A decimal chunk is decoded once, straight from the read buffer and
    /// whole (`decimal::decode_payload`: each integer sequence in one tight
    /// loop, the divisions vectorised): its payload's structure is checked
    /// by the decoder, its timestamps against the index here. An XOR chunk goes through
    /// [`Chunk::from_bytes`] first, whose full decode is the only check
    /// that nothing follows its last sample.
    fn decode_into(
        &self,
        series: &IndexSeries,
        meta: &ChunkMeta,
        data: &[u8],
        range: TimeRange,
        scratch: &mut DecodeScratch,
        out: &mut Vec<Sample>,
    ) -> Result<(), BlockError> {
        let corrupt = |message: String| self.corrupt_chunk(series, meta.offset, message);
        let mut header = ByteReader::new(data);
        let tag = header.read_u8().map_err(|e| corrupt(e.to_string()))?;
        let count = header.read_uvarint().map_err(|e| corrupt(e.to_string()))?;
        if count != u64::from(meta.samples) {
            return Err(corrupt(format!(
                "holds {count} samples, the index says {}",
                meta.samples
            )));
        }
        // One loop per codec, so the decoder inlines into it instead of
        // being dispatched per sample.
        match Encoding::from_tag(tag).map_err(|e| corrupt(e.to_string()))? {
            Encoding::Decimal => {
                decimal::decode_payload(
                    header.rest(),
                    count as usize,
                    &mut scratch.times,
                    &mut scratch.values,
                    &mut scratch.mantissas,
                )
                .map_err(|e| corrupt(e.to_string()))?;
                let times = &scratch.times;
                check_times(times, meta).map_err(corrupt)?;
                let from = times.partition_point(|&t| t < range.start_ms);
                let to = times.partition_point(|&t| t <= range.end_ms);
                out.extend(times[from..to].iter().zip(&scratch.values[from..to]).map(
                    |(&timestamp_ms, &value)| Sample {
                        timestamp_ms,
                        value,
                    },
                ));
            }
            Encoding::Xor => {
                let chunk = Chunk::from_bytes(data).map_err(|e| corrupt(e.to_string()))?;
                let mut iter = chunk.iter();
                push_checked(&mut iter, meta, range, out).map_err(corrupt)?;
                if let Some(error) = iter.err() {
                    return Err(corrupt(error.to_string()));
                }
            }
        }
        Ok(())
    }
}

/// Buffers a series' decimal chunks are decoded into, one chunk at a
/// time: allocated once per series, not per chunk.
#[derive(Default)]
struct DecodeScratch {
    times: Vec<i64>,
    values: Vec<f64>,
    mantissas: Vec<i64>,
}

/// The checks the index allows on a chunk's decoded timestamps: as many
/// as it says, the first at `min_time`, strictly increasing, the last at
/// `max_time`.
fn check_times(times: &[i64], meta: &ChunkMeta) -> Result<(), String> {
    let ordered = times.first() == Some(&meta.min_time)
        && times.last() == Some(&meta.max_time)
        && times.len() == meta.samples as usize
        && times.windows(2).all(|w| w[0] < w[1]);
    if ordered {
        Ok(())
    } else {
        Err(format!(
            "decoded {} samples, not strictly increasing from {} to {} as the index says",
            times.len(),
            meta.min_time,
            meta.max_time
        ))
    }
}

/// Appends the samples of one chunk's decoder that lie in `range` to
/// `out`, checking each against the index's description of the chunk:
/// the first at `min_time`, strictly increasing, none past `max_time`,
/// `samples` of them ending at `max_time`.
#[inline]
fn push_checked(
    iter: &mut impl Iterator<Item = Sample>,
    meta: &ChunkMeta,
    range: TimeRange,
    out: &mut Vec<Sample>,
) -> Result<(), String> {
    let whole = range.start_ms <= meta.min_time && meta.max_time <= range.end_ms;
    let mut decoded = 0u32;
    let mut previous: Option<i64> = None;
    for sample in iter {
        let ts = sample.timestamp_ms;
        let in_order = match previous {
            None => ts == meta.min_time,
            Some(previous) => previous < ts && ts <= meta.max_time,
        };
        if !in_order {
            return Err(format!(
                "timestamp {ts} out of order or outside the chunk's range"
            ));
        }
        previous = Some(ts);
        decoded += 1;
        if whole || range.contains(ts) {
            out.push(sample);
        }
    }
    if decoded != meta.samples || previous != Some(meta.max_time) {
        return Err(format!(
            "decoded {decoded} samples ending at {previous:?}, the index says {} ending at {}",
            meta.samples, meta.max_time
        ));
    }
    Ok(())
}

/// The chunks of `series` that overlap `range`: one contiguous run, since
/// chunks are in time order and do not overlap (checked at open).
fn chunks_in(series: &IndexSeries, range: TimeRange) -> &[ChunkMeta] {
    let first = series
        .chunks
        .partition_point(|c| c.max_time < range.start_ms);
    let last = series
        .chunks
        .partition_point(|c| c.min_time <= range.end_ms);
    series.chunks.get(first..last).unwrap_or(&[])
}

/// At most how many samples [`Block::read_samples_into`] appends for
/// `series` in `range`: the samples of the chunks that overlap it (each
/// at most `MAX_SAMPLES_PER_CHUNK`, checked when the index was read).
pub fn samples_bound(series: &IndexSeries, range: TimeRange) -> usize {
    chunks_in(series, range)
        .iter()
        .map(|c| c.samples as usize)
        .sum()
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
