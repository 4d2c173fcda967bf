//! Recording rules end to end, against Prometheus' own rule engine.
//!
//! The platform (the real binary, every slot crafted, craft 4 with
//! Prometheus 2.x's closed windows) runs a rule file with recording and
//! alerting rules in one group — a rate per job, a ratio with a label, a
//! record over a record, an alert on a record — over counters pushed as
//! line protocol with real timestamps (ten minutes of history and a
//! minute ahead of the clock, so each evaluation sees new samples arrive
//! in its window). One job's counters stop, so its records go stale
//! while the test watches.
//!
//! The oracle is `promtool test rules` from Debian's Prometheus 2.42:
//! Prometheus' rules manager, PromQL engine and TSDB head, evaluating the
//! same file over the same samples. The samples are laid out so that the
//! platform's evaluation times fall on promtool's (`interval` multiples
//! from the data's first sample), and the unit-test file this test writes
//! asserts, at every evaluation the platform ran after the data was
//! stored, exactly the values the platform recorded (read back through
//! `/api/v1/query`), and at the last one the alerts the platform fires.
//! promtool compares floats bit for bit: a pass means every recorded value
//! is identical to Prometheus', label sets and stale series included.
//!
//! `promtool check rules` must accept the file too, and a file of broken
//! recording rules must be refused by both, problem for problem.
//!
//! `.ci/run` installs Prometheus, so in CI (`CI` set) a missing promtool is
//! a failure; elsewhere the test says it is skipping and passes.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{call, encode, find_binary, start_platform};

/// The group's interval, and promtool's `evaluation_interval`.
const INTERVAL_MS: i64 = 2_000;
/// The samples' spacing: a scrape every 5 s.
const SCRAPE_MS: i64 = 5_000;
/// History before the platform's first evaluation seen by the test.
const HISTORY_MS: i64 = 600_000;
/// Samples ahead of that evaluation.
const AHEAD_MS: i64 = 60_000;
/// How long the test watches the platform evaluate once the data is in.
const WATCH: Duration = Duration::from_secs(16);

const RULES: &str = r#"groups:
  - name: requests
    interval: 2s
    rules:
      - record: job:requests:rate1m
        expr: sum by (job) (rate(requests_total[1m]))
      - record: job:request_errors:ratio_rate1m
        expr: sum by (job) (rate(request_errors_total[1m])) / sum by (job) (rate(requests_total[1m]))
        labels:
          team: sre
      - record: requests:rate1m
        expr: sum without (job) (job:requests:rate1m)
        labels:
          scope: all
      - alert: HighRequestRate
        expr: job:requests:rate1m > 1
        labels:
          severity: page
"#;

/// The records the comparison reads back.
const RECORDS: [&str; 3] = [
    "job:requests:rate1m",
    "job:request_errors:ratio_rate1m",
    "requests:rate1m",
];

/// Recording rules promtool refuses, one problem each but the labels
/// rule (two).
const BROKEN: &str = r#"groups:
  - name: g
    rules:
      - record: job:x:sum
        alert: Both
        expr: sum(x)
      - record: "job-x-sum"
        expr: sum(x)
      - record: job:x:for
        expr: sum(x)
        for: 5m
      - record: job:x:keep
        expr: sum(x)
        keep_firing_for: 1m
      - record: job:x:annotated
        expr: sum(x)
        annotations: { summary: "no" }
      - record: job:x:labels
        expr: sum(x)
        labels: { __name__: other, 1bad: x }
      - record: job:x:noexpr
      - record: job:x:badexpr
        expr: sum(x
"#;

fn promtool() -> Option<PathBuf> {
    let found = find_binary("promtool");
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install promtool (see .ci/run)"
        );
        eprintln!("skipping: no promtool binary (apt-get install prometheus)");
    }
    found
}

/// One counter: name, labels, `(timestamp, value)` every [`SCRAPE_MS`].
struct Counter {
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
    samples: Vec<(i64, f64)>,
}

/// A counter to draw: name, labels, the range of its increments per
/// scrape, its last sample's time.
type Shape = (
    &'static str,
    [(&'static str, &'static str); 2],
    (u64, u64),
    i64,
);

