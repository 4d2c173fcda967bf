//! `--storage craft3` through the platform's HTTP interface: data written
//! before a restart is answered after it (from the WAL), and the series
//! limit refuses new series with a reported error while the pipeline keeps
//! storing everything else (a refused batch is not retried forever).

mod support;

use std::time::{Duration, Instant};

use support::{call, start_platform_with_output};

/// Waits (bounded) until `/query?name=` returns `count` samples.
fn wait_for_samples(addr: std::net::SocketAddr, name: &str, count: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(
            addr,
            "GET",
            &format!("/query?name={name}&start=0&end=9999999999999"),
            "",
        )
        .expect("query");
        assert_eq!(status, 200, "{body}");
        let samples: serde_json::Value = serde_json::from_str(&body).expect("json");
        if samples.as_array().map(Vec::len) == Some(count) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: wanted {count} samples, have {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post(addr: std::net::SocketAddr, body: &str) {
    let (status, answer) = call(addr, "POST", "/metrics", body).expect("post");
    assert_eq!(status, 202, "{answer}");
}

#[test]
fn craft3_answers_after_a_restart_and_refuses_series_over_the_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = [
        "--storage",
        "craft3",
        "--series-limit",
        "2",
        "--alert-interval",
        "1h",
    ];
    let (child, addr, _output) = start_platform_with_output(&args, dir.path());
    post(
        addr,
        r#"[{"name":"cpu","value":1,"timestamp":1000,"labels":{"host":"a"}},
            {"name":"cpu","value":2,"timestamp":1000,"labels":{"host":"b"}}]"#,
    );
    wait_for_samples(addr, "cpu", 2);
    // A third series is over the limit: refused, reported, not retried
    // forever — the next write of an existing series still gets stored.
    post(
        addr,
        r#"{"name":"cpu","value":3,"timestamp":1000,"labels":{"host":"c"}}"#,
    );
    post(
        addr,
        r#"{"name":"cpu","value":4,"timestamp":2000,"labels":{"host":"a"}}"#,
    );
    // (The refusal is reported on stderr, naming the series.)
    wait_for_samples(addr, "cpu", 3);
    drop(child); // SIGKILL

    let (_child, addr, _output) = start_platform_with_output(&args, dir.path());
    let samples = wait_for_samples(addr, "cpu", 3);
    let values: Vec<f64> = samples
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["value"].as_f64().expect("value"))
        .collect();
    assert!(
        values.contains(&4.0) && !values.contains(&3.0),
        "{values:?}"
    );
}
