//! What each integration was last told about each alert group, kept with
//! the outbox so a restart neither repeats a notification nor forgets that
//! one is due. Grouping (`routing/group.rs`) decides from it whether a
//! flush needs a notification; the outbox persists it. Docs: chapter 5,
//! "Why de-duplication and grouping".

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One episode of one alert: fingerprint and start time.
pub type Episode = (String, i64);

/// What one integration was told about one group, durably.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyLog {
    /// The firing episodes of the last notification.
    pub last_firing: BTreeSet<Episode>,
    /// The resolved episodes of the last notification.
    pub last_resolved: BTreeSet<Episode>,
    /// When the last notification was made; `None`: never.
    pub last_at_ms: Option<i64>,
    /// Episodes told as firing and not yet told as resolved: only these
    /// may be sent as resolved (nobody wants the end of a page they never
    /// got).
    pub told: BTreeSet<Episode>,
}

impl NotifyLog {
    /// True when there is nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.told.is_empty() && self.last_at_ms.is_none()
    }
}

/// Which integration of which receiver, for which group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NotifyKey {
    /// The group.
    pub group_key: String,
    /// The receiver.
    pub receiver: String,
    /// The integration's index in the receiver.
    pub integration: usize,
}
