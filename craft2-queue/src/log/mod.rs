//! The durable queue: a partitioned, segmented, append-only log with
//! consumer groups — Kafka's design, embedded in the process.
//!
//! Removes phase0's last queue bottleneck: a crash no longer loses what was
//! accepted. Every accepted metric is a CRC-framed record in a segment file
//! before `push` returns; the storage consumer reads from its group's
//! committed offset and commits after the store appended, so a restart
//! re-delivers anything not yet stored. The cost is a `write` per push and,
//! depending on [`FsyncPolicy`], an fsync — chapter 2 measures both.
//!
//! - `codec.rs` — a metric as record payload bytes;
//! - `record.rs` — framing: length, CRC32C, offset;
//! - `index.rs` — the sparse offset index;
//! - `segment.rs` — one segment file: append, scan, recovery;
//! - `partition.rs` — a partition's segments: roll, read, retention;
//! - `group.rs` — consumer groups: assignment, rebalance, committed offsets;
//! - `queue.rs` — [`LogQueue`], the log behind the queue slot's trait.
//!
//! Directory layout: `<dir>/log.json` (the partition count, fixed at
//! creation), `<dir>/partition-<p>/<base>.log|.index`,
//! `<dir>/groups/<group>.offsets`. Story: docs chapter 2; byte layout:
//! `docs/src/formats/log-segment.md`.

pub mod codec;
pub mod group;
pub mod index;
pub mod partition;
pub mod queue;
pub mod record;
pub mod segment;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use common::Metric;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use group::CommitToken;
pub use partition::Removed;
pub use queue::LogQueue;
pub use segment::Corruption;

use group::GroupState;
use partition::{Partition, PartitionLimits};

/// When appended records are forced to disk — what a 202 promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before `push` returns: a 202 survives a power cut.
    EveryBatch,
    /// A background thread fsyncs every interval (group commit): a 202
    /// survives a crash of the process at once, and a power cut once the
    /// interval has passed.
    Interval(Duration),
    /// Never fsync; the kernel writes back when it likes (Linux: within
    /// ~30 s). A 202 survives a crash of the process, not of the machine.
    Never,
}

impl FsyncPolicy {
    /// What a 202 means under this policy, for `/health` and the docs.
    pub fn guarantee(&self) -> String {
        match self {
            FsyncPolicy::EveryBatch => {
                "written and fsynced before the 202: survives a process crash and a power cut".into()
            }
            FsyncPolicy::Interval(every) => format!(
                "written before the 202 and fsynced within {} ms: survives a process crash; a power cut may lose the last {} ms",
                every.as_millis(),
                every.as_millis()
            ),
            FsyncPolicy::Never => {
                "written (not fsynced) before the 202: survives a process crash; a power cut may lose what the kernel had not written back".into()
            }
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::EveryBatch => f.write_str("every-batch"),
            FsyncPolicy::Interval(every) => write!(f, "{}ms", every.as_millis()),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    /// `every-batch`, `never`, or a group-commit interval such as `10ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "every-batch" | "always" => Ok(FsyncPolicy::EveryBatch),
            "never" => Ok(FsyncPolicy::Never),
            other => common::duration::parse_positive_duration(other)
                .map(FsyncPolicy::Interval)
                .map_err(|_| {
                    format!("fsync policy {other:?}: expected every-batch, never, or a group-commit interval such as 10ms")
                }),
        }
    }
}

/// How a log is laid out and kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Where the log lives.
    pub dir: PathBuf,
    /// Partitions (fixed when the log is created).
    pub partitions: u32,
    /// A segment rolls once it reaches this many bytes.
    pub segment_bytes: u64,
    /// Bytes of records between sparse index entries.
    pub index_interval: usize,
    /// When appends reach the disk.
    pub fsync: FsyncPolicy,
    /// Delete a partition's oldest sealed segments while it is larger.
    pub retention_bytes: Option<u64>,
    /// Delete sealed segments last written longer ago than this.
    pub retention_age: Option<Duration>,
    /// Committed offsets are written at most this often (and on close). A
    /// crash re-delivers what was acknowledged in the last interval.
    pub commit_interval: Duration,
}

