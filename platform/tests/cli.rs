//! The composer's command line: every slot's choices are listed, bad values
//! are named, and every ingestion choice serves the seed's write.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::start_platform_with_output;

#[test]
fn help_lists_every_slot_and_choice() {
    let output = Command::new(env!("CARGO_BIN_EXE_platform"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--ingestion",
        "phase0",
        "threads",
        "pool",
        "craft1",
        "--queue",
        "--storage",
        "craft3",
        "--query",
        "craft4",
        "--query-max-samples",
        "--query-timeout",
        "--alerting",
        "--port",
        "--data-dir",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn bad_values_are_named() {
    for (args, needle) in [
        (vec!["--ingestion", "turbo"], "turbo"),
        (vec!["--port", "http"], "http"),
        (vec!["--rate-limit", "-3"], "-3"),
        (vec!["--idle-timeout", "forever"], "forever"),
        (vec!["--storage", "rocks"], "rocks"),
        (vec!["--wal-fsync", "sometimes"], "sometimes"),
        (vec!["--block-range", "soon"], "soon"),
        (vec!["--query", "sql"], "sql"),
        (vec!["--query-timeout", "whenever"], "whenever"),
        (vec!["--query-max-samples", "lots"], "lots"),
        (vec!["--query-cache", "maybe"], "maybe"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_platform"))
            .args(&args)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn every_ingestion_choice_serves_the_seed_write_and_exits_cleanly() {
    for ingestion in ["phase0", "threads", "pool", "craft1"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut child, addr, output) = start_platform_with_output(
            &["--ingestion", ingestion, "--storage", "phase0"],
            dir.path(),
        );
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let body = r#"{"name":"cpu_usage","value":85}"#;
        write!(
            stream,
            "POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read");
        assert!(reply.starts_with("HTTP/1.1 202"), "{ingestion}: {reply}");
        assert!(
            reply.ends_with(r#"{"status":"accepted"}"#),
            "{ingestion}: {reply}"
        );
        let status = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = child.0.wait().expect("wait");
        let rest: Vec<String> = output.iter().collect();
        assert!(exit.success(), "{ingestion}: exit {exit:?}");
        assert!(
            rest.iter()
                .any(|l| l.contains("Queue drained: 1 metrics stored")),
            "{ingestion}: {rest:?}"
        );
        let file =
            std::fs::read_to_string(dir.path().join("phase0_metrics.jsonl")).expect("data file");
        assert_eq!(file.lines().count(), 1, "{ingestion}");
    }
}
