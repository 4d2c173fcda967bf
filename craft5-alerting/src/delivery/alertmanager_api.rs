//! Alerts to a real Alertmanager, as Prometheus sends them: beside craft
//! 5's own routing, every firing alert is `POST`ed to each configured
//! Alertmanager's `/api/v2/alerts` — labels, annotations, `startsAt`, an
//! `endsAt` a few resend periods ahead (so Alertmanager resolves it by
//! itself if this server dies), `generatorURL` — and sent again every
//! `resend_delay` while it fires; once resolved, it is sent with `endsAt`
//! = the resolution time, and again each period for 15 minutes, as
//! Prometheus does, so an Alertmanager that was down at that moment still
//! hears of it.
//!
//! The bottleneck it avoids: the engine's thread never waits on an
//! Alertmanager. A transition only updates a table (`notify_transition`);
//! one sender thread does the HTTP. What a failed send could not deliver
//! stays due and goes with the next pass. Docs chapter 5, "Prometheus'
//! Alertmanager".

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};

use common::{Clock, NotifyError};

use super::receivers::http::HttpClient;
use super::receivers::webhook::rfc3339;
use crate::evaluation::state::Transition;
use crate::notification::{AlertEvent, TransitionNotifier};

/// Prometheus' `--rules.alert.resend-delay` default.
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);
/// How long a resolved alert is still sent (Prometheus: 15 minutes).
const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;
/// A pass at least this often, to send what is due.
const PASS: Duration = Duration::from_secs(1);

/// Where and how to send.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerTargets {
    /// Each Alertmanager's `…/api/v2/alerts` URL.
    pub urls: Vec<String>,
    /// Each request's limit (Prometheus' `timeout`, 10 s).
    pub timeout: Duration,
    /// How often a firing alert is sent again.
    pub resend_delay: Duration,
    /// This server's address for `generatorURL` (`http://host:port`).
    pub external_url: String,
}

/// One alert as Alertmanager will hear of it.
#[derive(Debug, Clone)]
struct Entry {
    labels: Value,
    annotations: Value,
    starts_at_ms: i64,
    resolved_at_ms: Option<i64>,
    /// When it was last delivered to every Alertmanager; `None`: due now.
    sent_at_ms: Option<i64>,
}

