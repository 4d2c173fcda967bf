//! The seed's walkthrough, step by step, against the real binary:
//! POST → 202 → a JSONL line → query → health → an alert fires → a
//! 100-connection burst all accepted and all stored → SIGTERM exits 0.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn the_seed_walkthrough_end_to_end() {
    let mut server = Server::start(&["--alert-interval", "200ms"]);
    let addr = server.addr;

    // Startup log in the seed's order.
    let log = server.output().join("\n");
    let order = [
        "Storage consumer started",
        "phase0_metrics.jsonl",
        "Loaded 3 alert rules",
        "cpu_usage avg(60s) > 80",
        "memory_usage avg(60s) > 90",
        "error_rate avg(30s) > 5",
        "checking every 200 ms",
        "Server listening on",
    ];
    let mut at = 0;
    for needle in order {
        let found = log[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{log}"));
        at += found;
    }

    // [04:00] the first metric.
    let before = now_ms();
    let reply = post(addr, "/metrics", r#"{"name":"cpu_usage","value":85}"#);
    assert_eq!(reply.status, 202);
    assert_eq!(reply.json(), serde_json::json!({"status": "accepted"}));
    wait_until(
        Duration::from_secs(10),
        "the first line in the file",
        || server.stored_lines().len() == 1,
    );
    let line: serde_json::Value = serde_json::from_str(&server.stored_lines()[0]).unwrap();
    assert_eq!(line["name"], "cpu_usage");
    assert_eq!(line["value"], 85.0);
    let stamped = line["timestamp"].as_i64().unwrap();
    assert!(
        stamped >= before && stamped <= now_ms(),
        "the server stamps the time in ms"
    );

    // Rapid fire, without Content-Type, as the video types it.
    for body in [
        r#"{"name":"memory_usage","value":75}"#,
        r#"{"name":"disk_io","value":120}"#,
        r#"{"name":"network_latency","value":45}"#,
    ] {
        let reply = raw(
            addr,
            format!(
                "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(reply.status, 202);
    }
    wait_until(Duration::from_secs(10), "four lines", || {
        server.stored_lines().len() == 4
    });

    // [06:30] the query API.
    let now = now_ms();
    let reply = get(
        addr,
        &format!("/query?name=cpu_usage&start={}&end={now}", now - 300_000),
    );
    assert_eq!(reply.status, 200);
    let result = reply.json();
    assert_eq!(result.as_array().unwrap().len(), 1);
    assert_eq!(result[0]["value"], 85.0);
    let reply = get(addr, "/query?name=memory_usage");
    assert_eq!(reply.json()[0]["value"], 75.0, "start and end are optional");
    let reply = get(
        addr,
        &format!("/query?name=cpu_usage&start={stamped}&end={stamped}"),
    );
    assert_eq!(
        reply.json().as_array().unwrap().len(),
        1,
        "bounds are inclusive"
    );
    let reply = get(addr, "/health");
    assert_eq!(reply.json()["status"], "healthy");
    assert_eq!(reply.json()["queue_size"], 0);

    // [09:00] ten at 92: the CPU rule fires. The video sleeps a second
    // between posts; we send the timestamps instead (distinct from the 85's,
    // or the store would keep one sample per millisecond: last write wins).
    for i in 1..=10 {
        let body = format!(
            r#"{{"name":"cpu_usage","value":92,"timestamp":{}}}"#,
            stamped + i
        );
        assert_eq!(post(addr, "/metrics", &body).status, 202);
    }
    server.wait_for_line("[ALERT]", Duration::from_secs(10));
    server.wait_for_line("Metric:    cpu_usage", Duration::from_secs(5));
    server.wait_for_line("Condition: avg(60s) > 80", Duration::from_secs(5));
    // 85 and ten 92s: avg 91.36 over 11 samples. (The 85 alone fired earlier
    // with "(1 samples)"; this line can only come from the burst.)
    let current = server.wait_for_line("91.36 (11 samples)", Duration::from_secs(10));
    assert!(current.contains("Current:"), "{current}");

    // [12:00] the burst: 100 concurrent one-shot POSTs, all accepted, all stored.
    let threads: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                post(
                    addr,
                    "/metrics",
                    &format!(r#"{{"name":"load_test","value":{i}}}"#),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 202),
        "every burst request accepted: {statuses:?}"
    );
    wait_until(Duration::from_secs(30), "the burst stored", || {
        server
            .stored_lines()
            .iter()
            .filter(|l| l.contains("\"load_test\""))
            .count()
            >= 100
    });
    let mut values: Vec<i64> = server
        .stored_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == "load_test")
        .map(|v| v["value"].as_f64().unwrap() as i64)
        .collect();
    values.sort();
    assert_eq!(
        values,
        (0..100).collect::<Vec<_>>(),
        "each burst metric stored exactly once"
    );

    // Ctrl-C / SIGTERM: a clean exit.
    let status = server.terminate();
    assert!(
        status.success(),
        "phase0 exits 0 on SIGTERM, got {status:?}"
    );
    server.wait_for_line("Queue drained", Duration::from_secs(5));
}

#[test]
fn the_port_argument_and_help() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phase0"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for flag in ["--data-dir", "--alert-interval", "--rules", "[PORT]"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phase0"))
        .arg("eighty")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("eighty"),
        "a bad port is named"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phase0"))
        .args(["0", "--alert-interval", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("soon"));
}

#[test]
fn custom_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"metric":"queue_depth","condition":"<","threshold":3,"window_seconds":5}]"#,
    )
    .unwrap();
    let server = Server::start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--alert-interval",
        "100ms",
    ]);
    server.wait_for_line("Loaded 1 alert rules", Duration::from_secs(5));
    server.wait_for_line("queue_depth avg(5s) < 3", Duration::from_secs(5));
    assert_eq!(
        post(
            server.addr,
            "/metrics",
            r#"{"name":"queue_depth","value":1}"#
        )
        .status,
        202
    );
    server.wait_for_line("Condition: avg(5s) < 3", Duration::from_secs(10));

    std::fs::write(
        &rules,
        r#"[{"metric":"x","condition":">>","threshold":3,"window_seconds":5}]"#,
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phase0"))
        .args([
            "0",
            "--host",
            "127.0.0.1",
            "--rules",
            rules.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success(), "a bad rules file stops startup");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rules.json") && stderr.contains(">>"),
        "{stderr}"
    );
}
