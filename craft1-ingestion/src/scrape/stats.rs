//! The scraper's own counters, on the platform's `GET /metrics`: how many
//! scrapes ran and failed, how many samples they stored, how many pushes
//! the queue refused (each one a scrape that stored nothing and wrote
//! `up 0`), how many reloads worked or did not. A refused push is never
//! silent: it is counted here and named in the target's `lastError`.
//! Docs chapter 1, "Pull".

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by every loop and the manager.
#[derive(Debug, Default)]
pub struct ScrapeStats {
    /// Scrapes attempted.
    pub scrapes: AtomicU64,
    /// Scrapes that failed, for any reason.
    pub failed: AtomicU64,
    /// Samples pushed (the page's, after metric relabelling).
    pub samples: AtomicU64,
    /// Pushes the queue refused.
    pub queue_refused: AtomicU64,
    /// Targets being scraped now.
    pub targets: AtomicU64,
    /// Reloads applied.
    pub reloads: AtomicU64,
    /// Reloads refused (the file did not load).
    pub reloads_failed: AtomicU64,
}

impl ScrapeStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// The counters in Prometheus' text format 0.0.4.
    pub fn write(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, kind, help, value) in [
            (
                "scraper_scrapes_total",
                "counter",
                "Scrapes attempted.",
                get(&self.scrapes),
            ),
            (
                "scraper_scrapes_failed_total",
                "counter",
                "Scrapes that failed (up 0).",
                get(&self.failed),
            ),
            (
                "scraper_samples_total",
                "counter",
                "Samples pushed by scrapes.",
                get(&self.samples),
            ),
            (
                "scraper_queue_refused_total",
                "counter",
                "Scrape pushes the queue refused.",
                get(&self.queue_refused),
            ),
            (
                "scraper_targets",
                "gauge",
                "Targets being scraped.",
                get(&self.targets),
            ),
            (
                "scraper_reloads_total",
                "counter",
                "Configuration reloads applied.",
                get(&self.reloads),
            ),
            (
                "scraper_reloads_failed_total",
                "counter",
                "Configuration reloads refused.",
                get(&self.reloads_failed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}
