//! The write-ahead log: every append is written here, as framed and
//! checksummed records, before the head shows it — so a crash loses nothing
//! that `append` acknowledged, and a restart replays the log into the head.
//!
//! The bottleneck it removes: phase0 makes a sample durable by reopening
//! and appending to one JSON file per sample. The WAL writes one record per
//! *batch* with one `write` call (and, per [`WalFsync`], one or no `fsync`),
//! and only the data not yet persisted into blocks ever lives here: after
//! the head is cut into a block, a checkpoint of what the head still holds
//! replaces the older segments. Docs chapter 3, "The write-ahead log";
//! byte layout in `docs/src/formats/wal.md`.
//!
//! ```text
//! <dir>/00000001, 00000002, …   segments, rolled at `segment_bytes`
//! <dir>/checkpoint.00000007     the head as of segment 7 (replaces 1–7)
//!
//! record:  length u32 LE (of type + body) | CRC32C u32 LE (of type + body)
//!          | type u8 | body
//! type 1, series:  ref uvarint | name (uvarint length, UTF-8)
//!                  | label count uvarint | (label, value) as name
//! type 2, samples: count uvarint | per sample: ref uvarint
//!                  | timestamp zigzag varint, delta from the previous one
//!                  | value f64 bits u64 LE
//! type 3, delete:  start zigzag varint | end zigzag varint (ms, both
//!                  inclusive) | count uvarint | ref uvarint per series
//! ```
//!
//! A delete record removes the samples of the named series in `[start,
//! end]` from what came before it; samples after it stay. Replay applies
//! records in order, so an acknowledged deletion survives a restart, and a
//! sample written into the deleted range later is kept, as it would have
//! been without the restart.
//!
//! A series record maps a *ref* (the head's series id of the process that
//! wrote it) to its name and labels; samples name series by ref. Refs are
//! only meaningful from the definition on: every process starts a fresh
//! segment and (re)defines every series it writes before its samples, and
//! replay keeps the latest definition of each ref.
//!
//! # Damage
//! Replay never stops at a bad record when it can go past it: a record
//! whose checksum fails but whose length is plausible is skipped and
//! counted; an impossible length or a record cut short ends that segment —
//! in the newest segment that is the torn tail of a crash (the append was
//! never acknowledged) and the file is truncated there; in an older one the
//! rest of the file is counted as lost and replay goes on with the next.
//! Checksums are CRC32C (the `crc32c` crate: not the lesson).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Labels;
use thiserror::Error;

use crate::chunk::varint::{ByteReader, put_uvarint, put_varint};

/// Largest record accepted, on write and on replay: a damaged length field
/// cannot make replay allocate more.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Samples per samples record: a huge batch becomes several records of at
/// most about 1.1 MiB, far below [`MAX_RECORD_BYTES`].
const SAMPLES_PER_RECORD: usize = 65_536;

const HEADER: usize = 8;
const TYPE_SERIES: u8 = 1;
const TYPE_SAMPLES: u8 = 2;
const TYPE_DELETE: u8 = 3;
const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// When the WAL calls `fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalFsync {
    /// After every append, before it returns: survives power loss, costs an
    /// `fsync` per batch.
    EveryBatch,
    /// By a background thread at this interval (the owner calls
    /// [`Wal::sync`]): a power loss can take the last interval; a killed
    /// process loses nothing, the kernel has the bytes.
    Interval(Duration),
    /// Never (the OS writes back when it likes): for benchmarks.
    Never,
}

impl std::str::FromStr for WalFsync {
    type Err = String;

    /// `every-batch`, `never`, or an interval such as `1s` / `200ms`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "every-batch" => Ok(WalFsync::EveryBatch),
            "never" => Ok(WalFsync::Never),
            other => common::duration::parse_duration(other)
                .ok()
                .filter(|d| !d.is_zero())
                .map(WalFsync::Interval)
                .ok_or_else(|| {
                    format!(
                        "invalid WAL fsync policy {other:?}: expected every-batch, never or an interval like 1s"
                    )
                }),
        }
    }
}

/// WAL settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is rolled once it reaches this size.
    pub segment_bytes: u64,
    /// When to fsync.
    pub fsync: WalFsync,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            fsync: WalFsync::Interval(Duration::from_secs(1)),
        }
    }
}

