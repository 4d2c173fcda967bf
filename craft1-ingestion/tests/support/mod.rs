//! Helpers for craft 1's integration tests: a pipeline of phase0 components
//! with a craft 1 server in slot 1, on 127.0.0.1 port 0.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{IngestionServer, LabelMatcher, SystemClock, TimeRange};
use craft1_ingestion::{AsyncServer, ServerConfig, ThreadPerConnectionServer, ThreadPoolServer};
use pipeline::{Components, Pipeline, PipelineOptions, RunningPipeline};

#[allow(unused_imports)] // each test file uses a different subset
pub use common::testkit::ingestion::{Reply, assert_error, get, post, read_reply, send};

/// Which server to put in slot 1.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Threads,
    Pool,
    Async,
}

pub const ALL_STEPS: [Step; 3] = [Step::Threads, Step::Pool, Step::Async];

pub fn server(step: Step, config: ServerConfig) -> Arc<dyn IngestionServer> {
    match step {
        Step::Threads => Arc::new(ThreadPerConnectionServer::new(config)),
        Step::Pool => Arc::new(ThreadPoolServer::new(config, 8)),
        Step::Async => Arc::new(AsyncServer::new(config)),
    }
}

/// phase0's components in `dir` with `step`'s server.
pub fn components(
    dir: &std::path::Path,
    step: Step,
    config: ServerConfig,
    queue_capacity: usize,
) -> Components {
    let mut components = phase0::build(
        phase0::Config {
            data_dir: dir.to_path_buf(),
            notifiers: vec![],
            queue_capacity,
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .expect("phase0 components");
    components.ingestion = server(step, config);
    components
}

pub struct Running {
    pub pipeline: Option<RunningPipeline>,
    pub addr: SocketAddr,
    pub store: Arc<dyn common::MetricStore>,
    pub dir: tempfile::TempDir,
}

impl Running {
    pub fn start(step: Step, config: ServerConfig) -> Running {
        Self::start_with_capacity(step, config, 1_000_000)
    }

    pub fn start_with_capacity(step: Step, config: ServerConfig, queue_capacity: usize) -> Running {
        let dir = tempfile::tempdir().expect("temp dir");
        let components = components(dir.path(), step, config, queue_capacity);
        let store = components.store.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let pipeline = Pipeline::start(
            components,
            listener,
            PipelineOptions {
                verbose: false,
                ..Default::default()
            },
        )
        .expect("pipeline");
        let addr = pipeline.local_addr();
        Running {
            pipeline: Some(pipeline),
            addr,
            store,
            dir,
        }
    }

    /// Samples stored for `name`, waiting (bounded) until there are `expected`.
    pub fn wait_stored(&self, name: &str, expected: usize) -> Vec<common::Series> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let series = self
                .store
                .select(&[LabelMatcher::metric_name(name)], TimeRange::ALL)
                .expect("select");
            let count: usize = series.iter().map(|s| s.samples.len()).sum();
            if count >= expected {
                assert_eq!(count, expected, "{name}: more samples stored than sent");
                return series;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {count} of {expected} samples stored within 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(&mut self) -> pipeline::ShutdownReport {
        self.pipeline
            .take()
            .expect("running")
            .stop()
            .expect("clean stop")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pipeline) = self.pipeline.take() {
            let _ = pipeline.stop();
        }
    }
}

/// A request with extra headers and `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send(addr, &[&bytes], Duration::ZERO)
}

/// Reads one response with a Content-Length body from a kept-alive stream.
pub fn read_one(stream: &mut TcpStream) -> (u16, String, String) {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read head");
        assert!(
            n > 0,
            "connection closed before a response: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read body");
    (status, head, String::from_utf8_lossy(&body).to_string())
}

pub fn keep_alive_post(stream: &mut TcpStream, path: &str, body: &str) {
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
}
