//! Dashboards against the real thing: Debian's `prometheus-node-exporter`
//! and Debian's Prometheus, which scrapes it and itself every second and
//! remote-writes everything into the platform (default flags, plus
//! `--query-compat prometheus2`: Debian's Prometheus is 2.42). Then every line
//! of `tests/corpus/dashboards.txt` — node exporter, Prometheus
//! self-monitoring and SLO panels — goes to both at the same instant, as
//! an instant query and as a range query, and the answers must agree:
//! the same label sets, timestamps, and values within 1e-9 relative.
//!
//! This is what a generated data set on a perfect grid cannot show: real
//! scrape timestamps (a few ms of jitter), real counters, real histograms,
//! real NaN-free-or-not summaries, and the remote_write path itself.
//!
//! `.ci/run` installs both packages, so in CI (`CI` set) a missing binary
//! is a failure; elsewhere the test says it is skipping and passes.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use support::{call, encode, find_binary, start_on_free_port, start_platform};

const CORPUS: &str = include_str!("corpus/dashboards.txt");

/// How long data is collected before the queries run.
const COLLECT: Duration = Duration::from_secs(35);

/// One answer, reduced to what must agree.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A refusal: HTTP status and errorType.
    Error(u16, String),
    /// resultType and label set → points `(ms, value as written)`.
    Data(String, BTreeMap<String, Vec<(i64, String)>>),
}

fn ask(addr: SocketAddr, target: &str) -> Answer {
    let (status, body) =
        call(addr, "GET", target, "").unwrap_or_else(|| panic!("{target}: no answer"));
    let json: Json =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: {e}: {body}"));
    if status != 200 {
        return Answer::Error(status, json["errorType"].as_str().unwrap_or("").to_string());
    }
    let data = &json["data"];
    let kind = data["resultType"].as_str().unwrap_or("").to_string();
    let point = |pair: &Json| -> (i64, String) {
        let seconds = pair[0].as_f64().unwrap_or(f64::NAN);
        (
            (seconds * 1000.0).round() as i64,
            pair[1].as_str().unwrap_or("").to_string(),
        )
    };
    let mut series = BTreeMap::new();
    match kind.as_str() {
        "vector" => {
            for sample in data["result"].as_array().into_iter().flatten() {
                series.insert(sample["metric"].to_string(), vec![point(&sample["value"])]);
            }
        }
        "matrix" => {
            for one in data["result"].as_array().into_iter().flatten() {
                let points = one["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(point)
                    .collect();
                series.insert(one["metric"].to_string(), points);
            }
        }
        "scalar" => {
            series.insert("{}".to_string(), vec![point(&data["result"])]);
        }
        _ => {}
    }
    Answer::Data(kind, series)
}

/// Values written as Prometheus writes them agree when equal as text, both
/// NaN, or within 1e-9 relative.
fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-3)
        }
        _ => false,
    }
}

fn agree(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Data(kind_a, a), Answer::Data(kind_b, b)) => {
            kind_a == kind_b
                && a.len() == b.len()
                && a.iter().zip(b).all(|((ka, pa), (kb, pb))| {
                    ka == kb
                        && pa.len() == pb.len()
                        && pa
                            .iter()
                            .zip(pb)
                            .all(|((ta, va), (tb, vb))| ta == tb && same_value(va, vb))
                })
        }
        _ => a == b,
    }
}

