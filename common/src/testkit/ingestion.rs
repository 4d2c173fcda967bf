//! The ingestion slot's conformance suite: the HTTP behaviour every server
//! must share, spoken over real sockets on 127.0.0.1 port 0 — the seed's
//! write and answers, JSON errors, bodies split across packets, chunked
//! bodies, `Expect: 100-continue`, limits, unknown routes, and a stop that
//! drains what was accepted.
//!
//! Every request here sends `Connection: close`, so servers with and
//! without keep-alive answer alike.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::{LabelMatcher, MetricStore, TimeRange};

/// A whole pipeline started for the suite around the server under test
/// (the runtime crate's `RunningPipeline` implements it), so the suite can
/// check what a server hands on: writes reach the store, other routes
/// reach the router, a stop drains.
pub trait SystemUnderTest {
    /// Where the server listens.
    fn addr(&self) -> SocketAddr;
    /// The store the storage consumer appends to.
    fn store(&self) -> Arc<dyn MetricStore>;
    /// Stops the pipeline: accepted metrics drained into the store.
    ///
    /// # Errors
    /// Why the stop was not clean.
    fn stop(self: Box<Self>) -> Result<usize, String>;
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Status line and headers.
    pub head: String,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }

    /// The first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The `error` member of a JSON error body; panics when absent.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no JSON \"error\" in {self:?}"))
    }
}

/// Sends `parts` over one connection with `pause` between them and reads the
/// whole response (the request says `Connection: close`).
pub fn send(addr: SocketAddr, parts: &[&[u8]], pause: Duration) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the server under test");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        // A server may answer (413, 431) and close before the whole request
        // is written; what it answered is what the test wants to read.
        if stream.write_all(part).is_err() {
            break;
        }
    }
    read_reply(&mut stream)
}

/// Reads a response to the end of the stream.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        head: head.to_string(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// `POST path` with a JSON body.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(addr, &[request.as_bytes()], Duration::ZERO)
}

/// `GET target`.
pub fn get(addr: SocketAddr, target: &str) -> Reply {
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    send(addr, &[request.as_bytes()], Duration::ZERO)
}

/// Asserts `status` and a JSON `{"error": …}` containing `needle`.
pub fn assert_error(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(
        reply.status, status,
        "expected {status} ({needle:?}), got {reply:?}"
    );
    let error = reply.error();
    assert!(error.contains(needle), "error {error:?} lacks {needle:?}");
}

