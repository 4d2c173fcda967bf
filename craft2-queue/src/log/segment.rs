//! One segment: a file of framed records (`<base offset>.log`) and its sparse
//! index (`<base offset>.index`), named by the offset of its first record.
//!
//! A partition is a list of segments; only the last (the *active* one) is
//! written. Rolling to a new file at a size is what makes retention cheap
//! (delete whole old files, never rewrite) and recovery short (only the
//! active segment can have a torn tail). This file also holds the scan that
//! recovery and reads share: it steps record by record, checks every CRC,
//! and steps over a damaged record — by its length, or by the index when
//! the length itself is damaged — reporting it instead of returning it.
//! Story: docs chapter 2, "Segments" and "Recovery"; layout:
//! `docs/src/formats/log-segment.md`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use common::Metric;

use super::codec;
use super::index::{self, SparseIndex};
use super::record::{self, Frame, HEADER_LEN};

/// How much of a segment a scan reads at a time.
const WINDOW: usize = 256 * 1024;

/// A damaged record found by a scan: reported, never returned as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The partition (filled in by the partition; segments do not know it).
    pub partition: u32,
    /// The segment's base offset.
    pub segment_base: u64,
    /// Byte position of the damaged record in the segment file.
    pub position: u64,
    /// The offset the damaged record most likely had.
    pub expected_offset: u64,
    /// What was wrong, for the operator.
    pub detail: String,
}

/// What opening a segment found and repaired.
#[derive(Debug, Default, Clone)]
pub struct OpenReport {
    /// Bytes cut off a torn tail.
    pub truncated_bytes: u64,
    /// The index file was missing or damaged and was rebuilt from the log.
    pub index_rebuilt: bool,
    /// Damaged records found while scanning.
    pub corruptions: Vec<Corruption>,
}

/// One segment file and its index.
pub struct Segment {
    base: u64,
    log_path: PathBuf,
    index_path: PathBuf,
    /// Shared so a group commit can fsync without the partition's lock.
    file: Arc<File>,
    index_file: Arc<File>,
    len: u64,
    next_offset: u64,
    index: SparseIndex,
    unsynced: bool,
    modified: SystemTime,
    window: Window,
}

/// The file name of the segment starting at `base` (20 digits, so names
/// sort as offsets do).
pub fn log_file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base offset named by a segment file name, if it is one.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn index_file_name(base: u64) -> String {
    format!("{base:020}.index")
}

impl Segment {
    /// Creates an empty segment starting at offset `base`.
    pub fn create(dir: &Path, base: u64, index_interval: usize) -> io::Result<Segment> {
        let log_path = dir.join(log_file_name(base));
        let index_path = dir.join(index_file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)?;
        let index_file = File::create(&index_path)?;
        Ok(Segment {
            base,
            log_path,
            index_path,
            file: Arc::new(file),
            index_file: Arc::new(index_file),
            len: 0,
            next_offset: base,
            index: SparseIndex::new(index_interval),
            unsynced: true,
            modified: SystemTime::now(),
            window: Window::default(),
        })
    }