/// Integer counters (exact in every float format on the way), increments
/// drawn from a fixed LCG so each rate window differs from the last.
fn counters(start_ms: i64, end_ms: i64, batch_end_ms: i64) -> Vec<Counter> {
    let mut seed: u64 = 0x5eed;
    let mut draw = |low: u64, high: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        low + (seed >> 33) % (high - low + 1)
    };
    let shapes: [Shape; 7] = [
        (
            "requests_total",
            [("job", "api"), ("instance", "a")],
            (10, 30),
            end_ms,
        ),
        (
            "requests_total",
            [("job", "api"), ("instance", "b")],
            (5, 25),
            end_ms,
        ),
        (
            "requests_total",
            [("job", "web"), ("instance", "a")],
            (0, 3),
            end_ms,
        ),
        (
            "requests_total",
            [("job", "batch"), ("instance", "a")],
            (40, 60),
            batch_end_ms,
        ),
        (
            "request_errors_total",
            [("job", "api"), ("instance", "a")],
            (0, 3),
            end_ms,
        ),
        (
            "request_errors_total",
            [("job", "api"), ("instance", "b")],
            (0, 2),
            end_ms,
        ),
        (
            "request_errors_total",
            [("job", "web"), ("instance", "a")],
            (0, 1),
            end_ms,
        ),
    ];
    shapes
        .iter()
        .map(|(name, labels, (low, high), last_ms)| {
            let mut value = 1_000.0;
            let mut samples = Vec::new();
            let mut t = start_ms;
            while t <= *last_ms {
                samples.push((t, value));
                value += draw(*low, *high) as f64;
                t += SCRAPE_MS;
            }
            Counter {
                name,
                labels: labels.to_vec(),
                samples,
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn get(addr: SocketAddr, target: &str) -> Value {
    let (status, body) = call(addr, "GET", target, "").expect("platform answers");
    assert_eq!(status, 200, "{target}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `2026-12-08T00:14:03.250Z` (the API's form) as ms since the epoch;
/// `None` for Go's zero time (never evaluated) or anything else.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, milli) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    if year < 1970 || !text.ends_with('Z') {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + milli)
}

#[test]
fn the_api_time_form_reads_back() {
    assert_eq!(
        parse_rfc3339_ms("2023-11-14T22:13:20.000Z"),
        Some(1_700_000_000_000)
    );
    assert_eq!(
        parse_rfc3339_ms("2026-12-08T00:14:03.250Z"),
        Some(1_796_688_843_250)
    );
    assert_eq!(parse_rfc3339_ms("0001-01-01T00:00:00Z"), None);
}

/// The group's last evaluation time, once it has one.
fn last_evaluation(addr: SocketAddr) -> Option<i64> {
    let rules = get(addr, "/api/v1/rules");
    parse_rfc3339_ms(rules["data"]["groups"][0]["lastEvaluation"].as_str()?)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `name{a="1",b="2"}` from an API `metric` object (labels sorted).
fn series_text(metric: &Value) -> String {
    let labels: BTreeMap<&str, &str> = metric
        .as_object()
        .expect("metric")
        .iter()
        .filter(|(name, _)| *name != "__name__")
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or("")))
        .collect();
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    format!(
        "{}{{{}}}",
        metric["__name__"].as_str().unwrap_or(""),
        inner.join(",")
    )
}

fn duration_text(ms: i64) -> String {
    assert_eq!(ms % 1_000, 0, "evaluation times fall on whole seconds");
    format!("{}s", ms / 1_000)
}

#[test]
fn recorded_series_are_the_ones_prometheus_records_from_the_same_samples() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, RULES).expect("write rules");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules_path)
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let rules_arg = rules_path.to_str().expect("utf-8 path");
    let (_platform, addr) = start_platform(
        &[
            "--rules",
            rules_arg,
            // Debian's Prometheus is 2.42: windows closed on the left.
            "--query-compat",
            "prometheus2",
            "--alert-interval",
            "250ms",
        ],
        &dir.path().join("data"),
    );
    // The platform's slots are its start + k × 2 s; the data starts on
    // one of them, so promtool's evaluations (from the data's first
    // sample, every 2 s) land on the same instants.
    let mut first_slot = None;
    wait_for("the first evaluation", Duration::from_secs(10), || {
        first_slot = last_evaluation(addr);
        first_slot.is_some()
    });
    let slot = first_slot.expect("a slot");
    let origin = slot - HISTORY_MS;
    assert_eq!((slot - origin) % INTERVAL_MS, 0);
    // batch stops 40 s before the slot: its 1 m rate ends ~15 s later,
    // while the test watches, and its records go stale.
    let series = counters(origin, slot + AHEAD_MS, slot - 40_000);

    let mut body = String::new();
    let mut total = 0;
    for counter in &series {
        let mut head = counter.name.to_string();
        for (name, value) in &counter.labels {
            let _ = write!(head, ",{name}={value}");
        }
        for (t, value) in &counter.samples {
            let _ = writeln!(body, "{head} value={value} {t}");
            total += 1;
        }
    }
    let (status, reply) =
        call(addr, "POST", "/write?precision=ms", &body).expect("write line protocol");
    assert!(status == 204 || status == 202, "write: {status} {reply}");
    wait_for("every sample stored", Duration::from_secs(20), || {
        let counted: usize = ["requests_total", "request_errors_total"]
            .iter()
            .map(|name| {
                let (_, body) =
                    call(addr, "GET", &format!("/query?name={name}"), "").expect("seed query");
                serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.as_array().map(Vec::len))
                    .unwrap_or(0)
            })
            .sum();
        counted == total
    });
    let stored_at = now_ms();
    std::thread::sleep(WATCH);
    let last = last_evaluation(addr).expect("evaluated");
    let alerts = get(addr, "/api/v1/alerts");

    // Every evaluation after the data was stored saw all of it: those are
    // compared. The rate of job "api" is recorded at each of them.
    let raw = get(
        addr,
        &format!(
            "/api/v1/query?query={}&time={}",
            encode("job:requests:rate1m{job=\"api\"}[1m]"),
            last as f64 / 1000.0
        ),
    );
    let times: Vec<i64> = raw["data"]["result"][0]["values"]
        .as_array()
        .expect("recorded samples")
        .iter()
        .filter_map(|pair| pair[0].as_f64())
        .map(|seconds| (seconds * 1000.0).round() as i64)
        .filter(|t| *t > stored_at && *t <= last)
        .collect();
    assert!(
        times.len() >= 5,
        "at least five evaluations after the data was stored: {times:?}"
    );

    let mut test = String::new();
    let _ = writeln!(
        test,
        "rule_files: [rules.yml]\nevaluation_interval: 2s\ntests:\n  - interval: 5s\n    input_series:"
    );
    for counter in &series {
        let labels: Vec<String> = counter
            .labels
            .iter()
            .map(|(n, v)| format!("{n}=\"{v}\""))
            .collect();
        let values: Vec<String> = counter
            .samples
            .iter()
            .map(|(_, v)| format!("{v}"))
            .collect();
        let _ = writeln!(
            test,
            "      - series: '{}{{{}}}'\n        values: '{}'",
            counter.name,
            labels.join(","),
            values.join(" ")
        );
    }
    let _ = writeln!(test, "    promql_expr_test:");
    let (mut compared, mut batch_seen, mut batch_gone) = (0, false, false);
    for &t in &times {
        for record in RECORDS {
            let answer = get(
                addr,
                &format!(
                    "/api/v1/query?query={}&time={}",
                    encode(record),
                    t as f64 / 1000.0
                ),
            );
            let result = answer["data"]["result"].as_array().expect("vector");
            let _ = writeln!(
                test,
                "      - expr: '{record}'\n        eval_time: {}\n        exp_samples:",
                duration_text(t - origin)
            );
            if result.is_empty() {
                test.push_str("          []\n");
            }
            for sample in result {
                let labels = series_text(&sample["metric"]);
                if record == RECORDS[0] && labels.contains("job=\"batch\"") {
                    batch_seen = true;
                }
                let value: f64 = sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("a value");
                // `{:?}` is the shortest text that reads back as the same
                // float: promtool compares bit for bit.
                let _ = writeln!(
                    test,
                    "          - labels: '{labels}'\n            value: {value:?}"
                );
                compared += 1;
            }
            if record == RECORDS[0]
                && batch_seen
                && !result
                    .iter()
                    .any(|s| series_text(&s["metric"]).contains("batch"))
            {
                batch_gone = true;
            }
        }
    }
    let firing: Vec<&Value> = alerts["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["state"] == "firing")
        .collect();
    let final_time = *times.last().expect("a time");
    let _ = writeln!(
        test,
        "    alert_rule_test:\n      - eval_time: {}\n        alertname: HighRequestRate\n        exp_alerts:",
        duration_text(final_time - origin)
    );
    for alert in &firing {
        let mut labels: Vec<String> = alert["labels"]
            .as_object()
            .expect("labels")
            .iter()
            .filter(|(name, _)| *name != "alertname")
            .map(|(n, v)| format!("{n}: {}", v.as_str().unwrap_or("")))
            .collect();
        labels.sort();
        let _ = writeln!(test, "          - exp_labels: {{ {} }}", labels.join(", "));
    }
    let test_path = dir.path().join("recording_test.yml");
    std::fs::write(&test_path, &test).expect("write the unit test");
    let run = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_path)
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // A failure is read back: each failing case's expected and got
    // vectors must hold the same series, and values may differ only in
    // the last bits (float sums in another order: Prometheus adds a
    // group's series in its head's order, craft 4 in label order).
    let (explained, worst) = match run.status.success() {
        true => (0, 0.0),
        false => explain_rounding(&output).unwrap_or_else(|why| {
            panic!(
                "promtool disagrees with the platform: {why}\n{output}\n--- the unit test:\n{test}"
            )
        }),
    };
    println!(
        "promtool test rules over {} evaluations ({} .. {} ms): {} of {compared} recorded samples bit-identical to Prometheus 2.42's, {explained} within {worst:.1e} relative (summation order); {} firing alerts identical; batch recorded then stale while watched: {}",
        times.len(),
        times[0],
        final_time,
        compared - explained,
        firing.len(),
        batch_seen && batch_gone,
    );
    assert!(
        explained * 10 <= compared,
        "rounding differences in more than a tenth of the samples"
    );
    assert!(
        compared >= times.len() * 4,
        "api, web and the ratios each time"
    );
    assert_eq!(
        firing.len(),
        1,
        "api fires, web is too slow, batch went stale"
    );
    if batch_seen {
        assert!(batch_gone, "batch's record went stale while watched");
    }
}

