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

impl SampleValue {
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Gauge(v) => v,
            Self::Counter(v) => v as f64,
        }
    }

    /// Appends the value in its shortest decimal form (`85.3`, `1234`), the
    /// same text `Display` gives.
    pub fn write_to(self, out: &mut Vec<u8>) {
        match self {
            Self::Gauge(v) => write_gauge(v, out),
            Self::Counter(v) => out.extend_from_slice(Decimal::new(v).as_bytes()),
        }
    }
}

/// Gauges carry at most two decimals (see `round_to`). Printed as fixed
/// point they cost a fraction of the general shortest-float algorithm — the
/// largest share of loadgen's CPU otherwise — and read exactly as `Display`
/// would print them: when `k / 100` is the double `v` and `v` is far below
/// 2^53 · 0.01, the decimal `k / 100` is the shortest text that reads back as
/// `v`. Anything else takes `Display`.
fn write_gauge(v: f64, out: &mut Vec<u8>) {
    const FIXED_POINT_LIMIT: f64 = 1e12;
    if v.is_sign_positive() && v < FIXED_POINT_LIMIT {
        let hundredths = (v * 100.0).round();
        if hundredths / 100.0 == v {
            let k = hundredths as u64;
            out.extend_from_slice(Decimal::new(k / 100).as_bytes());
            let fraction = (k % 100) as u8;
            if fraction != 0 {
                out.push(b'.');
                out.push(b'0' + fraction / 10);
                if !fraction.is_multiple_of(10) {
                    out.push(b'0' + fraction % 10);
                }
            }
            return;
        }
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// A `u64` in decimal, rendered once and copied as often as needed: every
/// metric of a body carries the same timestamp.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(mut value: u64) -> Self {
        // u64::MAX has 20 digits.
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return Self { digits, start };
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// One generated metric, before it gets its timestamp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Index into the generator's series table: metric `series % 6`
    /// (`METRIC_NAMES`) on host `series / 6`.
    pub series: usize,
    pub value: SampleValue,
}

impl Sample {
    /// Index into `METRIC_NAMES`.
    pub fn metric(&self) -> usize {
        self.series % METRIC_NAMES.len()
    }

    /// Index of the host (`host_name(host, hosts)`, region `REGIONS[host % 5]`).
    pub fn host(&self) -> usize {
        self.series / METRIC_NAMES.len()
    }
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
    pub fn write_sample(&self, sample: &Sample, timestamp_ms: &Decimal, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name_prefixes[sample.metric()]);
        sample.value.write_to(out);
        out.extend_from_slice(&self.host_suffixes[sample.host()]);
        out.extend_from_slice(timestamp_ms.as_bytes());
        out.push(b'}');
    }

    /// `write_json_body` at the current time.
    #[cfg(test)]
    pub fn write_body(&mut self, batch: usize, out: &mut Vec<u8>) {
        self.write_json_body(batch, now_ms(), out);
    }

    /// Appends a request body: a single JSON object when `batch` is 1 (the
    /// seed's form), otherwise a JSON array of `batch` objects, all with
    /// `timestamp_ms`.
    pub fn write_json_body(&mut self, batch: usize, timestamp_ms: u64, out: &mut Vec<u8>) {
        let timestamp_ms = Decimal::new(timestamp_ms);
        if batch <= 1 {
            let sample = self.next_sample();
            self.write_sample(&sample, &timestamp_ms, out);
            return;
        }
        out.push(b'[');
        for i in 0..batch {
            if i > 0 {
                out.push(b',');
            }
            let sample = self.next_sample();
            self.write_sample(&sample, &timestamp_ms, out);
        }
        out.push(b']');
    }
}

/// `web-01`..`web-NN`, zero-padded to the width of NN (at least 2) so names
/// sort naturally.
pub fn host_name(index: usize, hosts: usize) -> String {
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
    fn fast_number_formatting_matches_display() {
        for value in [0, 7, 10, 99, 1_764_000_000_000, u64::MAX] {
            assert_eq!(Decimal::new(value).as_bytes(), value.to_string().as_bytes());
        }
        let mut generator = MetricGenerator::new(3, 50);
        let mut values: Vec<f64> = (0..200_000)
            .filter_map(|_| match generator.next_sample().value {
                SampleValue::Gauge(v) => Some(v),
                SampleValue::Counter(_) => None,
            })
            .collect();
        values.extend([
            0.0, 0.1, 0.01, 0.07, 1.0, 12.5, 99.99, 100.0, 249.9, 500.0, 0.15, 2.675, 1.005,
        ]);
        // Not two decimals, negative, huge or not finite: Display's text.
        values.extend([
            0.125,
            1.0 / 3.0,
            -0.0,
            -1.5,
            1e15,
            1e300,
            f64::NAN,
            f64::INFINITY,
        ]);
        let mut out = Vec::new();
        for v in values {
            out.clear();
            SampleValue::Gauge(v).write_to(&mut out);
            assert_eq!(String::from_utf8_lossy(&out), v.to_string(), "{v:?}");
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
