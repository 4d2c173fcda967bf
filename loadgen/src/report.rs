//! Turns a finished run into figures: an aligned text report for people, or a
//! single JSON object for scripts (`--json`).
//!
//! Why both from one struct: chapters quote the text and compare runs with the
//! JSON; computing the figures once guarantees they say the same thing.
//! Definitions used everywhere:
//! - `requests`: requests that finished — a response of any status, or a
//!   failure (connect refused, reset, timeout, ...). Requests cut off by the
//!   end of `--duration` are reported separately as `in_flight_at_end`.
//! - `rps`: responses (any status) per second of wall time.
//! - `metrics_per_s`: metrics in 2xx-answered requests per second.
//! - latency: of requests that got a response, from the first byte sent (or
//!   the connect, when one was needed) to the last byte received.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::body::BodySpec;
use crate::health::{CatchUp, HealthSummary};
use crate::stats::Tally;

/// How the load was shaped; echoed in the report so numbers carry context.
#[derive(Clone, Debug)]
pub struct LoadShape {
    pub mode: &'static str,
    pub url: String,
    /// Concurrent clients (`run`) or concurrent requests (`burst`).
    pub concurrency: u64,
    pub keep_alive: bool,
    pub batch: u64,
    pub body: BodySpec,
    pub slow_body: Option<Duration>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct LatencyMs {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// All figures of one run. Serialized as the `--json` output.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Report {
    pub mode: &'static str,
    pub url: String,
    pub concurrency: u64,
    pub keep_alive: bool,
    pub batch: u64,
    /// `--format`: json, ndjson, lp or remote-write.
    pub format: &'static str,
    pub gzip: bool,
    pub slow_body_ms: Option<u64>,
    pub requests: u64,
    pub responses: u64,
    pub failed: u64,
    pub in_flight_at_end: u64,
    pub duration_s: f64,
    pub rps: f64,
    pub metrics_per_s: f64,
    pub latency_ms: LatencyMs,
    pub statuses: BTreeMap<String, u64>,
    /// Failures by kind, plus `4xx` / `5xx` response counts.
    pub errors: BTreeMap<String, u64>,
    pub connections_opened: u64,
    pub peak_queue_size: Option<u64>,
    pub catch_up_s: Option<f64>,
    /// Set when the queue did not drain within the drain timeout.
    pub queue_size_after_drain: Option<u64>,
    pub drain_waited_s: Option<f64>,
    /// With `--slow-clients`: the figures of the clients that were not slow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_clients: Option<ClientGroup>,
}

/// Throughput and latency of a subset of the clients.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ClientGroup {
    pub connections: u64,
    pub rps: f64,
    pub latency_ms: LatencyMs,
}

impl Report {
    pub fn new(
        shape: &LoadShape,
        tally: &Tally,
        elapsed: Duration,
        health: Option<HealthSummary>,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        let responses = tally.responses();
        let latency = &tally.latency_us;
        let quantile_ms =
            |q: f64| (responses > 0).then(|| latency.value_at_quantile(q) as f64 / 1000.0);

        let mut errors: BTreeMap<String, u64> = tally
            .failure_counts()
            .map(|(kind, count)| (kind.label().to_string(), count))
            .collect();
        for (label, range) in [("4xx", 400..500), ("5xx", 500..600)] {
            let count = tally.responses_in(range);
            if count > 0 {
                errors.insert(label.to_string(), count);
            }
        }

        let health = health.unwrap_or_else(HealthSummary::unknown);
        let (catch_up_s, queue_size_after_drain, drain_waited_s) = match health.catch_up {
            CatchUp::CaughtUp(after) => (Some(after.as_secs_f64()), None, None),
            CatchUp::Behind { waited, queue_size } => {
                (None, Some(queue_size), Some(waited.as_secs_f64()))
            }
            CatchUp::Unknown => (None, None, None),
        };

        Self {
            mode: shape.mode,
            url: shape.url.clone(),
            concurrency: shape.concurrency,
            keep_alive: shape.keep_alive,
            batch: shape.batch,
            format: shape.body.format.name(),
            gzip: shape.body.gzip,
            slow_body_ms: shape.slow_body.map(|d| d.as_millis() as u64),
            requests: tally.requests(),
            responses,
            failed: tally.failures_total(),
            in_flight_at_end: tally.in_flight_at_end,
            duration_s: seconds,
            rps: per_second(responses),
            metrics_per_s: per_second(tally.accepted_metrics),
            latency_ms: LatencyMs {
                p50: quantile_ms(0.50),
                p90: quantile_ms(0.90),
                p99: quantile_ms(0.99),
                max: (responses > 0).then(|| latency.max() as f64 / 1000.0),
            },
            statuses: tally
                .status_counts()
                .map(|(status, count)| (status.to_string(), count))
                .collect(),
            errors,
            connections_opened: tally.connections_opened,
            peak_queue_size: health.peak_queue_size,
            catch_up_s,
            queue_size_after_drain,
            drain_waited_s,
            fast_clients: None,
        }
    }

