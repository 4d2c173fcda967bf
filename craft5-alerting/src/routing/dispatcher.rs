//! The `Dispatcher`: hears the engine's Firing and Resolved transitions,
//! routes each alert into its groups, and at each group's flush time
//! writes the notifications due into the outbox.
//!
//! It is the engine's [`TransitionNotifier`], called on the thread that
//! stored the batch; so it only *queues* the event (a short lock, no I/O)
//! and raises its signal. Everything else — routing, grouping, silences,
//! the flush decision, the outbox write and its fsync — happens in
//! [`Dispatcher::tick`], on the dispatcher's own thread ([`Dispatcher::run`])
//! or, in tests, called by hand on a manual clock. A flush that cannot be
//! written to the outbox changes nothing and is tried again at the next
//! tick.
//!
//! After a restart, [`Dispatcher::reconcile`] is given the alerts the
//! engine restored (firing, and resolved within the retention): they are
//! put back in their groups, and the outbox's notify logs say what each
//! integration was already told — so an alert paged before the restart is
//! not paged again, and one that resolved while the process was down is
//! sent as resolved. Docs chapter 5, "Grouping".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Clock, Labels, NotifyError};
use parking_lot::Mutex;

use super::group::{AcknowledgedAlerts, AlertGroup, decide};
use super::inhibit::{InhibitSnapshot, Inhibition, Source};
use crate::config::RoutingConfig;
use crate::delivery::notify_log::NotifyKey;
use crate::delivery::outbox::{Outbox, OutboxError};
use crate::delivery::receivers::{Notification, NotifiedAlert, Status};
use crate::evaluation::state::Transition;
use crate::fingerprint::key_fingerprint;
use crate::notification::{AlertEvent, TransitionNotifier};
use crate::oncall::ack::{Acknowledgements, alert_id};
use crate::signal::Signal;
use crate::silence::Silences;

/// The longest the dispatcher sleeps without looking at the clock again.
pub const MAX_IDLE_WAIT: Duration = Duration::from_secs(1);

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Events taken from the queue.
    pub events: usize,
    /// Groups flushed.
    pub flushed_groups: usize,
    /// Notifications written to the outbox.
    pub notifications: usize,
}

/// One group as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    /// The group key.
    pub key: String,
    /// The route node's path in the config.
    pub route: String,
    /// The receiver.
    pub receiver: String,
    /// The grouping labels.
    pub labels: Labels,
    /// Its alerts.
    pub alerts: Vec<NotifiedAlert>,
    /// When it flushes next.
    pub next_flush_at_ms: i64,
    /// By alert fingerprint: the active silences muting it now.
    pub silenced_by: BTreeMap<String, Vec<String>>,
    /// By alert fingerprint: the firing alerts inhibiting it now.
    pub inhibited_by: BTreeMap<String, Vec<Inhibition>>,
}

#[derive(Default)]
struct Groups {
    groups: BTreeMap<String, AlertGroup>,
    /// Which groups each alert identity is in.
    placements: HashMap<String, Vec<String>>,
}

/// Routes and groups alerts; see the module notes.
pub struct Dispatcher {
    config: Arc<RoutingConfig>,
    silences: Arc<Silences>,
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    /// Acknowledged alerts stop reminding (`ack.rs`).
    acknowledgements: Arc<Acknowledgements>,
    inbox: Mutex<Vec<(AlertEvent, i64)>>,
    groups: Mutex<Groups>,
    signal: Signal,
    flush_failures: AtomicU64,
}

/// `{}` for no labels, else the labels' text form.
fn braces(labels: &Labels) -> String {
    if labels.is_empty() {
        "{}".to_string()
    } else {
        labels.to_string()
    }
}

/// The firing alerts of every group, once each: the possible sources of
/// inhibition (`inhibit.rs`).
fn firing_sources(groups: &Groups) -> Vec<Source<'_>> {
    let mut seen = std::collections::HashSet::new();
    groups
        .groups
        .values()
        .flat_map(|group| group.alerts.values())
        .filter(|alert| alert.status == Status::Firing && seen.insert(&alert.fingerprint))
        .map(|alert| Source {
            fingerprint: &alert.fingerprint,
            labels: &alert.labels,
        })
        .collect()
}

