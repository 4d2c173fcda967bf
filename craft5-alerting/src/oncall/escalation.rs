//! Escalation: an alert nobody acknowledges within a policy's delay is
//! paged to the policy's next level — fixed receivers, or whoever is on
//! call on a schedule (`schedule.rs`) at that moment.
//!
//! A route's receiver is told once (grouping, `routing/`), and then the
//! page may sit on a phone that is off, in a channel nobody reads. phase0
//! cannot tell "seen" from "unseen", so its only answer is to page again
//! and again. Here a person acknowledges (`ack.rs`, `POST
//! /api/v1/alerts/{id}/ack`), and until they do, the [`Escalator`] widens
//! the circle step by step. The routing file's shape:
//!
//! ```yaml
//! route:
//!   receiver: team
//!   escalation_policy: db          # inherited by child routes
//!   send_resolved_when_acknowledged: true
//! escalation_policies:
//!   - name: db
//!     steps:
//!       - after: 5m                 # since the alert started firing
//!         schedules: [db-primary]
//!       - after: 15m
//!         schedules: [db-secondary]
//!         receivers: [team-lead]
//! ```
//!
//! The semantics, written once here and in docs/src/alerting/escalation.md:
//!
//! - **Delays count from when the alert started firing** (its `startsAt`),
//!   not from the previous step: step `i` is due at `startsAt + after_i`,
//!   and `after` must grow from step to step. Absolute offsets survive a
//!   restart and a late tick without drifting, and read as a timeline.
//! - A step is paged at the first tick at or after its due time (never
//!   before) if the episode is not acknowledged and not muted; a muted
//!   alert's steps — silenced, or inhibited by a firing source alert
//!   (the dispatcher's `inhibit_rules`) — wait (they go out if the mute
//!   ends while it still fires). Steps overdue together (after downtime) go out
//!   together: none is lost.
//! - An acknowledgement stops the episode's remaining steps.
//! - A schedule is asked who is on call *when the step fires*; the answer
//!   is recorded, so the resolution goes to the same person after a
//!   handoff. A receiver already paged for this episode by an earlier
//!   step is not paged again.
//! - On resolution every receiver a step paged is told (integrations
//!   that want resolutions), unless the route says
//!   `send_resolved_when_acknowledged: false` and it was acknowledged, or
//!   `send_resolved_when_silenced: false` and a silence covers it.
//!
//! Every page goes through the durable outbox with an id derived from
//! (policy, alert, episode, step, receiver, integration): the same id on
//! every retry and after a restart, which the outbox refuses to take
//! twice. The escalation state (which steps were paged, to whom) is
//! written atomically to `escalations.json` after the outbox has the
//! pages: a crash in between re-derives the same ids, so a restart
//! neither repeats a step nor loses one, and pending steps fire at their
//! times. Docs chapter 5, "Escalation".

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Clock, NotifyError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file::write_atomically;
use crate::config::RoutingConfig;
use crate::delivery::outbox::{Outbox, OutboxError};
use crate::delivery::receivers::{Notification, NotifiedAlert, Status};
use crate::evaluation::state::Transition;
use crate::fingerprint::key_fingerprint;
use crate::notification::{AlertEvent, TransitionNotifier};
use crate::oncall::ack::{Acknowledgements, alert_id};
use crate::oncall::policy::EscalationStep;
use crate::routing::Dispatcher;
use crate::signal::Signal;

/// The format version of `escalations.json`.
pub const ESCALATION_FILE_VERSION: u32 = 1;

/// The longest the escalation thread sleeps without looking at the clock.
pub const MAX_IDLE_WAIT: Duration = Duration::from_secs(1);

/// Why the escalation state file could not be read.
#[derive(Debug, Error)]
pub enum EscalationError {
    /// Reading failed.
    #[error("escalation state file {path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The step.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not escalation state this version reads.
    #[error(
        "escalation state file {path} is unreadable ({message}); refusing to start, \
         since starting empty would page escalation steps again. \
         Move the file aside to start with none"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Who a schedule named when a step fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallRecord {
    /// The schedule.
    pub schedule: String,
    /// Who was on call (`None`: nobody).
    pub who: Option<String>,
    /// Their receiver.
    pub receiver: Option<String>,
}

/// One step that was paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagedStep {
    /// The step's index in the policy.
    pub step: usize,
    /// When it was paged.
    pub at_ms: i64,
    /// The receivers it paged (those not paged by an earlier step).
    pub receivers: Vec<String>,
    /// What its schedules said.
    pub on_call: Vec<OnCallRecord>,
}