/// The sender: a [`TransitionNotifier`] for the engine and a thread's
/// [`AlertmanagerSender::run`].
pub struct AlertmanagerSender {
    targets: AlertmanagerTargets,
    client: HttpClient,
    clock: Arc<dyn Clock>,
    alerts: Mutex<HashMap<String, Entry>>,
    wake: Condvar,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl AlertmanagerSender {
    /// A sender to `targets` on `clock`.
    pub fn new(targets: AlertmanagerTargets, clock: Arc<dyn Clock>) -> Self {
        AlertmanagerSender {
            client: HttpClient::new(targets.timeout),
            targets,
            clock,
            alerts: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// (alerts delivered, requests failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Sends what is due until `stop`, waking on each transition.
    pub fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            self.send_due(self.clock.now_ms());
            let mut alerts = self.alerts.lock();
            if stop.load(Ordering::Acquire) {
                return;
            }
            let due_now = alerts.values().any(|e| e.sent_at_ms.is_none());
            if !due_now {
                self.wake.wait_for(&mut alerts, PASS);
            }
        }
    }

    /// Wakes [`run`](Self::run) (to stop, or to send).
    pub fn wake(&self) {
        self.wake.notify_all();
    }

    /// One pass at `now_ms`: every alert never sent, changed, or last sent
    /// a resend delay ago goes to every Alertmanager in one request each.
    /// Returns how many alerts were due.
    pub fn send_due(&self, now_ms: i64) -> usize {
        let resend_ms = self.targets.resend_delay.as_millis() as i64;
        let due: Vec<(String, Entry)> = {
            let mut alerts = self.alerts.lock();
            alerts.retain(|_, e| {
                e.resolved_at_ms
                    .is_none_or(|at| now_ms - at <= RESOLVED_RETENTION_MS)
            });
            alerts
                .iter()
                .filter(|(_, e)| e.sent_at_ms.is_none_or(|at| now_ms - at >= resend_ms))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect()
        };
        if due.is_empty() {
            return 0;
        }
        let valid_until = now_ms + 4 * resend_ms.max(1_000);
        let body: Vec<Value> = due
            .iter()
            .map(|(_, e)| {
                json!({
                    "labels": e.labels,
                    "annotations": e.annotations,
                    "startsAt": rfc3339(e.starts_at_ms),
                    "endsAt": rfc3339(e.resolved_at_ms.unwrap_or(valid_until)),
                    "generatorURL": format!("{}/api/v1/rules", self.targets.external_url),
                })
            })
            .collect();
        let body = Value::Array(body);
        let mut all_ok = true;
        for url in &self.targets.urls {
            if let Err(error) = self.client.post_json(url, &body, &[]) {
                all_ok = false;
                self.failed.fetch_add(1, Ordering::Relaxed);
                common::say_err!(
                    "[Alerting] Alertmanager {url}: {} alerts not delivered, sent again next pass: {error}",
                    due.len()
                );
            }
        }
        if all_ok {
            self.sent.fetch_add(due.len() as u64, Ordering::Relaxed);
            let mut alerts = self.alerts.lock();
            for (key, sent) in &due {
                // A transition since the copy was taken stays due.
                if let Some(entry) = alerts.get_mut(key)
                    && entry.resolved_at_ms == sent.resolved_at_ms
                    && entry.starts_at_ms == sent.starts_at_ms
                {
                    entry.sent_at_ms = Some(now_ms);
                }
            }
        }
        due.len()
    }
}

impl TransitionNotifier for AlertmanagerSender {
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError> {
        let key = format!("{}\u{0}{}", event.rule, event.labels);
        let mut alerts = self.alerts.lock();
        match event.transition {
            Transition::Firing => {
                let labels: serde_json::Map<String, Value> = event
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), Value::String(v.to_string())))
                    .collect();
                let annotations: serde_json::Map<String, Value> = event
                    .annotations
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                alerts.insert(
                    key,
                    Entry {
                        labels: Value::Object(labels),
                        annotations: Value::Object(annotations),
                        starts_at_ms: event
                            .active_at_ms
                            .or(event.fired_at_ms)
                            .unwrap_or(event.at_ms),
                        resolved_at_ms: None,
                        sent_at_ms: None,
                    },
                );
            }
            Transition::Resolved => {
                if let Some(entry) = alerts.get_mut(&key) {
                    entry.resolved_at_ms = Some(event.at_ms);
                    entry.sent_at_ms = None;
                }
            }
            Transition::Pending | Transition::Cancelled => return Ok(()),
        }
        drop(alerts);
        self.wake.notify_all();
        Ok(())
    }

    fn name(&self) -> &'static str {
        "alertmanager-api"
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use common::{AlertRule, Condition, Labels, ManualClock};

    use super::*;

    const T0: i64 = 1_764_180_000_000;

    fn event(transition: Transition, at_ms: i64) -> AlertEvent {
        AlertEvent {
            transition,
            rule: "node/HighCpu".into(),
            group: "node".into(),
            alert_name: "HighCpu".into(),
            metric: "cpu".into(),
            series: Labels::from_pairs([("host", "a")]),
            labels: Labels::from_pairs([("host", "a"), ("alertname", "HighCpu")]),
            annotations: vec![("summary".into(), "hot".into())],
            condition: "cpu > 80".into(),
            value: Some(92.0),
            sample_count: 1,
            at_ms,
            active_at_ms: Some(T0 - 60_000),
            fired_at_ms: Some(T0),
            seed_rule: AlertRule::new("cpu", Condition::Above, 80.0, Duration::from_secs(60)),
        }
    }

    /// An Alertmanager stand-in: answers 200 and keeps each body.
    fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v2/alerts", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                kept.lock().push(serde_json::from_slice(&body).unwrap());
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        (url, bodies)
    }

    #[test]
    fn firing_is_sent_then_resent_each_delay_and_resolved_kept_for_fifteen_minutes() {
        let (url, bodies) = receiver();
        let clock = Arc::new(ManualClock::new(T0));
        let sender = AlertmanagerSender::new(
            AlertmanagerTargets {
                urls: vec![url],
                timeout: Duration::from_secs(5),
                resend_delay: Duration::from_secs(60),
                external_url: "http://127.0.0.1:9".into(),
            },
            clock,
        );
        sender
            .notify_transition(&event(Transition::Pending, T0 - 60_000))
            .unwrap();
        assert_eq!(sender.send_due(T0), 0, "pending is not sent");
        sender
            .notify_transition(&event(Transition::Firing, T0))
            .unwrap();
        assert_eq!(sender.send_due(T0), 1);
        assert_eq!(sender.send_due(T0 + 59_000), 0, "not yet due again");
        assert_eq!(sender.send_due(T0 + 60_000), 1, "resent after the delay");
        sender
            .notify_transition(&event(Transition::Resolved, T0 + 70_000))
            .unwrap();
        assert_eq!(sender.send_due(T0 + 70_000), 1, "the resolution at once");
        assert_eq!(sender.send_due(T0 + 130_000), 1, "and again");
        assert_eq!(
            sender.send_due(T0 + 70_000 + RESOLVED_RETENTION_MS + 1),
            0,
            "then forgotten"
        );
        let bodies = bodies.lock();
        assert_eq!(bodies.len(), 4);
        let first = &bodies[0][0];
        assert_eq!(first["labels"]["alertname"], "HighCpu");
        assert_eq!(first["annotations"]["summary"], "hot");
        assert_eq!(first["startsAt"], rfc3339(T0 - 60_000));
        assert_eq!(
            first["endsAt"],
            rfc3339(T0 + 240_000),
            "four resend delays ahead"
        );
        assert_eq!(bodies[2][0]["endsAt"], rfc3339(T0 + 70_000));
        assert_eq!(sender.counts(), (4, 0));
    }

    #[test]
    fn an_unreachable_alertmanager_keeps_the_alert_due() {
        let clock = Arc::new(ManualClock::new(T0));
        let sender = AlertmanagerSender::new(
            AlertmanagerTargets {
                urls: vec!["http://127.0.0.1:1/api/v2/alerts".into()],
                timeout: Duration::from_secs(2),
                resend_delay: Duration::from_secs(60),
                external_url: String::new(),
            },
            clock,
        );
        sender
            .notify_transition(&event(Transition::Firing, T0))
            .unwrap();
        assert_eq!(sender.send_due(T0), 1);
        assert_eq!(sender.send_due(T0 + 1_000), 1, "still due after a failure");
        assert_eq!(sender.counts(), (0, 2));
    }
}
