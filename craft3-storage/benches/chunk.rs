//! Encode and decode throughput of the chunk codecs, XOR and decimal side by
//! side in one group so their ratio comes from one run. The input is one
//! host of the reference dataset — its 5 series × 24 h at 10 s (43,200
//! samples) — cut into 120-sample chunks as the head cuts them. Elements are
//! samples, so criterion's "thrpt" is samples/s. Chapter 3, "Measured".
//!
//! `cargo bench -p craft3-storage --bench chunk`

use std::hint::black_box;
use std::time::Duration;

use craft3_storage::chunk::{
    Chunk, DecimalChunk, EncodingPolicy, SAMPLES_PER_CHUNK, Sample, XorChunk,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixtures::dataset::{Dataset, DatasetSpec, METRICS};

/// The first host's series, cut into head-sized chunks.
fn chunks_of_one_host() -> Vec<Vec<Sample>> {
    let Ok(dataset) = Dataset::new(DatasetSpec::default()) else {
        return Vec::new();
    };
    (0..METRICS.len())
        .filter_map(|index| dataset.series_samples(index))
        .flat_map(|samples| {
            samples
                .chunks(SAMPLES_PER_CHUNK)
                .map(|chunk| chunk.iter().copied().map(Sample::from).collect())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let chunks = chunks_of_one_host();
    let samples: usize = chunks.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("chunk_encode");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("xor", |b| {
        b.iter(|| {
            chunks
                .iter()
                .map(|part| XorChunk::from_samples(part).payload_len())
                .sum::<usize>()
        })
    });
    group.bench_function("decimal", |b| {
        b.iter(|| {
            chunks
                .iter()
                .filter_map(|part| DecimalChunk::encode(part))
                .map(|chunk| chunk.payload().len())
                .sum::<usize>()
        })
    });
    group.bench_function("chosen (xor + decimal, keep smaller)", |b| {
        b.iter(|| {
            chunks
                .iter()
                .filter_map(|part| Chunk::encode(part, EncodingPolicy::Smallest).ok())
                .map(|chunk| chunk.encoded_len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let parts = chunks_of_one_host();
    let samples: usize = parts.iter().map(Vec::len).sum();
    let sealed = |policy| -> Vec<Chunk> {
        parts
            .iter()
            .filter_map(|part| Chunk::encode(part, policy).ok())
            .collect()
    };
    let mut group = c.benchmark_group("chunk_decode");
    group.throughput(Throughput::Elements(samples as u64));
    for (name, chunks) in [
        ("xor", sealed(EncodingPolicy::XorOnly)),
        ("decimal", sealed(EncodingPolicy::Smallest)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut checksum = 0i64;
                for chunk in &chunks {
                    for sample in chunk.iter() {
                        checksum = checksum
                            .wrapping_add(sample.timestamp_ms)
                            .wrapping_add(sample.value.to_bits() as i64);
                    }
                }
                black_box(checksum)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode, decode
}
criterion_main!(benches);
