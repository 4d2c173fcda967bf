//! `loadgen null-server`: a server that accepts everything and does nothing.
//!
//! Why: every measurement needs a ceiling. Pointing loadgen at this server —
//! hyper on a multi-threaded tokio runtime, keep-alive, reading each body and
//! answering `202 {"status":"accepted"}` without parsing or storing anything —
//! shows the most this machine can push through loadgen and the HTTP stack
//! alone. A crafted server that gets close to it is limited by the load
//! generator, not by its own design; one far below it has work left to do.
//! (`GET /health` answers `{"status":"healthy","queue_size":0}`, so runs against
//! it exercise the health poller too.)

use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

const ACCEPTED: &[u8] = br#"{"status":"accepted"}"#;
const LISTEN_BACKLOG: u32 = 8192;
const HEALTHY: &[u8] = br#"{"status":"healthy","queue_size":0}"#;

pub async fn serve(host: &str, port: u16) -> Result<()> {
    let listener = listen(host, port)
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // Scripts and tests read the real port from this line (port 0 = any).
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")?;
    drop(stdout);

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors or similar: keep serving the
                // connections we have and try again shortly.
                eprintln!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small responses must leave immediately, not wait on Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer));
            // Clients closing or resetting mid-request is normal under load.
            let _ = connection.await;
        });
    }
}

/// Binds with a deep accept backlog: `burst` opens hundreds of connections
/// at the same instant, and the default (1024, further limited by the kernel's
/// `somaxconn`) would drop SYNs — clients then wait a full second for the SYN
/// retransmit, and the ceiling would measure the backlog, not the machine.
async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_health = request.method() == Method::GET && request.uri().path() == "/health";
    // Read the body to the end, without keeping it: the connection can only be
    // reused once the request is fully consumed, and a real server reads it.
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let (status, payload) = if is_health {
        (StatusCode::OK, HEALTHY)
    } else {
        (StatusCode::ACCEPTED, ACCEPTED)
    };
    let mut response = Response::new(Full::new(Bytes::from_static(payload)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
