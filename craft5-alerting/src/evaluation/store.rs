//! `StateStore`: the alert states on disk, so a restart neither pages a
//! firing alert again nor forgets when a pending one became active.
//!
//! Alertmanager's users have asked for this for years (its issues #2370,
//! #1860): restart Prometheus and every firing alert pages anew, every
//! `for` timer starts over. Here the engine writes the state of every alert
//! that is not inactive to one JSON file after each batch of transitions,
//! and reads it back at start.
//!
//! The write is atomic — a crash leaves the old file or the new one, never
//! half of either: write `state.json.tmp`, fsync it, rename it over
//! `state.json`, fsync the directory (so the rename itself survives a power
//! cut). The whole file is rewritten each time: alerts that are not
//! inactive are few (tens to thousands), so this is simple and cheap
//! enough; a log of changes would be the next step if it were not.
//!
//! A missing file is a first start: no alerts. A file that does not parse
//! is *refused*, with an error naming it: starting empty instead would
//! page every firing alert again and silently restart every `for` timer,
//! the very thing this file exists to prevent. The operator moves the file
//! aside (the message says so) and restarts. Docs chapter 5, "Surviving a
//! restart".

use std::fs;
use std::path::{Path, PathBuf};

use common::Labels;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file::write_atomically;
use crate::evaluation::state::AlertStatus;

/// The format version this code writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Why the state file could not be read or written.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading, writing, syncing or renaming failed.
    #[error("alert state file {path}: cannot {action}: {source}")]
    Io {
        /// The file (or directory) involved.
        path: String,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The file exists but is not alert state this version can read.
    #[error(
        "alert state file {path} is unreadable ({message}); refusing to start, \
         since starting empty would page every firing alert again. \
         Move the file aside to start with no alert state"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// One alert's persisted state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedAlert {
    /// The rule's key, `group/alert`.
    pub rule: String,
    /// The series the alert is about (empty for a rule over all series).
    pub series: Labels,
    /// Its state machine.
    #[serde(flatten)]
    pub status: AlertStatus,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    saved_at_ms: i64,
    alerts: Vec<PersistedAlert>,
}

/// The state file of one engine.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// A store at `path` (created on the first save; its directory must
    /// exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateStore { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the alerts saved last; none when the file does not exist.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be read,
    /// [`StoreError::Corrupt`] when it is not valid state.
    pub fn load(&self) -> Result<Vec<PersistedAlert>, StoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io("read", source)),
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        if file.version != STATE_VERSION {
            return Err(StoreError::Corrupt {
                path: self.path.display().to_string(),
                message: format!(
                    "version {} (this build reads version {STATE_VERSION})",
                    file.version
                ),
            });
        }
        Ok(file.alerts)
    }

    /// Replaces the saved state with `alerts`, atomically.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the step that failed; the previous file
    /// is then still intact.
    pub fn save(&self, alerts: &[PersistedAlert], now_ms: i64) -> Result<(), StoreError> {
        let file = StateFile {
            version: STATE_VERSION,
            saved_at_ms: now_ms,
            alerts: alerts.to_vec(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
            self.io(
                "serialize",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        bytes.push(b'\n');
        write_atomically(&self.path, &bytes).map_err(|(action, e)| self.io(action, e))
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            action,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::state::{AlertState, Observation, Timing};

    fn firing() -> PersistedAlert {
        let mut status = AlertStatus::inactive();
        status.step(
            1_000,
            Observation::Holds {
                value: 92.5,
                samples: 4,
            },
            Timing::default(),
        );
        PersistedAlert {
            rule: "node/HighCpu".into(),
            series: Labels::from_pairs([("host", "a")]),
            status,
        }
    }

    #[test]
    fn missing_file_is_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        assert!(store.load().unwrap().is_empty());
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        let alerts = vec![firing()];
        store.save(&alerts, 2_000).unwrap();
        assert_eq!(store.load().unwrap(), alerts);
        assert_eq!(alerts[0].status.state, AlertState::Firing);
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"state\": \"firing\""), "{text}");
        assert!(text.contains("\"version\": 1"), "{text}");
        // Overwrite with nothing.
        store.save(&[], 3_000).unwrap();
        assert!(store.load().unwrap().is_empty());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn corrupt_or_foreign_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = StateStore::new(&path);
        for (content, expected) in [
            ("{\"version\":1,\"alerts\":[", "EOF"),
            ("garbage", "expected value"),
            (
                "{\"version\":2,\"saved_at_ms\":0,\"alerts\":[]}",
                "version 2",
            ),
        ] {
            fs::write(&path, content).unwrap();
            let err = store.load().unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("refusing to start"), "{message}");
        }
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("no/such/dir/state.json"));
        let err = store.save(&[firing()], 0).unwrap_err().to_string();
        assert!(err.contains("cannot create the temporary file"), "{err}");
    }
}
