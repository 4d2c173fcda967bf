//! Periodic rules: the expressions a stream cannot answer (`sum by (job)
//! (rate(x[5m])) > 1`, joins, `absent`), evaluated every group interval
//! through the query slot (`common::QueryEngine::instant`; craft 4 answers
//! it, phase0's scan cannot, and the platform refuses that pairing when
//! there are periodic rules).
//!
//! Streaming rules (`engine.rs`) look at one series' own recent samples and
//! are kept up to date on ingest. A rule that aggregates or joins series
//! needs the whole picture at one instant, so it is asked the way
//! Prometheus asks it: every `interval` of its group, an instant query at
//! the evaluation time (lookback 5 m), each result series one alert. This
//! file owns the *when* and the *asking*:
//!
//! - **schedule**: each group is due at `start + k × interval`; a tick
//!   evaluates a due group once, at the latest slot not after the tick
//!   (Prometheus' "evaluation time"), and counts the slots it skipped
//!   because the previous evaluation ran late (`missed`);
//! - **asking**: an instant query per rule, in file order (rules of a
//!   group run one after another, as in Prometheus), the result turned
//!   into (labels without `__name__`, value) pairs; two series that only
//!   differed by metric name are an error, as in Prometheus. A group's
//!   recording rules run in the same pass, in their place in the file
//!   (`recording.rs` writes their answers back through the queue);
//! - **health**: per rule `ok`/`err` with the last error, the last
//!   evaluation time and how long it took; per group the same, for
//!   `/api/v1/rules`.
//!
//! The engine applies the results to its state machines (same `for`,
//! `keep_firing_for`, templates, persistence and notifications as streaming
//! rules). The time budget, the choice this file makes: the pipeline calls
//! `evaluate(now)` every second, and that tick also drives the streaming
//! rules' `for` timers. Queries run *without* the engine's state lock, so
//! detection on ingest never waits for them; only the tick does. To bound
//! that wait, each query has its own timeout and sample budget
//! ([`RuleQueryLimits`]), and once a tick has spent its
//! [`EngineOptions::periodic_budget`](crate::EngineOptions) no further group
//! *starts*: the rest stay due and run at the next tick (oldest first), so
//! one slow group delays the others by a tick, not by its own length.
//! Docs chapter 5, `docs/src/alerting/periodic-and-inhibition.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{InstantQuery, Labels, QueryEngine, QueryError};
use parking_lot::Mutex;

use crate::evaluation::recording::{
    RECORDING_NOT_WRITTEN, RecordingCounters, RecordingSink, RecordingStats, RecordingStep,
};

/// A group without `interval:` is evaluated this often: Prometheus'
/// default `evaluation_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(60);

/// How long one rule's query may run. Far below craft 4's 2-minute API
/// default: an alert query that takes seconds is already late, and it
/// holds up the evaluation tick while it runs.
pub const DEFAULT_RULE_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most samples one rule's query may hold: a tenth of the API's budget,
/// for the same reason.
pub const DEFAULT_RULE_QUERY_MAX_SAMPLES: usize = 5_000_000;

/// How long one tick may spend starting periodic groups (see the module
/// notes).
pub const DEFAULT_PERIODIC_BUDGET: Duration = Duration::from_millis(500);

/// The limits one rule's query runs under; the query slot applies the
/// tighter of these and its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleQueryLimits {
    /// Most samples the query may hold.
    pub max_samples: usize,
    /// How long it may run.
    pub timeout: Duration,
}

impl Default for RuleQueryLimits {
    /// [`DEFAULT_RULE_QUERY_MAX_SAMPLES`], [`DEFAULT_RULE_QUERY_TIMEOUT`].
    fn default() -> Self {
        RuleQueryLimits {
            max_samples: DEFAULT_RULE_QUERY_MAX_SAMPLES,
            timeout: DEFAULT_RULE_QUERY_TIMEOUT,
        }
    }
}

/// A rule's health, Prometheus' three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// `unknown`, `ok` or `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// One periodic rule's last evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHealth {
    /// How it went.
    pub health: Health,
    /// The last failure's message (cleared by a success).
    pub last_error: Option<String>,
    /// The evaluation time of the last evaluation.
    pub last_evaluation_ms: Option<i64>,
    /// How long its query took.
    pub evaluation_duration: Duration,
}

impl Default for RuleHealth {
    fn default() -> Self {
        RuleHealth {
            health: Health::Unknown,
            last_error: None,
            last_evaluation_ms: None,
            evaluation_duration: Duration::ZERO,
        }
    }
}

