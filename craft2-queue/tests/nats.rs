//! The NATS JetStream queue against real servers: the slot's conformance
//! suite, per-series order across partitions, redelivery, calls from inside
//! a tokio runtime, and a broker killed with SIGKILL mid-load.
//!
//! Most tests use the server named by `NATS_URL` (`.ci/run` starts one);
//! the restart test starts its own `nats-server` child. Without them the
//! tests print a skip line, except under `CI`, where they fail.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::testkit::{self, metric};
use common::{Metric, MetricQueue, QueueError};
use craft2_queue::{NatsConfig, NatsQueue, NatsQueueError};
use parking_lot::Mutex;

/// Skips (or, under `CI`, fails) a test that needs something missing.
fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what}; CI must run the NATS tests (.ci/run installs and starts nats-server)");
    }
    eprintln!("skipping NATS test: {what}");
}

fn nats_url() -> Option<String> {
    match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            missing(
                "NATS_URL is not set (run `nats-server -js` and set NATS_URL=nats://127.0.0.1:4222)",
            );
            None
        }
    }
}

/// A config on a fresh stream, subject prefix and durable, unique per call.
fn fresh_config(url: &str, tag: &str) -> NatsConfig {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    let id = format!("{}_{stamp}_{n}", std::process::id());
    let mut config = NatsConfig::new(url);
    config.stream = format!("SCQ_{}_{id}", tag.to_uppercase());
    config.subject_prefix = format!("scq.{tag}.{id}");
    config.connect_timeout = Duration::from_secs(5);
    config.request_timeout = Duration::from_secs(5);
    config
}

fn open(config: NatsConfig) -> NatsQueue {
    let stream = config.stream.clone();
    NatsQueue::connect(config).unwrap_or_else(|e| panic!("opening stream {stream}: {e}"))
}

/// Consumes and acks until `done` says so, at most `within`.
fn drain_until(
    queue: &dyn MetricQueue,
    within: Duration,
    mut done: impl FnMut(&[Metric]) -> bool,
) -> Vec<Metric> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "only {} metrics arrived within {within:?}",
            out.len()
        );
        match queue.consume(500, Duration::from_millis(100)) {
            Ok(Some(delivery)) => {
                out.extend(delivery.metrics);
                queue.ack(delivery.ack).expect("ack a fresh delivery");
            }
            Ok(None) => {}
            Err(e) => panic!("consume failed: {e}"),
        }
    }
    out
}

#[test]
fn nats_queue_conforms() {
    let Some(url) = nats_url() else { return };
    let made: Mutex<Vec<Arc<NatsQueue>>> = Mutex::new(Vec::new());
    testkit::queue::run_all(&|capacity| {
        let mut config = fresh_config(&url, "conf");
        config.capacity = capacity;
        let queue = Arc::new(open(config));
        assert_eq!(queue.name(), "nats");
        assert_eq!(queue.durability(), common::Durability::Broker);
        made.lock().push(queue.clone());
        queue
    });
    for queue in made.into_inner() {
        queue.delete_stream().expect("delete the test stream");
    }
}

