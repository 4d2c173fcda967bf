//! Acknowledgements: "I have seen this alert and I am on it", recorded per
//! alert *episode*, persisted.
//!
//! Without it, the only ways to quiet a page someone is already handling
//! are a silence (which also hides the resolution, and any new alert that
//! matches it) or waiting: meanwhile `repeat_interval` keeps reminding and
//! escalation (`escalation.rs`) wakes the next level, who is not needed.
//! An acknowledgement is narrower: it names one alert instance (rule and
//! series: [`alert_id`]) in one episode (the time it started firing), and
//!
//! - stops that episode's escalation and its `repeat_interval` reminders;
//! - shows in `/api/v1/alerts` as `acknowledged: {by, at, comment}`;
//! - ends with the episode: once the alert resolves it is no longer
//!   listed, and a later re-fire is a new episode — a new, unacknowledged
//!   incident — because the record names the old start time;
//! - survives a restart: `acknowledgements.json` beside the alert state,
//!   written atomically like the other small state files.
//!
//! Whether the resolution of an acknowledged alert is still sent is a
//! per-route choice (`send_resolved_when_acknowledged`, default true).
//! Records of episodes the engine no longer knows are dropped at the next
//! acknowledgement ([`Acknowledgements::acknowledge`] is given the live
//! episodes), so the file stays as small as the set of alerts. Docs
//! chapter 5, "Escalation".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Labels;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file::write_atomically;
use crate::fingerprint::key_fingerprint;

/// The format version this code writes and reads.
pub const ACK_FILE_VERSION: u32 = 1;

/// The API's identifier of an alert instance: a fingerprint of its rule
/// and series (not of its labels, which templating may change while the
/// alert fires).
pub fn alert_id(rule: &str, series: &Labels) -> String {
    let series = if series.is_empty() {
        "{}".to_string()
    } else {
        series.to_string()
    };
    key_fingerprint(&["alert", rule, &series])
}

/// One acknowledgement of one episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The alert ([`alert_id`]).
    pub alert_id: String,
    /// The episode: when it started firing (`startsAt`).
    pub starts_at_ms: i64,
    /// Who acknowledged.
    pub by: String,
    /// Why, or what they are doing.
    pub comment: String,
    /// When.
    pub at_ms: i64,
}

/// Why an acknowledgement could not be made or the file read.
#[derive(Debug, Error)]
pub enum AckError {
    /// No alert has this id.
    #[error("no alert with id {0:?}")]
    NotFound(String),
    /// The alert exists but does not fire.
    #[error("alert {id:?} is {state}, not firing: only a firing alert can be acknowledged")]
    NotFiring {
        /// The alert.
        id: String,
        /// Its state (`pending`, `resolved`).
        state: &'static str,
    },
    /// The file could not be read or written.
    #[error("acknowledgements file {path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The step.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not acknowledgements this version reads.
    #[error(
        "acknowledgements file {path} is unreadable ({message}); refusing to start, \
         since starting empty would escalate acknowledged alerts again. \
         Move the file aside to start with none"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct AckFile {
    version: u32,
    acknowledgements: Vec<Acknowledgement>,
}

/// Every acknowledgement, by alert id; see the module notes.
#[derive(Debug)]
pub struct Acknowledgements {
    path: Option<PathBuf>,
    by_alert: Mutex<BTreeMap<String, Acknowledgement>>,
}

impl Acknowledgements {
    /// Kept in memory only.
    pub fn in_memory() -> Self {
        Acknowledgements {
            path: None,
            by_alert: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads `path` (none yet: no acknowledgements).
    ///
    /// # Errors
    /// [`AckError::Io`] or [`AckError::Corrupt`], naming the file.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AckError> {
        let path = path.into();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(AckError::Io {
                    path: path.display().to_string(),
                    action: "read",
                    source,
                });
            }
        };
        let mut by_alert = BTreeMap::new();
        if let Some(text) = text {
            let corrupt = |message: String| AckError::Corrupt {
                path: path.display().to_string(),
                message,
            };
            let file: AckFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            if file.version != ACK_FILE_VERSION {
                return Err(corrupt(format!(
                    "version {} (this build reads version {ACK_FILE_VERSION})",
                    file.version
                )));
            }
            for ack in file.acknowledgements {
                by_alert.insert(ack.alert_id.clone(), ack);
            }
        }
        Ok(Acknowledgements {
            path: Some(path),
            by_alert: Mutex::new(by_alert),
        })
    }

