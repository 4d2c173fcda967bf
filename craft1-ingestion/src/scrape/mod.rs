//! Pull beside push: the scraper. `platform --config.file prometheus.yml`
//! reads the user's Prometheus configuration (`config.rs`), finds each
//! job's targets and relabels them (`discovery.rs`, `relabel.rs`), and runs
//! one loop per target (`target.rs`), each pushing its samples through the
//! queue slot like any write, so every queue choice applies to scraped
//! data too. A manager thread keeps the loops in step with the targets:
//! every second it re-reads what changed (`file_sd` files) and, on
//! `POST /-/reload` or SIGHUP (`reload.rs`), the whole file; a target that
//! stays keeps its loop, so a reload loses no scrape. Docs chapter 1,
//! "Pull".

pub mod cache;
pub mod config;
pub mod discovery;
pub mod relabel;
pub mod reload;
pub mod stats;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Clock, MetadataRegistry, MetricWriter, Shutdown, TargetRegistry, TargetStatus};

pub use config::{ConfigError, Job, ScrapeSet, TargetSpec, load};
pub use reload::{ReloadHandle, ReloadRoutes};
use target::TargetLoop;

use crate::decode::DecodeLimits;

/// How often the manager looks for changed discovery files.
const RESYNC: Duration = Duration::from_secs(1);

/// What the scrape loops write to and report to.
#[derive(Clone)]
pub struct ScrapeDeps {
    /// Where the samples go: the pipeline's queue, as a
    /// `common::MetricWriter` (add, never consume), as recording rules get it.
    pub writer: Arc<dyn MetricWriter>,
    /// The scrape's time.
    pub clock: Arc<dyn Clock>,
    /// Where pages' `HELP`/`TYPE`/`UNIT` go (`/api/v1/metadata`).
    pub metadata: Arc<MetadataRegistry>,
    /// Where each target's health goes (`/api/v1/targets`).
    pub targets: Arc<TargetRegistry>,
    /// The scraper's counters (`GET /metrics`, through [`ReloadRoutes`]).
    pub stats: Arc<stats::ScrapeStats>,
}

/// The running scraper: its manager thread and, under it, a loop per
/// target.
pub struct Scraper {
    manager: JoinHandle<()>,
    active: Arc<AtomicUsize>,
}

impl Scraper {
    /// Starts scraping `set` (read from `path`, which a reload reads
    /// again); requests sent to `reload` are answered by the manager. The
    /// loops stop when `shutdown` is triggered.
    ///
    /// # Errors
    /// When the manager thread cannot be started.
    pub fn start(
        path: PathBuf,
        set: ScrapeSet,
        deps: ScrapeDeps,
        reload: &ReloadHandle,
        shutdown: &Shutdown,
    ) -> std::io::Result<Scraper> {
        let active = Arc::new(AtomicUsize::new(0));
        let rules_at_start = rule_texts(&set.rule_files);
        let mut manager = Manager {
            rules_at_start,
            path,
            jobs: set.jobs,
            deps,
            cache: discovery::FileCache::default(),
            running: HashMap::new(),
            stopping: Vec::new(),
            said: HashSet::new(),
            active: active.clone(),
        };
        // The first targets before `start` returns, so the caller can say
        // how many there are.
        manager.sync();
        let requests = reload.requests();
        requests.show(set.shown.clone());
        let shutdown = shutdown.clone();
        let manager = std::thread::Builder::new()
            .name("scrape-manager".into())
            .spawn(move || manager.run(&requests, &shutdown))?;
        Ok(Scraper { manager, active })
    }

    /// How many targets are being scraped now.
    pub fn targets(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Waits for the manager and every loop to end (after the shutdown).
    pub fn join(self) {
        let _ = self.manager.join();
    }
}

/// Each rule file the patterns name now, with its text.
fn rule_texts(patterns: &[PathBuf]) -> Vec<(PathBuf, String)> {
    patterns
        .iter()
        .flat_map(|pattern| discovery::expand(pattern))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (path, text)
        })
        .collect()
}

/// One target's running loop.
struct Running {
    spec: TargetSpec,
    id: u64,
    stop: Shutdown,
    removed: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

struct Manager {
    path: PathBuf,
    /// The rule files' text as the start read them: rules are loaded at
    /// start only, so a reload that finds them changed says so.
    rules_at_start: Vec<(PathBuf, String)>,
    jobs: Vec<Arc<Job>>,
    deps: ScrapeDeps,
    cache: discovery::FileCache,
    /// By target key: job, URL and final labels.
    running: HashMap<String, Running>,
    /// Loops told to stop, joined once they have.
    stopping: Vec<JoinHandle<()>>,
    /// Discovery errors already printed, so a broken file is said once.
    said: HashSet<String>,
    active: Arc<AtomicUsize>,
}

impl Manager {
    fn run(mut self, requests: &reload::Requests, shutdown: &Shutdown) {
        let mut last_sync = Instant::now();
        while !shutdown.is_triggered() {
            if let Some(reply) = requests.next(Duration::from_millis(200)) {
                let outcome = self.reload(requests);
                let _ = reply.send(outcome);
                last_sync = Instant::now();
            } else if last_sync.elapsed() >= RESYNC
                && self.jobs.iter().any(|j| !j.file_sd.is_empty())
            {
                // Static targets change only on a reload; only files are
                // looked at again.
                self.sync();
                last_sync = Instant::now();
            }
            self.stopping.retain(|handle| !handle.is_finished());
        }
        for running in self.running.values() {
            running.stop.trigger();
        }
        for (_, running) in self.running.drain() {
            let _ = running.handle.join();
        }
        for handle in self.stopping.drain(..) {
            let _ = handle.join();
        }
    }

