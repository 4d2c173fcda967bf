//! The outbox: every notification is written to disk *before* anyone tries
//! to send it, and stays there, pending, until it is delivered or given up.
//!
//! phase0 calls its notifier inline: a receiver that is down at that
//! moment loses the page, and a crash between "condition true" and
//! "printed" loses it too. Here a group flush appends its notifications to
//! an append-only log of JSON lines and fsyncs it (one write and one fsync
//! per flush, however many notifications), and only then does the delivery
//! worker (`delivery.rs`, its own thread) send them, appending each
//! attempt's outcome the same way. On restart the log is replayed: what
//! was pending is pending again and is sent — no notification accepted by
//! the outbox is lost. The price is "at least once": a crash after a send
//! and before its `delivered` record sends it again, with the same
//! idempotency key (webhooks' `Idempotency-Key`, PagerDuty's `dedup_key`,
//! email's `Message-ID`), so receivers that can de-duplicate do.
//!
//! The log also keeps, per alert group and integration, what was last told
//! ([`NotifyLog`], Alertmanager's "notification log"), written in the same
//! fsync as the notification it describes: after a restart the dispatcher
//! asks it, and an alert that was already paged is not paged again.
//!
//! Records, one JSON object per line: `enqueued` (a notification),
//! `attempt` (a failed send and when to retry), `delivered`,
//! `dead_letter`, `fallback` (copies went to the fallback receiver),
//! `state` (a group's notify log), `history` (a finished entry carried over
//! by compaction). A torn last line (a crash mid-write) is cut off; a
//! damaged line elsewhere is skipped and counted. When the log has grown
//! past [`OutboxOptions::compact_after_records`] it is rewritten
//! atomically with only what is still needed. Docs chapter 5, "Delivery".

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file::write_atomically;
use crate::delivery::history::{DeliveryOutcome, History, HistoryEntry, HistoryQuery};
use crate::delivery::notify_log::{NotifyKey, NotifyLog};
use crate::delivery::receivers::Notification;
use crate::signal::Signal;

/// Tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Rewrite the log once it holds this many records.
    pub compact_after_records: usize,
    /// Finished notifications kept in the history.
    pub history_limit: usize,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            compact_after_records: 10_000,
            history_limit: crate::delivery::history::DEFAULT_HISTORY_LIMIT,
        }
    }
}

/// Why the outbox could not read or write its log.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// A file operation failed.
    #[error("outbox {path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The step.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Records replayed.
    pub records: usize,
    /// Notifications pending (to be sent again).
    pub pending: usize,
    /// Damaged lines skipped.
    pub damaged_lines: usize,
    /// Bytes of a torn last line cut off.
    pub torn_bytes: u64,
}

/// One notification waiting for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingDelivery {
    /// The notification.
    pub notification: Notification,
    /// Sends tried so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_at_ms: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Copies already went to the fallback receiver.
    pub fallback_sent: bool,
}

/// What happened to one send, for [`Outbox::record`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// Delivered on attempt `attempt`.
    Delivered {
        /// The notification.
        id: String,
        /// Which attempt (1-based).
        attempt: u32,
    },
    /// Failed; retried at `next_attempt_at_ms`.
    Failed {
        /// The notification.
        id: String,
        /// Which attempt.
        attempt: u32,
        /// Why.
        error: String,
        /// When to try again.
        next_attempt_at_ms: i64,
    },
    /// Failed for good.
    DeadLetter {
        /// The notification.
        id: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Enqueued {
        at_ms: i64,
        notification: Notification,
    },
    Attempt {
        id: String,
        attempt: u32,
        at_ms: i64,
        error: String,
        next_attempt_at_ms: i64,
    },
    Delivered {
        id: String,
        attempt: u32,
        at_ms: i64,
    },
    DeadLetter {
        id: String,
        attempts: u32,
        at_ms: i64,
        error: String,
    },
    Fallback {
        id: String,
        at_ms: i64,
        copies: Vec<String>,
    },
    State {
        key: NotifyKey,
        log: NotifyLog,
    },
    History {
        entry: HistoryEntry,
    },
}

struct Inner {
    file: Option<File>,
    /// Pending notifications in the order they were taken.
    pending: BTreeMap<u64, PendingDelivery>,
    pending_ids: HashMap<String, u64>,
    next_seq: u64,
    logs: HashMap<NotifyKey, NotifyLog>,
    history: History,
    records: usize,
}

