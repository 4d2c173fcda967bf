//! The figures of one `loadgen send`: aligned text for people, one JSON
//! object for scripts (`--json`), both from one struct so they cannot
//! disagree.
//!
//! Definitions:
//! - `samples`: samples in the bodies sent (numeric line-protocol fields, one
//!   per NDJSON line); `accepted_samples`: those in bodies answered 2xx.
//! - `requests`: HTTP exchanges, 503 retries included; `errors`: bodies not
//!   accepted in the end (another status, no answer, or 503 on every try).
//! - `send_s`: from the first request to the last answer.
//! - `accepted_samples_per_s` = accepted samples / `send_s`.
//! - `stored_samples_per_s` = accepted samples / (`send_s` + `catch_up_s`),
//!   where `catch_up_s` is how long after the last answer `/health` showed
//!   `queue_size` 0. Unknown (null, "n/a") without `/health`, with
//!   `--no-health`, or when the queue did not drain within `--drain-timeout`.
//! - latency: of every exchange that got an answer, retries included.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::health::{CatchUp, HealthSummary};
use crate::replay_file::{FileSummary, SendFormat};
use crate::report::LatencyMs;
use crate::send::{SendError, SendOutcome};

/// What was sent where, echoed so the figures carry their context.
pub struct SendShape<'a> {
    pub file: &'a Path,
    pub url: String,
    pub format: SendFormat,
    pub connections: usize,
    pub batch: usize,
    /// Reading and splitting the file, before the clock.
    pub prepare_time: Duration,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SendReport {
    pub mode: &'static str,
    pub file: String,
    pub url: String,
    pub format: &'static str,
    /// Line protocol: the timestamps' unit, and where it came from.
    pub precision: Option<&'static str>,
    pub precision_source: Option<&'static str>,
    pub connections: usize,
    pub batch: usize,
    pub prepare_s: f64,
    pub bodies: u64,
    pub lines: u64,
    pub skipped_lines: u64,
    pub samples: u64,
    pub bytes: u64,
    pub requests: u64,
    pub retries: u64,
    pub errors: u64,
    pub error_lines: u64,
    pub accepted_bodies: u64,
    pub accepted_lines: u64,
    pub accepted_samples: u64,
    pub send_s: f64,
    pub accepted_samples_per_s: f64,
    pub catch_up_s: Option<f64>,
    pub stored_samples_per_s: Option<f64>,
    pub peak_queue_size: Option<u64>,
    /// Set when the queue did not drain within the drain timeout.
    pub queue_size_after_drain: Option<u64>,
    pub drain_waited_s: Option<f64>,
    pub latency_ms: LatencyMs,
    pub statuses: BTreeMap<String, u64>,
    /// Exchanges that got no answer, by kind.
    pub failures: BTreeMap<String, u64>,
    pub connections_opened: u64,
    /// The first bodies not accepted, with the server's answer.
    pub first_errors: Vec<SendError>,
}

