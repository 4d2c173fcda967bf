//! [`write_block`]: series in, a complete, durable block directory out —
//! or nothing at all.
//!
//! The bottleneck it removes: the head cannot grow forever, and a WAL
//! replayed from the beginning of time makes every restart slower. Writing
//! a finished time range as a block lets both be truncated (docs chapter 3,
//! "Blocks").
//!
//! Crash safety is by construction, as in Prometheus: everything is written
//! into `<parent>/<id>.tmp/`, each file fsynced, `meta.json` last; then the
//! directory is renamed to `<parent>/<id>` and the parent fsynced. A crash
//! before the rename leaves only a `.tmp` directory, which no reader opens
//! (its `meta.json` id does not match its name) and which the next write of
//! the same id clears; after it, the block is whole.
//!
//! The writer checks what it is given rather than trusting the caller: a
//! series whose samples are not strictly increasing in time, a series given
//! twice, or a label named `__name__` (which would contradict the metric
//! name) is refused with [`BlockError::InvalidSeries`] instead of being
//! written as a block that answers wrongly. Series without samples are
//! dropped; a block with no sample at all is refused with
//! [`BlockError::Empty`] — the caller skips writing it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{LabelMatcher, Labels};

use super::chunks_file::{self, CHUNKS_FILE};
use super::index_file::{BlockIndex, ChunkMeta, INDEX_FILE, IndexSeries};
use super::meta::{BlockMeta, BlockStats, Compaction, META_FILE, META_VERSION};
use super::{BlockError, series_key};
use crate::chunk::{Chunk, EncodingPolicy, SAMPLES_PER_CHUNK};
use crate::head::SeriesSamples;
use crate::index::SeriesId;

/// Suffix of the directory a block is written in before it is complete.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `series` as block `id` under `parent` and returns its meta.
///
/// `sequence` ranks the block among others (the higher wins for a sample
/// both hold); `level` and `sources` record its compaction history — a
/// block cut from the head is level 1 with `sources = [id]`. Series are
/// stored sorted by (name, labels) in chunks of [`SAMPLES_PER_CHUNK`]
/// samples, each encoded with [`EncodingPolicy::Smallest`].
///
/// # Errors
/// - [`BlockError::InvalidArgument`] for an id that is not a plain
///   directory name;
/// - [`BlockError::InvalidSeries`] for samples not strictly increasing in
///   time, a series given twice, or a `__name__` label;
/// - [`BlockError::Empty`] when no series has a sample;
/// - [`BlockError::AlreadyExists`] when `<parent>/<id>` exists;
/// - [`BlockError::Io`] when the disk refuses (the `.tmp` directory is then
///   removed, best effort).
pub fn write_block(
    parent: &Path,
    id: &str,
    sequence: u64,
    level: u32,
    sources: Vec<String>,
    series: Vec<SeriesSamples>,
) -> Result<BlockMeta, BlockError> {
    let series = prepare(series)?;
    let mut encoded = Vec::with_capacity(series.len());
    for entry in series {
        let mut chunks = Vec::with_capacity(entry.samples.len().div_ceil(SAMPLES_PER_CHUNK));
        for samples in entry.samples.chunks(SAMPLES_PER_CHUNK) {
            chunks.push(
                Chunk::encode(samples, EncodingPolicy::Smallest).map_err(|source| {
                    BlockError::Chunk {
                        series: series_key(&entry.name, &entry.labels),
                        source,
                    }
                })?,
            );
        }
        encoded.push(SeriesChunks {
            name: entry.name,
            labels: entry.labels,
            chunks,
        });
    }
    write_block_chunks(parent, id, sequence, level, sources, encoded)
}

/// One series as sealed chunks, ready to be written as they are: what the
/// head holds and what a block stores, so cutting a block or compacting
/// blocks that do not overlap copies chunks instead of decoding and
/// re-encoding every sample (as Prometheus does).
#[derive(Clone, Debug)]
pub struct SeriesChunks {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// In time order, not overlapping; each chunk's samples strictly
    /// increasing (as every sealed chunk's are).
    pub chunks: Vec<Chunk>,
}

