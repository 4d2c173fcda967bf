//! One HTTP/1.1 connection served on a blocking thread: what both blocking
//! staircase steps run for each client.
//!
//! Unlike phase0's reader it keeps the connection open between requests
//! (keep-alive: no TCP handshake per metric) and parses with the `httparse`
//! crate instead of by hand — the parsing lesson was phase0's; this chapter's
//! is concurrency. A thread serving a connection is a thread nobody else can
//! use, even while that connection sits idle: the cost the async step
//! removes. Story: docs chapter 1, "The staircase".

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Shutdown;
use common::http::{BodyFraming, Request, Response, body_framing};

use crate::handler::IngestHandler;

/// Most headers a request may have.
const MAX_HEADERS: usize = 100;
/// Longest request line + headers, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How often a thread waiting for the next request looks at the shutdown
/// flag: an idle keep-alive connection must not hold up a shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// The client's address for rate limiting; unspecified when the socket no
/// longer knows it.
pub(crate) fn client_ip(stream: &TcpStream) -> IpAddr {
    stream
        .peer_addr()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip())
}

/// Serves requests on `stream` until the client closes, the idle timeout
/// passes, an error ends the connection, or shutdown is triggered between
/// requests. With `keep_alive` false, one request per connection.
pub fn serve(
    mut stream: TcpStream,
    client: IpAddr,
    handler: &IngestHandler,
    keep_alive: bool,
    shutdown: &Shutdown,
) {
    let config = handler.config();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.header_timeout));
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let mut first = true;
    loop {
        // Wait for the first byte of the next request.
        let wait = if first {
            config.header_timeout
        } else {
            config.idle_timeout
        };
        first = false;
        match wait_for_data(&mut stream, &mut buffer, wait, shutdown) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let request = match read_request(&mut stream, &mut buffer, handler) {
            Ok(request) => request,
            Err(ReadError::Respond(response)) => {
                let _ = write_response(&mut stream, &response, false);
                return;
            }
            Err(ReadError::Closed) => return,
        };
        let client_wants_close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let response = handler.handle(&request, client);
        let keep = keep_alive && !client_wants_close && !shutdown.is_triggered();
        if write_response(&mut stream, &response, keep).is_err() || !keep {
            return;
        }
    }
}

enum ReadError {
    /// Answer this, then close.
    Respond(Response),
    /// The client went away (or the socket failed): nothing to answer.
    Closed,
}