/// 4 producers each own 4 series and push one metric of each per batch, so
/// every batch spans partitions; each series still arrives in push order.
#[test]
fn per_series_order_holds_across_partitions() {
    let Some(url) = nats_url() else { return };
    let mut config = fresh_config(&url, "order");
    config.partitions = 4;
    let queue = Arc::new(open(config));
    const PRODUCERS: usize = 4;
    const SERIES_PER_PRODUCER: usize = 4;
    const PER_SERIES: usize = 100;
    let host = |p: usize, s: usize| format!("h{}", p + PRODUCERS * s);

    let partitions: HashSet<&str> = (0..PRODUCERS * SERIES_PER_PRODUCER)
        .map(|h| queue.subject_for(&metric("order", &[("host", &format!("h{h}"))], 0.0, 0)))
        .collect();
    assert!(
        partitions.len() >= 2,
        "the test's series must span partitions: {partitions:?}"
    );

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..PER_SERIES {
                    let batch = (0..SERIES_PER_PRODUCER)
                        .map(|s| metric("order", &[("host", &host(p, s))], i as f64, i as i64))
                        .collect();
                    queue.push(batch).expect("push");
                }
            })
        })
        .collect();
    let total = PRODUCERS * SERIES_PER_PRODUCER * PER_SERIES;
    let out = drain_until(&*queue, Duration::from_secs(15), |out| out.len() >= total);
    for producer in producers {
        producer.join().expect("producer thread");
    }
    let mut next: HashMap<String, usize> = HashMap::new();
    for m in &out {
        let host = m.labels.get("host").unwrap_or_default().to_string();
        let expected = next.entry(host.clone()).or_insert(0);
        assert_eq!(
            m.value as usize, *expected,
            "{host}: out of order or duplicated"
        );
        *expected += 1;
    }
    assert_eq!(next.len(), PRODUCERS * SERIES_PER_PRODUCER);
    assert!(next.values().all(|n| *n == PER_SERIES), "{next:?}");
    assert_eq!(queue.len(), 0);
    queue.delete_stream().expect("delete the test stream");
}

/// A delivery held when the queue is dropped comes back to the next queue
/// on the same durable, and `len` counts it after reopening.
#[test]
fn unacked_delivery_is_redelivered_after_reopening() {
    let Some(url) = nats_url() else { return };
    let config = fresh_config(&url, "reopen");
    let batch: Vec<Metric> = (0..3)
        .map(|i| metric("reopen", &[("host", "a")], i as f64, i))
        .collect();
    {
        let queue = open(config.clone());
        queue.push(batch.clone()).expect("push");
        let held = queue
            .consume(10, Duration::from_secs(2))
            .expect("consume")
            .expect("3 metrics waiting");
        assert_eq!(held.metrics, batch);
        // Dropped without acking: the consumer process "crashed" mid-append.
    }
    let queue = open(config);
    assert_eq!(
        queue.len(),
        3,
        "the reopened queue counts the unacked backlog"
    );
    let again = drain_until(&queue, Duration::from_secs(5), |out| out.len() >= 3);
    assert_eq!(again, batch, "the unacked delivery comes back, in order");
    assert_eq!(queue.len(), 0);
    assert!(
        queue
            .consume(10, Duration::from_millis(200))
            .expect("consume")
            .is_none(),
        "acked metrics are not redelivered"
    );
    queue.delete_stream().expect("delete the test stream");
}

/// Without any nak (a consumer that hangs), the broker redelivers after
/// `ack_wait`; the backlog counts the message once however often it comes.
#[test]
fn unacked_delivery_is_redelivered_after_ack_wait() {
    let Some(url) = nats_url() else { return };
    let mut config = fresh_config(&url, "ackwait");
    config.ack_wait = Duration::from_millis(500);
    let queue = open(config);
    let batch = vec![metric("slow", &[], 1.0, 1), metric("slow", &[], 2.0, 2)];
    queue.push(batch.clone()).expect("push");
    let first = queue
        .consume(10, Duration::from_secs(2))
        .expect("consume")
        .expect("2 metrics waiting");
    assert_eq!(first.metrics, batch);
    let started = Instant::now();
    let again = loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no redelivery within 5 s of a 500 ms ack_wait"
        );
        if let Some(d) = queue
            .consume(10, Duration::from_millis(200))
            .expect("consume")
        {
            break d;
        }
    };
    assert_eq!(again.metrics, batch, "the same metrics come again");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before ack_wait"
    );
    assert_eq!(queue.len(), 2);
    queue.ack(again.ack).expect("ack the redelivery");
    assert_eq!(queue.len(), 0);
    queue
        .ack(first.ack)
        .expect("the first delivery's token is still valid");
    assert_eq!(
        queue.len(),
        0,
        "a redelivered message leaves the backlog once"
    );
    queue.delete_stream().expect("delete the test stream");
}