/// One group's schedule and last evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    /// The group's name.
    pub name: String,
    /// Its interval.
    pub interval_ms: i64,
    /// The next slot it is due at.
    pub next_due_ms: i64,
    /// The evaluation time of its last evaluation.
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took (all its rules).
    pub evaluation_duration: Duration,
    /// Slots skipped because an evaluation ran late.
    pub missed: u64,
}

/// What one rule's query answered.
#[derive(Debug)]
pub struct RuleResult {
    /// The engine's rule index.
    pub rule: usize,
    /// The evaluation time.
    pub at_ms: i64,
    /// One (labels, value) per result series, or why there is none.
    pub result: Result<Vec<(Labels, f64)>, QueryError>,
}

/// A periodic rule as the evaluator holds it.
pub struct PeriodicRule {
    /// The engine's rule index.
    pub rule: usize,
    /// The expression, as the query slot is asked it (the parsed rule
    /// printed canonically).
    pub expr: String,
}

/// One rule a group evaluates, in file order.
pub enum PeriodicStep {
    /// A periodic alerting rule: its answer goes back to the engine.
    Alert(PeriodicRule),
    /// A recording rule: its answer is written into the pipeline
    /// (`recording.rs`).
    Record(RecordingStep),
}

/// A group of periodic and recording rules.
pub struct PeriodicGroup {
    /// The group's name.
    pub name: String,
    /// Its interval (> 0).
    pub interval_ms: i64,
    /// Its periodic alerting and recording rules, in file order: the order
    /// they are evaluated in.
    pub steps: Vec<PeriodicStep>,
}

struct Scheduled {
    name: String,
    steps: Arc<Vec<PeriodicStep>>,
    status: GroupStatus,
    /// Per step of the group, same order.
    health: Vec<RuleHealth>,
    /// Claimed by a tick that is evaluating it now.
    running: bool,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodicStats {
    /// Rule evaluations (queries run).
    pub evaluations: u64,
    /// Of those, failed.
    pub failures: u64,
    /// Group slots skipped because evaluation ran late.
    pub missed: u64,
    /// Ticks that left a due group for the next tick (budget spent).
    pub deferred: u64,
    /// Recording rules: evaluations, samples and stale markers written,
    /// writes refused, waits that ran out.
    pub recording: RecordingStats,
}

#[derive(Default)]
struct Counters {
    evaluations: AtomicU64,
    failures: AtomicU64,
    missed: AtomicU64,
    deferred: AtomicU64,
}

/// Schedules and runs the periodic groups; see the module notes.
pub struct PeriodicEvaluator {
    query: Arc<dyn QueryEngine>,
    limits: RuleQueryLimits,
    budget: Duration,
    groups: Mutex<Vec<Scheduled>>,
    counters: Counters,
    /// Where recording rules write; `None`: they are not evaluated.
    sink: Option<RecordingSink>,
    recording: RecordingCounters,
}

impl PeriodicEvaluator {
    /// An evaluator asking `query`, every group first due at `start_ms`.
    /// Groups without periodic or recording rules are left out.
    pub fn new(
        query: Arc<dyn QueryEngine>,
        limits: RuleQueryLimits,
        budget: Duration,
        groups: Vec<PeriodicGroup>,
        start_ms: i64,
    ) -> Self {
        let groups = groups
            .into_iter()
            .filter(|g| !g.steps.is_empty())
            .map(|group| Scheduled {
                status: GroupStatus {
                    name: group.name.clone(),
                    interval_ms: group.interval_ms.max(1),
                    next_due_ms: start_ms,
                    last_evaluation_ms: None,
                    evaluation_duration: Duration::ZERO,
                    missed: 0,
                },
                health: group.steps.iter().map(|_| RuleHealth::default()).collect(),
                name: group.name,
                steps: Arc::new(group.steps),
                running: false,
            })
            .collect();
        PeriodicEvaluator {
            query,
            limits,
            budget,
            groups: Mutex::new(groups),
            counters: Counters::default(),
            sink: None,
            recording: RecordingCounters::default(),
        }
    }

