//! The reference dataset: a day of a small fleet's metrics, the same every
//! time — what chapter 3's and chapter 4's figures are measured on, and what
//! `loadgen gen` writes out as JSONL or line protocol.
//!
//! Why it exists: a compression ratio means nothing without the data. The
//! issue quotes peers measured on "1,000 series, 24 h at 10 s, gauges with
//! 1–2 decimals"; this builds data of that shape — by default 200 hosts ×
//! 5 metrics = 1,000 series × 8,640 samples = 8.64 M samples — so our
//! bytes/sample sits next to theirs honestly.
//!
//! How it moves, per 10 s step (steps are uniform random, the hardest case
//! for a codec of its range; real gauges are usually smoother):
//!
//! | metric | unit, decimals | range | step |
//! |---|---|---|---|
//! | `cpu_usage` | %, 2 | 0–100 | ±3.00 |
//! | `memory_usage` | %, 1 | 0–100 | ±0.5 |
//! | `disk_io` | MB/s, 1 | 0–500 | ±10.0 |
//! | `network_latency` | ms, 2 | 0.1–250 | ±2.00 |
//! | `http_requests_total` | counter | from 0–10⁶, up | +1 … +2r, r per series in 1–100 |
//!
//! Every 25th host is diskless: its `disk_io` is the constant 0 (8 constant
//! series at 200 hosts). Labels: `host` (`h-001` …) and `region` (`eu`,
//! `us`, `ap`, round robin). Timestamps start at 2023-11-14T22:13:20Z and
//! step by the interval exactly, unless `jitter_ms` asks for scrape jitter.
//!
//! Determinism: every series draws from its own `StdRng` seeded from the
//! dataset seed and the series' index, so one series can be generated
//! without the others, and time-major and series-major orders agree. (`StdRng`
//! is reproducible for a given `rand` version, which `Cargo.lock` pins.)
//! Values are walked as integer mantissas and divided by 10^decimals once,
//! so they print as `19.6`, never `19.600000000000001`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::chunk::Sample;

/// The seed when none is given.
pub const DEFAULT_SEED: u64 = 20_231_114;
/// 2023-11-14T22:13:20Z, a round number of milliseconds.
pub const DEFAULT_START_MS: i64 = 1_700_000_000_000;
/// The default scrape interval: 10 s.
pub const DEFAULT_INTERVAL_MS: i64 = 10_000;
/// Regions, assigned to hosts round robin.
pub const REGIONS: [&str; 3] = ["eu", "us", "ap"];
/// Metric names, in series order within a host.
pub const METRICS: [&str; 5] = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_latency",
    "http_requests_total",
];
/// Most hosts a dataset may have (500,000 series: a time-major writer keeps
/// one random stream per series in memory).
pub const MAX_HOSTS: u32 = 100_000;
/// Longest dataset: one year.
pub const MAX_HOURS: u32 = 24 * 366;
/// Latest timestamp: 9999-12-31T23:59:59.999Z, as `common` accepts.
const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// How a series' values move.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeriesKind {
    /// A random walk within `min..=max` (mantissas at `decimals` places),
    /// moving by at most `step` per sample.
    Gauge {
        /// Decimal places.
        decimals: u32,
        /// Lowest mantissa.
        min: i64,
        /// Highest mantissa.
        max: i64,
        /// Largest step, as a mantissa.
        step: i64,
        /// Start is drawn from `min..=start_max`.
        start_max: i64,
    },
    /// A counter starting below 10⁶ that grows by `1..=2 × rate` per sample.
    Counter {
        /// Average growth per sample.
        rate: i64,
    },
    /// The same value every sample.
    Constant(f64),
}

/// One series: its name, labels and behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesInfo {
    /// Metric name, one of [`METRICS`].
    pub metric: &'static str,
    /// The `host` label.
    pub host: String,
    /// The `region` label.
    pub region: &'static str,
    /// How its values move.
    pub kind: SeriesKind,
}

impl SeriesInfo {
    /// The label pairs, sorted by name.
    pub fn labels(&self) -> [(&'static str, &str); 2] {
        [("host", &self.host), ("region", self.region)]
    }
}

/// A preset of `hosts` and `hours`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetSize {
    /// 10 hosts × 1 h: 50 series × 360 samples, for tests.
    Small,
    /// 200 hosts × 24 h: 1,000 series × 8,640 samples (8.64 M).
    Default,
    /// 2,000 hosts × 24 h: 10,000 series × 8,640 samples (86.4 M).
    Large,
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Seeds every series' random walk.
    pub seed: u64,
    /// Hosts; five series each.
    pub hosts: u32,
    /// Length of the dataset.
    pub hours: u32,
    /// Milliseconds between samples.
    pub interval_ms: i64,
    /// Timestamp of the first sample (before jitter).
    pub start_ms: i64,
    /// Each timestamp moves by up to ± this many ms (0: exact intervals).
    pub jitter_ms: i64,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        Self::preset(DatasetSize::Default)
    }
}

