//! Seeded, realistic metric traffic: the bodies loadgen sends.
//!
//! Why realistic: a server's cost depends on what it receives — how many
//! distinct series (name × labels) it must index, how values move, whether
//! timestamps fall into its current time window. Sending the same constant
//! metric a million times would flatter every design. Here each series
//! (6 metric names × `--hosts` hosts, each host in one region) follows a
//! bounded random walk, counters only go up, and timestamps are the wall clock
//! at generation.
//!
//! Why seeded: the same `--seed` yields the same sequence of series and values,
//! so runs from different chapters are comparable and tests are reproducible.
//!
//! Why it is cheap: loadgen must never be the bottleneck, so the constant JSON
//! around each value (`{"name":"cpu_usage","value":` and
//! `,"labels":{"host":"web-01","region":"eu-west"},"timestamp":`) is rendered
//! once per series up front; a metric is then three `memcpy`s plus two number
//! formats into a reused buffer, with no allocation.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The metric names every chapter's servers see.
pub const METRIC_NAMES: [&str; 6] = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_latency",
    "http_requests_total",
    "error_rate",
];

/// Regions hosts live in; host `i` always belongs to `REGIONS[i % len]`.
pub const REGIONS: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];

/// How one metric's values move between samples.
#[derive(Clone, Copy, Debug)]
enum Walk {
    /// A gauge bounded to `min..=max` that moves by at most `step` per sample,
    /// rounded to `decimals` decimal places.
    Gauge {
        min: f64,
        max: f64,
        start_max: f64,
        step: f64,
        decimals: i32,
    },
    /// A monotonically increasing counter.
    Counter { max_increment: u64 },
}

/// Indexed like `METRIC_NAMES`.
const WALKS: [Walk; 6] = [
    // cpu_usage, percent
    Walk::Gauge {
        min: 0.0,
        max: 100.0,
        start_max: 60.0,
        step: 4.0,
        decimals: 2,
    },
    // memory_usage, percent: moves slowly
    Walk::Gauge {
        min: 0.0,
        max: 100.0,
        start_max: 80.0,
        step: 1.0,
        decimals: 1,
    },
    // disk_io, MB/s
    Walk::Gauge {
        min: 0.0,
        max: 500.0,
        start_max: 100.0,
        step: 15.0,
        decimals: 1,
    },
    // network_latency, ms
    Walk::Gauge {
        min: 0.1,
        max: 250.0,
        start_max: 40.0,
        step: 3.0,
        decimals: 2,
    },
    // http_requests_total, counter
    Walk::Counter { max_increment: 50 },
    // error_rate, percent: usually small
    Walk::Gauge {
        min: 0.0,
        max: 100.0,
        start_max: 2.0,
        step: 0.25,
        decimals: 2,
    },
];

/// A metric value as it goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleValue {
    Gauge(f64),
    Counter(u64),
}

/// One generated metric, before it gets its timestamp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Index into the generator's series table.
    pub series: usize,
    pub value: SampleValue,
}

/// Derives a worker's seed from the run's seed, so each worker sends its own
/// deterministic sequence instead of all workers sending identical bodies.
pub fn worker_seed(seed: u64, worker: u64) -> u64 {
    seed ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    // A clock before 1970 is a broken machine, not a reason to crash a load test.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct MetricGenerator {
    rng: StdRng,
    /// Current value per series; series `i` is metric `i % 6` on host `i / 6`.
    values: Vec<SampleValue>,
    /// `{"name":"<name>","value":` per metric name.
    name_prefixes: Vec<Vec<u8>>,
    /// `,"labels":{"host":"<host>","region":"<region>"},"timestamp":` per host.
    host_suffixes: Vec<Vec<u8>>,
}

