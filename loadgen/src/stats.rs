//! What one worker observed: a latency histogram, responses by status,
//! failures by kind.
//!
//! Why per worker: the hot path then touches no shared counter, lock or atomic
//! — contention inside the load generator would show up as server latency.
//! Tallies are merged once, after the load stops. Latency goes into an HDR
//! histogram (microsecond values, 3 significant digits) so p99 and max are
//! exact enough without keeping every sample, and memory stays small: the
//! histogram grows only as far as the largest latency actually seen.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::FailureKind;

/// Status codes are three digits, 100..=599.
const STATUS_SLOTS: usize = 600;

pub struct Tally {
    /// Latency of requests that got a response, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Response count per status code.
    pub statuses: Vec<u64>,
    /// Failure count per `FailureKind::index()`.
    pub failures: [u64; FailureKind::COUNT],
    /// Metrics in requests answered 2xx (requests × batch size).
    pub accepted_metrics: u64,
    /// Requests still waiting for a response when the run's time was up;
    /// neither responses nor failures.
    pub in_flight_at_end: u64,
    pub connections_opened: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Self {
            // 3 significant digits is within the constructor's valid range
            // (0..=5), so this cannot fail; an auto-resizing histogram starts
            // small and grows to the largest value recorded.
            latency_us: Histogram::new(3).expect("3 significant digits is a valid precision"),
            statuses: vec![0; STATUS_SLOTS],
            failures: [0; FailureKind::COUNT],
            accepted_metrics: 0,
            in_flight_at_end: 0,
            connections_opened: 0,
        }
    }

    pub fn record_response(&mut self, status: u16, latency: Duration, metrics_in_request: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.latency_us.record(micros).is_err() {
            self.latency_us.saturating_record(micros);
        }
        if let Some(slot) = self.statuses.get_mut(usize::from(status)) {
            *slot += 1;
        }
        if (200..300).contains(&status) {
            self.accepted_metrics += metrics_in_request;
        }
    }

    pub fn record_failure(&mut self, kind: FailureKind) {
        self.failures[kind.index()] += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        // Both histograms auto-resize, so adding cannot run out of range.
        let _ = self.latency_us.add(&other.latency_us);
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        for (mine, theirs) in self.failures.iter_mut().zip(&other.failures) {
            *mine += theirs;
        }
        self.accepted_metrics += other.accepted_metrics;
        self.in_flight_at_end += other.in_flight_at_end;
        self.connections_opened += other.connections_opened;
    }

    pub fn responses(&self) -> u64 {
        self.statuses.iter().sum()
    }

    pub fn failures_total(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Requests that finished, with a response or a failure.
    pub fn requests(&self) -> u64 {
        self.responses() + self.failures_total()
    }

    /// Responses in `range` of status codes.
    pub fn responses_in(&self, range: std::ops::Range<u16>) -> u64 {
        range
            .filter_map(|status| self.statuses.get(usize::from(status)))
            .sum()
    }

    /// `(status, count)` for every status seen, ascending.
    pub fn status_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(status, count)| (status as u16, *count))
    }

    /// `(kind, count)` for every failure kind seen.
    pub fn failure_counts(&self) -> impl Iterator<Item = (FailureKind, u64)> + '_ {
        FailureKind::ALL
            .into_iter()
            .map(|kind| (kind, self.failures[kind.index()]))
            .filter(|(_, count)| *count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Tally::new();
        a.record_response(202, Duration::from_millis(2), 10);
        a.record_response(503, Duration::from_millis(4), 10);
        a.record_failure(FailureKind::Timeout);
        let mut b = Tally::new();
        b.record_response(202, Duration::from_secs(30), 10);
        b.record_failure(FailureKind::Timeout);
        b.connections_opened = 3;
        a.merge(&b);

        assert_eq!(a.responses(), 3);
        assert_eq!(a.failures_total(), 2);
        assert_eq!(a.requests(), 5);
        assert_eq!(a.accepted_metrics, 20);
        assert_eq!(a.responses_in(500..600), 1);
        assert_eq!(a.connections_opened, 3);
        assert_eq!(
            a.status_counts().collect::<Vec<_>>(),
            vec![(202, 2), (503, 1)]
        );
        assert_eq!(
            a.failure_counts().collect::<Vec<_>>(),
            vec![(FailureKind::Timeout, 2)]
        );
        // 3 significant digits: within 0.1 %.
        let max = a.latency_us.max() as f64;
        assert!((max - 30_000_000.0).abs() / 30_000_000.0 < 0.001, "{max}");
    }
}
