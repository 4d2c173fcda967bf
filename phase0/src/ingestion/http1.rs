//! A hand-written HTTP/1.1 request reader and response writer — the lesson
//! of phase0's ingestion: what a server must do before any JSON is parsed.
//!
//! Naive but correct: headers are read to the blank line (8 KiB limit, 431
//! beyond), then exactly `Content-Length` bytes, however many packets they
//! arrive in (1 MiB limit, 413 beyond); chunked bodies are decoded;
//! `Expect: 100-continue` is honoured (curl sends it for bodies over 1 KiB);
//! the whole request must arrive within a deadline, so a silent or
//! trickling client is cut off (408) — though on one thread everyone else
//! waits meanwhile. Craft 1 swaps this for hyper. Story: docs chapter 0,
//! "The ingestion server".

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::http::{BodyFraming, Request, Response, body_framing};

/// Size limits for one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line + headers, in bytes.
    pub max_header_bytes: usize,
    /// Body, in bytes (after chunked decoding).
    pub max_body_bytes: usize,
    /// The whole request must arrive within this long of the first read.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a request could not be read. Each maps to the answer the client gets.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection before a full request (no answer).
    Closed,
    /// The socket failed (no answer possible).
    Io(io::Error),
    /// The deadline passed: 408.
    TimedOut,
    /// Not HTTP/1.x as we read it: 400.
    Malformed(String),
    /// Request line + headers over the limit: 431.
    HeadersTooLarge(usize),
    /// Body over the limit: 413.
    BodyTooLarge(u64),
    /// An HTTP version other than 1.0/1.1: 505.
    UnsupportedVersion(String),
}

impl ReadError {
    /// The response this error deserves, if the client can still read one.
    pub fn response(&self, limits: &Limits) -> Option<Response> {
        match self {
            ReadError::Closed | ReadError::Io(_) => None,
            ReadError::TimedOut => Some(Response::error(
                408,
                format!(
                    "request not received within {} ms",
                    limits.request_timeout.as_millis()
                ),
            )),
            ReadError::Malformed(why) => Some(Response::error(
                400,
                format!("malformed HTTP request: {why}"),
            )),
            ReadError::HeadersTooLarge(limit) => Some(Response::error(
                431,
                format!("request line and headers exceed {limit} bytes"),
            )),
            ReadError::BodyTooLarge(size) => Some(Response::error(
                413,
                format!(
                    "body of {size} bytes exceeds the limit of {} bytes",
                    limits.max_body_bytes
                ),
            )),
            ReadError::UnsupportedVersion(version) => Some(Response::error(
                505,
                format!("HTTP version {version:?} not supported; use HTTP/1.1"),
            )),
        }
    }
}

/// Reads from a socket against one deadline for the whole request.
struct DeadlineReader<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
    /// Bytes read past what has been consumed.
    buffer: Vec<u8>,
}

impl DeadlineReader<'_> {
    /// Reads more bytes into the buffer; `Ok(0)` is end of stream.
    fn fill(&mut self) -> Result<usize, ReadError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ReadError::TimedOut);
        }
        self.stream
            .set_read_timeout(Some(remaining))
            .map_err(ReadError::Io)?;
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(ReadError::TimedOut)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(self.fill()?),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Err(ReadError::Closed)
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Takes exactly `n` bytes, reading as needed.
    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buffer.len() < n {
            if self.fill()? == 0 {
                return Err(ReadError::Closed);
            }
        }
        let rest = self.buffer.split_off(n);
        Ok(std::mem::replace(&mut self.buffer, rest))
    }

    /// Takes one line (without its CRLF/LF), at most `limit` bytes.
    fn take_line(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line = self.take_exact(pos + 1)?;
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffer.len() > limit {
                return Err(ReadError::Malformed("chunk size line too long".into()));
            }
            if self.fill()? == 0 {
                return Err(ReadError::Closed);
            }
        }
    }
}

