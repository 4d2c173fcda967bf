//! Helpers shared by the integration tests: a manual clock, a channel that
//! records every transition, rule sets from text.

#![allow(dead_code)] // each test file uses a different subset

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
