//! Silences: "don't tell anyone about alerts matching these labels between
//! these times" — for a planned maintenance, or while someone already
//! works on it.
//!
//! A silence is a list of label matchers (`=`, `!=`, `=~`, `!~`), a time
//! range, who made it and why. It is *pending* before it starts, *active*
//! while it runs and *expired* after; expiring one early sets its end to
//! now. Routing asks [`Silences::silenced_by`] at every group flush: a
//! silenced alert stays in its group (it still fires, the API shows it)
//! but is left out of notifications. Whether a *resolved* alert that was
//! paged before the silence still sends its resolution is a per-route
//! choice (`send_resolved_when_silenced`, default false as in
//! Alertmanager, whose users have asked for the other choice since its
//! issue #226: a PagerDuty incident opened before a silence otherwise
//! stays open forever).
//!
//! Silences are kept in one JSON file beside the alert state, rewritten
//! atomically on every change (`store.rs`'s `write_atomically`): they are
//! few and change by hand. A change that cannot be saved is undone and
//! reported, so the API never says "created" for a silence a restart
//! would forget. A file that does not parse refuses the start, as the
//! alert state does: starting without its silences would page everyone
//! the silences were protecting. Expired silences are kept
//! [`DEFAULT_RETENTION`] for the record, then dropped. Docs chapter 5,
//! "Silences".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use common::Labels;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file::write_atomically;
use crate::fingerprint::key_fingerprint;
use crate::matcher::Matcher;

/// How long an expired silence is kept: Alertmanager's 5 days.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(5 * 24 * 3600);

/// The silences file format version.
pub const SILENCES_VERSION: u32 = 1;

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (16 hex digits).
    pub id: String,
    /// Every matcher must match for an alert to be silenced.
    pub matchers: Vec<Matcher>,
    /// When it starts (ms since the epoch).
    pub starts_at_ms: i64,
    /// When it ends.
    pub ends_at_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made or last changed.
    pub updated_at_ms: i64,
}

/// Where a silence is in its life, at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// Silencing.
    Active,
    /// Over.
    Expired,
}

impl SilenceState {
    /// `pending`, `active` or `expired`, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// Its state at `now_ms`: active on `[starts_at, ends_at)`.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms < self.ends_at_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// True when it is active at `now_ms` and every matcher matches.
    pub fn silences(&self, labels: &Labels, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active
            && crate::matcher::matches_all(&self.matchers, labels)
    }
}

/// What a new silence says.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSpec {
    /// At least one, and not all of them matching an empty label.
    pub matchers: Vec<Matcher>,
    /// Default (or anything earlier): now.
    pub starts_at_ms: Option<i64>,
    /// Must be after the start and after now.
    pub ends_at_ms: i64,
    /// Required.
    pub created_by: String,
    /// Required.
    pub comment: String,
}

/// Why a silence operation failed.
#[derive(Debug, Error)]
pub enum SilenceError {
    /// The spec is not a valid silence (a 400).
    #[error("invalid silence: {0}")]
    Invalid(String),
    /// No silence has this id (a 404).
    #[error("no silence with id {0:?}")]
    NotFound(String),
    /// Already over (a 400... or nothing to do).
    #[error("silence {0:?} has already expired")]
    AlreadyExpired(String),
    /// The silences file could not be written; the change was undone.
    #[error("silences file {path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The step.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The silences file exists but cannot be read.
    #[error(
        "silences file {path} is unreadable ({message}); refusing to start, since starting \
         without it would notify everything the silences hold back. Move the file aside to \
         start with no silences"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct SilencesFile {
    version: u32,
    silences: Vec<Silence>,
}

/// Every silence, optionally persisted.
#[derive(Debug)]
pub struct Silences {
    path: Option<PathBuf>,
    silences: Mutex<Vec<Silence>>,
    retention_ms: i64,
    created: AtomicU64,
}

impl Silences {
    /// Silences kept in memory only.
    pub fn in_memory() -> Self {
        Silences {
            path: None,
            silences: Mutex::new(Vec::new()),
            retention_ms: retention_ms(DEFAULT_RETENTION),
            created: AtomicU64::new(0),
        }
    }

    /// Silences persisted in `path` (read now if it exists).
    ///
    /// # Errors
    /// [`SilenceError::Io`] when the file cannot be read,
    /// [`SilenceError::Corrupt`] when it does not parse.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, SilenceError> {
        let path = path.into();
        let silences = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: SilencesFile =
                    serde_json::from_str(&text).map_err(|e| SilenceError::Corrupt {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                if file.version != SILENCES_VERSION {
                    return Err(SilenceError::Corrupt {
                        path: path.display().to_string(),
                        message: format!(
                            "version {} (this build reads version {SILENCES_VERSION})",
                            file.version
                        ),
                    });
                }
                file.silences
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(SilenceError::Io {
                    path: path.display().to_string(),
                    action: "read",
                    source,
                });
            }
        };
        Ok(Silences {
            path: Some(path),
            silences: Mutex::new(silences),
            retention_ms: retention_ms(DEFAULT_RETENTION),
            created: AtomicU64::new(0),
        })
    }