    /// Recording rules write into `sink`.
    pub fn with_sink(mut self, sink: RecordingSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// True when recording rules are evaluated (there is a sink).
    pub fn records(&self) -> bool {
        self.sink.is_some()
    }

    /// Evaluates the groups due at `now_ms`, oldest slot first, until the
    /// budget is spent (at least one group runs). Within a group the rules
    /// run in file order; a recording rule writes its samples (and waits
    /// for them to be stored when a later rule reads them) before the next
    /// rule runs. Returns every alerting rule's answer; the caller applies
    /// them.
    pub fn run_due(&self, now_ms: i64) -> Vec<RuleResult> {
        let started = Instant::now();
        let mut results = Vec::new();
        let mut ran_any = false;
        while let Some((index, at_ms, steps)) = self.claim(now_ms, ran_any, started) {
            ran_any = true;
            let group_started = Instant::now();
            let mut health = Vec::with_capacity(steps.len());
            for step in steps.iter() {
                match step {
                    PeriodicStep::Alert(rule) => {
                        let query_started = Instant::now();
                        let result = self.query(&rule.expr, at_ms);
                        let elapsed = query_started.elapsed();
                        self.counters.evaluations.fetch_add(1, Ordering::Relaxed);
                        health.push(match &result {
                            Ok(_) => RuleHealth {
                                health: Health::Ok,
                                last_error: None,
                                last_evaluation_ms: Some(at_ms),
                                evaluation_duration: elapsed,
                            },
                            Err(error) => {
                                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                                RuleHealth {
                                    health: Health::Err,
                                    last_error: Some(error.to_string()),
                                    last_evaluation_ms: Some(at_ms),
                                    evaluation_duration: elapsed,
                                }
                            }
                        });
                        results.push(RuleResult {
                            rule: rule.rule,
                            at_ms,
                            result,
                        });
                    }
                    PeriodicStep::Record(record) => match &self.sink {
                        Some(sink) => {
                            let outcome = record.evaluate(
                                &*self.query,
                                self.limits,
                                sink,
                                at_ms,
                                &self.recording,
                            );
                            self.counters.evaluations.fetch_add(1, Ordering::Relaxed);
                            if outcome.health == Health::Err {
                                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                            }
                            health.push(outcome);
                        }
                        None => health.push(RuleHealth {
                            last_error: Some(RECORDING_NOT_WRITTEN.to_string()),
                            ..RuleHealth::default()
                        }),
                    },
                }
            }
            let mut groups = self.groups.lock();
            if let Some(scheduled) = groups.get_mut(index) {
                scheduled.running = false;
                scheduled.health = health;
                scheduled.status.last_evaluation_ms = Some(at_ms);
                scheduled.status.evaluation_duration = group_started.elapsed();
            }
        }
        results
    }

    /// Picks the due group with the oldest slot and moves its schedule on,
    /// so a concurrent tick cannot evaluate it twice. `None` when nothing
    /// is due, or the budget is spent and something already ran.
    fn claim(
        &self,
        now_ms: i64,
        ran_any: bool,
        started: Instant,
    ) -> Option<(usize, i64, Arc<Vec<PeriodicStep>>)> {
        let mut groups = self.groups.lock();
        let (index, scheduled) = groups
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| !s.running && s.status.next_due_ms <= now_ms)
            .min_by_key(|(_, s)| s.status.next_due_ms)?;
        if ran_any && started.elapsed() >= self.budget {
            self.counters.deferred.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let status = &mut scheduled.status;
        let interval = status.interval_ms;
        // The latest slot not after now; the ones before it were missed.
        let behind = now_ms.saturating_sub(status.next_due_ms) / interval;
        let at_ms = status
            .next_due_ms
            .saturating_add(behind.saturating_mul(interval));
        let missed = u64::try_from(behind).unwrap_or(0);
        status.missed += missed;
        self.counters.missed.fetch_add(missed, Ordering::Relaxed);
        status.next_due_ms = at_ms.saturating_add(interval);
        scheduled.running = true;
        Some((index, at_ms, scheduled.steps.clone()))
    }

    /// One instant query, as alert instances: `__name__` dropped (as
    /// Prometheus drops it from alerts), a scalar taken as one series
    /// without labels (the query slot answers it so).
    fn query(&self, expr: &str, at_ms: i64) -> Result<Vec<(Labels, f64)>, QueryError> {
        let samples = self.query.instant(&InstantQuery {
            expr: expr.to_string(),
            time_ms: at_ms,
            max_samples: Some(self.limits.max_samples),
            timeout: Some(self.limits.timeout),
        })?;
        let series: Vec<(Labels, f64)> = samples
            .into_iter()
            .map(|sample| (sample.labels, sample.value))
            .collect();
        // Two alerts with one label set would be one alert flapping between
        // two values; Prometheus refuses the evaluation instead.
        let mut labels: Vec<&Labels> = series.iter().map(|(l, _)| l).collect();
        labels.sort();
        if let Some(pair) = labels.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(QueryError::Execution(format!(
                "vector contains metrics with the same labelset after dropping the metric name: {}",
                pair[0]
            )));
        }
        Ok(series)
    }

    /// The health of engine rule `rule`, if it is periodic.
    pub fn rule_health(&self, rule: usize) -> Option<RuleHealth> {
        let groups = self.groups.lock();
        groups.iter().find_map(|scheduled| {
            let position = scheduled
                .steps
                .iter()
                .position(|step| matches!(step, PeriodicStep::Alert(r) if r.rule == rule))?;
            scheduled.health.get(position).cloned()
        })
    }

