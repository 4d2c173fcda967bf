//! The engine's state across a restart: written after each batch of
//! transitions, *before* anyone is notified, and read back at start with
//! restored alerts held until their window has had a full range to refill
//! (a cold window may raise an alert, never clear one). The file format is
//! `evaluation/store.rs`. Docs: chapter 5, "The state machine".

use super::*;

impl StreamingAlertEngine {
    /// Writes the state file when something changed. A failure is loud and
    /// counted but does not stop alerting: paging matters more than the
    /// file, and the next batch tries again.
    pub(super) fn persist(&self, runtime: &mut Runtime, now_ms: i64) {
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
}

pub(super) fn restore_alerts(
    rules: &[CompiledRule],
    runtime: &mut Runtime,
    restored: Vec<PersistedAlert>,
    started_at_ms: i64,
    periodic_evaluated: bool,
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
            if !periodic_evaluated {
                common::say_err!(
                    "[Alerting] saved state of {} dropped: the rule is periodic and there is no store to evaluate it",
                    alert.rule
                );
                runtime.dirty = true;
                continue;
            }
            // No hold: the first evaluation queries the store, whose
            // history survived the restart, so its answer is not cold.
            if let Some(rule_runtime) = runtime.rules.get_mut(index) {
                let mut tracked = periodic_tracked();
                tracked.status = alert.status;
                rule_runtime.alerts.insert(alert.series, tracked);
            }
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
