//! A real Prometheus (Debian's `prometheus` package) scrapes the platform's
//! own `/metrics` and remote-writes everything it scraped back into the
//! platform's `/api/v1/write`; the samples must come out of `/query`.
//!
//! `.ci/run` installs Prometheus, so in CI (`CI` set) a missing binary is a
//! failure; elsewhere the test says it is skipping and passes.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};
use support::{Killed, start_platform};

fn get(addr: SocketAddr, target: &str) -> Option<(u16, String)> {
    support::call(addr, "GET", target, "")
}

#[test]
fn prometheus_scrapes_and_remote_writes_into_the_platform() {
    let Some(prometheus) = support::find_binary("prometheus") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus (see .ci/run)"
        );
        eprintln!("skipping: no prometheus binary (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (platform, addr) = start_platform(&[], dir.path());

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: platform\n    static_configs:\n      - targets: ['{addr}']\n\
             remote_write:\n  - url: http://{addr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n"
        ),
    )
    .expect("write config");
    let prometheus = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prometheus-data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    );

    // Prometheus' own `up` for our target, scraped and written back to us.
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        if let Some((200, body)) = get(addr, "/query?name=up") {
            let samples: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if samples.as_array().is_some_and(|a| !a.is_empty()) {
                break samples;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no remote-written `up` sample within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(series[0]["labels"]["job"], "platform", "{series}");
    assert_eq!(series[0]["labels"]["instance"], addr.to_string());
    assert_eq!(series[0]["value"], 1.0, "Prometheus could scrape /metrics");
    // Our own self-metrics make the round trip too: the count of
    // remote-write requests, scraped by Prometheus and written back.
    loop {
        let (_, body) = get(addr, "/query?name=ingest_requests_total").expect("query");
        if body.contains("\"route\":\"/api/v1/write\",\"status\":\"204\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "remote-write requests never counted and written back: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(prometheus);
    drop(platform);
}