/// Why the WAL failed.
#[derive(Debug, Error)]
pub enum WalError {
    /// The disk refused.
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A record too large to write.
    #[error("WAL record of {0} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum WalRecord {
    /// `wal_ref` names this series from here on.
    Series {
        /// The ref.
        wal_ref: u64,
        /// Metric name.
        name: String,
        /// Labels.
        labels: Labels,
    },
    /// Samples of series named by ref.
    Samples(Vec<WalSample>),
    /// The samples of these series in `[start_ms, end_ms]` are deleted.
    Delete {
        /// First deleted timestamp.
        start_ms: i64,
        /// Last deleted timestamp.
        end_ms: i64,
        /// The series, by ref.
        refs: Vec<u64>,
    },
}

/// One sample in a samples record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WalSample {
    /// The series ref.
    pub wal_ref: u64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

/// What replay found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Files read (checkpoint included).
    pub files: usize,
    /// Records decoded.
    pub records: u64,
    /// Samples decoded.
    pub samples: u64,
    /// Records skipped because their checksum failed.
    pub corrupt_records: u64,
    /// Bytes given up: torn tails and unreadable remainders.
    pub lost_bytes: u64,
    /// One line per damage found, naming the file and offset.
    pub damage: Vec<String>,
}

/// Appends records to the newest segment.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    file: File,
    index: u64,
    len: u64,
    dirty: bool,
    buf: Vec<u8>,
}

/// Encodes a series record into `out`.
pub fn encode_series(out: &mut Vec<u8>, wal_ref: u64, name: &str, labels: &Labels) {
    frame(out, TYPE_SERIES, |body| {
        put_uvarint(body, wal_ref);
        put_str(body, name);
        put_uvarint(body, labels.len() as u64);
        for (label, value) in labels.iter() {
            put_str(body, label);
            put_str(body, value);
        }
    });
}

/// Encodes samples into `out`, [`SAMPLES_PER_RECORD`] per record.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[WalSample]) {
    for part in samples.chunks(SAMPLES_PER_RECORD) {
        frame(out, TYPE_SAMPLES, |body| {
            put_uvarint(body, part.len() as u64);
            let mut previous = 0i64;
            for sample in part {
                put_uvarint(body, sample.wal_ref);
                put_varint(body, sample.timestamp_ms.wrapping_sub(previous));
                previous = sample.timestamp_ms;
                body.extend_from_slice(&sample.value.to_bits().to_le_bytes());
            }
        });
    }
}

