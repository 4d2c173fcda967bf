//! Pull, side by side with the real thing: the same targets — a small
//! `loadgen exporters` fleet (3 targets × 40 series: counters, gauges, a
//! classic histogram) and Debian's `prometheus-node-exporter` — are
//! scraped every second by Debian's Prometheus and by `platform
//! --config.file` with the same prometheus.yml. After ~25 s both are asked,
//! over their HTTP APIs, for the series of the last seconds and for what
//! each target yielded over a 15 s window: the same series (names and
//! labels, `job` and `instance` included, `up` and the `scrape_*`
//! synthetic series too), and per target the same number of scrapes and
//! of samples to within one scrape. Docs chapter 1, "Pull".

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Killed, call, encode, find_binary, start_on_free_port, start_platform};

/// How long both scrape before the comparison, and the window compared.
const COLLECT: Duration = Duration::from_secs(25);
const WINDOW_S: i64 = 15;

/// A series as a set of label pairs, `__name__` included.
type Series = BTreeMap<String, String>;

/// `loadgen`, built beside the platform by `cargo test --workspace`.
fn loadgen_binary() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_platform")).with_file_name("loadgen");
    path.exists().then_some(path)
}

/// Starts the fleet; its child and its targets' addresses.
fn start_fleet(loadgen: &Path, targets: u32, series: u32, dir: &Path) -> (Killed, Vec<String>) {
    let file_sd = dir.join("fleet.json");
    let mut child = Command::new(loadgen)
        .args(["exporters", "--targets", &targets.to_string()])
        .args(["--series", &series.to_string(), "--file-sd"])
        .arg(&file_sd)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn loadgen exporters");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the fleet printed its control address within 10 s");
        if line.starts_with("control listening on ") {
            break;
        }
    }
    let groups: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file_sd).expect("file_sd")).expect("json");
    let addresses = groups[0]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t.as_str().expect("address").to_string())
        .collect();
    (child, addresses)
}

/// The `data` of a successful API answer.
fn data(addr: SocketAddr, target: &str) -> serde_json::Value {
    let (status, body) = call(addr, "GET", target, "").expect("an answer");
    assert_eq!(status, 200, "{addr}{target}: {body}");
    let mut answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    answer["data"].take()
}

/// Every series either side has in `[start, end]`.
fn series(addr: SocketAddr, start: f64, end: f64) -> BTreeSet<Series> {
    let matcher = encode(r#"{__name__=~".+"}"#);
    data(
        addr,
        &format!("/api/v1/series?match[]={matcher}&start={start:.3}&end={end:.3}"),
    )
    .as_array()
    .expect("a list")
    .iter()
    .map(|labels| {
        labels
            .as_object()
            .expect("labels")
            .iter()
            .map(|(n, v)| (n.clone(), v.as_str().expect("value").to_string()))
            .collect()
    })
    .collect()
}

/// `expr`'s instant vector at `at`, by `instance`.
fn by_instance(addr: SocketAddr, expr: &str, at: f64) -> BTreeMap<String, f64> {
    data(
        addr,
        &format!("/api/v1/query?query={}&time={at:.3}", encode(expr)),
    )["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|sample| {
            (
                instance(&sample["metric"]),
                sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("a number"),
            )
        })
        .collect()
}