/// Relative difference allowed between two sums of the same floats.
const SUMMATION_TOLERANCE: f64 = 1e-12;

/// promtool's failures (`exp: {…} 9.5E+00, {…} 1E+00` / `got: …` pairs),
/// when every one is the same series with values within
/// [`SUMMATION_TOLERANCE`]: how many samples differed, and the largest
/// relative difference.
///
/// # Errors
/// The first difference that is not rounding (a series missing or extra,
/// another value, an alert failure, a promtool error).
fn explain_rounding(output: &str) -> Result<(usize, f64), String> {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    let (mut differing, mut worst) = (0, 0.0f64);
    let mut pairs = 0;
    for (index, line) in lines.iter().enumerate() {
        let Some(expected) = line.strip_prefix("exp: ") else {
            continue;
        };
        let got = lines
            .get(index + 1)
            .and_then(|l| l.strip_prefix("got: "))
            .ok_or("an exp: line without its got: line")?;
        let (expected, got) = (promtool_vector(expected)?, promtool_vector(got)?);
        if expected.len() != got.len() || expected.keys().ne(got.keys()) {
            return Err(format!("other series: {expected:?} against {got:?}"));
        }
        for (series, want) in &expected {
            let have = got[series];
            let relative = (want - have).abs() / want.abs().max(have.abs()).max(f64::MIN_POSITIVE);
            if relative > SUMMATION_TOLERANCE {
                return Err(format!("{series}: {want} against {have}"));
            }
            if want.to_bits() != have.to_bits() {
                differing += 1;
                worst = worst.max(relative);
            }
        }
        pairs += 1;
    }
    if pairs == 0 || output.contains("alertname") {
        return Err("not a value difference".into());
    }
    Ok((differing, worst))
}

