//! `StreamingAlertEngine`: the alerting slot evaluated on ingest — every
//! stored sample updates the windows of the rules that watch its metric
//! and steps their alerts' state machines at the sample's time.
//!
//! phase0's `PollingAlertEngine` wakes every 10 s and asks the query slot
//! for every rule's whole window: detection is up to one interval late,
//! each check costs one full scan per rule, and a condition that holds
//! pages at every check. Here:
//!
//! - **detection on ingest**: `observe` (called by the pipeline right after
//!   a batch is stored) looks up the rules indexed by the sample's metric
//!   name — a sample touches only the rules that name its metric — updates
//!   the series' [`SlidingWindow`] in amortised O(1) and steps the alert;
//! - **time-driven transitions on a tick**: `evaluate(now)` advances every
//!   window to `now`, so `for` elapses and emptied windows resolve even
//!   when no sample arrives; it is cheap (no queries) and runs every
//!   second by default;
//! - **one notification per transition**: Firing and Resolved go to the
//!   notifiers; Pending and Cancelled are events for the API and the state
//!   file only;
//! - **state that survives a restart**: after each batch of transitions the
//!   state of every non-inactive alert is written (`store.rs`) *before*
//!   anyone is notified, and read back at start. A restored alert is
//!   *held* until its rule's window has had a full range of time to refill
//!   since the start: a cold, half-empty window may raise an alert but not
//!   clear one, or every restart would resolve and re-page everything.
//!
//! - **periodic rules** — expressions a stream cannot answer — are run
//!   by `evaluate(now)` when their group is due, as instant queries to
//!   the query slot given in [`EngineOptions::query`] (`periodic.rs`:
//!   schedule, queries, health); each result series is an
//!   alert with the same state machine, templates, state file and
//!   notifications. The queries run without the state lock, so ingest
//!   never waits for them. Without a store they are loaded and reported
//!   as [`PERIODIC_NOT_EVALUATED`].
//!
//! Simplifications: notifiers are called on the thread that observed or
//! evaluated (the service's dispatcher only queues there; the outbox
//! delivers on its own thread). Docs chapter 5.
//!
//! # Layout
//!
//! - `mod.rs` — options, errors, the engine's state, `new`, the tick
//!   (`advance`), notification, and `common::AlertEngine`;
//! - `streaming.rs` — `ingest`: samples into windows, alerts stepped;
//! - `periodic.rs` — periodic groups, and query answers applied to alerts;
//! - `restore.rs` — the state file written and read back, with the hold;
//! - `snapshot.rs` — the alerts read out for the API and the dispatcher.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use common::metric::STALE_NAN_BITS;
use common::{
    Alert, AlertEngine, AlertError, AlertRule, Clock, Evaluation, Labels, Metric, MetricWriter,
    Notifier, QueryEngine, QueryError, WriteBarrier,
};
use parking_lot::Mutex;
use thiserror::Error;

use crate::evaluation::periodic::{
    DEFAULT_GROUP_INTERVAL, DEFAULT_PERIODIC_BUDGET, GroupStatus, PeriodicEvaluator, PeriodicGroup,
    PeriodicRule, PeriodicStats, RuleHealth, RuleQueryLimits, RuleResult,
};
use crate::evaluation::recording::{DEFAULT_RECORD_SETTLE_TIMEOUT, RecordingSink};
use crate::evaluation::rule_index::RuleIndex;
use crate::evaluation::state::{AlertState, AlertStatus, Observation, Timing, Transition};
use crate::evaluation::store::{PersistedAlert, StateStore, StoreError};
use crate::evaluation::window::{Inserted, SlidingWindow};
use crate::notification::{AlertEvent, TransitionNotifier, approximate_seed_rule};
use crate::rules::{
    Rule, RuleExpr, RuleFileError, RuleSet, Scope, StreamingCondition, WindowFunction,
};

mod periodic;
mod restore;
mod snapshot;
mod streaming;

pub use snapshot::AlertSnapshot;

use periodic::{periodic_groups, periodic_tracked};
use restore::restore_alerts;
use streaming::{forget_if_resolved_long_ago, observe, step};

/// How often the pipeline calls `evaluate` by default: the granularity of
/// `for`, `keep_firing_for` and "the window emptied" (sample-driven
/// transitions do not wait for it).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a resolved alert stays visible (and in the state file):
/// Prometheus' 15 minutes.
pub const DEFAULT_RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// How far ahead of the clock a sample may be: further, and its timestamp
/// would drag every window of its series into the future, expiring all
/// the real data. Such samples are ignored and counted.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(10 * 60);