    /// Adds the figures of the clients that sent at full speed.
    pub fn add_fast_clients(&mut self, connections: u64, tally: &Tally, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let responses = tally.responses();
        let quantile_ms =
            |q: f64| (responses > 0).then(|| tally.latency_us.value_at_quantile(q) as f64 / 1000.0);
        self.fast_clients = Some(ClientGroup {
            connections,
            rps: if seconds > 0.0 {
                responses as f64 / seconds
            } else {
                0.0
            },
            latency_ms: LatencyMs {
                p50: quantile_ms(0.50),
                p90: quantile_ms(0.90),
                p99: quantile_ms(0.99),
                max: (responses > 0).then(|| tally.latency_us.max() as f64 / 1000.0),
            },
        });
    }

    /// Requests that did not get a 2xx: failures plus non-2xx responses.
    pub fn not_accepted(&self) -> u64 {
        let accepted: u64 = self
            .statuses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, count)| count)
            .sum();
        self.requests - accepted
    }

    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and string-keyed maps always serializes.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        let body = if self.gzip {
            format!("{} body, gzip", self.format)
        } else {
            format!("{} body", self.format)
        };
        let shape = match self.mode {
            "burst" => format!(
                "{} concurrent one-shot requests, a new connection each, {body}",
                self.concurrency
            ),
            _ => {
                let mut shape = format!(
                    "{} connection{}, {}, batch {}",
                    self.concurrency,
                    if self.concurrency == 1 { "" } else { "s" },
                    if self.keep_alive {
                        "keep-alive"
                    } else {
                        "no keep-alive"
                    },
                    self.batch
                );
                let _ = write!(shape, ", {body}");
                if let Some(ms) = self.slow_body_ms {
                    match &self.fast_clients {
                        Some(fast) => {
                            let _ = write!(
                                shape,
                                ", slow body {ms} ms on {} of them",
                                self.concurrency - fast.connections
                            );
                        }
                        None => {
                            let _ = write!(shape, ", slow body {ms} ms");
                        }
                    }
                }
                shape
            }
        };
        writeln!(out, "loadgen {} → {}", self.mode, self.url)?;
        row(out, "load", &shape)?;
        let mut requests = format!(
            "{} ({} responses, {} failed",
            self.requests, self.responses, self.failed
        );
        if self.in_flight_at_end > 0 {
            let _ = write!(requests, ", {} cut off at end", self.in_flight_at_end);
        }
        requests.push(')');
        row(out, "requests", &requests)?;
        // A burst against a fast server takes milliseconds; "0.00 s" says nothing.
        let wall_time = if self.duration_s < 1.0 {
            format!("{:.2} ms", self.duration_s * 1000.0)
        } else {
            format!("{:.2} s", self.duration_s)
        };
        row(out, "wall time", &wall_time)?;
        row(
            out,
            "throughput",
            &format!(
                "{:.1} req/s, {:.1} metrics/s accepted",
                self.rps, self.metrics_per_s
            ),
        )?;
        let latency = &self.latency_ms;
        row(
            out,
            "latency",
            &format!(
                "p50 {}   p90 {}   p99 {}   max {}",
                ms(latency.p50),
                ms(latency.p90),
                ms(latency.p99),
                ms(latency.max)
            ),
        )?;
        if let Some(fast) = &self.fast_clients {
            row(
                out,
                "fast clients",
                &format!(
                    "{} of them: {:.1} req/s, p50 {}   p99 {}",
                    fast.connections,
                    fast.rps,
                    ms(fast.latency_ms.p50),
                    ms(fast.latency_ms.p99)
                ),
            )?;
        }
        row(out, "statuses", &counts(&self.statuses))?;
        row(out, "errors", &counts(&self.errors))?;
        row(
            out,
            "connections",
            &format!("{} opened", self.connections_opened),
        )?;
        row(out, "queue_size", &self.queue_text())?;
        let not_accepted = self.not_accepted();
        let verdict = if self.requests == 0 {
            "no request finished".to_string()
        } else if not_accepted == 0 {
            format!("all {} requests accepted (2xx)", self.requests)
        } else {
            format!(
                "{not_accepted} of {} requests NOT accepted (see statuses/errors)",
                self.requests
            )
        };
        row(out, "result", &verdict)
    }

    fn queue_text(&self) -> String {
        let peak = match self.peak_queue_size {
            Some(peak) => format!("peak {peak}"),
            None => "peak n/a".to_string(),
        };
        let catch_up = match (self.catch_up_s, self.queue_size_after_drain) {
            (Some(after), _) => format!("storage caught up {after:.2} s after load stopped"),
            (None, Some(left)) => format!(
                "did not catch up within {:.0} s, queue_size still {left}",
                self.drain_waited_s.unwrap_or_default()
            ),
            (None, None) => "catch-up n/a".to_string(),
        };
        format!("{peak}; {catch_up}")
    }
}

