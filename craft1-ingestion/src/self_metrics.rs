//! The server's own health in Prometheus text format, on `GET /metrics`:
//! requests by route and status, samples accepted and rejected (by reason),
//! queue depth, open connections, and a request-latency histogram.
//!
//! A monitoring server that cannot be monitored is a black box; this is the
//! page Prometheus itself would scrape. The counters every request touches
//! are sharded by thread: each worker adds to its own cache line, and only
//! `render` (a scrape) adds the shards up. One shared set of atomics was
//! cheap per instruction but not per request: with every worker adding to
//! the same lines, each add first had to pull the line from the other
//! core. Story: docs chapter 1, "Watching the server".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Why samples were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// Failed to decode or validate.
    Invalid,
    /// The queue was full (503).
    QueueFull,
    /// Over the body or decompression limit (413).
    TooLarge,
    /// Over the client's rate (429).
    RateLimited,
    /// Missing or wrong token (401).
    Unauthorized,
}

impl RejectReason {
    fn label(self) -> &'static str {
        match self {
            RejectReason::Invalid => "invalid",
            RejectReason::QueueFull => "queue_full",
            RejectReason::TooLarge => "too_large",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::Unauthorized => "unauthorized",
        }
    }

    const ALL: [RejectReason; 5] = [
        RejectReason::Invalid,
        RejectReason::QueueFull,
        RejectReason::TooLarge,
        RejectReason::RateLimited,
        RejectReason::Unauthorized,
    ];
}

/// Status codes with their own lock-free counter per route; the rare others
/// share a locked table.
const COMMON_STATUSES: [u16; 8] = [200, 202, 204, 400, 404, 413, 429, 503];
/// The bounded route labels (`handler::route_label`), in a fixed order.
pub const ROUTES: [&str; 9] = [
    "/metrics",
    "/write",
    "/api/v2/write",
    "/api/v1/write",
    "/query",
    "/health",
    "/ping",
    "/api/v1/*",
    "other",
];

/// Counters shared by every connection of one server.
///
/// Every request touches them, from every worker thread at once, so the
/// hot path is one relaxed atomic add per counter on the calling thread's
/// own shard — no lock, no line shared with another core — and the latency
/// histogram stores per-bucket counts (cumulated only when rendered) so a
/// request increments one bucket, not up to twelve.
#[derive(Debug, Default)]
pub struct SelfMetrics {
    shards: [Shard; SHARDS],
    other_requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Requests refused, by [`RejectReason`] (in `RejectReason::ALL` order).
    rejected_requests: [AtomicU64; 5],
    open_connections: AtomicU64,
    connections_refused: AtomicU64,
}

/// Shards of the per-request counters: more than any machine here has
/// cores, so threads rarely share one.
const SHARDS: usize = 16;

/// One thread's share of the per-request counters, alone on its cache
/// lines (128 bytes: adjacent-line prefetchers pull lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    common_requests: [[AtomicU64; COMMON_STATUSES.len()]; ROUTES.len()],
    samples_accepted: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// This thread's shard: threads take shards in turn as they first count.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}

impl SelfMetrics {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// A counter summed over the shards.
    fn total(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .sum()
    }