/// The message periodic rules are reported with when the engine has no
/// query slot to ask ([`EngineOptions::query`] is `None`).
pub const PERIODIC_NOT_EVALUATED: &str =
    "periodic rules need a query slot that answers instant queries, not evaluated";

/// How the engine runs.
#[derive(Clone)]
pub struct EngineOptions {
    /// Where "now" comes from (start time, the future-sample guard).
    pub clock: Arc<dyn Clock>,
    /// How often `evaluate` should be called.
    pub interval: Duration,
    /// The alert state file; `None` keeps state in memory only.
    pub state_file: Option<PathBuf>,
    /// Channels told about firing and resolved transitions.
    pub transition_notifiers: Vec<Arc<dyn TransitionNotifier>>,
    /// How long resolved alerts are kept.
    pub resolved_retention: Duration,
    /// How far ahead of the clock a sample may be.
    pub max_future: Duration,
    /// The query slot periodic rules are asked through; `None`: periodic
    /// rules are loaded and reported, not evaluated.
    pub query: Option<Arc<dyn QueryEngine>>,
    /// The limits of one periodic rule's query.
    pub query_limits: RuleQueryLimits,
    /// The interval of a group without `interval:`.
    pub default_group_interval: Duration,
    /// How long one `evaluate` may spend starting periodic groups before
    /// leaving the rest for the next tick (`periodic.rs`).
    pub periodic_budget: Duration,
    /// Where recording rules write their samples (the pipeline's queue);
    /// `None`: recording rules are loaded and reported, not evaluated.
    pub writer: Option<Arc<dyn MetricWriter>>,
    /// Settled before a later rule of a group reads an earlier record
    /// (`recording.rs`); `None`: never wait.
    pub barrier: Option<Arc<WriteBarrier>>,
    /// How long one such wait may take.
    pub record_settle_timeout: Duration,
}

impl EngineOptions {
    /// The defaults, on `clock`, without a state file.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        EngineOptions {
            clock,
            interval: DEFAULT_INTERVAL,
            state_file: None,
            transition_notifiers: Vec::new(),
            resolved_retention: DEFAULT_RESOLVED_RETENTION,
            max_future: DEFAULT_MAX_FUTURE,
            query: None,
            query_limits: RuleQueryLimits::default(),
            default_group_interval: DEFAULT_GROUP_INTERVAL,
            periodic_budget: DEFAULT_PERIODIC_BUDGET,
            writer: None,
            barrier: None,
            record_settle_timeout: DEFAULT_RECORD_SETTLE_TIMEOUT,
        }
    }

    /// Writes recording rules' samples through `writer`, waiting on
    /// `barrier` before a later rule reads them.
    pub fn with_writer(
        mut self,
        writer: Arc<dyn MetricWriter>,
        barrier: Option<Arc<WriteBarrier>>,
    ) -> Self {
        self.writer = Some(writer);
        self.barrier = barrier;
        self
    }

    /// Evaluates periodic rules through `query`.
    pub fn with_query(mut self, query: Arc<dyn QueryEngine>) -> Self {
        self.query = Some(query);
        self
    }

    /// Persists alert state in `path`.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Adds a channel for firing and resolved transitions.
    pub fn with_transition_notifier(mut self, notifier: Arc<dyn TransitionNotifier>) -> Self {
        self.transition_notifiers.push(notifier);
        self
    }

    /// Sets the evaluation interval.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// Why the engine could not start.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The rules are invalid.
    #[error(transparent)]
    Rules(#[from] RuleFileError),
    /// The state file is unreadable (the engine refuses to start empty).
    #[error(transparent)]
    State(#[from] StoreError),
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Samples observed.
    pub samples: u64,
    /// (sample, rule) pairs evaluated: the engine's unit of work.
    pub rule_checks: u64,
    /// Samples older than their window's start, ignored.
    pub too_old: u64,
    /// Samples too far ahead of the clock, ignored.
    pub from_the_future: u64,
    /// NaN or infinite samples taken into windows, with Prometheus'
    /// arithmetic (a NaN in a window makes a condition on its sum false).
    pub not_finite: u64,
    /// Stale markers that ended a series for a plain-selector rule.
    pub stale_markers: u64,
    /// Notifications a channel refused.
    pub notify_failures: u64,
    /// State-file writes that failed (retried with the next batch).
    pub persist_failures: u64,
    /// Periodic rules: queries run, failed, group slots missed, ticks
    /// that left a due group for the next one.
    pub periodic: PeriodicStats,
}

/// What one `ingest` or `advance` produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every transition, in order (Pending and Cancelled included).
    pub events: Vec<AlertEvent>,
    /// `advance` only: the alerts firing now, as the seed's `Alert`, in
    /// rule order then series order.
    pub firing: Vec<Alert>,
    /// `advance` only: the rules that could not be evaluated.
    pub errors: Vec<AlertError>,
}

