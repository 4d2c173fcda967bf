//! `--alerting craft5` end to end: the real binary, a webhook receiver
//! pointing at a local recording server, metrics over the threshold → one
//! firing notification; a SIGKILL and restart mid-firing → no second page;
//! values back under the threshold → one resolved notification.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{call, start_platform};

/// Records the body of every request; answers 200.
struct Recorder {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bodies, stop) = (bodies.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_ok()
                        && let Ok(json) = serde_json::from_slice(&body)
                    {
                        bodies.lock().unwrap().push(json);
                    }
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
            })
        };
        Recorder {
            addr,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits (bounded) until `count` notifications arrived.
    fn wait_for(&self, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let bodies = self.bodies();
            if bodies.len() >= count || Instant::now() >= deadline {
                return bodies;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const RULES: &str = r#"
groups:
  - name: test
    rules:
      - alert: HotCpu
        expr: max_over_time(cpu_usage[1s]) > 80
        labels:
          severity: page
        annotations:
          summary: "cpu_usage at {{ $value }}"
"#;

fn post(addr: SocketAddr, value: f64) {
    let body = format!(r#"{{"name":"cpu_usage","value":{value}}}"#);
    let (status, text) = call(addr, "POST", "/metrics", &body).expect("write");
    assert_eq!(status, 202, "{text}");
}

#[test]
fn one_firing_page_survives_a_restart_then_one_resolved() {
    let recorder = Recorder::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let routing = dir.path().join("alertmanager.yml");
    std::fs::write(
        &routing,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 200ms\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{}/alerts\n",
            recorder.addr
        ),
    )
    .expect("routing");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let args = [
        "--alerting",
        "craft5",
        "--rules",
        rules.to_str().expect("utf-8"),
        "--alertmanager-config",
        routing.to_str().expect("utf-8"),
        // Only samples move the alert (an evaluation tick would resolve it
        // when the 1 s window empties): the test decides when it resolves.
        "--alert-interval",
        "1h",
        "--queue",
        "crossbeam",
        "--storage",
        "phase0",
    ];

    let (platform, addr) = start_platform(&args, &data);
    let (_, health) = call(addr, "GET", "/health", "").expect("health");
    assert!(health.contains("\"alerting\":\"craft5\""), "{health}");
    post(addr, 95.0);
    let pages = recorder.wait_for(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1, "one firing notification: {pages:?}");
    assert_eq!(pages[0]["status"], "firing");
    assert_eq!(pages[0]["version"], "4");
    assert_eq!(pages[0]["alerts"][0]["labels"]["alertname"], "HotCpu");
    post(addr, 97.0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(recorder.bodies().len(), 1, "still hot: no second page");

    // SIGKILL mid-firing, then start again on the same data directory.
    drop(platform);
    let (_platform, addr) = start_platform(&args, &data);
    post(addr, 96.0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        recorder.bodies().len(),
        1,
        "the restart pages nobody again: {:?}",
        recorder.bodies()
    );

    // Back under the threshold. The restored alert is held until its 1 s
    // window has refilled since the restart, so keep reporting (bounded).
    let deadline = Instant::now() + Duration::from_secs(15);
    while recorder.bodies().len() < 2 && Instant::now() < deadline {
        post(addr, 10.0);
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pages = recorder.bodies();
    assert_eq!(pages.len(), 2, "one resolved notification: {pages:?}");
    assert_eq!(pages[1]["status"], "resolved");
    assert_eq!(pages[1]["alerts"][0]["status"], "resolved");
    assert_eq!(
        pages[1]["alerts"][0]["fingerprint"], pages[0]["alerts"][0]["fingerprint"],
        "the same alert"
    );
    assert!(
        data.join("alerts").join("outbox.jsonl").exists(),
        "the outbox lives beside the alert state"
    );
}

#[test]
fn phase0_refuses_craft5_only_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    for (args, needle) in [
        (
            vec!["--alerting", "phase0", "--rules", rules.to_str().unwrap()],
            "YAML rule groups need --alerting craft5",
        ),
        (
            vec!["--alerting", "phase0", "--alertmanager-config", "x.yml"],
            "needs --alerting craft5",
        ),
        (vec!["--alerting", "craft9"], "craft9"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_platform"))
            .args([
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                "--storage",
                "phase0",
                "--queue",
                "crossbeam",
            ])
            .args(&args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_bad_routing_config_stops_the_start_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let routing = dir.path().join("am.yml");
    std::fs::write(&routing, "route:\n  receiver: nobody\nreceivers: []\n").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_platform"))
        .args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--storage",
            "phase0",
            "--queue",
            "crossbeam",
        ])
        .arg("--alertmanager-config")
        .arg(&routing)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("am.yml: route: unknown receiver \"nobody\""),
        "{stderr}"
    );
}

/// craft 5's own API answers through the platform's HTTP routes: the
/// rules in Prometheus' shape, the alerts, and silences created, listed
/// and expired.
#[test]
fn the_alerting_api_answers_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_platform, addr) = start_platform(&["--alerting", "craft5"], dir.path());
    let (status, body) = call(addr, "GET", "/api/v1/rules", "").expect("rules");
    assert_eq!(status, 200, "{body}");
    let rules: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(rules["status"], "success", "{body}");
    assert!(
        rules["data"]["groups"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "the default rules are listed: {body}"
    );
    let (status, body) = call(addr, "GET", "/api/v1/alerts", "").expect("alerts");
    assert_eq!(status, 200, "{body}");
    let silence = r#"{"matchers":[{"name":"alertname","value":"HighCPU","isRegex":false,"isEqual":true}],"startsAt":"2020-01-01T00:00:00Z","endsAt":"2100-01-01T00:00:00Z","createdBy":"test","comment":"maintenance"}"#;
    let (status, body) = call(addr, "POST", "/api/v1/silences", silence).expect("create");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(addr, "GET", "/api/v1/silences", "").expect("list");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("maintenance"), "{body}");
    // The query API still answers beside it.
    let (status, body) = call(addr, "GET", "/api/v1/query?query=1%2B1", "").expect("query");
    assert_eq!(status, 200, "{body}");
}

/// An alert acknowledged over HTTP shows as acknowledged (who, when) in
/// `/api/v1/alerts`; an unknown id is a JSON 404.
#[test]
fn an_alert_acknowledged_over_http_shows_in_the_alert_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let args = [
        "--alerting",
        "craft5",
        "--rules",
        rules.to_str().expect("utf-8"),
        // Only samples move the alert: it stays firing for the test.
        "--alert-interval",
        "1h",
    ];
    let (_platform, addr) = start_platform(&args, dir.path());
    post(addr, 95.0);
    // The alert fires as the sample is stored; wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let alert = loop {
        let (status, body) = call(addr, "GET", "/api/v1/alerts", "").expect("alerts");
        assert_eq!(status, 200, "{body}");
        let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
        if let Some(alert) = listed["data"]["alerts"]
            .as_array()
            .and_then(|alerts| alerts.iter().find(|a| a["state"] == "firing"))
        {
            break alert.clone();
        }
        assert!(Instant::now() < deadline, "no firing alert: {body}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(alert["acknowledged"], serde_json::Value::Null);
    let id = alert["id"].as_str().expect("an alert id");

    let (status, body) =
        call(addr, "POST", "/api/v1/alerts/ffffffffffffffff/ack", "").expect("ack unknown");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"errorType\":\"not_found\""), "{body}");

    let (status, body) = call(
        addr,
        "POST",
        &format!("/api/v1/alerts/{id}/ack"),
        r#"{"by":"oncall","comment":"on it"}"#,
    )
    .expect("ack");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(addr, "GET", "/api/v1/alerts", "").expect("alerts");
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let acked = &listed["data"]["alerts"][0];
    assert_eq!(acked["id"], id);
    assert_eq!(acked["acknowledged"]["by"], "oncall", "{body}");
    assert_eq!(acked["acknowledged"]["comment"], "on it");
    assert!(acked["acknowledged"]["at"].as_str().is_some(), "{body}");
}