/// An alert's identity across its transitions: its rule and series.
fn identity(alert: &NotifiedAlert) -> String {
    format!("{}{}", alert.rule, braces(&alert.series))
}

impl Dispatcher {
    /// A dispatcher routing by `config`, consulting `silences`, writing to
    /// `outbox`.
    pub fn new(
        config: Arc<RoutingConfig>,
        silences: Arc<Silences>,
        outbox: Arc<Outbox>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Dispatcher {
            config,
            silences,
            outbox,
            clock,
            acknowledgements: Arc::new(Acknowledgements::in_memory()),
            inbox: Mutex::new(Vec::new()),
            groups: Mutex::new(Groups::default()),
            signal: Signal::new(),
            flush_failures: AtomicU64::new(0),
        }
    }

    /// Consults `acknowledgements` (the service's store) instead of an
    /// empty one of its own.
    pub fn with_acknowledgements(mut self, acknowledgements: Arc<Acknowledgements>) -> Self {
        self.acknowledgements = acknowledgements;
        self
    }

    /// The routing config.
    pub fn config(&self) -> &Arc<RoutingConfig> {
        &self.config
    }

    /// Queues a transition (Firing and Resolved only; others are ignored).
    pub fn enqueue(&self, event: &AlertEvent) {
        if !event.transition.notifies() {
            return;
        }
        let now = self.clock.now_ms();
        self.inbox.lock().push((event.clone(), now));
        self.signal.notify();
    }

    /// Puts back the alerts the engine restored after a restart (events
    /// whose transition names their state: Firing or Resolved).
    pub fn reconcile(&self, events: Vec<AlertEvent>) {
        for event in &events {
            self.enqueue(event);
        }
    }

    /// Outbox writes that failed (each retried at the next tick).
    pub fn flush_failures(&self) -> u64 {
        self.flush_failures.load(Ordering::Relaxed)
    }

    /// Every group, by key.
    pub fn groups(&self) -> Vec<GroupSnapshot> {
        let now_ms = self.clock.now_ms();
        let groups = self.groups.lock();
        let sources = firing_sources(&groups);
        let inhibitions = InhibitSnapshot::new(&self.config.inhibit_rules, &sources);
        groups
            .groups
            .values()
            .map(|group| {
                let node = self.config.routes.node(group.route);
                let mut silenced_by = BTreeMap::new();
                let mut inhibited_by = BTreeMap::new();
                for alert in group.alerts.values() {
                    let silences = self.silences.silenced_by(&alert.labels, now_ms);
                    if !silences.is_empty() {
                        silenced_by.insert(alert.fingerprint.clone(), silences);
                    }
                    let sources = inhibitions.inhibited_by(&alert.labels);
                    if !sources.is_empty() {
                        inhibited_by.insert(alert.fingerprint.clone(), sources);
                    }
                }
                GroupSnapshot {
                    key: group.key.clone(),
                    route: node.map(|n| n.path.clone()).unwrap_or_default(),
                    receiver: node.map(|n| n.receiver.clone()).unwrap_or_default(),
                    labels: group.labels.clone(),
                    alerts: group.alerts.values().cloned().collect(),
                    next_flush_at_ms: group.next_flush_at_ms,
                    silenced_by,
                    inhibited_by,
                }
            })
            .collect()
    }

    /// Whether an alert with `labels` is muted now: a silence covers it,
    /// or a firing alert inhibits it — what the routes' notifications and
    /// the escalation steps both wait on.
    pub fn is_muted(&self, labels: &Labels, now_ms: i64) -> bool {
        self.silences.is_silenced(labels, now_ms)
            || (!self.config.inhibit_rules.is_empty() && !self.inhibited_by(labels).is_empty())
    }

    /// The firing alerts inhibiting an alert with `labels` now.
    pub fn inhibited_by(&self, labels: &Labels) -> Vec<Inhibition> {
        let groups = self.groups.lock();
        let sources = firing_sources(&groups);
        InhibitSnapshot::new(&self.config.inhibit_rules, &sources).inhibited_by(labels)
    }

