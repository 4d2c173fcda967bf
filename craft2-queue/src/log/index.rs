//! The sparse offset index: every ~4 KiB of segment, one entry saying "the
//! record with this offset starts at this byte".
//!
//! Without it, finding offset N means reading the segment from its start;
//! with it, a reader seeks to the nearest entry at or before N and scans at
//! most one interval. Kafka keeps one entry per `index.interval.bytes`
//! (4 KiB by default) for the same reason: the index stays small enough to
//! live in memory. It is also how a reader finds its footing again after a
//! record whose length field is damaged. Entries are 8 bytes, little-endian:
//! `relative offset u32 | position u32`. Story: docs chapter 2, "Finding an
//! offset"; layout: `docs/src/formats/log-segment.md`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Bytes per index entry.
pub const ENTRY_LEN: usize = 8;

/// One index entry: a record's offset relative to its segment's base, and
/// the byte where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// `offset - segment base`.
    pub relative: u32,
    /// Byte position of the record in the segment file.
    pub position: u32,
}

/// An in-memory sparse index of one segment.
#[derive(Debug, Clone)]
pub struct SparseIndex {
    entries: Vec<Entry>,
    interval: usize,
    bytes_since_entry: usize,
}

impl SparseIndex {
    /// An empty index adding an entry every `interval` bytes of records.
    pub fn new(interval: usize) -> Self {
        SparseIndex {
            entries: Vec::new(),
            interval: interval.max(1),
            bytes_since_entry: 0,
        }
    }

    /// Notes a record appended at `position`; returns the entry added, if
    /// this record starts a new interval (the first record always does).
    pub fn observe(&mut self, relative: u32, position: u32, record_len: usize) -> Option<Entry> {
        let added = if self.entries.is_empty() || self.bytes_since_entry >= self.interval {
            let entry = Entry { relative, position };
            self.entries.push(entry);
            self.bytes_since_entry = 0;
            Some(entry)
        } else {
            None
        };
        self.bytes_since_entry += record_len;
        added
    }

    /// The last entry at or before `relative`, or the segment's start.
    pub fn floor(&self, relative: u32) -> Entry {
        match self.entries.partition_point(|e| e.relative <= relative) {
            0 => Entry {
                relative: 0,
                position: 0,
            },
            n => self.entries[n - 1],
        }
    }

    /// The first entry starting after byte `position`: where a reader
    /// resumes after a record it cannot step over.
    pub fn after_position(&self, position: u32) -> Option<Entry> {
        let n = self.entries.partition_point(|e| e.position <= position);
        self.entries.get(n).copied()
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Encodes the entries as the index file holds them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            out.extend_from_slice(&encode_entry(*e));
        }
        out
    }

    /// Reads an index file, keeping the entries that make sense for a
    /// segment of `segment_len` bytes: increasing, inside the segment. A
    /// partial trailing entry (a crash mid-append) is dropped. Returns the
    /// index and whether the file was whole and consistent.
    pub fn load(path: &Path, interval: usize, segment_len: u64) -> io::Result<(Self, bool)> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let mut index = SparseIndex::new(interval);
        let mut whole = bytes.len() % ENTRY_LEN == 0;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let entry = Entry {
                relative: u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            let increasing = index.entries.last().is_none_or(|last| {
                entry.relative > last.relative && entry.position > last.position
            });
            if !increasing || u64::from(entry.position) >= segment_len {
                whole = false;
                break;
            }
            index.entries.push(entry);
        }
        Ok((index, whole))
    }

    /// Writes the whole index to `path` (replacing it).
    pub fn write_file(&self, path: &Path) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(&self.to_bytes())?;
        Ok(())
    }
}

/// The 8 bytes of one entry.
pub fn encode_entry(entry: Entry) -> [u8; ENTRY_LEN] {
    let mut out = [0u8; ENTRY_LEN];
    out[..4].copy_from_slice(&entry.relative.to_le_bytes());
    out[4..].copy_from_slice(&entry.position.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sparse_and_floor_finds_the_nearest() {
        let mut index = SparseIndex::new(100);
        let mut pos = 0u32;
        for rel in 0..50u32 {
            index.observe(rel, pos, 30);
            pos += 30;
        }
        // An entry every 4 records (120 bytes ≥ 100).
        assert_eq!(index.entries().len(), 13);
        assert_eq!(
            index.floor(0),
            Entry {
                relative: 0,
                position: 0
            }
        );
        assert_eq!(
            index.floor(5),
            Entry {
                relative: 4,
                position: 120
            }
        );
        assert_eq!(index.floor(49).relative, 48);
        assert_eq!(index.after_position(120).unwrap().relative, 8);
        assert!(index.after_position(10_000).is_none());
    }

    #[test]
    fn load_keeps_the_sound_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut index = SparseIndex::new(1);
        for rel in 0..4u32 {
            index.observe(rel, rel * 10, 10);
        }
        let mut bytes = index.to_bytes();
        bytes.extend_from_slice(&[1, 2, 3]); // torn trailing entry
        std::fs::write(&path, &bytes).unwrap();
        let (loaded, whole) = SparseIndex::load(&path, 1, 1_000).unwrap();
        assert!(!whole);
        assert_eq!(loaded.entries(), index.entries());
        // Entries past the segment's end are dropped.
        let (short, whole) = SparseIndex::load(&path, 1, 25).unwrap();
        assert!(!whole);
        assert_eq!(short.entries().len(), 3);
    }
}