/// One alert episode under one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The alert ([`alert_id`]).
    pub alert_id: String,
    /// The policy.
    pub policy: String,
    /// The route node that named the policy (its path in the config).
    pub route: String,
    /// That route's fallback receiver.
    pub fallback_receiver: Option<String>,
    /// That route's `send_resolved_when_acknowledged`.
    pub send_resolved_when_acknowledged: bool,
    /// That route's `send_resolved_when_silenced`.
    pub send_resolved_when_silenced: bool,
    /// The alert as it fired (its status turns resolved at the end).
    pub alert: NotifiedAlert,
    /// The next step to page.
    pub next_step: usize,
    /// The steps paged so far.
    pub paged: Vec<PagedStep>,
}

impl Incident {
    /// When the next step is due (`None`: no step left, or the policy is
    /// gone from the config).
    pub fn next_due_at(&self, config: &RoutingConfig) -> Option<i64> {
        let step = config
            .escalation_policies
            .get(&self.policy)?
            .steps
            .get(self.next_step)?;
        Some(self.alert.starts_at_ms.saturating_add(step.after_ms))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct EscalationFile {
    version: u32,
    incidents: Vec<Incident>,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscalationReport {
    /// Events taken from the queue.
    pub events: usize,
    /// Steps paged.
    pub steps: usize,
    /// Notifications written to the outbox.
    pub notifications: usize,
}

type IncidentKey = (String, String);

/// Runs the escalation policies; see the module notes.
pub struct Escalator {
    config: Arc<RoutingConfig>,
    /// Says which alerts are muted now (silenced, or inhibited by a firing
    /// alert it holds): escalation waits on exactly what the routes do.
    dispatcher: Arc<Dispatcher>,
    acknowledgements: Arc<Acknowledgements>,
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    path: Option<PathBuf>,
    inbox: Mutex<Vec<AlertEvent>>,
    incidents: Mutex<BTreeMap<IncidentKey, Incident>>,
    dirty: AtomicBool,
    persist_failures: AtomicU64,
    signal: Signal,
}

impl Escalator {
    /// An escalator for `config`'s policies, its state in `path` (`None`:
    /// in memory), restored from there.
    ///
    /// # Errors
    /// [`EscalationError`] when the file exists but cannot be read.
    pub fn new(
        config: Arc<RoutingConfig>,
        dispatcher: Arc<Dispatcher>,
        acknowledgements: Arc<Acknowledgements>,
        outbox: Arc<Outbox>,
        clock: Arc<dyn Clock>,
        path: Option<PathBuf>,
    ) -> Result<Self, EscalationError> {
        let mut incidents = BTreeMap::new();
        if let Some(path) = &path {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let corrupt = |message: String| EscalationError::Corrupt {
                        path: path.display().to_string(),
                        message,
                    };
                    let file: EscalationFile =
                        serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
                    if file.version != ESCALATION_FILE_VERSION {
                        return Err(corrupt(format!(
                            "version {} (this build reads version {ESCALATION_FILE_VERSION})",
                            file.version
                        )));
                    }
                    for incident in file.incidents {
                        incidents.insert(
                            (incident.alert_id.clone(), incident.policy.clone()),
                            incident,
                        );
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(EscalationError::Io {
                        path: path.display().to_string(),
                        action: "read",
                        source,
                    });
                }
            }
        }
        Ok(Escalator {
            config,
            dispatcher,
            acknowledgements,
            outbox,
            clock,
            path,
            inbox: Mutex::new(Vec::new()),
            incidents: Mutex::new(incidents),
            dirty: AtomicBool::new(false),
            persist_failures: AtomicU64::new(0),
            signal: Signal::new(),
        })
    }

    /// Queues a transition (Firing and Resolved only).
    pub fn enqueue(&self, event: &AlertEvent) {
        if !event.transition.notifies() {
            return;
        }
        self.inbox.lock().push(event.clone());
        self.signal.notify();
    }

    /// After a restart: the alerts the engine restored (Firing or
    /// Resolved events). An incident whose episode the engine no longer
    /// knows at all has ended while the process was down (longer ago than
    /// the engine keeps resolved alerts): it is resolved now.
    pub fn reconcile(&self, events: Vec<AlertEvent>) {
        let known: BTreeSet<(String, i64)> = events
            .iter()
            .map(|event| {
                let alert = NotifiedAlert::from_event(event);
                (alert_id(&alert.rule, &alert.series), alert.starts_at_ms)
            })
            .collect();
        let now = self.clock.now_ms();
        {
            let mut incidents = self.incidents.lock();
            for incident in incidents.values_mut() {
                let episode = (incident.alert_id.clone(), incident.alert.starts_at_ms);
                if !known.contains(&episode) && incident.alert.status == Status::Firing {
                    incident.alert.status = Status::Resolved;
                    incident.alert.ends_at_ms = Some(now);
                }
            }
        }
        for event in &events {
            self.enqueue(event);
        }
    }

    /// The routing config (its policies and schedules).
    pub fn config(&self) -> &Arc<RoutingConfig> {
        &self.config
    }

    /// The incidents, by alert id then policy.
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents.lock().values().cloned().collect()
    }

    /// When the next step is due, over every unacknowledged incident.
    pub fn next_due_at(&self) -> Option<i64> {
        let incidents = self.incidents.lock();
        incidents
            .values()
            .filter(|i| {
                !self
                    .acknowledgements
                    .is_acknowledged(&i.alert_id, i.alert.starts_at_ms)
            })
            .filter_map(|i| i.next_due_at(&self.config))
            .min()
    }

    /// State-file writes that failed (each retried at the next tick).
    pub fn persist_failures(&self) -> u64 {
        self.persist_failures.load(Ordering::Relaxed)
    }

    /// Takes the queued events, pages every step due at `now_ms`, and
    /// tells the paged receivers of resolved alerts.
    ///
    /// # Errors
    /// [`OutboxError`] when the pages could not be written; nothing
    /// changed, and the next tick tries again.
    pub fn tick(&self, now_ms: i64) -> Result<EscalationReport, OutboxError> {
        let events = std::mem::take(&mut *self.inbox.lock());
        let mut report = EscalationReport {
            events: events.len(),
            ..EscalationReport::default()
        };
        let mut incidents = self.incidents.lock();
        // Work on a copy: if the outbox refuses the pages, nothing is
        // marked paged and the events are applied again at the next tick.
        let mut next = incidents.clone();
        for event in &events {
            self.apply(&mut next, event);
        }
        let mut notifications = Vec::new();
        let mut finished = Vec::new();
        for (key, incident) in next.iter_mut() {
            if incident.alert.status == Status::Resolved {
                notifications.extend(self.resolved_notifications(incident, now_ms));
                finished.push(key.clone());
                continue;
            }
            if self
                .acknowledgements
                .is_acknowledged(&incident.alert_id, incident.alert.starts_at_ms)
            {
                continue;
            }
            let Some(policy) = self.config.escalation_policies.get(&incident.policy) else {
                continue;
            };
            while let Some(step) = policy.steps.get(incident.next_step) {
                if incident.alert.starts_at_ms.saturating_add(step.after_ms) > now_ms
                    || self.dispatcher.is_muted(&incident.alert.labels, now_ms)
                {
                    break;
                }
                notifications.extend(self.page(incident, step, now_ms));
                incident.next_step += 1;
                report.steps += 1;
            }
        }
        for key in finished {
            next.remove(&key);
        }
        if next == *incidents {
            // Nothing new; a save that failed earlier is tried again.
            self.persist(&incidents);
            return Ok(report);
        }
        report.notifications = notifications.len();
        if let Err(e) = self.outbox.commit(notifications, Vec::new(), now_ms) {
            // The events are lost from the inbox otherwise: put them back.
            let mut inbox = self.inbox.lock();
            let later = std::mem::take(&mut *inbox);
            *inbox = events;
            inbox.extend(later);
            return Err(e);
        }
        *incidents = next;
        self.dirty.store(true, Ordering::Release);
        self.persist(&incidents);
        Ok(report)
    }

    fn apply(&self, incidents: &mut BTreeMap<IncidentKey, Incident>, event: &AlertEvent) {
        let alert = NotifiedAlert::from_event(event);
        let id = alert_id(&alert.rule, &alert.series);
        match event.transition {
            Transition::Firing => {
                let mut named = BTreeSet::new();
                for route in self.config.routes.matching(&alert.labels) {
                    let Some(node) = self.config.routes.node(route) else {
                        continue;
                    };
                    let Some(policy) = &node.escalation_policy else {
                        continue;
                    };
                    if !named.insert(policy.clone()) {
                        continue;
                    }
                    let key = (id.clone(), policy.clone());
                    match incidents.get_mut(&key) {
                        Some(existing) if existing.alert.starts_at_ms == alert.starts_at_ms => {
                            // The same episode told again (a restart):
                            // keep what was paged.
                            existing.alert.annotations = alert.annotations.clone();
                        }
                        _ => {
                            incidents.insert(
                                key,
                                Incident {
                                    alert_id: id.clone(),
                                    policy: policy.clone(),
                                    route: node.path.clone(),
                                    fallback_receiver: node.fallback_receiver.clone(),
                                    send_resolved_when_acknowledged: node
                                        .send_resolved_when_acknowledged,
                                    send_resolved_when_silenced: node.send_resolved_when_silenced,
                                    alert: alert.clone(),
                                    next_step: 0,
                                    paged: Vec::new(),
                                },
                            );
                        }
                    }
                }
            }
            Transition::Resolved => {
                for incident in incidents
                    .values_mut()
                    .filter(|i| i.alert_id == id && i.alert.starts_at_ms == alert.starts_at_ms)
                {
                    incident.alert.status = Status::Resolved;
                    incident.alert.ends_at_ms = alert.ends_at_ms;
                    incident.alert.value = alert.value;
                }
            }
            Transition::Pending | Transition::Cancelled => {}
        }
    }

    /// Pages one step: its receivers and its schedules' on-call people,
    /// less those this episode already paged.
    fn page(
        &self,
        incident: &mut Incident,
        step: &EscalationStep,
        now_ms: i64,
    ) -> Vec<Notification> {
        let already: BTreeSet<String> = incident
            .paged
            .iter()
            .flat_map(|p| p.receivers.iter().cloned())
            .collect();
        let mut targets: Vec<String> = step.receivers.clone();
        let mut on_call = Vec::new();
        for schedule in &step.schedules {
            match self.config.schedules.on_call(schedule, now_ms) {
                Some(found) => {
                    targets.push(found.receiver.clone());
                    on_call.push(OnCallRecord {
                        schedule: schedule.clone(),
                        who: Some(found.who),
                        receiver: Some(found.receiver),
                    });
                }
                None => {
                    common::say_err!(
                        "[Alerting] escalation policy {} step {}: nobody is on call for \
                         schedule {schedule}",
                        incident.policy,
                        incident.next_step
                    );
                    on_call.push(OnCallRecord {
                        schedule: schedule.clone(),
                        who: None,
                        receiver: None,
                    });
                }
            }
        }
        let mut seen = already.clone();
        targets.retain(|receiver| seen.insert(receiver.clone()));
        let step_index = incident.next_step;
        let mut notifications = Vec::new();
        for receiver in &targets {
            notifications.extend(self.notifications_for(
                incident,
                receiver,
                &step_index.to_string(),
                now_ms,
                false,
            ));
        }
        incident.paged.push(PagedStep {
            step: step_index,
            at_ms: now_ms,
            receivers: targets,
            on_call,
        });
        notifications
    }

    fn resolved_notifications(&self, incident: &Incident, now_ms: i64) -> Vec<Notification> {
        let acknowledged = self
            .acknowledgements
            .is_acknowledged(&incident.alert_id, incident.alert.starts_at_ms);
        if acknowledged && !incident.send_resolved_when_acknowledged {
            return Vec::new();
        }
        if !incident.send_resolved_when_silenced
            && self.dispatcher.is_muted(&incident.alert.labels, now_ms)
        {
            return Vec::new();
        }
        incident
            .paged
            .iter()
            .flat_map(|p| p.receivers.iter())
            .flat_map(|receiver| {
                self.notifications_for(incident, receiver, "resolved", now_ms, true)
            })
            .collect()
    }

    fn notifications_for(
        &self,
        incident: &Incident,
        receiver: &str,
        what: &str,
        now_ms: i64,
        resolved: bool,
    ) -> Vec<Notification> {
        let alert = &incident.alert;
        let identity = if alert.series.is_empty() {
            format!("{}{{}}", alert.rule)
        } else {
            format!("{}{}", alert.rule, alert.series)
        };
        self.config
            .receivers
            .integrations(receiver)
            .iter()
            .enumerate()
            .filter(|(_, named)| !resolved || named.integration.send_resolved())
            .map(|(index, named)| Notification {
                id: key_fingerprint(&[
                    "escalation",
                    &incident.policy,
                    &incident.alert_id,
                    &alert.starts_at_ms.to_string(),
                    what,
                    receiver,
                    &index.to_string(),
                ]),
                receiver: receiver.to_string(),
                integration: index,
                integration_name: named.name.clone(),
                // Stable per policy and alert: a PagerDuty resolve closes
                // the incident its step's trigger opened.
                group_key: format!("escalation/{}:{identity}", incident.policy),
                group_labels: alert.labels.clone(),
                alerts: vec![alert.clone()],
                created_at_ms: now_ms,
                external_url: self.config.globals.external_url.clone(),
                fallback_receiver: incident.fallback_receiver.clone(),
                fallback_of: None,
            })
            .collect()
    }

    /// Writes the state file when something changed; a failure is loud,
    /// counted and retried at the next tick (the outbox already holds the
    /// pages, and their ids make a re-derived page a no-op).
    fn persist(&self, incidents: &BTreeMap<IncidentKey, Incident>) {
        if !self.dirty.load(Ordering::Acquire) {
            return;
        }
        let Some(path) = &self.path else {
            self.dirty.store(false, Ordering::Release);
            return;
        };
        let file = EscalationFile {
            version: ESCALATION_FILE_VERSION,
            incidents: incidents.values().cloned().collect(),
        };
        let result = serde_json::to_vec_pretty(&file)
            .map_err(|e| {
                (
                    "serialize",
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                write_atomically(path, &bytes)
            });
        match result {
            Ok(()) => self.dirty.store(false, Ordering::Release),
            Err((action, e)) => {
                self.persist_failures.fetch_add(1, Ordering::Relaxed);
                common::say_err!(
                    "[Alerting] escalation state file {}: cannot {action}: {e}; retrying",
                    path.display()
                );
            }
        }
    }

    /// The thread's loop: a tick whenever a step is due or an event
    /// arrives, until `stop` is set (and [`wake`](Self::wake) called).
    pub fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let now = self.clock.now_ms();
            let wait = match self.tick(now) {
                // A step still due right after a tick is held (its alert
                // is silenced): look again within the idle wait rather
                // than spin.
                Ok(_) => match self.next_due_at() {
                    Some(due) if due > self.clock.now_ms() => Duration::from_millis(
                        u64::try_from(due.saturating_sub(self.clock.now_ms())).unwrap_or(0),
                    ),
                    _ => MAX_IDLE_WAIT,
                },
                Err(e) => {
                    common::say_err!("[Alerting] {e}; escalation pages not queued, retrying");
                    MAX_IDLE_WAIT
                }
            };
            self.signal.wait(wait.min(MAX_IDLE_WAIT));
        }
    }

    /// Wakes the thread.
    pub fn wake(&self) {
        self.signal.notify();
    }
}

impl TransitionNotifier for Escalator {
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError> {
        self.enqueue(event);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "escalation"
    }
}