struct CompiledRule {
    rule: Rule,
    condition: Option<StreamingCondition>,
    timing: Timing,
    /// The seed's form when exact (for `rules()`).
    seed: Option<AlertRule>,
    /// The seed's form, approximated when needed (for seed notifiers).
    approximate_seed: Option<AlertRule>,
}

/// One alert's window and state machine.
struct Tracked {
    window: SlidingWindow,
    status: AlertStatus,
    /// Restored from the state file: until this time the window is cold
    /// and may not clear the alert.
    hold_until_ms: Option<i64>,
}

#[derive(Default)]
struct RuleRuntime {
    alerts: HashMap<Labels, Tracked>,
    /// For [`Scope::AllSeries`]: a small id per series, telling apart
    /// samples of different series at the same time in the shared window.
    sources: HashMap<Labels, u32>,
}

struct Runtime {
    rules: Vec<RuleRuntime>,
    /// State changed since the last successful save.
    dirty: bool,
}

/// What one `ingest` call did, tallied without touching shared counters.
#[derive(Default)]
struct BatchTally {
    events: Vec<AlertEvent>,
    changed: bool,
    rule_checks: u64,
    too_old: u64,
    not_finite: u64,
    stale_markers: u64,
    from_the_future: u64,
}

#[derive(Default)]
struct Counters {
    samples: AtomicU64,
    rule_checks: AtomicU64,
    too_old: AtomicU64,
    from_the_future: AtomicU64,
    not_finite: AtomicU64,
    stale_markers: AtomicU64,
    notify_failures: AtomicU64,
    persist_failures: AtomicU64,
}

/// The streaming alert engine; see the module notes.
pub struct StreamingAlertEngine {
    rule_set: RuleSet,
    rules: Vec<CompiledRule>,
    rule_index: RuleIndex,
    periodic: Vec<usize>,
    /// Runs the periodic rules when the engine has a store.
    periodic_evaluator: Option<PeriodicEvaluator>,
    /// The time of the last `advance`, for `/api/v1/rules`.
    last_advance_ms: AtomicI64,
    runtime: Mutex<Runtime>,
    notifiers: Vec<Arc<dyn Notifier>>,
    options: EngineOptions,
    store: Option<StateStore>,
    started_at_ms: i64,
    counters: Counters,
}

