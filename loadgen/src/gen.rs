//! `loadgen gen`: writes the reference dataset — by default 1,000 series ×
//! 24 h at 10 s = 8.64 M samples — as JSON lines or InfluxDB line protocol.
//!
//! Why it exists: the storage and query chapters measure bytes per sample
//! and query latency, and those figures mean something only on data of a
//! known shape, the same for every reader and every run. The data itself is
//! `craft3_storage::dataset` (one generator, used by the benches too); this
//! file is the command line and the two wire forms:
//!
//! ```text
//! {"name":"cpu_usage","value":19.6,"timestamp":1700000000000,"labels":{"host":"h-001","region":"eu"}}
//! cpu_usage,host=h-001,region=eu value=19.6 1700000000000000000
//! ```
//!
//! Rows come in time order (at each timestamp, every series), as a fleet's
//! scrapes arrive. The constant parts of each line are rendered once per
//! series, so writing 8.64 M lines is a matter of seconds. Story: docs
//! chapter 3, "The dataset".

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use common::duration::{parse_duration, parse_positive_duration};
use craft3_storage::dataset::{
    DEFAULT_SEED, DEFAULT_START_MS, Dataset, DatasetError, DatasetSize, DatasetSpec, MAX_HOSTS,
    MAX_HOURS,
};

/// The wire form of each sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
    /// One seed-style JSON metric per line.
    Jsonl,
    /// InfluxDB line protocol, nanosecond timestamps, one field `value`.
    Lp,
}

/// Dataset presets: `--hosts` and `--hours` override theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SizeArg {
    /// 10 hosts × 1 h: 50 series, 18,000 samples.
    Small,
    /// 200 hosts × 24 h: 1,000 series, 8.64 M samples.
    Default,
    /// 2,000 hosts × 24 h: 10,000 series, 86.4 M samples.
    Large,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Preset size; --hosts and --hours override it.
    #[arg(long, value_enum, default_value_t = SizeArg::Default)]
    size: SizeArg,
    /// Seed of every series' random walk; the same seed writes the same bytes.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Hosts (five series each): h-001, h-002, …
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HOSTS)))]
    hosts: Option<u32>,
    /// Hours of data.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HOURS)))]
    hours: Option<u32>,
    /// Time between two samples of a series, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    interval: Duration,
    /// Scrape jitter: each timestamp moves by up to ± this (below half the interval).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    jitter: Duration,
    /// Timestamp of the first sample, ms since the Unix epoch.
    #[arg(long, default_value_t = DEFAULT_START_MS)]
    start_ms: i64,
    /// jsonl (the seed's metric JSON, one per line) or lp (InfluxDB line protocol).
    #[arg(long, value_enum, default_value_t = GenFormat::Jsonl)]
    format: GenFormat,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl GenArgs {
    /// The dataset the flags describe, checked; errors name the flag.
    pub fn spec(&self) -> Result<DatasetSpec> {
        let preset = DatasetSpec::preset(match self.size {
            SizeArg::Small => DatasetSize::Small,
            SizeArg::Default => DatasetSize::Default,
            SizeArg::Large => DatasetSize::Large,
        });
        let whole_ms = |flag: &str, duration: Duration| -> Result<i64> {
            if !duration.subsec_nanos().is_multiple_of(1_000_000) {
                return Err(anyhow!(
                    "invalid {flag} '{duration:?}': must be a whole number of milliseconds"
                ));
            }
            i64::try_from(duration.as_millis()).map_err(|_| anyhow!("invalid {flag}: too long"))
        };
        let spec = DatasetSpec {
            seed: self.seed,
            hosts: self.hosts.unwrap_or(preset.hosts),
            hours: self.hours.unwrap_or(preset.hours),
            interval_ms: whole_ms("--interval", self.interval)?,
            start_ms: self.start_ms,
            jitter_ms: whole_ms("--jitter", self.jitter)?,
        };
        spec.validate().map_err(|error| {
            let flag = match error {
                DatasetError::Hosts(_) => "--hosts",
                DatasetError::Hours(_) => "--hours",
                DatasetError::Interval(_) => "--interval",
                DatasetError::Jitter { .. } => "--jitter",
                DatasetError::Start(_) => "--start-ms",
            };
            anyhow!("invalid {flag}: {error}")
        })?;
        Ok(spec)
    }
}

/// `loadgen gen`: writes the dataset and reports on standard error.
pub fn run(args: &GenArgs) -> Result<()> {
    let dataset = Dataset::new(args.spec()?)?;
    let started = Instant::now();
    let written = match &args.output {
        Some(path) => write_to_file(&dataset, args.format, path)?,
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            match write_dataset(&dataset, args.format, &mut out)
                .and_then(|n| out.flush().map(|()| n))
            {
                Ok(written) => written,
                // `loadgen gen | head` is a normal thing to do.
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(error) => return Err(error).context("cannot write to standard output"),
            }
        }
    };
    let spec = dataset.spec();
    eprintln!(
        "loadgen gen: {} samples ({} series x {}) as {}, seed {}, {} bytes in {:.1?}{}",
        spec.total_samples(),
        spec.series_count(),
        spec.samples_per_series(),
        match args.format {
            GenFormat::Jsonl => "jsonl",
            GenFormat::Lp => "lp",
        },
        spec.seed,
        written,
        started.elapsed(),
        args.output
            .as_ref()
            .map(|path| format!(" -> {}", path.display()))
            .unwrap_or_default(),
    );
    Ok(())
}

