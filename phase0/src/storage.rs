//! phase0's storage: one JSON line per metric appended to
//! `phase0_metrics.jsonl`, the file opened and closed for every metric.
//!
//! Bottlenecks, on purpose: an `open`/`write`/`close` per sample (three
//! syscalls and a path lookup, measured in `benches/storage.rs` against a
//! buffered writer); 60–110 bytes of text per sample; no index, so every
//! read parses the whole file. Nothing is fsynced until shutdown: a crash
//! may lose what the OS had not yet written. Craft 3 replaces all of it.
//! Story: docs chapter 0, "The storage consumer".

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use common::{
    LabelMatcher, Labels, Metric, MetricStore, Sample, Series, StorageError, TimeRange, matches_all,
};

/// The seed's file name.
pub const FILE_NAME: &str = "phase0_metrics.jsonl";

/// Appends JSON lines; answers questions by scanning the whole file.
pub struct JsonlFileStore {
    path: PathBuf,
    /// Serialises appends so lines from concurrent callers never interleave;
    /// holds the file's length after the last complete line, so a short
    /// write can be cut back to it.
    write_lock: parking_lot::Mutex<u64>,
}

impl JsonlFileStore {
    /// The store at `dir/phase0_metrics.jsonl`. Creates `dir` if missing and
    /// ends a line torn by a crash, so the next append starts a fresh line.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory or file cannot be prepared.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let path = dir.join(FILE_NAME);
        let mut length = 0;
        match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(mut file) => {
                length = file.metadata().map_err(|e| io_error(&path, e))?.len();
                if length > 0 {
                    let mut last = [0u8; 1];
                    file.seek(SeekFrom::End(-1))
                        .map_err(|e| io_error(&path, e))?;
                    file.read_exact(&mut last).map_err(|e| io_error(&path, e))?;
                    if last[0] != b'\n' {
                        file.write_all(b"\n").map_err(|e| io_error(&path, e))?;
                        length += 1;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A directory in the way, no permission: say so at startup rather
            // than accept metrics that can never be written.
            Err(e) => return Err(io_error(&path, e)),
        }
        Ok(JsonlFileStore {
            path,
            write_lock: parking_lot::Mutex::new(length),
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every parseable line, in file order. Lines that do not parse (a line
    /// torn by a crash) are skipped: they were never fully written.
    fn scan(&self, mut visit: impl FnMut(Metric)) -> Result<(), StorageError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&self.path, e)),
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| io_error(&self.path, e))?;
            if n == 0 {
                return Ok(());
            }
            if let Ok(metric) = serde_json::from_slice::<Metric>(&line) {
                visit(metric);
            }
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl MetricStore for JsonlFileStore {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        let mut length = self.write_lock.lock();
        for metric in metrics {
            let mut line = serde_json::to_vec(metric).map_err(|e| StorageError::Corrupt {
                path: self.path.display().to_string(),
                message: format!("cannot encode metric: {e}"),
            })?;
            line.push(b'\n');
            // The seed's cost: open, append one line, close — per metric.
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| io_error(&self.path, e))?;
            if let Err(e) = file.write_all(&line) {
                // A short write (disk full) leaves half a line; the retry
                // would be glued onto it and both lost. Cut it off first.
                let _ = file.set_len(*length);
                return Err(io_error(&self.path, e));
            }
            *length += line.len() as u64;
        }
        Ok(())
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError> {
        // (name, labels) → timestamp → value; later lines overwrite earlier
        // ones, which is "last write wins" for duplicates.
        let mut series: BTreeMap<(String, Labels), BTreeMap<i64, f64>> = BTreeMap::new();
        self.scan(|m| {
            if range.contains(m.timestamp_ms) && matches_all(matchers, &m.name, &m.labels) {
                series
                    .entry((m.name, m.labels))
                    .or_default()
                    .insert(m.timestamp_ms, m.value);
            }
        })?;
        Ok(series
            .into_iter()
            .map(|((name, labels), samples)| Series {
                name,
                labels,
                samples: samples
                    .into_iter()
                    .map(|(timestamp_ms, value)| Sample {
                        timestamp_ms,
                        value,
                    })
                    .collect(),
            })
            .collect())
    }

    fn label_names(&self) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        self.scan(|m| {
            names.insert(LabelMatcher::METRIC_NAME.to_string());
            for (name, _) in m.labels.iter() {
                if !names.contains(name) {
                    names.insert(name.to_string());
                }
            }
        })?;
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        self.scan(|m| {
            let value = if name == LabelMatcher::METRIC_NAME {
                Some(m.name.as_str())
            } else {
                m.labels.get(name)
            };
            if let Some(value) = value
                && !values.contains(value)
            {
                values.insert(value.to_string());
            }
        })?;
        Ok(values.into_iter().collect())
    }

    fn flush(&self) -> Result<(), StorageError> {
        let _guard = self.write_lock.lock();
        match File::open(&self.path) {
            Ok(file) => file.sync_all().map_err(|e| io_error(&self.path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&self.path, e)),
        }
    }

    fn name(&self) -> &'static str {
        "phase0"
    }

    fn describe(&self) -> String {
        format!(
            "appending one JSON line per metric to {} (file reopened for every write)",
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn conformance() {
        common::testkit::storage::run_all(&|dir| {
            Arc::new(JsonlFileStore::open(dir).expect("open store"))
        });
    }

    #[test]
    fn lines_are_the_seed_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonlFileStore::open(dir.path()).unwrap();
        store
            .append(&[Metric::new("cpu_usage", 85.0, 1_700_000_000_000)])
            .unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert_eq!(
            text,
            "{\"name\":\"cpu_usage\",\"value\":85.0,\"timestamp\":1700000000000}\n"
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(
            &path,
            "{\"name\":\"a\",\"value\":1.0,\"timestamp\":1}\n{\"name\":\"a\",\"val",
        )
        .unwrap();
        let store = JsonlFileStore::open(dir.path()).unwrap();
        store.append(&[Metric::new("a", 2.0, 2)]).unwrap();
        let series = store
            .select(&[LabelMatcher::metric_name("a")], TimeRange::ALL)
            .unwrap();
        let values: Vec<f64> = series[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(
            values,
            vec![1.0, 2.0],
            "torn line skipped, the next append intact"
        );
    }
}
