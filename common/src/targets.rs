//! [`TargetRegistry`]: the scrape targets and how their last scrape went,
//! written by the slot that scrapes (craft 1's scraper) and read by the one
//! that answers `/api/v1/targets` (craft 4). One registry per pipeline,
//! shared as the metadata registry is.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::RwLock;

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
}

/// Every target, in the order they were registered.
#[derive(Debug, Default)]
pub struct TargetRegistry {
    targets: RwLock<Vec<TargetStatus>>,
}

impl TargetRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        TargetRegistry::default()
    }

    /// Adds a target; the index to [`TargetRegistry::update`] it by.
    pub fn register(&self, status: TargetStatus) -> usize {
        let mut targets = self.targets.write();
        targets.push(status);
        targets.len() - 1
    }

    /// Changes target `index` (an index not handed out changes nothing).
    pub fn update(&self, index: usize, change: impl FnOnce(&mut TargetStatus)) {
        if let Some(status) = self.targets.write().get_mut(index) {
            change(status);
        }
    }

    /// A copy of every target.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        self.targets.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_targets_are_updated_in_place() {
        let registry = TargetRegistry::new();
        let a = registry.register(TargetStatus {
            job: "node".into(),
            ..TargetStatus::default()
        });
        registry.update(a, |s| s.health = TargetHealth::Up);
        registry.update(7, |s| s.health = TargetHealth::Down);
        let all = registry.snapshot();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].health.as_str(), "up");
    }
}
