//! Prometheus' own command-line client against the platform: `promtool
//! query series|labels|instant|range http://127.0.0.1:PORT …` (Debian's
//! `prometheus` package) reads craft 4's Prometheus HTTP API unchanged.
//! Docs chapter 4, "Speaking Prometheus".
//!
//! `.ci/run` installs Prometheus, so in CI (`CI` set) a missing promtool
//! is a failure; elsewhere the test says it is skipping and passes.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{call, start_platform};

fn promtool() -> Option<&'static str> {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|candidate| std::path::Path::new(candidate).exists())
}

/// `promtool query <args>`: its stdout, or a panic with its stderr.
fn run_promtool(promtool: &str, args: &[&str]) -> String {
    let output = Command::new(promtool)
        .arg("query")
        .args(args)
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "promtool query {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A platform with craft 4 in slot 4 and two CPU series written through
/// `POST /metrics`: host a at `end - 60 s`, `end - 30 s`, `end` (values 1,
/// 2, 3), host b at `end` (10.5). Returns `end` in whole unix seconds, a
/// few seconds in the past so "now" queries see it.
fn platform_with_samples(dir: &std::path::Path) -> (support::Killed, SocketAddr, i64) {
    let (platform, addr) = start_platform(&["--query", "craft4"], dir);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let end = i64::try_from(now_s).expect("seconds") - 5;
    let samples = [
        ("a", 1.0, end - 60),
        ("a", 2.0, end - 30),
        ("a", 3.0, end),
        ("b", 10.5, end),
    ];
    for (host, value, t) in samples {
        let body = format!(
            r#"{{"name":"cpu_usage","value":{value},"timestamp":{},"labels":{{"host":"{host}"}}}}"#,
            t * 1000
        );
        let (status, reply) = call(addr, "POST", "/metrics", &body).expect("write");
        assert_eq!(status, 202, "{reply}");
    }
    // Accepted is not yet stored: wait for the storage consumer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = call(addr, "GET", "/query?name=cpu_usage", "").expect("query");
        let stored: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if stored.as_array().map(Vec::len) == Some(samples.len()) {
            break;
        }
        assert!(Instant::now() < deadline, "samples not stored: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (platform, addr, end)
}

fn skip_without_promtool() -> Option<&'static str> {
    let found = promtool();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus, which has promtool (see .ci/run)"
        );
        eprintln!("skipping: no promtool (apt-get install prometheus)");
    }
    found
}

#[test]
fn promtool_lists_series_and_label_values() {
    let Some(promtool) = skip_without_promtool() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (platform, addr, _) = platform_with_samples(dir.path());
    let server = format!("http://{addr}");

    let series = run_promtool(promtool, &["series", "--match=cpu_usage", &server]);
    assert_eq!(
        series,
        "{__name__=\"cpu_usage\", host=\"a\"}\n{__name__=\"cpu_usage\", host=\"b\"}\n"
    );
    let values = run_promtool(promtool, &["labels", &server, "host"]);
    assert_eq!(values, "a\nb\n");
    let names = run_promtool(promtool, &["labels", &server, "__name__"]);
    assert!(names.lines().any(|l| l == "cpu_usage"), "{names}");
    drop(platform);
}

#[test]
fn promtool_runs_instant_and_range_queries() {
    let Some(promtool) = skip_without_promtool() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (platform, addr, end) = platform_with_samples(dir.path());
    let server = format!("http://{addr}");

    // At "now", a few seconds after the last samples: Prometheus' 5-minute
    // lookback finds them.
    let instant = run_promtool(promtool, &["instant", &server, "cpu_usage"]);
    assert!(
        instant.contains("cpu_usage{host=\"a\"} => 3 @["),
        "{instant}"
    );
    assert!(
        instant.contains("cpu_usage{host=\"b\"} => 10.5 @["),
        "{instant}"
    );
    let summed = run_promtool(
        promtool,
        &[
            "instant",
            &format!("--time={end}"),
            &server,
            "sum(cpu_usage)",
        ],
    );
    assert_eq!(summed.trim(), format!("{{}} => 13.5 @[{end}]"));

    let range = run_promtool(
        promtool,
        &[
            "range",
            &format!("--start={}", end - 60),
            &format!("--end={end}"),
            "--step=30s",
            &server,
            "cpu_usage{host=\"a\"}",
        ],
    );
    assert_eq!(
        range.trim(),
        format!(
            "cpu_usage{{host=\"a\"}} =>\n1 @[{}]\n2 @[{}]\n3 @[{end}]",
            end - 60,
            end - 30
        )
    );
    // The range query went through craft 4's result cache, whose counters
    // the server's own `/metrics` shows after the ingestion server's.
    let (status, metrics) = call(addr, "GET", "/metrics", "").expect("metrics");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains("ingest_requests_total"),
        "the ingestion server's own counters: {metrics}"
    );
    let requests: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("craft4_query_cache_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(requests, 1, "one range query through the cache: {metrics}");
    drop(platform);
}
