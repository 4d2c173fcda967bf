//! `loadgen send`: replays a dataset file over HTTP, body after body, and
//! measures the throughput at which the server *stores* it, not only the rate
//! at which it answers.
//!
//! Why a separate mode: `run` generates bodies whose metrics share one
//! timestamp, so it cannot replay the reference dataset (1,000 series × 24 h,
//! time-major) that the storage chapter is about. `send` takes the file as
//! `loadgen gen` wrote it, cuts it into bodies of `--batch` lines before the
//! clock starts (`replay_file.rs`), and then `-c` workers, each on one
//! keep-alive connection, take the next body from a shared atomic index —
//! so bodies leave roughly in file order, as a fleet's scrapes would arrive —
//! and POST it with loadgen's own client (`client.rs`).
//!
//! Answers: 2xx is accepted. 503 is the queue saying "full": the body is
//! retried after a short growing backoff (5 ms doubling to 200 ms, at most
//! [`DEFAULT_MAX_TRIES`] tries), so the run measures sustained throughput
//! rather than how fast the server can refuse, and every retry is counted.
//! Any other status, or no answer at all (reset, timeout), is an error: the
//! body is not sent again, and the first few errors keep their status and the
//! first bytes of the server's answer for the report.
//!
//! The clock stops when the last body is answered. Unless `--no-health`, the
//! health poller (`health.rs`) then waits for `/health`'s `queue_size` to
//! reach 0: *accepted samples/s* divides by the sending time, *stored
//! samples/s* by sending plus that catch-up time. (`queue_size` 0 means the
//! last batch left the queue for storage; its append may still be running,
//! so stored samples/s is an upper bound by at most one storage batch.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use crate::client::{Client, ClientOptions, FailureKind};
use crate::health::{HealthMonitor, HealthSummary};
use crate::replay_file::PreparedBody;
use crate::stats::Tally;

/// Tries per body while the server answers 503.
pub const DEFAULT_MAX_TRIES: u32 = 100;
/// First pause after a 503; doubles up to [`MAX_RETRY_BACKOFF`].
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(5);
const MAX_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Errors kept with their details; the rest are only counted.
const KEPT_ERRORS: usize = 5;
/// How much of an error answer's body the report quotes.
const QUOTED_BYTES: usize = 200;
/// Pause after a failed connect, so a dead server is not a busy loop.
const CONNECT_FAILURE_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct SendConfig {
    pub addr: SocketAddr,
    /// Host header of the health poller.
    pub authority: String,
    pub connections: usize,
    pub timeout: Duration,
    pub max_tries: u32,
    pub retry_backoff: Duration,
    /// `None`: do not poll /health.
    pub drain_timeout: Option<Duration>,
}

/// One body the server did not accept.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SendError {
    /// Index of the body, from 0, in file order.
    pub body: usize,
    /// 1-based line of the file where the body starts.
    pub first_line: u64,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The first bytes of the answer, or what went wrong on the wire.
    pub message: String,
}

/// What one worker (or, merged, the whole run) saw.
pub struct SendTally {
    /// Every HTTP exchange, retries included: statuses, latency, failures;
    /// `accepted_metrics` counts the samples of accepted bodies.
    pub requests: Tally,
    pub accepted_bodies: u64,
    pub accepted_lines: u64,
    /// Bodies answered neither 2xx nor, within the tries, anything but 503.
    pub error_bodies: u64,
    /// Lines of those bodies.
    pub error_lines: u64,
    /// 503 answers that were followed by another try.
    pub retries: u64,
    /// The first errors in body order, at most [`KEPT_ERRORS`].
    pub first_errors: Vec<SendError>,
}

impl SendTally {
    fn new() -> Self {
        Self {
            requests: Tally::new(),
            accepted_bodies: 0,
            accepted_lines: 0,
            error_bodies: 0,
            error_lines: 0,
            retries: 0,
            first_errors: Vec::new(),
        }
    }

