//! Conformance suites: the behaviour every implementation of a slot must
//! have, written once and run by phase0 and by every craft.
//!
//! Each suite is a plain function that panics with a message naming the
//! broken clause of the contract; an implementation's test calls it with a
//! factory. Enable with the `testkit` feature in `[dev-dependencies]`.

pub mod alerting;
pub mod ingestion;
pub mod query;
pub mod queue;
pub mod storage;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Alert, Labels, Metric, Notifier, NotifyError};

/// A notifier that keeps every alert it is handed, for assertions.
#[derive(Default)]
pub struct CollectingNotifier {
    alerts: Mutex<Vec<Alert>>,
}

impl CollectingNotifier {
    /// An empty collector behind an `Arc`, ready to hand to an engine.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes the alerts collected so far.
    pub fn take(&self) -> Vec<Alert> {
        std::mem::take(&mut *self.alerts.lock())
    }
}

impl Notifier for CollectingNotifier {
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
        self.alerts.lock().push(alert.clone());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "collecting"
    }
}

/// A metric with labels from `pairs`.
pub fn metric(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) -> Metric {
    Metric::new(name, value, timestamp_ms).with_labels(Labels::from_pairs(labels.iter().copied()))
}