/// Reads until at least one byte is buffered. `Ok(false)`: the client
/// closed, the wait ran out, or shutdown began.
fn wait_for_data(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    wait: Duration,
    shutdown: &Shutdown,
) -> io::Result<bool> {
    if !buffer.is_empty() {
        return Ok(true);
    }
    let deadline = Instant::now() + wait;
    let mut chunk = [0u8; 8192];
    loop {
        if shutdown.is_triggered() {
            return Ok(false);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(false);
        }
        stream.set_read_timeout(Some(remaining.min(SHUTDOWN_POLL)))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads more bytes before `deadline`; `Ok(0)` at end of stream.
fn fill(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, ReadError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(ReadError::Respond(Response::error(
            408,
            "request not received in time",
        )));
    }
    stream
        .set_read_timeout(Some(remaining))
        .map_err(|_| ReadError::Closed)?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Respond(Response::error(
                    408,
                    "request not received in time",
                )));
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

fn bad_request(message: impl Into<String>) -> ReadError {
    ReadError::Respond(Response::error(
        400,
        format!("malformed HTTP request: {}", message.into()),
    ))
}

fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    handler: &IngestHandler,
) -> Result<Request, ReadError> {
    let config = handler.config();
    let deadline = Instant::now() + config.header_timeout;
    let (head_len, mut request) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                if parsed.version != Some(1) && parsed.version != Some(0) {
                    return Err(ReadError::Respond(Response::error(
                        505,
                        "HTTP version not supported",
                    )));
                }
                let method = parsed.method.unwrap_or_default();
                let target = parsed.path.unwrap_or("/");
                let mut pairs = Vec::with_capacity(parsed.headers.len());
                for header in parsed.headers.iter() {
                    let value = std::str::from_utf8(header.value)
                        .map_err(|_| bad_request(format!("header {} is not UTF-8", header.name)))?;
                    pairs.push((header.name.to_string(), value.trim().to_string()));
                }
                break (head_len, Request::new(method, target, pairs, Vec::new()));
            }
            Ok(httparse::Status::Partial) => {
                if buffer.len() > MAX_HEAD_BYTES {
                    return Err(ReadError::Respond(Response::error(
                        431,
                        format!("request line and headers exceed {MAX_HEAD_BYTES} bytes"),
                    )));
                }
                if fill(stream, buffer, deadline)? == 0 {
                    return Err(ReadError::Closed);
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Respond(Response::error(
                    431,
                    format!("more than {MAX_HEADERS} headers"),
                )));
            }
            Err(e) => return Err(bad_request(e.to_string())),
        }
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(ReadError::Respond(Response::error(
            431,
            format!("request line and headers exceed {MAX_HEAD_BYTES} bytes"),
        )));
    }
    buffer.drain(..head_len);

    let (chunked, content_length) = match body_framing(&request).map_err(bad_request)? {
        BodyFraming::Empty => (false, None),
        BodyFraming::Length(length) => (false, Some(length)),
        BodyFraming::Chunked => (true, None),
    };
    let max_body = config.max_body_bytes;
    if let Some(length) = content_length
        && length > max_body as u64
    {
        return Err(ReadError::Respond(handler.refuse(
            &request.path,
            413,
            format!("body of {length} bytes exceeds the limit of {max_body} bytes"),
        )));
    }
    let expects_continue = request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && buffer.is_empty() && (chunked || content_length.unwrap_or(0) > 0) {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Closed)?;
    }
    // Bodies get their own deadline: a client may send a large batch slowly,
    // but not forever.
    let body_deadline = Instant::now() + config.header_timeout.max(Duration::from_secs(30));
    request.body = if chunked {
        read_chunked(
            stream,
            buffer,
            max_body,
            body_deadline,
            handler,
            &request.path,
        )?
    } else {
        let length = content_length.unwrap_or(0) as usize;
        while buffer.len() < length {
            if fill(stream, buffer, body_deadline)? == 0 {
                return Err(ReadError::Closed);
            }
        }
        buffer.drain(..length).collect()
    };
    Ok(request)
}

fn read_chunked(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    max_body: usize,
    deadline: Instant,
    handler: &IngestHandler,
    path: &str,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let (consumed, size) = loop {
            match httparse::parse_chunk_size(buffer) {
                Ok(httparse::Status::Complete(found)) => break found,
                Ok(httparse::Status::Partial) => {
                    if buffer.len() > 1024 {
                        return Err(bad_request("chunk size line too long"));
                    }
                    if fill(stream, buffer, deadline)? == 0 {
                        return Err(ReadError::Closed);
                    }
                }
                Err(_) => return Err(bad_request("bad chunk size")),
            }
        };
        buffer.drain(..consumed);
        if size > max_body.saturating_sub(body.len()) as u64 {
            return Err(ReadError::Respond(handler.refuse(
                path,
                413,
                format!("chunked body exceeds the limit of {max_body} bytes"),
            )));
        }
        let size = size as usize;
        if size == 0 {
            // Trailers end at an empty line.
            loop {
                if let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") {
                    let empty = end == 0;
                    buffer.drain(..end + 2);
                    if empty {
                        return Ok(body);
                    }
                } else {
                    if buffer.len() > MAX_HEAD_BYTES {
                        return Err(bad_request("trailers too long"));
                    }
                    if fill(stream, buffer, deadline)? == 0 {
                        return Err(ReadError::Closed);
                    }
                }
            }
        }
        while buffer.len() < size + 2 {
            if fill(stream, buffer, deadline)? == 0 {
                return Err(ReadError::Closed);
            }
        }
        if &buffer[size..size + 2] != b"\r\n" {
            return Err(bad_request("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.drain(..size + 2);
    }
}

fn write_response(stream: &mut TcpStream, response: &Response, keep_alive: bool) -> io::Result<()> {
    stream.write_all(&response.to_http1(keep_alive))?;
    if !keep_alive {
        // Let the client read the answer before the close: stop sending,
        // then discard (briefly) what it may still be sending.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let mut sink = [0u8; 8192];
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(300) {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    Ok(())
}