impl DatasetSpec {
    /// A preset with the default seed, interval and start.
    pub fn preset(size: DatasetSize) -> Self {
        let (hosts, hours) = match size {
            DatasetSize::Small => (10, 1),
            DatasetSize::Default => (200, 24),
            DatasetSize::Large => (2_000, 24),
        };
        Self {
            seed: DEFAULT_SEED,
            hosts,
            hours,
            interval_ms: DEFAULT_INTERVAL_MS,
            start_ms: DEFAULT_START_MS,
            jitter_ms: 0,
        }
    }

    /// Series in the dataset.
    pub fn series_count(&self) -> usize {
        self.hosts as usize * METRICS.len()
    }

    /// Samples in each series.
    pub fn samples_per_series(&self) -> usize {
        (i64::from(self.hours) * 3_600_000 / self.interval_ms.max(1)) as usize
    }

    /// Samples in the dataset.
    pub fn total_samples(&self) -> u64 {
        self.series_count() as u64 * self.samples_per_series() as u64
    }

    /// Checks every field, naming the one that is wrong.
    ///
    /// # Errors
    /// [`DatasetError`] for the first field out of range.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if !(1..=MAX_HOSTS).contains(&self.hosts) {
            return Err(DatasetError::Hosts(self.hosts));
        }
        if !(1..=MAX_HOURS).contains(&self.hours) {
            return Err(DatasetError::Hours(self.hours));
        }
        let span_ms = i64::from(self.hours) * 3_600_000;
        if !(1..=span_ms).contains(&self.interval_ms) {
            return Err(DatasetError::Interval(self.interval_ms));
        }
        if self.jitter_ms < 0 || self.jitter_ms * 2 >= self.interval_ms {
            return Err(DatasetError::Jitter {
                jitter_ms: self.jitter_ms,
                interval_ms: self.interval_ms,
            });
        }
        let last = self.start_ms.checked_add(span_ms + self.jitter_ms);
        if self.start_ms - self.jitter_ms < 0 || last.is_none_or(|last| last > MAX_TIMESTAMP_MS) {
            return Err(DatasetError::Start(self.start_ms));
        }
        Ok(())
    }
}

/// A [`DatasetSpec`] field out of range; each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatasetError {
    /// Hosts outside 1..=[`MAX_HOSTS`].
    #[error("hosts {0} is out of range: expected 1 to {MAX_HOSTS}")]
    Hosts(u32),
    /// Hours outside 1..=[`MAX_HOURS`].
    #[error("hours {0} is out of range: expected 1 to {MAX_HOURS}")]
    Hours(u32),
    /// Interval not positive or longer than the dataset.
    #[error("interval {0} ms is out of range: expected 1 ms up to the dataset's length")]
    Interval(i64),
    /// Jitter negative or at least half the interval (samples could swap order).
    #[error(
        "jitter {jitter_ms} ms is out of range: expected 0 up to less than half the interval ({interval_ms} ms)"
    )]
    Jitter {
        /// The jitter asked for.
        jitter_ms: i64,
        /// The interval it must stay under half of.
        interval_ms: i64,
    },
    /// Timestamps would fall before 1970 or after 9999.
    #[error("start {0} ms puts timestamps outside 1970..9999")]
    Start(i64),
}

/// The dataset: its spec and its series.
#[derive(Clone, Debug)]
pub struct Dataset {
    spec: DatasetSpec,
    series: Vec<SeriesInfo>,
}

impl Dataset {
    /// Describes the series of `spec`; samples are generated on demand.
    ///
    /// # Errors
    /// [`DatasetError`] when `spec` is out of range.
    pub fn new(spec: DatasetSpec) -> Result<Self, DatasetError> {
        spec.validate()?;
        let width = spec.hosts.to_string().len().max(3);
        let mut series = Vec::with_capacity(spec.series_count());
        for host in 0..spec.hosts as usize {
            let host_name = format!("h-{:0width$}", host + 1);
            let region = REGIONS[host % REGIONS.len()];
            for (metric_index, &metric) in METRICS.iter().enumerate() {
                debug_assert_eq!(series.len(), host * METRICS.len() + metric_index);
                let (kind, _) = series_origin(spec.seed, series.len());
                series.push(SeriesInfo {
                    metric,
                    host: host_name.clone(),
                    region,
                    kind,
                });
            }
        }
        Ok(Self { spec, series })
    }

    /// What it was built from.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// Every series, host by host, in [`METRICS`] order within a host.
    pub fn series(&self) -> &[SeriesInfo] {
        &self.series
    }

    /// The samples of series `index`, generated afresh. `None` past the end.
    pub fn series_samples(&self, index: usize) -> Option<Vec<Sample>> {
        self.walker(index).map(Iterator::collect)
    }

