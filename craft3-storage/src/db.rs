//! `Db`: the whole engine — WAL, head, blocks — and the life cycle that
//! moves data between them: append (WAL, then head), persist (head →
//! block, then a WAL checkpoint), compaction (small blocks → larger ones),
//! retention (old blocks deleted), and replay on start.
//!
//! The bottleneck it removes: phase0 keeps every sample forever in one
//! JSON file that each query re-reads. Here recent data is in memory,
//! older data in immutable, indexed, compressed blocks a query opens only
//! when their time range overlaps; and the durable copy of recent data is
//! an append-only log instead of a file reopened per sample. Docs chapter
//! 3, "Blocks, compaction, retention".
//!
//! ```text
//! <dir>/wal/      segments + checkpoint        (crate::wal)
//! <dir>/blocks/<id>/{chunks,index,meta.json}   (crate::block)
//! ```
//!
//! # Ordering, and why nothing is lost or seen twice
//!
//! - **Append** holds the WAL mutex while it resolves the batch's series,
//!   writes one WAL record (plus definitions of series the WAL has not
//!   seen), and applies the samples to the head: the WAL's order is the
//!   head's order, so replay reproduces "last write wins" exactly.
//! - **Persist** (when the head spans 1.5 × `block_range_ms`, as
//!   Prometheus does), under the WAL mutex so no append interleaves:
//!   copies the samples before the cut (the end of the block range holding
//!   the head's oldest sample) into a *pending* in-memory block that
//!   readers already see, then drops them from the head, then rolls the WAL.
//!   Without the mutex: writes the block (temp dir, fsync, rename, fsync),
//!   swaps it in for the pending one, and writes a checkpoint of what the
//!   head holds, which deletes the older segments. A crash before the
//!   checkpoint replays samples the block also has — same values, merged.
//! - **Readers** read the head first, then one snapshot of (blocks,
//!   pending): a sample leaves the head only after it is in the snapshot
//!   readers will take, so a reader never misses it between the two.
//! - **Newest wins**: for the same series and timestamp the head beats
//!   the pending block, which beats blocks; among blocks the higher
//!   `sequence` wins. Compaction merges every overlapping block at once
//!   and keeps the highest sequence, so the ranking survives it. `select`
//!   groups each series' parts across the sources (a k-way merge of their
//!   sorted series lists) and merges the groups in parallel: parts that do
//!   not overlap in time are decoded in time order into one buffer, no
//!   sort, no copy; overlapping ones are appended oldest source first and
//!   stably sorted keeping the last sample of each timestamp.
//! - **Compaction** writes the merged block (atomically), swaps it in for
//!   its inputs in one step, then deletes the inputs (renamed to
//!   `*.deleted` first). On start, `*.tmp` and `*.deleted` directories are
//!   removed, and so is a block whose sources another, higher-level block
//!   already holds (a crash between the swap and the deletion).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{LabelMatcher, Labels, Metric, SeriesKey, TimeRange};
use parking_lot::{Condvar, Mutex, RwLock};
use thiserror::Error;

use rayon::prelude::*;

use crate::block::{self, Block, BlockError, BlockMeta, IndexSeries, SeriesChunks};
use crate::chunk::{Chunk, Sample};
use crate::head::memseries::sort_keep_last;
use crate::head::{ChunkPolicy, Head, HeadConfig, HeadError, SeriesEntry, SeriesSamples};
use crate::wal::{
    self, ReplayStats, Wal, WalConfig, WalError, WalFsync, WalRecord, WalSample, encode_samples,
    encode_series,
};

/// Two hours, Prometheus' block range.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3_600_000;

/// Why the engine failed.
#[derive(Debug, Error)]
pub enum DbError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A block could not be written or read.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The head refused (series limit) or could not decode a chunk.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// Some samples of a batch were refused by the series limit; the rest
    /// were stored.
    #[error("{refused} samples refused: {source}")]
    Refused {
        /// The first refusal.
        source: HeadError,
        /// Samples refused.
        refused: usize,
    },
    /// A directory could not be read or changed.
    #[error("storage I/O error on {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration cannot work.
    #[error("invalid storage configuration: {0}")]
    Config(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How the engine is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbConfig {
    /// The head: series limit, chunk cutting.
    pub head: HeadConfig,
    /// The WAL: segment size, fsync policy.
    pub wal: WalConfig,
    /// Time range of a block cut from the head.
    pub block_range_ms: i64,
    /// Ranges compaction builds, each a multiple of `block_range_ms`, in
    /// increasing order (default ×3 and ×9: 6 h and 18 h).
    pub compaction_ranges_ms: Vec<i64>,
    /// Blocks whose newest sample is older than this, counted back from
    /// the newest sample stored, are deleted. `None`: keep forever.
    pub retention_ms: Option<i64>,
    /// How often the background thread persists, compacts and applies
    /// retention. `None`: no thread; the owner calls [`Db::maintain`]
    /// (tests do, for determinism).
    pub maintenance_interval: Option<Duration>,
}

/// The ranges compaction builds from blocks of `block_range_ms`: three
/// and nine of them, as Prometheus' 2 h → 6 h → 18 h ladder.
pub fn compaction_ranges(block_range_ms: i64) -> Vec<i64> {
    vec![
        block_range_ms.saturating_mul(3),
        block_range_ms.saturating_mul(9),
    ]
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            // Appends seal chunks as XOR; each maintenance pass (the
            // background thread, or the owner's `maintain`) picks the
            // smaller codec for them, off the append path.
            head: HeadConfig {
                chunks: ChunkPolicy {
                    defer_choice: true,
                    ..ChunkPolicy::default()
                },
                ..HeadConfig::default()
            },
            wal: WalConfig::default(),
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            compaction_ranges_ms: compaction_ranges(DEFAULT_BLOCK_RANGE_MS),
            retention_ms: None,
            maintenance_interval: Some(Duration::from_secs(1)),
        }
    }
}