    /// When the next group flush is due.
    pub fn next_flush_at(&self) -> Option<i64> {
        self.groups
            .lock()
            .groups
            .values()
            .map(|g| g.next_flush_at_ms)
            .min()
    }

    /// Takes the queued events, then flushes every group due at `now_ms`.
    ///
    /// # Errors
    /// [`OutboxError`] when the flush could not be written; the groups
    /// are unchanged and flush at the next tick.
    pub fn tick(&self, now_ms: i64) -> Result<TickReport, OutboxError> {
        let events = std::mem::take(&mut *self.inbox.lock());
        let mut report = TickReport {
            events: events.len(),
            ..TickReport::default()
        };
        let mut groups = self.groups.lock();
        for (event, arrived_at) in events {
            self.place(&mut groups, &event, arrived_at);
        }
        let due: Vec<String> = groups
            .groups
            .values()
            .filter(|g| g.next_flush_at_ms <= now_ms)
            .map(|g| g.key.clone())
            .collect();
        if due.is_empty() {
            return Ok(report);
        }
        // Sources are every firing alert placed so far, this tick's events
        // included, so a cause and its symptoms arriving together are
        // decided together.
        let sources = firing_sources(&groups);
        let inhibitions = InhibitSnapshot::new(&self.config.inhibit_rules, &sources);
        let mut notifications = Vec::new();
        let mut states = Vec::new();
        for key in &due {
            let Some(group) = groups.groups.get(key) else {
                continue;
            };
            let Some(node) = self.config.routes.node(group.route) else {
                continue;
            };
            // Inhibited alerts are muted exactly like silenced ones.
            let silenced = |labels: &Labels| {
                self.silences.is_silenced(labels, now_ms) || inhibitions.is_inhibited(labels)
            };
            let is_acknowledged = |alert: &NotifiedAlert| {
                self.acknowledgements
                    .is_acknowledged(&alert_id(&alert.rule, &alert.series), alert.starts_at_ms)
            };
            let acknowledged = AcknowledgedAlerts {
                is_acknowledged: &is_acknowledged,
                send_resolved: node.send_resolved_when_acknowledged,
            };
            for (index, named) in self
                .config
                .receivers
                .integrations(&node.receiver)
                .iter()
                .enumerate()
            {
                let notify_key = NotifyKey {
                    group_key: group.key.clone(),
                    receiver: node.receiver.clone(),
                    integration: index,
                };
                let log = self.outbox.notify_log(&notify_key);
                let decision = decide(
                    group,
                    &log,
                    named.integration.send_resolved(),
                    node.send_resolved_when_silenced,
                    node.repeat_interval_ms,
                    now_ms,
                    &silenced,
                    acknowledged,
                );
                if !decision.alerts.is_empty() {
                    notifications.push(self.notification(
                        group,
                        &node.receiver,
                        index,
                        &named.name,
                        node.fallback_receiver.clone(),
                        decision.alerts,
                        now_ms,
                    ));
                }
                if decision.log != log {
                    states.push((notify_key, decision.log));
                }
            }
        }
        report.notifications = notifications.len();
        if let Err(e) = self.outbox.commit(notifications, states, now_ms) {
            self.flush_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        for key in &due {
            let Some(group) = groups.groups.get_mut(key) else {
                continue;
            };
            report.flushed_groups += 1;
            group
                .alerts
                .retain(|_, alert| alert.status == Status::Firing);
            let interval = self
                .config
                .routes
                .node(group.route)
                .map_or(1_000, |n| n.group_interval_ms);
            group.next_flush_at_ms = now_ms.saturating_add(interval.max(1));
            if group.alerts.is_empty() {
                groups.groups.remove(key);
            }
        }
        let live: Vec<String> = groups.groups.keys().cloned().collect();
        groups.placements.retain(|_, keys| {
            keys.retain(|k| live.contains(k));
            !keys.is_empty()
        });
        Ok(report)
    }

    fn place(&self, groups: &mut Groups, event: &AlertEvent, arrived_at: i64) {
        let mut alert = NotifiedAlert::from_event(event);
        let id = identity(&alert);
        if event.transition == Transition::Resolved
            && let Some(keys) = groups.placements.get(&id).cloned()
        {
            // Resolve in place: the labels (and so the fingerprint) stay
            // those the alert was routed and paged with, even if a
            // templated label has changed since.
            let mut found = false;
            for key in keys {
                if let Some(existing) = groups
                    .groups
                    .get_mut(&key)
                    .and_then(|g| g.alerts.get_mut(&id))
                {
                    alert.labels = existing.labels.clone();
                    alert.fingerprint = existing.fingerprint.clone();
                    *existing = alert.clone();
                    found = true;
                }
            }
            if found {
                return;
            }
        }
        let mut keys = Vec::new();
        for route in self.config.routes.matching(&alert.labels) {
            let Some(node) = self.config.routes.node(route) else {
                continue;
            };
            let labels = node.group_by.group_labels(&alert.labels);
            let key = format!("{}:{}", node.key, braces(&labels));
            let group = groups
                .groups
                .entry(key.clone())
                .or_insert_with(|| AlertGroup {
                    route,
                    key: key.clone(),
                    labels,
                    alerts: BTreeMap::new(),
                    created_at_ms: arrived_at,
                    next_flush_at_ms: arrived_at.saturating_add(node.group_wait_ms),
                });
            group.alerts.insert(id.clone(), alert.clone());
            keys.push(key);
        }
        // A re-fire whose labels now route elsewhere leaves its old groups.
        if let Some(old) = groups.placements.get(&id).cloned() {
            for key in old.iter().filter(|k| !keys.contains(k)) {
                if let Some(group) = groups.groups.get_mut(key) {
                    group.alerts.remove(&id);
                }
            }
        }
        groups.placements.insert(id, keys);
    }

    #[allow(clippy::too_many_arguments)]
    fn notification(
        &self,
        group: &AlertGroup,
        receiver: &str,
        integration: usize,
        integration_name: &str,
        fallback_receiver: Option<String>,
        alerts: Vec<NotifiedAlert>,
        now_ms: i64,
    ) -> Notification {
        let episodes: Vec<String> = alerts
            .iter()
            .map(|a| format!("{}@{}:{}", a.fingerprint, a.starts_at_ms, a.status.as_str()))
            .collect();
        let id = key_fingerprint(&[
            receiver,
            &integration.to_string(),
            &group.key,
            &now_ms.to_string(),
            &episodes.join(","),
        ]);
        Notification {
            id,
            receiver: receiver.to_string(),
            integration,
            integration_name: integration_name.to_string(),
            group_key: group.key.clone(),
            group_labels: group.labels.clone(),
            alerts,
            created_at_ms: now_ms,
            external_url: self.config.globals.external_url.clone(),
            fallback_receiver,
            fallback_of: None,
        }
    }

    /// The thread's loop: a tick whenever a group is due or an event
    /// arrives, until `stop` is set (and [`wake`](Self::wake) called).
    pub fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let now = self.clock.now_ms();
            let wait = match self.tick(now) {
                Ok(_) => match self.next_flush_at() {
                    Some(due) => Duration::from_millis(
                        u64::try_from(due.saturating_sub(self.clock.now_ms())).unwrap_or(0),
                    ),
                    None => MAX_IDLE_WAIT,
                },
                Err(e) => {
                    common::say_err!("[Alerting] {e}; notifications not queued, retrying");
                    MAX_IDLE_WAIT
                }
            };
            // An event queued since the tick has raised the signal, so this
            // returns at once for it.
            if !wait.is_zero() {
                self.signal.wait(wait.min(MAX_IDLE_WAIT));
            }
        }
    }

    /// Wakes the thread (new events, or time to stop).
    pub fn wake(&self) {
        self.signal.notify();
    }
}

impl TransitionNotifier for Dispatcher {
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError> {
        self.enqueue(event);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "router"
    }
}
