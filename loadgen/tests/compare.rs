//! End-to-end: `loadgen compare` starting real server processes — loadgen's
//! own null-server as both baseline and candidate — and failing clearly when
//! a server cannot start.
//!
//! Every invocation runs under a hard limit (`run_bounded`): a hang fails the
//! test instead of stalling the suite.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs loadgen with `args`, killing it and failing after `limit`.
fn run_bounded(args: &[&str], limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = Command::new(LOADGEN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for loadgen") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen {args:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        took: started.elapsed(),
    }
}

fn null_server_command() -> String {
    format!("{LOADGEN} null-server --port {{port}}")
}

fn assert_clean_row(json: &Value, row: &str) {
    let report = &json[row];
    assert!(report["rps"].as_f64().unwrap_or(0.0) > 0.0, "{row}: {json}");
    assert!(
        report["metrics_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{row}: {json}"
    );
    assert_eq!(report["not_accepted"].as_u64(), Some(0), "{row}: {json}");
    assert_eq!(report["failed"].as_u64(), Some(0), "{row}: {json}");
    assert_eq!(
        report["errors"].as_object().map(|e| e.len()),
        Some(0),
        "{row}: {json}"
    );
    assert_eq!(report["peak_queue_size"].as_u64(), Some(0), "{row}: {json}");
}

#[test]
fn compares_two_null_servers_as_json() {
    let command = null_server_command();
    let finished = run_bounded(
        &[
            "compare",
            "--baseline",
            &command,
            "--candidate",
            &command,
            "-c",
            "2",
            "-d",
            "1s",
            "--drain-timeout",
            "2s",
            "--startup-timeout",
            "10s",
            "--json",
        ],
        Duration::from_secs(30),
    );
    assert!(
        finished.status.success(),
        "compare failed: {}",
        finished.stderr
    );
    let json: Value = serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", finished.stdout));
    assert_clean_row(&json, "baseline");
    assert_clean_row(&json, "candidate");
    assert_eq!(json["baseline"]["command"], command.as_str(), "{json}");
    assert_eq!(json["candidate"]["format"], "json", "{json}");
    assert!(json.get("null_server").is_none(), "{json}");
    for ratio in ["rps", "metrics_per_s", "p99"] {
        let value = json["ratios"][ratio].as_f64().unwrap_or(0.0);
        assert!(value > 0.0, "{ratio}: {json}");
    }
    // Each server got its own free port.
    assert_ne!(json["baseline"]["url"], json["candidate"]["url"], "{json}");
}

#[test]
fn text_table_with_the_null_server_ceiling_row() {
    let command = null_server_command();
    let finished = run_bounded(
        &[
            "compare",
            "--baseline",
            &command,
            "--candidate",
            &command,
            "--null-server",
            "--format",
            "lp",
            "--batch",
            "50",
            "-c",
            "2",
            "-d",
            "300ms",
            "--drain-timeout",
            "2s",
        ],
        Duration::from_secs(30),
    );
    assert!(
        finished.status.success(),
        "compare failed: {}",
        finished.stderr
    );
    let text = &finished.stdout;
    assert!(
        text.starts_with("loadgen compare: 2 connections, keep-alive, batch 50, lp body"),
        "{text}"
    );
    assert!(text.contains("→ POST /write?precision=ms"), "{text}");
    for row in ["baseline", "candidate", "null-server"] {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(row) && line.contains(" ms "))
            .unwrap_or_else(|| panic!("no {row} row: {text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        // name, req/s, metrics/s, p50 (2 cells), p99 (2 cells), errors, peak
        assert_eq!(cells.len(), 9, "{line}");
        assert!(cells[1].parse::<f64>().unwrap_or(0.0) > 0.0, "{line}");
        assert_eq!(cells[7], "0", "{line}");
        assert_eq!(cells[8], "0", "{line}");
    }
    assert!(text.contains("candidate/baseline: req/s ×"), "{text}");
    assert!(text.contains("candidate/null-server: req/s ×"), "{text}");
}

#[test]
fn a_baseline_that_exits_at_once_is_a_clear_quick_error() {
    let candidate = null_server_command();
    let logs = tempfile::tempdir().expect("tempdir");
    let log_dir = logs.path().to_string_lossy().into_owned();
    let finished = run_bounded(
        &[
            "compare",
            "--baseline",
            "sh -c 'echo cannot bind port $0 >&2; exit 3' {port}",
            "--candidate",
            &candidate,
            "-d",
            "1s",
            "--log-dir",
            &log_dir,
        ],
        Duration::from_secs(20),
    );
    assert!(!finished.status.success());
    let stderr = &finished.stderr;
    assert!(
        stderr.contains("the baseline server exited before it was ready"),
        "{stderr}"
    );
    assert!(stderr.contains("exit status: 3"), "{stderr}");
    assert!(stderr.contains("cannot bind port "), "{stderr}");
    assert!(
        stderr.contains(&format!("log: {log_dir}/baseline.log")),
        "{stderr}"
    );
    let log = std::fs::read_to_string(logs.path().join("baseline.log")).expect("log kept");
    assert!(log.starts_with("cannot bind port "), "{log}");
    assert!(finished.stdout.is_empty(), "{}", finished.stdout);
    assert!(
        finished.took < Duration::from_secs(5),
        "{:?}",
        finished.took
    );
}

#[test]
fn a_missing_program_or_a_command_without_port_fails_at_once() {
    let candidate = null_server_command();
    let logs = tempfile::tempdir().expect("tempdir");
    let log_dir = logs.path().to_string_lossy().into_owned();
    let finished = run_bounded(
        &[
            "compare",
            "--baseline",
            "/nonexistent/loadgen-test-server --port {port}",
            "--candidate",
            &candidate,
            "--log-dir",
            &log_dir,
        ],
        Duration::from_secs(20),
    );
    assert!(!finished.status.success());
    assert!(
        finished
            .stderr
            .contains("cannot start the baseline server '/nonexistent/loadgen-test-server --port "),
        "{}",
        finished.stderr
    );
    assert!(
        finished.took < Duration::from_secs(5),
        "{:?}",
        finished.took
    );

    let finished = run_bounded(
        &["compare", "--baseline", "false", "--candidate", &candidate],
        Duration::from_secs(20),
    );
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("must contain {port}"),
        "{}",
        finished.stderr
    );
}