/// Encodes a delete record into `out`.
pub fn encode_delete(out: &mut Vec<u8>, start_ms: i64, end_ms: i64, refs: &[u64]) {
    frame(out, TYPE_DELETE, |body| {
        put_varint(body, start_ms);
        put_varint(body, end_ms);
        put_uvarint(body, refs.len() as u64);
        for wal_ref in refs {
            put_uvarint(body, *wal_ref);
        }
    });
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_uvarint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn frame(out: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(kind);
    body(out);
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes one record's type + body.
fn decode(payload: &[u8]) -> Result<WalRecord, String> {
    let mut reader = ByteReader::new(payload);
    let err = |e: crate::chunk::ChunkError| e.to_string();
    let kind = reader.read_u8().map_err(err)?;
    let record = match kind {
        TYPE_SERIES => {
            let wal_ref = reader.read_uvarint().map_err(err)?;
            let name = read_str(&mut reader)?;
            let count = reader.read_uvarint().map_err(err)?;
            // Each pair takes at least two bytes: a damaged count cannot
            // make us reserve more than the record holds.
            if count > reader.rest().len() as u64 / 2 {
                return Err(format!("label count {count} exceeds the record"));
            }
            let mut pairs = Vec::with_capacity(count as usize);
            for _ in 0..count {
                pairs.push((read_str(&mut reader)?, read_str(&mut reader)?));
            }
            WalRecord::Series {
                wal_ref,
                name,
                labels: Labels::from_pairs(pairs),
            }
        }
        TYPE_SAMPLES => {
            let count = reader.read_uvarint().map_err(err)?;
            if count > reader.rest().len() as u64 / 10 {
                return Err(format!("sample count {count} exceeds the record"));
            }
            let mut samples = Vec::with_capacity(count as usize);
            let mut previous = 0i64;
            for _ in 0..count {
                let wal_ref = reader.read_uvarint().map_err(err)?;
                let timestamp_ms = previous.wrapping_add(reader.read_varint().map_err(err)?);
                previous = timestamp_ms;
                let bits = reader.take(8).map_err(err)?;
                let value = f64::from_bits(u64::from_le_bytes(
                    bits.try_into().map_err(|_| "short value".to_string())?,
                ));
                samples.push(WalSample {
                    wal_ref,
                    timestamp_ms,
                    value,
                });
            }
            WalRecord::Samples(samples)
        }
        TYPE_DELETE => {
            let start_ms = reader.read_varint().map_err(err)?;
            let end_ms = reader.read_varint().map_err(err)?;
            let count = reader.read_uvarint().map_err(err)?;
            if count > reader.rest().len() as u64 {
                return Err(format!("series count {count} exceeds the record"));
            }
            let mut refs = Vec::with_capacity(count as usize);
            for _ in 0..count {
                refs.push(reader.read_uvarint().map_err(err)?);
            }
            WalRecord::Delete {
                start_ms,
                end_ms,
                refs,
            }
        }
        other => return Err(format!("unknown record type {other}")),
    };
    if !reader.rest().is_empty() {
        return Err(format!(
            "{} stray bytes after the record",
            reader.rest().len()
        ));
    }
    Ok(record)
}

fn read_str(reader: &mut ByteReader<'_>) -> Result<String, String> {
    let len = reader.read_uvarint().map_err(|e| e.to_string())?;
    let len = usize::try_from(len).map_err(|_| "string length overflows".to_string())?;
    let bytes = reader.take(len).map_err(|e| e.to_string())?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_string())
}

fn segment_name(index: u64) -> String {
    format!("{index:08}")
}

/// A numbered file of the WAL: a segment or a checkpoint.
type Numbered = (u64, PathBuf);

/// The segments and the newest checkpoint in `dir`, sorted. Leftover
/// `*.tmp` files of an interrupted checkpoint are deleted.
fn scan(dir: &Path) -> Result<(Vec<Numbered>, Option<Numbered>), WalError> {
    let mut segments = Vec::new();
    let mut checkpoint: Option<Numbered> = None;
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tmp") {
            fs::remove_file(&path).map_err(io_error(&path))?;
        } else if let Some(index) = name.strip_prefix(CHECKPOINT_PREFIX) {
            if let Ok(index) = index.parse::<u64>()
                && checkpoint.as_ref().is_none_or(|(best, _)| index > *best)
            {
                checkpoint = Some((index, path));
            }
        } else if let Ok(index) = name.parse::<u64>() {
            segments.push((index, path));
        }
    }
    segments.sort();
    Ok((segments, checkpoint))
}

/// Reads every record of one file into `apply`; `truncate_torn` cuts a torn
/// tail off the file (only for the newest segment).
fn replay_file(
    path: &Path,
    truncate_torn: bool,
    stats: &mut ReplayStats,
    apply: &mut dyn FnMut(WalRecord),
) -> Result<(), WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_error(path))?;
    stats.files += 1;
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let end_of_good = |stats: &mut ReplayStats, why: &str| {
            stats.lost_bytes += rest.len() as u64;
            stats
                .damage
                .push(format!("{}: {why} at byte {at}", path.display()));
        };
        if rest.len() < HEADER {
            end_of_good(stats, "torn record header");
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        if len == 0 || len > MAX_RECORD_BYTES {
            end_of_good(stats, &format!("impossible record length {len}"));
            break;
        }
        if rest.len() < HEADER + len {
            end_of_good(stats, "record cut short");
            break;
        }
        let payload = &rest[HEADER..HEADER + len];
        at += HEADER + len;
        if crc32c::crc32c(payload) != crc {
            stats.corrupt_records += 1;
            stats.damage.push(format!(
                "{}: checksum mismatch in the record ending at byte {at}; skipped",
                path.display()
            ));
            continue;
        }
        match decode(payload) {
            Ok(record) => {
                stats.records += 1;
                if let WalRecord::Samples(samples) = &record {
                    stats.samples += samples.len() as u64;
                }
                apply(record);
            }
            Err(why) => {
                stats.corrupt_records += 1;
                stats.damage.push(format!(
                    "{}: undecodable record ending at byte {at} ({why}); skipped",
                    path.display()
                ));
            }
        }
    }
    if truncate_torn && at < bytes.len() {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        file.set_len(at as u64).map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))?;
    }
    Ok(())
}

/// Fsyncs a directory so renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

