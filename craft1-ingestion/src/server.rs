//! The production server: hyper 1 on a multi-threaded tokio runtime,
//! HTTP/1.1 keep-alive, the last step of the staircase.
//!
//! Removes thread-per-connection: a connection is a small task, idle or
//! busy, so thousands of keep-alive clients and slow senders cost memory,
//! not threads, and never hold up the others. Writes are decoded and queued
//! on the event loop (CPU work, no I/O); anything that may block on storage
//! (`/query`, `/api/v1/*`) runs on the blocking pool.
//!
//! Per request it adds as little as it can to what hyper does anyway: the
//! handler reads hyper's parts through a borrowed view (no header, path or
//! body copies), a body that came with its headers is taken without arming
//! a timer, and the per-connection limits (header and idle timeouts) are
//! kept by a watchdog that counts requests once a second instead of a timer
//! per request. Story: docs chapter 1, "Step 3: async" and "The hot path".

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, TcpListener};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{Request, Response};
use common::{IngestionError, IngestionServer, Shutdown};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::handler::{IngestHandler, RequestView};
use crate::self_metrics::SelfMetrics;

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// hyper + tokio.
pub struct AsyncServer {
    config: ServerConfig,
}

impl AsyncServer {
    /// A server under `config`'s limits.
    pub fn new(config: ServerConfig) -> Self {
        AsyncServer { config }
    }
}