fn write_to_file(dataset: &Dataset, format: GenFormat, path: &Path) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = write_dataset(dataset, format, &mut out)
        .and_then(|n| out.flush().map(|()| n))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(written)
}

/// The constant text around one series' values.
struct SeriesText {
    /// Before the value.
    head: Vec<u8>,
    /// Between the value and the timestamp.
    middle: &'static [u8],
    /// After the timestamp, newline included.
    tail: Vec<u8>,
}

fn series_texts(dataset: &Dataset, format: GenFormat) -> Vec<SeriesText> {
    // Names, hosts and regions are generated ([a-z0-9_-]), so neither JSON
    // nor line protocol needs escaping here.
    dataset
        .series()
        .iter()
        .map(|series| match format {
            GenFormat::Jsonl => SeriesText {
                head: format!("{{\"name\":\"{}\",\"value\":", series.metric).into_bytes(),
                middle: b",\"timestamp\":",
                tail: format!(
                    ",\"labels\":{{\"host\":\"{}\",\"region\":\"{}\"}}}}\n",
                    series.host, series.region
                )
                .into_bytes(),
            },
            GenFormat::Lp => SeriesText {
                head: format!(
                    "{},host={},region={} value=",
                    series.metric, series.host, series.region
                )
                .into_bytes(),
                middle: b" ",
                // Milliseconds to nanoseconds as text: no i64 overflow for
                // any timestamp up to year 9999.
                tail: b"000000\n".to_vec(),
            },
        })
        .collect()
}

/// Writes every sample of `dataset` in time order; returns the bytes written.
///
/// # Errors
/// The writer's.
pub fn write_dataset(
    dataset: &Dataset,
    format: GenFormat,
    out: &mut impl Write,
) -> io::Result<u64> {
    let texts = series_texts(dataset, format);
    let mut line = Vec::with_capacity(256);
    let mut written = 0u64;
    for (index, sample) in dataset.rows() {
        let text = &texts[index];
        line.clear();
        line.extend_from_slice(&text.head);
        // Display prints the shortest text that reads back as the same f64:
        // 19.6, 1234 (counters), 0.
        write!(line, "{}", sample.value)?;
        line.extend_from_slice(text.middle);
        write!(line, "{}", sample.timestamp_ms)?;
        line.extend_from_slice(&text.tail);
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(seed: u64, format: GenFormat) -> String {
        let spec = DatasetSpec {
            seed,
            ..DatasetSpec::preset(DatasetSize::Small)
        };
        let dataset = Dataset::new(spec).expect("valid spec");
        let mut out = Vec::new();
        let written = write_dataset(&dataset, format, &mut out).expect("in memory");
        assert_eq!(written, out.len() as u64);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        for format in [GenFormat::Jsonl, GenFormat::Lp] {
            assert_eq!(generate(1, format), generate(1, format));
            assert_ne!(generate(1, format), generate(2, format));
        }
    }

    #[test]
    fn jsonl_lines_are_the_seed_metric_json() {
        let text = generate(DEFAULT_SEED, GenFormat::Jsonl);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 50 * 360);
        let dataset = Dataset::new(DatasetSpec::preset(DatasetSize::Small)).expect("valid");
        for (line, (index, sample)) in lines.iter().zip(dataset.rows()) {
            let metric: common::Metric = serde_json::from_str(line).expect(line);
            metric.validate().expect(line);
            let series = &dataset.series()[index];
            assert_eq!(metric.name, series.metric);
            assert_eq!(metric.value.to_bits(), sample.value.to_bits(), "{line}");
            assert_eq!(metric.timestamp_ms, sample.timestamp_ms);
            assert_eq!(metric.labels.get("host"), Some(series.host.as_str()));
            assert_eq!(metric.labels.get("region"), Some(series.region));
        }
        assert!(lines[0].starts_with("{\"name\":\"cpu_usage\",\"value\":"));
        assert!(lines[0].ends_with(
            ",\"timestamp\":1700000000000,\"labels\":{\"host\":\"h-001\",\"region\":\"eu\"}}"
        ));
    }

    #[test]
    fn line_protocol_names_the_measurement_alone() {
        let text = generate(DEFAULT_SEED, GenFormat::Lp);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("cpu_usage,host=h-001,region=eu value="),
            "{first}"
        );
        assert!(first.ends_with(" 1700000000000000000"), "{first}");
        let jsonl = generate(DEFAULT_SEED, GenFormat::Jsonl);
        for (lp, json) in text.lines().zip(jsonl.lines()).take(5_000) {
            let (_, rest) = lp.split_once(" value=").expect(lp);
            let (value, nanos) = rest.split_once(' ').expect(lp);
            let metric: common::Metric = serde_json::from_str(json).expect(json);
            assert_eq!(value.parse::<f64>().ok(), Some(metric.value), "{lp}");
            assert_eq!(nanos, format!("{}000000", metric.timestamp_ms));
        }
    }
}
