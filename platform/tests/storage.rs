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

fn label_values(addr: std::net::SocketAddr, label: &str) -> serde_json::Value {
    let (status, body) =
        call(addr, "GET", &format!("/api/v1/label/{label}/values"), "").expect("label values");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).expect("json")["data"].clone()
}

/// Prometheus' admin call through the default pipeline: off without the
/// flag (503, nothing deleted), then the samples and the label values of a
/// deleted series are gone at once — not left in the index, as
/// Prometheus leaves them until a compaction — and stay gone after a
/// restart, while what was written afterwards stays.
#[test]
fn delete_series_removes_samples_and_label_values_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let writes = r#"[{"name":"secret_total","value":1,"timestamp":1000,"labels":{"token":"hunter2"}},
        {"name":"secret_total","value":2,"timestamp":2000,"labels":{"token":"hunter2"}},
        {"name":"cpu","value":5,"timestamp":1000,"labels":{"host":"a"}},
        {"name":"cpu","value":6,"timestamp":2000,"labels":{"host":"a"}}]"#;
    {
        let (_child, addr, _output) =
            start_platform_with_output(&["--alert-interval", "1h"], dir.path());
        post(addr, writes);
        wait_for_samples(addr, "secret_total", 2);
        let (status, body) = call(
            addr,
            "POST",
            "/api/v1/admin/tsdb/delete_series?match[]=secret_total",
            "",
        )
        .expect("delete");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("admin APIs disabled"), "{body}");
        wait_for_samples(addr, "secret_total", 2);
    }
    let args = ["--alert-interval", "1h", "--web.enable-admin-api"];
    let (child, addr, _output) = start_platform_with_output(&args, dir.path());
    wait_for_samples(addr, "cpu", 2);
    assert_eq!(label_values(addr, "token"), serde_json::json!(["hunter2"]));
    let (status, body) = call(addr, "POST", "/api/v1/admin/tsdb/delete_series", "").expect("call");
    assert_eq!(status, 400, "match[] is required: {body}");
    // Part of cpu (its sample at 1 s), and all of secret_total, as a form.
    let (status, body) = call(
        addr,
        "POST",
        "/api/v1/admin/tsdb/delete_series?match[]=cpu&start=0&end=1.5",
        "",
    )
    .expect("delete cpu");
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(
        addr,
        "PUT",
        "/api/v1/admin/tsdb/delete_series",
        "match%5B%5D=%7Btoken%3D%22hunter2%22%7D",
    )
    .expect("delete secret");
    assert_eq!(status, 204, "{body}");
    wait_for_samples(addr, "secret_total", 0);
    let cpu = wait_for_samples(addr, "cpu", 1);
    assert_eq!(cpu[0]["value"], 6.0, "{cpu}");
    assert_eq!(label_values(addr, "token"), serde_json::json!([]));
    assert_eq!(label_values(addr, "__name__"), serde_json::json!(["cpu"]));
    let (status, _) = call(addr, "POST", "/api/v1/admin/tsdb/clean_tombstones", "").expect("clean");
    assert_eq!(status, 204);
    // Written after the deletion, into the deleted range: kept.
    post(
        addr,
        r#"{"name":"cpu","value":7,"timestamp":1000,"labels":{"host":"a"}}"#,
    );
    wait_for_samples(addr, "cpu", 2);
    // Accepted just before a deletion and killed just after it: the
    // deletion waits for it to be stored and its delivery acked durably,
    // so it is neither stored after the deletion nor delivered again.
    post(
        addr,
        r#"{"name":"secret_total","value":3,"timestamp":3000,"labels":{"token":"hunter2"}}"#,
    );
    let (status, body) = call(
        addr,
        "POST",
        "/api/v1/admin/tsdb/delete_series?match[]=secret_total",
        "",
    )
    .expect("delete the late write");
    assert_eq!(status, 204, "{body}");
    drop(child); // SIGKILL

    let (_child, addr, _output) = start_platform_with_output(&args, dir.path());
    let cpu = wait_for_samples(addr, "cpu", 2);
    let values: Vec<f64> = cpu
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["value"].as_f64().expect("value"))
        .collect();
    assert_eq!(values, vec![7.0, 6.0]);
    wait_for_samples(addr, "secret_total", 0);
    assert_eq!(label_values(addr, "token"), serde_json::json!([]));
}