    /// Streams the samples of series `index`. `None` past the end.
    pub fn walker(&self, index: usize) -> Option<SeriesWalker> {
        (index < self.series.len()).then(|| SeriesWalker::new(&self.spec, index))
    }

    /// Every sample in time order — at each timestamp, every series in
    /// [`Dataset::series`] order — as `(series index, sample)`: the order a
    /// fleet's scrapes arrive in.
    pub fn rows(&self) -> Rows {
        let walkers = (0..self.series.len())
            .filter_map(|index| self.walker(index))
            .collect();
        Rows { walkers, next: 0 }
    }
}

/// Series `index`'s behaviour, and its own random stream positioned after
/// the draws that chose the behaviour. The dataset seed is split into
/// independent per-series streams by mixing in the index.
fn series_origin(seed: u64, index: usize) -> (SeriesKind, StdRng) {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let kind = series_kind(index % METRICS.len(), index / METRICS.len(), &mut rng);
    (kind, rng)
}

fn series_kind(metric_index: usize, host: usize, rng: &mut StdRng) -> SeriesKind {
    let gauge = |decimals, min, max, step, start_max| SeriesKind::Gauge {
        decimals,
        min,
        max,
        step,
        start_max,
    };
    match metric_index {
        0 => gauge(2, 0, 10_000, 300, 6_000),
        1 => gauge(1, 0, 1_000, 5, 800),
        2 if host % 25 == 24 => SeriesKind::Constant(0.0),
        2 => gauge(1, 0, 5_000, 100, 1_000),
        3 => gauge(2, 10, 25_000, 200, 4_000),
        _ => SeriesKind::Counter {
            rate: rng.gen_range(1..=100),
        },
    }
}

/// The samples of one series, generated as they are read.
#[derive(Clone, Debug)]
pub struct SeriesWalker {
    rng: StdRng,
    kind: SeriesKind,
    /// Current value as a mantissa (gauges) or count (counters).
    current: i64,
    step_index: usize,
    steps: usize,
    start_ms: i64,
    interval_ms: i64,
    jitter_ms: i64,
}

impl SeriesWalker {
    fn new(spec: &DatasetSpec, index: usize) -> Self {
        let (kind, mut rng) = series_origin(spec.seed, index);
        let current = match kind {
            SeriesKind::Gauge { min, start_max, .. } => rng.gen_range(min..=start_max),
            SeriesKind::Counter { .. } => rng.gen_range(0..1_000_000),
            SeriesKind::Constant(_) => 0,
        };
        Self {
            rng,
            kind,
            current,
            step_index: 0,
            steps: spec.samples_per_series(),
            start_ms: spec.start_ms,
            interval_ms: spec.interval_ms,
            jitter_ms: spec.jitter_ms,
        }
    }
}

impl Iterator for SeriesWalker {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.step_index >= self.steps {
            return None;
        }
        let mut timestamp_ms = self.start_ms + self.step_index as i64 * self.interval_ms;
        if self.jitter_ms > 0 {
            timestamp_ms += self.rng.gen_range(-self.jitter_ms..=self.jitter_ms);
        }
        if self.step_index > 0 {
            match self.kind {
                SeriesKind::Gauge { min, max, step, .. } => {
                    self.current =
                        (self.current + self.rng.gen_range(-step..=step)).clamp(min, max);
                }
                SeriesKind::Counter { rate } => self.current += self.rng.gen_range(1..=2 * rate),
                SeriesKind::Constant(_) => {}
            }
        }
        self.step_index += 1;
        let value = match self.kind {
            SeriesKind::Gauge { decimals, .. } => self.current as f64 / 10f64.powi(decimals as i32),
            SeriesKind::Counter { .. } => self.current as f64,
            SeriesKind::Constant(value) => value,
        };
        Some(Sample::new(timestamp_ms, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.steps - self.step_index;
        (left, Some(left))
    }
}

/// Every sample of a dataset in time order; see [`Dataset::rows`].
#[derive(Clone, Debug)]
pub struct Rows {
    walkers: Vec<SeriesWalker>,
    next: usize,
}

impl Iterator for Rows {
    type Item = (usize, Sample);