impl Wal {
    /// Replays `dir` (the newest checkpoint, then every later segment, in
    /// order) into `apply`, then opens a fresh segment for appends.
    ///
    /// # Errors
    /// [`WalError::Io`] when the directory or a file cannot be read or
    /// created. Damaged records are not errors: see [`ReplayStats`].
    pub fn open(
        dir: &Path,
        config: WalConfig,
        apply: &mut dyn FnMut(WalRecord),
    ) -> Result<(Wal, ReplayStats), WalError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let (segments, checkpoint) = scan(dir)?;
        let mut stats = ReplayStats::default();
        let from = match &checkpoint {
            Some((index, path)) => {
                replay_file(path, false, &mut stats, apply)?;
                *index
            }
            None => 0,
        };
        let newest = segments.last().map(|(index, _)| *index);
        for (index, path) in segments.iter().filter(|(index, _)| *index > from) {
            replay_file(path, Some(*index) == newest, &mut stats, apply)?;
        }
        let next = newest.unwrap_or(0).max(from) + 1;
        let file = Self::create_segment(dir, next)?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                config,
                file,
                index: next,
                len: 0,
                dirty: false,
                buf: Vec::new(),
            },
            stats,
        ))
    }

    fn create_segment(dir: &Path, index: u64) -> Result<File, WalError> {
        let path = dir.join(segment_name(index));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(dir)?;
        Ok(file)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// The segment appends go to.
    pub fn segment_index(&self) -> u64 {
        self.index
    }

    /// Writes series definitions, then samples, with one `write`; fsyncs
    /// when the policy is [`WalFsync::EveryBatch`]. On error nothing of the
    /// call stays in the segment (it is cut back), so a retry does not
    /// duplicate a half-written record.
    ///
    /// # Errors
    /// [`WalError::Io`]; [`WalError::TooLarge`] for a series with names
    /// longer than [`MAX_RECORD_BYTES`].
    pub fn log(
        &mut self,
        series: &[(u64, &str, &Labels)],
        samples: &[WalSample],
    ) -> Result<(), WalError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for (wal_ref, name, labels) in series {
            let before = buf.len();
            encode_series(&mut buf, *wal_ref, name, labels);
            if buf.len() - before - HEADER > MAX_RECORD_BYTES {
                let len = buf.len() - before;
                self.buf = buf;
                return Err(WalError::TooLarge(len));
            }
        }
        encode_samples(&mut buf, samples);
        let result = self.write(&buf);
        self.buf = buf;
        result
    }

    /// Writes series definitions, then a delete record for `refs` over
    /// `[start_ms, end_ms]`, with one `write`, and fsyncs whatever the
    /// policy: a deletion is acknowledged only once it is durable, or a
    /// crash would bring the data back.
    ///
    /// # Errors
    /// As [`Wal::log`].
    pub fn log_delete(
        &mut self,
        series: &[(u64, &str, &Labels)],
        start_ms: i64,
        end_ms: i64,
        refs: &[u64],
    ) -> Result<(), WalError> {
        let mut buf = Vec::new();
        for (wal_ref, name, labels) in series {
            encode_series(&mut buf, *wal_ref, name, labels);
        }
        for part in refs.chunks(1 << 20) {
            encode_delete(&mut buf, start_ms, end_ms, part);
        }
        self.write(&buf)?;
        self.sync()
    }

    /// Appends already framed records.
    fn write(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.len >= self.config.segment_bytes {
            self.roll()?;
        }
        let path = self.dir.join(segment_name(self.index));
        if let Err(source) = self.file.write_all(bytes) {
            // Cut a partial write back so the segment ends on a record.
            let _ = self.file.set_len(self.len);
            return Err(WalError::Io {
                path: path.display().to_string(),
                source,
            });
        }
        self.len += bytes.len() as u64;
        if self.config.fsync == WalFsync::EveryBatch {
            self.file.sync_data().map_err(io_error(&path))?;
        } else {
            self.dirty = true;
        }
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts the next; returns
    /// the index of the segment just closed.
    ///
    /// # Errors
    /// [`WalError::Io`].
    pub fn roll(&mut self) -> Result<u64, WalError> {
        let closed = self.index;
        if self.config.fsync != WalFsync::Never {
            let path = self.dir.join(segment_name(closed));
            self.file.sync_data().map_err(io_error(&path))?;
        }
        let file = Self::create_segment(&self.dir, closed + 1)?;
        self.file = file;
        self.index = closed + 1;
        self.len = 0;
        self.dirty = false;
        Ok(closed)
    }

    /// A handle on the current segment for an `fsync` outside the caller's
    /// lock, or `None` when nothing was written since the last one. (The
    /// next roll fsyncs the segment it closes, so a handle that outlives
    /// its segment loses nothing.)
    ///
    /// # Errors
    /// [`WalError::Io`] when the handle cannot be duplicated.
    pub fn take_sync_handle(&mut self) -> Result<Option<File>, WalError> {
        if !self.dirty {
            return Ok(None);
        }
        let path = self.dir.join(segment_name(self.index));
        let handle = self.file.try_clone().map_err(io_error(&path))?;
        self.dirty = false;
        Ok(Some(handle))
    }

    /// Fsyncs the current segment now.
    ///
    /// # Errors
    /// [`WalError::Io`].
    pub fn sync(&mut self) -> Result<(), WalError> {
        let path = self.dir.join(segment_name(self.index));
        self.file.sync_data().map_err(io_error(&path))?;
        self.dirty = false;
        Ok(())
    }
}