    /// Counts one answered request.
    pub fn record_request(&self, route: &'static str, status: u16, latency: Duration) {
        let shard = self.shard();
        let route_index = ROUTES.iter().position(|r| *r == route);
        let status_index = COMMON_STATUSES.iter().position(|s| *s == status);
        match (route_index, status_index) {
            (Some(r), Some(s)) => {
                shard.common_requests[r][s].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                *self
                    .other_requests
                    .lock()
                    .entry((route, status))
                    .or_insert(0) += 1
            }
        }
        let seconds = latency.as_secs_f64();
        // Per-bucket (not cumulative) counts; `render` adds them up.
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            shard.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        shard.latency_count.fetch_add(1, Ordering::Relaxed);
        shard.latency_sum_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts samples that went into the queue.
    pub fn record_accepted(&self, samples: usize) {
        self.shard()
            .samples_accepted
            .fetch_add(samples as u64, Ordering::Relaxed);
    }

    /// Counts a refused request.
    pub fn record_rejected(&self, reason: RejectReason) {
        let index = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected_requests[index].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection refused at the connection limit.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.write_text(&mut out, queue_depth);
        out
    }

    fn write_text(&self, out: &mut String, queue_depth: usize) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP ingest_requests_total HTTP requests answered, by route and status."
        )?;
        writeln!(out, "# TYPE ingest_requests_total counter")?;
        let mut requests: BTreeMap<(&'static str, u16), u64> = self.other_requests.lock().clone();
        for (r, route) in ROUTES.iter().enumerate() {
            for (s, status) in COMMON_STATUSES.iter().enumerate() {
                let count = self.total(|shard| &shard.common_requests[r][s]);
                if count > 0 {
                    requests.insert((route, *status), count);
                }
            }
        }
        for ((route, status), count) in &requests {
            writeln!(
                out,
                "ingest_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            )?;
        }
        writeln!(
            out,
            "# HELP ingest_samples_accepted_total Samples accepted into the queue."
        )?;
        writeln!(out, "# TYPE ingest_samples_accepted_total counter")?;
        writeln!(
            out,
            "ingest_samples_accepted_total {}",
            self.total(|shard| &shard.samples_accepted)
        )?;
        writeln!(
            out,
            "# HELP ingest_requests_rejected_total Write requests refused, by reason."
        )?;
        writeln!(out, "# TYPE ingest_requests_rejected_total counter")?;
        for (reason, count) in RejectReason::ALL.iter().zip(&self.rejected_requests) {
            writeln!(
                out,
                "ingest_requests_rejected_total{{reason=\"{}\"}} {}",
                reason.label(),
                count.load(Ordering::Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP ingest_queue_depth Samples accepted but not yet stored."
        )?;
        writeln!(out, "# TYPE ingest_queue_depth gauge")?;
        writeln!(out, "ingest_queue_depth {queue_depth}")?;
        writeln!(
            out,
            "# HELP ingest_open_connections Client connections open now."
        )?;
        writeln!(out, "# TYPE ingest_open_connections gauge")?;
        writeln!(
            out,
            "ingest_open_connections {}",
            self.open_connections.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP ingest_connections_refused_total Connections closed at the connection limit."
        )?;
        writeln!(out, "# TYPE ingest_connections_refused_total counter")?;
        writeln!(
            out,
            "ingest_connections_refused_total {}",
            self.connections_refused.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP ingest_request_duration_seconds Time from a whole request to its answer."
        )?;
        writeln!(out, "# TYPE ingest_request_duration_seconds histogram")?;
        let mut cumulative = 0;
        for (bucket, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.total(|shard| &shard.latency_buckets[bucket]);
            writeln!(
                out,
                "ingest_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            )?;
        }
        let count = self.total(|shard| &shard.latency_count);
        writeln!(
            out,
            "ingest_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        )?;
        writeln!(
            out,
            "ingest_request_duration_seconds_sum {}",
            self.total(|shard| &shard.latency_sum_micros) as f64 / 1e6
        )?;
        writeln!(out, "ingest_request_duration_seconds_count {count}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = SelfMetrics::default();
        metrics.record_request("/metrics", 202, Duration::from_micros(300));
        metrics.record_request("/metrics", 202, Duration::from_millis(3));
        metrics.record_request("/write", 400, Duration::from_secs(2));
        metrics.record_request("other", 418, Duration::from_millis(1));
        metrics.record_accepted(5);
        metrics.record_rejected(RejectReason::QueueFull);
        let text = metrics.render(7);
        assert!(
            text.contains("ingest_requests_total{route=\"/metrics\",status=\"202\"} 2"),
            "{text}"
        );
        assert!(text.contains("ingest_requests_total{route=\"/write\",status=\"400\"} 1"));
        assert!(text.contains("ingest_samples_accepted_total 5"));
        assert!(text.contains("ingest_requests_rejected_total{reason=\"queue_full\"} 1"));
        assert!(text.contains("ingest_queue_depth 7"));
        assert!(text.contains("ingest_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("ingest_request_duration_seconds_bucket{le=\"0.005\"} 3"));
        assert!(text.contains("ingest_requests_total{route=\"other\",status=\"418\"} 1"));
        assert!(
            text.contains("ingest_request_duration_seconds_bucket{le=\"1\"} 3"),
            "{text}"
        );
        assert!(text.contains("ingest_request_duration_seconds_bucket{le=\"+Inf\"} 4"));
        assert!(text.contains("ingest_request_duration_seconds_count 4"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        }
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let metrics = SelfMetrics::default();
        std::thread::scope(|scope| {
            for _ in 0..20 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        metrics.record_request("/write", 204, Duration::from_micros(50));
                        metrics.record_accepted(3);
                    }
                });
            }
        });
        let text = metrics.render(0);
        assert!(text.contains("ingest_requests_total{route=\"/write\",status=\"204\"} 2000"));
        assert!(text.contains("ingest_samples_accepted_total 6000"));
        assert!(text.contains("ingest_request_duration_seconds_bucket{le=\"0.0001\"} 2000"));
        assert!(text.contains("ingest_request_duration_seconds_count 2000"));
    }
}