    /// The health of recording rule `position` (its index among the
    /// group's recording rules) of group `group`.
    pub fn recording_health(&self, group: &str, position: usize) -> Option<RuleHealth> {
        let groups = self.groups.lock();
        let scheduled = groups.iter().find(|s| s.name == group)?;
        let step = scheduled
            .steps
            .iter()
            .position(|step| matches!(step, PeriodicStep::Record(r) if r.position == position))?;
        scheduled.health.get(step).cloned()
    }

    /// The status of group `name`, if it has periodic or recording rules.
    pub fn group_status(&self, name: &str) -> Option<GroupStatus> {
        let groups = self.groups.lock();
        groups
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.status.clone())
    }

    /// Counters since start.
    pub fn stats(&self) -> PeriodicStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeriodicStats {
            evaluations: load(&self.counters.evaluations),
            failures: load(&self.counters.failures),
            missed: load(&self.counters.missed),
            deferred: load(&self.counters.deferred),
            recording: self.recording.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use common::MetricStore;
    use common::testkit::metric;
    use craft4_query::engine::Craft4QueryEngine;
    use craft4_query::eval::EngineConfig;

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn evaluator(dir: &std::path::Path, groups: &[(&str, i64, &[&str])]) -> PeriodicEvaluator {
        let store: Arc<dyn MetricStore> =
            Arc::new(phase0::storage::JsonlFileStore::open(dir).unwrap());
        store
            .append(&[
                metric("up", &[("job", "a")], 1.0, T0 - 1_000),
                metric("down", &[("job", "a")], 1.0, T0 - 1_000),
            ])
            .unwrap();
        let mut next_rule = 0;
        let groups = groups
            .iter()
            .map(|(name, interval_ms, exprs)| PeriodicGroup {
                name: name.to_string(),
                interval_ms: *interval_ms,
                steps: exprs
                    .iter()
                    .map(|text| {
                        next_rule += 1;
                        PeriodicStep::Alert(PeriodicRule {
                            rule: next_rule - 1,
                            expr: text.to_string(),
                        })
                    })
                    .collect(),
            })
            .collect();
        PeriodicEvaluator::new(
            Arc::new(Craft4QueryEngine::new(store, EngineConfig::default())),
            RuleQueryLimits::default(),
            Duration::from_secs(60),
            groups,
            T0,
        )
    }

    #[test]
    fn groups_run_at_their_slots_and_count_missed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let periodic = evaluator(dir.path(), &[("g", 10_000, &["up > 0"])]);
        let first = periodic.run_due(T0 + 300);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].at_ms, T0, "evaluated at the slot, not the tick");
        assert!(periodic.run_due(T0 + 9_999).is_empty(), "not due yet");
        let late = periodic.run_due(T0 + 35_000);
        assert_eq!(late[0].at_ms, T0 + 30_000, "the latest slot");
        let status = periodic.group_status("g").unwrap();
        assert_eq!((status.missed, status.next_due_ms), (2, T0 + 40_000));
        assert_eq!(periodic.stats().evaluations, 2);
    }

    #[test]
    fn results_drop_the_name_and_refuse_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let periodic = evaluator(
            dir.path(),
            &[("g", 10_000, &["up > 0", "{__name__=~\"up|down\"} > 0"])],
        );
        let results = periodic.run_due(T0);
        let labels = Labels::from_pairs([("job", "a")]);
        assert_eq!(results[0].result.as_ref().unwrap(), &vec![(labels, 1.0)]);
        let error = results[1].result.as_ref().unwrap_err().to_string();
        assert!(error.contains("same labelset"), "{error}");
        let health = periodic.rule_health(1).unwrap();
        assert_eq!(health.health, Health::Err);
        assert_eq!(health.last_evaluation_ms, Some(T0));
        assert_eq!(periodic.rule_health(0).unwrap().health, Health::Ok);
        assert_eq!(periodic.stats().failures, 1);
    }

    #[test]
    fn a_spent_budget_defers_the_next_group_to_the_next_tick() {
        let dir = tempfile::tempdir().unwrap();
        let mut periodic = evaluator(
            dir.path(),
            &[("a", 10_000, &["up > 0"]), ("b", 10_000, &["up > 0"])],
        );
        periodic.budget = Duration::ZERO;
        assert_eq!(periodic.run_due(T0).len(), 1, "one group always runs");
        assert_eq!(periodic.stats().deferred, 1);
        let next = periodic.run_due(T0 + 1_000);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].at_ms, T0, "still its own slot");
    }
}