impl StreamingAlertEngine {
    /// An engine for `rule_set`, telling `notifiers` (the seed's kind:
    /// firing transitions only) and `options.transition_notifiers` (firing
    /// and resolved). Restores alert state from `options.state_file`.
    ///
    /// # Errors
    /// [`EngineError::State`] when the state file exists but cannot be
    /// read or parsed: the engine refuses to start rather than page every
    /// firing alert again.
    pub fn new(
        rule_set: RuleSet,
        notifiers: Vec<Arc<dyn Notifier>>,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let rules: Vec<CompiledRule> = rule_set
            .rules()
            .map(|rule| {
                let condition = rule.streaming().cloned();
                CompiledRule {
                    timing: Timing {
                        for_ms: rule.for_ms,
                        keep_firing_for_ms: rule.keep_firing_for_ms,
                    },
                    seed: rule.seed_rule(),
                    approximate_seed: condition.as_ref().map(approximate_seed_rule),
                    condition,
                    rule: rule.clone(),
                }
            })
            .collect();
        let rule_index = RuleIndex::new(
            rules
                .iter()
                .enumerate()
                .filter_map(|(index, compiled)| Some((index, compiled.condition.as_ref()?))),
        );
        let periodic: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, compiled)| compiled.condition.is_none())
            .map(|(index, _)| index)
            .collect();
        let started_at_ms = options.clock.now_ms();
        let store = options.state_file.clone().map(StateStore::new);
        let mut runtime = Runtime {
            rules: rules.iter().map(|_| RuleRuntime::default()).collect(),
            dirty: false,
        };
        let periodic_evaluator = options.query.clone().map(|query| {
            let evaluator = PeriodicEvaluator::new(
                query,
                options.query_limits,
                options.periodic_budget,
                periodic_groups(&rule_set, &rules, options.default_group_interval),
                started_at_ms,
            );
            match &options.writer {
                Some(writer) => evaluator.with_sink(RecordingSink {
                    writer: writer.clone(),
                    barrier: options.barrier.clone(),
                    settle_timeout: options.record_settle_timeout,
                }),
                None => evaluator,
            }
        });
        if let Some(store) = &store {
            let restored = store.load()?;
            restore_alerts(
                &rules,
                &mut runtime,
                restored,
                started_at_ms,
                periodic_evaluator.is_some(),
            );
        }
        Ok(StreamingAlertEngine {
            rule_set,
            rules,
            rule_index,
            periodic,
            periodic_evaluator,
            last_advance_ms: AtomicI64::new(i64::MIN),
            runtime: Mutex::new(runtime),
            notifiers,
            options,
            store,
            started_at_ms,
            counters: Counters::default(),
        })
    }

    /// An engine for the seed's rules, each over all series of its metric
    /// together as phase0 computes it, so swapping engines changes when
    /// alerts fire and how often they page, not whether they fire.
    ///
    /// # Errors
    /// [`EngineError::Rules`] for an invalid or repeated rule, otherwise as
    /// [`new`](Self::new).
    pub fn from_seed_rules(
        rules: &[AlertRule],
        notifiers: Vec<Arc<dyn Notifier>>,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        Self::new(RuleSet::from_seed_rules(rules)?, notifiers, options)
    }

    /// The rules, as loaded.
    pub fn rule_set(&self) -> &RuleSet {
        &self.rule_set
    }

    /// When the engine started (the clock's time at construction).
    pub fn started_at_ms(&self) -> i64 {
        self.started_at_ms
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EngineStats {
            samples: load(&c.samples),
            rule_checks: load(&c.rule_checks),
            too_old: load(&c.too_old),
            from_the_future: load(&c.from_the_future),
            not_finite: load(&c.not_finite),
            stale_markers: load(&c.stale_markers),
            notify_failures: load(&c.notify_failures),
            persist_failures: load(&c.persist_failures),
            periodic: self
                .periodic_evaluator
                .as_ref()
                .map(PeriodicEvaluator::stats)
                .unwrap_or_default(),
        }
    }

    /// True when periodic rules are evaluated (the engine has a store).
    pub fn evaluates_periodic_rules(&self) -> bool {
        self.periodic_evaluator.is_some()
    }

    /// The last evaluation of periodic rule `key` (`group/alert`); `None`
    /// for a streaming rule, an unknown one, or without a store.
    pub fn rule_health(&self, key: &str) -> Option<RuleHealth> {
        let evaluator = self.periodic_evaluator.as_ref()?;
        let index = self.rules.iter().position(|r| r.rule.key() == key)?;
        evaluator.rule_health(index)
    }

    /// True when recording rules are evaluated (a query slot to ask and a
    /// writer to write through).
    pub fn evaluates_recording_rules(&self) -> bool {
        self.periodic_evaluator
            .as_ref()
            .is_some_and(PeriodicEvaluator::records)
    }

    /// The last evaluation of recording rule `position` (its index in
    /// `RuleGroup::recording`) of group `group`; `None` when the engine
    /// does not evaluate recording rules.
    pub fn recording_health(&self, group: &str, position: usize) -> Option<RuleHealth> {
        self.periodic_evaluator
            .as_ref()?
            .recording_health(group, position)
    }

    /// The schedule and last evaluation of group `name`, if it has
    /// periodic rules and the engine evaluates them.
    pub fn group_status(&self, name: &str) -> Option<GroupStatus> {
        self.periodic_evaluator.as_ref()?.group_status(name)
    }

    /// The interval periodic rules of group `name` run at: its
    /// `interval:`, else [`EngineOptions::default_group_interval`].
    pub fn group_interval_ms(&self, name: &str) -> Option<i64> {
        let group = self.rule_set.groups.iter().find(|g| g.name == name)?;
        Some(
            group
                .interval_ms
                .unwrap_or_else(|| duration_ms(self.options.default_group_interval)),
        )
    }

    /// The time of the last `advance` (every streaming rule is brought up
    /// to date then), if any.
    pub fn last_advance_ms(&self) -> Option<i64> {
        let ms = self.last_advance_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then_some(ms)
    }

    /// Advances every window to `now_ms`, steps every alert, runs the
    /// periodic groups that are due, notifies, and reports what is firing
    /// and which rules failed (or, without a store, were not evaluated).
    pub fn advance(&self, now_ms: i64) -> Outcome {
        let mut outcome = Outcome::default();
        let retention_ms = duration_ms(self.options.resolved_retention);
        self.last_advance_ms.fetch_max(now_ms, Ordering::Relaxed);
        // (rule index, series, alert): sorted at the end, so streaming and
        // periodic alerts come out in rule order then series order.
        let mut firing: Vec<(usize, Labels, Alert)> = Vec::new();
        {
            let mut runtime = self.runtime.lock();
            let mut changed = false;
            for (index, compiled) in self.rules.iter().enumerate() {
                let Some(condition) = &compiled.condition else {
                    continue;
                };
                let Some(rule_runtime) = runtime.rules.get_mut(index) else {
                    continue;
                };
                for (series, tracked) in rule_runtime.alerts.iter_mut() {
                    tracked.window.advance_to(now_ms);
                    let at = tracked.window.now_ms().max(now_ms);
                    let observation = observe(condition, &tracked.window);
                    if let Some(transition) =
                        step(tracked, at, observation, compiled.timing, &mut changed)
                    {
                        outcome
                            .events
                            .push(self.event(compiled, series, tracked, transition));
                    }
                    changed |= forget_if_resolved_long_ago(tracked, now_ms, retention_ms);
                    if tracked.status.state == AlertState::Firing {
                        firing.push((
                            index,
                            series.clone(),
                            self.seed_alert(compiled, tracked, now_ms),
                        ));
                    }
                }
                rule_runtime.alerts.retain(|_, tracked| {
                    !(tracked.window.is_empty() && tracked.status.state == AlertState::Inactive)
                });
                if rule_runtime.alerts.is_empty() {
                    rule_runtime.sources.clear();
                }
            }
            if changed {
                runtime.dirty = true;
            }
            self.persist(&mut runtime, now_ms);
        }
        // The streaming transitions go out before any periodic query runs:
        // a slow query must not hold back a page that is already decided.
        self.deliver(&outcome.events);
        let delivered = outcome.events.len();
        match &self.periodic_evaluator {
            // Queries run without the state lock (ingest goes on), then
            // their answers are applied under it in one short step.
            Some(evaluator) => {
                let results = evaluator.run_due(now_ms);
                let mut runtime = self.runtime.lock();
                let mut changed = false;
                for result in results {
                    self.apply_periodic(&mut runtime, result, &mut outcome, &mut changed);
                }
                for &index in &self.periodic {
                    let Some(rule_runtime) = runtime.rules.get_mut(index) else {
                        continue;
                    };
                    let compiled = &self.rules[index];
                    for (series, tracked) in rule_runtime.alerts.iter_mut() {
                        // Resolved alerts age out on every tick, not only
                        // when their (maybe hourly) group runs.
                        changed |= forget_if_resolved_long_ago(tracked, now_ms, retention_ms);
                        if tracked.status.state == AlertState::Firing {
                            firing.push((
                                index,
                                series.clone(),
                                self.seed_alert(compiled, tracked, now_ms),
                            ));
                        }
                    }
                    rule_runtime
                        .alerts
                        .retain(|_, tracked| tracked.status.state != AlertState::Inactive);
                }
                if changed {
                    runtime.dirty = true;
                }
                self.persist(&mut runtime, now_ms);
            }
            None => {
                for &index in &self.periodic {
                    let rule = &self.rules[index].rule;
                    outcome.errors.push(AlertError::Query {
                        rule: format!("{} ({})", rule.key(), rule.expr_text),
                        source: QueryError::Unsupported(PERIODIC_NOT_EVALUATED.to_string()),
                    });
                }
            }
        }
        self.deliver(&outcome.events[delivered..]);
        firing.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        outcome.firing = firing.into_iter().map(|(_, _, alert)| alert).collect();
        outcome
    }

    fn event(
        &self,
        compiled: &CompiledRule,
        series: &Labels,
        tracked: &Tracked,
        transition: Transition,
    ) -> AlertEvent {
        let rule = &compiled.rule;
        let status = &tracked.status;
        let value = status.last_value;
        let rule_labels = rule
            .labels
            .iter()
            .map(|(name, template)| (name.clone(), template.render(value, series)));
        let labels = Labels::from_pairs(
            series
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .chain(rule_labels)
                .chain([("alertname".to_string(), rule.name.clone())]),
        );
        AlertEvent {
            transition,
            rule: rule.key(),
            group: rule.group.clone(),
            alert_name: rule.name.clone(),
            metric: compiled
                .condition
                .as_ref()
                .map(|c| c.metric.clone())
                .unwrap_or_default(),
            series: series.clone(),
            labels,
            annotations: rule
                .annotations
                .iter()
                .map(|(name, template)| (name.clone(), template.render(value, series)))
                .collect(),
            condition: rule.describe_condition(),
            value,
            sample_count: status.last_sample_count,
            at_ms: status.last_observed_ms.unwrap_or(self.started_at_ms),
            active_at_ms: status.active_at_ms,
            fired_at_ms: status.fired_at_ms,
            seed_rule: compiled
                .approximate_seed
                .clone()
                .unwrap_or_else(|| seed_placeholder(rule)),
        }
    }

    fn seed_alert(&self, compiled: &CompiledRule, tracked: &Tracked, now_ms: i64) -> Alert {
        Alert {
            rule: compiled
                .approximate_seed
                .clone()
                .unwrap_or_else(|| seed_placeholder(&compiled.rule)),
            value: tracked.status.last_value.unwrap_or(f64::NAN),
            sample_count: tracked.status.last_sample_count,
            at_ms: now_ms,
        }
    }

    /// Tells every channel about the notifying transitions. Failures are
    /// logged and counted, never returned: one bad channel must not stop
    /// the others.
    fn deliver(&self, events: &[AlertEvent]) {
        for event in events.iter().filter(|e| e.transition.notifies()) {
            if event.transition == Transition::Firing {
                let alert = event.to_seed_alert();
                for notifier in &self.notifiers {
                    if let Err(e) = notifier.notify(&alert) {
                        self.count_notify_failure(&e);
                    }
                }
            }
            for notifier in &self.options.transition_notifiers {
                if let Err(e) = notifier.notify_transition(event) {
                    self.count_notify_failure(&e);
                }
            }
        }
    }

    fn count_notify_failure(&self, error: &common::NotifyError) {
        self.counters
            .notify_failures
            .fetch_add(1, Ordering::Relaxed);
        common::say_err!("[Alerting] {error}");
    }
}

