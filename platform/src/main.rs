//! `platform`: the composer. One flag per pipeline slot, each defaulting to
//! the best implementation available, so the same binary is the learner's
//! swap switch (`--ingestion phase0` to feel the old bottleneck) and the
//! product (`platform` alone). Each craft owns its flags (a flattened
//! `args.rs`) and builds its own slot; this file is one choice per slot.

mod args;

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use args::{Alerting, Args, Ingestion, Query, Queue, Storage};
use clap::Parser;
use common::{
    AlertEngine, IngestionServer, MetadataRegistry, MetricQueue, MetricStore, Shutdown,
    SystemClock, TargetRegistry, WriteBarrier,
};
use pipeline::{Components, Pipeline, PipelineOptions};

/// mimalloc instead of glibc's malloc: every metric carries a few small
/// strings (name, label pairs) allocated by the decoder and freed by the
/// storage consumer on another thread — the pattern thread-caching
/// allocators are built for. Chapter 3, "Measured", has the before/after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = Shutdown::new();
    shutdown
        .trigger_on_signals()
        .context("cannot install signal handlers")?;
    common::say!("=== Systems Craft — platform ===");
    common::say!(
        "[Platform] ingestion={:?} queue={:?} storage={:?} query={:?} alerting={:?}",
        args.ingestion,
        args.queue,
        args.storage,
        args.query,
        args.alerting
    );
    let (data_dir, capacity) = (&args.data_dir, args.queue_capacity as usize);
    // Read first: a broken file stops the start before anything is opened.
    let scrape_set = match &args.config_file {
        Some(path) => {
            let set = craft1_ingestion::scrape::load(path)?;
            for warning in &set.warnings {
                common::say_err!("[Scrape] {}: {warning}", path.display());
            }
            if !set.rule_files.is_empty() && args.rules.is_some() {
                common::say_err!(
                    "[Scrape] {}: rule_files: not loaded, --rules names the rule file",
                    path.display()
                );
            }
            Some((path.clone(), set))
        }
        None => None,
    };

    let ingestion: Arc<dyn IngestionServer> = match args.ingestion {
        Ingestion::Phase0 => Arc::new(phase0::ingestion::SingleThreadServer::default()),
        Ingestion::Threads => args
            .ingestion_args
            .build(craft1_ingestion::args::Step::Threads)?,
        Ingestion::Pool => args
            .ingestion_args
            .build(craft1_ingestion::args::Step::Pool)?,
        Ingestion::Craft1 => args
            .ingestion_args
            .build(craft1_ingestion::args::Step::Async)?,
    };
    let queue: Arc<dyn MetricQueue> = match args.queue {
        Queue::Phase0 => Arc::new(phase0::queue::MutexQueue::new(capacity)),
        Queue::Crossbeam => Arc::new(craft2_queue::CrossbeamQueue::new(capacity)),
        Queue::Log => Arc::new(args.queue_args.log(data_dir, capacity)?),
        Queue::Nats => Arc::new(args.queue_args.nats(capacity)?),
    };
    let store: Arc<dyn MetricStore> = match args.storage {
        Storage::Phase0 => Arc::new(
            phase0::storage::JsonlFileStore::open(data_dir)
                .with_context(|| format!("cannot use data directory {}", data_dir.display()))?,
        ),
        Storage::Craft3 => Arc::new(args.storage_args.open(data_dir).with_context(|| {
            format!(
                "cannot open the craft3 storage in {}",
                data_dir.join("tsdb").display()
            )
        })?),
    };
    let (mut routes, mut observers) = (Vec::new(), Vec::new());
    // Written by slot 1's remote_write, read by slot 4's /api/v1/metadata.
    let metadata = Arc::new(MetadataRegistry::new());
    // Answered by the pipeline, settled by slot 4 before a deletion.
    let barrier = Arc::new(WriteBarrier::new());
    // Written by the scraper, read by slot 4's /api/v1/targets.
    let targets = Arc::new(TargetRegistry::new());
    if let Some((_, set)) = &scrape_set {
        targets.set_alertmanagers(set.alertmanagers.clone());
    }
    let query: Arc<dyn common::QueryEngine> = match args.query {
        Query::Phase0 => Arc::new(phase0::query::ScanQueryEngine::new(store.clone())),
        Query::Craft4 => {
            let slot = args.query_args.build(
                store.clone(),
                metadata.clone(),
                barrier.clone(),
                targets.clone(),
            )?;
            routes.push(slot.routes);
            observers.push(slot.observer);
            slot.engine
        }
    };
    let mut craft5 = None;
    let alerting: Arc<dyn AlertEngine> = match args.alerting {
        Alerting::Phase0 => {
            if args.rules.is_none()
                && scrape_set
                    .as_ref()
                    .is_some_and(|(_, set)| !set.rule_files.is_empty())
            {
                anyhow::bail!(
                    "--config.file: rule_files need --alerting craft5 (phase0 reads the seed's JSON rules via --rules)"
                );
            }
            if scrape_set
                .as_ref()
                .is_some_and(|(_, set)| !set.alertmanagers.is_empty())
            {
                anyhow::bail!(
                    "--config.file: alerting.alertmanagers needs --alerting craft5 (phase0 prints alerts only)"
                );
            }
            if args.alerting_args.alertmanager_config.is_some() {
                anyhow::bail!("--alertmanager-config needs --alerting craft5");
            }
            if args.alerting_args.alert_state.is_some() {
                anyhow::bail!(
                    "--alert-state needs --alerting craft5 (phase0 keeps no alert state)"
                );
            }
            let rules = match &args.rules {
                Some(path) if craft5_alerting::args::is_yaml(path) => anyhow::bail!(
                    "--rules {}: YAML rule groups need --alerting craft5; phase0 reads the seed's JSON rules",
                    path.display()
                ),
                Some(path) => common::load_rules(path)?,
                None => phase0::alerting::default_rules(),
            };
            let interval = args
                .alert_interval
                .unwrap_or(phase0::alerting::DEFAULT_INTERVAL);
            let console: Arc<dyn common::Notifier> = Arc::new(phase0::notifier::ConsoleNotifier);
            Arc::new(phase0::alerting::PollingAlertEngine::new(
                rules,
                query.clone(),
                vec![console],
                interval,
            ))
        }
        Alerting::Craft5 => {
            let mut alerting_args = args.alerting_args.clone();
            if let Some((_, set)) = &scrape_set {
                alerting_args.alertmanagers = set.alertmanagers.clone();
                alerting_args.alertmanager_timeout = Some(set.alertmanager_timeout);
                alerting_args.external_url = format!("http://{}:{}", args.host, args.port);
                alerting_args.evaluation_interval = Some(set.evaluation_interval);
                for pattern in &set.rule_files {
                    let found = craft1_ingestion::scrape::discovery::expand(pattern);
                    if found.is_empty() {
                        common::say_err!(
                            "[Alerting] rule_files: {} matches no file",
                            pattern.display()
                        );
                    }
                    alerting_args.rule_files.extend(found);
                }
            }
            // Recording rules write back through the queue, like any write.
            let pipeline = craft5_alerting::args::PipelineAccess {
                writer: Arc::new(common::QueueWriter::new(queue.clone())),
                barrier: barrier.clone(),
            };
            let slot = alerting_args.build(
                args.rules.as_deref(),
                data_dir,
                args.alert_interval,
                query.clone(),
                pipeline,
            )?;
            routes.push(slot.routes);
            craft5 = Some(slot.service.clone());
            slot.service
        }
    };

    let mut components = Components::new(
        ingestion,
        queue,
        store,
        query,
        alerting,
        Arc::new(SystemClock),
    );
    // `/-/reload` answers once the scraper runs; without a file, there is
    // nothing to reload and no route.
    let reload = craft1_ingestion::scrape::ReloadHandle::new();
    let scrape_stats = Arc::new(craft1_ingestion::scrape::stats::ScrapeStats::default());
    if scrape_set.is_some() {
        routes.push(Arc::new(craft1_ingestion::scrape::ReloadRoutes::new(
            reload.clone(),
            scrape_stats.clone(),
        )));
        reload
            .reload_on_sighup()
            .context("cannot install the SIGHUP handler")?;
    }
    components.routes = routes;
    components.observers = observers;
    components.metadata = metadata;
    components.barrier = barrier;
    let address = format!("{}:{}", args.host, args.port);
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
    let options = PipelineOptions {
        consume_batch: args.consume_batch as usize,
        log_writes: args.log_writes,
        ..Default::default()
    };
    let (queue, metadata) = (components.queue.clone(), components.metadata.clone());
    let running = Pipeline::start_with_shutdown(components, listener, options, shutdown.clone())?;
    let scraper = match scrape_set {
        Some((path, set)) => {
            let deps = craft1_ingestion::scrape::ScrapeDeps {
                // A writer, not the queue: the scraper adds samples, as
                // recording rules do, and never consumes.
                writer: Arc::new(common::QueueWriter::new(queue)),
                clock: Arc::new(SystemClock),
                metadata,
                targets,
                stats: scrape_stats,
            };
            let scraper =
                craft1_ingestion::scrape::Scraper::start(path, set, deps, &reload, &shutdown)
                    .context("cannot start the scraper")?;
            common::say!("[Scrape] scraping {} targets", scraper.targets());
            Some(scraper)
        }
        None => None,
    };
    let report = running.run_until_shutdown();
    if let Some(scraper) = scraper {
        scraper.join();
    }
    // Stops the dispatcher and the delivery worker; what is not delivered
    // yet stays in the outbox for the next start.
    if let Some(service) = craft5 {
        service.stop();
    }
    let report = report?;
    common::say!(
        "[Shutdown] Queue drained: {} metrics stored this run, {} left. Bye.",
        report.stored,
        report.left_in_queue
    );
    Ok(())
}
