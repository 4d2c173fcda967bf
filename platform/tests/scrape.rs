//! Pull, against the real thing: `platform --config.file prometheus.yml`
//! scraping Debian's `prometheus-node-exporter` every second. Its series
//! are queryable with the target's labels and `up == 1`; killed, `up` goes
//! to 0 and its series end at once (stale markers, not five minutes of
//! lookback); restarted on the same port, it is back. A target nobody
//! listens on is `up == 0`, and a broken file stops the start naming the
//! file and the key.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::vector::{query, value_is, wait_until};
use support::{call, find_binary, start_on_free_port, start_platform_with_output};

#[test]
fn a_real_node_exporter_is_scraped_goes_down_and_comes_back() {
    let Some(binary) = find_binary("prometheus-node-exporter") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus-node-exporter (see .ci/run)"
        );
        eprintln!("skipping: apt-get install prometheus-node-exporter");
        return;
    };
    let exporter = |addr: SocketAddr| {
        let mut command = Command::new(&binary);
        command.arg(format!("--web.listen-address={addr}"));
        command
    };
    let (node, node_addr) = start_on_free_port("node_exporter", "/metrics", &exporter);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             remote_read:\n  - url: http://127.0.0.1:1/read\n\
             scrape_configs:\n\
             - job_name: node\n  static_configs:\n  - targets: ['{node_addr}']\n    labels: {{team: infra}}\n\
             - job_name: nobody\n  static_configs:\n  - targets: ['127.0.0.1:1']\n"
        ),
    )
    .expect("write config");
    let config_arg = config.to_str().expect("utf-8 path");
    let (_platform, addr, _output) = start_platform_with_output(
        &["--config.file", config_arg, "--alert-interval", "1h"],
        &dir.path().join("data"),
    );

    let up = wait_until(addr, r#"up{job="node"}"#, "scraped", value_is("1"));
    assert_eq!(up[0].0["instance"], node_addr.to_string());
    assert_eq!(up[0].0["team"], "infra");
    let series = wait_until(
        addr,
        r#"count({job="node",__name__=~"node_.+"})"#,
        "node_exporter's series",
        |a| a.len() == 1 && a[0].1.parse::<u32>().unwrap_or(0) > 100,
    );
    eprintln!("node_exporter: {} node_* series scraped", series[0].1);
    let scraped = query(addr, r#"scrape_samples_scraped{job="node"}"#);
    assert!(
        scraped[0].1.parse::<u32>().expect("count") > 100,
        "{scraped:?}"
    );
    let (status, body) = call(
        addr,
        "GET",
        "/api/v1/metadata?metric=node_exporter_build_info",
        "",
    )
    .expect("metadata");
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""type":"gauge""#),
        "the page's TYPE: {body}"
    );
    wait_until(addr, r#"up{job="nobody"}"#, "a dead target", value_is("0"));
    // Both targets in Prometheus' shape, with health and the last error.
    let (status, body) = call(addr, "GET", "/api/v1/targets", "").expect("targets");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let active = answer["data"]["activeTargets"].as_array().expect("list");
    assert_eq!(active.len(), 2, "{body}");
    let node_target = &active[0];
    assert_eq!(node_target["scrapePool"], "node");
    assert_eq!(node_target["health"], "up", "{body}");
    assert_eq!(node_target["labels"]["instance"], node_addr.to_string());
    assert_eq!(
        node_target["discoveredLabels"]["__address__"],
        node_addr.to_string()
    );
    assert_eq!(node_target["scrapeInterval"], "1s");
    assert_eq!(
        node_target["scrapeUrl"],
        format!("http://{node_addr}/metrics")
    );
    assert_eq!(active[1]["health"], "down");
    assert!(
        active[1]["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1:1"),
        "{body}"
    );
    let (_, only) = call(addr, "GET", "/api/v1/targets?scrapePool=nobody", "").expect("filter");
    assert!(!only.contains(r#""scrapePool":"node""#), "{only}");
    let (status, _) = call(addr, "GET", "/api/v1/targets?state=sideways", "").expect("bad state");
    assert_eq!(status, 400);

    // Killed: `up` goes 0, and its series end at once.
    drop(node);
    wait_until(addr, r#"up{job="node"}"#, "down", value_is("0"));
    wait_until(
        addr,
        r#"node_exporter_build_info{job="node"}"#,
        "stale",
        |a| a.is_empty(),
    );
    // Back on the same port: scraped again.
    let _node = start_on_free_port_at(node_addr, &exporter);
    wait_until(addr, r#"up{job="node"}"#, "back", value_is("1"));
    wait_until(
        addr,
        r#"node_exporter_build_info{job="node"}"#,
        "its series back",
        |a| a.len() == 1,
    );
}

/// node_exporter again on `addr` (free again since it was killed).
fn start_on_free_port_at(
    addr: SocketAddr,
    spawn: &dyn Fn(SocketAddr) -> Command,
) -> support::Killed {
    let child = support::Killed(
        spawn(addr)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("restart node_exporter"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(addr, "GET", "/metrics", "").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "node_exporter did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_broken_configuration_stops_the_start_naming_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "scrape_configs:\n- job_name: node\n  scrape_interval: often\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["--port", "0", "--host", "127.0.0.1", "--config.file"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run platform");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prometheus.yml")
            && stderr.contains("scrape_configs[0] (node).scrape_interval"),
        "{stderr}"
    );
}
