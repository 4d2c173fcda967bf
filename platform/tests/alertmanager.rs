//! Alerts to a real Alertmanager, as Prometheus sends them: the platform
//! runs a `prometheus.yml` whose `alerting.alertmanagers` names Debian's
//! `prometheus-alertmanager`; a sample over the rule's threshold makes the
//! alert appear in Alertmanager's own API with its labels and annotations,
//! a sample under it resolves it there. Then Alertmanager is killed while
//! the alert fires and restarted empty: the resend brings the alert back.
//! The rules come from the same file's `rule_files` (a glob, relative to
//! the file), as a Prometheus user has them.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{call, find_binary, start_on_free_port, start_platform};

const RULES: &str = r#"
groups:
  - name: test
    rules:
      - alert: HotCpu
        expr: cpu_usage > 80
        labels:
          severity: page
        annotations:
          summary: "cpu_usage at {{ $value }}"
"#;

fn post(addr: SocketAddr, host: &str, value: f64) {
    let body = format!(r#"{{"name":"cpu_usage","value":{value},"labels":{{"host":"{host}"}}}}"#);
    let (status, text) = call(addr, "POST", "/metrics", &body).expect("write");
    assert_eq!(status, 202, "{text}");
}

/// Alertmanager's active alerts.
fn alerts(am: SocketAddr) -> Vec<serde_json::Value> {
    let (status, body) = call(am, "GET", "/api/v2/alerts", "").expect("alertmanager");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for(
    am: SocketAddr,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = alerts(am);
        if done(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: Alertmanager has {list:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn firing_and_resolved_alerts_reach_a_real_alertmanager() {
    let Some(alertmanager) = find_binary("prometheus-alertmanager") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus-alertmanager (see .ci/run)"
        );
        eprintln!("skipping: apt-get install prometheus-alertmanager");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let am_config = dir.path().join("am.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    )
    .expect("am config");
    let spawn_am = |addr: SocketAddr| {
        let mut command = Command::new(&alertmanager);
        command
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=");
        command
    };
    let (am_process, am) = start_on_free_port("alertmanager", "/-/ready", &spawn_am);
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "rule_files: ['rul*.yml']\n\
             alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['{am}']\n"
        ),
    )
    .expect("prometheus.yml");
    let (_platform, addr) = start_platform(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--rules.alert.resend-delay",
            "1s",
        ],
        &dir.path().join("data"),
    );

    let (status, body) = call(addr, "GET", "/api/v1/alertmanagers", "").expect("alertmanagers");
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("\"url\":\"http://{am}/api/v2/alerts\"")),
        "{body}"
    );
    post(addr, "a", 95.0);
    let list = wait_for(am, "firing", |l| l.len() == 1);
    let alert = &list[0];
    assert_eq!(alert["labels"]["alertname"], "HotCpu");
    assert_eq!(alert["labels"]["host"], "a");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "cpu_usage at 95");
    assert_eq!(alert["status"]["state"], "active");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap_or("")
            .ends_with("/api/v1/rules"),
        "{alert}"
    );

    // Alertmanager restarted with nothing in memory: the resend refills it.
    drop(am_process);
    let _ = std::fs::remove_dir_all(dir.path().join("am-data"));
    let (_am_again, am_again) = start_on_free_port_at(am, &spawn_am);
    wait_for(am_again, "sent again after the restart", |l| l.len() == 1);

    post(addr, "a", 10.0);
    wait_for(am_again, "resolved", |l| l.is_empty());

    // Rules are read at start: a reload that finds them changed says so.
    std::fs::write(&rules, RULES.replace("> 80", "> 90")).expect("rules");
    let (status, body) = call(addr, "POST", "/-/reload", "").expect("reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("restart to apply"), "{body}");
}

/// Alertmanager again on `addr`.
fn start_on_free_port_at(
    addr: SocketAddr,
    spawn: &dyn Fn(SocketAddr) -> Command,
) -> (support::Killed, SocketAddr) {
    let child = support::Killed(
        spawn(addr)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("restart alertmanager"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(addr, "GET", "/-/ready", "").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "alertmanager did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}
