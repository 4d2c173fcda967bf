//! One partition: an ordered list of segments, the last one active.
//!
//! A partition is the unit of order (offsets grow by one per record) and of
//! parallelism (one consumer per partition in a group). It rolls to a new
//! segment at a size, finds the segment holding an offset by binary search
//! over base offsets, and applies retention by deleting whole sealed
//! segments — never rewriting a file. Story: docs chapter 2, "Partitions".

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::Metric;

use super::record;
use super::segment::{self, Corruption, OpenReport, PendingSync, Segment};

/// Segment sizing for a partition.
#[derive(Debug, Clone, Copy)]
pub struct PartitionLimits {
    /// Roll to a new segment once the active one reaches this many bytes.
    pub segment_bytes: u64,
    /// Bytes of records between sparse index entries.
    pub index_interval: usize,
}

/// What a read returned.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// Records with their offsets, in offset order.
    pub records: Vec<(u64, Metric)>,
    /// Where the next read continues (past any skipped damaged record).
    pub next_offset: u64,
    /// Damaged records met for the first time by this read.
    pub corruptions: Vec<Corruption>,
}

/// What retention removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Whole segments deleted.
    pub segments: usize,
    /// Records in them.
    pub records: u64,
}

/// One partition's segments on disk.
pub struct Partition {
    id: u32,
    dir: PathBuf,
    limits: PartitionLimits,
    /// Sorted by base offset; never empty; the last one is active.
    segments: Vec<Segment>,
    /// `(offset, segment base, position)` of where recent reads stopped, so
    /// a consumer reading on does not go through the index each time.
    hints: Vec<(u64, u64, u64)>,
    /// Damaged records already reported, so each is reported once.
    reported: HashSet<(u64, u64)>,
    encode_buf: Vec<u8>,
    framed: Vec<(u64, usize)>,
}