impl MetricGenerator {
    /// `hosts` is clamped to at least 1.
    pub fn new(seed: u64, hosts: usize) -> Self {
        let hosts = hosts.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let host_suffixes = (0..hosts)
            .map(|i| {
                format!(
                    ",\"labels\":{{\"host\":\"{}\",\"region\":\"{}\"}},\"timestamp\":",
                    host_name(i, hosts),
                    REGIONS[i % REGIONS.len()]
                )
                .into_bytes()
            })
            .collect();
        let name_prefixes = METRIC_NAMES
            .iter()
            .map(|name| format!("{{\"name\":\"{name}\",\"value\":").into_bytes())
            .collect();
        let values = (0..hosts * METRIC_NAMES.len())
            .map(|series| match WALKS[series % METRIC_NAMES.len()] {
                Walk::Gauge {
                    min,
                    start_max,
                    decimals,
                    ..
                } => SampleValue::Gauge(round_to(rng.gen_range(min..=start_max), decimals)),
                Walk::Counter { .. } => SampleValue::Counter(rng.gen_range(0..1_000_000)),
            })
            .collect();
        Self {
            rng,
            values,
            name_prefixes,
            host_suffixes,
        }
    }

    /// Picks a series at random and advances its walk.
    pub fn next_sample(&mut self) -> Sample {
        let series = self.rng.gen_range(0..self.values.len());
        let value = match (WALKS[series % METRIC_NAMES.len()], self.values[series]) {
            (
                Walk::Gauge {
                    min,
                    max,
                    step,
                    decimals,
                    ..
                },
                SampleValue::Gauge(current),
            ) => {
                let moved = current + self.rng.gen_range(-step..=step);
                SampleValue::Gauge(round_to(moved.clamp(min, max), decimals))
            }
            (Walk::Counter { max_increment }, SampleValue::Counter(current)) => {
                SampleValue::Counter(current + self.rng.gen_range(1..=max_increment))
            }
            // Unreachable by construction (values are built from WALKS);
            // keep the old value rather than panic.
            (_, other) => other,
        };
        self.values[series] = value;
        Sample { series, value }
    }

    /// Appends `sample` as one JSON object in the wire form the servers accept.
    pub fn write_sample(&self, sample: &Sample, timestamp_ms: u64, out: &mut Vec<u8>) {
        let metric = sample.series % METRIC_NAMES.len();
        let host = sample.series / METRIC_NAMES.len();
        out.extend_from_slice(&self.name_prefixes[metric]);
        // Writing into a Vec cannot fail.
        let _ = match sample.value {
            SampleValue::Gauge(v) => write!(out, "{v}"),
            SampleValue::Counter(v) => write!(out, "{v}"),
        };
        out.extend_from_slice(&self.host_suffixes[host]);
        let _ = write!(out, "{timestamp_ms}");
        out.push(b'}');
    }

    /// Appends a request body: a single JSON object when `batch` is 1 (the
    /// seed's form), otherwise a JSON array of `batch` objects. All metrics of
    /// one body share one timestamp, taken now.
    pub fn write_body(&mut self, batch: usize, out: &mut Vec<u8>) {
        let timestamp_ms = now_ms();
        if batch <= 1 {
            let sample = self.next_sample();
            self.write_sample(&sample, timestamp_ms, out);
            return;
        }
        out.push(b'[');
        for i in 0..batch {
            if i > 0 {
                out.push(b',');
            }
            let sample = self.next_sample();
            self.write_sample(&sample, timestamp_ms, out);
        }
        out.push(b']');
    }
}

/// `web-01`..`web-NN`, zero-padded to the width of NN (at least 2) so names
/// sort naturally.
fn host_name(index: usize, hosts: usize) -> String {
    let width = hosts.to_string().len().max(2);
    format!("web-{:0width$}", index + 1)
}

/// Rounds to `decimals` places. `k / 10^d` is the double closest to the decimal
/// with d places, and Rust prints the shortest round-tripping form, so the wire
/// shows at most `decimals` decimals (`85.3`, never `85.30000000000001`).
fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
impl MetricGenerator {
    fn series_count(&self) -> usize {
        self.values.len()
    }