    /// Opens an existing segment.
    ///
    /// A sealed segment (`active == false`) is trusted up to its length: its
    /// index is loaded, or rebuilt by a scan if missing or damaged. The
    /// active segment is scanned whole, because a crash can only have torn
    /// the segment being written: a damaged record with no sound record
    /// after it is a torn tail and is cut off; one with sound records after
    /// it is corruption and is reported (and skipped by readers).
    pub fn open(
        dir: &Path,
        base: u64,
        index_interval: usize,
        active: bool,
    ) -> io::Result<(Segment, OpenReport)> {
        let log_path = dir.join(log_file_name(base));
        let index_path = dir.join(index_file_name(base));
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let meta = file.metadata()?;
        let len = meta.len();
        if len > u64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is larger than 4 GiB, which the index cannot address",
                    log_path.display()
                ),
            ));
        }
        let loaded = match SparseIndex::load(&index_path, index_interval, len) {
            Ok(loaded) => Some(loaded),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let index_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index_path)?;
        let mut segment = Segment {
            base,
            log_path,
            index_path,
            file: Arc::new(file),
            index_file: Arc::new(index_file),
            len,
            next_offset: base,
            index: SparseIndex::new(index_interval),
            unsynced: false,
            modified: meta.modified().unwrap_or_else(|_| SystemTime::now()),
            window: Window::default(),
        };
        let mut report = OpenReport::default();
        match loaded {
            Some((index, true)) if !active => {
                // Trust the index; find the last offset by scanning the last
                // interval only.
                segment.index = index;
                let start = segment.index.floor(u32::MAX);
                segment.next_offset = base + u64::from(start.relative);
                let mut last = None;
                let end = segment.scan(
                    u64::from(start.position),
                    base + u64::from(start.relative),
                    false,
                    &mut report.corruptions,
                    |offset, _, _| {
                        last = Some(offset);
                        ControlFlow::Continue(())
                    },
                )?;
                debug_assert!(end.torn_at.is_none());
                if let Some(last) = last {
                    segment.next_offset = last + 1;
                }
            }
            other => {
                let was_whole = matches!(other, Some((_, true)));
                let resync = other
                    .map(|(index, _)| index)
                    .unwrap_or_else(|| SparseIndex::new(index_interval));
                segment.index = resync;
                let mut rebuilt = SparseIndex::new(index_interval);
                let mut last = None;
                let end = segment.scan(
                    0,
                    base,
                    active,
                    &mut report.corruptions,
                    |offset, position, len| {
                        let relative =
                            u32::try_from(offset.saturating_sub(base)).unwrap_or(u32::MAX);
                        rebuilt.observe(relative, position as u32, len);
                        last = Some(offset);
                        ControlFlow::Continue(())
                    },
                )?;
                if let Some(torn_at) = end.torn_at {
                    report.truncated_bytes = segment.len - torn_at;
                    segment.file.set_len(torn_at)?;
                    segment.file.sync_data()?;
                    segment.len = torn_at;
                    segment.window = Window::default();
                }
                if let Some(last) = last {
                    segment.next_offset = last + 1;
                }
                report.index_rebuilt = !was_whole || report.truncated_bytes > 0;
                segment.index = rebuilt;
                segment.rewrite_index()?;
            }
        }
        Ok((segment, report))
    }

    fn rewrite_index(&mut self) -> io::Result<()> {
        self.index.write_file(&self.index_path)?;
        self.index_file = Arc::new(OpenOptions::new().append(true).open(&self.index_path)?);
        Ok(())
    }

    /// Appends already-framed records. `records` lists each record's offset
    /// and length, in order. On a failed write the file is cut back, so a
    /// half-written batch never becomes readable.
    pub fn append(&mut self, bytes: &[u8], records: &[(u64, usize)]) -> io::Result<()> {
        if let Err(e) = self.file.write_all_at(bytes, self.len) {
            let _ = self.file.set_len(self.len);
            self.window = Window::default();
            return Err(e);
        }
        let mut position = self.len;
        let mut new_entries = Vec::new();
        for &(offset, len) in records {
            let relative = u32::try_from(offset - self.base).unwrap_or(u32::MAX);
            if let Some(entry) = self.index.observe(relative, position as u32, len) {
                new_entries.extend_from_slice(&index::encode_entry(entry));
            }
            position += len as u64;
        }
        self.len += bytes.len() as u64;
        if let Some(&(last, _)) = records.last() {
            self.next_offset = last + 1;
        }
        self.unsynced = true;
        self.modified = SystemTime::now();
        if !new_entries.is_empty() {
            // The index is a hint: a lost entry is rebuilt on open.
            (&*self.index_file).write_all(&new_entries)?;
        }
        Ok(())
    }

    /// Flushes the segment and its index to disk (fsync), if written since
    /// the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        match self.begin_sync() {
            Some(pending) => pending.run(),
            None => Ok(()),
        }
    }

    /// Hands out what an fsync needs, if anything was written since the
    /// last one, so the caller can run it after releasing the partition's
    /// lock: a group commit then never stalls the producers appending
    /// meanwhile. Bytes appended after this call are left for the next sync.
    pub fn begin_sync(&mut self) -> Option<PendingSync> {
        if !self.unsynced {
            return None;
        }
        self.unsynced = false;
        Some(PendingSync {
            log: self.file.clone(),
            index: self.index_file.clone(),
        })
    }

    /// Reads up to `max` records with offsets ≥ `from` into `out`, starting
    /// the scan at byte `hint` if given (a position known to hold the
    /// record `from`). Damaged records are appended to `corruptions` and
    /// skipped. Returns the position after the last record read (a hint for
    /// the next read).
    pub fn read(
        &mut self,
        from: u64,
        hint: Option<u64>,
        max: usize,
        out: &mut Vec<(u64, Metric)>,
        corruptions: &mut Vec<Corruption>,
    ) -> io::Result<u64> {
        let (position, expected) = match hint {
            Some(position) if position <= self.len => (position, from),
            _ => {
                let relative = u32::try_from(from.saturating_sub(self.base)).unwrap_or(u32::MAX);
                let entry = self.index.floor(relative);
                (
                    u64::from(entry.position),
                    self.base + u64::from(entry.relative),
                )
            }
        };
        let mut after = position;
        let mut found: Vec<(u64, u64, usize)> = Vec::new();
        self.scan(
            position,
            expected,
            false,
            corruptions,
            |offset, position, len| {
                if found.len() >= max {
                    return ControlFlow::Break(());
                }
                after = position + len as u64;
                if offset >= from {
                    found.push((offset, position, len));
                }
                ControlFlow::Continue(())
            },
        )?;
        // The scan's callback cannot borrow the window it reads from, so the
        // payloads are decoded in a second pass over the same bytes (still
        // in the window, so no second read).
        for (offset, position, len) in found {
            match self.decode_at(position, len)? {
                Ok(metric) => out.push((offset, metric)),
                Err(e) => corruptions.push(Corruption {
                    partition: 0,
                    segment_base: self.base,
                    position,
                    expected_offset: offset,
                    detail: format!("record passed its CRC but its payload does not decode: {e}"),
                }),
            }
        }
        Ok(after)
    }

    /// Steps through records from `position` until the end of the segment
    /// or until `on_record` breaks. See [`open`](Self::open) for `tail`.
    fn scan(
        &mut self,
        mut position: u64,
        mut expected: u64,
        tail: bool,
        corruptions: &mut Vec<Corruption>,
        mut on_record: impl FnMut(u64, u64, usize) -> ControlFlow<()>,
    ) -> io::Result<ScanEnd> {
        while position < self.len {
            let frame = self.frame_at(position)?;
            match frame {
                Frame::Valid { offset, len } => {
                    if on_record(offset, position, len).is_break() {
                        break;
                    }
                    expected = offset + 1;
                    position += len as u64;
                }
                Frame::Incomplete | Frame::Corrupt { .. } => {
                    let resume = self.resume_after(position, frame)?;
                    if tail && resume.is_none() {
                        return Ok(ScanEnd {
                            torn_at: Some(position),
                        });
                    }
                    corruptions.push(Corruption {
                        partition: 0,
                        segment_base: self.base,
                        position,
                        expected_offset: expected,
                        detail: match frame {
                            Frame::Incomplete => {
                                "record length runs past the end of the segment".into()
                            }
                            Frame::Corrupt { len: None } => "record length is impossible".into(),
                            _ => "record CRC does not match its bytes".into(),
                        },
                    });
                    position = resume.unwrap_or(self.len);
                }
            }
        }
        Ok(ScanEnd { torn_at: None })
    }

    /// Where sound records resume after the damaged one at `position`: the
    /// next record by the declared length if that lands on a sound record,
    /// else the next index entry that does, else nowhere.
    fn resume_after(&mut self, position: u64, frame: Frame) -> io::Result<Option<u64>> {
        if let Frame::Corrupt { len: Some(len) } = frame {
            let next = position + len as u64;
            if next < self.len && matches!(self.frame_at(next)?, Frame::Valid { .. }) {
                return Ok(Some(next));
            }
        }
        let mut from = position as u32;
        while let Some(entry) = self.index.after_position(from) {
            let at = u64::from(entry.position);
            if at < self.len && matches!(self.frame_at(at)?, Frame::Valid { .. }) {
                return Ok(Some(at));
            }
            from = entry.position;
        }
        Ok(None)
    }

    /// Parses the frame at `position`, reading more of the file as needed.
    fn frame_at(&mut self, position: u64) -> io::Result<Frame> {
        let bytes = self.window.at(&self.file, self.len, position, HEADER_LEN)?;
        let frame = record::parse(bytes);
        if frame == Frame::Incomplete && bytes.len() >= 4 {
            let declared = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let need = HEADER_LEN + declared;
            if position + need as u64 <= self.len && bytes.len() < need {
                let bytes = self.window.at(&self.file, self.len, position, need)?;
                return Ok(record::parse(bytes));
            }
        }
        Ok(frame)
    }

    /// The payload of the sound record at `position` of `len` bytes.
    fn payload_at(&mut self, position: u64, len: usize) -> io::Result<&[u8]> {
        let bytes = self.window.at(&self.file, self.len, position, len)?;
        Ok(record::payload(&bytes[..len]))
    }

    /// Decodes the record at `position` (which a scan found sound).
    pub fn decode_at(
        &mut self,
        position: u64,
        len: usize,
    ) -> io::Result<Result<Metric, codec::CodecError>> {
        Ok(codec::decode(self.payload_at(position, len)?))
    }

    /// The offset of this segment's first record.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Bytes in the segment file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no record was ever written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// When a record was last appended (file mtime after a restart).
    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    /// Removes the segment's files (retention).
    pub fn delete(self) -> io::Result<()> {
        std::fs::remove_file(&self.log_path)?;
        match std::fs::remove_file(&self.index_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// An fsync to run outside the partition lock (see
/// [`Segment::begin_sync`]).
pub struct PendingSync {
    log: Arc<File>,
    index: Arc<File>,
}

impl PendingSync {
    /// fsyncs the segment, then its index.
    pub fn run(self) -> io::Result<()> {
        self.log.sync_data()?;
        self.index.sync_data()
    }
}

struct ScanEnd {
    /// Where a torn tail starts (tail scans only).
    torn_at: Option<u64>,
}

/// A reusable read buffer over a segment file.
#[derive(Default)]
struct Window {
    buf: Vec<u8>,
    start: u64,
}

impl Window {
    /// The file's bytes from `position` to the end of the window, reading
    /// so that at least `need` bytes (or up to the end of the file) are there.
    fn at(&mut self, file: &File, file_len: u64, position: u64, need: usize) -> io::Result<&[u8]> {
        if position >= file_len {
            return Ok(&[]);
        }
        let end = self.start + self.buf.len() as u64;
        let want_end = (position + need as u64).min(file_len);
        if position < self.start || want_end > end {
            let size = (file_len - position).min(need.max(WINDOW) as u64) as usize;
            self.buf.resize(size, 0);
            file.read_exact_at(&mut self.buf, position)?;
            self.start = position;
        }
        let from = (position - self.start) as usize;
        Ok(&self.buf[from..])
    }
}
