//! NaN, ±Inf and Prometheus' stale marker through the whole default
//! pipeline, as a Prometheus remote-writes them: craft 1's
//! `/api/v1/write`, craft 2's durable log, craft 3's WAL and head, craft
//! 4's API. A summary with no observations answers `"NaN"`, a ratio over
//! zero `"+Inf"`; a series that ended with a stale marker is gone from
//! instant queries at once, while a range function still counts the
//! samples before the marker.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::metric::STALE_NAN_BITS;
use common::{Labels, Metric};
use support::{call, encode, start_platform};

fn metric(name: &str, labels: &[(&str, &str)], value: f64, at_ms: i64) -> Metric {
    Metric::new(name, value, at_ms).with_labels(Labels::from_pairs(labels.iter().copied()))
}

/// POSTs a remote_write body; the status.
fn remote_write(addr: SocketAddr, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
         X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

/// `/api/v1/query` at `time_ms`: `(labels as text, value as written)`.
fn query(addr: SocketAddr, expr: &str, time_ms: i64) -> Vec<(String, String)> {
    let encoded = encode(expr);
    let target = format!(
        "/api/v1/query?query={encoded}&time={}.{:03}",
        time_ms / 1000,
        time_ms % 1000
    );
    let (status, body) = call(addr, "GET", &target, "").expect("query answered");
    assert_eq!(status, 200, "{expr}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    json["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|sample| {
            (
                sample["metric"].to_string(),
                sample["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn nan_infinity_and_stale_markers_survive_the_default_pipeline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_platform, addr) = start_platform(&[], dir.path());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let t0 = now - 60_000;
    let stale = f64::from_bits(STALE_NAN_BITS);
    let body = prompb::encode_metrics(&[
        metric("rpc_seconds", &[("quantile", "0.5")], f64::NAN, t0),
        metric("ratio", &[], f64::INFINITY, t0),
        metric("ratio_low", &[], f64::NEG_INFINITY, t0),
        metric("gone", &[("job", "batch")], 1.0, t0),
        metric("gone", &[("job", "batch")], 2.0, t0 + 10_000),
        metric("gone", &[("job", "batch")], stale, t0 + 20_000),
    ]);
    let status = remote_write(addr, &body);
    assert!(
        (200..300).contains(&status),
        "remote_write accepted: {status}"
    );

    // End to end until queryable, not into the queue: bounded wait.
    let deadline = Instant::now() + Duration::from_secs(20);
    while query(addr, "ratio_low", t0).is_empty() {
        assert!(Instant::now() < deadline, "samples queryable within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        query(addr, "rpc_seconds", t0),
        vec![(
            r#"{"__name__":"rpc_seconds","quantile":"0.5"}"#.to_string(),
            "NaN".to_string()
        )]
    );
    assert_eq!(query(addr, "ratio", t0)[0].1, "+Inf");
    assert_eq!(query(addr, "ratio_low", t0)[0].1, "-Inf");
    // Before the marker the series is there; at and after it, gone — not
    // for the five minutes of lookback a dropped marker would leave.
    assert_eq!(query(addr, "gone", t0 + 15_000)[0].1, "2");
    assert!(
        query(addr, "gone", t0 + 20_000).is_empty(),
        "ended by its stale marker"
    );
    assert!(query(addr, "gone", t0 + 200_000).is_empty());
    // A range function sees the two real samples, not the marker.
    assert_eq!(
        query(addr, "count_over_time(gone[1m])", t0 + 30_000)[0].1,
        "2"
    );
}