/// `{__name__="x", job="a"} 1.5E+00, {…} 2E+00` as series → value.
fn promtool_vector(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut vector = BTreeMap::new();
    let mut rest = text.trim();
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| format!("unclosed series in {text:?}"))?;
        let series = rest[open..=close].to_string();
        let after = rest[close + 1..].trim_start();
        let end = after.find(", {").unwrap_or(after.len());
        let value: f64 = after[..end]
            .trim()
            .parse()
            .map_err(|_| format!("no value after {series} in {text:?}"))?;
        vector.insert(series, value);
        rest = &after[end..];
    }
    Ok(vector)
}

#[test]
fn broken_recording_rules_are_refused_by_both_problem_for_problem() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.yml");
    std::fs::write(&path, BROKEN).expect("write");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool");
    assert!(!check.status.success());
    let promtool_says = String::from_utf8_lossy(&check.stderr).into_owned()
        + &String::from_utf8_lossy(&check.stdout);
    let promtool_problems = promtool_says
        .lines()
        .filter(|l| l.contains("group \"g\", rule"))
        .count();
    let platform = run_platform_briefly(&path, &dir.path().join("data"));
    assert!(
        platform.contains("has 9 problems"),
        "the platform: {platform}"
    );
    let platform_problems = platform
        .lines()
        .filter(|l| l.contains("broken.yml:") && l.contains("group \"g\", rule"))
        .count();
    assert_eq!(
        (platform_problems, promtool_problems),
        (9, 9),
        "promtool: {promtool_says}\nplatform: {platform}"
    );
    // Both name the rule and the line of its first key.
    for (line, rule) in [(4, "Both"), (9, "job:x:for"), (22, "job:x:badexpr")] {
        assert!(
            platform.contains(&format!("broken.yml:{line}: group \"g\", rule \"{rule}\"")),
            "{platform}"
        );
    }
}

/// Starts the platform on `rules`, which must refuse the start; what it
/// printed.
fn run_platform_briefly(rules: &Path, data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["--port", "0", "--host", "127.0.0.1", "--rules"])
        .arg(rules)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run platform");
    assert!(!output.status.success(), "started with broken rules");
    String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
}