    /// The file, when on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The acknowledgement of this episode of this alert, if any.
    pub fn get(&self, alert_id: &str, starts_at_ms: i64) -> Option<Acknowledgement> {
        self.by_alert
            .lock()
            .get(alert_id)
            .filter(|ack| ack.starts_at_ms == starts_at_ms)
            .cloned()
    }

    /// True when this episode of this alert is acknowledged.
    pub fn is_acknowledged(&self, alert_id: &str, starts_at_ms: i64) -> bool {
        self.get(alert_id, starts_at_ms).is_some()
    }

    /// Every record (live or not yet pruned), by alert id.
    pub fn all(&self) -> Vec<Acknowledgement> {
        self.by_alert.lock().values().cloned().collect()
    }

    /// Acknowledges an episode, persisting it before answering. A second
    /// acknowledgement of the same episode changes nothing and answers
    /// the first (who acknowledged first is the useful fact). Records for
    /// which `live(alert_id, starts_at_ms)` is false are dropped in the
    /// same write.
    ///
    /// # Errors
    /// [`AckError::Io`] when the file cannot be written; nothing changed.
    pub fn acknowledge(
        &self,
        ack: Acknowledgement,
        live: &dyn Fn(&str, i64) -> bool,
    ) -> Result<Acknowledgement, AckError> {
        let mut by_alert = self.by_alert.lock();
        if let Some(existing) = by_alert.get(&ack.alert_id)
            && existing.starts_at_ms == ack.starts_at_ms
        {
            return Ok(existing.clone());
        }
        let mut next = by_alert.clone();
        next.retain(|id, existing| live(id, existing.starts_at_ms));
        next.insert(ack.alert_id.clone(), ack.clone());
        self.save(&next)?;
        *by_alert = next;
        Ok(ack)
    }

    fn save(&self, by_alert: &BTreeMap<String, Acknowledgement>) -> Result<(), AckError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = AckFile {
            version: ACK_FILE_VERSION,
            acknowledgements: by_alert.values().cloned().collect(),
        };
        let io = |action: &'static str, source: std::io::Error| AckError::Io {
            path: path.display().to_string(),
            action,
            source,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
            io(
                "serialize",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        bytes.push(b'\n');
        write_atomically(path, &bytes).map_err(|(action, e)| io(action, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(id: &str, starts_at_ms: i64, by: &str) -> Acknowledgement {
        Acknowledgement {
            alert_id: id.into(),
            starts_at_ms,
            by: by.into(),
            comment: String::new(),
            at_ms: starts_at_ms + 5,
        }
    }

    #[test]
    fn an_acknowledgement_names_one_episode_and_the_first_one_stays() {
        let acks = Acknowledgements::in_memory();
        let first = acks
            .acknowledge(ack("a", 100, "ann"), &|_, _| true)
            .unwrap();
        assert_eq!(first.by, "ann");
        let again = acks.acknowledge(ack("a", 100, "bo"), &|_, _| true).unwrap();
        assert_eq!(again.by, "ann", "the first acknowledgement stays");
        assert!(acks.is_acknowledged("a", 100));
        assert!(
            !acks.is_acknowledged("a", 200),
            "a new episode is not acknowledged"
        );
        acks.acknowledge(ack("b", 1, "cy"), &|id, _| id != "a")
            .unwrap();
        assert_eq!(acks.all().len(), 1, "records of dead episodes are pruned");
    }

    #[test]
    fn the_file_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acknowledgements.json");
        let acks = Acknowledgements::open(&path).unwrap();
        acks.acknowledge(ack("a", 100, "ann"), &|_, _| true)
            .unwrap();
        let reopened = Acknowledgements::open(&path).unwrap();
        assert_eq!(reopened.get("a", 100).unwrap().by, "ann");
        std::fs::write(&path, "{\"version\":1,").unwrap();
        let error = Acknowledgements::open(&path).unwrap_err();
        assert!(matches!(error, AckError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("refusing to start"));
    }

    #[test]
    fn alert_ids_are_stable_and_tell_series_apart() {
        let a = Labels::from_pairs([("host", "a")]);
        let b = Labels::from_pairs([("host", "b")]);
        assert_eq!(alert_id("node/HighCpu", &a), alert_id("node/HighCpu", &a));
        assert_ne!(alert_id("node/HighCpu", &a), alert_id("node/HighCpu", &b));
        assert_eq!(alert_id("r", &Labels::empty()).len(), 16);
    }
}