/// As [`write_block`], from sealed chunks, which are stored byte for byte.
///
/// # Errors
/// As [`write_block`]; [`BlockError::InvalidSeries`] also when a series'
/// chunks overlap in time or are out of order.
pub fn write_block_chunks(
    parent: &Path,
    id: &str,
    sequence: u64,
    level: u32,
    sources: Vec<String>,
    series: Vec<SeriesChunks>,
) -> Result<BlockMeta, BlockError> {
    check_id(id)?;
    let series = prepare_chunks(series)?;
    let final_dir = parent.join(id);
    if exists(&final_dir)? {
        return Err(BlockError::AlreadyExists {
            path: final_dir.display().to_string(),
        });
    }
    let tmp_dir = tmp_dir(parent, id);
    // A `.tmp` directory is an earlier attempt at this very block that
    // never completed: nothing refers to it, so it is cleared, not kept.
    if exists(&tmp_dir)? {
        fs::remove_dir_all(&tmp_dir).map_err(|e| BlockError::io(&tmp_dir, e))?;
    }
    fs::create_dir(&tmp_dir).map_err(|e| BlockError::io(&tmp_dir, e))?;

    let written = write_files(&tmp_dir, id, sequence, level, sources, &series).and_then(|meta| {
        // Checked again just before the rename: on Linux, rename(2) would
        // silently replace an empty directory created in the meantime.
        if exists(&final_dir)? {
            return Err(BlockError::AlreadyExists {
                path: final_dir.display().to_string(),
            });
        }
        fs::rename(&tmp_dir, &final_dir).map_err(|e| BlockError::io(&final_dir, e))?;
        Ok(meta)
    });
    let meta = match written {
        Ok(meta) => meta,
        Err(error) => {
            // Best effort: the error that matters is the one returned.
            let _ = fs::remove_dir_all(&tmp_dir);
            return Err(error);
        }
    };
    // The rename is durable only once the parent directory is synced.
    sync_dir(parent)?;
    Ok(meta)
}

/// Refuses ids that are not one plain path component: an id is joined to
/// `parent`, so `..` or `a/b` would write elsewhere.
fn check_id(id: &str) -> Result<(), BlockError> {
    let plain = !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '\0'])
        && !id.ends_with(TMP_SUFFIX);
    if plain {
        Ok(())
    } else {
        Err(BlockError::InvalidArgument(format!(
            "block id {id:?} must be a plain directory name not ending in {TMP_SUFFIX}"
        )))
    }
}

fn exists(path: &Path) -> Result<bool, BlockError> {
    // `symlink_metadata`: a dangling symlink named like the block counts.
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BlockError::io(path, e)),
    }
}

/// Drops empty series and checks that each one's samples are strictly
/// increasing: the one thing chunks cannot check once encoded. The rest
/// (names, duplicates, order) is [`prepare_chunks`]'s.
fn prepare(mut series: Vec<SeriesSamples>) -> Result<Vec<SeriesSamples>, BlockError> {
    series.retain(|s| !s.samples.is_empty());
    for entry in &series {
        if let Some(pair) = entry
            .samples
            .windows(2)
            .find(|pair| pair[0].timestamp_ms >= pair[1].timestamp_ms)
        {
            return Err(BlockError::InvalidSeries {
                series: series_key(&entry.name, &entry.labels),
                message: format!(
                    "samples not strictly increasing in time: {} then {}",
                    pair[0].timestamp_ms, pair[1].timestamp_ms
                ),
            });
        }
    }
    Ok(series)
}