    /// Reads the file again; a file that does not load changes nothing.
    fn reload(&mut self, requests: &reload::Requests) -> Result<String, String> {
        let set = match load(&self.path) {
            Ok(set) => set,
            Err(error) => {
                stats::ScrapeStats::bump(&self.deps.stats.reloads_failed, 1);
                return Err(error.to_string());
            }
        };
        stats::ScrapeStats::bump(&self.deps.stats.reloads, 1);
        for warning in &set.warnings {
            common::say_err!("[Scrape] {}: {warning}", self.path.display());
        }
        self.jobs = set.jobs;
        requests.show(set.shown);
        self.said.clear();
        self.sync();
        let mut message = format!(
            "{}: {} jobs, {} targets",
            self.path.display(),
            self.jobs.len(),
            self.running.len()
        );
        if rule_texts(&set.rule_files) != self.rules_at_start {
            // Never a silent half-reload: the scrape jobs changed, the
            // rules did not, and the answer says which.
            message.push_str(
                "; rule_files changed but rules are read at start only: restart to apply them",
            );
            common::say_err!(
                "[Scrape] reload: rule_files changed; the rules running are the ones read at start"
            );
        }
        common::say!("[Scrape] configuration reloaded: {message}");
        Ok(message)
    }

    /// Brings the loops in line with what discovery finds now.
    fn sync(&mut self) {
        let mut wanted: Vec<(String, TargetSpec)> = Vec::new();
        let mut dropped = Vec::new();
        let mut seen = HashSet::new();
        for job in &self.jobs {
            let found = discovery::discover(job, &mut self.cache);
            for error in found.errors {
                if self.said.insert(error.clone()) {
                    common::say_err!("[Scrape] {error}");
                }
            }
            dropped.extend(found.dropped);
            for spec in found.active {
                let key = format!("{}\u{0}{}\u{0}{:?}", job.name, spec.url, spec.labels);
                // The same target twice (two groups naming it) is scraped
                // once, as Prometheus does.
                if seen.insert(key.clone()) {
                    wanted.push((key, spec));
                }
            }
        }
        let keep: HashSet<&String> = wanted.iter().map(|(key, _)| key).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|key| !keep.contains(key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(running) = self.running.remove(&key) {
                common::say!(
                    "[Scrape] {} {}: no longer a target, its series end",
                    running.spec.job.name,
                    running.spec.address
                );
                self.stop(running, true);
            }
        }
        for (key, spec) in wanted {
            match self.running.get(&key) {
                Some(running) if running.spec == spec => continue,
                Some(_) => {
                    // The same target under a changed job (a reload): the
                    // old loop stops without ending the series the new
                    // one goes on writing.
                    if let Some(running) = self.running.remove(&key) {
                        self.stop(running, false);
                    }
                }
                None => {}
            }
            if let Some(running) = self.spawn(spec) {
                self.running.insert(key, running);
            }
        }
        self.deps.targets.set_dropped(dropped);
        self.active.store(self.running.len(), Ordering::Relaxed);
        self.deps
            .stats
            .targets
            .store(self.running.len() as u64, Ordering::Relaxed);
    }

    fn stop(&mut self, running: Running, removed: bool) {
        running.removed.store(removed, Ordering::Release);
        running.stop.trigger();
        self.deps.targets.remove(running.id);
        self.stopping.push(running.handle);
    }

    fn spawn(&mut self, spec: TargetSpec) -> Option<Running> {
        let id = self.deps.targets.register(TargetStatus {
            job: spec.job.name.clone(),
            scrape_url: spec.url.clone(),
            discovered_labels: spec.discovered_labels.clone(),
            labels: spec.labels.clone(),
            interval: spec.interval,
            timeout: spec.timeout,
            ..TargetStatus::default()
        });
        let stop = Shutdown::new();
        let removed = Arc::new(AtomicBool::new(false));
        let target = TargetLoop {
            id,
            removed: removed.clone(),
            targets: self.deps.targets.clone(),
            spec: spec.clone(),
            writer: self.deps.writer.clone(),
            clock: self.deps.clock.clone(),
            metadata: self.deps.metadata.clone(),
            stats: self.deps.stats.clone(),
            limits: DecodeLimits::default(),
        };
        let loop_stop = stop.clone();
        match std::thread::Builder::new()
            .name(format!("scrape {}", spec.address))
            .spawn(move || target.run(loop_stop))
        {
            Ok(handle) => Some(Running {
                spec,
                id,
                stop,
                removed,
                handle,
            }),
            Err(error) => {
                common::say_err!(
                    "[Scrape] cannot start the loop for {} {}: {error}",
                    spec.job.name,
                    spec.address
                );
                self.deps.targets.remove(id);
                None
            }
        }
    }
}
