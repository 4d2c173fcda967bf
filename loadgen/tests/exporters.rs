//! End-to-end: the real `loadgen exporters` fleet, small (3 targets × 50
//! series) on ports it picks. Each target's page is read over HTTP twice:
//! the series are all there with `HELP`/`TYPE`, counters grew, the
//! control port counted every page per target, and the written `file_sd`
//! and `static_configs` files list exactly the bound addresses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Kills the fleet even when an assertion fails.
struct Fleet(Child);

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `GET` on its own connection: status, content type, body.
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

fn sample_values(page: &str) -> Vec<(String, f64)> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_string(), value.parse().expect("number"))
        })
        .collect()
}

#[test]
fn a_small_fleet_serves_counts_and_lists_its_targets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sd = dir.path().join("fleet.json");
    let yml = dir.path().join("fleet.yml");
    let mut child = Command::new(LOADGEN)
        .args(["exporters", "--targets", "3", "--series", "50", "--file-sd"])
        .arg(&sd)
        .arg("--static-config")
        .arg(&yml)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn loadgen exporters");
    let stdout = child.stdout.take().expect("stdout");
    let _fleet = Fleet(child);
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let control = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the fleet printed its control address within 10 s");
        if let Some(addr) = line.strip_prefix("control listening on ") {
            break addr.to_string();
        }
    };

    let groups: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sd).expect("file_sd")).expect("json");
    let targets: Vec<String> = groups[0]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t.as_str().expect("address").to_string())
        .collect();
    assert_eq!(targets.len(), 3);
    let fragment = std::fs::read_to_string(&yml).expect("static config");
    assert!(fragment.starts_with("scrape_configs:\n"), "{fragment}");
    for target in &targets {
        assert!(fragment.contains(&format!("'{target}'")), "{fragment}");
    }

    for target in &targets {
        let (status, content_type, first) = get(target, "/metrics");
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let first = sample_values(&first);
        assert_eq!(first.len(), 50);
        let (_, _, second) = get(target, "/metrics");
        assert!(second.contains("# TYPE fleet_requests_0_total counter\n"));
        assert!(second.contains("# TYPE fleet_queue_depth_0 gauge\n"));
        let second = sample_values(&second);
        for ((series, before), (same, after)) in first.iter().zip(&second) {
            assert_eq!(series, same);
            if series.contains("_total{") {
                assert!(after > before, "{series}: {before} then {after}");
            }
        }
        assert_eq!(get(target, "/other").0, 404);
    }
    let (status, _, counts) = get(&control, "/scrapes");
    assert_eq!(status, 200);
    let counts: serde_json::Value = serde_json::from_str(&counts).expect("json");
    assert_eq!(counts["series"], 50);
    assert_eq!(counts["total"], 6, "{counts}");
    assert_eq!(counts["scrapes"], serde_json::json!([2, 2, 2]));
    assert_eq!(counts["addresses"], serde_json::json!(targets));
}
