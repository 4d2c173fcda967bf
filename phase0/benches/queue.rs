//! Queue push + pop throughput of phase0's `Mutex<VecDeque>`: one producer
//! then one consumer, and four producers contending with a consumer.
//! Craft 2 adds its queues to the same groups. Chapter 0, "The queue".

use std::sync::Arc;
use std::time::Duration;

use common::{Metric, MetricQueue};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::queue::MutexQueue;

const MESSAGES: usize = 10_000;

fn sample(i: usize) -> Metric {
    Metric::new("cpu_usage", i as f64, 1_764_000_000_000 + i as i64)
}

fn drain(queue: &dyn MetricQueue, mut remaining: usize, batch: usize) {
    while remaining > 0 {
        if let Ok(Some(delivery)) = queue.consume(batch, Duration::from_millis(100)) {
            remaining -= delivery.metrics.len();
            let _ = queue.ack(delivery.ack);
        }
    }
}

fn push_then_consume(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue/push_then_consume");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    let metrics: Vec<Metric> = (0..MESSAGES).map(sample).collect();
    for batch in [1usize, 100] {
        group.bench_with_input(
            BenchmarkId::new("phase0", format!("batch{batch}")),
            &batch,
            |b, &batch| {
                let queue = MutexQueue::new(MESSAGES);
                b.iter(|| {
                    for chunk in metrics.chunks(batch) {
                        queue.push(chunk.to_vec()).expect("capacity fits the run");
                    }
                    drain(&queue, MESSAGES, batch);
                });
            },
        );
    }
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue/4_producers_1_consumer");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("phase0", |b| {
        b.iter(|| {
            let queue: Arc<dyn MetricQueue> = Arc::new(MutexQueue::new(MESSAGES));
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let queue = queue.clone();
                    std::thread::spawn(move || {
                        for i in 0..MESSAGES / 4 {
                            queue
                                .push(vec![sample(p * MESSAGES + i)])
                                .expect("capacity fits the run");
                        }
                    })
                })
                .collect();
            drain(&*queue, MESSAGES, 1);
            for producer in producers {
                producer.join().expect("producer");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, push_then_consume, contended);
criterion_main!(benches);