impl SendReport {
    pub fn new(shape: &SendShape<'_>, file: &FileSummary, outcome: &SendOutcome) -> Self {
        let tally = &outcome.tally;
        let requests = &tally.requests;
        let send_s = outcome.send_time.as_secs_f64();
        let accepted_samples = requests.accepted_metrics;
        let rate = |seconds: f64| {
            if seconds > 0.0 {
                accepted_samples as f64 / seconds
            } else {
                0.0
            }
        };
        let health = outcome.health.unwrap_or_else(HealthSummary::unknown);
        let (catch_up_s, queue_size_after_drain, drain_waited_s) = match health.catch_up {
            CatchUp::CaughtUp(after) => (Some(after.as_secs_f64()), None, None),
            CatchUp::Behind { waited, queue_size } => {
                (None, Some(queue_size), Some(waited.as_secs_f64()))
            }
            CatchUp::Unknown => (None, None, None),
        };
        let responses = requests.responses();
        let latency = &requests.latency_us;
        let quantile_ms =
            |q: f64| (responses > 0).then(|| latency.value_at_quantile(q) as f64 / 1000.0);
        Self {
            mode: "send",
            file: shape.file.display().to_string(),
            url: shape.url.clone(),
            format: shape.format.name(),
            precision: file.precision.map(|(p, _)| p.name()),
            precision_source: file.precision.map(|(_, source)| source.name()),
            connections: shape.connections,
            batch: shape.batch,
            prepare_s: shape.prepare_time.as_secs_f64(),
            bodies: file.bodies,
            lines: file.lines,
            skipped_lines: file.skipped_lines,
            samples: file.samples,
            bytes: file.bytes,
            requests: requests.requests(),
            retries: tally.retries,
            errors: tally.error_bodies,
            error_lines: tally.error_lines,
            accepted_bodies: tally.accepted_bodies,
            accepted_lines: tally.accepted_lines,
            accepted_samples,
            send_s,
            accepted_samples_per_s: rate(send_s),
            catch_up_s,
            stored_samples_per_s: catch_up_s.map(|catch_up| rate(send_s + catch_up)),
            peak_queue_size: health.peak_queue_size,
            queue_size_after_drain,
            drain_waited_s,
            latency_ms: LatencyMs {
                p50: quantile_ms(0.50),
                p90: quantile_ms(0.90),
                p99: quantile_ms(0.99),
                max: (responses > 0).then(|| latency.max() as f64 / 1000.0),
            },
            statuses: requests
                .status_counts()
                .map(|(status, count)| (status.to_string(), count))
                .collect(),
            failures: requests
                .failure_counts()
                .map(|(kind, count)| (kind.label().to_string(), count))
                .collect(),
            connections_opened: requests.connections_opened,
            first_errors: tally.first_errors.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        // Numbers, strings and string-keyed maps always serialize.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "loadgen send {} → {}", self.file, self.url)?;
        let mut file = format!(
            "{} {} lines, {} samples, {} ({} bodies of ≤ {} lines), read in {:.2} s",
            grouped(self.lines),
            self.format,
            grouped(self.samples),
            megabytes(self.bytes),
            self.bodies,
            grouped(self.batch as u64),
            self.prepare_s
        );
        if self.skipped_lines > 0 {
            let _ = write!(file, "; {} blank/comment lines skipped", self.skipped_lines);
        }
        row(out, "file", &file)?;
        if let (Some(precision), Some(source)) = (self.precision, self.precision_source) {
            row(out, "precision", &format!("{precision} ({source})"))?;
        }
        row(
            out,
            "load",
            &format!(
                "{} keep-alive connection{} ({} opened), bodies in file order",
                self.connections,
                if self.connections == 1 { "" } else { "s" },
                self.connections_opened
            ),
        )?;
        row(
            out,
            "requests",
            &format!(
                "{} ({} bodies accepted, {} retries after 503, {} errors)",
                self.requests, self.accepted_bodies, self.retries, self.errors
            ),
        )?;
        row(out, "send time", &format!("{:.2} s", self.send_s))?;
        row(
            out,
            "accepted",
            &format!(
                "{} samples/s ({} samples in 2xx-answered bodies)",
                grouped(self.accepted_samples_per_s.round() as u64),
                grouped(self.accepted_samples)
            ),
        )?;
        let stored = match (self.stored_samples_per_s, self.catch_up_s) {
            (Some(rate), Some(catch_up)) => format!(
                "{} samples/s (queue empty {catch_up:.2} s after the last answer)",
                grouped(rate.round() as u64)
            ),
            _ => match self.queue_size_after_drain {
                Some(left) => format!(
                    "n/a: queue_size still {left} after {:.0} s of --drain-timeout",
                    self.drain_waited_s.unwrap_or_default()
                ),
                None => "n/a (no queue_size from /health, or --no-health)".to_string(),
            },
        };
        row(out, "stored", &stored)?;
        let latency = &self.latency_ms;
        row(
            out,
            "latency",
            &format!(
                "p50 {}   p90 {}   p99 {}   max {} (per request)",
                ms(latency.p50),
                ms(latency.p90),
                ms(latency.p99),
                ms(latency.max)
            ),
        )?;
        row(out, "statuses", &counts(&self.statuses))?;
        if !self.failures.is_empty() {
            row(out, "no answer", &counts(&self.failures))?;
        }
        if let Some(peak) = self.peak_queue_size {
            row(out, "queue_size", &format!("peak {}", grouped(peak)))?;
        }
        for error in &self.first_errors {
            let status = error
                .status
                .map_or_else(|| "-".to_string(), |status| status.to_string());
            row(
                out,
                "error",
                &format!(
                    "body {} (line {}): {status} {}",
                    error.body, error.first_line, error.message
                ),
            )?;
        }
        let verdict = if self.errors == 0 {
            format!("all {} samples accepted", grouped(self.accepted_samples))
        } else {
            format!(
                "{} of {} bodies NOT accepted ({} lines): see statuses and errors",
                self.errors,
                self.bodies,
                grouped(self.error_lines)
            )
        };
        row(out, "result", &verdict)
    }
}

fn row(out: &mut String, label: &str, value: &str) -> std::fmt::Result {
    writeln!(out, "  {label:<12} {value}")
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} ms"))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// 8640000 → "8,640,000".
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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
    use crate::replay_file::{Precision, PrecisionSource};
    use crate::send::SendTally;
    use crate::stats::Tally;