/// The durable outbox; see the module notes.
pub struct Outbox {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
    options: OutboxOptions,
    signal: Arc<Signal>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.path)
            .field("pending", &self.pending_count())
            .finish()
    }
}

impl Outbox {
    /// An outbox in memory only (tests, or no state directory): nothing
    /// survives a restart.
    pub fn in_memory(options: OutboxOptions) -> Self {
        Outbox {
            path: None,
            inner: Mutex::new(Inner::new(None, options)),
            options,
            signal: Arc::new(Signal::new()),
        }
    }

    /// Opens (or creates) the log at `path` and replays it.
    ///
    /// # Errors
    /// [`OutboxError::Io`] when it cannot be read, repaired or opened for
    /// appending.
    pub fn open(
        path: impl Into<PathBuf>,
        options: OutboxOptions,
    ) -> Result<(Self, OpenReport), OutboxError> {
        let path = path.into();
        let io = |action: &'static str| {
            let path = path.display().to_string();
            move |source| OutboxError::Io {
                path,
                action,
                source,
            }
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read")(e)),
        };
        let mut report = OpenReport::default();
        let whole = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |last| last + 1);
        report.torn_bytes = (bytes.len() - whole) as u64;
        let mut inner = Inner::new(None, options);
        for line in bytes[..whole].split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record>(line) {
                Ok(record) => {
                    inner.apply(record);
                    report.records += 1;
                }
                Err(_) => report.damaged_lines += 1,
            }
        }
        report.pending = inner.pending.len();
        let outbox = Outbox {
            path: Some(path.clone()),
            inner: Mutex::new(inner),
            options,
            signal: Arc::new(Signal::new()),
        };
        {
            let mut inner = outbox.inner.lock();
            if report.torn_bytes > 0
                || report.damaged_lines > 0
                || inner.records >= options.compact_after_records
            {
                // Rewriting keeps only whole, parsed records: the repair.
                outbox.compact(&mut inner)?;
            }
            if inner.file.is_none() {
                inner.file = Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(io("open for appending"))?,
                );
            }
        }
        Ok((outbox, report))
    }

    /// The log's path, when on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Raised whenever there is new work for the delivery worker.
    pub fn signal(&self) -> &Arc<Signal> {
        &self.signal
    }

    /// What `key` was last told (empty when never).
    pub fn notify_log(&self, key: &NotifyKey) -> NotifyLog {
        self.inner.lock().logs.get(key).cloned().unwrap_or_default()
    }

    /// Takes notifications and notify-log updates in one durable write:
    /// after `Ok`, they survive a crash; after `Err`, none of them was
    /// taken (the caller keeps its state and tries again).
    ///
    /// # Errors
    /// [`OutboxError::Io`] when the write or the fsync fails.
    pub fn commit(
        &self,
        notifications: Vec<Notification>,
        states: Vec<(NotifyKey, NotifyLog)>,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if notifications.is_empty() && states.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let records: Vec<Record> = notifications
            .into_iter()
            .filter(|n| {
                !inner.pending_ids.contains_key(&n.id) && inner.history.get(&n.id).is_none()
            })
            .map(|notification| Record::Enqueued {
                at_ms: now_ms,
                notification,
            })
            .chain(
                states
                    .into_iter()
                    .map(|(key, log)| Record::State { key, log }),
            )
            .collect();
        let has_work = records.iter().any(|r| matches!(r, Record::Enqueued { .. }));
        self.append(&mut inner, records, true)?;
        drop(inner);
        if has_work {
            self.signal.notify();
        }
        Ok(())
    }

    /// Notifications due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64) -> Vec<PendingDelivery> {
        self.inner
            .lock()
            .pending
            .values()
            .filter(|p| p.next_attempt_at_ms <= now_ms)
            .cloned()
            .collect()
    }

    /// When the next pending notification is due.
    pub fn next_due_at(&self) -> Option<i64> {
        self.inner
            .lock()
            .pending
            .values()
            .map(|p| p.next_attempt_at_ms)
            .min()
    }

    /// How many notifications are pending.
    pub fn pending_count(&self) -> usize {
        self.inner.lock().pending.len()
    }

    /// One pending notification.
    pub fn pending(&self, id: &str) -> Option<PendingDelivery> {
        let inner = self.inner.lock();
        inner
            .pending_ids
            .get(id)
            .and_then(|seq| inner.pending.get(seq))
            .cloned()
    }

    /// Records an attempt's outcome, and copies for the fallback receiver
    /// when `fallback` has any, in one durable write. Memory follows the
    /// outcome even when the write fails (a delivered notification is
    /// delivered; the error is returned for the log, and a restart may
    /// send it once more).
    ///
    /// # Errors
    /// [`OutboxError::Io`] when the write or the fsync fails.
    pub fn record(
        &self,
        outcome: AttemptOutcome,
        fallback: Vec<Notification>,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let mut records = Vec::new();
        let original = match &outcome {
            AttemptOutcome::Delivered { id, .. }
            | AttemptOutcome::Failed { id, .. }
            | AttemptOutcome::DeadLetter { id, .. } => id.clone(),
        };
        if !fallback.is_empty() {
            records.push(Record::Fallback {
                id: original,
                at_ms: now_ms,
                copies: fallback.iter().map(|n| n.id.clone()).collect(),
            });
            records.extend(fallback.into_iter().map(|notification| Record::Enqueued {
                at_ms: now_ms,
                notification,
            }));
        }
        records.push(match outcome {
            AttemptOutcome::Delivered { id, attempt } => Record::Delivered {
                id,
                attempt,
                at_ms: now_ms,
            },
            AttemptOutcome::Failed {
                id,
                attempt,
                error,
                next_attempt_at_ms,
            } => Record::Attempt {
                id,
                attempt,
                at_ms: now_ms,
                error,
                next_attempt_at_ms,
            },
            AttemptOutcome::DeadLetter {
                id,
                attempts,
                error,
            } => Record::DeadLetter {
                id,
                attempts,
                at_ms: now_ms,
                error,
            },
        });
        let has_work = records.iter().any(|r| matches!(r, Record::Enqueued { .. }));
        let mut inner = self.inner.lock();
        let result = self.append(&mut inner, records, false);
        drop(inner);
        if has_work {
            self.signal.notify();
        }
        result
    }

    /// The history entries answering `query`, newest first.
    pub fn history(&self, query: &HistoryQuery) -> Vec<HistoryEntry> {
        self.inner.lock().history.query(query)
    }

    /// One history entry.
    pub fn history_entry(&self, id: &str) -> Option<HistoryEntry> {
        self.inner.lock().history.get(id).cloned()
    }

    /// Writes `records` (one write, one fsync) and applies them. With
    /// `all_or_nothing`, a failed write applies nothing.
    fn append(
        &self,
        inner: &mut Inner,
        records: Vec<Record>,
        all_or_nothing: bool,
    ) -> Result<(), OutboxError> {
        let mut bytes = Vec::new();
        for record in &records {
            // Serializing our own types cannot fail; a record that somehow
            // did would be skipped rather than tear the line.
            if let Ok(line) = serde_json::to_vec(record) {
                bytes.extend_from_slice(&line);
                bytes.push(b'\n');
            }
        }
        let written = match (&mut inner.file, &self.path) {
            (Some(file), Some(path)) => file
                .write_all(&bytes)
                .map_err(|source| OutboxError::Io {
                    path: path.display().to_string(),
                    action: "append",
                    source,
                })
                .and_then(|()| {
                    file.sync_data().map_err(|source| OutboxError::Io {
                        path: path.display().to_string(),
                        action: "fsync",
                        source,
                    })
                }),
            _ => Ok(()),
        };
        if written.is_err() && all_or_nothing {
            return written;
        }
        for record in records {
            inner.apply(record);
        }
        if written.is_ok() && inner.records >= self.options.compact_after_records {
            // A failed compaction leaves the long log in place: still right.
            if let Err(e) = self.compact(inner) {
                common::say_err!("[Alerting] {e}; the outbox log stays uncompacted for now");
            }
        }
        written
    }

    /// Rewrites the log with only what is still needed: pending
    /// notifications (with their retry state), the notify logs, and the
    /// kept history.
    fn compact(&self, inner: &mut Inner) -> Result<(), OutboxError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut records: Vec<Record> = Vec::new();
        let mut keys: Vec<_> = inner
            .logs
            .iter()
            .filter(|(_, log)| !log.is_empty())
            .collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        records.extend(keys.into_iter().map(|(key, log)| Record::State {
            key: key.clone(),
            log: log.clone(),
        }));
        for entry in inner.history.entries() {
            if entry.outcome != DeliveryOutcome::Pending {
                records.push(Record::History {
                    entry: entry.clone(),
                });
            }
        }
        for pending in inner.pending.values() {
            let id = pending.notification.id.clone();
            records.push(Record::Enqueued {
                at_ms: pending.notification.created_at_ms,
                notification: pending.notification.clone(),
            });
            if pending.attempts > 0 {
                records.push(Record::Attempt {
                    id: id.clone(),
                    attempt: pending.attempts,
                    at_ms: pending.next_attempt_at_ms,
                    error: pending.last_error.clone().unwrap_or_default(),
                    next_attempt_at_ms: pending.next_attempt_at_ms,
                });
            }
            if pending.fallback_sent {
                records.push(Record::Fallback {
                    id,
                    at_ms: pending.next_attempt_at_ms,
                    copies: Vec::new(),
                });
            }
        }
        let mut bytes = Vec::new();
        for record in &records {
            if let Ok(line) = serde_json::to_vec(record) {
                bytes.extend_from_slice(&line);
                bytes.push(b'\n');
            }
        }
        // The append handle points at the old file; close it first.
        inner.file = None;
        let io = |action: &'static str, source| OutboxError::Io {
            path: path.display().to_string(),
            action,
            source,
        };
        let rewritten = write_atomically(path, &bytes).map_err(|(action, e)| io(action, e));
        inner.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io("open for appending", e))?,
        );
        rewritten?;
        inner.records = records.len();
        Ok(())
    }
}

