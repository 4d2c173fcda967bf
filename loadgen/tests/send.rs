//! End-to-end: the real `loadgen send` binary — a file written by
//! `loadgen gen`, replayed against loadgen's own null-server — and its
//! command-line errors.
//!
//! The null-server is started with `--port 0` and its port read from its
//! first line with a bounded wait; every run is small (a few thousand lines)
//! with a short `--drain-timeout`, so the whole file takes well under 2 s.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{loadgen, start_null_server};

/// `loadgen gen --size small --hours 1 --hosts 2`: 10 series × 360 samples.
fn generate(dir: &Path, format: &str, name: &str) -> String {
    let path = dir.join(name).display().to_string();
    let output = loadgen(&[
        "gen", "--size", "small", "--hosts", "2", "--format", format, "--output", &path,
    ]);
    assert!(
        output.status.success(),
        "gen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

#[test]
fn replays_a_generated_file_against_the_null_server() {
    let server = start_null_server();
    let dir = tempfile::tempdir().expect("tempdir");
    for (format, name, path) in [
        ("lp", "data.lp", "/write?precision=ns"),
        ("jsonl", "data.jsonl", "/metrics"),
    ] {
        let file = generate(dir.path(), format, name);
        let output = loadgen(&[
            "send",
            "--file",
            &file,
            "--url",
            &server.base_url,
            "--batch",
            "500",
            "-c",
            "3",
            "--drain-timeout",
            "2s",
            "--json",
        ]);
        assert!(
            output.status.success(),
            "send {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(json["url"], format!("{}{path}", server.base_url), "{json}");
        assert_eq!(json["lines"], 3_600, "{json}");
        assert_eq!(json["samples"], 3_600, "{json}");
        assert_eq!(json["bodies"], 8, "{json}");
        assert_eq!(json["requests"], 8, "{json}");
        assert_eq!(json["accepted_samples"], 3_600, "{json}");
        assert_eq!(json["errors"], 0, "{json}");
        assert_eq!(json["statuses"]["202"], 8, "{json}");
        assert!(json["accepted_samples_per_s"].as_f64().unwrap_or(0.0) > 0.0);
        // The null-server's /health always says queue_size 0.
        assert!(json["stored_samples_per_s"].is_number(), "{json}");
        assert!(json["latency_ms"]["p99"].is_number(), "{json}");
    }

    let file = dir.path().join("data.lp").display().to_string();
    let output = loadgen(&[
        "send",
        "--file",
        &file,
        "--url",
        &server.base_url,
        "--limit",
        "1000",
        "--no-health",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("all 1,000 samples accepted"), "{text}");
    assert!(text.contains("stored       n/a"), "{text}");
}

#[test]
fn bad_flags_name_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.lp").display().to_string();
    let unknown = dir.path().join("data.csv");
    std::fs::write(&unknown, "x v=1\n").expect("write");
    let unknown = unknown.display().to_string();
    let url = "http://127.0.0.1:9";
    for (args, expected) in [
        (
            vec!["--file", missing.as_str(), "--url", url],
            format!("'{missing}'"),
        ),
        (
            vec!["--file", missing.as_str(), "--url", url, "--batch", "0"],
            "'0'".to_string(),
        ),
        (
            vec!["--file", missing.as_str(), "--url", url, "-c", "0"],
            "'0'".to_string(),
        ),
        (
            vec!["--file", unknown.as_str(), "--url", url],
            format!("'{unknown}'"),
        ),
        (
            vec!["--file", unknown.as_str(), "--url", url, "--format", "csv"],
            "'csv'".to_string(),
        ),
        (
            vec!["--file", missing.as_str(), "--url", "https://h:1"],
            "'https://h:1'".to_string(),
        ),
    ] {
        let mut argv = vec!["send"];
        argv.extend_from_slice(&args);
        let output = loadgen(&argv);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{argv:?} succeeded");
        assert!(stderr.contains(&expected), "{argv:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{argv:?}: {stderr}");
    }
}