/// Writes `checkpoint.<upto>` atomically (temp file, fsync, rename, fsync
/// the directory) with the records `fill` encodes, then deletes segments
/// `<= upto` and older checkpoints: replay will start from it.
///
/// # Errors
/// [`WalError::Io`]; on error the segments are all still there.
pub fn write_checkpoint(
    dir: &Path,
    upto: u64,
    fill: &mut dyn FnMut(&mut Vec<u8>),
) -> Result<(), WalError> {
    let name = format!("{CHECKPOINT_PREFIX}{}", segment_name(upto));
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(&name);
    let mut bytes = Vec::new();
    fill(&mut bytes);
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_error(&path))?;
    sync_dir(dir)?;
    let (segments, _) = scan(dir)?;
    for (index, old) in segments {
        if index <= upto {
            fs::remove_file(&old).map_err(io_error(&old))?;
        }
    }
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let old = entry.path();
        let older = old
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|index| index < upto);
        if older {
            fs::remove_file(&old).map_err(io_error(&old))?;
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wal_ref: u64, timestamp_ms: i64, value: f64) -> WalSample {
        WalSample {
            wal_ref,
            timestamp_ms,
            value,
        }
    }

    fn replay(dir: &Path) -> (Vec<WalRecord>, ReplayStats, Wal) {
        let mut records = Vec::new();
        let (wal, stats) =
            Wal::open(dir, WalConfig::default(), &mut |r| records.push(r)).expect("open");
        (records, stats, wal)
    }

    #[test]
    fn records_round_trip_across_reopen_and_rolls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels = Labels::from_pairs([("host", "a"), ("region", "eu")]);
        let config = WalConfig {
            segment_bytes: 64,
            fsync: WalFsync::EveryBatch,
        };
        let (mut wal, stats) = Wal::open(dir.path(), config, &mut |_| {}).expect("open");
        assert_eq!(stats, ReplayStats::default());
        wal.log(&[(3, "cpu", &labels)], &[sample(3, 1_000, 1.5)])
            .expect("log");
        for i in 0..10 {
            wal.log(
                &[],
                &[sample(3, 1_000 - i, f64::NAN), sample(3, i64::MIN, -0.0)],
            )
            .expect("log");
        }
        drop(wal);
        let (records, stats, _) = replay(dir.path());
        assert!(stats.files > 2, "rolled: {stats:?}");
        assert_eq!(stats.samples, 21);
        assert_eq!(
            records[0],
            WalRecord::Series {
                wal_ref: 3,
                name: "cpu".into(),
                labels
            }
        );
        let WalRecord::Samples(last) = &records[records.len() - 1] else {
            panic!("samples last");
        };
        assert_eq!(last[0].timestamp_ms, 991);
        assert!(last[0].value.is_nan());
        assert_eq!(last[1].timestamp_ms, i64::MIN);
        assert_eq!(last[1].value.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_bad_checksum_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default(), &mut |_| {}).expect("open");
        for i in 0..3 {
            wal.log(&[], &[sample(1, i, 1.0)]).expect("log");
        }
        let path = dir.path().join(segment_name(wal.segment_index()));
        drop(wal);
        let mut bytes = fs::read(&path).expect("read");
        let one = bytes.len() / 3;
        bytes[one + HEADER + 2] ^= 0xff; // second record's body
        bytes.truncate(bytes.len() - 3); // third record torn
        fs::write(&path, &bytes).expect("write");
        let (records, stats, _) = replay(dir.path());
        assert_eq!(records, vec![WalRecord::Samples(vec![sample(1, 0, 1.0)])]);
        assert_eq!(stats.corrupt_records, 1);
        assert_eq!(stats.damage.len(), 2, "{:?}", stats.damage);
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            2 * one as u64,
            "the torn tail is cut off the newest segment"
        );
    }

    #[test]
    fn a_checkpoint_replaces_older_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default(), &mut |_| {}).expect("open");
        wal.log(&[], &[sample(1, 1, 1.0)]).expect("log");
        let closed = wal.roll().expect("roll");
        wal.log(&[], &[sample(1, 2, 2.0)]).expect("log");
        write_checkpoint(dir.path(), closed, &mut |out| {
            encode_samples(out, &[sample(1, 1, 10.0)]);
        })
        .expect("checkpoint");
        drop(wal);
        let (records, stats, _) = replay(dir.path());
        assert_eq!(stats.files, 2, "checkpoint + the later segment");
        assert_eq!(
            records,
            vec![
                WalRecord::Samples(vec![sample(1, 1, 10.0)]),
                WalRecord::Samples(vec![sample(1, 2, 2.0)]),
            ]
        );
    }

    #[test]
    fn random_damage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let labels = Labels::from_pairs([("h", "x")]);
        for round in 0..40 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (mut wal, _) =
                Wal::open(dir.path(), WalConfig::default(), &mut |_| {}).expect("open");
            for i in 0..20 {
                wal.log(&[(i, "m", &labels)], &[sample(i, i as i64, 0.5)])
                    .expect("log");
            }
            let path = dir.path().join(segment_name(wal.segment_index()));
            drop(wal);
            let mut bytes = fs::read(&path).expect("read");
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = rng.r#gen();
            }
            if round % 2 == 0 {
                bytes.truncate(rng.gen_range(0..bytes.len()));
            }
            fs::write(&path, &bytes).expect("write");
            let (records, stats, _) = replay(dir.path());
            // What survives is a subset of what was written, never invented.
            for record in records {
                match record {
                    WalRecord::Samples(samples) => {
                        for s in samples {
                            assert_eq!(s.timestamp_ms, s.wal_ref as i64);
                            assert_eq!(s.value, 0.5);
                        }
                    }
                    WalRecord::Series { name, .. } => assert_eq!(name, "m"),
                    WalRecord::Delete { .. } => panic!("no delete record was written"),
                }
            }
            assert!(stats.records <= 40);
        }
    }

    #[test]
    fn delete_records_round_trip_between_samples() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, _, mut wal) = replay(dir.path());
        let labels = Labels::from_pairs([("host", "a")]);
        wal.log(&[(1, "m", &labels)], &[sample(1, 10, 1.0)])
            .expect("log");
        wal.log_delete(&[(2, "n", &labels)], -5, 1_000, &[1, 2])
            .expect("delete");
        wal.log(&[], &[sample(1, 20, 2.0)]).expect("log");
        drop(wal);
        let (records, _, _) = replay(dir.path());
        assert_eq!(records.len(), 5, "{records:?}");
        assert_eq!(
            records[3],
            WalRecord::Delete {
                start_ms: -5,
                end_ms: 1_000,
                refs: vec![1, 2]
            }
        );
        assert_eq!(records[4], WalRecord::Samples(vec![sample(1, 20, 2.0)]));
    }

    #[test]
    fn the_documented_bytes() {
        // docs/src/formats/wal.md, "A hex dump".
        let mut out = Vec::new();
        encode_series(&mut out, 0, "cpu", &Labels::from_pairs([("host", "a")]));
        encode_samples(&mut out, &[sample(0, 1_000, 1.5)]);
        let series = [
            0x01, 0x00, 0x03, b'c', b'p', b'u', 0x01, 0x04, b'h', b'o', b's', b't', 0x01, b'a',
        ];
        let samples = [0x02, 0x01, 0x00, 0xd0, 0x0f, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f];
        let mut expected = Vec::new();
        for body in [&series[..], &samples[..]] {
            expected.extend_from_slice(&(body.len() as u32).to_le_bytes());
            expected.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
            expected.extend_from_slice(body);
        }
        assert_eq!(out, expected);
        assert_eq!(series.len(), 14);
        assert_eq!(samples.len(), 13);
    }

    #[test]
    fn fsync_policies_parse() {
        assert_eq!("every-batch".parse(), Ok(WalFsync::EveryBatch));
        assert_eq!("never".parse(), Ok(WalFsync::Never));
        assert_eq!(
            "250ms".parse(),
            Ok(WalFsync::Interval(Duration::from_millis(250)))
        );
        let error = "sometimes".parse::<WalFsync>().expect_err("bad");
        assert!(error.contains("\"sometimes\""), "{error}");
        assert!("0s".parse::<WalFsync>().is_err());
    }
}
