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
//! Simplifications, each for a later increment: notifiers are called on the
//! thread that observed or evaluated (the outbox moves delivery to its own
//! thread, with retries); a crash between the state write and the delivery
//! loses that notification (the outbox records it in the same write);
//! periodic rules — expressions a stream cannot answer — are loaded and
//! reported, not evaluated (they need craft 4's evaluator). Docs chapter 5.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{
    Alert, AlertEngine, AlertError, AlertRule, Clock, Evaluation, Labels, Metric, Notifier,
    QueryError,
};
use parking_lot::Mutex;
use thiserror::Error;

use crate::notification::{AlertEvent, TransitionNotifier, approximate_seed_rule};
use crate::rules::{Rule, RuleFileError, RuleSet, Scope, StreamingCondition, WindowFunction};
use crate::state::{AlertState, AlertStatus, Observation, Timing, Transition};
use crate::store::{PersistedAlert, StateStore, StoreError};
use crate::window::{Inserted, SlidingWindow};

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

/// The message periodic rules are reported with in this increment.
pub const PERIODIC_NOT_EVALUATED: &str =
    "periodic rules need the query engine (craft 4), not evaluated yet";

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
        }
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
    /// NaN or infinite samples, ignored.
    pub not_finite: u64,
    /// Notifications a channel refused.
    pub notify_failures: u64,
    /// State-file writes that failed (retried with the next batch).
    pub persist_failures: u64,
}

/// One alert as the API (and tests) see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSnapshot {
    /// The rule's key.
    pub rule: String,
    /// The series (empty for a rule over all series).
    pub series: Labels,
    /// Its state machine.
    pub status: AlertStatus,
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
    from_the_future: u64,
}

#[derive(Default)]
struct Counters {
    samples: AtomicU64,
    rule_checks: AtomicU64,
    too_old: AtomicU64,
    from_the_future: AtomicU64,
    not_finite: AtomicU64,
    notify_failures: AtomicU64,
    persist_failures: AtomicU64,
}

/// The streaming alert engine; see the module notes.
pub struct StreamingAlertEngine {
    rule_set: RuleSet,
    rules: Vec<CompiledRule>,
    by_metric: HashMap<String, Vec<usize>>,
    periodic: Vec<usize>,
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
        let mut by_metric: HashMap<String, Vec<usize>> = HashMap::new();
        let mut periodic = Vec::new();
        for (index, compiled) in rules.iter().enumerate() {
            match &compiled.condition {
                Some(condition) => by_metric
                    .entry(condition.metric.clone())
                    .or_default()
                    .push(index),
                None => periodic.push(index),
            }
        }
        let started_at_ms = options.clock.now_ms();
        let store = options.state_file.clone().map(StateStore::new);
        let mut runtime = Runtime {
            rules: rules.iter().map(|_| RuleRuntime::default()).collect(),
            dirty: false,
        };
        if let Some(store) = &store {
            let restored = store.load()?;
            restore(&rules, &mut runtime, restored, started_at_ms);
        }
        Ok(StreamingAlertEngine {
            rule_set,
            rules,
            by_metric,
            periodic,
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
            notify_failures: load(&c.notify_failures),
            persist_failures: load(&c.persist_failures),
        }
    }

    /// Every alert that is not inactive, in rule order then series order.
    pub fn alerts(&self) -> Vec<AlertSnapshot> {
        let runtime = self.runtime.lock();
        let mut snapshots = Vec::new();
        for (compiled, rule_runtime) in self.rules.iter().zip(&runtime.rules) {
            let mut alerts: Vec<_> = rule_runtime
                .alerts
                .iter()
                .filter(|(_, tracked)| tracked.status.state != AlertState::Inactive)
                .map(|(series, tracked)| AlertSnapshot {
                    rule: compiled.rule.key(),
                    series: series.clone(),
                    status: tracked.status.clone(),
                })
                .collect();
            alerts.sort_by(|a, b| a.series.cmp(&b.series));
            snapshots.extend(alerts);
        }
        snapshots
    }