    fn merge(&mut self, other: SendTally) {
        self.requests.merge(&other.requests);
        self.accepted_bodies += other.accepted_bodies;
        self.accepted_lines += other.accepted_lines;
        self.error_bodies += other.error_bodies;
        self.error_lines += other.error_lines;
        self.retries += other.retries;
        self.first_errors.extend(other.first_errors);
        self.first_errors.sort_by_key(|error| error.body);
        self.first_errors.truncate(KEPT_ERRORS);
    }

    fn record_error(
        &mut self,
        index: usize,
        body: &PreparedBody,
        status: Option<u16>,
        message: String,
    ) {
        self.error_bodies += 1;
        self.error_lines += body.lines;
        // Workers take bodies in increasing order, so a worker's first
        // errors are its lowest; the merge keeps the lowest overall.
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(SendError {
                body: index,
                first_line: body.first_line,
                status,
                message,
            });
        }
    }
}

pub struct SendOutcome {
    pub tally: SendTally,
    /// From the first request to the last answer.
    pub send_time: Duration,
    pub health: Option<HealthSummary>,
}

/// Sends every body once (plus 503 retries) over `config.connections`
/// keep-alive connections.
pub async fn send(config: &SendConfig, bodies: Arc<Vec<PreparedBody>>) -> Result<SendOutcome> {
    let health = config
        .drain_timeout
        .map(|drain| HealthMonitor::start(config.addr, &config.authority, drain));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    // More workers than bodies would only open idle connections.
    for _ in 0..config.connections.clamp(1, bodies.len().max(1)) {
        let worker = Worker {
            config: config.clone(),
            bodies: bodies.clone(),
            next: next.clone(),
        };
        workers.spawn(worker.run());
    }
    let mut tally = SendTally::new();
    while let Some(joined) = workers.join_next().await {
        tally.merge(joined.context("a send worker panicked")?);
    }
    let stopped = Instant::now();
    let health = match health {
        Some(monitor) => Some(monitor.finish(stopped).await),
        None => None,
    };
    Ok(SendOutcome {
        tally,
        send_time: stopped - started,
        health,
    })
}

struct Worker {
    config: SendConfig,
    bodies: Arc<Vec<PreparedBody>>,
    next: Arc<AtomicUsize>,
}

impl Worker {
    async fn run(self) -> SendTally {
        let mut tally = SendTally::new();
        let mut client = Client::new(
            self.config.addr,
            ClientOptions {
                keep_alive: true,
                slow_body: None,
            },
        );
        let mut answer = Vec::with_capacity(512);
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = self.bodies.get(index) else {
                break;
            };
            self.send_one(&mut client, &mut answer, &mut tally, index, body)
                .await;
        }
        tally.requests.connections_opened = client.connections_opened();
        tally
    }

    /// Sends one body until it is accepted, refused, or out of tries.
    async fn send_one(
        &self,
        client: &mut Client,
        answer: &mut Vec<u8>,
        tally: &mut SendTally,
        index: usize,
        body: &PreparedBody,
    ) {
        let mut backoff = self.config.retry_backoff;
        for attempt in 1..=self.config.max_tries.max(1) {
            answer.clear();
            let sent_at = Instant::now();
            let result = tokio::time::timeout(
                self.config.timeout,
                client.send(&body.request, Some(answer)),
            )
            .await;
            let status = match result {
                Ok(Ok(status)) => status,
                Ok(Err(error)) => {
                    tally.requests.record_failure(error.kind);
                    let message = format!("no answer: {}", error.kind.label());
                    tally.record_error(index, body, None, message);
                    if matches!(
                        error.kind,
                        FailureKind::ConnectRefused
                            | FailureKind::Connect
                            | FailureKind::NoLocalPort
                            | FailureKind::FdLimit
                    ) {
                        tokio::time::sleep(CONNECT_FAILURE_BACKOFF).await;
                    }
                    return;
                }
                Err(_) => {
                    tally.requests.record_failure(FailureKind::Timeout);
                    let message = format!("no answer within {:?}", self.config.timeout);
                    tally.record_error(index, body, None, message);
                    return;
                }
            };
            let accepted = (200..300).contains(&status);
            tally.requests.record_response(
                status,
                sent_at.elapsed(),
                if accepted { body.samples } else { 0 },
            );
            if accepted {
                tally.accepted_bodies += 1;
                tally.accepted_lines += body.lines;
                return;
            }
            if status != 503 {
                tally.record_error(index, body, Some(status), quote(answer));
                return;
            }
            if attempt == self.config.max_tries.max(1) {
                let message = format!("still 503 after {attempt} tries: {}", quote(answer));
                tally.record_error(index, body, Some(status), message);
                return;
            }
            tally.retries += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_RETRY_BACKOFF.max(self.config.retry_backoff));
        }
    }
}