impl LogConfig {
    /// Defaults: 4 partitions, 64 MiB segments, a 4 KiB index interval,
    /// group commit every 10 ms, no retention limit.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            partitions: 4,
            segment_bytes: 64 * 1024 * 1024,
            index_interval: 4096,
            fsync: FsyncPolicy::Interval(Duration::from_millis(10)),
            retention_bytes: None,
            retention_age: None,
            commit_interval: Duration::from_millis(100),
        }
    }

    fn validate(&self) -> Result<(), LogError> {
        if self.partitions == 0 || self.partitions > 1024 {
            return Err(LogError::Config(format!(
                "partitions must be 1..=1024, got {}",
                self.partitions
            )));
        }
        if self.segment_bytes < 1024 || self.segment_bytes > 1 << 30 {
            return Err(LogError::Config(format!(
                "segment size must be 1 KiB..=1 GiB, got {} bytes",
                self.segment_bytes
            )));
        }
        if self.index_interval == 0 {
            return Err(LogError::Config(
                "index interval must be at least 1 byte".into(),
            ));
        }
        Ok(())
    }
}

/// Why a log operation failed.
#[derive(Debug, Error)]
pub enum LogError {
    /// Reading or writing the log's files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The configuration or the directory's layout is not usable.
    #[error("log configuration: {0}")]
    Config(String),
    /// A commit named a delivery that is unknown, already committed, or from
    /// before a rebalance.
    #[error("commit for partition {partition} offsets {start}..{end} is unknown or stale")]
    StaleCommit {
        /// The token's partition.
        partition: u32,
        /// Its first offset.
        start: u64,
        /// One past its last.
        end: u64,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let context = context.into();
    move |source| LogError::Io { context, source }
}

#[derive(Serialize, Deserialize)]
struct LogMeta {
    format: u32,
    partitions: u32,
}

/// What opening a log found and repaired.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Bytes cut off torn tails, over all partitions.
    pub truncated_bytes: u64,
    /// Index files rebuilt.
    pub indexes_rebuilt: usize,
    /// Damaged records found in active segments.
    pub corruptions: Vec<Corruption>,
}

/// Counters a log keeps about itself.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Damaged records met (recovery and reads), each counted once.
    pub corrupt_records: AtomicU64,
    /// Unconsumed records deleted by retention before a group read them.
    pub lost_to_retention: AtomicU64,
    /// Records removed by retention.
    pub retained_away: AtomicU64,
}

pub(crate) struct Inner {
    config: LogConfig,
    partitions: Vec<Mutex<Partition>>,
    /// Per partition, the end offset, readable without the partition lock.
    ends: Vec<AtomicU64>,
    groups: Mutex<HashMap<String, GroupState>>,
    /// Consumers wait on `arrived` under this mutex for `appends` to move.
    appended: Mutex<()>,
    arrived: Condvar,
    /// Consumers waiting on `arrived`: an append only takes the mutex to
    /// wake someone when there is someone to wake.
    waiting: AtomicU64,
    /// Appends so far (what consumers compare before and after a look).
    appends: AtomicU64,
    corruptions: Mutex<Vec<Corruption>>,
    stats: LogStats,
    closed: AtomicBool,
    stop: Mutex<Option<crossbeam_channel::Sender<()>>>,
    background: Mutex<Option<JoinHandle<()>>>,
}

/// A partitioned, segmented, durable log of metrics.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

/// FNV-1a over the series key: stable across runs and Rust releases, so a
/// series keeps its partition (and its order) after a restart or upgrade.
pub fn series_hash(metric: &Metric) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(metric.name.as_bytes());
    for (k, v) in metric.labels.iter() {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    hash
}

