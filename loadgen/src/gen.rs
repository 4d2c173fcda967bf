//! `loadgen gen`: writes the reference dataset — by default 1,000 series ×
//! 24 h at 10 s = 8.64 M samples — as JSON lines, InfluxDB line protocol or
//! OpenMetrics text.
//!
//! Why it exists: the storage and query chapters measure bytes per sample
//! and query latency, and those figures mean something only on data of a
//! known shape, the same for every reader and every run. The data itself is
//! `fixtures::dataset` (one generator, used by the benches too); this
//! file is the command line and the three wire forms:
//!
//! ```text
//! {"name":"cpu_usage","value":19.6,"timestamp":1700000000000,"labels":{"host":"h-001","region":"eu"}}
//! cpu_usage,host=h-001,region=eu value=19.6 1700000000000000000
//! cpu_usage{host="h-001",region="eu"} 19.6 1700000000
//! ```
//!
//! JSON lines and line protocol come in time order (at each timestamp,
//! every series), as a fleet's scrapes arrive. The constant parts of each
//! line are rendered once per series, so writing 8.64 M lines is a matter of
//! seconds. Story: docs chapter 3, "The dataset".
//!
//! OpenMetrics is what `promtool tsdb create-blocks-from openmetrics` reads,
//! so real Prometheus can answer queries over the very same samples (the
//! differential check of craft 4, docs chapter 4). Its order is different
//! because the format demands it: a metric family's lines must not be
//! interleaved with another's, so the file goes family by family, series by
//! series, each series' samples in time order, and ends with `# EOF`.
//! Timestamps are seconds, with a fraction only when the milliseconds are
//! not whole seconds (jitter). The counter is declared as the family
//! `http_requests` of type counter, whose samples OpenMetrics requires to be
//! named `http_requests_total`: the name stays the same in both systems.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use common::duration::{parse_duration, parse_positive_duration};
use fixtures::dataset::{
    DEFAULT_SEED, DEFAULT_START_MS, Dataset, DatasetError, DatasetSize, DatasetSpec, MAX_HOSTS,
    MAX_HOURS, METRICS,
};

