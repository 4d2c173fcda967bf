//! End-to-end: the real `loadgen` binary against its own `null-server`.
//!
//! The server is started with `--port 0`; the test reads the bound port from
//! its `listening on HOST:PORT` line with a bounded wait, so there is no
//! sleep-and-hope and no fixed port to collide on. Every loadgen invocation is
//! bounded by its own `--duration` / `--max-requests` / `--timeout` and a short
//! `--drain-timeout`.

mod support;

use serde_json::Value;
use support::{loadgen, start_null_server};

fn json_report(args: &[&str]) -> Value {
    let output = loadgen(args);
    assert!(
        output.status.success(),
        "loadgen {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn assert_all_accepted(report: &Value) {
    let requests = report["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{report}");
    assert_eq!(
        report["statuses"]["202"].as_u64(),
        Some(requests),
        "{report}"
    );
    assert_eq!(
        report["errors"].as_object().map(|e| e.len()),
        Some(0),
        "{report}"
    );
    assert!(report["rps"].as_f64().expect("rps") > 0.0, "{report}");
    // The null server's /health always says queue_size 0.
    assert_eq!(report["peak_queue_size"].as_u64(), Some(0), "{report}");
    assert!(report["catch_up_s"].as_f64().is_some(), "{report}");
}

#[test]
fn run_burst_and_slow_body_against_null_server() {
    let server = start_null_server();
    let url = format!("{}/metrics", server.base_url);

    let run = json_report(&[
        "run",
        "--url",
        &url,
        "--connections",
        "4",
        "--duration",
        "1s",
        "--batch",
        "5",
        "--json",
        "--drain-timeout",
        "5s",
    ]);
    assert_all_accepted(&run);
    let metrics_per_s = run["metrics_per_s"].as_f64().expect("metrics_per_s");
    let rps = run["rps"].as_f64().expect("rps");
    assert!(
        (metrics_per_s - 5.0 * rps).abs() < 1e-6 * metrics_per_s.max(1.0),
        "{run}"
    );
    let duration = run["duration_s"].as_f64().expect("duration_s");
    assert!((0.9..3.0).contains(&duration), "{run}");
    // Keep-alive: one connection per worker is enough against hyper.
    assert!(
        run["connections_opened"].as_u64().expect("connections") <= 8,
        "{run}"
    );

    // A base URL gets /metrics appended.
    let burst = json_report(&[
        "burst",
        "--url",
        &server.base_url,
        "-n",
        "20",
        "--json",
        "--drain-timeout",
        "5s",
    ]);
    assert_all_accepted(&burst);
    assert_eq!(burst["requests"].as_u64(), Some(20), "{burst}");
    assert_eq!(burst["connections_opened"].as_u64(), Some(20), "{burst}");

    let slow = json_report(&[
        "run",
        "--url",
        &url,
        "--connections",
        "1",
        "--duration",
        "10s",
        "--max-requests",
        "3",
        "--slow-body",
        "50",
        "--json",
        "--no-health",
    ]);
    assert_eq!(slow["requests"].as_u64(), Some(3), "{slow}");
    assert_eq!(slow["statuses"]["202"].as_u64(), Some(3), "{slow}");
    let p50 = slow["latency_ms"]["p50"].as_f64().expect("p50");
    assert!(p50 >= 50.0, "slow body must delay each request: {slow}");
    assert!(slow["peak_queue_size"].is_null(), "{slow}");

    let text = loadgen(&[
        "run",
        "--url",
        &url,
        "-c",
        "2",
        "-d",
        "200ms",
        "--no-keep-alive",
    ]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("no keep-alive"), "{text}");
    assert!(text.contains("statuses     202: "), "{text}");
    assert!(text.contains("all "), "{text}");
}

#[test]
fn every_body_format_is_accepted_on_its_default_path() {
    let server = start_null_server();
    for (format, gzip, path) in [
        ("json", false, "/metrics"),
        ("ndjson", false, "/metrics"),
        ("lp", false, "/write?precision=ms"),
        ("remote-write", false, "/api/v1/write"),
        ("json", true, "/metrics"),
        ("lp", true, "/write?precision=ms"),
    ] {
        let mut args = vec![
            "run",
            "--url",
            &server.base_url,
            "--format",
            format,
            "-c",
            "2",
            "-d",
            "200ms",
            "--batch",
            "20",
            "--json",
            "--drain-timeout",
            "2s",
        ];
        if gzip {
            args.push("--gzip");
        }
        let report = json_report(&args);
        assert_all_accepted(&report);
        assert_eq!(report["format"], format, "{report}");
        assert_eq!(report["gzip"], gzip, "{report}");
        assert_eq!(
            report["url"].as_str(),
            Some(format!("{}{path}", server.base_url).as_str()),
            "{report}"
        );
        let metrics_per_s = report["metrics_per_s"].as_f64().expect("metrics_per_s");
        let rps = report["rps"].as_f64().expect("rps");
        assert!(
            (metrics_per_s - 20.0 * rps).abs() < 1e-6 * metrics_per_s,
            "{report}"
        );
    }

    // burst sends one metric per request in the chosen format.
    let burst = json_report(&[
        "burst",
        "--url",
        &server.base_url,
        "--format",
        "remote-write",
        "-n",
        "10",
        "--json",
        "--drain-timeout",
        "2s",
    ]);
    assert_all_accepted(&burst);
    assert_eq!(burst["format"], "remote-write", "{burst}");

    let output = loadgen(&[
        "run",
        "--url",
        &server.base_url,
        "--format",
        "remote-write",
        "--gzip",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--gzip"));
}

#[test]
fn failures_are_reported_not_fatal() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let report = json_report(&["burst", "--url", &url, "-n", "5", "--json"]);
    assert_eq!(
        report["errors"]["connect refused"].as_u64(),
        Some(5),
        "{report}"
    );
    assert!(report["catch_up_s"].is_null(), "{report}");

    let output = loadgen(&["burst", "--url", "http://[oops", "-n", "5"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http://[oops"), "{stderr}");

    let output = loadgen(&["run", "--url", &url, "--duration", "10parsecs"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("10parsecs"));
}