    /// Every alert that is not inactive as an event whose transition names
    /// its state (Pending, Firing or Resolved), with its labels and
    /// annotations rendered and `at_ms` the time it entered that state:
    /// what the API lists, and what the router is given after a restart
    /// ([`crate::routing::Dispatcher::reconcile`]).
    pub fn current_events(&self) -> Vec<AlertEvent> {
        let runtime = self.runtime.lock();
        let mut events = Vec::new();
        for (compiled, rule_runtime) in self.rules.iter().zip(&runtime.rules) {
            let mut alerts: Vec<_> = rule_runtime.alerts.iter().collect();
            alerts.sort_by(|a, b| a.0.cmp(b.0));
            for (series, tracked) in alerts {
                let status = &tracked.status;
                let (transition, at) = match status.state {
                    AlertState::Inactive => continue,
                    AlertState::Pending => (Transition::Pending, status.active_at_ms),
                    AlertState::Firing => (Transition::Firing, status.fired_at_ms),
                    AlertState::Resolved => (Transition::Resolved, status.resolved_at_ms),
                };
                let mut event = self.event(compiled, series, tracked, transition);
                if let Some(at) = at {
                    event.at_ms = at;
                }
                events.push(event);
            }
        }
        events
    }

    /// Feeds stored samples through the streaming rules; notifies and
    /// returns the transitions they caused.
    pub fn ingest(&self, metrics: &[Metric]) -> Outcome {
        let clock_now = self.options.clock.now_ms();
        let latest_allowed = clock_now.saturating_add(duration_ms(self.options.max_future));
        let mut batch = BatchTally::default();
        {
            let mut runtime = self.runtime.lock();
            for metric in metrics {
                let Some(rule_indexes) = self.by_metric.get(metric.name.as_str()) else {
                    continue;
                };
                if metric.timestamp_ms > latest_allowed {
                    batch.from_the_future += 1;
                    continue;
                }
                for &index in rule_indexes {
                    self.ingest_one(&mut runtime, index, metric, &mut batch);
                }
            }
            if batch.changed {
                runtime.dirty = true;
            }
            self.persist(&mut runtime, clock_now);
        }
        // Counted once per batch, not per sample: these atomics would
        // otherwise be the hottest shared writes in the engine.
        let counters = &self.counters;
        counters
            .samples
            .fetch_add(metrics.len() as u64, Ordering::Relaxed);
        counters
            .rule_checks
            .fetch_add(batch.rule_checks, Ordering::Relaxed);
        counters.too_old.fetch_add(batch.too_old, Ordering::Relaxed);
        counters
            .not_finite
            .fetch_add(batch.not_finite, Ordering::Relaxed);
        counters
            .from_the_future
            .fetch_add(batch.from_the_future, Ordering::Relaxed);
        self.deliver(&batch.events);
        Outcome {
            events: batch.events,
            ..Outcome::default()
        }
    }