    fn report(catch_up: CatchUp, errors: bool) -> SendReport {
        let file = FileSummary {
            bodies: 10,
            lines: 1_000,
            samples: 1_000,
            bytes: 60_000,
            skipped_lines: 0,
            write_path: "/write?precision=ns".into(),
            precision: Some((Precision::Ns, PrecisionSource::Detected)),
        };
        let mut requests = Tally::new();
        for _ in 0..10 {
            requests.record_response(204, Duration::from_millis(2), 100);
        }
        requests.record_response(503, Duration::from_millis(1), 0);
        let mut first_errors = Vec::new();
        if errors {
            requests.record_response(400, Duration::from_millis(1), 0);
            first_errors.push(SendError {
                body: 3,
                first_line: 301,
                status: Some(400),
                message: "{\"error\":\"bad\"}".into(),
            });
        }
        let outcome = SendOutcome {
            tally: SendTally {
                requests,
                accepted_bodies: 10,
                accepted_lines: 1_000,
                error_bodies: u64::from(errors),
                error_lines: if errors { 100 } else { 0 },
                retries: 1,
                first_errors,
            },
            send_time: Duration::from_secs(2),
            health: Some(HealthSummary {
                peak_queue_size: Some(700),
                catch_up,
            }),
        };
        let shape = SendShape {
            file: Path::new("/tmp/ds/data.lp"),
            url: "http://127.0.0.1:8080/write?precision=ns".into(),
            format: SendFormat::Lp,
            connections: 4,
            batch: 100,
            prepare_time: Duration::from_millis(30),
        };
        SendReport::new(&shape, &file, &outcome)
    }

    #[test]
    fn figures_text_and_json_agree() {
        let report = report(CatchUp::CaughtUp(Duration::from_secs(2)), false);
        assert_eq!(report.accepted_samples, 1_000);
        assert_eq!(report.accepted_samples_per_s, 500.0);
        assert_eq!(report.stored_samples_per_s, Some(250.0));
        assert_eq!(report.requests, 11);
        let text = report.to_text();
        assert!(text.contains("accepted     500 samples/s"), "{text}");
        assert!(
            text.contains("stored       250 samples/s (queue empty 2.00 s"),
            "{text}"
        );
        assert!(text.contains("1,000 lp lines, 1,000 samples"), "{text}");
        assert!(
            text.contains("ns (detected from the first timestamp)"),
            "{text}"
        );
        assert!(text.contains("all 1,000 samples accepted"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(json["stored_samples_per_s"], 250.0);
        assert_eq!(json["retries"], 1);
        assert_eq!(json["statuses"]["503"], 1);
        assert_eq!(json["precision"], "ns");
    }

    #[test]
    fn errors_and_an_undrained_queue_are_shown() {
        let report = report(
            CatchUp::Behind {
                waited: Duration::from_secs(120),
                queue_size: 42,
            },
            true,
        );
        assert_eq!(report.stored_samples_per_s, None);
        let text = report.to_text();
        assert!(
            text.contains("n/a: queue_size still 42 after 120 s"),
            "{text}"
        );
        assert!(
            text.contains("error        body 3 (line 301): 400 {\"error\":\"bad\"}"),
            "{text}"
        );
        assert!(
            text.contains("1 of 10 bodies NOT accepted (100 lines)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert!(json["stored_samples_per_s"].is_null());
        assert_eq!(json["first_errors"][0]["status"], 400);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(8_640_000), "8,640,000");
    }
}
