//! Naive is not broken: every malformed request gets a 4xx with a JSON
//! error, nothing panics the server, and it stays healthy afterwards.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

fn assert_healthy(server: &Server) {
    let reply = get(server.addr, "/health");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "healthy");
}

#[test]
fn bad_json_and_fields_are_400() {
    let server = Server::start(&[]);
    let addr = server.addr;
    assert_error(&post(addr, "/metrics", "{not json"), 400, "invalid JSON");
    assert_error(&post(addr, "/metrics", ""), 400, "invalid JSON");
    assert_error(
        &post(addr, "/metrics", r#"{"value":1}"#),
        400,
        "missing field `name`",
    );
    assert_error(
        &post(addr, "/metrics", r#"{"name":"cpu"}"#),
        400,
        "missing field `value`",
    );
    assert_error(
        &post(addr, "/metrics", r#"{"name":"cpu","value":"85"}"#),
        400,
        "invalid type",
    );
    assert_error(
        &post(
            addr,
            "/metrics",
            r#"{"name":"cpu","value":1,"timestamp":"now"}"#,
        ),
        400,
        "invalid type",
    );
    assert_error(
        &post(addr, "/metrics", r#"{"name":"cpu usage","value":1}"#),
        400,
        "invalid metric name",
    );
    assert_error(
        &post(
            addr,
            "/metrics",
            r#"{"name":"cpu","value":1,"labels":{"0x":"a"}}"#,
        ),
        400,
        "invalid label name",
    );
    assert_error(
        &post(
            addr,
            "/metrics",
            r#"{"name":"cpu","value":1,"timestamp":-1}"#,
        ),
        400,
        "out of range",
    );
    assert_error(
        &post(addr, "/metrics", "\u{0}\u{1}\u{2}"),
        400,
        "invalid JSON",
    );
    assert_error(
        &post(addr, "/metrics", r#"[{"name":"cpu","value":1}]"#),
        400,
        "invalid JSON",
    );
    assert!(
        server.stored_lines().is_empty(),
        "nothing invalid is stored"
    );
    assert_healthy(&server);
}

#[test]
fn query_parameters_are_checked() {
    let server = Server::start(&[]);
    let addr = server.addr;
    assert_error(
        &get(addr, "/query?name=cpu&start=abc"),
        400,
        "invalid start \"abc\"",
    );
    assert_error(&get(addr, "/query?name=cpu&end=1.5"), 400, "invalid end");
    assert_error(
        &get(addr, "/query?name=cpu&start=99999999999999999999"),
        400,
        "invalid start",
    );
    assert_error(
        &get(addr, "/query?start=1"),
        400,
        "missing query parameter \"name\"",
    );
    assert_error(
        &get(addr, "/query?name=cpu&start=10&end=5"),
        400,
        "after end",
    );
    let reply = get(addr, "/query?name=never_sent");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!([]),
        "an unknown metric is an empty array"
    );
    assert_healthy(&server);
}

#[test]
fn routes_and_methods() {
    let server = Server::start(&[]);
    let addr = server.addr;
    assert_error(&get(addr, "/nope"), 404, "no route for GET /nope");
    let reply = raw(addr, b"DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_error(&reply, 405, "method DELETE not allowed");
    assert_eq!(reply.header("allow").as_deref(), Some("POST"));
    assert_error(&post(addr, "/health", "{}"), 405, "not allowed");
    assert_error(&post(addr, "/query", "{}"), 405, "not allowed");
    let reply = get(addr, "/api/v1/query?query=up");
    assert_eq!(
        reply.status, 501,
        "phase0 says clearly that it lacks the Prometheus API"
    );
    assert_eq!(reply.json()["status"], "error");
    assert_healthy(&server);
}

#[test]
fn malformed_http_gets_an_answer() {
    let server = Server::start(&[]);
    let addr = server.addr;
    assert_error(&raw(addr, b"HELLO\r\n\r\n"), 400, "bad request line");
    assert_error(&raw(addr, b"GET /health HTTP/2.0\r\n\r\n"), 505, "HTTP/2.0");
    assert_error(
        &raw(addr, b"GET /health FOO/1.1\r\n\r\n"),
        400,
        "bad HTTP version",
    );
    assert_error(
        &raw(addr, b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n"),
        400,
        "without a colon",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        ),
        400,
        "bad Content-Length",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        ),
        400,
        "conflicting Content-Length",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        400,
        "unsupported Transfer-Encoding",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        ),
        415,
        "Content-Encoding",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
        ),
        400,
        "bad Content-Length \"+2\"",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
        ),
        400,
        "only a single \"chunked\"",
    );
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\na\r\n0\r\n\r\n",
        ),
        400,
        "bad chunk size",
    );
    // A chunk size near u64::MAX: refused by the limit, without overflow
    // (a debug build would panic on the addition) or allocation.
    assert_error(
        &raw(addr, b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n"),
        413,
        "exceeds the limit",
    );
    // Binary garbage.
    let garbage: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let reply = raw(addr, &garbage);
    assert!(reply.status == 400 || reply.status == 431, "{reply:?}");
    // A client that connects and leaves without a word.
    drop(TcpStream::connect(addr).unwrap());
    assert_healthy(&server);
}