    fn next(&mut self) -> Option<(usize, Sample)> {
        if self.walkers.is_empty() {
            return None;
        }
        let index = self.next;
        self.next = (self.next + 1) % self.walkers.len();
        self.walkers[index].next().map(|sample| (index, sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dataset {
        Dataset::new(DatasetSpec::preset(DatasetSize::Small)).expect("valid preset")
    }

    #[test]
    fn presets_have_the_documented_shape() {
        let spec = DatasetSpec::default();
        assert_eq!(spec.series_count(), 1_000);
        assert_eq!(spec.samples_per_series(), 8_640);
        assert_eq!(spec.total_samples(), 8_640_000);
        let dataset = small();
        assert_eq!(dataset.series().len(), 50);
        assert_eq!(dataset.series()[0].host, "h-001");
        assert_eq!(dataset.series()[0].region, "eu");
        assert_eq!(dataset.series()[5].region, "us");
        assert_eq!(dataset.series_samples(0).map(|s| s.len()), Some(360));
        assert!(dataset.series_samples(50).is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_samples() {
        let a = small();
        let b = small();
        for index in 0..a.series().len() {
            let (x, y) = (a.series_samples(index), b.series_samples(index));
            assert!(Sample::same_bits(
                &x.unwrap_or_default(),
                &y.unwrap_or_default()
            ));
        }
        let other = Dataset::new(DatasetSpec {
            seed: 7,
            ..DatasetSpec::preset(DatasetSize::Small)
        })
        .expect("valid");
        assert_ne!(a.series_samples(0), other.series_samples(0));
    }

    #[test]
    fn time_major_rows_agree_with_each_series() {
        let dataset = small();
        let mut per_series: Vec<Vec<Sample>> = vec![Vec::new(); dataset.series().len()];
        let mut last_time = i64::MIN;
        for (index, sample) in dataset.rows() {
            assert!(sample.timestamp_ms >= last_time);
            last_time = sample.timestamp_ms;
            per_series[index].push(sample);
        }
        for (index, samples) in per_series.iter().enumerate() {
            let alone = dataset.series_samples(index).unwrap_or_default();
            assert!(Sample::same_bits(samples, &alone), "series {index}");
        }
    }

    #[test]
    fn values_are_bounded_short_decimals_and_counters_increase() {
        let dataset = Dataset::new(DatasetSpec {
            hosts: 25,
            hours: 6,
            ..DatasetSpec::default()
        })
        .expect("valid");
        let mut constants = 0;
        for (index, info) in dataset.series().iter().enumerate() {
            let samples = dataset.series_samples(index).unwrap_or_default();
            match info.kind {
                SeriesKind::Gauge {
                    decimals, min, max, ..
                } => {
                    let scale = 10f64.powi(decimals as i32);
                    for sample in &samples {
                        let v = sample.value;
                        assert!(
                            (min as f64 / scale..=max as f64 / scale).contains(&v),
                            "{} {v}",
                            info.metric
                        );
                        let text = v.to_string();
                        let places = text.split('.').nth(1).map_or(0, str::len);
                        assert!(
                            places <= decimals as usize,
                            "{} printed {text}",
                            info.metric
                        );
                    }
                }
                SeriesKind::Counter { .. } => {
                    assert!(samples.windows(2).all(|w| w[1].value > w[0].value));
                }
                SeriesKind::Constant(c) => {
                    constants += 1;
                    assert!(samples.iter().all(|s| s.value == c));
                }
            }
            let expected_start = DEFAULT_START_MS;
            assert_eq!(
                samples.first().map(|s| s.timestamp_ms),
                Some(expected_start)
            );
            assert!(
                samples
                    .windows(2)
                    .all(|w| w[1].timestamp_ms - w[0].timestamp_ms == 10_000)
            );
        }
        assert_eq!(constants, 1, "host 25's disk_io");
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let spec = DatasetSpec {
            jitter_ms: 200,
            ..DatasetSpec::preset(DatasetSize::Small)
        };
        let dataset = Dataset::new(spec).expect("valid");
        let samples = dataset.series_samples(3).unwrap_or_default();
        for (i, sample) in samples.iter().enumerate() {
            let exact = DEFAULT_START_MS + i as i64 * 10_000;
            assert!((sample.timestamp_ms - exact).abs() <= 200);
        }
        assert!(
            samples
                .iter()
                .any(|s| (s.timestamp_ms - DEFAULT_START_MS) % 10_000 != 0)
        );
    }

    #[test]
    fn bad_specs_are_named() {
        let base = DatasetSpec::preset(DatasetSize::Small);
        let cases = [
            (DatasetSpec { hosts: 0, ..base }, "hosts 0"),
            (DatasetSpec { hours: 0, ..base }, "hours 0"),
            (
                DatasetSpec {
                    interval_ms: 0,
                    ..base
                },
                "interval 0",
            ),
            (
                DatasetSpec {
                    jitter_ms: 5_000,
                    ..base
                },
                "jitter 5000",
            ),
            (
                DatasetSpec {
                    start_ms: -1,
                    ..base
                },
                "start -1",
            ),
            (
                DatasetSpec {
                    start_ms: i64::MAX,
                    ..base
                },
                "start 9223372036854775807",
            ),
        ];
        for (spec, expected) in cases {
            let message = Dataset::new(spec)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.starts_with(expected), "{expected}: {message}");
        }
    }
}
