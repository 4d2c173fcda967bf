//! Periodic rules inside the engine: the groups built at load time (with
//! their recording rules, in file order), and a query's answer applied to
//! the same state machines streaming alerts use (the queries themselves
//! run in `evaluation/periodic.rs`, without the state lock). Docs: chapter 5, "Periodic rules and inhibition".

use super::*;
use crate::evaluation::periodic::PeriodicStep;
use crate::evaluation::recording::RecordingStep;
use crate::rules::GroupEntry;
use crate::rules::expr::may_read_metric;

impl StreamingAlertEngine {
    /// Steps periodic rule `result.rule`'s alerts with one query answer:
    /// each result series holds (a new series is a new alert), each alert
    /// missing from the result does not. A failed query changes nothing —
    /// as in Prometheus, an error is not evidence that the condition
    /// stopped — and is reported in `outcome.errors`.
    pub(super) fn apply_periodic(
        &self,
        runtime: &mut Runtime,
        result: RuleResult,
        outcome: &mut Outcome,
        changed: &mut bool,
    ) {
        let Some(compiled) = self.rules.get(result.rule) else {
            return;
        };
        let series = match result.result {
            Ok(series) => series,
            Err(source) => {
                outcome.errors.push(AlertError::Query {
                    rule: format!("{} ({})", compiled.rule.key(), compiled.rule.expr_text),
                    source,
                });
                return;
            }
        };
        let Some(rule_runtime) = runtime.rules.get_mut(result.rule) else {
            return;
        };
        let at = result.at_ms;
        for (labels, value) in &series {
            let tracked = rule_runtime
                .alerts
                .entry(labels.clone())
                .or_insert_with(periodic_tracked);
            let observation = Observation::Holds {
                value: *value,
                samples: 1,
            };
            if let Some(transition) = step(tracked, at, observation, compiled.timing, changed) {
                outcome
                    .events
                    .push(self.event(compiled, labels, tracked, transition));
            }
        }
        let present: std::collections::HashSet<&Labels> = series.iter().map(|(l, _)| l).collect();
        for (labels, tracked) in rule_runtime.alerts.iter_mut() {
            if present.contains(labels) {
                continue;
            }
            // Gone from the result: the condition no longer holds. The last
            // value is kept (as Prometheus keeps an alert's value) so the
            // resolved notification still says what it was.
            let observation = match tracked.status.last_value {
                Some(value) => Observation::Clear { value, samples: 0 },
                None => Observation::NoData,
            };
            if let Some(transition) = step(tracked, at, observation, compiled.timing, changed) {
                outcome
                    .events
                    .push(self.event(compiled, labels, tracked, transition));
            }
        }
    }
}

/// A periodic rule's alert: its evidence is the query's answer, not
/// samples, so its window stays empty (and allocates nothing).
pub(super) fn periodic_tracked() -> Tracked {
    Tracked {
        window: SlidingWindow::new(1),
        status: AlertStatus::inactive(),
        hold_until_ms: None,
    }
}

/// The periodic and recording rules of each group, in file order, with
/// the group's interval. A recording rule waits for its write to be
/// stored when a later periodic or recording rule of the group may read
/// its metric (streaming rules see the write on ingest, whenever it is
/// stored).
pub(super) fn periodic_groups(
    rule_set: &RuleSet,
    rules: &[CompiledRule],
    default_interval: Duration,
) -> Vec<PeriodicGroup> {
    // Engine rules are numbered group by group over the alerting rules.
    let mut first_rule = 0;
    let mut groups = Vec::new();
    for group in &rule_set.groups {
        let entries = group.entries();
        // What each entry reads, to know which records a later one needs.
        let expressions: Vec<Option<&promql::Expr>> = entries
            .iter()
            .map(|entry| match *entry {
                GroupEntry::Alerting(i) => match &rules.get(first_rule + i)?.rule.expr {
                    RuleExpr::Periodic(expr) => Some(expr),
                    RuleExpr::Streaming(_) => None,
                },
                GroupEntry::Recording(i) => group.recording.get(i).map(|r| &r.expr),
            })
            .collect();
        let mut steps = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            match *entry {
                GroupEntry::Alerting(i) => {
                    if let Some(compiled) = rules.get(first_rule + i)
                        && let RuleExpr::Periodic(expr) = &compiled.rule.expr
                    {
                        steps.push(PeriodicStep::Alert(PeriodicRule {
                            rule: first_rule + i,
                            expr: expr.to_string(),
                        }));
                    }
                }
                GroupEntry::Recording(i) => {
                    let Some(record) = group.recording.get(i) else {
                        continue;
                    };
                    let settle_after = expressions[position + 1..]
                        .iter()
                        .flatten()
                        .any(|later| may_read_metric(later, &record.record));
                    steps.push(PeriodicStep::Record(RecordingStep::new(
                        i,
                        record.record.clone(),
                        record.expr.to_string(),
                        record.labels.clone(),
                        settle_after,
                    )));
                }
            }
        }
        first_rule += group.rules.len();
        groups.push(PeriodicGroup {
            name: group.name.clone(),
            interval_ms: group
                .interval_ms
                .unwrap_or_else(|| duration_ms(default_interval)),
            steps,
        });
    }
    groups
}
