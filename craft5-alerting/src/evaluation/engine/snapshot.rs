//! What the engine holds, read out: every alert that is not inactive, as
//! a snapshot for the API and tests, or as the event of its current state
//! for the dispatcher and escalator to reconcile after a restart. Docs:
//! chapter 5, "The API".

use super::*;

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

impl StreamingAlertEngine {
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
}
