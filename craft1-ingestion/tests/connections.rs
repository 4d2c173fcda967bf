//! Connection handling across the staircase: keep-alive, slow clients that
//! do not stall others, the connection limit, and a shutdown under load
//! that stores every accepted metric.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use craft1_ingestion::ServerConfig;
use support::*;

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    for step in ALL_STEPS {
        let running = Running::start(step, ServerConfig::default());
        let mut stream = TcpStream::connect(running.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for i in 0..5 {
            keep_alive_post(
                &mut stream,
                "/metrics",
                &format!(r#"{{"name":"kept","value":{i},"timestamp":{}}}"#, 1000 + i),
            );
            let (status, head, _) = read_one(&mut stream);
            assert_eq!(status, 202, "{step:?} request {i}");
            assert!(
                !head.to_ascii_lowercase().contains("connection: close"),
                "{step:?} keeps the connection open"
            );
        }
        running.wait_stored("kept", 5);
    }
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    for step in ALL_STEPS {
        let config = ServerConfig {
            idle_timeout: Duration::from_millis(500),
            ..Default::default()
        };
        let running = Running::start(step, config);
        let mut stream = TcpStream::connect(running.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        keep_alive_post(&mut stream, "/metrics", r#"{"name":"idle","value":1}"#);
        assert_eq!(read_one(&mut stream).0, 202);
        let answered = Instant::now();
        let mut byte = [0u8; 1];
        let closed = matches!(stream.read(&mut byte), Ok(0) | Err(_));
        let waited = answered.elapsed();
        assert!(
            closed,
            "{step:?}: an idle connection is closed by the server"
        );
        assert!(
            waited >= Duration::from_millis(400),
            "{step:?}: not before the idle timeout ({waited:?})"
        );
        assert!(
            waited < Duration::from_secs(5),
            "{step:?}: closed soon after the idle timeout ({waited:?})"
        );
    }
}

#[test]
fn a_silent_client_does_not_stall_the_others() {
    for step in ALL_STEPS {
        let config = ServerConfig {
            header_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let running = Running::start(step, config);
        let mut silent = TcpStream::connect(running.addr).expect("connect");
        silent
            .write_all(b"POST /metrics HTTP/1.1\r\nContent-Le")
            .expect("write");
        // Others are answered while the silent client is still connected...
        let started = Instant::now();
        let reply = post(running.addr, "/metrics", r#"{"name":"fast","value":1}"#);
        assert_eq!(reply.status, 202);
        silent
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut byte = [0u8; 1];
        let still_waiting = matches!(silent.read(&mut byte), Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        assert!(
            still_waiting || started.elapsed() >= Duration::from_secs(1),
            "{step:?}: the fast client was answered before the silent one timed out"
        );
        // ...and the silent one is cut off after its header timeout.
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        let _ = silent.read_to_end(&mut rest);
        let text = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || text.contains(" 408 "),
            "{step:?}: {text:?}"
        );
    }
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    for step in [Step::Threads, Step::Async] {
        let config = ServerConfig {
            max_connections: 2,
            ..Default::default()
        };
        let running = Running::start(step, config);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(running.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            keep_alive_post(&mut stream, "/metrics", r#"{"name":"held","value":1}"#);
            assert_eq!(read_one(&mut stream).0, 202);
            held.push(stream);
        }
        let reply = get(running.addr, "/health");
        assert_error(&reply, 503, "too many connections");
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if get(running.addr, "/health").status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{step:?}: a closed connection frees its slot"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn shutdown_under_load_stores_every_accepted_metric() {
    // The three steps are independent servers on their own ports and
    // directories, so they run side by side: one step's time, not three.
    // Each waits with its own deadlines; a failure in any of them fails
    // the test with that step's message.
    std::thread::scope(|scope| {
        let steps: Vec<_> = ALL_STEPS
            .into_iter()
            .map(|step| (step, scope.spawn(move || shutdown_under_load(step))))
            .collect();
        for (step, handle) in steps {
            if let Err(panic) = handle.join() {
                eprintln!("{step:?} failed");
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// One step of [`shutdown_under_load_stores_every_accepted_metric`]: four
/// clients send batches until 2,000 metrics are accepted (20 s at most),
/// then the server stops; every metric that got a 202 must be stored.
fn shutdown_under_load(step: Step) {
    let mut running = Running::start(step, ServerConfig::default());
    let addr = running.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(addr) else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut i: i64 = 0;
                while !stop.load(Ordering::Relaxed) && i < 20_000 {
                    // Ten metrics a request, each with its own timestamp so
                    // none collapses into another (last write wins).
                    let batch: Vec<String> = (0..10)
                        .map(|k| {
                            format!(
                                r#"{{"name":"drain","value":{k},"timestamp":{},"labels":{{"client":"c{client}"}}}}"#,
                                1_000_000 + i * 10 + k
                            )
                        })
                        .collect();
                    let body = format!("[{}]", batch.join(","));
                    i += 1;
                    if write!(stream, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).is_err() {
                        return;
                    }
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).is_err() {
                        return;
                    }
                    if head.starts_with("HTTP/1.1 202") {
                        accepted.fetch_add(10, Ordering::SeqCst);
                    }
                    if head.to_ascii_lowercase().contains("connection: close") {
                        return;
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.load(Ordering::SeqCst) < 2_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = running.stop();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    assert_eq!(report.left_in_queue, 0);
    let stored: usize = running
        .store
        .select(
            &[common::LabelMatcher::metric_name("drain")],
            common::TimeRange::ALL,
        )
        .expect("select")
        .iter()
        .map(|s| s.samples.len())
        .sum();
    let accepted = accepted.load(Ordering::SeqCst);
    assert!(
        accepted >= 2_000,
        "{step:?}: load was running when stopped ({accepted})"
    );
    assert_eq!(
        stored, accepted,
        "{step:?}: every 202 stored after shutdown"
    );
}
