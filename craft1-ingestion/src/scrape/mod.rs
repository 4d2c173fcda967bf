//! Pull beside push: the scraper. `platform --config.file prometheus.yml`
//! reads the user's Prometheus configuration (`config.rs`) and runs one
//! loop per target (`target.rs`), each pushing its samples through the
//! queue slot like any write, so every queue choice applies to scraped
//! data too. Docs chapter 1, "Pull".
//!
//! What is not here yet: service discovery beyond `static_configs`,
//! relabelling, reload. The configuration warns about
//! each such key it meets.

pub mod config;
pub mod target;

use std::sync::Arc;
use std::thread::JoinHandle;

use common::{Clock, MetadataRegistry, MetricQueue, Shutdown, TargetRegistry, TargetStatus};

pub use config::{ConfigError, ScrapeSet, TargetSpec, load};
use target::TargetLoop;

use crate::decode::DecodeLimits;

/// The running scrape loops.
pub struct Scraper {
    loops: Vec<JoinHandle<()>>,
}

impl Scraper {
    /// Starts a loop per target of `set`, each registered in `targets` and
    /// reporting there how its scrapes go; they stop when `shutdown` is
    /// triggered.
    pub fn start(
        set: &ScrapeSet,
        queue: Arc<dyn MetricQueue>,
        clock: Arc<dyn Clock>,
        metadata: Arc<MetadataRegistry>,
        targets: Arc<TargetRegistry>,
        shutdown: &Shutdown,
    ) -> Scraper {
        let mut loops = Vec::new();
        for spec in &set.targets {
            let index = targets.register(TargetStatus {
                job: spec.job.clone(),
                scrape_url: spec.url.clone(),
                discovered_labels: spec.discovered_labels.clone(),
                labels: spec.labels.clone(),
                interval: spec.interval,
                timeout: spec.timeout,
                ..TargetStatus::default()
            });
            let target = TargetLoop {
                index,
                targets: targets.clone(),
                spec: spec.clone(),
                queue: queue.clone(),
                clock: clock.clone(),
                metadata: metadata.clone(),
                limits: DecodeLimits::default(),
            };
            let shutdown = shutdown.clone();
            let name = format!("scrape {}", spec.address);
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || target.run(shutdown))
            {
                Ok(handle) => loops.push(handle),
                Err(error) => common::say_err!(
                    "[Scrape] cannot start the loop for {} {}: {error}",
                    spec.job,
                    spec.address
                ),
            }
        }
        Scraper { loops }
    }

    /// How many targets are being scraped.
    pub fn targets(&self) -> usize {
        self.loops.len()
    }

    /// Waits for every loop to end (after the shutdown).
    pub fn join(self) {
        for handle in self.loops {
            let _ = handle.join();
        }
    }
}