impl Log {
    /// Opens the log in `config.dir`, creating it if empty, and recovers
    /// every partition's active segment.
    ///
    /// # Errors
    /// [`LogError::Config`] for a bad configuration or a partition count
    /// that differs from the one the log was created with;
    /// [`LogError::Io`] when the files cannot be read or repaired.
    pub fn open(config: LogConfig) -> Result<(Log, RecoveryReport), LogError> {
        config.validate()?;
        let dir = &config.dir;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let meta_path = dir.join("log.json");
        match fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: LogMeta = serde_json::from_slice(&bytes).map_err(|e| {
                    LogError::Config(format!(
                        "{} is not a log description: {e}",
                        meta_path.display()
                    ))
                })?;
                if meta.partitions != config.partitions {
                    return Err(LogError::Config(format!(
                        "the log in {} has {} partitions; it was asked to open with {} (changing it would move series between partitions and break their order)",
                        dir.display(),
                        meta.partitions,
                        config.partitions
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let body = serde_json::to_vec(&LogMeta {
                    format: 1,
                    partitions: config.partitions,
                })
                .map_err(|e| LogError::Config(e.to_string()))?;
                fs::write(&meta_path, body)
                    .map_err(io_err(format!("writing {}", meta_path.display())))?;
            }
            Err(e) => return Err(io_err(format!("reading {}", meta_path.display()))(e)),
        }
        fs::create_dir_all(dir.join("groups"))
            .map_err(io_err(format!("creating {}/groups", dir.display())))?;
        let limits = PartitionLimits {
            segment_bytes: config.segment_bytes,
            index_interval: config.index_interval,
        };
        let mut report = RecoveryReport::default();
        let mut partitions = Vec::new();
        let mut ends = Vec::new();
        for p in 0..config.partitions {
            let pdir = partition_dir(dir, p);
            let (partition, reports) = Partition::open(&pdir, p, limits)
                .map_err(io_err(format!("opening {}", pdir.display())))?;
            for (_, r) in reports {
                report.truncated_bytes += r.truncated_bytes;
                report.indexes_rebuilt += usize::from(r.index_rebuilt);
                report.corruptions.extend(r.corruptions);
            }
            ends.push(AtomicU64::new(partition.end_offset()));
            partitions.push(Mutex::new(partition));
        }
        let stats = LogStats::default();
        stats
            .corrupt_records
            .store(report.corruptions.len() as u64, Ordering::Relaxed);
        let inner = Arc::new(Inner {
            config,
            partitions,
            ends,
            groups: Mutex::new(HashMap::new()),
            appended: Mutex::new(()),
            arrived: Condvar::new(),
            waiting: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            corruptions: Mutex::new(report.corruptions.clone()),
            stats,
            closed: AtomicBool::new(false),
            stop: Mutex::new(None),
            background: Mutex::new(None),
        });
        start_background(&inner);
        Ok((Log { inner }, report))
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Which partition `metric` goes to.
    pub fn partition_of(&self, metric: &Metric) -> u32 {
        (series_hash(metric) % u64::from(self.inner.config.partitions)) as u32
    }

    /// Appends `metrics`, each to its series' partition, in order. Returns
    /// once they are written (and fsynced, under
    /// [`FsyncPolicy::EveryBatch`]).
    ///
    /// A batch spanning partitions is not atomic across them: if partition 2
    /// fails after partition 1 was written, the error is returned and
    /// partition 1's records stay (the client retries; delivery is
    /// at-least-once anyway).
    ///
    /// # Errors
    /// [`LogError::Io`] when a write or fsync fails.
    pub fn append(&self, metrics: &[Metric]) -> Result<(), LogError> {
        let inner = &*self.inner;
        let n = inner.config.partitions;
        let sync = inner.config.fsync == FsyncPolicy::EveryBatch;
        let sync_on_roll = inner.config.fsync != FsyncPolicy::Never;
        if n == 1 || metrics.len() == 1 {
            let p = if n == 1 {
                0
            } else {
                self.partition_of(&metrics[0])
            };
            let refs: Vec<&Metric> = metrics.iter().collect();
            self.append_to(p, &refs, sync, sync_on_roll)?;
        } else {
            let mut by_partition: Vec<Vec<&Metric>> = vec![Vec::new(); n as usize];
            for m in metrics {
                by_partition[self.partition_of(m) as usize].push(m);
            }
            for (p, refs) in by_partition.iter().enumerate() {
                if !refs.is_empty() {
                    self.append_to(p as u32, refs, sync, sync_on_roll)?;
                }
            }
        }
        inner.appends.fetch_add(1, Ordering::SeqCst);
        if inner.waiting.load(Ordering::SeqCst) > 0 {
            // Under the mutex, so a consumer between its last look and its
            // wait cannot miss this wake-up.
            let _guard = inner.appended.lock();
            inner.arrived.notify_all();
        }
        Ok(())
    }

    fn append_to(
        &self,
        p: u32,
        metrics: &[&Metric],
        sync: bool,
        sync_on_roll: bool,
    ) -> Result<(), LogError> {
        let mut partition = self.inner.partitions[p as usize].lock();
        partition
            .append(metrics, sync, sync_on_roll)
            .map_err(io_err(format!("appending to partition {p}")))?;
        self.inner.ends[p as usize].store(partition.end_offset(), Ordering::Release);
        Ok(())
    }

    /// Reads up to `max` records of partition `p` from offset `from`,
    /// outside any group (tools, tests). Damaged records are skipped and
    /// reported.
    ///
    /// # Errors
    /// [`LogError::Io`] on a read failure; `Config` for a partition that
    /// does not exist.
    pub fn read(&self, p: u32, from: u64, max: usize) -> Result<partition::ReadBatch, LogError> {
        let partition = self
            .inner
            .partitions
            .get(p as usize)
            .ok_or_else(|| LogError::Config(format!("no partition {p}")))?;
        let batch = partition
            .lock()
            .read(from, max)
            .map_err(io_err(format!("reading partition {p}")))?;
        self.inner.note_corruptions(&batch.corruptions);
        Ok(batch)
    }

    /// Per partition: the first offset still on disk and the next to be
    /// written.
    pub fn offsets(&self) -> Vec<(u64, u64)> {
        self.inner
            .partitions
            .iter()
            .map(|p| {
                let p = p.lock();
                (p.start_offset(), p.end_offset())
            })
            .collect()
    }

    /// Per partition: segment files and bytes on disk.
    pub fn disk_usage(&self) -> Vec<(usize, u64)> {
        self.inner
            .partitions
            .iter()
            .map(|p| {
                let p = p.lock();
                (p.segment_count(), p.size_bytes())
            })
            .collect()
    }

    /// Joins consumer group `group` (created on first use, resuming from
    /// its persisted offsets); the group's partitions are dealt out again.
    ///
    /// # Errors
    /// `Config` for a name that is not `[A-Za-z0-9_-]{1,64}`; `Io` when the
    /// group's offsets file exists but cannot be read.
    pub fn join(&self, group: &str) -> Result<GroupMember, LogError> {
        if !group::valid_group_name(group) {
            return Err(LogError::Config(format!(
                "group name {group:?}: use 1 to 64 of A-Z a-z 0-9 _ -"
            )));
        }
        let mut groups = self.inner.groups.lock();
        if !groups.contains_key(group) {
            let starts: Vec<u64> = self.offsets().iter().map(|(start, _)| *start).collect();
            let state = GroupState::load(&self.inner.config.dir.join("groups"), group, &starts)
                .map_err(io_err(format!("loading offsets of group {group}")))?;
            groups.insert(group.to_string(), state);
        }
        let state = groups
            .get_mut(group)
            .ok_or_else(|| LogError::Config("group vanished".into()))?;
        let id = state.join();
        Ok(GroupMember {
            inner: self.inner.clone(),
            group: group.to_string(),
            id,
            committed_sum: state.committed_sum.clone(),
            cursor: AtomicU64::new(0),
        })
    }

    /// Records not yet committed by `group`, over all partitions (0 for a
    /// group never joined).
    pub fn lag(&self, group: &str) -> u64 {
        let groups = self.inner.groups.lock();
        let Some(state) = groups.get(group) else {
            return 0;
        };
        self.inner
            .ends
            .iter()
            .zip(&state.committed)
            .map(|(end, committed)| end.load(Ordering::Acquire).saturating_sub(*committed))
            .sum()
    }

    /// The committed offsets of `group`, per partition.
    pub fn committed(&self, group: &str) -> Option<Vec<u64>> {
        self.inner
            .groups
            .lock()
            .get(group)
            .map(|s| s.committed.clone())
    }

    /// Applies retention now (the background thread also does, every
    /// second). `now` is injectable so tests need not wait for an age.
    ///
    /// # Errors
    /// [`LogError::Io`] when a segment cannot be deleted.
    pub fn enforce_retention(&self, now: SystemTime) -> Result<Removed, LogError> {
        self.inner.enforce_retention(now)
    }

    /// Damaged records met so far (recovery and reads).
    pub fn corruptions(&self) -> Vec<Corruption> {
        self.inner.corruptions.lock().clone()
    }

    /// The log's counters.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// fsyncs every partition and writes every group's offsets.
    ///
    /// # Errors
    /// [`LogError::Io`] on the first failure.
    pub fn sync(&self) -> Result<(), LogError> {
        self.inner.sync_all(true)
    }

    /// Stops the background thread and syncs. Further appends still work
    /// (the log has no closed state of its own; the queue refuses pushes).
    ///
    /// # Errors
    /// As [`sync`](Self::sync).
    pub fn shutdown(&self) -> Result<(), LogError> {
        self.inner.closed.store(true, Ordering::Release);
        drop(self.inner.stop.lock().take());
        if let Some(handle) = self.inner.background.lock().take() {
            let _ = handle.join();
        }
        self.inner.sync_all(true)
    }
}

fn partition_dir(dir: &Path, p: u32) -> PathBuf {
    dir.join(format!("partition-{p}"))
}

impl Inner {
    fn note_corruptions(&self, found: &[Corruption]) {
        if found.is_empty() {
            return;
        }
        for c in found {
            common::say_err!(
                "[Log] damaged record skipped: partition {} segment {} byte {} (offset ~{}): {}",
                c.partition,
                c.segment_base,
                c.position,
                c.expected_offset,
                c.detail
            );
        }
        self.stats
            .corrupt_records
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        self.corruptions.lock().extend_from_slice(found);
    }

    fn sync_all(&self, offsets_durably: bool) -> Result<(), LogError> {
        for (p, partition) in self.partitions.iter().enumerate() {
            partition
                .lock()
                .sync()
                .map_err(io_err(format!("fsyncing partition {p}")))?;
        }
        for state in self.groups.lock().values_mut() {
            state
                .persist(offsets_durably)
                .map_err(io_err(format!("writing offsets of group {}", state.name)))?;
        }
        Ok(())
    }

    fn enforce_retention(&self, now: SystemTime) -> Result<Removed, LogError> {
        let config = &self.config;
        let mut total = Removed::default();
        if config.retention_bytes.is_none() && config.retention_age.is_none() {
            return Ok(total);
        }
        for (p, partition) in self.partitions.iter().enumerate() {
            let (removed, start) = {
                let mut partition = partition.lock();
                let removed = partition
                    .enforce_retention(now, config.retention_bytes, config.retention_age)
                    .map_err(io_err(format!("applying retention to partition {p}")))?;
                (removed, partition.start_offset())
            };
            if removed.segments == 0 {
                continue;
            }
            total.segments += removed.segments;
            total.records += removed.records;
            let mut groups = self.groups.lock();
            for state in groups.values_mut() {
                let lost = state.skip_to(p, start);
                if lost > 0 {
                    common::say_err!(
                        "[Log] retention deleted {lost} records of partition {p} that group {} had not consumed",
                        state.name
                    );
                    self.stats
                        .lost_to_retention
                        .fetch_add(lost, Ordering::Relaxed);
                }
            }
        }
        self.stats
            .retained_away
            .fetch_add(total.records, Ordering::Relaxed);
        Ok(total)
    }
}

/// The background thread: group-commit fsyncs, offset persistence and
/// retention. It holds only a weak reference, so dropping the log ends it.
fn start_background(inner: &Arc<Inner>) {
    let tick = match inner.config.fsync {
        FsyncPolicy::Interval(every) => every.min(inner.config.commit_interval),
        _ => inner.config.commit_interval,
    };
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    *inner.stop.lock() = Some(stop_tx);
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let handle = std::thread::Builder::new()
        .name("log-background".into())
        .spawn(move || {
            let mut last_commit = Instant::now();
            let mut last_retention = Instant::now();
            loop {
                match stop_rx.recv_timeout(tick) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                if let FsyncPolicy::Interval(_) = inner.config.fsync {
                    for (p, partition) in inner.partitions.iter().enumerate() {
                        // Take the handles under the lock, fsync without it.
                        let pending = partition.lock().begin_sync();
                        if let Some(Err(e)) = pending.map(segment::PendingSync::run) {
                            common::say_err!(
                                "[Log] group commit fsync of partition {p} failed: {e}"
                            );
                        }
                    }
                }
                if last_commit.elapsed() >= inner.config.commit_interval {
                    last_commit = Instant::now();
                    let durable = inner.config.fsync != FsyncPolicy::Never;
                    for state in inner.groups.lock().values_mut() {
                        if let Err(e) = state.persist(durable) {
                            common::say_err!(
                                "[Log] writing offsets of group {} failed: {e}",
                                state.name
                            );
                        }
                    }
                }
                if last_retention.elapsed() >= Duration::from_secs(1) {
                    last_retention = Instant::now();
                    if let Err(e) = inner.enforce_retention(SystemTime::now()) {
                        common::say_err!("[Log] retention failed: {e}");
                    }
                }
            }
        });
    match handle {
        Ok(handle) => *inner.background.lock() = Some(handle),
        Err(e) => common::say_err!("[Log] could not start the background thread: {e}"),
    }
}

/// One member of a consumer group: reads the partitions assigned to it.
/// Dropping it leaves the group (its partitions go to the others).
pub struct GroupMember {
    inner: Arc<Inner>,
    group: String,
    id: u64,
    committed_sum: Arc<AtomicU64>,
    /// Which assigned partition to try first, so none starves.
    cursor: AtomicU64,
}

/// Records handed to a group member.
#[derive(Debug)]
pub struct Batch {
    /// The partition they came from.
    pub partition: u32,
    /// Records with their offsets, in offset order.
    pub records: Vec<(u64, Metric)>,
    /// Pass to [`GroupMember::commit`] once processed.
    pub token: CommitToken,
}

impl GroupMember {
    /// The member's id in its group.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The partitions this member reads now (changes on rebalance).
    pub fn assignment(&self) -> Vec<u32> {
        self.with_state(|s| s.assignment(self.id))
            .unwrap_or_default()
    }

    /// Records the group has not committed, over all partitions, read
    /// without any lock (producers check it on every push).
    pub fn lag(&self) -> u64 {
        let written: u64 = self
            .inner
            .ends
            .iter()
            .map(|e| e.load(Ordering::Acquire))
            .sum();
        written.saturating_sub(self.committed_sum.load(Ordering::Acquire))
    }

    /// The group's generation (bumped by every join and leave).
    pub fn generation(&self) -> u64 {
        self.with_state(|s| s.generation).unwrap_or(0)
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut GroupState) -> T) -> Option<T> {
        self.inner.groups.lock().get_mut(&self.group).map(f)
    }

    /// Takes up to `max` records from one of this member's partitions,
    /// waiting up to `wait` for some to arrive.
    ///
    /// # Errors
    /// [`LogError::Io`] when a segment cannot be read.
    pub fn poll(&self, max: usize, wait: Duration) -> Result<Option<Batch>, LogError> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        loop {
            let seen = self.inner.appends.load(Ordering::SeqCst);
            if let Some(batch) = self.try_poll(max)? {
                return Ok(Some(batch));
            }
            let mut guard = self.inner.appended.lock();
            self.inner.waiting.fetch_add(1, Ordering::SeqCst);
            let timed_out = if self.inner.appends.load(Ordering::SeqCst) == seen {
                self.inner
                    .arrived
                    .wait_until(&mut guard, deadline)
                    .timed_out()
            } else {
                Instant::now() >= deadline
            };
            self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            if timed_out {
                return self.try_poll(max);
            }
        }
    }

    fn try_poll(&self, max: usize) -> Result<Option<Batch>, LogError> {
        let n = self.inner.partitions.len();
        let first = self.cursor.fetch_add(1, Ordering::Relaxed) as usize;
        for k in 0..n {
            let p = (first + k) % n;
            // Claim the partition under the group lock, read outside it.
            let claim = self.with_state(|s| {
                let end = self.inner.ends[p].load(Ordering::Acquire);
                if s.owner[p] != Some(self.id) || s.busy[p] || s.fetch[p] >= end {
                    return None;
                }
                s.busy[p] = true;
                Some((s.fetch[p], s.epoch[p]))
            });
            let Some(Some((from, epoch))) = claim else {
                continue;
            };
            let read = {
                let mut partition = self.inner.partitions[p].lock();
                let start = partition.start_offset();
                partition
                    .read(from.max(start), max)
                    .map(|batch| (batch, start))
            };
            let (batch, start) = match read {
                Ok(read) => read,
                Err(e) => {
                    self.with_state(|s| s.busy[p] = false);
                    return Err(io_err(format!("reading partition {p}"))(e));
                }
            };
            self.inner.note_corruptions(&batch.corruptions);
            let accepted = self.with_state(|s| {
                s.busy[p] = false;
                if s.epoch[p] != epoch || s.owner[p] != Some(self.id) {
                    return None; // rebalanced while reading: the new owner re-reads
                }
                if start > s.committed[p] {
                    s.skip_to(p, start);
                }
                let first_offset = from.max(start);
                s.fetch[p] = batch.next_offset.max(first_offset);
                if batch.records.is_empty() {
                    // Only damaged records: nothing to hand out, but the
                    // group must move past them or it would stall here.
                    s.inflight[p].insert(first_offset, (s.fetch[p], false));
                    s.commit(
                        self.id,
                        CommitToken {
                            partition: p as u32,
                            epoch,
                            start: first_offset,
                            end: s.fetch[p],
                        },
                    );
                    return None;
                }
                s.inflight[p].insert(first_offset, (s.fetch[p], false));
                Some(CommitToken {
                    partition: p as u32,
                    epoch,
                    start: first_offset,
                    end: s.fetch[p],
                })
            });
            if let Some(Some(token)) = accepted {
                return Ok(Some(Batch {
                    partition: p as u32,
                    records: batch.records,
                    token,
                }));
            }
        }
        Ok(None)
    }

    /// Acknowledges a batch: once every earlier batch of its partition is
    /// acknowledged too, the group's committed offset moves past it.
    /// Returns how many records the committed offset moved.
    ///
    /// # Errors
    /// [`LogError::StaleCommit`] for a token already committed, unknown, or
    /// handed out before a rebalance moved its partition.
    pub fn commit(&self, token: CommitToken) -> Result<u64, LogError> {
        self.with_state(|s| s.commit(self.id, token))
            .flatten()
            .ok_or(LogError::StaleCommit {
                partition: token.partition,
                start: token.start,
                end: token.end,
            })
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let mut groups = self.inner.groups.lock();
        if let Some(state) = groups.get_mut(&self.group) {
            state.leave(self.id);
            let _ = state.persist(false);
        }
    }
}
