//! The durability promise, end to end: with the log queue, every metric
//! that got a 202 before the platform was SIGKILLed under load is in storage
//! after a restart. (phase0's in-memory queue would lose the backlog.)

use std::collections::HashSet;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Killed, start_platform};

fn start(dir: &Path, extra: &[&str]) -> (Killed, SocketAddr) {
    // phase0 storage: slow enough that a backlog builds (the point of the
    // test), and its file shows exactly what was stored.
    let args: Vec<&str> = [
        "--queue",
        "log",
        "--storage",
        "phase0",
        "--alert-interval",
        "1h",
    ]
    .iter()
    .chain(extra)
    .copied()
    .collect();
    start_platform(&args, dir)
}

/// One keep-alive request; the status, or None when the connection failed.
fn request(
    stream: &mut TcpStream,
    method: &str,
    target: &str,
    body: &str,
) -> Option<(u16, String)> {
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Metrics per request: big enough that the log (one write and fsync per
/// request) outruns phase0's store (a file open per metric).
const BATCH: u64 = 500;

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Four clients post batches until 20,000 metrics are acknowledged and
/// the queue holds at least `min_backlog` not yet stored, then the
/// platform is SIGKILLed mid-load; returns every (client, seq)
/// acknowledged with a 202.
///
/// The backlog is read from `/health` just before the kill, while the
/// clients keep loading: a test that means to kill with acknowledged
/// metrics still in the queue waits for them instead of hoping (after a
/// restart, a small backlog may be stored before anyone can look).
fn load_then_kill(mut child: Killed, addr: SocketAddr, min_backlog: u64) -> HashSet<(usize, u64)> {
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (accepted, count, stop) = (accepted.clone(), count.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<String> = (seq..seq + BATCH)
                        .map(|s| format!(r#"{{"name":"crash_test","value":{s},"timestamp":{},"labels":{{"client":"c{client}"}}}}"#, 1_700_000_000_000u64 + s * 10))
                        .collect();
                    match request(&mut stream, "POST", "/metrics", &format!("[{}]", batch.join(","))) {
                        Some((202, _)) => {
                            let mut accepted = accepted.lock().unwrap();
                            for s in seq..seq + BATCH {
                                accepted.insert((client, s));
                            }
                            count.fetch_add(BATCH as usize, Ordering::Relaxed);
                        }
                        Some((503, _)) => {}
                        Some((status, body)) => panic!("unexpected {status}: {body}"),
                        None => return, // the server died mid-request: not acknowledged
                    }
                    seq += BATCH;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if count.load(Ordering::Relaxed) >= 20_000 {
            let backlog = request(&mut connect(addr), "GET", "/health", "")
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|health| health["queue_size"].as_u64())
                .unwrap_or(0);
            if backlog >= min_backlog {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the store kept up with the load (backlog {backlog} < {min_backlog}), so a kill would test nothing: make the load heavier"
            );
        }
        assert!(Instant::now() < deadline, "load did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.0.kill().expect("SIGKILL the platform");
    child.0.wait().expect("reap");
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    assert!(accepted.len() >= 20_000);

    accepted
}

#[test]
fn every_metric_acknowledged_before_a_sigkill_is_stored_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A slow store (phase0's JSONL) behind a fast queue: at the kill, most
    // acknowledged metrics are still only in the log.
    let (child, addr) = start(
        dir.path(),
        &["--fsync", "every-batch", "--consume-batch", "50"],
    );
    // Killed with at least 1,000 acknowledged metrics only in the log.
    let accepted = load_then_kill(child, addr, 1_000);

    // Restart on the same data directory: the backlog is delivered again.
    let (mut child, addr) = start(dir.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = request(&mut connect(addr), "GET", "/health", "").expect("health");
        assert_eq!(status, 200);
        let health: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(health["accepted_means"], "disk");
        let backlog = health["queue_size"].as_u64().expect("queue_size");
        if backlog == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog not stored within 60 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(child.0.wait().expect("wait").success());

    let file = std::fs::read_to_string(dir.path().join("phase0_metrics.jsonl")).expect("data file");
    let mut stored = HashSet::new();
    for line in file.lines() {
        let m: serde_json::Value = serde_json::from_str(line).expect("stored line");
        let client: usize = m["labels"]["client"].as_str().expect("client")[1..]
            .parse()
            .expect("n");
        stored.insert((client, m["value"].as_f64().expect("value") as u64));
    }
    let missing: Vec<_> = accepted.difference(&stored).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged metrics are not stored, e.g. {missing:?}",
        accepted.difference(&stored).count(),
        accepted.len()
    );
}

/// The same kill, with craft 3 storage cutting 10 s blocks and compacting
/// them while the load runs: after the restart every acknowledged metric
/// comes out of `/query` exactly once (the log queue redelivers what the
/// store had not acknowledged; the store's WAL and blocks keep the rest).
#[test]
fn craft3_storage_keeps_every_acknowledged_metric_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let craft3 = [
        "--queue",
        "log",
        "--storage",
        "craft3",
        "--block-range",
        "10s",
        "--alert-interval",
        "1h",
    ];
    let (child, addr) = start_platform(&craft3, dir.path());
    let accepted = load_then_kill(child, addr, 0);
    let (mut child, addr) = start_platform(&craft3, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = request(&mut connect(addr), "GET", "/health", "").expect("health");
        let health: serde_json::Value = serde_json::from_str(&body).expect("json");
        if health["queue_size"].as_u64() == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "backlog not stored: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = request(
        &mut connect(addr),
        "GET",
        "/query?name=crash_test&start=0&end=9999999999999",
        "",
    )
    .expect("query");
    assert_eq!(status, 200, "{body}");
    let samples: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut stored = HashSet::new();
    for m in samples.as_array().expect("array") {
        let client: usize = m["labels"]["client"].as_str().expect("client")[1..]
            .parse()
            .expect("n");
        let seq = m["value"].as_f64().expect("value") as u64;
        assert!(stored.insert((client, seq)), "({client}, {seq}) twice");
    }
    let missing: Vec<_> = accepted.difference(&stored).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged metrics are not stored, e.g. {missing:?}",
        accepted.difference(&stored).count(),
        accepted.len()
    );
    // The background thread cuts the head (60 s of data) into 10 s blocks
    // within a tick or two.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(dir.path().join("tsdb/blocks"))
        .expect("blocks dir")
        .count()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the head was never cut into blocks"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(child.0.wait().expect("wait").success());
}
