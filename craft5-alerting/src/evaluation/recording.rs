//! Recording rules: an expression evaluated at each group interval whose
//! result is *stored* as a new series (`record: job:requests:rate1m`),
//! so dashboards and later rules read one cheap series instead of
//! re-running an expensive aggregation at every refresh.
//!
//! The evaluation is the periodic rules' (`periodic.rs`): an instant query
//! through the query slot at the group's evaluation time. What this file
//! adds is Prometheus' treatment of the answer and the way back in:
//!
//! - **naming**: every result series gets `__name__` = the record and the
//!   rule's labels, overriding its own (an empty value removes the label);
//!   a scalar is one series with the rule's labels only; two results that
//!   end up with one label set make the evaluation fail ("vector contains
//!   metrics with the same labelset after applying rule labels"), and a
//!   string or range result is an error too;
//! - **the way back in is the queue** (`common::MetricWriter`), like any
//!   write: a recorded sample is stored, observed by the streaming alert
//!   rules and the query cache, and durable as the queue promises. The
//!   price is the queue's latency, which the group pays back with the
//!   barrier below. A write the queue refuses (full, closed) is counted and
//!   becomes the rule's `lastError`, never silently dropped;
//! - **stale markers**: a series recorded at the previous evaluation and
//!   absent now gets Prometheus' stale NaN at the evaluation time, so a
//!   query stops seeing it at once instead of for the 5 m lookback. A
//!   failed evaluation writes nothing and keeps the previous set (an error
//!   is not evidence that the series ended), as in Prometheus;
//! - **ordering**: when a later rule of the same group may read this
//!   record (`rules::expr::may_read_metric`), the evaluation waits on the
//!   pipeline's `common::WriteBarrier` until the write is stored, so the
//!   later rule sees this evaluation's value — what Prometheus gets by
//!   appending to its head in the same evaluation. The wait is bounded
//!   ([`DEFAULT_RECORD_SETTLE_TIMEOUT`]); when it runs out the later rule
//!   may read the previous value, and the rule says so in `lastError`.
//!
//! Docs chapter 5, "Recording rules" in
//! `docs/src/alerting/periodic-and-inhibition.md`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::metric::STALE_NAN_BITS;
use common::{
    InstantQuery, InstantSample, Labels, Metric, MetricWriter, QueryEngine, QueryError,
    WriteBarrier,
};
use parking_lot::Mutex;

use crate::evaluation::periodic::{Health, RuleHealth, RuleQueryLimits};

/// How long a group waits for a record to be stored before a later rule
/// that reads it runs anyway. An idle pipeline settles within its consumer's
/// poll (100 ms); a backlog longer than this is an overloaded pipeline,
/// where reading the previous value beats stalling every group.
pub const DEFAULT_RECORD_SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The message recording rules are reported with when the engine has no
/// writer into the pipeline (a service built without
/// `ServiceOptions::with_writer`).
pub const RECORDING_NOT_WRITTEN: &str =
    "recording rules need a writer into the pipeline's queue, not evaluated";

/// Where recorded samples go, and how a group waits for them to be stored.
#[derive(Clone)]
pub struct RecordingSink {
    /// The pipeline's queue, as a writer.
    pub writer: Arc<dyn MetricWriter>,
    /// Settled before a later rule reads a record; `None`: never wait (no
    /// pipeline, or writes that are stored when accepted).
    pub barrier: Option<Arc<WriteBarrier>>,
    /// How long one wait may take.
    pub settle_timeout: Duration,
}

/// One recording rule as the evaluator holds it.
pub struct RecordingStep {
    /// Its index among its group's recording rules (`RuleGroup::recording`).
    pub position: usize,
    /// The metric name results are written under.
    pub record: String,
    /// The expression, as the query slot is asked it.
    pub expr: String,
    /// Set on every result, overriding; an empty value removes the label.
    pub labels: Vec<(String, String)>,
    /// A later rule of the group may read this record: wait for the write
    /// to be stored before going on.
    pub settle_after: bool,
    /// The label sets written at the last successful evaluation, for
    /// stale markers.
    previous: Mutex<HashSet<Labels>>,
}