    fn metric_name(series: usize) -> &'static str {
        METRIC_NAMES[series % METRIC_NAMES.len()]
    }

    fn host_name(&self, series: usize) -> String {
        host_name(series / METRIC_NAMES.len(), self.host_suffixes.len())
    }

    fn region(series: usize) -> &'static str {
        REGIONS[(series / METRIC_NAMES.len()) % REGIONS.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn samples(seed: u64, n: usize) -> Vec<Sample> {
        let mut generator = MetricGenerator::new(seed, 50);
        (0..n).map(|_| generator.next_sample()).collect()
    }

    #[test]
    fn same_seed_gives_same_sequence() {
        assert_eq!(samples(42, 1000), samples(42, 1000));
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(samples(42, 100), samples(43, 100));
    }

    #[test]
    fn worker_seeds_differ_and_are_stable() {
        assert_eq!(worker_seed(42, 0), 42);
        assert_ne!(worker_seed(42, 1), worker_seed(42, 2));
        assert_eq!(worker_seed(7, 3), worker_seed(7, 3));
    }

    #[test]
    fn host_names_are_zero_padded() {
        let generator = MetricGenerator::new(1, 50);
        assert_eq!(generator.host_name(0), "web-01");
        assert_eq!(generator.host_name(49 * 6), "web-50");
        let generator = MetricGenerator::new(1, 120);
        assert_eq!(generator.host_name(0), "web-001");
        assert_eq!(generator.series_count(), 720);
    }

    #[test]
    fn values_stay_bounded_and_counters_increase() {
        let mut generator = MetricGenerator::new(9, 3);
        let mut last_counter = vec![0u64; generator.series_count()];
        for _ in 0..20_000 {
            let sample = generator.next_sample();
            let name = MetricGenerator::metric_name(sample.series);
            match sample.value {
                SampleValue::Gauge(v) => {
                    assert!(v.is_finite(), "{name} = {v}");
                    if name.ends_with("_usage") || name == "error_rate" {
                        assert!((0.0..=100.0).contains(&v), "{name} = {v}");
                    }
                    let text = v.to_string();
                    let decimals = text.split('.').nth(1).map_or(0, str::len);
                    assert!(decimals <= 2, "{name} printed as {text}");
                }
                SampleValue::Counter(v) => {
                    assert_eq!(name, "http_requests_total");
                    assert!(v > last_counter[sample.series]);
                    last_counter[sample.series] = v;
                }
            }
        }
    }

    #[test]
    fn single_body_is_the_seed_wire_form() {
        let mut generator = MetricGenerator::new(42, 50);
        let mut replay = MetricGenerator::new(42, 50);
        let mut body = Vec::new();
        let before = now_ms();
        generator.write_body(1, &mut body);
        let json: Value = serde_json::from_slice(&body).expect("valid JSON");
        let expected = replay.next_sample();

        assert_eq!(json["name"], MetricGenerator::metric_name(expected.series));
        match expected.value {
            SampleValue::Gauge(v) => assert_eq!(json["value"].as_f64(), Some(v)),
            SampleValue::Counter(v) => assert_eq!(json["value"].as_u64(), Some(v)),
        }
        assert_eq!(json["labels"]["host"], replay.host_name(expected.series));
        assert_eq!(
            json["labels"]["region"],
            MetricGenerator::region(expected.series)
        );
        let timestamp = json["timestamp"].as_u64().expect("integer timestamp");
        assert!(timestamp >= before && timestamp <= now_ms());
        assert_eq!(json.as_object().map(|o| o.len()), Some(4));
    }

    #[test]
    fn batch_body_is_an_array() {
        let mut generator = MetricGenerator::new(5, 50);
        let mut body = Vec::new();
        generator.write_body(10, &mut body);
        let json: Value = serde_json::from_slice(&body).expect("valid JSON");
        let items = json.as_array().expect("array");
        assert_eq!(items.len(), 10);
        for item in items {
            assert!(METRIC_NAMES.contains(&item["name"].as_str().unwrap_or("")));
            assert!(item["value"].is_number());
            assert!(item["labels"]["host"].as_str().is_some());
        }
    }
}