#[test]
fn size_limits() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let big_header = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_error(&raw(addr, big_header.as_bytes()), 431, "exceed 8192 bytes");
    let body = format!(
        r#"{{"name":"cpu","value":1,"pad":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    assert_error(
        &post(addr, "/metrics", &body),
        413,
        "exceeds the limit of 1048576 bytes",
    );
    // Declared too large without sending it: refused before reading.
    assert_error(
        &raw(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 5000000000\r\n\r\n",
        ),
        413,
        "5000000000",
    );
    // Just under the limit is fine.
    let body = format!(
        r#"{{"name":"cpu","value":1,"pad":"{}"}}"#,
        "x".repeat(1000 * 1000)
    );
    assert_eq!(post(addr, "/metrics", &body).status, 202);
    assert_healthy(&server);
}

#[test]
fn bodies_split_across_packets_chunked_and_expect_continue() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let body = r#"{"name":"split","value":7}"#;
    let head = format!(
        "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Headers in one packet, the body in two more, with pauses.
    let reply = send_parts(
        addr,
        &[
            head.as_bytes(),
            &body.as_bytes()[..10],
            &body.as_bytes()[10..],
        ],
        Duration::from_millis(100),
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    // The request line itself split mid-word.
    let whole = format!("{head}{body}");
    let reply = send_parts(
        addr,
        &[&whole.as_bytes()[..7], &whole.as_bytes()[7..]],
        Duration::from_millis(50),
    );
    assert_eq!(reply.status, 202);

    // Chunked transfer encoding.
    let reply = raw(
        addr,
        b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"name\":\"chunk\",\r\nb;ext=1\r\n\"value\":3}\r\n0\r\n\r\n",
    );
    assert_eq!(reply.status, 202, "{reply:?}");

    // Expect: 100-continue, as curl sends for bodies over 1 KiB.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /metrics HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut stream, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut stream).status, 202);

    wait_until(Duration::from_secs(10), "four metrics stored", || {
        server.stored_lines().len() == 4
    });
    assert_healthy(&server);
}

#[test]
fn a_silent_client_is_cut_off_and_stalls_others_meanwhile() {
    let server = Server::start(&["--read-timeout", "300ms"]);
    let addr = server.addr;
    // Sends half its headers, then nothing. Its connection is in the accept
    // queue before the health check's, so the single thread takes it first.
    let connected = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Le")
        .unwrap();
    let reply = get(addr, "/health");
    assert_eq!(reply.status, 200);
    // Head-of-line blocking, measured without racing the scheduler: the
    // health answer cannot come before the silent client's 300 ms deadline
    // ran out, however slow this machine is.
    assert!(
        connected.elapsed() >= Duration::from_millis(300),
        "one thread: the health check waited behind the silent client"
    );
    let reply = read_reply(&mut silent);
    assert_error(&reply, 408, "not received within 300 ms");
}
