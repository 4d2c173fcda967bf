//! Push + consume throughput, every queue in one group: phase0's
//! `Mutex<VecDeque>`, crossbeam, the log under each fsync policy, and NATS
//! JetStream when `NATS_URL` names a server. Producers (1 or 4) push in
//! batches of 1, 100 or 1,000 while one consumer drains and acks, as the
//! platform's storage consumer does. Elements are metrics, so criterion's
//! "thrpt" is metrics/s. Chapter 2, "Measured".
//!
//! `cargo bench -p craft2-queue --bench queues` (add `NATS_URL=nats://…`
//! for the NATS rows).

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Labels, Metric, MetricQueue};
use craft2_queue::{CrossbeamQueue, FsyncPolicy, Log, LogConfig, LogQueue, NatsConfig, NatsQueue};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::queue::MutexQueue;

/// A metric-sized record: a name, two labels, a value and a timestamp
/// (~60 bytes framed in the log).
fn sample(producer: usize, i: usize) -> Metric {
    Metric::new("cpu_usage", i as f64, 1_764_000_000_000 + i as i64).with_labels(
        Labels::from_pairs([
            ("host", format!("server-{:02}", (producer * 7 + i) % 50)),
            ("region", "eu-west".to_string()),
        ]),
    )
}

/// Pushes every producer's prepared batches from its own thread while this
/// thread consumes and acks them all. Returns the deliveries so criterion
/// drops them outside the timing (the batches were built outside it too:
/// what is measured is the queue, not cloning and freeing metrics).
fn run(queue: &Arc<dyn MetricQueue>, batches: Vec<Vec<Vec<Metric>>>) -> Vec<Vec<Metric>> {
    let mut remaining: usize = batches.iter().flatten().map(Vec::len).sum();
    let handles: Vec<_> = batches
        .into_iter()
        .map(|mine| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for batch in mine {
                    // Capacity is sized for the run, so Full is a bench bug.
                    queue.push(batch).expect("push");
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while remaining > 0 {
        assert!(
            Instant::now() < deadline,
            "consumer stalled with {remaining} left"
        );
        if let Some(d) = queue
            .consume(1000, Duration::from_millis(100))
            .expect("consume")
        {
            remaining -= d.metrics.len();
            queue.ack(d.ack).expect("ack");
            out.push(d.metrics);
        }
    }
    for h in handles {
        h.join().expect("producer");
    }
    out
}

type Make = Box<dyn Fn() -> Arc<dyn MetricQueue>>;

fn backends(dirs: &mut Vec<tempfile::TempDir>) -> Vec<(&'static str, Make)> {
    let mut out: Vec<(&'static str, Make)> = vec![
        ("phase0", Box::new(|| Arc::new(MutexQueue::new(10_000_000)))),
        (
            "crossbeam",
            Box::new(|| Arc::new(CrossbeamQueue::new(10_000_000))),
        ),
    ];
    for (name, fsync) in [
        ("log-never", FsyncPolicy::Never),
        (
            "log-group-10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("log-every-batch", FsyncPolicy::EveryBatch),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        dirs.push(dir);
        let counter = std::sync::atomic::AtomicUsize::new(0);
        out.push((
            name,
            Box::new(move || {
                // A fresh log per benchmark so earlier rows do not grow it.
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (log, _) = Log::open(LogConfig {
                    fsync,
                    ..LogConfig::new(path.join(n.to_string()))
                })
                .expect("open log");
                Arc::new(LogQueue::new(log, 10_000_000).expect("log queue"))
            }),
        ));
    }
    if let Ok(url) = std::env::var("NATS_URL") {
        let counter = std::sync::atomic::AtomicUsize::new(0);
        out.push((
            "nats",
            Box::new(move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let stream = format!("BENCH_{}_{n}", std::process::id());
                let config = NatsConfig {
                    subject_prefix: stream.to_lowercase(),
                    stream,
                    capacity: 10_000_000,
                    ..NatsConfig::new(url.clone())
                };
                Arc::new(NatsQueue::connect(config).expect("connect to NATS_URL"))
            }),
        ));
    }
    out
}

fn push_consume(c: &mut Criterion) {
    let mut dirs = Vec::new();
    let backends = backends(&mut dirs);
    let mut group = c.benchmark_group("queue/push_consume");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for producers in [1usize, 4] {
        for batch in [1usize, 100, 1000] {
            for (name, make) in &backends {
                // Slow configurations get fewer messages so a row takes
                // seconds, not minutes; throughput is per metric either way.
                let per_producer = match (*name, batch) {
                    ("log-every-batch", 1) | ("nats", 1) => 200,
                    ("log-every-batch", 100) | ("nats", 100) => 5_000,
                    ("nats", _) => 10_000,
                    (_, 1) => 20_000,
                    _ => 100_000,
                };
                let data: Vec<Vec<Vec<Metric>>> = (0..producers)
                    .map(|p| {
                        let metrics: Vec<Metric> =
                            (0..per_producer).map(|i| sample(p, i)).collect();
                        metrics.chunks(batch).map(<[Metric]>::to_vec).collect()
                    })
                    .collect();
                group.throughput(Throughput::Elements((producers * per_producer) as u64));
                let queue = make();
                group.bench_function(
                    BenchmarkId::new(*name, format!("{producers}p_batch{batch}")),
                    |b| {
                        b.iter_batched(
                            || data.clone(),
                            |batches| run(&queue, batches),
                            BatchSize::LargeInput,
                        )
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, push_consume);
criterion_main!(benches);
