//! Nothing accepted is lost on a graceful shutdown: the pipeline stops
//! accepting, then drains the queue into storage before exiting.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{
    LabelMatcher, Metric, MetricStore, Series, Shutdown, StorageError, SystemClock, TimeRange,
};
use phase0::storage::JsonlFileStore;
use pipeline::{Pipeline, PipelineOptions};
use support::*;

/// phase0's store, held shut until shutdown begins: every accepted metric
/// is still in the queue when `stop` is called, so the drain is certain.
struct GatedStore {
    inner: JsonlFileStore,
    gate: Shutdown,
}

impl MetricStore for GatedStore {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        self.gate.wait();
        self.inner.append(metrics)
    }
    fn select(&self, m: &[LabelMatcher], r: TimeRange) -> Result<Vec<Series>, StorageError> {
        self.inner.select(m, r)
    }
    fn label_names(&self) -> Result<Vec<String>, StorageError> {
        self.inner.label_names()
    }
    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name)
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
    fn name(&self) -> &'static str {
        "gated"
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn count_lines(path: &Path) -> usize {
    read_lines(path).len()
}

#[test]
fn stop_drains_the_backlog_into_storage() {
    let dir = tempfile::tempdir().unwrap();
    let mut components = phase0::build(
        phase0::Config {
            data_dir: dir.path().to_path_buf(),
            notifiers: vec![],
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let shutdown = Shutdown::new();
    components.store = Arc::new(GatedStore {
        inner: JsonlFileStore::open(dir.path()).unwrap(),
        gate: shutdown.clone(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = Pipeline::start_with_shutdown(
        components,
        listener,
        PipelineOptions {
            consume_batch: 1,
            verbose: false,
            ..Default::default()
        },
        shutdown,
    )
    .unwrap();
    let addr = running.local_addr();
    for i in 0..300 {
        let reply = post(
            addr,
            "/metrics",
            &format!(r#"{{"name":"drain","value":{i}}}"#),
        );
        assert_eq!(reply.status, 202);
    }
    let backlog = get(addr, "/health").json()["queue_size"].as_u64().unwrap();
    assert!(
        backlog >= 299,
        "the gated store leaves the whole backlog to drain: {backlog}"
    );
    let report = running.stop().expect("clean stop");
    assert_eq!(report.left_in_queue, 0);
    assert_eq!(
        count_lines(&dir.path().join("phase0_metrics.jsonl")),
        300,
        "every accepted metric stored"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped accepting"
    );
}

#[test]
fn sigterm_under_load_loses_nothing_accepted() {
    let mut server = Server::start(&[]);
    let addr = server.addr;
    // Four clients post as fast as they can; SIGTERM lands mid-load.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut accepted = 0usize;
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5_000 {
                    i += 1;
                    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
                        break;
                    };
                    let body =
                        format!(r#"{{"name":"sigterm","value":{i},"labels":{{"client":"c{c}"}}}}"#);
                    let request = format!(
                        "POST /metrics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if std::io::Write::write_all(&mut stream, request.as_bytes()).is_err() {
                        continue;
                    }
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut response = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut stream, &mut response);
                    if response.starts_with(b"HTTP/1.1 202") {
                        accepted += 1;
                    }
                }
                accepted
            })
        })
        .collect();
    wait_until(Duration::from_secs(20), "some load stored", || {
        server.stored_lines().len() >= 200
    });
    let status = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let accepted: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(status.success(), "exit 0 after SIGTERM, got {status:?}");
    let stored = server
        .stored_lines()
        .iter()
        .filter(|l| l.contains("\"sigterm\""))
        .count();
    assert_eq!(stored, accepted, "every 202 is in the file after shutdown");
}
