//! A minimal HTTP/1.1 client on a raw tokio `TcpStream`.
//!
//! Why hand-rolled: a load generator must be much cheaper than the server it
//! measures, and it must control the wire exactly. Here a request is one
//! `write` of pre-rendered bytes and a response is parsed in place from a
//! reused buffer: no header maps, no pool, no hidden retries or buffering.
//! It also makes `--slow-body` honest: the head goes out, and the body follows
//! on the same socket only after the delay — what a slow client on a real
//! network looks like to the server (and what makes a single-threaded server
//! block everyone else behind it).
//!
//! Supported: requests with a fixed-length body (or none); responses framed by
//! Content-Length, chunked transfer coding, or connection close; interim 1xx
//! responses are skipped. Keep-alive follows the response's `Connection`
//! header, so phase0's `Connection: close` simply means "reconnect next time".

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Larger heads are a broken or hostile server, not something to buffer.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bound on bodies that must be held in memory (chunked, or collected).
const MAX_BUFFERED_BODY_BYTES: usize = 16 * 1024 * 1024;
const READ_CHUNK: usize = 8 * 1024;

/// Why a request produced no HTTP response. These are the "errors by kind"
/// of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// Nobody listens, or the listen backlog overflowed (RST on SYN).
    ConnectRefused,
    /// Any other connect failure.
    Connect,
    /// Ephemeral ports exhausted — typical of many short connections piling
    /// up in TIME_WAIT (`burst`, `--no-keep-alive`).
    NoLocalPort,
    /// This process ran out of file descriptors (`ulimit -n`).
    FdLimit,
    /// The peer reset the connection.
    Reset,
    /// The peer closed the connection before the response was complete.
    Closed,
    /// No complete response within `--timeout`.
    Timeout,
    /// The bytes received were not a valid HTTP/1.x response.
    BadResponse,
    /// Any other I/O error.
    Io,
}

