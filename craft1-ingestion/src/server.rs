//! The production server: hyper 1 on a multi-threaded tokio runtime,
//! HTTP/1.1 keep-alive, the last step of the staircase.
//!
//! Removes thread-per-connection: a connection is a small task, idle or
//! busy, so thousands of keep-alive clients and slow senders cost memory,
//! not threads, and never hold up the others. Writes are decoded and queued
//! on the event loop (CPU work, no I/O); anything that may block on storage
//! (`/query`, `/api/v1/*`) runs on the blocking pool. Story: docs chapter 1,
//! "Step 3: async".

use std::convert::Infallible;
use std::net::{IpAddr, TcpListener};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{Request, Response, Routes};
use common::{IngestionError, IngestionServer, Shutdown};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::handler::IngestHandler;

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
        routes: Arc<Routes>,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.worker_threads.max(1))
            .thread_name("ingest-worker")
            .enable_all()
            .build()
            .map_err(|e| IngestionError::Startup(format!("cannot start the tokio runtime: {e}")))?;
        let handler = Arc::new(IngestHandler::new(routes, self.config.clone()));
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
        let handler = handler.clone();
        let client = peer.ip();
        // When the connection last started or finished a request (ms since
        // it opened), and how many requests are in progress: the idle
        // watchdog below must never cut a slow request, only silence.
        let activity = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let started = Instant::now();
        let service = {
            let (handler, activity) = (handler.clone(), activity.clone());
            service_fn(move |request| {
                let (handler, activity) = (handler.clone(), activity.clone());
                async move {
                    activity.1.fetch_add(1, Ordering::SeqCst);
                    activity
                        .0
                        .store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                    let response = answer(request, client, &handler).await;
                    activity
                        .0
                        .store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                    activity.1.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(handler.config().header_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let idle_timeout = handler.config().idle_timeout;
        tokio::spawn(async move {
            handler.metrics().connection_opened();
            let mut connection = pin!(connection);
            // hyper's header timeout covers a request's headers; this
            // watchdog closes keep-alive connections that stay silent.
            let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle_timeout));
            loop {
                tokio::select! {
                    _ = connection.as_mut() => break,
                    _ = tick.tick() => {
                        let idle_for = started
                            .elapsed()
                            .saturating_sub(Duration::from_millis(activity.0.load(Ordering::SeqCst)));
                        let busy = activity.1.load(Ordering::SeqCst) > 0;
                        if !busy && idle_for > idle_timeout {
                            // Nothing is in flight, so dropping the
                            // connection here loses no request.
                            break;
                        }
                    }
                }
            }
            handler.metrics().connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    // Stop accepting, let in-flight requests finish, close idle connections.
    let _ = tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await;
    Ok(())
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
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let path = parts.uri.path().to_string();
    let max_body = handler.config().max_body_bytes;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > max_body as u64
    {
        // Refused before reading: the body is never buffered.
        return to_hyper(handler.refuse(
            &path,
            413,
            format!("body of {length} bytes exceeds the limit of {max_body} bytes"),
        ));
    }
    let body_timeout = handler.config().header_timeout.max(Duration::from_secs(30));
    let collected =
        tokio::time::timeout(body_timeout, Limited::new(body, max_body).collect()).await;
    let body = match collected {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) => {
            return to_hyper(
                if error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    handler.refuse(
                        &path,
                        413,
                        format!("body exceeds the limit of {max_body} bytes"),
                    )
                } else {
                    Response::error(400, format!("cannot read the request body: {error}"))
                },
            );
        }
        Err(_) => return to_hyper(Response::error(408, "request body not received in time")),
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let request = Request::new(
        parts.method.as_str(),
        &path_and_query,
        headers,
        // No copy when the collected body is one contiguous buffer.
        Vec::from(body),
    );
    let response = if IngestHandler::may_block(&request) {
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