fn row(out: &mut String, label: &str, value: &str) -> std::fmt::Result {
    writeln!(out, "  {label:<12} {value}")
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} ms"))
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_string();
    }
    map.iter()
        .map(|(key, count)| format!("{key}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::BodyFormat;
    use crate::client::FailureKind;

    fn shape() -> LoadShape {
        LoadShape {
            mode: "run",
            url: "http://127.0.0.1:8080/metrics".into(),
            concurrency: 4,
            keep_alive: true,
            batch: 10,
            body: BodySpec::new(BodyFormat::Lp, true).expect("valid"),
            slow_body: None,
        }
    }

    #[test]
    fn figures_and_json() {
        let mut tally = Tally::new();
        for _ in 0..90 {
            tally.record_response(202, Duration::from_micros(1500), 10);
        }
        for _ in 0..5 {
            tally.record_response(503, Duration::from_micros(300), 10);
        }
        for _ in 0..5 {
            tally.record_failure(FailureKind::ConnectRefused);
        }
        let health = HealthSummary {
            peak_queue_size: Some(40),
            catch_up: CatchUp::CaughtUp(Duration::from_millis(1230)),
        };
        let report = Report::new(&shape(), &tally, Duration::from_secs(2), Some(health));
        assert_eq!(report.requests, 100);
        assert_eq!(report.responses, 95);
        assert_eq!(report.rps, 47.5);
        assert_eq!(report.metrics_per_s, 450.0);
        assert_eq!(report.not_accepted(), 10);
        assert_eq!(report.errors.get("5xx"), Some(&5));
        assert_eq!(report.errors.get("connect refused"), Some(&5));
        let p50 = report.latency_ms.p50.expect("p50");
        assert!((p50 - 1.5).abs() < 0.01, "{p50}");

        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(json["statuses"]["202"], 90);
        assert_eq!(json["peak_queue_size"], 40);
        assert_eq!(json["catch_up_s"], 1.23);
        assert!(json["latency_ms"]["p99"].is_number());
        assert_eq!(json["format"], "lp");
        assert_eq!(json["gzip"], true);

        let text = report.to_text();
        assert!(text.contains("batch 10, lp body, gzip"), "{text}");
        assert!(text.contains("statuses     202: 90, 503: 5"), "{text}");
        assert!(
            text.contains("storage caught up 1.23 s after load stopped"),
            "{text}"
        );
        assert!(text.contains("10 of 100 requests NOT accepted"), "{text}");
    }

    #[test]
    fn empty_run_and_unknown_health() {
        let report = Report::new(&shape(), &Tally::new(), Duration::ZERO, None);
        assert_eq!(report.rps, 0.0);
        assert_eq!(report.latency_ms.p50, None);
        let text = report.to_text();
        assert!(text.contains("p50 n/a"), "{text}");
        assert!(text.contains("peak n/a; catch-up n/a"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert!(json["catch_up_s"].is_null());
    }

    #[test]
    fn behind_queue_is_reported() {
        let health = HealthSummary {
            peak_queue_size: Some(900),
            catch_up: CatchUp::Behind {
                waited: Duration::from_secs(60),
                queue_size: 12,
            },
        };
        let report = Report::new(
            &shape(),
            &Tally::new(),
            Duration::from_secs(1),
            Some(health),
        );
        assert!(
            report
                .to_text()
                .contains("did not catch up within 60 s, queue_size still 12")
        );
    }
}
