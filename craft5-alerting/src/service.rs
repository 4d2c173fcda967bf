//! `AlertingService`: craft 5 assembled — the streaming engine, the
//! dispatcher (routing, grouping, silences), the durable outbox and the
//! delivery worker, with their threads — behind `common::AlertEngine`, so
//! the pipeline runs it in slot 5 like any other engine.
//!
//! ```text
//!  storage consumer ── observe ──▶ StreamingAlertEngine ── Firing/Resolved ──▶ Dispatcher inbox
//!                                   (state.json)                                   │ dispatcher thread:
//!                                                                                  ▼ groups, timers, silences
//!                                          delivery thread ◀── signal ── Outbox (outbox.jsonl, fsync)
//!                                          retries, fallback ──▶ receivers (webhook, Slack, PagerDuty, email, console)
//! ```
//!
//! The engine also tells the [`Escalator`] (its own thread: escalation
//! steps for unacknowledged alerts, into the same outbox).
//!
//! Files, all beside the alert state file (`<data-dir>/alerts/` in the
//! platform): `state.json` (alert states), `silences.json`, `outbox.jsonl`
//! (notifications, their delivery, and what each receiver was told),
//! `acknowledgements.json`, `escalations.json` (steps paged). On
//! start the engine restores its alerts, the outbox replays its log (and
//! pending notifications are sent again), and the restored alerts are
//! handed to the dispatcher, which compares them with what was already
//! told: a restart neither loses a notification nor repeats a page.
//! Docs chapter 5.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{AlertEngine, AlertError, AlertRule, Clock, Evaluation, Metric, QueryError};
use parking_lot::Mutex;
use thiserror::Error;

use crate::config::RoutingConfig;
use crate::delivery::alertmanager_api::{AlertmanagerSender, AlertmanagerTargets};
use crate::delivery::outbox::{OpenReport, Outbox, OutboxError, OutboxOptions};
use crate::delivery::worker::{DeliveryWorker, Jitter};
use crate::evaluation::engine::{
    EngineError, EngineOptions, PERIODIC_NOT_EVALUATED, StreamingAlertEngine,
};
use crate::evaluation::state::Transition;
use crate::notification::TransitionNotifier;
use crate::oncall::ack::{AckError, Acknowledgements};
use crate::oncall::escalation::{EscalationError, Escalator};
use crate::routing::Dispatcher;
use crate::rules::RuleSet;
use crate::silence::{SilenceError, Silences};

/// The silences file's name, beside the state file.
pub const SILENCES_FILE: &str = "silences.json";
/// The outbox log's name, beside the state file.
pub const OUTBOX_FILE: &str = "outbox.jsonl";
/// The acknowledgements file's name, beside the state file.
pub const ACKNOWLEDGEMENTS_FILE: &str = "acknowledgements.json";
/// The escalation state file's name, beside the state file.
pub const ESCALATIONS_FILE: &str = "escalations.json";

/// How the service runs.
#[derive(Clone)]
pub struct ServiceOptions {
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How often the pipeline evaluates (time-driven transitions).
    pub interval: Duration,
    /// The alert state file; silences and the outbox go beside it. `None`
    /// keeps everything in memory (nothing survives a restart).
    pub state_file: Option<PathBuf>,
    /// Seed of the retry jitter.
    pub jitter_seed: u64,
    /// Outbox tuning.
    pub outbox: OutboxOptions,
    /// The query slot periodic rules are asked through; `None` leaves
    /// them loaded but not evaluated.
    pub query: Option<Arc<dyn common::QueryEngine>>,
    /// The limits of one periodic rule's query.
    pub query_limits: crate::evaluation::periodic::RuleQueryLimits,
    /// Channels told of every alert as it starts firing, beside the routed
    /// receivers: the seed's `common::Notifier`s (the conformance suite's
    /// collector, a console for a demo).
    pub notifiers: Vec<Arc<dyn common::Notifier>>,
    /// Alertmanagers every firing alert is also sent to, as Prometheus
    /// sends them (`delivery/alertmanager_api.rs`).
    pub alertmanagers: Option<AlertmanagerTargets>,
    /// The interval of a rule group that names none (Prometheus'
    /// `global.evaluation_interval`); `None`: the engine's 1 m.
    pub default_group_interval: Option<Duration>,
    /// Where recording rules write (the platform's queue); `None` leaves
    /// them loaded but not evaluated.
    pub writer: Option<Arc<dyn common::MetricWriter>>,
    /// Settled before a later rule of a group reads an earlier record.
    pub barrier: Option<Arc<common::WriteBarrier>>,
}

