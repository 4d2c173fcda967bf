//! Relabelling against the real thing: one `prometheus.yml` — static and
//! file-discovered targets, `relabel_configs` with every action (hashmod's
//! numbers included), `params` turned into `__param_` labels and back,
//! `metric_relabel_configs` — given to Debian's Prometheus and to the
//! platform. Both must list the same active targets (discovered labels,
//! final labels, scrape URL), the same dropped targets, and, after a few
//! scrapes of the same exporter, the same series.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::{call, encode, find_binary, start_on_free_port, start_platform};

fn json(addr: SocketAddr, target: &str) -> serde_json::Value {
    let (status, body) = call(addr, "GET", target, "").expect("call");
    assert_eq!(status, 200, "{target}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Discovered labels as compared: every name, and the values of the
/// labels discovery itself sets (`__*`, `job`). Prometheus 2.42 shows a
/// group label that relabelling overwrote (`env: Prod` lowercased) with its
/// new value — its relabelling builds the result in the input's memory —
/// where the API's own definition, and the platform, show the value before
/// relabelling; the final labels are compared whole.
fn discovered(labels: &serde_json::Value) -> String {
    labels
        .as_object()
        .expect("labels")
        .iter()
        .map(|(name, value)| {
            if name.starts_with("__") || name == "job" {
                format!("{name}={value}")
            } else {
                name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Active targets as (pool, discovered labels, labels, URL) text, and the
/// dropped ones' discovered labels.
fn target_sets(addr: SocketAddr) -> (BTreeSet<String>, BTreeSet<String>) {
    let answer = json(addr, "/api/v1/targets");
    let active = answer["data"]["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["scrapePool"],
                discovered(&t["discoveredLabels"]),
                t["labels"],
                t["scrapeUrl"]
            )
        })
        .collect();
    let dropped = answer["data"]["droppedTargets"]
        .as_array()
        .expect("dropped")
        .iter()
        .map(|t| discovered(&t["discoveredLabels"]))
        .collect();
    (active, dropped)
}

fn series(addr: SocketAddr, selector: &str) -> BTreeSet<String> {
    json(
        addr,
        &format!("/api/v1/series?match[]={}", encode(selector)),
    )["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn relabelling_matches_prometheus() {
    let Some(prometheus) = find_binary("prometheus") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus (see .ci/run)"
        );
        eprintln!("skipping: apt-get install prometheus");
        return;
    };
    let exporter = Exporter::start();
    let target = exporter.addr;
    let dir = tempfile::tempdir().expect("temp dir");
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["{target}"], "labels": {{"zone": "eu-West-1", "rack": "r7"}}}},
                {{"targets": ["127.0.0.1:1"], "labels": {{"zone": "retired"}}}}]"#
        ),
    )
    .expect("sd file");
    // Absolute paths: Prometheus and the platform both resolve from the
    // file's directory, but the discovered `__meta_filepath` must be the
    // same text in both.
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
scrape_configs:\n\
- job_name: app\n  metrics_path: /good\n  params: {{module: [http_2xx, second]}}\n\
\x20 static_configs:\n  - targets: ['{target}', 'db-1.example:9187']\n    labels: {{env: Prod, team: a}}\n\
\x20 relabel_configs:\n\
\x20 - {{source_labels: [env], target_label: env, action: lowercase}}\n\
\x20 - {{source_labels: [team], target_label: team_upper, action: uppercase}}\n\
\x20 - {{source_labels: [__address__], modulus: 1000, target_label: shard, action: hashmod}}\n\
\x20 - {{source_labels: [team], regex: '(.*)', target_label: '${{1}}_host', replacement: 'h_$1'}}\n\
\x20 - {{source_labels: [__address__], regex: 'db-.*', action: drop}}\n\
\x20 - {{source_labels: [team], target_label: team_copy}}\n\
\x20 - {{source_labels: [team], target_label: team_copy, action: keepequal}}\n\
\x20 - {{source_labels: [env], target_label: team, action: dropequal}}\n\
\x20 - {{regex: team_copy, action: labeldrop}}\n\
\x20 - {{regex: '(e.*)', replacement: 'copy_$1', action: labelmap}}\n\
\x20 - {{source_labels: [__param_module], target_label: module}}\n\
\x20 - {{target_label: __param_module, replacement: tcp}}\n\
\x20 - {{source_labels: [env, team], separator: '-', target_label: env_team}}\n\
\x20 - {{regex: '__.*|job|instance|env|copy_env|team|team_upper|shard|.*_host|module|env_team', action: labelkeep}}\n\
\x20 metric_relabel_configs:\n\
\x20 - {{source_labels: [__name__], regex: 'app_debug_.*', action: drop}}\n\
\x20 - {{source_labels: [path], regex: '/(.*)', target_label: route, replacement: 'route_$1'}}\n\
\x20 - {{regex: path, action: labeldrop}}\n\
- job_name: files\n  metrics_path: /good\n  honor_labels: true\n  file_sd_configs:\n  - files: ['{sd}']\n\
\x20 relabel_configs:\n\
\x20 - {{source_labels: [zone], regex: retired, action: drop}}\n\
\x20 - {{source_labels: [zone], target_label: zone, action: lowercase}}\n\
\x20 - {{source_labels: [__meta_filepath], regex: '.*/(.*)', target_label: sd_file}}\n\
\x20 - {{source_labels: [zone], target_label: rack, action: dropequal}}\n",
            sd = sd.display()
        ),
    )
    .expect("write config");
    let (_prometheus, prometheus_addr) = start_on_free_port("prometheus", "/-/ready", &|addr| {
        let mut command = Command::new(&prometheus);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        command
    });
    let (_platform, platform) = start_platform(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--alert-interval",
            "1h",
        ],
        &dir.path().join("platform-data"),
    );

    // Targets: Prometheus discovers file targets within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (theirs, ours) = loop {
        let (theirs, ours) = (target_sets(prometheus_addr), target_sets(platform));
        let complete = theirs.0.len() == 2 && theirs.1.len() == 2;
        if (complete && theirs == ours) || Instant::now() > deadline {
            break (theirs, ours);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        theirs.0, ours.0,
        "active targets: Prometheus (left) and the platform (right)"
    );
    assert_eq!(
        theirs.1, ours.1,
        "dropped targets: Prometheus (left) and the platform (right)"
    );
    assert_eq!(ours.0.len(), 2, "{:?}", ours.0);
    assert_eq!(
        ours.1.len(),
        2,
        "db-1 and the retired file target: {:?}",
        ours.1
    );
    eprintln!(
        "targets agree: {} active, {} dropped",
        ours.0.len(),
        ours.1.len()
    );

    // Series after a few scrapes of the same page.
    std::thread::sleep(Duration::from_secs(3));
    for selector in [r#"{job="app"}"#, r#"{__name__=~"app_.+"}"#] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (theirs, ours) = loop {
            let (theirs, ours) = (
                series(prometheus_addr, selector),
                series(platform, selector),
            );
            if (theirs == ours && !ours.is_empty()) || Instant::now() > deadline {
                break (theirs, ours);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            theirs, ours,
            "{selector}: Prometheus (left) and the platform (right)"
        );
        eprintln!("{selector}: {} series agree", ours.len());
    }
}