/// Runs every check against a pipeline that `start(data_dir, listener)`
/// starts on `listener` (127.0.0.1 port 0) with the server under test in
/// slot 1.
pub fn run_all(start: &dyn Fn(&Path, TcpListener) -> Box<dyn SystemUnderTest>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let running = start(dir.path(), listener);
    let store = running.store();
    let addr = running.addr();

    // The seed's write, with and without Content-Type.
    let reply = post(addr, "/metrics", r#"{"name":"cpu_usage","value":85}"#);
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.json(), serde_json::json!({"status": "accepted"}));
    let body = r#"{"name":"cpu_usage","value":86,"labels":{"host":"a"},"timestamp":1700000000000}"#;
    let bare = format!(
        "POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        send(addr, &[bare.as_bytes()], Duration::ZERO).status,
        202,
        "Content-Type is optional"
    );

    // Split across packets: the request line, then the headers' end, then
    // the body in two pieces.
    let body = r#"{"name":"split_body","value":7}"#;
    let whole = format!(
        "POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let bytes = whole.as_bytes();
    let head_end = whole.find("\r\n\r\n").expect("head") + 4;
    let reply = send(
        addr,
        &[
            &bytes[..9],
            &bytes[9..head_end],
            &bytes[head_end..head_end + 5],
            &bytes[head_end + 5..],
        ],
        Duration::from_millis(30),
    );
    assert_eq!(
        reply.status, 202,
        "a body split across packets is read whole: {reply:?}"
    );

    // Chunked transfer encoding.
    let chunked =
        b"POST /metrics HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
        14\r\n{\"name\":\"chunked\",\"v\r\n8\r\nalue\":3}\r\n0\r\n\r\n";
    assert_eq!(
        send(addr, &[chunked], Duration::ZERO).status,
        202,
        "chunked bodies are decoded"
    );

    // Expect: 100-continue (curl sends it for bodies over 1 KiB).
    let body = r#"{"name":"expect_continue","value":1}"#;
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST /metrics HTTP/1.1\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write head");
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("interim response");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "100 Continue before the body: {:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(body.as_bytes()).expect("write body");
    assert!(
        read_reply(&mut stream).head.contains(" 202 "),
        "the final answer follows 100 Continue"
    );

    // Errors are JSON with the right status.
    assert_error(&post(addr, "/metrics", "{oops"), 400, "invalid JSON");
    assert_error(
        &post(addr, "/metrics", r#"{"name":"x"}"#),
        400,
        "missing field `value`",
    );
    assert_error(
        &post(addr, "/metrics", r#"{"name":"x","value":"1"}"#),
        400,
        "invalid type",
    );
    assert_error(
        &post(addr, "/metrics", r#"{"name":"9x","value":1}"#),
        400,
        "invalid metric name",
    );
    assert_error(
        &get(addr, "/query?name=x&start=abc"),
        400,
        "invalid start \"abc\"",
    );
    assert_error(&get(addr, "/query"), 400, "name");
    assert_error(&get(addr, "/no/such/route"), 404, "no route");
    let reply = send(
        addr,
        &[b"PATCH /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"],
        Duration::ZERO,
    );
    assert_eq!(reply.status, 405, "{reply:?}");
    assert!(
        reply.head.to_ascii_lowercase().contains("allow:"),
        "405 names the allowed methods"
    );
    // A chunk size near u64::MAX must neither be allocated nor crash the
    // server. A server that parses chunk sizes itself refuses at once (400 or
    // 413); one that streams bodies (hyper) waits for data that never comes
    // until its body timeout. Either way the others are served meanwhile.
    let huge_chunk =
        b"POST /metrics HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
        1\r\na\r\nffffffffffffffff\r\n";
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(huge_chunk).expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty()
            || answer.starts_with("HTTP/1.1 413")
            || answer.starts_with("HTTP/1.1 400"),
        "a chunk size near u64::MAX is refused or left waiting, never accepted: {answer:?}"
    );
    assert_eq!(
        get(addr, "/health").status,
        200,
        "the server survives a huge chunk size"
    );
    drop(stream);
    let big_head = format!(
        "GET /health HTTP/1.1\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let reply = send(addr, &[big_head.as_bytes()], Duration::ZERO);
    assert_eq!(reply.status, 431, "1 MiB of headers is refused: {reply:?}");
    let huge = b"POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: 5000000000\r\n\r\n";
    let reply = send(addr, &[huge], Duration::ZERO);
    assert_eq!(
        reply.status, 413,
        "a body over the limit is refused before it is read: {reply:?}"
    );

    // Health and the seed's query.
    let health = get(addr, "/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "healthy");
    assert!(
        health.json()["queue_size"].is_u64(),
        "health reports queue_size"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored = store
            .select(&[LabelMatcher::metric_name("cpu_usage")], TimeRange::ALL)
            .expect("select")
            .iter()
            .map(|s| s.samples.len())
            .sum::<usize>();
        if stored == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepted metrics reach the store within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reply = get(
        addr,
        "/query?name=cpu_usage&start=1700000000000&end=1700000000000",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json().as_array().map(Vec::len),
        Some(1),
        "inclusive bounds: {reply:?}"
    );
    assert_eq!(reply.json()[0]["labels"]["host"], "a");

    // Still serving after all of that, then a stop that drains.
    for i in 0..50 {
        let body = format!(
            r#"{{"name":"before_stop","value":{i},"timestamp":{}}}"#,
            1_700_000_001_000i64 + i
        );
        assert_eq!(post(addr, "/metrics", &body).status, 202);
    }
    let left_in_queue = running.stop().expect("clean stop");
    assert_eq!(left_in_queue, 0);
    let stored: usize = store
        .select(&[LabelMatcher::metric_name("before_stop")], TimeRange::ALL)
        .expect("select")
        .iter()
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(
        stored, 50,
        "every accepted metric is stored by the time stop returns"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "a stopped server accepts no connection"
    );
}