impl Partition {
    /// Opens (or creates) partition `id` in `dir`, recovering its active
    /// segment. Returns what recovery found, per segment.
    pub fn open(
        dir: &Path,
        id: u32,
        limits: PartitionLimits,
    ) -> io::Result<(Partition, Vec<(u64, OpenReport)>)> {
        fs::create_dir_all(dir)?;
        let mut bases: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(base) = entry
                .file_name()
                .to_str()
                .and_then(segment::parse_log_file_name)
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut reports = Vec::new();
        let mut reported = HashSet::new();
        for (i, base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            let (segment, mut report) = Segment::open(dir, *base, limits.index_interval, active)?;
            for c in &mut report.corruptions {
                c.partition = id;
                reported.insert((c.segment_base, c.position));
            }
            if report.truncated_bytes > 0 || report.index_rebuilt || !report.corruptions.is_empty()
            {
                reports.push((*base, report));
            }
            segments.push(segment);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0, limits.index_interval)?);
        }
        Ok((
            Partition {
                id,
                dir: dir.to_path_buf(),
                limits,
                segments,
                hints: Vec::new(),
                reported,
                encode_buf: Vec::new(),
                framed: Vec::new(),
            },
            reports,
        ))
    }

    /// The offset of the oldest record still on disk.
    pub fn start_offset(&self) -> u64 {
        self.segments.first().map_or(0, Segment::base)
    }

    /// The offset the next appended record gets.
    pub fn end_offset(&self) -> u64 {
        self.segments.last().map_or(0, Segment::next_offset)
    }

    /// Bytes on disk in this partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Segment files, oldest first.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends `metrics` as consecutive records; returns the first offset.
    /// `sync` fsyncs before returning; `sync_on_roll` fsyncs a segment as it
    /// is sealed.
    ///
    /// # Errors
    /// I/O errors (the partial batch is cut back off the file), or
    /// `InvalidInput` for a metric too large to frame.
    pub fn append(
        &mut self,
        metrics: &[&Metric],
        sync: bool,
        sync_on_roll: bool,
    ) -> io::Result<u64> {
        let first = self.end_offset();
        self.encode_buf.clear();
        self.framed.clear();
        for (i, metric) in metrics.iter().enumerate() {
            let offset = first + i as u64;
            let len = record::append(&mut self.encode_buf, offset, metric)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            self.framed.push((offset, len));
        }
        let active_len = self.segments.last().map_or(0, Segment::len);
        if active_len > 0 && active_len + self.encode_buf.len() as u64 > self.limits.segment_bytes {
            self.roll(sync_on_roll)?;
        }
        let Some(active) = self.segments.last_mut() else {
            return Err(io::Error::other("partition has no segment"));
        };
        active.append(&self.encode_buf, &self.framed)?;
        if sync {
            active.sync()?;
        }
        Ok(first)
    }

    /// Seals the active segment and starts a new one at the end offset.
    fn roll(&mut self, sync_sealed: bool) -> io::Result<()> {
        let base = self.end_offset();
        if let Some(active) = self.segments.last_mut()
            && sync_sealed
        {
            active.sync()?;
        }
        self.segments.push(Segment::create(
            &self.dir,
            base,
            self.limits.index_interval,
        )?);
        Ok(())
    }

    /// fsyncs the active segment if it was written since the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        match self.segments.last_mut() {
            Some(active) => active.sync(),
            None => Ok(()),
        }
    }

    /// The active segment's fsync, to run after releasing this partition's
    /// lock (group commit); None when nothing was written since the last.
    pub fn begin_sync(&mut self) -> Option<PendingSync> {
        self.segments.last_mut().and_then(Segment::begin_sync)
    }

    /// Reads up to `max` records starting at offset `from` (which must be
    /// ≥ [`start_offset`](Self::start_offset)).
    pub fn read(&mut self, from: u64, max: usize) -> io::Result<ReadBatch> {
        let mut batch = ReadBatch {
            next_offset: from,
            ..ReadBatch::default()
        };
        let end = self.end_offset();
        if from >= end || max == 0 {
            return Ok(batch);
        }
        let mut at = from.max(self.start_offset());
        let mut i = self
            .segments
            .partition_point(|s| s.base() <= at)
            .saturating_sub(1);
        let mut hint = self
            .hints
            .iter()
            .find(|(offset, _, _)| *offset == at)
            .map(|(_, base, position)| (*base, *position));
        let mut found = Vec::new();
        while i < self.segments.len() && batch.records.len() < max {
            let segment = &mut self.segments[i];
            let base = segment.base();
            let position = hint.take().filter(|(b, _)| *b == base).map(|(_, p)| p);
            let after = segment.read(
                at,
                position,
                max - batch.records.len(),
                &mut batch.records,
                &mut found,
            )?;
            if batch.records.len() >= max {
                at = batch.records.last().map_or(at, |(o, _)| o + 1);
                self.remember(at, base, after);
                break;
            }
            // This segment is exhausted: go on from where the next begins,
            // even if damaged records at its end returned nothing.
            at = self.segments[i].next_offset().max(at);
            if i + 1 == self.segments.len() {
                self.remember(at, base, after);
            }
            i += 1;
        }
        batch.next_offset = at.min(end).max(from);
        for mut c in found {
            c.partition = self.id;
            if self.reported.insert((c.segment_base, c.position)) {
                batch.corruptions.push(c);
            }
        }
        Ok(batch)
    }

    fn remember(&mut self, offset: u64, base: u64, position: u64) {
        if self.hints.len() >= 8 {
            self.hints.remove(0);
        }
        self.hints.retain(|(o, _, _)| *o != offset);
        self.hints.push((offset, base, position));
    }

    /// Deletes sealed segments, oldest first, while the partition is larger
    /// than `max_bytes` or the segment's last write is older than `max_age`.
    /// The active segment is never deleted.
    pub fn enforce_retention(
        &mut self,
        now: SystemTime,
        max_bytes: Option<u64>,
        max_age: Option<Duration>,
    ) -> io::Result<Removed> {
        let mut removed = Removed::default();
        let mut total = self.size_bytes();
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let too_big = max_bytes.is_some_and(|max| total > max);
            let too_old = max_age.is_some_and(|age| {
                now.duration_since(oldest.modified())
                    .is_ok_and(|elapsed| elapsed > age)
            });
            if !too_big && !too_old {
                break;
            }
            let segment = self.segments.remove(0);
            total -= segment.len();
            removed.records += self.segments[0].base() - segment.base();
            removed.segments += 1;
            segment.delete()?;
        }
        if removed.segments > 0 {
            let start = self.start_offset();
            self.hints.retain(|(o, _, _)| *o >= start);
        }
        Ok(removed)
    }
}
