//! The streaming path: a stored batch offered to the rules that may watch
//! each sample (the rule index), each series' window updated in amortised
//! O(1), the alert stepped at the sample's time. This is what removes
//! phase0's "up to 10 s late, one full scan per rule per check". Docs:
//! chapter 5, "Polling vs streaming".

use super::*;

impl StreamingAlertEngine {
    /// Feeds stored samples through the streaming rules; notifies and
    /// returns the transitions they caused.
    pub fn ingest(&self, metrics: &[Metric]) -> Outcome {
        let clock_now = self.options.clock.now_ms();
        let latest_allowed = clock_now.saturating_add(duration_ms(self.options.max_future));
        let mut batch = BatchTally::default();
        {
            let mut runtime = self.runtime.lock();
            let mut candidates = Vec::new();
            for metric in metrics {
                if !self.rule_index.knows(metric.name.as_str()) {
                    continue;
                }
                if metric.timestamp_ms > latest_allowed {
                    batch.from_the_future += 1;
                    continue;
                }
                candidates.clear();
                self.rule_index
                    .candidates(&metric.name, &metric.labels, &mut candidates);
                for &index in &candidates {
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
            .stale_markers
            .fetch_add(batch.stale_markers, Ordering::Relaxed);
        counters
            .from_the_future
            .fetch_add(batch.from_the_future, Ordering::Relaxed);
        self.deliver(&batch.events);
        Outcome {
            events: batch.events,
            ..Outcome::default()
        }
    }

    pub(super) fn ingest_one(
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
        if metric.value.to_bits() == STALE_NAN_BITS {
            // The series ended here. A plain selector has no value for it
            // any more; a window function keeps the samples before the
            // marker, as a range selector does in Prometheus.
            if condition.function != WindowFunction::Last {
                return;
            }
            batch.stale_markers += 1;
            tracked.window.end_source(source, metric.timestamp_ms);
        } else {
            match tracked
                .window
                .insert(metric.timestamp_ms, source, metric.value)
            {
                Inserted::TooOld => {
                    batch.too_old += 1;
                    return;
                }
                Inserted::Appended | Inserted::Late | Inserted::Replaced => {
                    if !metric.value.is_finite() {
                        batch.not_finite += 1;
                    }
                }
            }
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
}

/// The condition's verdict on a window.
pub(super) fn observe(condition: &StreamingCondition, window: &SlidingWindow) -> Observation {
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
pub(super) fn step(
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

/// A resolved alert is kept (listed, its state saved) for `retention_ms`,
/// then forgotten: back to inactive. True when it was forgotten now.
pub(super) fn forget_if_resolved_long_ago(
    tracked: &mut Tracked,
    now_ms: i64,
    retention_ms: i64,
) -> bool {
    let long_ago = tracked.status.state == AlertState::Resolved
        && tracked
            .status
            .resolved_at_ms
            .is_some_and(|resolved| now_ms.saturating_sub(resolved) >= retention_ms);
    if long_ago {
        tracked.status = AlertStatus::inactive();
    }
    long_ago
}
