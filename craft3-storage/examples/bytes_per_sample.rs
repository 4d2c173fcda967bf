//! Bytes per sample on the reference dataset: Gorilla XOR alone, then the
//! per-chunk choice of XOR or decimal — chapter 3's headline figure.
//!
//! Every series of the dataset is cut into chunks of N samples, each chunk
//! is sealed under each policy, and the sealed bytes — encoding tag, sample
//! count, timestamps and values — are summed. Not counted: what a block adds
//! per chunk outside the chunk (a checksum, the index's chunk reference with
//! its min/max time); `framing` shows that at an assumed 8 bytes per chunk.
//! `snappy` compresses each series' sealed chunks as one run, to answer
//! whether a general-purpose compressor helps after these codecs.
//!
//! ```text
//! cargo run --release -p craft3-storage --example bytes_per_sample
//! cargo run --release -p craft3-storage --example bytes_per_sample -- \
//!     --chunk 120,480,8640 --hosts 200 --hours 24 --jitter-ms 0 --seed 20231114
//! ```
//! `--dump FILE` writes every sealed chunk of the chosen policy at the first
//! `--chunk` size, back to back, for trying other compressors on them.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use craft3_storage::chunk::{Chunk, Encoding, EncodingPolicy, Sample};
use fixtures::dataset::{DEFAULT_SEED, Dataset, DatasetSpec};

/// Assumed bytes a block spends per chunk outside it (CRC32 + index entry).
const FRAMING_PER_CHUNK: usize = 8;

struct Options {
    chunk_sizes: Vec<usize>,
    spec: DatasetSpec,
    dump: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        chunk_sizes: vec![120, 480, 8_640],
        spec: DatasetSpec::default(),
        dump: None,
    };
    options.spec.seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("invalid {flag} '{value}'");
        match flag.as_str() {
            "--chunk" => {
                options.chunk_sizes = value
                    .split(',')
                    .map(|n| {
                        n.parse::<usize>()
                            .ok()
                            .filter(|&n| (1..=65_535).contains(&n))
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        format!("invalid --chunk '{value}': 1..=65535, comma-separated")
                    })?
            }
            "--hosts" => options.spec.hosts = value.parse().map_err(bad)?,
            "--hours" => options.spec.hours = value.parse().map_err(bad)?,
            "--jitter-ms" => options.spec.jitter_ms = value.parse().map_err(bad)?,
            "--seed" => options.spec.seed = value.parse().map_err(bad)?,
            "--dump" => options.dump = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

#[derive(Default)]
struct Tally {
    samples: usize,
    chunks: usize,
    bytes: usize,
    snappy: usize,
    decimal_chunks: usize,
}

impl Tally {
    fn per_sample(&self, bytes: usize) -> f64 {
        bytes as f64 / self.samples.max(1) as f64
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let dataset = match Dataset::new(options.spec) {
        Ok(dataset) => dataset,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let series: Vec<Vec<Sample>> = (0..dataset.series().len())
        .filter_map(|index| dataset.series_samples(index))
        .map(|samples| samples.into_iter().map(Sample::from).collect())
        .collect();
    let spec = dataset.spec();
    println!(
        "dataset: {} series x {} samples = {} samples (seed {}, {} h at {} ms, jitter {} ms), generated in {:.1?}",
        spec.series_count(),
        spec.samples_per_series(),
        spec.total_samples(),
        spec.seed,
        spec.hours,
        spec.interval_ms,
        spec.jitter_ms,
        started.elapsed()
    );
    println!(
        "{:>6}  {:<22}  {:>8}  {:>8}  {:>8}  {:>14}  encode time",
        "chunk", "policy", "B/sample", "+framing", "+snappy", "decimal chunks"
    );
    let mut dump = Vec::new();
    for (size_index, &chunk_size) in options.chunk_sizes.iter().enumerate() {
        for policy in [EncodingPolicy::XorOnly, EncodingPolicy::Smallest] {
            let started = Instant::now();
            let mut total = Tally::default();
            let mut by_metric: BTreeMap<&str, Tally> = BTreeMap::new();
            for (info, samples) in dataset.series().iter().zip(&series) {
                let mut sealed = Vec::new();
                let metric = by_metric.entry(info.metric).or_default();
                for part in samples.chunks(chunk_size) {
                    let Ok(chunk) = Chunk::encode(part, policy) else {
                        continue; // chunk sizes are checked above
                    };
                    let bytes = chunk.to_bytes();
                    for tally in [&mut total, &mut *metric] {
                        tally.samples += part.len();
                        tally.chunks += 1;
                        tally.bytes += bytes.len();
                        tally.decimal_chunks += usize::from(chunk.encoding() == Encoding::Decimal);
                    }
                    sealed.extend_from_slice(&bytes);
                }
                let snappy = snap::raw::Encoder::new()
                    .compress_vec(&sealed)
                    .map_or(sealed.len(), |c| c.len().min(sealed.len()));
                total.snappy += snappy;
                metric.snappy += snappy;
                if size_index == 0 && policy == EncodingPolicy::Smallest && options.dump.is_some() {
                    dump.extend_from_slice(&sealed);
                }
            }
            let elapsed = started.elapsed();
            let name = match policy {
                EncodingPolicy::XorOnly => "xor",
                EncodingPolicy::Smallest => "chosen",
            };
            let row = |label: &str, tally: &Tally| {
                println!(
                    "{:>6}  {:<22}  {:>8.3}  {:>8.3}  {:>8.3}  {:>14}  {}",
                    chunk_size,
                    label,
                    tally.per_sample(tally.bytes),
                    tally.per_sample(tally.bytes + tally.chunks * FRAMING_PER_CHUNK),
                    tally.per_sample(tally.snappy),
                    format!("{}/{}", tally.decimal_chunks, tally.chunks),
                    label_time(label, elapsed, tally.samples),
                );
            };
            row(name, &total);
            for (metric, tally) in &by_metric {
                row(&format!("  {metric}"), tally);
            }
        }
    }
    if let Some(path) = options.dump {
        if let Err(error) = std::fs::write(&path, &dump) {
            eprintln!("error: cannot write {path}: {error}");
            return ExitCode::FAILURE;
        }
        println!("wrote {} bytes of sealed chunks to {path}", dump.len());
    }
    ExitCode::SUCCESS
}

/// Encode speed for the totals row only.
fn label_time(label: &str, elapsed: std::time::Duration, samples: usize) -> String {
    if label.starts_with(' ') {
        String::new()
    } else {
        format!(
            "{:.1?} ({:.0} M samples/s)",
            elapsed,
            samples as f64 / elapsed.as_secs_f64() / 1e6
        )
    }
}