impl RecordingStep {
    /// A step with nothing recorded yet.
    pub fn new(
        position: usize,
        record: String,
        expr: String,
        labels: Vec<(String, String)>,
        settle_after: bool,
    ) -> Self {
        RecordingStep {
            position,
            record,
            expr,
            labels,
            settle_after,
            previous: Mutex::new(HashSet::new()),
        }
    }

    /// One evaluation at `at_ms`: query, name, stale markers, write, and
    /// the wait when a later rule reads the record. Never panics; every
    /// failure is in the returned health and the counters.
    pub fn evaluate(
        &self,
        query: &dyn QueryEngine,
        limits: RuleQueryLimits,
        sink: &RecordingSink,
        at_ms: i64,
        counters: &RecordingCounters,
    ) -> RuleHealth {
        let started = Instant::now();
        let outcome = self.record_once(query, limits, sink, at_ms, counters);
        counters.evaluations.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        let (health, last_error) = match outcome {
            Ok(()) => (Health::Ok, None),
            Err(message) => (Health::Err, Some(message)),
        };
        RuleHealth {
            health,
            last_error,
            last_evaluation_ms: Some(at_ms),
            evaluation_duration: started.elapsed(),
        }
    }

    fn record_once(
        &self,
        query: &dyn QueryEngine,
        limits: RuleQueryLimits,
        sink: &RecordingSink,
        at_ms: i64,
        counters: &RecordingCounters,
    ) -> Result<(), String> {
        let samples = query
            .instant(&InstantQuery {
                expr: self.expr.clone(),
                time_ms: at_ms,
                max_samples: Some(limits.max_samples),
                timeout: Some(limits.timeout),
            })
            .map_err(|e| e.to_string())?;
        let mut batch = recorded_samples(&self.record, &self.labels, samples, at_ms)
            .map_err(|e| e.to_string())?;
        let returned: HashSet<Labels> = batch.iter().map(|m| m.labels.clone()).collect();
        let mut previous = self.previous.lock();
        let fresh = batch.len();
        batch.extend(
            previous
                .iter()
                .filter(|labels| !returned.contains(*labels))
                .map(|labels| Metric {
                    name: self.record.clone(),
                    labels: labels.clone(),
                    value: f64::from_bits(STALE_NAN_BITS),
                    timestamp_ms: at_ms,
                }),
        );
        let stale = batch.len() - fresh;
        if batch.is_empty() {
            return Ok(());
        }
        let total = batch.len();
        if let Err(error) = sink.writer.write(batch) {
            // All or nothing: none of it was written, so the previous set
            // still says what a reader sees, and the next evaluation marks
            // against it.
            counters
                .refused_samples
                .fetch_add(total as u64, Ordering::Relaxed);
            return Err(format!(
                "writing {total} samples of {} was refused: {error}",
                self.record
            ));
        }
        *previous = returned;
        drop(previous);
        counters.samples.fetch_add(fresh as u64, Ordering::Relaxed);
        counters
            .stale_markers
            .fetch_add(stale as u64, Ordering::Relaxed);
        if self.settle_after
            && let Some(barrier) = &sink.barrier
            && let Err(why) = barrier.settle(sink.settle_timeout)
        {
            counters.settle_timeouts.fetch_add(1, Ordering::Relaxed);
            return Err(format!(
                "recorded, but not stored within {:?}, so later rules of the group may read the previous value: {why}",
                sink.settle_timeout
            ));
        }
        Ok(())
    }
}

/// A query's answer as recorded samples: `__name__` = `record`, `labels`
/// set over each result's own (an empty value removes one), the sample at
/// `at_ms` (Prometheus stamps records with the evaluation time). A scalar
/// (one sample without name or labels, as the query slot gives it) is one
/// series with the rule's labels only.
///
/// # Errors
/// [`QueryError::Execution`] when two results end up with one label set.
pub fn recorded_samples(
    record: &str,
    labels: &[(String, String)],
    samples: Vec<InstantSample>,
    at_ms: i64,
) -> Result<Vec<Metric>, QueryError> {
    let metrics: Vec<Metric> = samples
        .into_iter()
        .map(|sample| {
            let own = sample
                .labels
                .iter()
                .filter(|(name, _)| !labels.iter().any(|(rule, _)| rule == name))
                .map(|(n, v)| (n.to_string(), v.to_string()));
            let set = labels
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .cloned();
            Metric {
                name: record.to_string(),
                labels: Labels::from_pairs(own.chain(set)),
                value: sample.value,
                timestamp_ms: at_ms,
            }
        })
        .collect();
    let mut seen: Vec<&Labels> = metrics.iter().map(|m| &m.labels).collect();
    seen.sort();
    if let Some(pair) = seen.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(QueryError::Execution(format!(
            "vector contains metrics with the same labelset after applying rule labels: {record}{}",
            pair[0]
        )));
    }
    Ok(metrics)
}