/// Raw samples stored in the `seconds` before `at`, by `instance`: the
/// range selector itself, counted here, since `count_over_time` drops the
/// name and two series of one target would then clash.
fn samples_by_instance(addr: SocketAddr, seconds: i64, at: f64) -> BTreeMap<String, f64> {
    let expr = format!(r#"{{__name__=~".+"}}[{seconds}s]"#);
    let mut counts = BTreeMap::new();
    let answer = data(
        addr,
        &format!("/api/v1/query?query={}&time={at:.3}", encode(&expr)),
    );
    assert_eq!(answer["resultType"], "matrix", "{addr}: {answer}");
    for series in answer["result"].as_array().expect("a matrix") {
        let samples = series["values"].as_array().map_or(0, Vec::len);
        *counts.entry(instance(&series["metric"])).or_insert(0.0) += samples as f64;
    }
    counts
}

fn instance(labels: &serde_json::Value) -> String {
    labels["instance"]
        .as_str()
        .expect("an instance label")
        .to_string()
}

fn name(series: &Series) -> &str {
    series.get("__name__").map(String::as_str).unwrap_or("")
}

#[test]
fn platform_and_prometheus_scrape_the_same_series_from_the_same_targets() {
    let (Some(prometheus), Some(node_exporter), Some(loadgen)) = (
        find_binary("prometheus"),
        find_binary("prometheus-node-exporter"),
        loadgen_binary(),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus and prometheus-node-exporter and build loadgen"
        );
        eprintln!(
            "skipping: needs apt-get install prometheus prometheus-node-exporter, \
             and loadgen built beside the platform (cargo build -p loadgen)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (_fleet, fleet) = start_fleet(&loadgen, 3, 40, dir.path());
    let (_node, node) = start_on_free_port("node exporter", "/metrics", &|addr| {
        let mut command = Command::new(&node_exporter);
        command.arg(format!("--web.listen-address={addr}"));
        command
    });
    let config = dir.path().join("prometheus.yml");
    let fleet_list: Vec<String> = fleet.iter().map(|a| format!("'{a}'")).collect();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n\
             \x20 - job_name: fleet\n    static_configs:\n      - targets: [{}]\n\
             \x20 - job_name: node\n    static_configs:\n      - targets: ['{node}']\n        labels: {{team: infra}}\n",
            fleet_list.join(", ")
        ),
    )
    .expect("write prometheus.yml");
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
    let config_arg = config.to_str().expect("utf-8 path");
    let (_platform, platform) = start_platform(
        &["--config.file", config_arg, "--alert-interval", "1h"],
        &dir.path().join("platform-data"),
    );
    std::thread::sleep(COLLECT);

    // A moment back, so the scrape in flight at "now" is in neither.
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let at = now_s - 1.5;
    let theirs = series(prometheus_addr, at - 3.0, at);
    let ours = series(platform, at - 3.0, at);
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    println!(
        "series: prometheus {}, platform {}; only in prometheus {}, only in platform {}",
        theirs.len(),
        ours.len(),
        missing.len(),
        extra.len()
    );
    for one in missing.iter().take(10) {
        println!("  only in prometheus: {one:?}");
    }
    for one in extra.iter().take(10) {
        println!("  only in platform:   {one:?}");
    }
    assert!(missing.is_empty() && extra.is_empty(), "the series differ");
    // What was compared is what was meant: every target, its own series
    // and the synthetic ones, on both sides.
    for instance in fleet.iter().cloned().chain([node.to_string()]) {
        let of_target: Vec<&Series> = theirs
            .iter()
            .filter(|s| s.get("instance") == Some(&instance))
            .collect();
        for synthetic in [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            assert!(
                of_target.iter().any(|s| name(s) == synthetic),
                "{instance}: no {synthetic}"
            );
        }
        let own = of_target
            .iter()
            .filter(|s| !name(s).starts_with("scrape_") && name(s) != "up")
            .count();
        let job = if fleet.contains(&instance) {
            "fleet"
        } else {
            "node"
        };
        assert!(of_target.iter().all(|s| s["job"] == job));
        if job == "fleet" {
            assert_eq!(own, 40, "{instance}: the fleet's 40 series");
        } else {
            assert!(own > 100, "{instance}: node_exporter's series: {own}");
            assert!(of_target.iter().all(|s| s["team"] == "infra"));
        }
    }

    // Per target over the window: scrapes (samples of `up`) and samples
    // stored, each within one scrape of Prometheus' figure.
    let scrapes = format!("count_over_time(up[{WINDOW_S}s])");
    let per_scrape = by_instance(prometheus_addr, "scrape_samples_scraped", at);
    let (their_scrapes, our_scrapes) = (
        by_instance(prometheus_addr, &scrapes, at),
        by_instance(platform, &scrapes, at),
    );
    let (their_samples, our_samples) = (
        samples_by_instance(prometheus_addr, WINDOW_S, at),
        samples_by_instance(platform, WINDOW_S, at),
    );
    for (instance, page) in &per_scrape {
        let (theirs, ours) = (their_scrapes[instance], our_scrapes[instance]);
        println!(
            "{instance}: scrapes prometheus {theirs} platform {ours}, samples prometheus {} platform {}",
            their_samples[instance], our_samples[instance]
        );
        assert!(
            theirs >= (WINDOW_S - 2) as f64 && (theirs - ours).abs() <= 1.0,
            "{instance}: {theirs} scrapes by Prometheus, {ours} by the platform in {WINDOW_S} s"
        );
        // A scrape brings the page and the five synthetic series.
        let one_scrape = page + 5.0;
        assert!(
            (their_samples[instance] - our_samples[instance]).abs() <= one_scrape,
            "{instance}: {} samples in Prometheus, {} in the platform (a scrape is {one_scrape})",
            their_samples[instance],
            our_samples[instance]
        );
    }
    assert_eq!(per_scrape.len(), 4, "every target answered: {per_scrape:?}");
}
