//! Polls `GET /health` while the load runs and after it stops, to see the
//! backlog the client never sees.
//!
//! Why: a server that answers `202 Accepted` before storing has a queue
//! between "accepted" and "stored". Throughput and latency at the HTTP layer
//! can look fine while that queue grows without bound. The peak `queue_size`
//! shows how far storage fell behind; the catch-up time after the load stops
//! shows how long the server needs to actually store what it accepted.
//!
//! The poller uses its own connection (reused if the server allows) and a
//! short timeout, every 100 ms. A server that offers no `/health` or no
//! `queue_size` gives "n/a", never a failed run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};

use crate::client::{Client, ClientOptions, FailureKind, RequestTemplate, WireRequest};
use crate::target::HEALTH_PATH;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Short, so a stuck poll does not hide the next ones.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CatchUp {
    /// `queue_size` reached 0 this long after the load stopped.
    CaughtUp(Duration),
    /// Still `queue_size` queued when the drain timeout ran out.
    Behind { waited: Duration, queue_size: u64 },
    /// No usable `queue_size` from the server.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthSummary {
    pub peak_queue_size: Option<u64>,
    pub catch_up: CatchUp,
}

impl HealthSummary {
    pub fn unknown() -> Self {
        Self {
            peak_queue_size: None,
            catch_up: CatchUp::Unknown,
        }
    }
}

/// What one poll told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    Queue(u64),
    /// The server answered, but without a `queue_size` (no such endpoint).
    Unsupported,
    /// Nobody accepted the connection.
    Unreachable,
    /// No answer in time, or a transient failure: the server may be busy.
    Busy,
}

/// A running poller; call [`HealthMonitor::finish`] when the load stops.
pub struct HealthMonitor {
    load_stopped: watch::Sender<Option<Instant>>,
    task: JoinHandle<HealthSummary>,
}

impl HealthMonitor {
    pub fn start(addr: SocketAddr, host_header: &str, drain_timeout: Duration) -> Self {
        let (load_stopped, stop_rx) = watch::channel(None);
        let request = RequestTemplate::get(HEALTH_PATH, host_header);
        let task = tokio::spawn(monitor(addr, request, stop_rx, drain_timeout));
        Self { load_stopped, task }
    }

    /// Tells the poller the load stopped at `at`, then waits for it to see the
    /// queue drain (bounded by the drain timeout).
    pub async fn finish(self, at: Instant) -> HealthSummary {
        // If the poller already ended there is nobody to tell; fine.
        let _ = self.load_stopped.send(Some(at));
        self.task.await.unwrap_or_else(|_| HealthSummary::unknown())
    }
}

async fn monitor(
    addr: SocketAddr,
    template: RequestTemplate,
    mut stop_rx: watch::Receiver<Option<Instant>>,
    drain_timeout: Duration,
) -> HealthSummary {
    let mut poller = Poller::new(addr, &template);
    let mut ticker = interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // While the load runs: sample, and abandon a poll the moment the load
    // stops so the drain clock starts on time.
    let stopped_at = loop {
        tokio::select! {
            biased;
            at = wait_for_stop(&mut stop_rx) => break at,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            at = wait_for_stop(&mut stop_rx) => break at,
            _ = poller.poll() => {}
        }
    };

    // After the load: poll right away, then every interval, until the queue
    // is empty or the drain timeout runs out.
    let drain_deadline = stopped_at + drain_timeout;
    let mut ticker = interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match poller.poll().await {
            Poll::Queue(0) => {
                return poller.summary(CatchUp::CaughtUp(
                    Instant::now().saturating_duration_since(stopped_at),
                ));
            }
            Poll::Queue(_) | Poll::Busy => {}
            // Never answered with a queue size and now says it has none, or
            // nobody listens: waiting longer will not change that.
            Poll::Unsupported | Poll::Unreachable if poller.last_queue_size.is_none() => {
                return poller.summary(CatchUp::Unknown);
            }
            Poll::Unsupported | Poll::Unreachable => {}
        }
        if Instant::now() >= drain_deadline {
            let catch_up = match poller.last_queue_size {
                Some(queue_size) => CatchUp::Behind {
                    waited: drain_timeout,
                    queue_size,
                },
                None => CatchUp::Unknown,
            };
            return poller.summary(catch_up);
        }
    }
}