/// A periodic rule (an aggregation the stream cannot answer) runs in the
/// binary through craft 4's evaluator over the platform's own store: its
/// alert fires and `/api/v1/rules` reports it healthy and evaluated.
#[test]
fn periodic_rules_run_through_craft4_over_the_platform_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: fleet\n    interval: 100ms\n    rules:\n      - alert: HotFleet\n        expr: sum(cpu_usage) > 80\n",
    )
    .expect("rules");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let (_platform, addr) = start_platform(
        &[
            "--alerting",
            "craft5",
            "--rules",
            rules.to_str().expect("utf-8"),
            "--alert-interval",
            "100ms",
            "--queue",
            "crossbeam",
            "--storage",
            "phase0",
        ],
        &data,
    );
    post(addr, 95.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = call(addr, "GET", "/api/v1/alerts", "").expect("alerts");
        if body.contains("HotFleet") && body.contains("\"firing\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no firing HotFleet: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, body) = call(addr, "GET", "/api/v1/rules", "").expect("rules");
    let rules: serde_json::Value = serde_json::from_str(&body).expect("json");
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "ok", "{body}");
    assert_eq!(rule["lastError"], "", "{body}");
    assert_ne!(rule["lastEvaluation"], "0001-01-01T00:00:00Z", "{body}");
}
