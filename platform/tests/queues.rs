//! Every queue choice carries a write through to `/query`, and `/health`
//! says what its 202 means. NATS runs against the real server `.ci/run`
//! starts (`NATS_URL`); without one the NATS case is skipped locally and
//! fails in CI.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::start_platform;

fn call(addr: std::net::SocketAddr, method: &str, target: &str, body: &str) -> (u16, String) {
    support::call(addr, method, target, body).expect("the platform answers")
}

fn round_trip(queue_args: &[&str], expect_name: &str, expect_durability: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let args: Vec<&str> = ["--alert-interval", "1h"]
        .iter()
        .chain(queue_args)
        .copied()
        .collect();
    let (_platform, addr) = start_platform(&args, dir.path());
    let (status, health) = call(addr, "GET", "/health", "");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).expect("health json");
    assert_eq!(health["components"]["queue"], expect_name, "{health}");
    assert_eq!(health["accepted_means"], expect_durability, "{health}");
    assert!(
        health["queue_guarantee"]
            .as_str()
            .is_some_and(|g| !g.is_empty()),
        "{health}"
    );

    let batch = r#"[{"name":"queue_e2e","value":1,"timestamp":1700000000000,"labels":{"s":"a"}},
                    {"name":"queue_e2e","value":2,"timestamp":1700000001000,"labels":{"s":"b"}},
                    {"name":"queue_e2e","value":3,"timestamp":1700000002000,"labels":{"s":"c"}}]"#;
    let (status, body) = call(addr, "POST", "/metrics", batch);
    assert_eq!(status, 202, "{expect_name}: {body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(
            addr,
            "GET",
            "/query?name=queue_e2e&start=0&end=1800000000000",
            "",
        );
        assert_eq!(status, 200, "{body}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&body).expect("query json");
        if rows.len() == 3 {
            let mut values: Vec<f64> = rows
                .iter()
                .map(|r| r["value"].as_f64().expect("value"))
                .collect();
            values.sort_by(f64::total_cmp);
            assert_eq!(values, vec![1.0, 2.0, 3.0]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{expect_name}: stored {} of 3 within 20 s",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn phase0_queue_round_trips() {
    round_trip(&["--queue", "phase0"], "phase0", "memory");
}

#[test]
fn crossbeam_queue_round_trips() {
    round_trip(&["--queue", "crossbeam"], "crossbeam", "memory");
}

#[test]
fn log_queue_is_the_default_and_round_trips() {
    round_trip(&[], "log", "disk");
    round_trip(
        &[
            "--queue",
            "log",
            "--fsync",
            "every-batch",
            "--partitions",
            "2",
        ],
        "log",
        "disk",
    );
}

#[test]
fn nats_queue_round_trips_through_a_real_server() {
    let Ok(url) = std::env::var("NATS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide NATS_URL (see .ci/run)"
        );
        eprintln!("skipped: NATS_URL is not set (start nats-server -js and set it to run this)");
        return;
    };
    let stream = format!("PLATFORM_E2E_{}", std::process::id());
    round_trip(
        &[
            "--queue",
            "nats",
            "--nats-url",
            &url,
            "--nats-stream",
            &stream,
        ],
        "nats",
        "broker",
    );
}

#[test]
fn bad_queue_settings_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (args, needle) in [
        (vec!["--queue", "kafka"], "kafka"),
        (vec!["--fsync", "sometimes"], "sometimes"),
        (vec!["--queue", "nats"], "--nats-url"),
        (vec!["--partitions", "0"], "partitions"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_platform"))
            .args(&args)
            .args(["--port", "0", "--host", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("NATS_URL")
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
