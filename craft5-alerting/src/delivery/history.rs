//! The notification history: what was sent to whom, when, and how it
//! went — queryable (`GET /api/v1/notifications`), and rebuilt from the
//! outbox on restart.
//!
//! Alertmanager cannot answer "did the on-call get paged for this last
//! night?" (a long-standing request of its users): its
//! notification log holds hashes for de-duplication, not a history. Here every notification the outbox takes
//! gets an entry that follows it — pending, each attempt, delivered or
//! dead-lettered, and whether a fallback receiver was brought in. The
//! history is bounded ([`DEFAULT_HISTORY_LIMIT`] finished entries; pending
//! ones are never dropped) and kept in memory beside the outbox, which
//! carries it across restarts. Docs chapter 5, "Delivery".

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::delivery::receivers::{Notification, Status};

/// Finished entries kept by default.
pub const DEFAULT_HISTORY_LIMIT: usize = 1_000;

/// Where a notification's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// In the outbox, not delivered yet (maybe retrying).
    Pending,
    /// The receiver took it.
    Delivered,
    /// Every attempt failed (or one failed for good): given up.
    DeadLetter,
}

impl DeliveryOutcome {
    /// `pending`, `delivered` or `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Pending => "pending",
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::DeadLetter => "dead_letter",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s words.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryOutcome::Pending),
            "delivered" => Some(DeliveryOutcome::Delivered),
            "dead_letter" => Some(DeliveryOutcome::DeadLetter),
            _ => None,
        }
    }
}

/// One notification's story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The notification's id (its idempotency key).
    pub id: String,
    /// The receiver.
    pub receiver: String,
    /// The integration, `kind[index]`.
    pub integration: String,
    /// The alert group.
    pub group_key: String,
    /// Firing or resolved.
    pub status: Status,
    /// The alert names in it.
    pub alert_names: Vec<String>,
    /// How many alerts, firing and resolved.
    pub firing: usize,
    /// See `firing`.
    pub resolved: usize,
    /// When it was made.
    pub created_at_ms: i64,
    /// Sends tried so far.
    pub attempts: u32,
    /// When the last send was tried.
    pub last_attempt_at_ms: Option<i64>,
    /// Where it stands.
    pub outcome: DeliveryOutcome,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was delivered or dead-lettered.
    pub finished_at_ms: Option<i64>,
    /// When a copy went to the fallback receiver.
    pub fallback_at_ms: Option<i64>,
    /// On a fallback copy: the original's id.
    pub fallback_of: Option<String>,
}

impl HistoryEntry {
    /// A new pending entry for `notification`.
    pub fn pending(notification: &Notification) -> Self {
        HistoryEntry {
            id: notification.id.clone(),
            receiver: notification.receiver.clone(),
            integration: notification.integration_name.clone(),
            group_key: notification.group_key.clone(),
            status: notification.status(),
            alert_names: notification
                .alert_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
            firing: notification.firing().count(),
            resolved: notification.resolved().count(),
            created_at_ms: notification.created_at_ms,
            attempts: 0,
            last_attempt_at_ms: None,
            outcome: DeliveryOutcome::Pending,
            last_error: None,
            finished_at_ms: None,
            fallback_at_ms: None,
            fallback_of: notification.fallback_of.clone(),
        }
    }
}

/// A question for the history; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryQuery {
    /// Only this receiver.
    pub receiver: Option<String>,
    /// Only this outcome.
    pub outcome: Option<DeliveryOutcome>,
    /// Only notifications with an alert of this name.
    pub alert_name: Option<String>,
    /// Only this group.
    pub group_key: Option<String>,
    /// Only those made at or after this time.
    pub since_ms: Option<i64>,
    /// At most this many, newest first (0: the default, 100).
    pub limit: usize,
}

/// The entries, in the order the outbox took them.
#[derive(Debug, Clone)]
pub struct History {
    entries: BTreeMap<u64, HistoryEntry>,
    by_id: HashMap<String, u64>,
    next: u64,
    limit: usize,
}

impl Default for History {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_LIMIT)
    }
}

impl History {
    /// An empty history keeping `limit` finished entries.
    pub fn new(limit: usize) -> Self {
        History {
            entries: BTreeMap::new(),
            by_id: HashMap::new(),
            next: 0,
            limit: limit.max(1),
        }
    }