/// Where the header block ends: the index after the blank line.
fn header_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one whole request from `stream`.
///
/// # Errors
/// [`ReadError`]; its [`ReadError::response`] is what to answer.
pub fn read_request(stream: &mut TcpStream, limits: &Limits) -> Result<Request, ReadError> {
    let mut reader = DeadlineReader {
        stream,
        // A timeout too large for an Instant means "no deadline" in practice.
        deadline: Instant::now()
            .checked_add(limits.request_timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600)),
        buffer: Vec::with_capacity(1024),
    };
    let mut request_line_checked = false;
    let head_len = loop {
        // Judge the request line as soon as it is complete, so garbage is
        // refused at once instead of after the deadline.
        if !request_line_checked && let Some(end) = reader.buffer.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&reader.buffer[..end]);
            parse_request_line(line.strip_suffix('\r').unwrap_or(&line))?;
            request_line_checked = true;
        }
        if let Some(end) = header_end(&reader.buffer) {
            if end > limits.max_header_bytes {
                return Err(ReadError::HeadersTooLarge(limits.max_header_bytes));
            }
            break end;
        }
        if reader.buffer.len() > limits.max_header_bytes {
            return Err(ReadError::HeadersTooLarge(limits.max_header_bytes));
        }
        if reader.fill()? == 0 {
            return Err(if reader.buffer.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Malformed("connection closed in the middle of the headers".into())
            });
        }
    };
    let head_bytes = reader.take_exact(head_len)?;
    let head = std::str::from_utf8(&head_bytes)
        .map_err(|_| ReadError::Malformed("headers are not UTF-8".into()))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));

    let (method, target) = parse_request_line(lines.next().unwrap_or_default())?;

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(ReadError::Malformed(
                "folded header lines are not allowed".into(),
            ));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed(format!(
                "header line without a colon: {line:?}"
            )));
        };
        if !is_token(name) {
            return Err(ReadError::Malformed(format!("bad header name {name:?}")));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let request = Request::new(method, target, headers, Vec::new());
    let body = read_body(&mut reader, &request, limits)?;
    Ok(Request { body, ..request })
}

/// `METHOD SP target SP HTTP/1.x` → (method, origin-form target).
fn parse_request_line(request_line: &str) -> Result<(&str, &str), ReadError> {
    let shown: String = request_line.chars().take(100).collect();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(ReadError::Malformed(format!("bad request line {shown:?}")));
    };
    if !is_token(method) {
        return Err(ReadError::Malformed(format!(
            "bad method in request line {shown:?}"
        )));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => return Err(ReadError::UnsupportedVersion(v.to_string())),
        v => return Err(ReadError::Malformed(format!("bad HTTP version {v:?}"))),
    }
    Ok((method, origin_form(target)?))
}

/// Accepts `/path?query`, and the absolute form `http://host/path` that
/// proxies send, as its path.
fn origin_form(target: &str) -> Result<&str, ReadError> {
    if target.starts_with('/') {
        return Ok(target);
    }
    if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        return Ok(rest.find('/').map_or("/", |i| &rest[i..]));
    }
    Err(ReadError::Malformed(format!(
        "bad request target {target:?}"
    )))
}

fn read_body(
    reader: &mut DeadlineReader<'_>,
    request: &Request,
    limits: &Limits,
) -> Result<Vec<u8>, ReadError> {
    let (chunked, content_length) = match body_framing(request).map_err(ReadError::Malformed)? {
        BodyFraming::Empty => (false, None),
        BodyFraming::Length(length) => (false, Some(length)),
        BodyFraming::Chunked => (true, None),
    };
    if let Some(length) = content_length
        && length > limits.max_body_bytes as u64
    {
        return Err(ReadError::BodyTooLarge(length));
    }
    let expects_continue = request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && (chunked || content_length.unwrap_or(0) > 0) && reader.buffer.is_empty()
    {
        reader
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(ReadError::Io)?;
    }
    if chunked {
        return read_chunked(reader, limits);
    }
    match content_length {
        // Capacity is bounded by the limit checked above.
        Some(length) => reader.take_exact(length as usize),
        None => Ok(Vec::new()),
    }
}

fn read_chunked(reader: &mut DeadlineReader<'_>, limits: &Limits) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = reader.take_line(1024)?;
        let line = String::from_utf8_lossy(&line);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = (!size_text.is_empty() && size_text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(size_text, 16).ok())
            .flatten()
            .ok_or_else(|| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                if reader.take_line(limits.max_header_bytes)?.is_empty() {
                    return Ok(body);
                }
            }
        }
        let room = limits.max_body_bytes.saturating_sub(body.len()) as u64;
        if size > room {
            return Err(ReadError::BodyTooLarge(
                (body.len() as u64).saturating_add(size),
            ));
        }
        body.extend(reader.take_exact(size as usize)?);
        if !reader.take_line(2)?.is_empty() {
            return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

/// Writes `response` with `Connection: close`.
///
/// # Errors
/// The socket's write error.
pub fn write_response(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    stream.write_all(&response.to_http1(false))?;
    stream.flush()
}

/// Closes after an error answer whose request was not read to the end: stop
/// sending, then read and discard (briefly, boundedly) what the client is
/// still sending, so the kernel does not reset the connection and destroy
/// the answer before the client reads it.
pub fn close_after_error(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 8192];
    let mut discarded = 0usize;
    while Instant::now() < deadline && discarded < 2 * 1024 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_accepts_crlf_and_lf() {
        assert_eq!(header_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(header_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(header_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn absolute_targets_become_paths() {
        assert_eq!(origin_form("http://h:1/query?x=1").unwrap(), "/query?x=1");
        assert_eq!(origin_form("http://h:1").unwrap(), "/");
        assert!(origin_form("query").is_err());
    }

    #[test]
    fn tokens() {
        assert!(is_token("POST"));
        assert!(is_token("Content-Length"));
        assert!(!is_token("Bad Header"));
        assert!(!is_token(""));
    }
}
