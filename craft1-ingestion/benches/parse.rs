//! What does reading one metric cost, per wire format? phase0 parses one
//! JSON object per request (`common::decode_metric_json`, called once per
//! metric, as its server does); craft 1 reads whole batches as a JSON array,
//! NDJSON, InfluxDB line protocol and Prometheus remote_write, and a
//! scrape's page in the text exposition format — beside the
//! `prometheus-parse` crate reading the same page. The same
//! 1,000 realistic metrics in each format, throughput in metrics, so the
//! ratios read straight off one run. HTTP is not in the picture: this is the
//! parser alone. Chapter 1.
//!
//! `cargo bench -p craft1-ingestion --bench parse`

use std::hint::black_box;

use common::{Labels, Metric, decode_metric_json};
use craft1_ingestion::decode::{self, DecodeLimits, ExpositionFormat, Format, Precision};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 1_000;
const NOW_MS: i64 = 1_764_000_000_000;
const NAMES: [&str; 6] = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_latency",
    "error_rate",
    "request_count",
];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];

/// A fleet of 20 hosts in 4 regions reporting six metrics, values with two
/// decimals, timestamps 10 ms apart. Deterministic: no RNG, same bytes every
/// run.
fn realistic_metrics() -> Vec<Metric> {
    (0..BATCH)
        .map(|i| {
            let host = format!("server-{:02}", i % 20);
            let region = REGIONS[(i / 20) % REGIONS.len()];
            let value = ((i * 7_919) % 10_000) as f64 / 100.0;
            Metric::new(NAMES[i % NAMES.len()], value, NOW_MS + i as i64 * 10).with_labels(
                Labels::from_pairs([("host", host.as_str()), ("region", region)]),
            )
        })
        .collect()
}

/// An exporter's page: `name{labels} value timestamp`, labels quoted.
fn exposition(metrics: &[Metric]) -> Vec<u8> {
    let mut body = String::new();
    for metric in metrics {
        let labels: Vec<String> = metric
            .labels
            .iter()
            .map(|(name, value)| format!("{name}=\"{value}\""))
            .collect();
        body.push_str(&format!(
            "{}{{{}}} {} {}\n",
            metric.name,
            labels.join(","),
            metric.value,
            metric.timestamp_ms
        ));
    }
    body.into_bytes()
}

/// Telegraf's shape for one metric: the `value` field, nanosecond time.
fn line_protocol(metrics: &[Metric]) -> Vec<u8> {
    let mut body = String::new();
    for metric in metrics {
        body.push_str(&metric.name);
        for (name, value) in metric.labels.iter() {
            body.push_str(&format!(",{name}={value}"));
        }
        body.push_str(&format!(
            " value={} {}\n",
            metric.value,
            metric.timestamp_ms * 1_000_000
        ));
    }
    body.into_bytes()
}

fn parse(c: &mut Criterion) {
    let metrics = realistic_metrics();
    let limits = DecodeLimits::default();

    let single_objects: Vec<Vec<u8>> = metrics
        .iter()
        .map(|m| serde_json::to_vec(m).expect("encode"))
        .collect();
    let array = serde_json::to_vec(&metrics).expect("encode");
    let ndjson = single_objects.join(&b'\n');
    let line_protocol = line_protocol(&metrics);
    let remote_write = decode::encode_remote_write(&metrics);
    let exposition = exposition(&metrics);
    let scraped =
        decode::decode_exposition(&exposition, ExpositionFormat::Prometheus, NOW_MS, &limits)
            .expect("decode");
    assert_eq!(scraped.metrics, metrics, "exposition");

    // Every craft format must decode to exactly what phase0 reads, or the
    // comparison would be between different work.
    for (format, body) in [
        (Format::Json, &array),
        (Format::Ndjson, &ndjson),
        (Format::LineProtocol(Precision::Nanoseconds), &line_protocol),
        (Format::RemoteWrite, &remote_write),
    ] {
        let decoded = decode::decode(format, body, NOW_MS, &limits).expect("decode");
        assert_eq!(decoded, metrics, "{format:?}");
    }

    // Bytes on the wire per metric, for the chapter's table.
    let phase0_bytes: usize = single_objects.iter().map(Vec::len).sum();
    for (name, bytes) in [
        ("phase0 single objects", phase0_bytes),
        ("JSON array", array.len()),
        ("NDJSON", ndjson.len()),
        ("line protocol", line_protocol.len()),
        ("remote_write", remote_write.len()),
        ("text exposition", exposition.len()),
    ] {
        eprintln!("{name}: {:.1} bytes/metric", bytes as f64 / BATCH as f64);
    }

    let mut group = c.benchmark_group("parse/per_metric");
    group.throughput(Throughput::Elements(BATCH as u64));
    // phase0 parses one object per request and pushes each metric on to its
    // queue, so the 1,000 metrics stay alive here too: dropping each one
    // straight away would hand the allocator the same warm block every time,
    // a luxury no real server (and no batch decoder) has.
    group.bench_function("phase0_single_objects", |b| {
        b.iter(|| {
            single_objects
                .iter()
                .map(|body| decode_metric_json(black_box(body), NOW_MS).expect("decode"))
                .collect::<Vec<Metric>>()
        });
    });
    let craft = [
        ("craft1_json_array", Format::Json, &array),
        ("craft1_ndjson", Format::Ndjson, &ndjson),
        (
            "craft1_line_protocol",
            Format::LineProtocol(Precision::Nanoseconds),
            &line_protocol,
        ),
        ("craft1_remote_write", Format::RemoteWrite, &remote_write),
    ];
    for (id, format, body) in craft {
        group.bench_function(id, |b| {
            b.iter(|| decode::decode(format, black_box(body), NOW_MS, &limits).expect("decode"));
        });
    }
    group.bench_function("craft1_text_exposition", |b| {
        b.iter(|| {
            decode::decode_exposition(
                black_box(&exposition),
                ExpositionFormat::Prometheus,
                NOW_MS,
                &limits,
            )
            .expect("decode")
        });
    });
    // The same page through a crate from crates.io (`prometheus-parse`),
    // which reads lines into its own samples: the comparison the chapter
    // asks for, a parser not written for this course.
    let text = String::from_utf8(exposition.clone()).expect("utf-8");
    let theirs = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus-parse");
    assert_eq!(
        theirs.samples.len(),
        BATCH,
        "prometheus-parse read every sample"
    );
    group.bench_function("crate_prometheus_parse_text_exposition", |b| {
        b.iter(|| {
            prometheus_parse::Scrape::parse(black_box(&text).lines().map(|l| Ok(l.to_string())))
                .expect("parse")
        });
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
