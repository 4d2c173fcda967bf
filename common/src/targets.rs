//! [`TargetRegistry`]: the scrape targets and how their last scrape went,
//! written by the slot that scrapes (craft 1's scraper) and read by the one
//! that answers `/api/v1/targets` (craft 4). One registry per pipeline,
//! shared as the metadata registry is.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::RwLock;

use crate::MetricMetadata;

/// Whether a target's last scrape worked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetHealth {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// The last scrape was stored.
    Up,
    /// The last scrape failed (see [`TargetStatus::last_error`]).
    Down,
}

impl TargetHealth {
    /// Prometheus' word: `unknown`, `up`, `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// One target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetStatus {
    /// Its job (Prometheus' scrape pool).
    pub job: String,
    /// What is fetched.
    pub scrape_url: String,
    /// The labels before relabelling (`__address__`, `__scheme__`,
    /// `__metrics_path__`, `job`, the static labels).
    pub discovered_labels: BTreeMap<String, String>,
    /// The labels every sample of it gets.
    pub labels: BTreeMap<String, String>,
    /// How often and how long.
    pub interval: Duration,
    /// Each scrape's limit.
    pub timeout: Duration,
    /// The last scrape's outcome.
    pub health: TargetHealth,
    /// Why the last scrape failed; empty when it did not.
    pub last_error: String,
    /// When the last scrape began, ms since the epoch.
    pub last_scrape_ms: Option<i64>,
    /// How long it took.
    pub last_scrape_duration: Duration,
    /// The families its last page described (`HELP`, `TYPE`, `UNIT`), for
    /// `/api/v1/targets/metadata`.
    pub metadata: Vec<(String, MetricMetadata)>,
}

/// A target relabelling dropped: only what was discovered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DroppedTarget {
    /// Its job.
    pub job: String,
    /// The labels before relabelling.
    pub discovered_labels: BTreeMap<String, String>,
}

/// Every target, active by id in the order they were registered, and the
/// ones relabelling dropped.
#[derive(Debug, Default)]
pub struct TargetRegistry {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    active: BTreeMap<u64, TargetStatus>,
    dropped: Vec<DroppedTarget>,
    alertmanagers: Vec<String>,
}

impl TargetRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        TargetRegistry::default()
    }

    /// Adds an active target; the id to [`TargetRegistry::update`] or
    /// [`TargetRegistry::remove`] it by.
    pub fn register(&self, status: TargetStatus) -> u64 {
        let mut inner = self.inner.write();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.active.insert(id, status);
        id
    }

    /// Changes target `id` (an id not registered, or removed, changes
    /// nothing).
    pub fn update(&self, id: u64, change: impl FnOnce(&mut TargetStatus)) {
        if let Some(status) = self.inner.write().active.get_mut(&id) {
            change(status);
        }
    }

    /// Forgets target `id`: it is no longer scraped.
    pub fn remove(&self, id: u64) {
        self.inner.write().active.remove(&id);
    }

    /// Replaces the list of dropped targets.
    pub fn set_dropped(&self, dropped: Vec<DroppedTarget>) {
        self.inner.write().dropped = dropped;
    }

    /// A copy of every active target, in registration order.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        self.inner.read().active.values().cloned().collect()
    }

    /// Records the Alertmanagers alerts are sent to (their
    /// `/api/v2/alerts` URLs): the other kind of target a Prometheus
    /// configuration names, listed by `/api/v1/alertmanagers`.
    pub fn set_alertmanagers(&self, urls: Vec<String>) {
        self.inner.write().alertmanagers = urls;
    }

    /// The Alertmanagers alerts are sent to.
    pub fn alertmanagers(&self) -> Vec<String> {
        self.inner.read().alertmanagers.clone()
    }

    /// A copy of the dropped targets.
    pub fn dropped(&self) -> Vec<DroppedTarget> {
        self.inner.read().dropped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_targets_are_updated_in_place_and_removed() {
        let registry = TargetRegistry::new();
        let a = registry.register(TargetStatus {
            job: "node".into(),
            ..TargetStatus::default()
        });
        let b = registry.register(TargetStatus {
            job: "app".into(),
            ..TargetStatus::default()
        });
        registry.update(a, |s| s.health = TargetHealth::Up);
        registry.update(7, |s| s.health = TargetHealth::Down);
        let all = registry.snapshot();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].health.as_str(), "up");
        registry.remove(a);
        registry.update(a, |s| s.health = TargetHealth::Down);
        assert_eq!(registry.snapshot().len(), 1);
        assert_eq!(registry.snapshot()[0].job, "app");
        assert_ne!(a, b);
        registry.set_dropped(vec![DroppedTarget::default()]);
        assert_eq!(registry.dropped().len(), 1);
    }
}