impl AlertEngine for StreamingAlertEngine {
    /// The rules the seed's type can say exactly (an `avg_over_time` with
    /// `>` or `<`); the others are in [`StreamingAlertEngine::rule_set`].
    fn rules(&self) -> Vec<AlertRule> {
        self.rules.iter().filter_map(|r| r.seed.clone()).collect()
    }

    fn interval(&self) -> Duration {
        self.options.interval
    }

    /// Advances time to `now_ms`. `fired` lists the alerts in the Firing
    /// state — the trait's "condition holds", read through the state
    /// machine: an alert still in `for` is not listed, one kept firing by
    /// `keep_firing_for` is. Notifications went out at the transitions,
    /// not here; `errors` lists the periodic rules that failed in this
    /// call (or, without a store, every periodic rule).
    fn evaluate(&self, now_ms: i64) -> Evaluation {
        let outcome = self.advance(now_ms);
        Evaluation {
            fired: outcome.firing,
            errors: outcome.errors,
        }
    }

    fn notify_failures(&self) -> u64 {
        self.counters.notify_failures.load(Ordering::Relaxed)
    }

    fn observe(&self, metrics: &[Metric]) {
        self.ingest(metrics);
    }

    fn name(&self) -> &'static str {
        "craft5"
    }
}

/// For a rule the seed's type cannot describe at all (periodic rules): its
/// name, nothing else.
fn seed_placeholder(rule: &Rule) -> AlertRule {
    AlertRule::new(
        rule.name.clone(),
        common::Condition::Above,
        f64::NAN,
        Duration::ZERO,
    )
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
