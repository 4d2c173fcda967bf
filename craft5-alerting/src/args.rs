//! Craft 5's command-line flags, as a clap `Args` struct the platform
//! flattens into its own, and the service built from them: rules, routing,
//! state beside the data, periodic and recording rules asked through the
//! platform's query slot, recorded samples written back through its queue,
//! threads started ([`AlertingSlot`]). Docs chapter 5.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use common::http::RouteSet;
use common::{InstantQuery, MetricWriter, QueryEngine, QueryError, SystemClock, WriteBarrier};
use thiserror::Error;

use crate::api::AlertingApi;
use crate::{
    AlertingService, RoutingConfig, RoutingConfigError, RuleFileError, RuleSet, ServiceError,
    ServiceOptions, load_rule_files,
};

/// Why the service could not be built from the flags.
#[derive(Debug, Error)]
pub enum ArgsError {
    /// A YAML rule file was refused.
    #[error(transparent)]
    Rules(#[from] RuleFileError),
    /// A seed JSON rule file was refused.
    #[error(transparent)]
    SeedRules(#[from] common::RuleError),
    /// The routing file was refused.
    #[error(transparent)]
    Routing(#[from] RoutingConfigError),
    /// The service could not open its files or start.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The rules need what the running query slot cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// Craft 5's flags.
#[derive(Debug, Clone, Args)]
pub struct AlertingArgs {
    /// Craft 5: the routing config (alertmanager.yml-shaped: route tree,
    /// receivers, delivery); default: every alert to the console.
    #[arg(long)]
    pub alertmanager_config: Option<PathBuf>,
    /// Craft 5: the alert state file; silences.json and outbox.jsonl go
    /// beside it. Default: <data-dir>/alerts/state.json.
    #[arg(long)]
    pub alert_state: Option<PathBuf>,
    /// Craft 5: how often a firing alert is sent again to the
    /// Alertmanagers of `--config.file`'s `alerting` section (Prometheus'
    /// flag and default).
    #[arg(long = "rules.alert.resend-delay", value_parser = common::duration::parse_positive_duration, default_value = "1m")]
    pub resend_delay: Duration,
    /// Alertmanagers to send firing alerts to (`--config.file`'s
    /// `alerting.alertmanagers`: their `/api/v2/alerts` URLs), beside the
    /// routing above.
    #[arg(skip)]
    pub alertmanagers: Vec<String>,
    /// Each send's limit.
    #[arg(skip)]
    pub alertmanager_timeout: Option<Duration>,
    /// This server's URL, for the alerts' `generatorURL`.
    #[arg(skip)]
    pub external_url: String,
    /// Rule files to load when `--rules` names none (`--config.file`'s
    /// `rule_files`, globs already expanded).
    #[arg(skip)]
    pub rule_files: Vec<PathBuf>,
    /// The interval of groups that name none (`--config.file`'s
    /// `global.evaluation_interval`).
    #[arg(skip)]
    pub evaluation_interval: Option<Duration>,
}

impl Default for AlertingArgs {
    /// The flags' defaults, as clap fills them.
    fn default() -> Self {
        AlertingArgs {
            alertmanager_config: None,
            alert_state: None,
            resend_delay: crate::delivery::alertmanager_api::DEFAULT_RESEND_DELAY,
            alertmanagers: Vec::new(),
            alertmanager_timeout: None,
            external_url: String::new(),
            rule_files: Vec::new(),
            evaluation_interval: None,
        }
    }
}

/// Craft 5 as the platform mounts it.
pub struct AlertingSlot {
    /// Slot 5; stop it after the pipeline ([`AlertingService::stop`]).
    pub service: Arc<AlertingService>,
    /// `/api/v1/rules`, `/api/v1/alerts`, silences, notifications, on-call.
    pub routes: Arc<dyn RouteSet>,
}

/// True for a rules file written as YAML rule groups (craft 5's form); any
/// other is the seed's JSON.
pub fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

impl AlertingArgs {
    /// The service: `rules` (YAML rule groups or the seed's JSON; the
    /// seed's defaults without), state under `data_dir/alerts` unless
    /// `--alert-state`, time-driven transitions every `interval` (the
    /// engine's default without), periodic and recording rules through
    /// `query`, recorded samples written back through `pipeline`; its
    /// threads started.
    ///
    /// # Errors
    /// [`ArgsError`] naming the file and what is wrong with it, or
    /// [`ArgsError::Unsupported`] when there are periodic or recording
    /// rules and `query` has no query language.
    pub fn build(
        &self,
        rules: Option<&Path>,
        data_dir: &Path,
        interval: Option<Duration>,
        query: Arc<dyn QueryEngine>,
        pipeline: PipelineAccess,
    ) -> Result<AlertingSlot, ArgsError> {
        let rules = match rules {
            Some(path) if is_yaml(path) => load_rule_files(&[path])?,
            Some(path) => RuleSet::from_seed_rules(&common::load_rules(path)?)?,
            None if !self.rule_files.is_empty() => load_rule_files(&self.rule_files)?,
            None => RuleSet::defaults()?,
        };
        let periodic = rules.rules().filter(|r| r.streaming().is_none()).count();
        let recording = rules.recording_rules().count();
        if periodic + recording > 0 {
            refuse_without_language(&*query, periodic, recording)?;
        }
        let routing = match &self.alertmanager_config {
            Some(path) => RoutingConfig::load(path)?,
            None => RoutingConfig::console_default(),
        };
        let state_file = self
            .alert_state
            .clone()
            .unwrap_or_else(|| data_dir.join("alerts").join("state.json"));
        let query_name = query.name();
        let mut options = ServiceOptions::new(Arc::new(SystemClock))
            .with_state_file(&state_file)
            .with_query(query)
            .with_writer(pipeline.writer, Some(pipeline.barrier));
        if let Some(interval) = interval {
            options.interval = interval;
        }
        options.default_group_interval = self.evaluation_interval;
        if !self.alertmanagers.is_empty() {
            common::say!(
                "[Alerting] firing alerts also go to {} Alertmanager(s): {}",
                self.alertmanagers.len(),
                self.alertmanagers.join(", ")
            );
            options.alertmanagers = Some(crate::delivery::alertmanager_api::AlertmanagerTargets {
                urls: self.alertmanagers.clone(),
                timeout: self.alertmanager_timeout.unwrap_or(Duration::from_secs(10)),
                resend_delay: self.resend_delay,
                external_url: self.external_url.clone(),
            });
        }
        let receivers: Vec<&str> = routing.receivers.names().collect();
        common::say!(
            "[Alerting] craft5: routing {} (receivers: {}), state in {}",
            routing.source,
            receivers.join(", "),
            state_file.display()
        );
        let service = AlertingService::new(rules, routing, options)?;
        if periodic > 0 {
            common::say!(
                "[Alerting] {periodic} periodic rules evaluated through the query slot ({query_name}) at their group interval (default {}s); /api/v1/rules shows their health",
                crate::evaluation::periodic::DEFAULT_GROUP_INTERVAL.as_secs()
            );
        }
        if recording > 0 {
            common::say!(
                "[Alerting] {recording} recording rules evaluated through the query slot ({query_name}) and written back through the queue at their group interval"
            );
        }
        let report = service.outbox_report();
        if report.pending > 0 || report.torn_bytes > 0 || report.damaged_lines > 0 {
            common::say!(
                "[Alerting] Outbox: {} notifications from before the restart will be sent ({} damaged lines skipped, {} bytes of torn tail cut)",
                report.pending,
                report.damaged_lines,
                report.torn_bytes
            );
        }
        service.start()?;
        let service = Arc::new(service);
        Ok(AlertingSlot {
            routes: Arc::new(AlertingApi::new(service.clone())),
            service,
        })
    }
}

/// What the alerting slot is handed of the pipeline it runs in: a writer
/// into its queue for recorded samples, and the barrier that says they
/// are stored.
pub struct PipelineAccess {
    /// The pipeline's queue as a writer (`common::QueueWriter`).
    pub writer: Arc<dyn MetricWriter>,
    /// The pipeline's `Components::barrier`.
    pub barrier: Arc<WriteBarrier>,
}

/// Periodic and recording rules are instant queries: a query slot without
/// a language (phase0's scan) would fail every one of them at every
/// interval, so the start is refused instead.
fn refuse_without_language(
    query: &dyn QueryEngine,
    periodic: usize,
    recording: usize,
) -> Result<(), ArgsError> {
    let probe = InstantQuery {
        expr: "vector(1)".into(),
        time_ms: 0,
        max_samples: Some(1_000),
        timeout: Some(Duration::from_secs(1)),
    };
    match query.instant(&probe) {
        Err(QueryError::Unsupported(why)) => {
            let rules = match (periodic, recording) {
                (0, r) => format!("{r} recording rules"),
                (p, 0) => format!("{p} rules"),
                (p, r) => format!("{p} periodic and {r} recording rules"),
            };
            Err(ArgsError::Unsupported(format!(
                "{rules} need an instant query each interval, and the query slot ({}) cannot answer one ({why}); run with --query craft4, or keep to threshold and window rules",
                query.name()
            )))
        }
        _ => Ok(()),
    }
}