    /// Advances every window to `now_ms`, steps every alert, notifies, and
    /// reports what is firing and which rules were not evaluated.
    pub fn advance(&self, now_ms: i64) -> Outcome {
        let mut outcome = Outcome::default();
        let retention_ms = duration_ms(self.options.resolved_retention);
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
                let mut firing: Vec<(Labels, Alert)> = Vec::new();
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
                    if tracked.status.state == AlertState::Resolved
                        && tracked
                            .status
                            .resolved_at_ms
                            .is_some_and(|resolved| now_ms.saturating_sub(resolved) >= retention_ms)
                    {
                        tracked.status = AlertStatus::inactive();
                        changed = true;
                    }
                    if tracked.status.state == AlertState::Firing {
                        firing.push((series.clone(), self.seed_alert(compiled, tracked, now_ms)));
                    }
                }
                rule_runtime.alerts.retain(|_, tracked| {
                    !(tracked.window.is_empty() && tracked.status.state == AlertState::Inactive)
                });
                if rule_runtime.alerts.is_empty() {
                    rule_runtime.sources.clear();
                }
                firing.sort_by(|a, b| a.0.cmp(&b.0));
                outcome
                    .firing
                    .extend(firing.into_iter().map(|(_, alert)| alert));
            }
            if changed {
                runtime.dirty = true;
            }
            self.persist(&mut runtime, now_ms);
        }
        for &index in &self.periodic {
            let rule = &self.rules[index].rule;
            outcome.errors.push(AlertError::Query {
                rule: format!("{} ({})", rule.key(), rule.expr_text),
                source: QueryError::Unsupported(PERIODIC_NOT_EVALUATED.to_string()),
            });
        }
        self.deliver(&outcome.events);
        outcome
    }

    fn ingest_one(
        &self,
        runtime: &mut Runtime,
        index: usize,
        metric: &Metric,
        batch: &mut BatchTally,
    ) {
        let Some(compiled) = self.rules.get(index) else {
            return;
        };
        let Some(condition) = &compiled.condition else {
            return;
        };
        if !condition.selects(&metric.labels) {
            return;
        }
        let Some(rule_runtime) = runtime.rules.get_mut(index) else {
            return;
        };
        batch.rule_checks += 1;
        // Every series of an all-series rule shares one alert, keyed by no
        // labels (`Labels::empty()` does not allocate).
        let pooled_key = Labels::empty();
        let (key, source) = match compiled.rule.scope {
            Scope::PerSeries => (&metric.labels, 0),
            Scope::AllSeries => {
                let next = u32::try_from(rule_runtime.sources.len()).unwrap_or(u32::MAX);
                let source = match rule_runtime.sources.get(&metric.labels) {
                    Some(source) => *source,
                    None => {
                        rule_runtime.sources.insert(metric.labels.clone(), next);
                        next
                    }
                };
                (&pooled_key, source)
            }
        };
        if !rule_runtime.alerts.contains_key(key) {
            rule_runtime.alerts.insert(
                key.clone(),
                Tracked {
                    window: SlidingWindow::new(condition.range_ms),
                    status: AlertStatus::inactive(),
                    hold_until_ms: None,
                },
            );
        }
        let Some(tracked) = rule_runtime.alerts.get_mut(key) else {
            return;
        };
        match tracked
            .window
            .insert(metric.timestamp_ms, source, metric.value)
        {
            Inserted::TooOld => {
                batch.too_old += 1;
                return;
            }
            Inserted::NotFinite => {
                batch.not_finite += 1;
                return;
            }
            Inserted::Appended | Inserted::Late | Inserted::Replaced => {}
        }
        let at = tracked.window.now_ms();
        let observation = observe(condition, &tracked.window);
        if let Some(transition) = step(
            tracked,
            at,
            observation,
            compiled.timing,
            &mut batch.changed,
        ) {
            batch
                .events
                .push(self.event(compiled, key, tracked, transition));
        }
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

    /// Writes the state file when something changed. A failure is loud and
    /// counted but does not stop alerting: paging matters more than the
    /// file, and the next batch tries again.
    fn persist(&self, runtime: &mut Runtime, now_ms: i64) {
        if !runtime.dirty {
            return;
        }
        let Some(store) = &self.store else {
            runtime.dirty = false;
            return;
        };
        let mut alerts = Vec::new();
        for (compiled, rule_runtime) in self.rules.iter().zip(&runtime.rules) {
            for (series, tracked) in &rule_runtime.alerts {
                if tracked.status.state != AlertState::Inactive {
                    alerts.push(PersistedAlert {
                        rule: compiled.rule.key(),
                        series: series.clone(),
                        status: tracked.status.clone(),
                    });
                }
            }
        }
        // A stable order keeps the file diffable between saves.
        alerts.sort_by(|a, b| (&a.rule, &a.series).cmp(&(&b.rule, &b.series)));
        match store.save(&alerts, now_ms) {
            Ok(()) => runtime.dirty = false,
            Err(e) => {
                self.counters
                    .persist_failures
                    .fetch_add(1, Ordering::Relaxed);
                common::say_err!(
                    "[Alerting] {e}; alert state not saved, retrying with the next batch"
                );
            }
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
    /// not here; `errors` lists the periodic rules, not evaluated yet.
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

/// The condition's verdict on a window.
fn observe(condition: &StreamingCondition, window: &SlidingWindow) -> Observation {
    let Some(aggregates) = window.aggregates() else {
        return Observation::NoData;
    };
    let value = match condition.function {
        WindowFunction::Last => aggregates.last,
        WindowFunction::Avg => aggregates.avg(),
        WindowFunction::Min => aggregates.min,
        WindowFunction::Max => aggregates.max,
        WindowFunction::Sum => aggregates.sum,
        WindowFunction::Count => aggregates.count as f64,
    };
    let samples = aggregates.count;
    if condition.comparison.holds(value, condition.threshold) {
        Observation::Holds { value, samples }
    } else {
        Observation::Clear { value, samples }
    }
}

/// Steps a tracked alert, honouring the restart hold: until the hold ends,
/// only an observation that *holds* is taken (evidence is evidence); one
/// that does not is the cold window's ignorance and is skipped.
///
/// Sets `changed` when something worth persisting changed: a transition,
/// or the `keep_firing_for` clock starting or stopping (without it, a
/// restart during `keep_firing_for` would restart that clock).
fn step(
    tracked: &mut Tracked,
    at: i64,
    observation: Observation,
    timing: Timing,
    changed: &mut bool,
) -> Option<Transition> {
    if let Some(until) = tracked.hold_until_ms {
        if at < until && !observation.holds() {
            return None;
        }
        if at >= until {
            tracked.hold_until_ms = None;
        }
    }
    let keep_firing_since = tracked.status.keep_firing_since_ms;
    let transition = tracked.status.step(at, observation, timing);
    if transition.is_some() || tracked.status.keep_firing_since_ms != keep_firing_since {
        *changed = true;
    }
    transition
}

fn restore(
    rules: &[CompiledRule],
    runtime: &mut Runtime,
    restored: Vec<PersistedAlert>,
    started_at_ms: i64,
) {
    let by_key: HashMap<String, usize> = rules
        .iter()
        .enumerate()
        .map(|(index, compiled)| (compiled.rule.key(), index))
        .collect();
    for alert in restored {
        if alert.status.state == AlertState::Inactive {
            continue;
        }
        let Some(&index) = by_key.get(&alert.rule) else {
            common::say_err!(
                "[Alerting] saved state of {} {} dropped: no such rule is loaded",
                alert.rule,
                alert.series
            );
            runtime.dirty = true;
            continue;
        };
        let compiled = &rules[index];
        let Some(condition) = &compiled.condition else {
            common::say_err!(
                "[Alerting] saved state of {} dropped: the rule is periodic now",
                alert.rule
            );
            runtime.dirty = true;
            continue;
        };
        if compiled.rule.scope == Scope::AllSeries && !alert.series.is_empty() {
            runtime.dirty = true;
            continue;
        }
        if let Some(rule_runtime) = runtime.rules.get_mut(index) {
            rule_runtime.alerts.insert(
                alert.series,
                Tracked {
                    window: SlidingWindow::new(condition.range_ms),
                    status: alert.status,
                    hold_until_ms: Some(started_at_ms.saturating_add(condition.range_ms)),
                },
            );
        }
    }
}

/// For a rule the seed's type cannot describe at all (periodic rules, which
/// produce no events in this increment): its name, nothing else.
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