impl DbConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DbError::Config`] naming the bad value.
    pub fn validate(&self) -> Result<(), DbError> {
        self.head.validate()?;
        if self.block_range_ms <= 0 {
            return Err(DbError::Config(format!(
                "block range must be positive, got {} ms",
                self.block_range_ms
            )));
        }
        let mut previous = self.block_range_ms;
        for &range in &self.compaction_ranges_ms {
            if range <= previous || range % self.block_range_ms != 0 {
                return Err(DbError::Config(format!(
                    "compaction range {range} ms must be a multiple of the block range ({} ms) and larger than the range before it",
                    self.block_range_ms
                )));
            }
            previous = range;
        }
        if self.retention_ms.is_some_and(|r| r <= 0) {
            return Err(DbError::Config("retention must be positive".into()));
        }
        if self.wal.segment_bytes == 0 {
            return Err(DbError::Config("WAL segment size must be positive".into()));
        }
        Ok(())
    }
}

/// A block cut from the head, not yet on disk.
#[derive(Debug)]
struct Pending {
    sequence: u64,
    series: Vec<SeriesChunks>,
}

/// What readers snapshot: the blocks (by sequence, ascending) and the
/// pending block.
#[derive(Clone, Debug, Default)]
struct Persisted {
    blocks: Vec<Arc<Block>>,
    pending: Option<Arc<Pending>>,
}

#[derive(Debug)]
struct WalState {
    wal: Wal,
    /// Series ids whose definition this process has written to the WAL.
    logged: Vec<bool>,
    samples: Vec<WalSample>,
    /// Segment closed by the last persist, whose checkpoint is still due.
    checkpoint_due: Option<u64>,
}

/// Counts for `/health`, tests and the chapter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Series in the head.
    pub head_series: usize,
    /// Blocks on disk.
    pub blocks: usize,
    /// Bytes of the blocks' `chunks` and `index` files.
    pub block_bytes: u64,
    /// Samples in the blocks.
    pub block_samples: u64,
    /// What the WAL replay at open found.
    pub replay: ReplayStats,
    /// Samples replayed whose series definition was missing (damage).
    pub replay_orphans: u64,
    /// Blocks persisted from the head by this process.
    pub persisted: u64,
    /// Compactions run by this process.
    pub compactions: u64,
    /// Blocks deleted by retention by this process.
    pub retention_deleted: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    blocks_dir: PathBuf,
    config: DbConfig,
    head: Head,
    wal: Mutex<WalState>,
    persisted: RwLock<Persisted>,
    /// One persist / compaction / retention pass at a time.
    maintenance: Mutex<()>,
    next_id: AtomicU64,
    next_sequence: AtomicU64,
    stats: Mutex<DbStats>,
    /// Blocks deleted by retention, readable without a lock (the query
    /// cache polls it before every range query, `MetricStore::deletions`).
    retention_deletions: AtomicU64,
    /// Deletions (`Db::delete`) that removed samples.
    deletes: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Worker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

/// The craft 3 storage engine.
#[derive(Debug)]
pub struct Db {
    inner: Arc<Inner>,
    worker: Option<Worker>,
}

impl Db {
    /// Opens (creating) the engine in `dir`: cleans up interrupted
    /// swaps, opens every block, replays the WAL into a fresh head, and
    /// starts the background thread when configured.
    ///
    /// # Errors
    /// [`DbError::Config`]; [`DbError::Io`]/[`DbError::Wal`] when the
    /// directories cannot be used; [`DbError::Block`] when a block cannot
    /// be opened (named in the message; the engine refuses to start rather
    /// than serve answers with a hole in them).
    pub fn open(dir: &Path, config: DbConfig) -> Result<Db, DbError> {
        config.validate()?;
        let blocks_dir = dir.join("blocks");
        fs::create_dir_all(&blocks_dir).map_err(io_error(&blocks_dir))?;
        let (blocks, max_id) = open_blocks(&blocks_dir)?;
        let max_sequence = blocks.iter().map(|b| b.meta().sequence).max().unwrap_or(0);

        // Chunks never straddle a block boundary: persisting drops whole
        // chunks from the head instead of re-encoding them.
        let mut head_config = config.head;
        head_config.chunks.align_ms = Some(config.block_range_ms);

        let head = Head::new(head_config)?;
        let mut refs: Vec<Option<Arc<SeriesEntry>>> = Vec::new();
        let mut orphans = 0u64;
        let mut refused = 0u64;
        let (wal, replay) = Wal::open(&dir.join("wal"), config.wal, &mut |record| match record {
            WalRecord::Series {
                wal_ref,
                name,
                labels,
            } => {
                // Refs are dense head ids; a huge one is damage, not a
                // reason to allocate.
                let Ok(at) = usize::try_from(wal_ref) else {
                    return;
                };
                if at > config.head.series_limit.saturating_mul(4).max(1 << 20) {
                    return;
                }
                if refs.len() <= at {
                    refs.resize(at + 1, None);
                }
                match head.series(&name, &labels) {
                    Ok(entry) => refs[at] = Some(entry),
                    Err(_) => {
                        refs[at] = None;
                        refused += 1;
                    }
                }
            }
            WalRecord::Samples(samples) => {
                for sample in samples {
                    let entry = usize::try_from(sample.wal_ref)
                        .ok()
                        .and_then(|at| refs.get(at))
                        .and_then(Option::as_ref);
                    match entry {
                        Some(entry) => {
                            // Only a chunk that cannot be sealed fails here,
                            // impossible under a validated configuration.
                            let _ = head
                                .append_to(entry, Sample::new(sample.timestamp_ms, sample.value));
                        }
                        None => orphans += 1,
                    }
                }
            }
            WalRecord::Delete {
                start_ms,
                end_ms,
                refs: deleted,
            } => {
                let entries: Vec<Arc<SeriesEntry>> = deleted
                    .iter()
                    .filter_map(|r| usize::try_from(*r).ok())
                    .filter_map(|at| refs.get(at).cloned().flatten())
                    .collect();
                // Only a chunk that cannot be decoded fails here; the
                // samples then stay, as they were before the deletion.
                let _ = head.delete_in(&entries, TimeRange::new(start_ms, end_ms));
            }
        })?;
        if refused > 0 {
            common::say_err!(
                "[Storage] WAL replay: {refused} series refused by the series limit of {}",
                config.head.series_limit
            );
        }
        for line in &replay.damage {
            common::say_err!("[Storage] WAL replay: {line}");
        }
        let stats = DbStats {
            replay,
            replay_orphans: orphans,
            ..DbStats::default()
        };
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            blocks_dir,
            config: config.clone(),
            head,
            wal: Mutex::new(WalState {
                wal,
                logged: Vec::new(),
                samples: Vec::new(),
                checkpoint_due: None,
            }),
            persisted: RwLock::new(Persisted {
                blocks,
                pending: None,
            }),
            maintenance: Mutex::new(()),
            next_id: AtomicU64::new(max_id + 1),
            next_sequence: AtomicU64::new(max_sequence + 1),
            stats: Mutex::new(stats),
            retention_deletions: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let worker = config
            .maintenance_interval
            .map(|interval| Worker::start(inner.clone(), interval));
        Ok(Db { inner, worker })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration.
    pub fn config(&self) -> &DbConfig {
        &self.inner.config
    }

    /// The head (benches, tests).
    pub fn head(&self) -> &Head {
        &self.inner.head
    }

    /// Appends a batch: WAL first, then the head. Samples of series the
    /// limit refuses are skipped; the rest are stored and the refusal is
    /// returned as [`DbError::Refused`].
    ///
    /// # Errors
    /// [`DbError::Wal`] (nothing of the batch is stored), or
    /// [`DbError::Refused`].
    pub fn append(&self, metrics: &[Metric]) -> Result<(), DbError> {
        self.inner.append(metrics)
    }

    /// Series matching every matcher with their samples in `range`, head
    /// and blocks merged (newest write wins), ordered by (name, labels).
    ///
    /// # Errors
    /// [`DbError::Block`] when a block cannot be read, [`DbError::Head`]
    /// when a head chunk cannot be decoded.
    pub fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesSamples>, DbError> {
        self.inner.select(matchers, range)
    }

    /// The name and labels of every series matching every matcher with a
    /// chunk reaching into `range`, in head, blocks or the block being
    /// written, ordered by (name, labels), each once: indexes and chunk
    /// bounds only, no sample read.
    pub fn series(&self, matchers: &[LabelMatcher], range: TimeRange) -> Vec<SeriesKey> {
        let mut keys = self.inner.head.series_keys(matchers, range);
        let persisted = self.inner.persisted.read().clone();
        for block in &persisted.blocks {
            keys.extend(
                block
                    .matching(matchers, range)
                    .into_iter()
                    .map(|s| SeriesKey {
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                    }),
            );
        }
        if let Some(pending) = &persisted.pending {
            keys.extend(
                pending
                    .series
                    .iter()
                    .filter(|s| {
                        common::matches_all(matchers, &s.name, &s.labels)
                            && s.chunks.iter().any(|c| chunk_overlaps(c, range))
                    })
                    .map(|s| SeriesKey {
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                    }),
            );
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Label names in head and blocks, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names = self.inner.head.label_names();
        let persisted = self.inner.persisted.read().clone();
        for block in &persisted.blocks {
            names.extend(block.label_names());
        }
        if let Some(pending) = &persisted.pending {
            for series in &pending.series {
                names.push(LabelMatcher::METRIC_NAME.to_string());
                names.extend(series.labels.iter().map(|(k, _)| k.to_string()));
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Values of label `name` (`__name__`: metric names) in head and
    /// blocks, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut values = self.inner.head.label_values(name);
        let persisted = self.inner.persisted.read().clone();
        for block in &persisted.blocks {
            values.extend(block.label_values(name));
        }
        if let Some(pending) = &persisted.pending {
            for series in &pending.series {
                if name == LabelMatcher::METRIC_NAME {
                    values.push(series.name.clone());
                } else if let Some(value) = series.labels.get(name) {
                    values.push(value.to_string());
                }
            }
        }
        values.sort();
        values.dedup();
        values
    }

    /// Fsyncs the WAL.
    ///
    /// # Errors
    /// [`DbError::Wal`].
    pub fn flush(&self) -> Result<(), DbError> {
        Ok(self.inner.wal.lock().wal.sync()?)
    }

    /// One maintenance pass: persist the head while it spans 1.5 block
    /// ranges, compact, apply retention. The background thread calls it;
    /// so can the owner (it is serialised).
    ///
    /// # Errors
    /// The first failure; what was done before it stays done.
    pub fn maintain(&self) -> Result<(), DbError> {
        self.inner.maintain()
    }

    /// Cuts everything in the head before `cut` into blocks now, one per
    /// block range, whatever the head's span (tests, benches, the
    /// bytes-per-sample measurement), then checkpoints the WAL once.
    /// Returns false when there was nothing to cut.
    ///
    /// # Errors
    /// As [`Db::maintain`].
    pub fn persist_before(&self, cut: i64) -> Result<bool, DbError> {
        let _pass = self.inner.maintenance.lock();
        let range = self.inner.config.block_range_ms;
        let mut any = false;
        while let Some((min, _)) = self.inner.head.time_bounds() {
            if min >= cut {
                break;
            }
            let window_end = min
                .div_euclid(range)
                .saturating_mul(range)
                .saturating_add(range);
            if !self.inner.persist(window_end.min(cut))? {
                break;
            }
            any = true;
        }
        self.inner.finish_pending(true)?;
        Ok(any)
    }

    /// The blocks' metadata, by sequence.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.inner
            .persisted
            .read()
            .blocks
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    /// Blocks deleted by retention since open; cheap (one atomic load).
    pub fn retention_deletions(&self) -> u64 {
        self.inner.retention_deletions.load(Ordering::Acquire)
    }

    /// Changes to stored data no append reports, since open: blocks
    /// deleted by retention, and deletions that removed samples.
    pub fn deletions(&self) -> u64 {
        self.retention_deletions() + self.inner.deletes.load(Ordering::Acquire)
    }

    /// Deletes the samples in `range` (both ends inclusive) of every series
    /// matching every matcher, everywhere they are: the head (with a WAL
    /// record, fsynced before this returns, so a restart does not bring
    /// them back) and every block holding some, which is rewritten without
    /// them at once — so a series left with no sample is gone from the
    /// block's index, and from label listings, as soon as this returns,
    /// not at some later compaction. Samples appended afterwards, into the
    /// same range or not, are kept. Returns how many samples went.
    ///
    /// Cost: a rewrite per block touched, proportional to its size (the
    /// lesson's trade: Prometheus writes tombstones instead and leaves the
    /// index as it was until a compaction rewrites the block).
    ///
    /// # Errors
    /// [`DbError::Wal`] before anything is deleted; [`DbError::Block`]
    /// when a block cannot be read or rewritten (the head's part, and the
    /// blocks done before it, stay deleted; retrying finishes the rest).
    pub fn delete(&self, matchers: &[LabelMatcher], range: TimeRange) -> Result<u64, DbError> {
        self.inner.delete(matchers, range)
    }

    /// Counts.
    pub fn stats(&self) -> DbStats {
        let mut stats = self.inner.stats.lock().clone();
        stats.head_series = self.inner.head.series_count();
        let persisted = self.inner.persisted.read();
        stats.blocks = persisted.blocks.len();
        stats.block_bytes = persisted.blocks.iter().map(|b| b.meta().stats.bytes).sum();
        stats.block_samples = persisted
            .blocks
            .iter()
            .map(|b| b.meta().stats.samples)
            .sum();
        stats
    }

    /// The last background failure, if any.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().clone()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            worker.stop();
        }
        if self.inner.config.wal.fsync != WalFsync::Never
            && let Err(e) = self.inner.wal.lock().wal.sync()
        {
            common::say_err!("[Storage] final WAL fsync failed: {e}");
        }
    }
}

impl Worker {
    fn start(inner: Arc<Inner>, interval: Duration) -> Worker {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let fsync_every = match inner.config.wal.fsync {
            WalFsync::Interval(every) => Some(every),
            WalFsync::EveryBatch | WalFsync::Never => None,
        };
        let tick = fsync_every.map_or(interval, |every| every.min(interval));
        let handle = std::thread::Builder::new()
            .name("craft3-maintenance".into())
            .spawn(move || {
                let mut last_maintenance = Instant::now();
                loop {
                    {
                        let (stopped, wake) = &*signal;
                        let mut stopped = stopped.lock();
                        if !*stopped {
                            wake.wait_for(&mut stopped, tick);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    if fsync_every.is_some() {
                        inner.background_sync();
                    }
                    if last_maintenance.elapsed() >= interval {
                        last_maintenance = Instant::now();
                        if let Err(e) = inner.maintain() {
                            common::say_err!("[Storage] maintenance failed: {e}");
                            *inner.last_error.lock() = Some(e.to_string());
                        }
                    }
                }
            })
            .ok();
        if handle.is_none() {
            common::say_err!("[Storage] could not start the maintenance thread");
        }
        Worker { stop, handle }
    }

    fn stop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock() = true;
        wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Inner {
    fn append(&self, metrics: &[Metric]) -> Result<(), DbError> {
        let mut state = self.wal.lock();
        let WalState {
            wal,
            logged,
            samples,
            ..
        } = &mut *state;
        samples.clear();
        let mut new_series: Vec<(u64, String, Labels)> = Vec::new();
        let refused = self.head.resolve_batch(metrics, |metric, entry| {
            let id = entry.id as usize;
            if logged.len() <= id {
                logged.resize(id + 1, false);
            }
            if !logged[id] {
                logged[id] = true;
                new_series.push((
                    u64::from(entry.id),
                    entry.name.clone(),
                    entry.labels.clone(),
                ));
            }
            samples.push(WalSample {
                wal_ref: u64::from(entry.id),
                timestamp_ms: metric.timestamp_ms,
                value: metric.value,
            });
        });
        let definitions: Vec<(u64, &str, &Labels)> = new_series
            .iter()
            .map(|(id, name, labels)| (*id, name.as_str(), labels))
            .collect();
        if let Err(e) = wal.log(&definitions, samples) {
            // Not in the WAL: define them again with the next batch.
            for (id, _, _) in &new_series {
                logged[*id as usize] = false;
            }
            return Err(e.into());
        }
        self.head.append_ids(
            samples
                .iter()
                .map(|s| (s.wal_ref, Sample::new(s.timestamp_ms, s.value))),
        )?;
        match refused {
            None => Ok(()),
            Some((source, refused)) => Err(DbError::Refused { source, refused }),
        }
    }

    fn delete(&self, matchers: &[LabelMatcher], range: TimeRange) -> Result<u64, DbError> {
        if range.start_ms > range.end_ms {
            return Ok(0);
        }
        // No persist or compaction meanwhile: a block being written from
        // the head would miss the deletion.
        let _pass = self.maintenance.lock();
        self.finish_pending(false)?;
        let mut deleted = 0u64;
        {
            // Under the WAL lock no append interleaves: every sample
            // logged before the delete record is deleted, none after.
            let mut state = self.wal.lock();
            let WalState { wal, logged, .. } = &mut *state;
            let entries = self.head.series_touching(matchers, range);
            if !entries.is_empty() {
                let mut definitions: Vec<(u64, &str, &Labels)> = Vec::new();
                for entry in &entries {
                    let id = entry.id as usize;
                    if logged.len() <= id {
                        logged.resize(id + 1, false);
                    }
                    if !logged[id] {
                        definitions.push((u64::from(entry.id), &entry.name, &entry.labels));
                    }
                }
                let refs: Vec<u64> = entries.iter().map(|e| u64::from(e.id)).collect();
                wal.log_delete(&definitions, range.start_ms, range.end_ms, &refs)?;
                for (id, _, _) in &definitions {
                    logged[*id as usize] = true;
                }
                deleted += self.head.delete_in(&entries, range)? as u64;
            }
        }
        let blocks = self.persisted.read().blocks.clone();
        for block in blocks.iter().filter(|b| b.overlaps(range)) {
            if block.select(matchers, range)?.is_empty() {
                continue;
            }
            let mut removed = 0u64;
            let mut series = block.all_series()?;
            for one in &mut series {
                if common::matches_all(matchers, &one.name, &one.labels) {
                    let before = one.samples.len();
                    one.samples
                        .retain(|s| !(range.start_ms..=range.end_ms).contains(&s.timestamp_ms));
                    removed += (before - one.samples.len()) as u64;
                }
            }
            let meta = block.meta();
            // Same rank and level; its sources name the block it replaces
            // when that was cut from the head, so a crash before the old
            // one is deleted is recognised at open (see `open_blocks`).
            let sources = if meta.compaction.sources.is_empty() {
                vec![meta.id.clone()]
            } else {
                meta.compaction.sources.clone()
            };
            let id = self.new_id();
            let replacement = match block::write_block(
                &self.blocks_dir,
                &id,
                meta.sequence,
                meta.compaction.level,
                sources,
                series,
            ) {
                Ok(_) => Some(Arc::new(Block::open(&self.blocks_dir.join(&id))?)),
                // Everything in it was deleted.
                Err(BlockError::Empty) => None,
                Err(error) => return Err(error.into()),
            };
            {
                let mut persisted = self.persisted.write();
                persisted.blocks.retain(|b| !Arc::ptr_eq(b, block));
                persisted.blocks.extend(replacement);
                persisted.blocks.sort_by_key(|b| b.meta().sequence);
            }
            delete_block(&self.blocks_dir, block)?;
            deleted += removed;
        }
        if deleted > 0 {
            self.deletes.fetch_add(1, Ordering::AcqRel);
        }
        Ok(deleted)
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesSamples>, DbError> {
        // Head first, then the snapshot: see the module header.
        let head = self.head.select(matchers, range)?;
        let persisted = self.persisted.read().clone();
        let blocks: Vec<&Arc<Block>> = persisted
            .blocks
            .iter()
            .filter(|b| b.overlaps(range))
            .collect();
        if blocks.is_empty() && persisted.pending.is_none() {
            return Ok(head);
        }
        // Every source's matching series in (name, labels) order, oldest
        // source first (blocks by sequence, the pending block, the head):
        // the order in which a later sample is a newer write.
        let mut sources: Vec<Vec<Part<'_>>> = Vec::with_capacity(blocks.len() + 2);
        for block in &blocks {
            sources.push(
                block
                    .matching(matchers, range)
                    .into_iter()
                    .map(|series| Part::Block(block, series))
                    .collect(),
            );
        }
        if let Some(pending) = &persisted.pending {
            sources.push(
                pending
                    .series
                    .iter()
                    .filter(|series| {
                        common::matches_all(matchers, &series.name, &series.labels)
                            && series.chunks.iter().any(|c| chunk_overlaps(c, range))
                    })
                    .map(Part::Pending)
                    .collect(),
            );
        }
        sources.push(head.into_iter().map(Part::Head).collect());
        // Then each series' parts are merged into one buffer, series in
        // parallel: decoding is what a query over blocks spends its time on.
        let merged: Vec<Option<SeriesSamples>> = group_by_series(sources)
            .into_par_iter()
            .map(|parts| merge_parts(parts, range))
            .collect::<Result<_, DbError>>()?;
        Ok(merged.into_iter().flatten().collect())
    }

    fn background_sync(&self) {
        let handle = self.wal.lock().wal.take_sync_handle();
        let result = match handle {
            Ok(Some(file)) => file.sync_data().map_err(|e| e.to_string()),
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            common::say_err!("[Storage] WAL fsync failed: {e}");
            *self.last_error.lock() = Some(format!("WAL fsync failed: {e}"));
        }
    }

    fn maintain(&self) -> Result<(), DbError> {
        let _pass = self.maintenance.lock();
        self.head.settle()?;
        self.finish_pending(true)?;
        let range = self.config.block_range_ms;
        while let Some((min, max)) = self.head.time_bounds() {
            if max.saturating_sub(min) < range + range / 2 {
                break;
            }
            let cut = min
                .div_euclid(range)
                .saturating_mul(range)
                .saturating_add(range);
            if !self.persist(cut)? {
                break;
            }
        }
        // One checkpoint for however many blocks were cut.
        self.finish_pending(true)?;
        while self.compact_once()? {}
        self.apply_retention()
    }

    /// Moves everything before `cut` from the head into a block.
    fn persist(&self, cut: i64) -> Result<bool, DbError> {
        self.finish_pending(false)?;
        {
            let mut state = self.wal.lock();
            let series = self.head.chunks_before(cut)?;
            if series.is_empty() {
                return Ok(false);
            }
            let pending = Arc::new(Pending {
                sequence: self.next_sequence.fetch_add(1, Ordering::AcqRel),
                series,
            });
            self.persisted.write().pending = Some(pending);
            self.head.drop_before(cut)?;
            // The samples dropped are in segments up to the one closed
            // here; once the block is on disk, a checkpoint replaces them.
            let closed = state.wal.roll()?;
            state.checkpoint_due = Some(closed);
        }
        // The block now; the checkpoint once the caller has cut them all.
        self.finish_pending(false)?;
        self.stats.lock().persisted += 1;
        Ok(true)
    }

    /// Writes the pending block (if any) and, with `checkpoint`, the
    /// checkpoint due after it; a failure leaves both due for the next
    /// pass, nothing lost meanwhile (the pending block is served from
    /// memory, the WAL still has it). The checkpoint is never written while
    /// a block is pending: it would drop segments the pending block needs.
    fn finish_pending(&self, checkpoint: bool) -> Result<(), DbError> {
        let pending = self.persisted.read().pending.clone();
        if let Some(pending) = pending {
            let id = self.new_id();
            // The writer removes its own `.tmp` directory on failure.
            block::write_block_chunks(
                &self.blocks_dir,
                &id,
                pending.sequence,
                1,
                Vec::new(),
                pending.series.clone(),
            )?;
            let opened = Arc::new(Block::open(&self.blocks_dir.join(&id))?);
            let mut persisted = self.persisted.write();
            persisted.blocks.push(opened);
            persisted.blocks.sort_by_key(|b| b.meta().sequence);
            persisted.pending = None;
        }
        if !checkpoint {
            return Ok(());
        }
        let due = self.wal.lock().checkpoint_due;
        if let Some(upto) = due {
            self.write_checkpoint(upto)?;
            self.wal.lock().checkpoint_due = None;
        }
        Ok(())
    }

    /// The head as WAL records: a definition of every series, then its
    /// samples.
    fn write_checkpoint(&self, upto: u64) -> Result<(), DbError> {
        let mut failure = None;
        wal::write_checkpoint(&self.dir.join("wal"), upto, &mut |out| {
            for entry in self.head.all_series() {
                let samples = match entry.data.lock().samples_in(i64::MIN, i64::MAX) {
                    Ok(samples) => samples,
                    Err(source) => {
                        failure.get_or_insert(HeadError::Chunk {
                            series: format!("{}{}", entry.name, entry.labels),
                            source,
                        });
                        continue;
                    }
                };
                let wal_ref = u64::from(entry.id);
                encode_series(out, wal_ref, &entry.name, &entry.labels);
                let samples: Vec<WalSample> = samples
                    .into_iter()
                    .map(|s| WalSample {
                        wal_ref,
                        timestamp_ms: s.timestamp_ms,
                        value: s.value,
                    })
                    .collect();
                encode_samples(out, &samples);
            }
        })?;
        // A series that could not be read is still in the segments the
        // checkpoint replaced only if it failed: report it, do not hide it.
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    fn new_id(&self) -> String {
        format!("{:016x}", self.next_id.fetch_add(1, Ordering::AcqRel))
    }

    /// Merges one group of blocks, if any is due: first any blocks that
    /// overlap in time, then, per compaction range, two or more blocks
    /// inside one aligned window the head has moved past.
    fn compact_once(&self) -> Result<bool, DbError> {
        let blocks = self.persisted.read().blocks.clone();
        let Some(group) = self.plan_compaction(&blocks) else {
            return Ok(false);
        };
        let inputs: Vec<&Block> = group.iter().map(|b| b.as_ref()).collect();
        let sequence = inputs.iter().map(|b| b.meta().sequence).max().unwrap_or(0);
        let id = self.new_id();
        block::compact(&inputs, &self.blocks_dir, &id, sequence)?;
        let output = Arc::new(Block::open(&self.blocks_dir.join(&id))?);
        {
            let mut persisted = self.persisted.write();
            persisted
                .blocks
                .retain(|b| !group.iter().any(|g| Arc::ptr_eq(b, g)));
            persisted.blocks.push(output);
            persisted.blocks.sort_by_key(|b| b.meta().sequence);
        }
        for input in &group {
            delete_block(&self.blocks_dir, input)?;
        }
        self.stats.lock().compactions += 1;
        Ok(true)
    }

    fn plan_compaction(&self, blocks: &[Arc<Block>]) -> Option<Vec<Arc<Block>>> {
        // Overlapping blocks first: chains of blocks whose ranges meet.
        let mut by_time: Vec<&Arc<Block>> = blocks.iter().collect();
        by_time.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
        let mut group: Vec<Arc<Block>> = Vec::new();
        let mut reach = i64::MIN;
        for block in by_time {
            let meta = block.meta();
            if !group.is_empty() && meta.min_time > reach {
                if group.len() >= 2 {
                    return Some(group);
                }
                group.clear();
            }
            reach = if group.is_empty() {
                meta.max_time
            } else {
                reach.max(meta.max_time)
            };
            group.push(block.clone());
        }
        if group.len() >= 2 {
            return Some(group);
        }
        // Then windows of each compaction range that the head has left.
        let head_min = self.head.time_bounds().map_or(i64::MAX, |(min, _)| min);
        for &window in &self.config.compaction_ranges_ms {
            let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for block in blocks {
                let meta = block.meta();
                let start = meta.min_time.div_euclid(window);
                if meta.max_time.div_euclid(window) == start {
                    windows.entry(start).or_default().push(block.clone());
                }
            }
            for (start, members) in windows {
                let end = start.saturating_mul(window).saturating_add(window);
                if members.len() >= 2 && end <= head_min {
                    return Some(members);
                }
            }
        }
        None
    }

    fn apply_retention(&self) -> Result<(), DbError> {
        let Some(retention) = self.config.retention_ms else {
            return Ok(());
        };
        let blocks = self.persisted.read().blocks.clone();
        let newest = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .chain(self.head.time_bounds().map(|(_, max)| max))
            .max();
        let Some(newest) = newest else {
            return Ok(());
        };
        // Data time, so a backfill of old data is not deleted as it
        // arrives — but never past the wall clock, so one sample from a
        // client whose clock says 2100 cannot expire everything.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            });
        let horizon = newest.min(now).saturating_sub(retention);
        let expired: Vec<Arc<Block>> = blocks
            .into_iter()
            .filter(|b| b.meta().max_time < horizon)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.persisted
            .write()
            .blocks
            .retain(|b| !expired.iter().any(|e| Arc::ptr_eq(b, e)));
        for block in &expired {
            delete_block(&self.blocks_dir, block)?;
        }
        self.stats.lock().retention_deleted += expired.len() as u64;
        self.retention_deletions
            .fetch_add(expired.len() as u64, Ordering::Release);
        Ok(())
    }
}

/// Where some of one series' samples for a query are: a block (its index
/// entry), the pending block, or the head (already decoded).
enum Part<'a> {
    Block(&'a Block, &'a IndexSeries),
    Pending(&'a SeriesChunks),
    Head(SeriesSamples),
}

impl Part<'_> {
    fn key(&self) -> (&str, &Labels) {
        match self {
            Part::Block(_, series) => (&series.name, &series.labels),
            Part::Pending(series) => (&series.name, &series.labels),
            Part::Head(series) => (&series.name, &series.labels),
        }
    }

    /// The earliest and latest timestamps the part may contribute (its
    /// chunks' bounds: wider than what `range` keeps, never narrower), and
    /// at most how many samples.
    fn extent(&self, range: TimeRange) -> Option<(i64, i64, usize)> {
        match self {
            Part::Block(_, series) => {
                let chunks = series.chunks.iter().filter(|c| c.overlaps(range));
                let min = chunks.clone().map(|c| c.min_time).min()?;
                let max = chunks.clone().map(|c| c.max_time).max()?;
                Some((min, max, block::reader::samples_bound(series, range)))
            }
            Part::Pending(series) => {
                let chunks = series.chunks.iter().filter(|c| chunk_overlaps(c, range));
                let min = chunks.clone().filter_map(Chunk::min_time).min()?;
                let max = chunks.clone().filter_map(Chunk::max_time).max()?;
                Some((min, max, chunks.map(Chunk::len).sum()))
            }
            Part::Head(series) => {
                let first = series.samples.first()?.timestamp_ms;
                let last = series.samples.last()?.timestamp_ms;
                Some((first, last, series.samples.len()))
            }
        }
    }

    /// Appends the part's samples in `range` to `out`.
    fn read_into(&self, range: TimeRange, out: &mut Vec<Sample>) -> Result<(), DbError> {
        match self {
            Part::Block(block, series) => Ok(block.read_samples_into(series, range, out)?),
            Part::Pending(series) => {
                for chunk in series.chunks.iter().filter(|c| chunk_overlaps(c, range)) {
                    let mut iter = chunk.iter();
                    out.extend(iter.by_ref().filter(|s| range.contains(s.timestamp_ms)));
                    if let Some(source) = iter.err() {
                        return Err(DbError::Head(HeadError::Chunk {
                            series: format!("{}{}", series.name, series.labels),
                            source: source.clone(),
                        }));
                    }
                }
                Ok(())
            }
            Part::Head(series) => {
                out.extend_from_slice(&series.samples);
                Ok(())
            }
        }
    }
}

fn chunk_overlaps(chunk: &Chunk, range: TimeRange) -> bool {
    chunk.min_time().is_some_and(|min| min <= range.end_ms)
        && chunk.max_time().is_some_and(|max| max >= range.start_ms)
}

/// Groups the parts of equal series across `sources` (each in (name,
/// labels) order; sorted here if one is not): a k-way merge, each group's
/// parts in source order.
fn group_by_series(sources: Vec<Vec<Part<'_>>>) -> Vec<Vec<Part<'_>>> {
    let mut sources: Vec<std::iter::Peekable<std::vec::IntoIter<Part<'_>>>> = sources
        .into_iter()
        .map(|mut parts| {
            if !parts.is_sorted_by(|a, b| a.key() <= b.key()) {
                parts.sort_by(|a, b| a.key().cmp(&b.key()));
            }
            parts.into_iter().peekable()
        })
        .collect();
    let mut groups = Vec::new();
    loop {
        let smallest = sources
            .iter_mut()
            .filter_map(|source| source.peek().map(Part::key))
            .min()
            .map(|(name, labels)| (name.to_string(), labels.clone()));
        let Some((name, labels)) = smallest else {
            return groups;
        };
        let mut group = Vec::new();
        for source in &mut sources {
            while let Some(part) = source.next_if(|p| p.key() == (name.as_str(), &labels)) {
                group.push(part);
            }
        }
        groups.push(group);
    }
}

/// One series' samples from its parts (given oldest source first), in
/// strictly increasing time order, newest write winning a timestamp.
///
/// The usual case — parts that do not overlap in time (a day spread over
/// a few blocks) — is decoded in time order straight into one buffer sized
/// once, with no sort and no copy; a single head part is moved as it is.
/// Parts that overlap (an out-of-order write, a block not yet compacted
/// with its neighbour) are appended oldest first and sorted stably keeping
/// the last sample of each timestamp.
fn merge_parts(
    mut parts: Vec<Part<'_>>,
    range: TimeRange,
) -> Result<Option<SeriesSamples>, DbError> {
    if parts.len() == 1
        && let Some(Part::Head(series)) = parts.pop_if(|p| matches!(p, Part::Head(_)))
    {
        return Ok((!series.samples.is_empty()).then_some(series));
    }
    let Some((name, labels)) = parts
        .first()
        .map(|p| (p.key().0.to_string(), p.key().1.clone()))
    else {
        return Ok(None);
    };
    let mut extents: Vec<(usize, i64, i64)> = Vec::with_capacity(parts.len());
    let mut capacity = 0;
    for (index, part) in parts.iter().enumerate() {
        if let Some((min, max, bound)) = part.extent(range) {
            extents.push((index, min, max));
            capacity += bound;
        }
    }
    let mut by_time = extents.clone();
    by_time.sort_by_key(|&(_, min, _)| min);
    let disjoint = by_time.windows(2).all(|pair| pair[0].2 < pair[1].1);
    let order = if disjoint { by_time } else { extents };
    let mut samples = Vec::with_capacity(capacity);
    for &(index, _, _) in &order {
        parts[index].read_into(range, &mut samples)?;
    }
    if !disjoint
        && !samples
            .windows(2)
            .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
    {
        sort_keep_last(&mut samples);
    }
    Ok((!samples.is_empty()).then_some(SeriesSamples {
        name,
        labels,
        samples,
    }))
}

/// Renames a block's directory to `<id>.deleted` (atomic: readers of the
/// directory never see half a block) and removes it. Open readers keep
/// their file handles.
fn delete_block(parent: &Path, block: &Block) -> Result<(), DbError> {
    let from = parent.join(&block.meta().id);
    let to = parent.join(format!("{}.deleted", block.meta().id));
    fs::rename(&from, &to).map_err(io_error(&from))?;
    wal::sync_dir(parent)?;
    fs::remove_dir_all(&to).map_err(io_error(&to))
}

/// Opens every block in `dir` after cleaning up interrupted swaps;
/// returns them by sequence and the highest id seen.
fn open_blocks(dir: &Path) -> Result<(Vec<Arc<Block>>, u64), DbError> {
    let mut max_id = 0u64;
    let mut blocks = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let stem = name.split('.').next().unwrap_or_default();
        if let Ok(id) = u64::from_str_radix(stem, 16) {
            max_id = max_id.max(id);
        }
        if name.ends_with(".tmp") || name.ends_with(".deleted") {
            fs::remove_dir_all(&path).map_err(io_error(&path))?;
            continue;
        }
        if !path.is_dir() {
            continue;
        }
        blocks.push(Arc::new(Block::open(&path)?));
    }
    // A block whose samples a higher-level block already holds is the
    // input of a compaction that crashed before deleting it.
    let sources = |b: &Block| -> HashSet<String> {
        let meta = b.meta();
        if meta.compaction.sources.is_empty() {
            HashSet::from([meta.id.clone()])
        } else {
            meta.compaction.sources.iter().cloned().collect()
        }
    };
    // And a block with the same sources and level as a newer one (a
    // higher id) is the original of a rewrite (`Db::delete`) that crashed
    // before deleting it: the newer one is the block without the deleted
    // samples.
    let id_of = |b: &Block| u64::from_str_radix(&b.meta().id, 16).unwrap_or(0);
    let obsolete: Vec<Arc<Block>> = blocks
        .iter()
        .filter(|b| {
            let mine = sources(b);
            let level = b.meta().compaction.level;
            blocks.iter().any(|other| {
                let theirs = sources(other);
                (other.meta().compaction.level > level && mine.is_subset(&theirs))
                    || (other.meta().compaction.level == level
                        && mine == theirs
                        && id_of(other) > id_of(b))
            })
        })
        .cloned()
        .collect();
    for block in &obsolete {
        delete_block(dir, block)?;
    }
    blocks.retain(|b| !obsolete.iter().any(|o| Arc::ptr_eq(b, o)));
    blocks.sort_by_key(|b| b.meta().sequence);
    Ok((blocks, max_id))
}