/// The ingestion server calls the queue from tokio threads: nothing may
/// panic there, including dropping the queue.
#[test]
fn works_from_inside_a_tokio_runtime() {
    let Some(url) = nats_url() else { return };
    let config = fresh_config(&url, "tokio");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime");
    runtime.block_on(async move {
        let queue = open(config);
        queue.push(vec![metric("t", &[], 1.0, 1)]).expect("push");
        let delivery = queue
            .consume(10, Duration::from_secs(2))
            .expect("consume")
            .expect("one metric");
        queue.ack(delivery.ack).expect("ack");
        queue.delete_stream().expect("delete the test stream");
        drop(queue);
    });
}

#[test]
fn connect_failure_names_the_url_within_the_timeout() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut config = NatsConfig::new(&url);
    config.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = NatsQueue::connect(config)
        .err()
        .expect("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "connect must be bounded"
    );
    assert!(
        matches!(
            err,
            NatsQueueError::Connect { .. } | NatsQueueError::ConnectTimeout { .. }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&url),
        "the error names the URL: {err}"
    );
}

// --- a broker of our own, killed mid-load ---------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// A `nats-server -js` child, killed when dropped.
struct Broker {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    fn start(binary: PathBuf) -> Broker {
        let mut broker = Broker {
            binary,
            port: free_port(),
            store: tempfile::tempdir().expect("store dir"),
            child: None,
        };
        broker.spawn();
        broker
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn store(&self) -> &Path {
        self.store.path()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_port(port: u16, within: Duration) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + within;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pushes 600 single-metric batches while another thread SIGKILLs the
/// broker after 200 were acknowledged, keeps it down 300 ms and restarts it
/// on the same port and store; pushes during the outage fail and are
/// retried. Every push that returned Ok must be consumable afterwards.
#[test]
fn broker_restart_loses_nothing_acknowledged() {
    let Some(binary) = find_nats_server() else {
        missing("nats-server is not installed (apt-get install nats-server)");
        return;
    };
    let mut broker = Broker::start(binary);
    let mut config = fresh_config(&broker.url(), "restart");
    config.partitions = 4;
    config.request_timeout = Duration::from_secs(1);
    config.max_reconnect_delay = Duration::from_millis(100);
    let deadline = Instant::now() + Duration::from_secs(10);
    let queue = loop {
        // JetStream may need a moment after the port opens.
        match NatsQueue::connect(config.clone()) {
            Ok(queue) => break queue,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot open the queue: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };

    const TOTAL: i64 = 600;
    const KILL_AT: usize = 200;
    let acked_count = Arc::new(AtomicUsize::new(0));
    let killer = {
        let acked_count = acked_count.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while acked_count.load(Ordering::Acquire) < KILL_AT {
                assert!(Instant::now() < deadline, "pushes stalled before the kill");
                std::thread::sleep(Duration::from_millis(1));
            }
            broker.kill();
            std::thread::sleep(Duration::from_millis(300));
            broker.spawn();
            broker
        })
    };
    let mut acknowledged = BTreeSet::new();
    let mut failures = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    for seq in 0..TOTAL {
        let m = metric(
            "restart",
            &[("host", &format!("h{}", seq % 5))],
            seq as f64,
            seq,
        );
        loop {
            assert!(
                Instant::now() < deadline,
                "pushes did not recover within 20 s ({failures} failures)"
            );
            match queue.push(vec![m.clone()]) {
                Ok(()) => {
                    acknowledged.insert(seq);
                    acked_count.fetch_add(1, Ordering::Release);
                    break;
                }
                Err(QueueError::Backend(_)) => {
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("push failed with {e}"),
            }
        }
    }
    let broker = killer.join().expect("killer thread");
    assert!(
        failures > 0,
        "pushes during a 300 ms outage must fail, not hang or succeed"
    );
    eprintln!(
        "restart: {} pushes acknowledged, {failures} failed during the outage (store {})",
        acknowledged.len(),
        broker.store().display()
    );
    let mut seen = BTreeSet::new();
    drain_until(&queue, Duration::from_secs(15), |out| {
        seen.extend(out.iter().map(|m| m.timestamp_ms));
        acknowledged.is_subset(&seen)
    });
    let lost: Vec<_> = acknowledged.difference(&seen).collect();
    assert!(lost.is_empty(), "acknowledged metrics lost: {lost:?}");
}