/// Drops empty chunks and series, checks chunk order and overlap, the
/// `__name__` label and duplicates, sorts by (name, labels).
fn prepare_chunks(mut series: Vec<SeriesChunks>) -> Result<Vec<SeriesChunks>, BlockError> {
    for entry in &mut series {
        entry.chunks.retain(|c| !c.is_empty());
    }
    series.retain(|s| !s.chunks.is_empty());
    for entry in &series {
        let invalid = |message: String| BlockError::InvalidSeries {
            series: series_key(&entry.name, &entry.labels),
            message,
        };
        if entry.labels.get(LabelMatcher::METRIC_NAME).is_some() {
            return Err(invalid(
                "a label named __name__ would contradict the metric name".into(),
            ));
        }
        let bounds: Vec<(i64, i64)> = entry
            .chunks
            .iter()
            .map(|c| {
                (
                    c.min_time().unwrap_or(i64::MAX),
                    c.max_time().unwrap_or(i64::MIN),
                )
            })
            .collect();
        if let Some(pair) = bounds.windows(2).find(|pair| pair[0].1 >= pair[1].0) {
            return Err(invalid(format!(
                "chunks overlap or are out of order: one ends at {}, the next starts at {}",
                pair[0].1, pair[1].0
            )));
        }
    }
    if series.is_empty() {
        return Err(BlockError::Empty);
    }
    series.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    if let Some(pair) = series
        .windows(2)
        .find(|pair| (&pair[0].name, &pair[0].labels) == (&pair[1].name, &pair[1].labels))
    {
        return Err(BlockError::InvalidSeries {
            series: series_key(&pair[0].name, &pair[0].labels),
            message: "given twice; merge its samples first".into(),
        });
    }
    if series.len() > SeriesId::MAX as usize {
        return Err(BlockError::InvalidArgument(format!(
            "{} series; a block holds at most {}",
            series.len(),
            SeriesId::MAX
        )));
    }
    Ok(series)
}

/// Writes `chunks`, `index` and `meta.json` into `dir`, each fsynced, then
/// fsyncs `dir` itself.
fn write_files(
    dir: &Path,
    id: &str,
    sequence: u64,
    level: u32,
    mut sources: Vec<String>,
    series: &[SeriesChunks],
) -> Result<BlockMeta, BlockError> {
    let chunks_path = dir.join(CHUNKS_FILE);
    let mut chunks = Vec::new();
    chunks.extend_from_slice(&chunks_file::header());
    let mut index_series = Vec::with_capacity(series.len());
    let mut stats = BlockStats::default();
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    for entry in series {
        let mut metas = Vec::with_capacity(entry.chunks.len());
        for chunk in &entry.chunks {
            let bytes = chunk.to_bytes();
            let offset = chunks.len() as u64;
            chunks_file::put_record(&mut chunks, &bytes);
            // Non-empty (prepare_chunks dropped the empty ones).
            let (first, last) = (
                chunk.min_time().unwrap_or_default(),
                chunk.max_time().unwrap_or_default(),
            );
            min_time = min_time.min(first);
            max_time = max_time.max(last);
            stats.samples += chunk.len() as u64;
            metas.push(ChunkMeta {
                min_time: first,
                max_time: last,
                samples: chunk.len() as u32,
                offset,
                data_len: bytes.len() as u64,
            });
        }
        stats.series += 1;
        stats.chunks += metas.len() as u64;
        index_series.push(IndexSeries {
            name: entry.name.clone(),
            labels: entry.labels.clone(),
            chunks: metas,
        });
    }
    // The whole file is built in memory first, compressed: a block holds a
    // bounded time range. Streaming it to disk would bound memory further.
    write_synced(&chunks_path, &chunks)?;
    let index = BlockIndex::encode(&index_series);
    write_synced(&dir.join(INDEX_FILE), &index)?;
    stats.bytes = (chunks.len() + index.len()) as u64;

    sources.sort();
    sources.dedup();
    let meta = BlockMeta {
        version: META_VERSION,
        id: id.to_string(),
        sequence,
        min_time,
        max_time,
        stats,
        compaction: Compaction { level, sources },
    };
    write_synced(&dir.join(META_FILE), &meta.to_json()?)?;
    sync_dir(dir)?;
    Ok(meta)
}

/// Creates `path` with `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BlockError> {
    let io = |e| BlockError::io(path, e);
    let mut file = File::create_new(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Fsyncs a directory, making the names created or renamed in it durable.
fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlockError::io(dir, e))
}

/// The directory a block `id` is written in before it is renamed.
pub fn tmp_dir(parent: &Path, id: &str) -> PathBuf {
    parent.join(format!("{id}{TMP_SUFFIX}"))
}