#[test]
fn dashboards_answer_as_prometheus_over_real_remote_written_scrapes() {
    let (Some(prometheus), Some(node_exporter)) = (
        find_binary("prometheus"),
        find_binary("prometheus-node-exporter"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus and prometheus-node-exporter (see .ci/run)"
        );
        eprintln!("skipping: apt-get install prometheus prometheus-node-exporter");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let platform_dir = dir.path().join("platform");
    std::fs::create_dir_all(&platform_dir).expect("platform dir");
    let (_platform, platform) = start_platform(&["--query-compat", "prometheus2"], &platform_dir);
    let (_node, node) = start_on_free_port("node exporter", "/metrics", &|addr| {
        let mut command = Command::new(&node_exporter);
        command.arg(format!("--web.listen-address={addr}"));
        command
    });
    let config = dir.path().join("prometheus.yml");
    let (_prometheus, prometheus_addr) = start_on_free_port("prometheus", "/-/ready", &|addr| {
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n\
                 \x20 - job_name: node\n    static_configs:\n      - targets: ['{node}']\n\
                 \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['{addr}']\n\
                 remote_write:\n  - url: http://{platform}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 50ms\n      min_shards: 1\n      max_shards: 1\n    metadata_config:\n      send_interval: 5s\n"
            ),
        )
        .expect("write prometheus.yml");
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

    std::thread::sleep(COLLECT);
    // The instant compared: a few seconds back, so both have every sample
    // up to it — remote_write sends within its 500 ms deadline, in one
    // shard, so in the order Prometheus appended. Checked: the platform's
    // newest `up` of each job is past it.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let at_ms = now_ms - 4_000;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let newest = ask(
            platform,
            &format!(
                "/api/v1/query?query={}&time={}",
                encode("min(timestamp(up))"),
                now_ms as f64 / 1000.0
            ),
        );
        let caught_up = match &newest {
            Answer::Data(_, series) => series.values().flatten().all(|(_, v)| {
                v.parse::<f64>()
                    .is_ok_and(|s| s * 1000.0 > at_ms as f64 + 1_000.0)
            }),
            Answer::Error(..) => false,
        };
        if caught_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "remote_write never caught up: {newest:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let at = format!("{}.{:03}", at_ms / 1000, at_ms % 1000);
    let start = format!("{}.{:03}", (at_ms - 20_000) / 1000, at_ms % 1000);
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut empty = Vec::new();
    for query in CORPUS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let q = encode(query);
        for target in [
            format!("/api/v1/query?query={q}&time={at}"),
            format!("/api/v1/query_range?query={q}&start={start}&end={at}&step=1"),
        ] {
            compared += 1;
            let theirs = ask(prometheus_addr, &target);
            let ours = ask(platform, &target);
            if matches!(&theirs, Answer::Data(_, s) if s.is_empty()) {
                empty.push(query);
            }
            if !agree(&theirs, &ours) {
                failures.push(format!(
                    "--- {target}\n    prometheus: {theirs:?}\n    platform:   {ours:?}"
                ));
            }
        }
    }
    println!(
        "dashboards: {}/{compared} answers agree ({} queries at {at}, range [{start}, {at}] at 1 s)",
        compared - failures.len(),
        compared / 2
    );
    if !empty.is_empty() {
        println!("dashboards: empty on Prometheus' side too: {empty:?}");
    }
    for failure in failures.iter().take(8) {
        let cut: String = failure.chars().take(1_500).collect();
        println!("{cut}");
    }
    assert!(
        failures.is_empty(),
        "{} answers differ (see above)",
        failures.len()
    );

    // Metadata: what Prometheus knows of each family (type, help, unit)
    // from its scrapes, it remote-writes every 5 s; the platform must
    // answer /api/v1/metadata with exactly the same.
    let metadata = |addr: SocketAddr| -> Json {
        let (status, body) = call(addr, "GET", "/api/v1/metadata", "").expect("metadata");
        assert_eq!(status, 200, "{body}");
        let json: Json = serde_json::from_str(&body).expect("metadata JSON");
        json["data"].clone()
    };
    let theirs = metadata(prometheus_addr);
    let families = theirs.as_object().map_or(0, |m| m.len());
    assert!(
        families > 100,
        "Prometheus knows node exporter's families: {families}"
    );
    let ours = metadata(platform);
    let differing: Vec<String> = theirs
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(family, entries)| {
            let mut mine = ours[family.as_str()]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut want = entries.as_array().cloned().unwrap_or_default();
            let key = |j: &Json| j.to_string();
            mine.sort_by_key(key);
            want.sort_by_key(key);
            mine != want
        })
        .map(|(family, entries)| {
            format!(
                "{family}: prometheus {entries}, platform {}",
                ours[family.as_str()]
            )
        })
        .collect();
    println!(
        "dashboards: metadata of {}/{families} families agree",
        families - differing.len()
    );
    assert!(
        differing.is_empty(),
        "metadata differs: {:#?}",
        &differing[..differing.len().min(8)]
    );
}