/// The first bytes of an answer, as text on one line.
fn quote(answer: &[u8]) -> String {
    let cut = &answer[..answer.len().min(QUOTED_BYTES)];
    let mut text: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if answer.len() > QUOTED_BYTES {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay_file::{ReadOptions, SendFormat, prepare};
    use crate::target::Target;

    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    /// One accepted write: path and query, Content-Type, body.
    type SeenWrite = (String, Option<String>, Vec<u8>);

    /// What the test server saw: every accepted write, and the health polls.
    #[derive(Default)]
    struct Seen {
        writes: Mutex<Vec<SeenWrite>>,
        health_polls: AtomicU64,
    }

    /// A keep-alive test server on 127.0.0.1:0. Write requests are answered
    /// with the next status of `script` (then `then`); `/health` says the
    /// queue is empty.
    async fn recording_server(script: Vec<u16>, then: u16) -> (SocketAddr, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let server_seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = server_seen.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let seen = seen.clone();
                        let script = script.clone();
                        async move {
                            let path = request
                                .uri()
                                .path_and_query()
                                .map(|pq| pq.to_string())
                                .unwrap_or_default();
                            let content_type = request
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let (status, payload) = if path == "/health" {
                                seen.health_polls.fetch_add(1, Ordering::Relaxed);
                                (200, r#"{"status":"healthy","queue_size":0}"#.to_string())
                            } else {
                                let status = script
                                    .lock()
                                    .map(|mut s| s.pop_front().unwrap_or(then))
                                    .unwrap_or(then);
                                if status < 300
                                    && let Ok(mut writes) = seen.writes.lock()
                                {
                                    writes.push((path, content_type, body));
                                }
                                (status, format!("{{\"error\":\"status {status}\nline 2\"}}"))
                            };
                            let mut response = Response::new(Full::new(Bytes::from(payload)));
                            *response.status_mut() =
                                hyper::StatusCode::from_u16(status).expect("valid status");
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    fn lp_file(dir: &std::path::Path, lines: usize) -> (std::path::PathBuf, Vec<String>) {
        let lines: Vec<String> = (0..lines)
            .map(|i| {
                format!(
                    "m{},host=h-{:03} value={i} {}",
                    i % 5,
                    i % 7,
                    1_700_000_000_000_000_000i64 + i as i64 * 10_000_000_000
                )
            })
            .collect();
        let path = dir.join("data.lp");
        let mut file = std::fs::File::create(&path).expect("create");
        for line in &lines {
            writeln!(file, "{line}").expect("write");
        }
        (path, lines)
    }

    fn config(addr: SocketAddr, connections: usize, health: bool) -> SendConfig {
        SendConfig {
            addr,
            authority: addr.to_string(),
            connections,
            timeout: Duration::from_secs(2),
            max_tries: DEFAULT_MAX_TRIES,
            retry_backoff: Duration::from_millis(1),
            drain_timeout: health.then_some(Duration::from_secs(1)),
        }
    }

    fn prepared(
        path: std::path::PathBuf,
        batch: usize,
        addr: SocketAddr,
    ) -> crate::replay_file::Prepared {
        let format = SendFormat::Lp;
        let target = Target::parse(&format!("http://{addr}"), format.default_path()).expect("url");
        prepare(
            &ReadOptions {
                path,
                format,
                batch,
                limit: None,
            },
            &target.write_path,
            &target.authority,
            None,
        )
        .expect("prepared")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_line_arrives_once_in_bounded_bodies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, lines) = lp_file(dir.path(), 1_003);
        // Two 503s first: they are retried, not lost.
        let (addr, seen) = recording_server(vec![503, 503], 204).await;
        let prepared = prepared(path, 100, addr);
        assert_eq!(prepared.bodies.len(), 11);
        let outcome = send(&config(addr, 3, true), Arc::new(prepared.bodies))
            .await
            .expect("sent");

        let writes = seen.writes.lock().expect("lock").clone();
        assert_eq!(writes.len(), 11);
        let mut received: Vec<String> = Vec::new();
        for (path, content_type, body) in &writes {
            assert_eq!(path, "/write?precision=ns");
            assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
            let text = String::from_utf8(body.clone()).expect("utf-8");
            let body_lines: Vec<String> = text.lines().map(str::to_string).collect();
            assert!(body_lines.len() <= 100, "{} lines", body_lines.len());
            received.extend(body_lines);
        }
        received.sort();
        let mut expected = lines.clone();
        expected.sort();
        assert_eq!(received, expected, "every line exactly once");

        let tally = &outcome.tally;
        assert_eq!(tally.accepted_bodies, 11);
        assert_eq!(tally.accepted_lines, 1_003);
        assert_eq!(tally.requests.accepted_metrics, 1_003);
        assert_eq!(tally.retries, 2);
        assert_eq!(tally.error_bodies, 0);
        assert_eq!(tally.requests.requests(), 13);
        assert!(tally.requests.connections_opened <= 3);
        let health = outcome.health.expect("polled");
        assert!(
            matches!(health.catch_up, crate::health::CatchUp::CaughtUp(_)),
            "{health:?}"
        );
        assert!(seen.health_polls.load(Ordering::Relaxed) >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_bodies_are_errors_with_status_and_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = lp_file(dir.path(), 50);
        let (addr, seen) = recording_server(vec![204], 400).await;
        let prepared = prepared(path, 10, addr);
        let outcome = send(&config(addr, 1, false), Arc::new(prepared.bodies))
            .await
            .expect("sent");
        let tally = &outcome.tally;
        assert!(outcome.health.is_none());
        assert_eq!(seen.health_polls.load(Ordering::Relaxed), 0);
        assert_eq!((tally.accepted_bodies, tally.error_bodies), (1, 4));
        assert_eq!((tally.accepted_lines, tally.error_lines), (10, 40));
        assert_eq!(tally.retries, 0);
        let first = &tally.first_errors[0];
        assert_eq!(
            (first.body, first.first_line, first.status),
            (1, 11, Some(400))
        );
        assert_eq!(first.message, r#"{"error":"status 400 line 2"}"#);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn endless_503_gives_up_after_max_tries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = lp_file(dir.path(), 5);
        let (addr, _) = recording_server(Vec::new(), 503).await;
        let prepared = prepared(path, 10, addr);
        let mut config = config(addr, 1, false);
        config.max_tries = 4;
        let outcome = send(&config, Arc::new(prepared.bodies))
            .await
            .expect("sent");
        let tally = &outcome.tally;
        assert_eq!((tally.error_bodies, tally.retries), (1, 3));
        assert_eq!(tally.requests.requests(), 4);
        let message = &tally.first_errors[0].message;
        assert!(message.starts_with("still 503 after 4 tries"), "{message}");
    }

    #[tokio::test]
    async fn no_server_is_an_error_per_body_not_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = lp_file(dir.path(), 30);
        let prepared = prepared(path, 10, addr);
        let outcome = send(&config(addr, 2, true), Arc::new(prepared.bodies))
            .await
            .expect("sent");
        assert_eq!(outcome.tally.error_bodies, 3);
        assert_eq!(
            outcome.tally.first_errors[0].message,
            "no answer: connect refused"
        );
    }

    #[test]
    fn quotes_are_one_bounded_line() {
        assert_eq!(quote(b"bad\r\nline"), "bad  line");
        let long = vec![b'x'; 500];
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), QUOTED_BYTES + 1);
        assert!(quoted.ends_with('…'));
    }
}