impl Inner {
    fn new(file: Option<File>, options: OutboxOptions) -> Self {
        Inner {
            file,
            pending: BTreeMap::new(),
            pending_ids: HashMap::new(),
            next_seq: 0,
            logs: HashMap::new(),
            history: History::new(options.history_limit),
            records: 0,
        }
    }

    fn pending_mut(&mut self, id: &str) -> Option<&mut PendingDelivery> {
        let seq = self.pending_ids.get(id)?;
        self.pending.get_mut(seq)
    }

    fn finish(&mut self, id: &str) {
        if let Some(seq) = self.pending_ids.remove(id) {
            self.pending.remove(&seq);
        }
    }

    fn apply(&mut self, record: Record) {
        self.records += 1;
        match record {
            Record::Enqueued {
                notification,
                at_ms: _,
            } => {
                if self.pending_ids.contains_key(&notification.id) {
                    return;
                }
                self.history.insert(HistoryEntry::pending(&notification));
                let seq = self.next_seq;
                self.next_seq += 1;
                self.pending_ids.insert(notification.id.clone(), seq);
                self.pending.insert(
                    seq,
                    PendingDelivery {
                        next_attempt_at_ms: notification.created_at_ms,
                        notification,
                        attempts: 0,
                        last_error: None,
                        fallback_sent: false,
                    },
                );
            }
            Record::Attempt {
                id,
                attempt,
                at_ms,
                error,
                next_attempt_at_ms,
            } => {
                if let Some(pending) = self.pending_mut(&id) {
                    pending.attempts = attempt;
                    pending.next_attempt_at_ms = next_attempt_at_ms;
                    pending.last_error = Some(error.clone());
                }
                self.history.update(&id, |e| {
                    e.attempts = attempt;
                    e.last_attempt_at_ms = Some(at_ms);
                    e.last_error = Some(error);
                });
            }
            Record::Delivered { id, attempt, at_ms } => {
                self.finish(&id);
                self.history.update(&id, |e| {
                    e.attempts = attempt;
                    e.last_attempt_at_ms = Some(at_ms);
                    e.outcome = DeliveryOutcome::Delivered;
                    e.finished_at_ms = Some(at_ms);
                });
            }
            Record::DeadLetter {
                id,
                attempts,
                at_ms,
                error,
            } => {
                self.finish(&id);
                self.history.update(&id, |e| {
                    e.attempts = attempts;
                    e.last_attempt_at_ms = Some(at_ms);
                    e.outcome = DeliveryOutcome::DeadLetter;
                    e.last_error = Some(error);
                    e.finished_at_ms = Some(at_ms);
                });
            }
            Record::Fallback { id, at_ms, .. } => {
                if let Some(pending) = self.pending_mut(&id) {
                    pending.fallback_sent = true;
                }
                self.history.update(&id, |e| e.fallback_at_ms = Some(at_ms));
            }
            Record::State { key, log } => {
                if log.is_empty() {
                    self.logs.remove(&key);
                } else {
                    self.logs.insert(key, log);
                }
            }
            Record::History { entry } => self.history.insert(entry),
        }
    }
}