/// The wire form of each sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
    /// One seed-style JSON metric per line.
    Jsonl,
    /// InfluxDB line protocol, nanosecond timestamps, one field `value`.
    Lp,
    /// OpenMetrics text, family by family, for `promtool tsdb
    /// create-blocks-from openmetrics`.
    Openmetrics,
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
    /// jsonl (the seed's metric JSON, one per line), lp (InfluxDB line
    /// protocol) or openmetrics (for promtool tsdb create-blocks-from).
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
            GenFormat::Openmetrics => "openmetrics",
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
    // Only the sample lines of OpenMetrics fit this shape; the family lines
    // around them are written by `write_openmetrics`.
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
            GenFormat::Openmetrics => SeriesText {
                head: format!(
                    "{}{{host=\"{}\",region=\"{}\"}} ",
                    series.metric, series.host, series.region
                )
                .into_bytes(),
                middle: b" ",
                tail: b"\n".to_vec(),
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
    if format == GenFormat::Openmetrics {
        return write_openmetrics(dataset, out);
    }
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

/// The OpenMetrics family of a metric: its name and type. A counter's
/// family drops the `_total` its samples must carry.
fn openmetrics_family(metric: &str) -> (&str, &'static str) {
    match metric.strip_suffix("_total") {
        Some(family) => (family, "counter"),
        None => (metric, "gauge"),
    }
}

/// Writes milliseconds as OpenMetrics seconds: `1700000000`, or
/// `1700000000.25` when there is a fraction (never negative here: the spec
/// keeps timestamps at or after 1970).
fn write_seconds(line: &mut Vec<u8>, timestamp_ms: i64) -> io::Result<()> {
    let (seconds, millis) = (
        timestamp_ms.div_euclid(1_000),
        timestamp_ms.rem_euclid(1_000),
    );
    if millis == 0 {
        write!(line, "{seconds}")
    } else {
        let fraction = format!("{millis:03}");
        write!(line, "{seconds}.{}", fraction.trim_end_matches('0'))
    }
}

/// The OpenMetrics form: family by family (in [`METRICS`] order), series by
/// series, samples in time order, `# EOF` last. Series are generated one at
/// a time, so memory stays at one series' walker whatever the size.
fn write_openmetrics(dataset: &Dataset, out: &mut impl Write) -> io::Result<u64> {
    let texts = series_texts(dataset, GenFormat::Openmetrics);
    let mut line = Vec::with_capacity(256);
    let mut written = 0u64;
    for metric in METRICS {
        let (family, kind) = openmetrics_family(metric);
        let type_line = format!("# TYPE {family} {kind}\n");
        out.write_all(type_line.as_bytes())?;
        written += type_line.len() as u64;
        let indices = dataset
            .series()
            .iter()
            .enumerate()
            .filter(|(_, series)| series.metric == metric)
            .map(|(index, _)| index);
        for index in indices {
            let text = &texts[index];
            for sample in dataset.walker(index).into_iter().flatten() {
                line.clear();
                line.extend_from_slice(&text.head);
                write!(line, "{}", sample.value)?;
                line.extend_from_slice(text.middle);
                write_seconds(&mut line, sample.timestamp_ms)?;
                line.extend_from_slice(&text.tail);
                out.write_all(&line)?;
                written += line.len() as u64;
            }
        }
    }
    out.write_all(b"# EOF\n")?;
    Ok(written + 6)
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
        for format in [GenFormat::Jsonl, GenFormat::Lp, GenFormat::Openmetrics] {
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

    #[test]
    fn openmetrics_seconds_keep_every_millisecond() {
        for (ms, text) in [
            (1_700_000_000_000, "1700000000"),
            (1_700_000_000_250, "1700000000.25"),
            (1_700_000_000_001, "1700000000.001"),
            (999, "0.999"),
            (0, "0"),
        ] {
            let mut line = Vec::new();
            write_seconds(&mut line, ms).expect("in memory");
            assert_eq!(String::from_utf8_lossy(&line), text);
        }
    }

    #[test]
    fn openmetrics_goes_family_by_family_and_series_by_series() {
        let text = generate(DEFAULT_SEED, GenFormat::Openmetrics);
        let dataset = Dataset::new(DatasetSpec::preset(DatasetSize::Small)).expect("valid");
        assert!(text.ends_with("\n# EOF\n"), "ends with # EOF");
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                "# TYPE cpu_usage gauge",
                "# TYPE memory_usage gauge",
                "# TYPE disk_io gauge",
                "# TYPE network_latency gauge",
                "# TYPE http_requests counter",
            ]
        );
        // Every series appears as one run of lines, in time order, with the
        // dataset's own values; families follow each other without mixing.
        let mut runs: Vec<(String, Vec<(f64, i64)>)> = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.rsplitn(3, ' ');
            let seconds = parts.next().expect(line);
            let value = parts.next().expect(line).parse::<f64>().expect(line);
            let series = parts.next().expect(line).to_string();
            let ms = (seconds.parse::<f64>().expect(line) * 1_000.0).round() as i64;
            match runs.last_mut() {
                Some((last, samples)) if *last == series => samples.push((value, ms)),
                _ => runs.push((series, vec![(value, ms)])),
            }
        }
        assert_eq!(runs.len(), dataset.series().len(), "one run per series");
        let mut family_order: Vec<&str> = Vec::new();
        for (series_text, samples) in &runs {
            let name = series_text.split('{').next().unwrap_or_default();
            if family_order.last() != Some(&name) {
                assert!(!family_order.contains(&name), "{name} interleaved");
                family_order.push(name);
            }
            let index = dataset
                .series()
                .iter()
                .position(|s| {
                    *series_text
                        == format!(
                            "{}{{host=\"{}\",region=\"{}\"}}",
                            s.metric, s.host, s.region
                        )
                })
                .expect(series_text);
            let expected: Vec<(f64, i64)> = dataset
                .walker(index)
                .into_iter()
                .flatten()
                .map(|sample| (sample.value, sample.timestamp_ms))
                .collect();
            assert_eq!(samples, &expected, "{series_text}");
        }
        assert_eq!(family_order.last(), Some(&"http_requests_total"));
    }

    /// Real Prometheus reads the file: `promtool tsdb create-blocks-from
    /// openmetrics`, then `promtool tsdb dump` gives back every sample,
    /// fractional-second timestamps (jitter) included, to the millisecond.
    /// `.ci/run` installs Prometheus, so in CI (`CI` set) a missing promtool
    /// is a failure; elsewhere the test says it is skipping and passes.
    #[test]
    fn promtool_builds_blocks_from_openmetrics() {
        let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
            .into_iter()
            .find(|candidate| Path::new(candidate).exists())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install promtool (see .ci/run)"
            );
            eprintln!("skipping: no promtool binary (apt-get install prometheus)");
            return;
        };
        let spec = DatasetSpec {
            hosts: 3,
            jitter_ms: 4_999,
            ..DatasetSpec::preset(DatasetSize::Small)
        };
        let dataset = Dataset::new(spec).expect("valid spec");
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("data.om");
        write_to_file(&dataset, GenFormat::Openmetrics, &file).expect("write");
        let blocks = dir.path().join("blocks");
        let output = std::process::Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&file)
            .arg(&blocks)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool refused the file: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // `dump` opens the directory as a TSDB, which wants a WAL folder.
        std::fs::create_dir_all(blocks.join("wal")).expect("wal dir");
        let output = std::process::Command::new(promtool)
            .args(["tsdb", "dump"])
            .arg(&blocks)
            .output()
            .expect("run promtool");
        assert!(output.status.success(), "promtool tsdb dump failed");
        let mut dumped: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mut expected = Vec::new();
        for (index, series) in dataset.series().iter().enumerate() {
            for sample in dataset.walker(index).into_iter().flatten() {
                expected.push(format!(
                    "{{__name__=\"{}\", host=\"{}\", region=\"{}\"}} {} {}",
                    series.metric, series.host, series.region, sample.value, sample.timestamp_ms
                ));
            }
        }
        dumped.sort();
        expected.sort();
        assert_eq!(dumped.len(), expected.len(), "sample count");
        for (got, want) in dumped.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }
}
