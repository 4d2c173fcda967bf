//! Helpers shared by the integration tests: a manual clock, a channel that
//! records every transition, rule sets from text.

#![allow(dead_code)] // each test file uses a different subset

pub mod servers;

use std::sync::Arc;

use common::testkit::metric;
use common::{ManualClock, Metric, NotifyError};
use craft5_alerting::rules::file::parse_rule_file;
use craft5_alerting::{
    AlertEvent, EngineOptions, RuleSet, StreamingAlertEngine, Transition, TransitionNotifier,
};
use parking_lot::Mutex;

/// Records every transition it is told about.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<AlertEvent>>,
}

impl Recorder {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The events so far, emptied.
    pub fn take(&self) -> Vec<AlertEvent> {
        std::mem::take(&mut *self.events.lock())
    }

    /// The transitions so far as (kind, alert name, series text), emptied.
    pub fn take_summary(&self) -> Vec<(Transition, String, String)> {
        self.take()
            .into_iter()
            .map(|e| (e.transition, e.alert_name, e.series.to_string()))
            .collect()
    }
}

impl TransitionNotifier for Recorder {
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError> {
        self.events.lock().push(event.clone());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "recorder"
    }
}

pub const T0: i64 = 1_700_000_000_000;

pub fn rules(yaml: &str) -> RuleSet {
    parse_rule_file(yaml, "test.yml").expect("test rules load")
}

/// An engine on a manual clock at `T0`, recording transitions.
pub fn engine(yaml: &str) -> (StreamingAlertEngine, Arc<ManualClock>, Arc<Recorder>) {
    let clock = Arc::new(ManualClock::new(T0));
    let recorder = Recorder::shared();
    let options = EngineOptions::new(clock.clone()).with_transition_notifier(recorder.clone());
    let engine = StreamingAlertEngine::new(rules(yaml), Vec::new(), options).expect("engine");
    (engine, clock, recorder)
}

pub fn sample(name: &str, host: &str, value: f64, ts: i64) -> Metric {
    metric(name, &[("host", host)], value, ts)
}

/// An integration that records what it is sent, and fails on demand.
pub struct RecordingIntegration {
    kind: &'static str,
    send_resolved: bool,
    sent: Mutex<Vec<craft5_alerting::Notification>>,
    calls: std::sync::atomic::AtomicUsize,
    /// Fail calls whose 0-based number satisfies this.
    fail_when: Box<dyn Fn(usize) -> bool + Send + Sync>,
}

impl RecordingIntegration {
    pub fn new() -> Arc<Self> {
        Self::failing_when(|_| false)
    }

    pub fn without_resolved() -> Arc<Self> {
        Arc::new(RecordingIntegration {
            send_resolved: false,
            ..Self::build(|_| false)
        })
    }

    pub fn failing_when(fail_when: impl Fn(usize) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self::build(fail_when))
    }

    fn build(fail_when: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        RecordingIntegration {
            kind: "recording",
            send_resolved: true,
            sent: Mutex::new(Vec::new()),
            calls: std::sync::atomic::AtomicUsize::new(0),
            fail_when: Box::new(fail_when),
        }
    }

    /// Everything delivered so far, emptied.
    pub fn take(&self) -> Vec<craft5_alerting::Notification> {
        std::mem::take(&mut *self.sent.lock())
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl craft5_alerting::Integration for RecordingIntegration {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(
        &self,
        notification: &craft5_alerting::Notification,
    ) -> Result<(), craft5_alerting::delivery::receivers::DeliveryError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if (self.fail_when)(call) {
            return Err(
                craft5_alerting::delivery::receivers::DeliveryError::Retryable(format!(
                    "scripted failure of call {call}"
                )),
            );
        }
        self.sent.lock().push(notification.clone());
        Ok(())
    }
}

/// A summary of a notification: (receiver, status, [(alertname host, status)]).
pub fn describe(n: &craft5_alerting::Notification) -> (String, &'static str, Vec<String>) {
    (
        n.receiver.clone(),
        n.status().as_str(),
        n.alerts
            .iter()
            .map(|a| {
                format!(
                    "{} {} {}",
                    a.alert_name,
                    a.labels.get("host").unwrap_or("-"),
                    a.status.as_str()
                )
            })
            .collect(),
    )
}

/// An `AlertingService` on a manual clock at `T0` over `rules_yaml` and
/// `routing_yaml`, whose receivers named in `recorders` send to those
/// recorders; state in `state_dir` when given.
pub fn service(
    rules_yaml: &str,
    routing_yaml: &str,
    recorders: &[(&str, Arc<RecordingIntegration>)],
    clock: &Arc<ManualClock>,
    state_dir: Option<&std::path::Path>,
) -> craft5_alerting::AlertingService {
    let mut routing =
        craft5_alerting::RoutingConfig::parse(routing_yaml, "am.yml").expect("routing config");
    for (name, recorder) in recorders {
        routing.receivers.insert_integrations(
            name,
            vec![recorder.clone() as Arc<dyn craft5_alerting::Integration>],
        );
    }
    let mut options = craft5_alerting::ServiceOptions::new(clock.clone());
    options.jitter_seed = 7;
    if let Some(dir) = state_dir {
        options = options.with_state_file(dir.join("state.json"));
    }
    craft5_alerting::AlertingService::new(rules(rules_yaml), routing, options).expect("service")
}

/// A notification for receiver tests: HighCpu on `hosts` (firing), and
/// resolved on `resolved_hosts`.
pub fn notification(hosts: &[&str], resolved_hosts: &[&str]) -> craft5_alerting::Notification {
    use craft5_alerting::{NotifiedAlert, Status};
    use std::collections::BTreeMap;
    let alert = |host: &str, status: Status| {
        let labels = common::Labels::from_pairs([
            ("alertname", "HighCpu"),
            ("host", host),
            ("severity", "warning"),
        ]);
        NotifiedAlert {
            fingerprint: craft5_alerting::fingerprint::labels_fingerprint(&labels),
            status,
            alert_name: "HighCpu".into(),
            rule: "node/HighCpu".into(),
            labels,
            annotations: BTreeMap::from([
                ("summary".to_string(), format!("CPU hot on {host}")),
                (
                    "runbook".to_string(),
                    "https://runbooks.example/cpu".to_string(),
                ),
            ]),
            starts_at_ms: T0,
            ends_at_ms: (status == Status::Resolved).then_some(T0 + 90_000),
            metric: "cpu_usage".into(),
            series: common::Labels::from_pairs([("host", host)]),
            condition: "avg_over_time(cpu_usage[1m]) > 80".into(),
            value: Some(92.5),
            sample_count: 6,
        }
    };
    let alerts = hosts
        .iter()
        .map(|h| alert(h, Status::Firing))
        .chain(resolved_hosts.iter().map(|h| alert(h, Status::Resolved)))
        .collect();
    craft5_alerting::Notification {
        id: "5eed5eed5eed5eed".into(),
        receiver: "team".into(),
        integration: 0,
        integration_name: "webhook[0]".into(),
        group_key: "{}:{alertname=\"HighCpu\"}".into(),
        group_labels: common::Labels::from_pairs([("alertname", "HighCpu")]),
        alerts,
        created_at_ms: T0 + 30_000,
        external_url: "http://monitor.example:8080".into(),
        fallback_receiver: None,
        fallback_of: None,
    }
}