impl IngestionServer for AsyncServer {
    fn serve(
        &self,
        listener: TcpListener,
        ingress: common::Ingress,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.worker_threads.max(1))
            .thread_name("ingest-worker")
            .enable_all()
            .build()
            .map_err(|e| IngestionError::Startup(format!("cannot start the tokio runtime: {e}")))?;
        let handler = Arc::new(IngestHandler::new(ingress, self.config.clone()));
        let result = runtime.block_on(accept_loop(listener, handler, shutdown));
        // Requests still running on the blocking pool finish on their own;
        // do not wait forever for a stuck one.
        runtime.shutdown_timeout(Duration::from_secs(5));
        result
    }

    fn name(&self) -> &'static str {
        "craft1"
    }

    fn describe(&self) -> String {
        format!(
            "hyper + tokio, {} worker threads, keep-alive",
            self.config.worker_threads.max(1)
        )
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<IngestHandler>,
    shutdown: Shutdown,
) -> Result<(), IngestionError> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = Arc::new(Semaphore::new(handler.config().max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = pin!({
        let shutdown = shutdown.clone();
        tokio::task::spawn_blocking(move || shutdown.wait())
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    common::say_err!("[Ingestion] accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            handler.metrics().connection_refused();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let client = peer.ip();
        let state = Arc::new(ConnectionState {
            handler: handler.clone(),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            reads_when_finished: AtomicU64::new(0),
        });
        let service = {
            let state = state.clone();
            service_fn(move |request| {
                let state = state.clone();
                async move {
                    state.started.fetch_add(1, Ordering::Relaxed);
                    let response = answer(request, client, &state.handler).await;
                    let reads = state.reads.load(Ordering::Relaxed);
                    state.reads_when_finished.store(reads, Ordering::Relaxed);
                    // Release: the watchdog that sees this count sees the
                    // reads stored above.
                    state.finished.fetch_add(1, Ordering::Release);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        // No hyper timer: its header timeout boxes and arms a timer for
        // every request on every connection; with the old watchdog's
        // `select!` on every wake-up that was ~1,800 instructions, 7% of a
        // single-metric request (callgrind). The watchdog task below keeps
        // the limit instead, one tick a second per connection.
        let stream = CountedStream {
            inner: stream,
            state: state.clone(),
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let open = OpenConnection::new(handler.metrics().clone(), permit);
        let task = tokio::spawn(async move {
            // Dropped when the connection ends or the watchdog aborts it.
            let _open = open;
            let _ = connection.await;
        });
        tokio::spawn(watchdog(
            state,
            task.abort_handle(),
            handler.config().header_timeout,
            handler.config().idle_timeout,
        ));
    }
    drop(listener);
    // Stop accepting, let in-flight requests finish, close idle connections.
    let _ = tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await;
    Ok(())
}

/// A connection counted open and holding its slot, until dropped.
struct OpenConnection {
    metrics: Arc<SelfMetrics>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(metrics: Arc<SelfMetrics>, slot: tokio::sync::OwnedSemaphorePermit) -> Self {
        metrics.connection_opened();
        OpenConnection {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// What a connection's task, its requests and its watchdog share.
struct ConnectionState {
    handler: Arc<IngestHandler>,
    /// Requests started and finished on this connection.
    started: AtomicU64,
    finished: AtomicU64,
    /// Reads from the socket that brought bytes, and their count when the
    /// last request finished: more since then, with no request started,
    /// means a client is part-way through its next request's headers.
    reads: AtomicU64,
    reads_when_finished: AtomicU64,
}

/// Closes a connection that holds a slot without using it: headers begun
/// but not finished within `header_timeout` (a slowloris client), no first
/// request within `header_timeout` either, or no further request for
/// `idle_timeout`. Never while a request is in flight, so closing loses
/// nothing. It looks once a tick (a second at most), so a limit is kept to
/// within two ticks: counters instead of a clock read or a timer per
/// request, because per request is where the cost would be. Aborting the
/// connection's task drops the connection, which closes the socket.
async fn watchdog(
    state: Arc<ConnectionState>,
    connection: tokio::task::AbortHandle,
    header_timeout: Duration,
    idle_timeout: Duration,
) {
    let every = Duration::from_secs(1).min(header_timeout).min(idle_timeout);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_started = u64::MAX;
    let mut quiet_since = Instant::now();
    let mut headers_since: Option<Instant> = None;
    loop {
        let now = tick.tick().await.into_std();
        if connection.is_finished() {
            return;
        }
        let started = state.started.load(Ordering::Relaxed);
        let finished = state.finished.load(Ordering::Acquire);
        if started != finished || started != seen_started {
            // Busy, or busy since the last tick.
            seen_started = started;
            quiet_since = now;
            headers_since = None;
            continue;
        }
        let reads_when_finished = state.reads_when_finished.load(Ordering::Relaxed);
        if headers_since.is_none() && state.reads.load(Ordering::Relaxed) != reads_when_finished {
            headers_since = Some(now);
        }
        // A new connection owes its first request within the header
        // timeout, as with the blocking steps; a kept-alive one may idle.
        let idle_limit = if started == 0 {
            header_timeout
        } else {
            idle_timeout
        };
        let too_slow = headers_since.is_some_and(|since| now - since > header_timeout);
        let idle = headers_since.is_none() && now - quiet_since > idle_limit;
        if too_slow || idle {
            connection.abort();
            return;
        }
    }
}

/// The client's socket, counting the reads that brought bytes for the
/// watchdog (one relaxed add per read).
struct CountedStream {
    inner: tokio::net::TcpStream,
    state: Arc<ConnectionState>,
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.reads.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn refuse(stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = br#"{"error":"too many connections; retry later"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
        body.len()
    );
    let mut stream = stream;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await
    })
    .await;
}

async fn answer(
    request: hyper::Request<Incoming>,
    client: IpAddr,
    handler: &Arc<IngestHandler>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let max_body = handler.config().max_body_bytes;
    // hyper has read `Content-Length` already: the body knows its size.
    if let Some(length) = body.size_hint().exact()
        && length > max_body as u64
    {
        // Refused before reading: the body is never buffered.
        return to_hyper(handler.refuse(
            parts.uri.path(),
            413,
            format!("body of {length} bytes exceeds the limit of {max_body} bytes"),
        ));
    }
    let body_timeout = handler.config().header_timeout.max(Duration::from_secs(30));
    let body = match read_body(body, max_body, body_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return to_hyper(handler.refuse(
                parts.uri.path(),
                413,
                format!("body exceeds the limit of {max_body} bytes"),
            ));
        }
        Err(BodyError::Read(error)) => {
            return to_hyper(Response::error(
                400,
                format!("cannot read the request body: {error}"),
            ));
        }
        Err(BodyError::TimedOut) => {
            return to_hyper(Response::error(408, "request body not received in time"));
        }
    };
    let request = HyperRequest {
        parts: &parts,
        body: &body,
    };
    let response = if IngestHandler::may_block(&request) {
        let request = request.to_request().into_owned();
        let handler = handler.clone();
        match tokio::task::spawn_blocking(move || handler.handle(&request, client)).await {
            Ok(response) => response,
            Err(_) => Response::error(500, "the request handler failed"),
        }
    } else {
        handler.handle(&request, client)
    };
    to_hyper(response)
}

/// A hyper request as the handler reads it: borrowed, nothing copied.
struct HyperRequest<'a> {
    parts: &'a hyper::http::request::Parts,
    body: &'a Bytes,
}

impl RequestView for HyperRequest<'_> {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }

    fn path(&self) -> &str {
        self.parts.uri.path()
    }

    fn query(&self) -> &str {
        self.parts.uri.query().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
        // The handler's usual questions by constant: looking a header up by
        // a `&str` parses the name first.
        let value = match name {
            "content-type" => self.parts.headers.get(CONTENT_TYPE),
            "content-encoding" => self.parts.headers.get(CONTENT_ENCODING),
            "authorization" => self.parts.headers.get(AUTHORIZATION),
            other => self.parts.headers.get(other),
        };
        value?.to_str().ok()
    }

    fn body(&self) -> &[u8] {
        self.body
    }

    /// The owned copy the shared routes take (queries, `/health`): every
    /// header that is text, the body.
    fn to_request(&self) -> Cow<'_, Request> {
        let headers = self
            .parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let target = self
            .parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str());
        Cow::Owned(Request::new(
            self.method(),
            target,
            headers,
            self.body.to_vec(),
        ))
    }
}

/// Why a body could not be read.
enum BodyError {
    /// Past the body limit.
    TooLarge,
    /// The connection failed mid-body.
    Read(hyper::Error),
    /// Not all of it arrived within the body timeout.
    TimedOut,
}

/// Reads a whole body of at most `limit` bytes. A small body usually came
/// in with its headers and is complete on the first poll; only a body still
/// on its way arms the timeout's timer.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let mut reading = pin!(collect_body(body, limit));
    let first_poll = std::future::poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await;
    match first_poll {
        Poll::Ready(result) => result,
        Poll::Pending => tokio::time::timeout(timeout, reading)
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
    }
}

/// The body's frames as one buffer: the first frame itself when it is the
/// only one (no copy), otherwise joined into a buffer sized from
/// `Content-Length` when the client sent one.
async fn collect_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: nothing the handler reads
        };
        let so_far = first.as_ref().map_or(joined.len(), Bytes::len);
        if so_far + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    let expected = body.size_hint().exact().unwrap_or(0) as usize;
                    joined.reserve(earlier.len() + data.len() + expected.min(limit));
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    out
}