    /// The file, when persisted.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Creates a silence; returns its id.
    ///
    /// # Errors
    /// [`SilenceError::Invalid`] for a spec that is not a silence;
    /// [`SilenceError::Io`] when it cannot be saved (nothing changed).
    pub fn create(&self, spec: SilenceSpec, now_ms: i64) -> Result<String, SilenceError> {
        if spec.matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "at least one matcher is needed".into(),
            ));
        }
        if spec.matchers.iter().all(Matcher::matches_empty) {
            return Err(SilenceError::Invalid(
                "every matcher also matches alerts without the label, so this would silence \
                 everything; add a matcher that needs a value (e.g. `alertname=\"X\"`)"
                    .into(),
            ));
        }
        if spec.created_by.trim().is_empty() {
            return Err(SilenceError::Invalid("createdBy is required".into()));
        }
        if spec.comment.trim().is_empty() {
            return Err(SilenceError::Invalid("comment is required".into()));
        }
        let starts_at_ms = spec.starts_at_ms.unwrap_or(now_ms).max(now_ms);
        if spec.ends_at_ms <= starts_at_ms {
            return Err(SilenceError::Invalid(
                "endsAt must be after startsAt and after now".into(),
            ));
        }
        let mut silences = self.silences.lock();
        let sequence = self.created.fetch_add(1, Ordering::Relaxed);
        let matcher_text: Vec<String> = spec.matchers.iter().map(ToString::to_string).collect();
        let mut id = key_fingerprint(&[
            &now_ms.to_string(),
            &sequence.to_string(),
            &matcher_text.join(","),
            &spec.created_by,
        ]);
        while silences.iter().any(|s| s.id == id) {
            id = key_fingerprint(&[&id]);
        }
        silences.push(Silence {
            id: id.clone(),
            matchers: spec.matchers,
            starts_at_ms,
            ends_at_ms: spec.ends_at_ms,
            created_by: spec.created_by,
            comment: spec.comment,
            updated_at_ms: now_ms,
        });
        if let Err(e) = self.save(&silences) {
            silences.pop();
            return Err(e);
        }
        Ok(id)
    }

    /// Ends silence `id` now (a pending one never starts).
    ///
    /// # Errors
    /// [`SilenceError::NotFound`], [`SilenceError::AlreadyExpired`], or
    /// [`SilenceError::Io`] (nothing changed).
    pub fn expire(&self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let mut silences = self.silences.lock();
        let Some(index) = silences.iter().position(|s| s.id == id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        let before = silences[index].clone();
        match before.state(now_ms) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Pending => {
                silences[index].starts_at_ms = now_ms;
                silences[index].ends_at_ms = now_ms;
            }
            SilenceState::Active => silences[index].ends_at_ms = now_ms,
        }
        silences[index].updated_at_ms = now_ms;
        if let Err(e) = self.save(&silences) {
            silences[index] = before;
            return Err(e);
        }
        Ok(())
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.silences.lock().iter().find(|s| s.id == id).cloned()
    }

    /// Every silence with its state at `now_ms`, newest first.
    pub fn list(&self, now_ms: i64) -> Vec<(Silence, SilenceState)> {
        let mut list: Vec<_> = self
            .silences
            .lock()
            .iter()
            .map(|s| (s.clone(), s.state(now_ms)))
            .collect();
        list.sort_by(|a, b| {
            b.0.updated_at_ms
                .cmp(&a.0.updated_at_ms)
                .then(a.0.id.cmp(&b.0.id))
        });
        list
    }

    /// The ids of the active silences that silence `labels` at `now_ms`.
    pub fn silenced_by(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        self.silences
            .lock()
            .iter()
            .filter(|s| s.silences(labels, now_ms))
            .map(|s| s.id.clone())
            .collect()
    }

    /// True when an active silence matches `labels`.
    pub fn is_silenced(&self, labels: &Labels, now_ms: i64) -> bool {
        self.silences
            .lock()
            .iter()
            .any(|s| s.silences(labels, now_ms))
    }

    /// Drops silences expired longer than the retention ago.
    ///
    /// # Errors
    /// [`SilenceError::Io`] when the smaller set cannot be saved (kept).
    pub fn collect_garbage(&self, now_ms: i64) -> Result<usize, SilenceError> {
        let mut silences = self.silences.lock();
        let before = silences.clone();
        silences.retain(|s| now_ms.saturating_sub(s.ends_at_ms) < self.retention_ms);
        let dropped = before.len() - silences.len();
        if dropped > 0
            && let Err(e) = self.save(&silences)
        {
            *silences = before;
            return Err(e);
        }
        Ok(dropped)
    }

    fn save(&self, silences: &[Silence]) -> Result<(), SilenceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = SilencesFile {
            version: SILENCES_VERSION,
            silences: silences.to_vec(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| SilenceError::Io {
            path: path.display().to_string(),
            action: "serialize",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        bytes.push(b'\n');
        write_atomically(path, &bytes).map_err(|(action, source)| SilenceError::Io {
            path: path.display().to_string(),
            action,
            source,
        })
    }
}

fn retention_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn spec(matchers: &[&str], ends_in: i64) -> SilenceSpec {
        SilenceSpec {
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at_ms: None,
            ends_at_ms: NOW + ends_in,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(host: &str) -> Labels {
        Labels::from_pairs([("alertname", "HighCpu"), ("host", host)])
    }

    #[test]
    fn a_silence_matches_while_active_and_only_its_labels() {
        let silences = Silences::in_memory();
        let id = silences
            .create(
                spec(&["alertname=\"HighCpu\"", "host=~\"web-.*\""], 60_000),
                NOW,
            )
            .unwrap();
        assert_eq!(
            silences.silenced_by(&labels("web-1"), NOW),
            vec![id.clone()]
        );
        assert!(!silences.is_silenced(&labels("db-1"), NOW));
        assert!(silences.is_silenced(&labels("web-1"), NOW + 59_999));
        assert!(
            !silences.is_silenced(&labels("web-1"), NOW + 60_000),
            "end is exclusive"
        );
        assert_eq!(silences.list(NOW + 60_000)[0].1, SilenceState::Expired);
    }

    #[test]
    fn a_pending_silence_starts_later_and_expiring_it_cancels_it() {
        let silences = Silences::in_memory();
        let mut later = spec(&["host=\"a\""], 120_000);
        later.starts_at_ms = Some(NOW + 60_000);
        let id = silences.create(later, NOW).unwrap();
        let a = Labels::from_pairs([("host", "a")]);
        assert!(!silences.is_silenced(&a, NOW));
        assert_eq!(silences.list(NOW)[0].1, SilenceState::Pending);
        assert!(silences.is_silenced(&a, NOW + 60_000));
        silences.expire(&id, NOW + 1_000).unwrap();
        assert!(!silences.is_silenced(&a, NOW + 60_000), "never starts");
        assert!(matches!(
            silences.expire(&id, NOW + 2_000),
            Err(SilenceError::AlreadyExpired(_))
        ));
        assert!(matches!(
            silences.expire("nope", NOW),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn expiring_an_active_silence_ends_it_now() {
        let silences = Silences::in_memory();
        let id = silences
            .create(spec(&["host=\"a\""], 3_600_000), NOW)
            .unwrap();
        let a = Labels::from_pairs([("host", "a")]);
        silences.expire(&id, NOW + 10_000).unwrap();
        assert!(!silences.is_silenced(&a, NOW + 10_000));
        assert_eq!(silences.get(&id).unwrap().ends_at_ms, NOW + 10_000);
    }

    #[test]
    fn invalid_silences_are_refused_with_the_reason() {
        let silences = Silences::in_memory();
        for (spec, needle) in [
            (spec(&[], 1_000), "at least one matcher"),
            (spec(&["host=~\".*\""], 1_000), "silence everything"),
            (spec(&["host=\"a\""], 0), "endsAt must be after"),
            (
                SilenceSpec {
                    created_by: " ".into(),
                    ..spec(&["host=\"a\""], 1_000)
                },
                "createdBy",
            ),
            (
                SilenceSpec {
                    comment: String::new(),
                    ..spec(&["host=\"a\""], 1_000)
                },
                "comment",
            ),
        ] {
            let error = silences.create(spec, NOW).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
        assert!(silences.list(NOW).is_empty());
    }

    #[test]
    fn silences_survive_a_reopen_and_old_expired_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let silences = Silences::open(&path).unwrap();
        let id = silences.create(spec(&["host=\"a\""], 60_000), NOW).unwrap();
        drop(silences);
        let silences = Silences::open(&path).unwrap();
        assert_eq!(silences.get(&id).unwrap().created_by, "ops");
        let five_days = retention_ms(DEFAULT_RETENTION);
        assert_eq!(
            silences
                .collect_garbage(NOW + 60_000 + five_days - 1)
                .unwrap(),
            0
        );
        assert_eq!(
            silences.collect_garbage(NOW + 60_000 + five_days).unwrap(),
            1
        );
        assert!(Silences::open(&path).unwrap().list(NOW).is_empty());
    }

    #[test]
    fn a_corrupt_file_refuses_and_an_unwritable_one_undoes_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        std::fs::write(&path, "{\"version\":1,\"silences\":[").unwrap();
        let error = Silences::open(&path).unwrap_err().to_string();
        assert!(
            error.contains("refusing to start") && error.contains("silences.json"),
            "{error}"
        );

        let silences = Silences::open(dir.path().join("missing/silences.json")).unwrap();
        let error = silences
            .create(spec(&["host=\"a\""], 60_000), NOW)
            .unwrap_err();
        assert!(matches!(error, SilenceError::Io { .. }), "{error}");
        assert!(silences.list(NOW).is_empty(), "the change was undone");
    }
}