async fn wait_for_stop(stop_rx: &mut watch::Receiver<Option<Instant>>) -> Instant {
    match stop_rx.wait_for(Option::is_some).await {
        Ok(at) => (*at).unwrap_or_else(Instant::now),
        // The sender is gone: the load is over, whatever happened.
        Err(_) => Instant::now(),
    }
}

struct Poller {
    client: Client,
    request: WireRequest,
    body: Vec<u8>,
    peak_queue_size: Option<u64>,
    last_queue_size: Option<u64>,
}

impl Poller {
    fn new(addr: SocketAddr, template: &RequestTemplate) -> Self {
        let mut request = WireRequest::default();
        template.render(b"", &mut request);
        Self {
            client: Client::new(
                addr,
                ClientOptions {
                    keep_alive: true,
                    slow_body: None,
                },
            ),
            request,
            body: Vec::with_capacity(256),
            peak_queue_size: None,
            last_queue_size: None,
        }
    }

    async fn poll(&mut self) -> Poll {
        self.body.clear();
        let sent = tokio::time::timeout(
            POLL_TIMEOUT,
            self.client.send(&self.request, Some(&mut self.body)),
        )
        .await;
        let outcome = match sent {
            Err(_) => Poll::Busy,
            Ok(Err(error)) => match error.kind {
                FailureKind::ConnectRefused | FailureKind::Connect => Poll::Unreachable,
                _ => Poll::Busy,
            },
            Ok(Ok(status)) => match queue_size_from_body(&self.body) {
                Some(queue_size) => Poll::Queue(queue_size),
                // An overloaded server may answer /health with 5xx/429.
                None if status >= 500 || status == 429 => Poll::Busy,
                None => Poll::Unsupported,
            },
        };
        if let Poll::Queue(queue_size) = outcome {
            self.last_queue_size = Some(queue_size);
            self.peak_queue_size = Some(
                self.peak_queue_size
                    .map_or(queue_size, |p| p.max(queue_size)),
            );
        }
        outcome
    }

    fn summary(&self, catch_up: CatchUp) -> HealthSummary {
        HealthSummary {
            peak_queue_size: self.peak_queue_size,
            catch_up,
        }
    }
}

/// `queue_size` from a health body like `{"status":"healthy","queue_size":3}`.
fn queue_size_from_body(body: &[u8]) -> Option<u64> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let queue_size = json.get("queue_size")?;
    queue_size.as_u64().or_else(|| {
        queue_size
            .as_f64()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.round() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn reads_queue_size() {
        assert_eq!(
            queue_size_from_body(br#"{"status":"healthy","queue_size":17,"uptime_s":3}"#),
            Some(17)
        );
        assert_eq!(queue_size_from_body(br#"{"queue_size":2.0}"#), Some(2));
        assert_eq!(queue_size_from_body(br#"{"status":"healthy"}"#), None);
        assert_eq!(queue_size_from_body(br#"{"queue_size":"many"}"#), None);
        assert_eq!(queue_size_from_body(b"not json"), None);
        assert_eq!(queue_size_from_body(b""), None);
    }

    /// A one-request-per-connection health server whose queue shrinks by one
    /// on every poll, starting from `start`.
    async fn draining_server(start: u64) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let queue = Arc::new(AtomicU64::new(start));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let size = queue
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                            Some(q.saturating_sub(1))
                        })
                        .unwrap_or(0);
                    let body = format!("{{\"status\":\"healthy\",\"queue_size\":{size}}}");
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn reports_peak_and_catch_up() {
        let addr = draining_server(5).await;
        let monitor = HealthMonitor::start(addr, "test", Duration::from_secs(5));
        let summary = monitor.finish(Instant::now()).await;
        assert_eq!(summary.peak_queue_size, Some(5));
        match summary.catch_up {
            // Sizes 5,4,3,2,1 then 0: five intervals after the first poll.
            CatchUp::CaughtUp(after) => assert!(after >= Duration::from_millis(400), "{after:?}"),
            other => panic!("expected catch-up, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn gives_up_after_drain_timeout() {
        let addr = draining_server(1_000).await;
        let monitor = HealthMonitor::start(addr, "test", Duration::from_millis(250));
        let summary = monitor.finish(Instant::now()).await;
        match summary.catch_up {
            CatchUp::Behind { queue_size, .. } => assert!(queue_size > 990),
            other => panic!("expected behind, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreachable_health_is_unknown_without_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let started = Instant::now();
        let summary = HealthMonitor::start(addr, "test", Duration::from_secs(60))
            .finish(Instant::now())
            .await;
        assert_eq!(summary, HealthSummary::unknown());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
