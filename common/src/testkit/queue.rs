//! The queue slot's conformance suite: no loss, per-producer FIFO,
//! all-or-nothing pushes, backpressure as a typed error, close-then-drain,
//! acks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::testkit::metric;
use crate::{AckToken, Metric, MetricQueue, QueueError};

/// Runs every queue check. `make(capacity)` returns a fresh, empty queue
/// holding at most `capacity` metrics.
pub fn run_all(make: &dyn Fn(usize) -> Arc<dyn MetricQueue>) {
    empty_queue_times_out(make(100));
    push_then_consume_round_trips(make(100));
    no_loss_and_per_producer_fifo_under_concurrency(make(1_000_000));
    full_queue_refuses_whole_batch(make(10));
    close_refuses_pushes_but_drains(make(100));
    acks_are_checked(make(100));
    non_finite_values_travel_bit_for_bit(make(100));
}

/// NaN, ±Inf and Prometheus' stale marker are data: they come out of the
/// queue with the bits they went in with.
pub fn non_finite_values_travel_bit_for_bit(queue: Arc<dyn MetricQueue>) {
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(crate::metric::STALE_NAN_BITS),
        -0.0,
    ];
    let batch: Vec<Metric> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| metric("odd_values", &[("host", "a")], v, i as i64 + 1))
        .collect();
    queue.push(batch).expect("push non-finite values");
    let mut got: Vec<(i64, u64)> = drain(queue.as_ref(), values.len())
        .iter()
        .map(|m| (m.timestamp_ms, m.value.to_bits()))
        .collect();
    got.sort_unstable();
    let expected: Vec<(i64, u64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 + 1, v.to_bits()))
        .collect();
    assert_eq!(got, expected, "every value arrives with its bits");
}

fn drain(queue: &dyn MetricQueue, expected: usize) -> Vec<Metric> {
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "queue delivered {} of {expected} metrics within 30 s",
            out.len()
        );
        if let Some(delivery) = queue
            .consume(500, Duration::from_millis(100))
            .expect("consume must not fail on a healthy queue")
        {
            assert!(
                !delivery.metrics.is_empty(),
                "a delivery must carry at least one metric"
            );
            assert!(delivery.metrics.len() <= 500, "a delivery must respect max");
            out.extend(delivery.metrics);
            queue
                .ack(delivery.ack)
                .expect("acking a fresh delivery must succeed");
        }
    }
    out
}

/// `consume` on an empty queue returns `None` within about its wait.
pub fn empty_queue_times_out(queue: Arc<dyn MetricQueue>) {
    let started = Instant::now();
    let got = queue
        .consume(10, Duration::from_millis(50))
        .expect("consume on empty queue");
    assert!(got.is_none(), "an empty queue must return None");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "consume must respect its wait"
    );
    assert_eq!(queue.len(), 0);
    assert!(queue.is_empty());
}

/// What goes in comes out, in order, and `len` tracks the backlog.
pub fn push_then_consume_round_trips(queue: Arc<dyn MetricQueue>) {
    let batch: Vec<Metric> = (0..5)
        .map(|i| metric("cpu_usage", &[("host", "a")], i as f64, 1_000 + i))
        .collect();
    queue.push(batch.clone()).expect("push into an empty queue");
    assert_eq!(queue.len(), 5, "len counts metrics, not batches");
    let out = drain(&*queue, 5);
    assert_eq!(out, batch, "one producer's metrics come out in push order");
    assert_eq!(queue.len(), 0, "len drops once consumed");
}

/// 4 producers × 2,000 metrics, pushed in batches of 1..=7 while a consumer
/// drains: every metric arrives exactly once and each producer's metrics
/// arrive in push order.
pub fn no_loss_and_per_producer_fifo_under_concurrency(queue: Arc<dyn MetricQueue>) {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 2_000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let host = format!("producer-{p}");
                let mut seq = 0usize;
                while seq < PER_PRODUCER {
                    let size = (seq % 7 + 1).min(PER_PRODUCER - seq);
                    let batch = (seq..seq + size)
                        .map(|i| metric("seq", &[("host", &host)], i as f64, 1_000 + i as i64))
                        .collect();
                    match queue.push(batch) {
                        Ok(()) => seq += size,
                        Err(QueueError::Full { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("push failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let out = drain(&*queue, PRODUCERS * PER_PRODUCER);
    for producer in producers {
        producer.join().expect("producer thread");
    }
    let mut next: HashMap<String, usize> = HashMap::new();
    for m in &out {
        let host = m.labels.get("host").unwrap_or_default().to_string();
        let expected = next.entry(host.clone()).or_insert(0);
        assert_eq!(
            m.value as usize, *expected,
            "{host}: metrics out of push order or lost/duplicated"
        );
        *expected += 1;
    }
    assert_eq!(next.len(), PRODUCERS);
    assert!(
        next.values().all(|n| *n == PER_PRODUCER),
        "every producer's metrics arrive: {next:?}"
    );
    assert!(queue.is_empty());
}

/// At capacity, `push` fails at once with `Full` and enqueues nothing of the
/// batch; room made by consuming is usable again.
pub fn full_queue_refuses_whole_batch(queue: Arc<dyn MetricQueue>) {
    let ten: Vec<Metric> = (0..10).map(|i| metric("m", &[], i as f64, i)).collect();
    queue.push(ten[..8].to_vec()).expect("8 of 10 fit");
    let started = Instant::now();
    match queue.push(ten[..3].to_vec()) {
        Err(QueueError::Full { capacity }) => assert_eq!(capacity, 10, "Full reports the capacity"),
        other => panic!("a batch that does not fit must fail with Full, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "push must not block on a full queue"
    );
    assert_eq!(queue.len(), 8, "a refused batch must enqueue nothing");
    queue
        .push(ten[8..].to_vec())
        .expect("exactly filling the queue is allowed");
    assert!(matches!(
        queue.push(vec![metric("m", &[], 0.0, 0)]),
        Err(QueueError::Full { .. })
    ));
    let out = drain(&*queue, 10);
    assert_eq!(out, ten);
    queue
        .push(vec![metric("m", &[], 0.0, 0)])
        .expect("room again after draining");
}

/// After `close`, pushes fail with `Closed` and the backlog still drains.
pub fn close_refuses_pushes_but_drains(queue: Arc<dyn MetricQueue>) {
    queue
        .push(vec![metric("m", &[], 1.0, 1), metric("m", &[], 2.0, 2)])
        .expect("push");
    queue.close();
    assert!(matches!(
        queue.push(vec![metric("m", &[], 3.0, 3)]),
        Err(QueueError::Closed)
    ));
    let out = drain(&*queue, 2);
    assert_eq!(out.len(), 2, "a closed queue still hands out its backlog");
    let none = queue
        .consume(10, Duration::from_millis(10))
        .expect("consume after drain");
    assert!(none.is_none());
}

/// A token acks once; an unknown token is an error.
pub fn acks_are_checked(queue: Arc<dyn MetricQueue>) {
    queue.push(vec![metric("m", &[], 1.0, 1)]).expect("push");
    let delivery = queue
        .consume(10, Duration::from_secs(5))
        .expect("consume")
        .expect("one metric is waiting");
    queue.ack(delivery.ack).expect("first ack");
    assert!(
        matches!(queue.ack(delivery.ack), Err(QueueError::UnknownAck(_))),
        "a second ack of the same token must fail with UnknownAck"
    );
    assert!(matches!(
        queue.ack(AckToken(u64::MAX)),
        Err(QueueError::UnknownAck(_))
    ));
}