impl ServiceOptions {
    /// Defaults on `clock`, in memory.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let seed = u64::try_from(clock.now_ms()).unwrap_or(0) ^ u64::from(std::process::id());
        ServiceOptions {
            clock,
            interval: crate::evaluation::engine::DEFAULT_INTERVAL,
            state_file: None,
            jitter_seed: seed,
            outbox: OutboxOptions::default(),
            query: None,
            query_limits: crate::evaluation::periodic::RuleQueryLimits::default(),
            notifiers: Vec::new(),
            alertmanagers: None,
            default_group_interval: None,
            writer: None,
            barrier: None,
        }
    }

    /// Writes recording rules' samples through `writer` (the platform's
    /// queue), settling `barrier` before a later rule of the group reads
    /// them.
    pub fn with_writer(
        mut self,
        writer: Arc<dyn common::MetricWriter>,
        barrier: Option<Arc<common::WriteBarrier>>,
    ) -> Self {
        self.writer = Some(writer);
        self.barrier = barrier;
        self
    }

    /// Also tells `notifiers` of every alert that starts firing.
    pub fn with_notifiers(mut self, notifiers: Vec<Arc<dyn common::Notifier>>) -> Self {
        self.notifiers = notifiers;
        self
    }

    /// Evaluates periodic rules through `query` (the platform's slot 4).
    pub fn with_query(mut self, query: Arc<dyn common::QueryEngine>) -> Self {
        self.query = Some(query);
        self
    }

    /// Persists state in `path` (and silences and the outbox beside it).
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }
}

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The engine (rules or alert state).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The silences file.
    #[error(transparent)]
    Silences(#[from] SilenceError),
    /// The outbox log.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The acknowledgements file.
    #[error(transparent)]
    Acknowledgements(#[from] AckError),
    /// The escalation state file.
    #[error(transparent)]
    Escalation(#[from] EscalationError),
    /// The state directory could not be made.
    #[error("cannot create the alert state directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// Which.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Craft 5 assembled; see the module notes.
pub struct AlertingService {
    engine: Arc<StreamingAlertEngine>,
    dispatcher: Arc<Dispatcher>,
    escalator: Arc<Escalator>,
    acknowledgements: Arc<Acknowledgements>,
    delivery: Arc<DeliveryWorker>,
    silences: Arc<Silences>,
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    outbox_report: OpenReport,
    alertmanager: Option<Arc<AlertmanagerSender>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl AlertingService {
    /// Builds everything and restores state; no thread runs yet (call
    /// [`start`](Self::start), or drive [`tick`](Self::tick) in tests).
    ///
    /// # Errors
    /// [`ServiceError`] naming the file or the rule at fault.
    pub fn new(
        rules: RuleSet,
        routing: RoutingConfig,
        options: ServiceOptions,
    ) -> Result<Self, ServiceError> {
        let directory = options.state_file.as_deref().map(state_directory);
        if let Some(directory) = &directory {
            std::fs::create_dir_all(directory).map_err(|source| ServiceError::Directory {
                path: directory.display().to_string(),
                source,
            })?;
        }
        let silences = Arc::new(match &directory {
            Some(directory) => Silences::open(directory.join(SILENCES_FILE))?,
            None => Silences::in_memory(),
        });
        let (outbox, outbox_report) = match &directory {
            Some(directory) => Outbox::open(directory.join(OUTBOX_FILE), options.outbox)?,
            None => (Outbox::in_memory(options.outbox), OpenReport::default()),
        };
        let outbox = Arc::new(outbox);
        let routing = Arc::new(routing);
        let acknowledgements = Arc::new(match &directory {
            Some(directory) => Acknowledgements::open(directory.join(ACKNOWLEDGEMENTS_FILE))?,
            None => Acknowledgements::in_memory(),
        });
        let dispatcher = Arc::new(
            Dispatcher::new(
                routing.clone(),
                silences.clone(),
                outbox.clone(),
                options.clock.clone(),
            )
            .with_acknowledgements(acknowledgements.clone()),
        );
        let escalator = Arc::new(Escalator::new(
            routing.clone(),
            dispatcher.clone(),
            acknowledgements.clone(),
            outbox.clone(),
            options.clock.clone(),
            directory.as_ref().map(|d| d.join(ESCALATIONS_FILE)),
        )?);
        let alertmanager = options
            .alertmanagers
            .clone()
            .map(|targets| Arc::new(AlertmanagerSender::new(targets, options.clock.clone())));
        let mut engine_options = EngineOptions::new(options.clock.clone())
            .with_interval(options.interval)
            .with_transition_notifier(dispatcher.clone())
            .with_transition_notifier(escalator.clone());
        if let Some(sender) = &alertmanager {
            engine_options = engine_options.with_transition_notifier(sender.clone());
        }
        engine_options.state_file = options.state_file.clone();
        engine_options.query = options.query.clone();
        engine_options.query_limits = options.query_limits;
        if let Some(interval) = options.default_group_interval {
            engine_options.default_group_interval = interval;
        }
        engine_options.writer = options.writer.clone();
        engine_options.barrier = options.barrier.clone();
        let engine = Arc::new(StreamingAlertEngine::new(
            rules,
            options.notifiers.clone(),
            engine_options,
        )?);
        let restored: Vec<_> = engine
            .current_events()
            .into_iter()
            .filter(|e| e.transition.notifies())
            .collect();
        escalator.reconcile(restored.clone());
        if let Some(sender) = &alertmanager {
            // Alerts firing before the restart are sent again at once.
            for event in restored
                .iter()
                .filter(|e| e.transition == Transition::Firing)
            {
                let _ = sender.notify_transition(event);
            }
        }
        dispatcher.reconcile(restored);
        let delivery = Arc::new(DeliveryWorker::new(
            outbox.clone(),
            routing.receivers.clone(),
            routing.delivery,
            options.clock.clone(),
            Jitter::new(options.jitter_seed),
        ));
        Ok(AlertingService {
            engine,
            dispatcher,
            escalator,
            acknowledgements,
            delivery,
            silences,
            outbox,
            clock: options.clock,
            outbox_report,
            alertmanager,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// Starts the dispatcher and delivery threads.
    ///
    /// # Errors
    /// [`ServiceError::Thread`] when a thread cannot be spawned.
    pub fn start(&self) -> Result<(), ServiceError> {
        let mut threads = self.threads.lock();
        if !threads.is_empty() {
            return Ok(());
        }
        let dispatcher = self.dispatcher.clone();
        let stop = self.stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("alert-dispatch".into())
                .spawn(move || dispatcher.run(&stop))
                .map_err(|source| ServiceError::Thread {
                    name: "alert-dispatch",
                    source,
                })?,
        );
        let escalator = self.escalator.clone();
        let stop = self.stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("alert-escalate".into())
                .spawn(move || escalator.run(&stop))
                .map_err(|source| ServiceError::Thread {
                    name: "alert-escalate",
                    source,
                })?,
        );
        if let Some(sender) = self.alertmanager.clone() {
            let stop = self.stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("alert-alertmanager".into())
                    .spawn(move || sender.run(&stop))
                    .map_err(|source| ServiceError::Thread {
                        name: "alert-alertmanager",
                        source,
                    })?,
            );
        }
        let delivery = self.delivery.clone();
        let stop = self.stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("alert-delivery".into())
                .spawn(move || delivery.run(&stop))
                .map_err(|source| ServiceError::Thread {
                    name: "alert-delivery",
                    source,
                })?,
        );
        Ok(())
    }

    /// Stops the threads (a send in progress finishes first, bounded by
    /// its timeout) and waits for them. Whatever is still pending stays in
    /// the outbox for the next start.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.dispatcher.wake();
        self.escalator.wake();
        if let Some(sender) = &self.alertmanager {
            sender.wake();
        }
        self.outbox.signal().notify();
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            if thread.join().is_err() {
                common::say_err!("[Alerting] a worker thread panicked");
            }
        }
    }

    /// One dispatcher tick, one escalation tick and one delivery pass at
    /// `now_ms`, on the calling thread: how tests drive the whole path on
    /// a manual clock.
    ///
    /// # Errors
    /// The dispatcher's or the escalator's [`OutboxError`].
    pub fn tick(&self, now_ms: i64) -> Result<crate::delivery::worker::PassReport, OutboxError> {
        self.dispatcher.tick(now_ms)?;
        self.escalator.tick(now_ms)?;
        Ok(self.delivery.run_due(now_ms))
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<StreamingAlertEngine> {
        &self.engine
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The escalator.
    pub fn escalator(&self) -> &Arc<Escalator> {
        &self.escalator
    }

    /// The acknowledgements.
    pub fn acknowledgements(&self) -> &Arc<Acknowledgements> {
        &self.acknowledgements
    }

    /// The delivery worker.
    pub fn delivery(&self) -> &Arc<DeliveryWorker> {
        &self.delivery
    }

    /// The silences.
    pub fn silences(&self) -> &Arc<Silences> {
        &self.silences
    }

    /// The outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// What the outbox found when it opened.
    pub fn outbox_report(&self) -> &OpenReport {
        &self.outbox_report
    }
}

/// The directory of the state file (`.` for a bare file name).
fn state_directory(state_file: &Path) -> PathBuf {
    match state_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Drop for AlertingService {
    fn drop(&mut self) {
        self.stop();
    }
}

impl AlertEngine for AlertingService {
    fn rules(&self) -> Vec<AlertRule> {
        self.engine.rules()
    }

    fn interval(&self) -> Duration {
        self.engine.interval()
    }

    /// The engine's evaluation, without the periodic rules' "not evaluated"
    /// errors (no store): those are known at load time, reported by the
    /// API's `/api/v1/rules` (health `unknown`) and at start-up, not once
    /// per second in the log. Failed periodic queries are kept.
    fn evaluate(&self, now_ms: i64) -> Evaluation {
        let mut evaluation = self.engine.evaluate(now_ms);
        evaluation.errors.retain(|error| {
            !matches!(error, AlertError::Query { source: QueryError::Unsupported(m), .. } if m == PERIODIC_NOT_EVALUATED)
        });
        evaluation
    }

    fn notify_failures(&self) -> u64 {
        self.engine.notify_failures()
            + self
                .outbox
                .history(&crate::delivery::history::HistoryQuery {
                    outcome: Some(crate::delivery::history::DeliveryOutcome::DeadLetter),
                    limit: usize::MAX,
                    ..Default::default()
                })
                .len() as u64
    }

    fn observe(&self, metrics: &[Metric]) {
        self.engine.ingest(metrics);
    }

    fn name(&self) -> &'static str {
        "craft5"
    }
}