/// Recording counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingStats {
    /// Recording rule evaluations.
    pub evaluations: u64,
    /// Of those, failed (query, naming, refused write, barrier timeout).
    pub failures: u64,
    /// Samples written (stale markers not counted).
    pub samples: u64,
    /// Stale markers written.
    pub stale_markers: u64,
    /// Samples (and markers) the queue refused.
    pub refused_samples: u64,
    /// Waits for a record to be stored that ran out of time.
    pub settle_timeouts: u64,
}

/// The atomics behind [`RecordingStats`].
#[derive(Default)]
pub struct RecordingCounters {
    evaluations: AtomicU64,
    failures: AtomicU64,
    samples: AtomicU64,
    stale_markers: AtomicU64,
    refused_samples: AtomicU64,
    settle_timeouts: AtomicU64,
}

impl RecordingCounters {
    /// The counters now.
    pub fn stats(&self) -> RecordingStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RecordingStats {
            evaluations: load(&self.evaluations),
            failures: load(&self.failures),
            samples: load(&self.samples),
            stale_markers: load(&self.stale_markers),
            refused_samples: load(&self.refused_samples),
            settle_timeouts: load(&self.settle_timeouts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: Option<&str>, labels: &[(&str, &str)], value: f64) -> InstantSample {
        InstantSample {
            name: name.map(str::to_string),
            labels: Labels::from_pairs(labels.iter().copied()),
            value,
        }
    }

    fn rule_labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn results_are_renamed_and_relabelled_with_the_rule_winning() {
        let samples = vec![
            sample(Some("x"), &[("job", "a"), ("team", "old")], 1.0),
            sample(None, &[("job", "b"), ("drop", "me")], 2.0),
        ];
        let labels = rule_labels(&[("team", "sre"), ("drop", "")]);
        let metrics = recorded_samples("job:x:sum", &labels, samples, 42).unwrap();
        assert_eq!(metrics[0].name, "job:x:sum");
        assert_eq!(
            metrics[0].labels,
            Labels::from_pairs([("job", "a"), ("team", "sre")])
        );
        assert_eq!(
            metrics[1].labels,
            Labels::from_pairs([("job", "b"), ("team", "sre")]),
            "an empty rule label removes the label"
        );
        assert_eq!((metrics[1].value, metrics[1].timestamp_ms), (2.0, 42));
    }

    #[test]
    fn a_scalar_is_one_series_with_the_rule_labels_only() {
        let metrics = recorded_samples(
            "answer",
            &rule_labels(&[("kind", "constant")]),
            vec![sample(None, &[], 42.0)],
            7,
        )
        .unwrap();
        assert_eq!(metrics.len(), 1);
        assert_eq!(
            metrics[0].labels,
            Labels::from_pairs([("kind", "constant")])
        );
    }

    #[test]
    fn a_label_set_twice_after_relabelling_fails_the_evaluation() {
        let samples = vec![
            sample(Some("x"), &[("job", "a")], 1.0),
            sample(Some("y"), &[("job", "a")], 2.0),
        ];
        let error = recorded_samples("r", &[], samples, 0)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "vector contains metrics with the same labelset after applying rule labels"
            ),
            "{error}"
        );
        let samples = vec![
            sample(None, &[("job", "a")], 1.0),
            sample(None, &[("job", "b")], 2.0),
        ];
        let labels = rule_labels(&[("job", "all")]);
        assert!(recorded_samples("r", &labels, samples, 0).is_err());
    }
}