    /// Adds (or replaces) an entry.
    pub fn insert(&mut self, entry: HistoryEntry) {
        if let Some(&seq) = self.by_id.get(&entry.id) {
            self.entries.insert(seq, entry);
            return;
        }
        let seq = self.next;
        self.next += 1;
        self.by_id.insert(entry.id.clone(), seq);
        self.entries.insert(seq, entry);
        self.trim();
    }

    /// Changes the entry `id`, if it is kept.
    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut HistoryEntry)) {
        if let Some(entry) = self.by_id.get(id).and_then(|seq| self.entries.get_mut(seq)) {
            change(entry);
        }
        self.trim();
    }

    /// One entry.
    pub fn get(&self, id: &str) -> Option<&HistoryEntry> {
        self.by_id.get(id).and_then(|seq| self.entries.get(seq))
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.values()
    }

    /// The entries answering `query`, newest first.
    pub fn query(&self, query: &HistoryQuery) -> Vec<HistoryEntry> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        self.entries
            .values()
            .rev()
            .filter(|e| query.receiver.as_ref().is_none_or(|r| &e.receiver == r))
            .filter(|e| query.outcome.is_none_or(|o| e.outcome == o))
            .filter(|e| query.group_key.as_ref().is_none_or(|g| &e.group_key == g))
            .filter(|e| {
                query
                    .alert_name
                    .as_ref()
                    .is_none_or(|name| e.alert_names.iter().any(|n| n == name))
            })
            .filter(|e| query.since_ms.is_none_or(|since| e.created_at_ms >= since))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Drops the oldest finished entries beyond the limit.
    fn trim(&mut self) {
        let finished = self
            .entries
            .values()
            .filter(|e| e.outcome != DeliveryOutcome::Pending)
            .count();
        let mut excess = finished.saturating_sub(self.limit);
        if excess == 0 {
            return;
        }
        let drop: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.outcome != DeliveryOutcome::Pending)
            .map(|(seq, _)| *seq)
            .take_while(|_| {
                let keep_going = excess > 0;
                excess = excess.saturating_sub(1);
                keep_going
            })
            .collect();
        for seq in drop {
            if let Some(entry) = self.entries.remove(&seq) {
                self.by_id.remove(&entry.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::receivers::testing::{alert, notification};

    fn entry(id: &str, receiver: &str, created: i64) -> HistoryEntry {
        let mut n = notification(vec![alert("a", Status::Firing)]);
        n.id = id.into();
        n.receiver = receiver.into();
        n.created_at_ms = created;
        HistoryEntry::pending(&n)
    }

    #[test]
    fn queries_filter_and_return_newest_first() {
        let mut history = History::new(10);
        history.insert(entry("1", "team", 100));
        history.insert(entry("2", "pager", 200));
        history.insert(entry("3", "team", 300));
        history.update("3", |e| e.outcome = DeliveryOutcome::Delivered);
        let team: Vec<String> = history
            .query(&HistoryQuery {
                receiver: Some("team".into()),
                ..HistoryQuery::default()
            })
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(team, vec!["3", "1"]);
        let delivered = history.query(&HistoryQuery {
            outcome: Some(DeliveryOutcome::Delivered),
            ..HistoryQuery::default()
        });
        assert_eq!(delivered.len(), 1);
        let recent = history.query(&HistoryQuery {
            since_ms: Some(200),
            alert_name: Some("HighCpu".into()),
            limit: 1,
            ..HistoryQuery::default()
        });
        assert_eq!(recent[0].id, "3");
    }

    #[test]
    fn only_finished_entries_are_dropped_beyond_the_limit() {
        let mut history = History::new(2);
        for id in 0..5 {
            history.insert(entry(&id.to_string(), "team", id));
        }
        assert_eq!(history.entries().count(), 5, "pending ones are kept");
        for id in 0..5 {
            history.update(&id.to_string(), |e| e.outcome = DeliveryOutcome::Delivered);
        }
        let kept: Vec<&str> = history.entries().map(|e| e.id.as_str()).collect();
        assert_eq!(kept, vec!["3", "4"]);
        assert!(history.get("0").is_none());
    }
}