impl FailureKind {
    pub const COUNT: usize = 9;
    pub const ALL: [FailureKind; Self::COUNT] = [
        Self::ConnectRefused,
        Self::Connect,
        Self::NoLocalPort,
        Self::FdLimit,
        Self::Reset,
        Self::Closed,
        Self::Timeout,
        Self::BadResponse,
        Self::Io,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectRefused => "connect refused",
            Self::Connect => "connect error",
            Self::NoLocalPort => "no local port",
            Self::FdLimit => "fd limit",
            Self::Reset => "reset",
            Self::Closed => "closed early",
            Self::Timeout => "timeout",
            Self::BadResponse => "bad response",
            Self::Io => "io error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn from_io(error: &io::Error, connecting: bool) -> Self {
        // EMFILE / ENFILE have no stable io::ErrorKind.
        if matches!(error.raw_os_error(), Some(24) | Some(23)) {
            return Self::FdLimit;
        }
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Self::ConnectRefused,
            io::ErrorKind::AddrNotAvailable => Self::NoLocalPort,
            io::ErrorKind::TimedOut => Self::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Self::Reset,
            io::ErrorKind::UnexpectedEof => Self::Closed,
            _ if connecting => Self::Connect,
            _ => Self::Io,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub kind: FailureKind,
    /// True when not a single byte of the response had arrived. On a reused
    /// keep-alive connection this usually means the server had already closed
    /// it (idle timeout) — safe to retry once on a fresh connection.
    pub before_response: bool,
}

impl RequestError {
    fn new(kind: FailureKind, before_response: bool) -> Self {
        Self {
            kind,
            before_response,
        }
    }
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(usize),
    Chunked,
    /// No length given: the body runs until the server closes.
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Whether the connection may carry another request afterwards.
    pub keep_alive: bool,
    pub framing: BodyFraming,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Parses a response head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((head, len)))`: the head takes
/// the first `len` bytes (including the blank line).
pub fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, Malformed> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD_BYTES {
            return Err(Malformed("response head too large"));
        }
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n').map(trim_cr);
    let status_line = lines.next().unwrap_or_default();
    let (minor_version, status) = parse_status_line(status_line)?;

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut saw_close = false;
    let mut saw_keep_alive = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Malformed("header line without ':'"));
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_decimal(value).ok_or(Malformed("invalid Content-Length"))?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(Malformed("conflicting Content-Length headers"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding frames the message.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                saw_close |= token.eq_ignore_ascii_case(b"close");
                saw_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    // HTTP/1.1 is persistent unless told otherwise; HTTP/1.0 only when asked.
    let mut keep_alive = !saw_close && (minor_version >= 1 || saw_keep_alive);
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(length) = content_length {
        BodyFraming::Length(length)
    } else {
        keep_alive = false;
        BodyFraming::UntilClose
    };
    Ok(Some((
        ResponseHead {
            status,
            keep_alive,
            framing,
        },
        end + 4,
    )))
}

/// `HTTP/1.x SSS[ reason]` → (x, SSS).
fn parse_status_line(line: &[u8]) -> Result<(u8, u16), Malformed> {
    let bad = Malformed("invalid status line");
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(bad)?;
    let (&minor, rest) = rest.split_first().ok_or(bad)?;
    if !minor.is_ascii_digit() {
        return Err(bad);
    }
    let rest = rest.strip_prefix(b" ").ok_or(bad)?;
    if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    if rest.len() > 3 && rest[3] != b' ' {
        return Err(bad);
    }
    let status = rest[..3]
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(bad);
    }
    Ok((minor - b'0', status))
}

/// Parses a chunked body from the start of `buf`, appending the data to `out`
/// if given. `Ok(None)`: incomplete. `Ok(Some(len))`: the body (including the
/// last chunk and trailers) takes the first `len` bytes.
pub fn parse_chunked(
    buf: &[u8],
    mut out: Option<&mut Vec<u8>>,
) -> Result<Option<usize>, Malformed> {
    let mut pos = 0;
    loop {
        let Some(line_len) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[pos..pos + line_len];
        // Chunk extensions (`;name=value`) are allowed and ignored.
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_hex(size_text.trim_ascii()).ok_or(Malformed("invalid chunk size"))?;
        pos += line_len + 2;
        if size == 0 {
            // Optional trailers, then the blank line.
            loop {
                let Some(trailer_len) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += trailer_len + 2;
                if trailer_len == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let Some(data_end) = pos.checked_add(size) else {
            return Err(Malformed("invalid chunk size"));
        };
        if buf.len() < data_end + 2 {
            return Ok(None);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(Malformed("chunk not followed by CRLF"));
        }
        if let Some(out) = out.as_deref_mut() {
            out.extend_from_slice(&buf[pos..data_end]);
        }
        pos = data_end + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_decimal(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        text.iter()
            .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0')),
    )
}

fn parse_hex(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.len() > 15 {
        return None;
    }
    text.iter().try_fold(0usize, |acc, &d| {
        let digit = (d as char).to_digit(16)?;
        Some(acc * 16 + digit as usize)
    })
}

/// A request rendered to bytes, reused across requests to avoid allocation.
#[derive(Default)]
pub struct WireRequest {
    bytes: Vec<u8>,
    head_len: usize,
}

#[cfg(test)]
impl WireRequest {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The constant part of a request's head, rendered once per worker.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    head_prefix: Vec<u8>,
    has_body: bool,
}

impl RequestTemplate {
    /// `POST path` with a body described by `headers` (Content-Type,
    /// Content-Encoding, ...). `keep_alive == false` adds `Connection: close`
    /// so the server need not wait for another request.
    pub fn post(path: &str, host: &str, keep_alive: bool, headers: &[(&str, &str)]) -> Self {
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: loadgen\r\n");
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        Self {
            head_prefix: head.into_bytes(),
            has_body: true,
        }
    }

    pub fn get(path: &str, host: &str) -> Self {
        Self {
            head_prefix: format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: loadgen\r\nAccept: application/json\r\n"
            )
            .into_bytes(),
            has_body: false,
        }
    }

    /// Renders head + body into `out`, replacing its previous content.
    pub fn render(&self, body: &[u8], out: &mut WireRequest) {
        out.bytes.clear();
        out.bytes.extend_from_slice(&self.head_prefix);
        if self.has_body {
            out.bytes.extend_from_slice(b"Content-Length: ");
            // Writing into a Vec cannot fail.
            let _ = io::Write::write_fmt(&mut out.bytes, format_args!("{}", body.len()));
            out.bytes.extend_from_slice(b"\r\n");
        }
        out.bytes.extend_from_slice(b"\r\n");
        out.head_len = out.bytes.len();
        out.bytes.extend_from_slice(body);
    }
}

/// One open TCP connection speaking HTTP/1.1.
pub struct HttpConnection {
    stream: TcpStream,
    /// Bytes received but not yet consumed; reused for every response.
    buf: BytesMut,
}

impl HttpConnection {
    pub async fn connect(addr: SocketAddr) -> Result<Self, RequestError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| RequestError::new(FailureKind::from_io(&e, true), true))?;
        // Without TCP_NODELAY, Nagle holds back a small write while an earlier
        // one is unacknowledged, and the peer's delayed ACK adds ~40 ms: the
        // `--slow-body` body and every keep-alive request would pay it.
        stream
            .set_nodelay(true)
            .map_err(|e| RequestError::new(FailureKind::from_io(&e, true), true))?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// Sends `request` and reads the response. With `slow_body`, the head is
    /// written first, then after the delay the body. The response body is
    /// appended to `body_out` if given, otherwise discarded.
    pub async fn exchange(
        &mut self,
        request: &WireRequest,
        slow_body: Option<Duration>,
        body_out: Option<&mut Vec<u8>>,
    ) -> Result<ResponseHead, RequestError> {
        // Anything left over belongs to no request of ours.
        self.buf.clear();
        self.write_request(request, slow_body)
            .await
            .map_err(|e| RequestError::new(FailureKind::from_io(&e, false), true))?;
        self.read_response(body_out).await
    }

    async fn write_request(
        &mut self,
        request: &WireRequest,
        slow_body: Option<Duration>,
    ) -> io::Result<()> {
        let (head, body) = request.bytes.split_at(request.head_len);
        match slow_body {
            Some(delay) if !body.is_empty() => {
                self.stream.write_all(head).await?;
                self.stream.flush().await?;
                tokio::time::sleep(delay).await;
                self.stream.write_all(body).await?;
            }
            _ => self.stream.write_all(&request.bytes).await?,
        }
        self.stream.flush().await
    }

    async fn read_response(
        &mut self,
        mut body_out: Option<&mut Vec<u8>>,
    ) -> Result<ResponseHead, RequestError> {
        let mut received_any = false;
        let head = loop {
            match parse_head(&self.buf) {
                Err(_) => return Err(RequestError::new(FailureKind::BadResponse, false)),
                Ok(Some((head, head_len))) => {
                    self.buf.advance(head_len);
                    if head.status == 101 {
                        return Err(RequestError::new(FailureKind::BadResponse, false));
                    }
                    if head.status < 200 {
                        // Interim response (100 Continue, 103 Early Hints):
                        // the real one follows.
                        continue;
                    }
                    break head;
                }
                Ok(None) => {
                    let read = self.fill().await;
                    match read {
                        Ok(0) => {
                            return Err(RequestError::new(FailureKind::Closed, !received_any));
                        }
                        Ok(_) => received_any = true,
                        Err(e) => {
                            return Err(RequestError::new(
                                FailureKind::from_io(&e, false),
                                !received_any,
                            ));
                        }
                    }
                }
            }
        };
        let body_result = match head.framing {
            BodyFraming::Empty => Ok(()),
            BodyFraming::Length(length) => self.read_length_body(length, body_out).await,
            BodyFraming::Chunked => self.read_chunked_body(body_out.as_deref_mut()).await,
            BodyFraming::UntilClose => self.read_until_close(body_out).await,
        };
        body_result.map(|()| head)
    }

    async fn read_length_body(
        &mut self,
        mut remaining: usize,
        mut body_out: Option<&mut Vec<u8>>,
    ) -> Result<(), RequestError> {
        if body_out.is_some() && remaining > MAX_BUFFERED_BODY_BYTES {
            return Err(RequestError::new(FailureKind::BadResponse, false));
        }
        loop {
            let take = remaining.min(self.buf.len());
            if let Some(out) = body_out.as_deref_mut() {
                out.extend_from_slice(&self.buf[..take]);
            }
            self.buf.advance(take);
            remaining -= take;
            if remaining == 0 {
                return Ok(());
            }
            self.fill_or_fail().await?;
        }
    }

    async fn read_chunked_body(
        &mut self,
        body_out: Option<&mut Vec<u8>>,
    ) -> Result<(), RequestError> {
        loop {
            // Re-parsing from the start on each read is quadratic in theory;
            // the bodies here are a few dozen bytes, so simplicity wins.
            match parse_chunked(&self.buf, None) {
                Err(_) => return Err(RequestError::new(FailureKind::BadResponse, false)),
                Ok(Some(len)) => {
                    // Parsed once more to copy the data out; cannot fail now.
                    let _ = parse_chunked(&self.buf[..len], body_out);
                    self.buf.advance(len);
                    return Ok(());
                }
                Ok(None) if self.buf.len() > MAX_BUFFERED_BODY_BYTES => {
                    return Err(RequestError::new(FailureKind::BadResponse, false));
                }
                Ok(None) => self.fill_or_fail().await?,
            }
        }
    }

    async fn read_until_close(
        &mut self,
        mut body_out: Option<&mut Vec<u8>>,
    ) -> Result<(), RequestError> {
        loop {
            if let Some(out) = body_out.as_deref_mut() {
                if out.len() + self.buf.len() > MAX_BUFFERED_BODY_BYTES {
                    return Err(RequestError::new(FailureKind::BadResponse, false));
                }
                out.extend_from_slice(&self.buf);
            }
            self.buf.clear();
            match self.fill().await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(RequestError::new(FailureKind::from_io(&e, false), false)),
            }
        }
    }

    /// Reads more bytes; a clean close here means the response was cut short.
    async fn fill_or_fail(&mut self) -> Result<(), RequestError> {
        match self.fill().await {
            Ok(0) => Err(RequestError::new(FailureKind::Closed, false)),
            Ok(_) => Ok(()),
            Err(e) => Err(RequestError::new(FailureKind::from_io(&e, false), false)),
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// Reuse the connection while the server allows it.
    pub keep_alive: bool,
    /// Delay between sending the head and the body.
    pub slow_body: Option<Duration>,
}

/// One logical client: at most one connection, opened on demand, reused when
/// both sides allow it.
pub struct Client {
    addr: SocketAddr,
    options: ClientOptions,
    connection: Option<HttpConnection>,
    connections_opened: u64,
}

impl Client {
    pub fn new(addr: SocketAddr, options: ClientOptions) -> Self {
        Self {
            addr,
            options,
            connection: None,
            connections_opened: 0,
        }
    }

    pub fn connections_opened(&self) -> u64 {
        self.connections_opened
    }

    /// Sends one request and returns the response status.
    ///
    /// The connection is taken out of `self` for the duration: if this future
    /// is dropped (timeout, end of run) the half-used connection is dropped
    /// with it and never reused. A request on a reused connection that fails
    /// before any response byte (server closed it while idle) is retried once
    /// on a fresh connection — the transparent reconnect keep-alive needs.
    pub async fn send(
        &mut self,
        request: &WireRequest,
        mut body_out: Option<&mut Vec<u8>>,
    ) -> Result<u16, RequestError> {
        let mut retried = false;
        loop {
            let (mut connection, reused) = match self.connection.take() {
                Some(connection) => (connection, true),
                None => {
                    let connection = HttpConnection::connect(self.addr).await?;
                    self.connections_opened += 1;
                    (connection, false)
                }
            };
            let result = connection
                .exchange(request, self.options.slow_body, body_out.as_deref_mut())
                .await;
            match result {
                Ok(head) => {
                    if head.keep_alive && self.options.keep_alive {
                        self.connection = Some(connection);
                    }
                    return Ok(head.status);
                }
                Err(error)
                    if reused
                        && !retried
                        && error.before_response
                        && matches!(error.kind, FailureKind::Reset | FailureKind::Closed) =>
                {
                    retried = true;
                    if let Some(out) = body_out.as_deref_mut() {
                        out.clear();
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::net::TcpListener;

    const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

    fn head(raw: &str) -> (ResponseHead, usize) {
        parse_head(raw.as_bytes())
            .expect("well-formed")
            .expect("complete")
    }

    #[test]
    fn parses_content_length_response() {
        let raw = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n{\"status\":\"accepted\"}";
        let (parsed, len) = head(raw);
        assert_eq!(parsed.status, 202);
        assert!(parsed.keep_alive);
        assert_eq!(parsed.framing, BodyFraming::Length(23));
        assert_eq!(&raw[len..], "{\"status\":\"accepted\"}");
    }

    #[test]
    fn connection_close_and_http10() {
        let (parsed, _) =
            head("HTTP/1.1 202 Accepted\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n");
        assert!(!parsed.keep_alive);
        let (parsed, _) = head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(!parsed.keep_alive);
        let (parsed, _) =
            head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n");
        assert!(parsed.keep_alive);
        let (parsed, _) =
            head("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n");
        assert!(!parsed.keep_alive);
    }

    #[test]
    fn framing_rules() {
        let (parsed, _) = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(parsed.framing, BodyFraming::Chunked);
        let (parsed, _) = head("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(parsed.framing, BodyFraming::Empty);
        let (parsed, _) = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(parsed.framing, BodyFraming::UntilClose);
        assert!(!parsed.keep_alive);
        let (parsed, _) =
            head("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(parsed.status, 503);
        // No reason phrase is legal.
        let (parsed, _) = head("HTTP/1.1 429\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(parsed.status, 429);
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert_eq!(
            parse_head(b"HTTP/1.1 202 Accepted\r\nContent-Len"),
            Ok(None)
        );
        assert_eq!(parse_head(b""), Ok(None));
        assert!(parse_head(b"HTTP/2 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x2 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 099 Low\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(&vec![b'a'; MAX_HEAD_BYTES + 1]).is_err());
    }

    #[test]
    fn parses_chunked_bodies() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut out = Vec::new();
        assert_eq!(parse_chunked(raw, Some(&mut out)), Ok(Some(raw.len() - 4)));
        assert_eq!(out, b"hello, world");
        // Every strict prefix is incomplete, never an error.
        for cut in 0..raw.len() - 4 {
            assert_eq!(parse_chunked(&raw[..cut], None), Ok(None), "cut at {cut}");
        }
        assert!(parse_chunked(b"zz\r\n", None).is_err());
        assert!(parse_chunked(b"2\r\nabc\r\n", None).is_err());
    }

    #[test]
    fn renders_requests() {
        let mut wire = WireRequest::default();
        RequestTemplate::post("/metrics", "127.0.0.1:8080", false, JSON).render(b"{}", &mut wire);
        let text = String::from_utf8(wire.bytes().to_vec()).expect("ascii");
        assert!(text.starts_with("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("\r\nContent-Type: application/json\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
        assert_eq!(wire.head_len, text.len() - 2);

        RequestTemplate::get("/health", "h").render(b"", &mut wire);
        let text = String::from_utf8(wire.bytes().to_vec()).expect("ascii");
        assert!(text.starts_with("GET /health HTTP/1.1\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    /// Reads one request head + body from a raw socket, returning the time
    /// between the head's arrival and the body's arrival.
    async fn read_request_timed(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "client closed early");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head_at = Instant::now();
        let head_text = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let length: usize = head_text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "client closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
        (head_at.elapsed(), buf[head_end..].to_vec())
    }

    #[tokio::test]
    async fn slow_body_is_delayed_on_the_wire_and_keep_alive_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut gaps = Vec::new();
            // First connection: a keep-alive chunked response, then a
            // `Connection: close` one; the client must reconnect for request 3.
            let (mut stream, _) = listener.accept().await.expect("accept");
            let (gap, body) = read_request_timed(&mut stream).await;
            gaps.push(gap);
            assert_eq!(body, b"{\"a\":1}");
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n")
                .await
                .expect("write");
            let (gap, _) = read_request_timed(&mut stream).await;
            gaps.push(gap);
            stream
                .write_all(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            drop(stream);
            let (mut stream, _) = listener.accept().await.expect("accept");
            let (gap, _) = read_request_timed(&mut stream).await;
            gaps.push(gap);
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("write");
            gaps
        });

        let mut client = Client::new(
            addr,
            ClientOptions {
                keep_alive: true,
                slow_body: Some(Duration::from_millis(60)),
            },
        );
        let mut wire = WireRequest::default();
        RequestTemplate::post("/metrics", "test", true, JSON).render(b"{\"a\":1}", &mut wire);
        let mut body = Vec::new();
        assert_eq!(client.send(&wire, Some(&mut body)).await, Ok(202));
        assert_eq!(body, b"{\"a\":1}");
        assert_eq!(client.send(&wire, None).await, Ok(503));
        body.clear();
        assert_eq!(client.send(&wire, Some(&mut body)).await, Ok(202));
        assert_eq!(body, b"ok");
        assert_eq!(client.connections_opened(), 2);

        let gaps = server.await.expect("server task");
        for gap in gaps {
            assert!(
                gap >= Duration::from_millis(50),
                "body arrived {gap:?} after head"
            );
        }
    }

    #[tokio::test]
    async fn stale_keep_alive_connection_is_retried_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            // Answer one request keeping the connection "alive", then close it
            // without a word, as an idle timeout would.
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request_timed(&mut stream).await;
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            drop(stream);
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request_timed(&mut stream).await;
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
        });
        let mut client = Client::new(
            addr,
            ClientOptions {
                keep_alive: true,
                slow_body: None,
            },
        );
        let mut wire = WireRequest::default();
        RequestTemplate::post("/metrics", "test", true, JSON).render(b"{}", &mut wire);
        assert_eq!(client.send(&wire, None).await, Ok(202));
        assert_eq!(client.send(&wire, None).await, Ok(202));
        assert_eq!(client.connections_opened(), 2);
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn refused_connection_is_classified() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let mut client = Client::new(
            addr,
            ClientOptions {
                keep_alive: false,
                slow_body: None,
            },
        );
        let mut wire = WireRequest::default();
        RequestTemplate::post("/metrics", "test", false, JSON).render(b"{}", &mut wire);
        let error = client.send(&wire, None).await.expect_err("nobody listens");
        assert_eq!(error.kind, FailureKind::ConnectRefused);
    }
}
