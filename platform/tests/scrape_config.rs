//! A `prometheus.yml` as people write them, run by the real binary against
//! targets that behave and targets that do not: relabelling with every
//! action, metric relabelling, `honor_labels` on a clash, `file_sd` files
//! changing under the running server, a target slower than its timeout, one
//! that answers garbage, one over `body_size_limit`, one over
//! `sample_limit`; then `POST /-/reload` and SIGHUP, with a broken file
//! (refused, the old configuration runs on) and a good one (applied, the
//! unchanged target's loop never missing a beat).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::vector::{query, value_is, wait_until};
use support::{call, encode, start_platform_with_output};

/// `/api/v1/targets`' active targets of `pool`.
fn targets(addr: SocketAddr, pool: &str) -> Vec<serde_json::Value> {
    let (status, body) = call(
        addr,
        "GET",
        &format!("/api/v1/targets?scrapePool={pool}"),
        "",
    )
    .expect("targets");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    answer["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for_error(addr: SocketAddr, pool: &str, phrase: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = targets(addr, pool);
        let error = list
            .first()
            .and_then(|t| t["lastError"].as_str())
            .unwrap_or("")
            .to_string();
        if error.contains(phrase) {
            assert_eq!(list[0]["health"], "down");
            return error;
        }
        assert!(
            Instant::now() < deadline,
            "{pool}: lastError {error:?} never said {phrase:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn relabelling_file_sd_limits_and_misbehaving_targets() {
    let exporter = Exporter::start();
    let target = exporter.addr;
    let dir = tempfile::tempdir().expect("temp dir");
    let sd = dir.path().join("sd");
    std::fs::create_dir(&sd).expect("sd dir");
    std::fs::write(
        sd.join("one.json"),
        format!(r#"[{{"targets": ["{target}"], "labels": {{"src": "file1"}}}}]"#),
    )
    .expect("sd file");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
scrape_configs:\n\
- job_name: app\n  metrics_path: /good\n\
\x20 static_configs:\n  - targets: ['{target}']\n    labels: {{env: Prod, team: a}}\n\
\x20 - targets: ['ignored.invalid:1']\n    labels: {{env: test}}\n\
\x20 relabel_configs:\n\
\x20 - {{source_labels: [env], target_label: env, action: lowercase}}\n\
\x20 - {{source_labels: [env], regex: prod, action: keep}}\n\
\x20 - {{source_labels: [team], target_label: team_upper, action: uppercase}}\n\
\x20 - {{source_labels: [__address__], modulus: 4, target_label: __tmp_shard, action: hashmod}}\n\
\x20 - {{source_labels: [__tmp_shard], target_label: shard}}\n\
\x20 - {{source_labels: [team], target_label: team_copy}}\n\
\x20 - {{source_labels: [team], target_label: team_copy, action: keepequal}}\n\
\x20 - {{source_labels: [env], target_label: team, action: dropequal}}\n\
\x20 - {{regex: team_copy, action: labeldrop}}\n\
\x20 - {{regex: (env), replacement: environment, action: labelmap}}\n\
\x20 - {{regex: '__.*|job|instance|env|environment|team|team_upper|shard', action: labelkeep}}\n\
\x20 metric_relabel_configs:\n\
\x20 - {{source_labels: [__name__], regex: 'app_debug_.*', action: drop}}\n\
\x20 - {{source_labels: [path], regex: '/(.*)', target_label: route, replacement: 'route_$1'}}\n\
- job_name: honored\n  metrics_path: /good\n  honor_labels: true\n  static_configs:\n  - targets: ['{target}']\n\
- job_name: files\n  metrics_path: /good\n  file_sd_configs:\n  - files: ['sd/*.json']\n\
- job_name: slow\n  metrics_path: /slow\n  scrape_timeout: 500ms\n  static_configs:\n  - targets: ['{target}']\n\
- job_name: garbage\n  metrics_path: /garbage\n  static_configs:\n  - targets: ['{target}']\n\
- job_name: big\n  metrics_path: /big\n  body_size_limit: 1MB\n  static_configs:\n  - targets: ['{target}']\n\
- job_name: many\n  metrics_path: /many\n  sample_limit: 100\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .expect("write config");
    let (_platform, addr, _output) = start_platform_with_output(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--alert-interval",
            "1h",
        ],
        &dir.path().join("data"),
    );

    // Relabelled target labels and metric relabelling.
    let requests = wait_until(
        addr,
        r#"app_requests_total{job="app"}"#,
        "app scraped",
        |a| a.len() == 2,
    );
    for (labels, _) in &requests {
        assert_eq!(labels["env"], "prod", "{labels}");
        assert_eq!(labels["environment"], "prod", "{labels}");
        assert_eq!(labels["team"], "a", "{labels}");
        assert_eq!(labels["team_upper"], "A", "{labels}");
        assert_eq!(
            labels["exported_job"], "inner",
            "a clash without honor_labels"
        );
        assert_eq!(labels["instance"], target.to_string());
        assert!(labels.get("team_copy").is_none(), "{labels}");
        let shard: u32 = labels["shard"]
            .as_str()
            .expect("shard")
            .parse()
            .expect("number");
        assert!(shard < 4);
        let route = labels["route"].as_str().expect("route");
        assert!(route == "route_a" || route == "route_b", "{labels}");
    }
    assert!(
        query(addr, r#"app_debug_info{job="app"}"#).is_empty(),
        "dropped by metric relabelling"
    );
    wait_until(
        addr,
        r#"app_debug_info{job="honored"}"#,
        "kept where no rule drops it",
        |a| a.len() == 1,
    );
    wait_until(
        addr,
        r#"scrape_samples_scraped{job="app"}"#,
        "scraped count",
        value_is("4"),
    );
    wait_until(
        addr,
        r#"scrape_samples_post_metric_relabeling{job="app"}"#,
        "kept count",
        value_is("3"),
    );
    let (_, body) = call(addr, "GET", "/api/v1/targets?state=dropped", "").expect("dropped");
    assert!(
        body.contains("ignored.invalid:1"),
        "the env=test target dropped: {body}"
    );
    assert!(!body.contains("activeTargets\":[{"), "{body}");

    // honor_labels: the page's job wins.
    let honored = wait_until(addr, r#"app_requests_total{job="inner"}"#, "honored", |a| {
        a.len() == 2
    });
    assert!(honored[0].0.get("exported_job").is_none());

    // file_sd: the file's labels, then a change under the running server.
    wait_until(
        addr,
        r#"up{job="files",src="file1"}"#,
        "from the file",
        value_is("1"),
    );
    let rewritten = sd.join("one.json.tmp");
    std::fs::write(
        &rewritten,
        format!(r#"[{{"targets": ["{target}"], "labels": {{"src": "file2"}}}}]"#),
    )
    .expect("rewrite");
    std::fs::rename(&rewritten, sd.join("one.json")).expect("rename");
    wait_until(
        addr,
        r#"up{job="files",src="file2"}"#,
        "the changed file",
        value_is("1"),
    );
    wait_until(
        addr,
        r#"up{job="files",src="file1"}"#,
        "the old target's series end",
        |a| a.is_empty(),
    );

    // Misbehaving targets fail their scrape with a clear error.
    let slow = wait_for_error(addr, "slow", "timeout");
    eprintln!("slow: {slow}");
    wait_until(addr, r#"up{job="slow"}"#, "slow is down", value_is("0"));
    assert!(wait_for_error(addr, "garbage", "does not parse").contains("line 1"));
    wait_for_error(addr, "big", "body size limit exceeded");
    wait_for_error(
        addr,
        "many",
        "sample limit exceeded: 200 samples, the limit is 100",
    );
    assert!(
        query(addr, "many_series").is_empty(),
        "nothing of a failed scrape is stored"
    );
    assert!(query(addr, "big_series").is_empty());

    // Each target's families, as its page described them.
    let (status, body) = call(
        addr,
        "GET",
        &format!(
            "/api/v1/targets/metadata?match_target={}&metric=app_requests_total",
            encode(r#"{job="app"}"#)
        ),
        "",
    )
    .expect("targets metadata");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let list = answer["data"].as_array().expect("list");
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["type"], "counter");
    assert_eq!(list[0]["help"], "Requests served.");
    assert_eq!(list[0]["target"]["job"], "app");
    let (status, _) = call(
        addr,
        "GET",
        &format!("/api/v1/targets/metadata?match_target={}", encode("up{")),
        "",
    )
    .expect("bad selector");
    assert_eq!(status, 400);
}

#[test]
fn reload_by_http_and_sighup_keeps_the_old_file_on_error_and_loses_no_scrape() {
    let exporter = Exporter::start();
    let target = exporter.addr;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    let file = |jobs: &[&str]| {
        let mut text = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
        for job in jobs {
            text.push_str(&format!(
                "- job_name: {job}\n  metrics_path: /{job}\n  static_configs:\n  - targets: ['{target}']\n"
            ));
        }
        text
    };
    std::fs::write(&config, file(&["keep", "first"])).expect("write");
    let (platform, addr, _output) = start_platform_with_output(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--alert-interval",
            "1h",
        ],
        &dir.path().join("data"),
    );
    wait_until(addr, r#"up{job="first"}"#, "first", value_is("1"));
    wait_until(addr, r#"up{job="keep"}"#, "keep", value_is("1"));

    // A broken file: refused with the line and the key, nothing changes.
    std::fs::write(
        &config,
        "scrape_configs:\n- job_name: keep\n  scrape_interval: soon\n",
    )
    .expect("break");
    let (status, body) = call(addr, "POST", "/-/reload", "").expect("reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("scrape_configs[0] (keep).scrape_interval") && body.contains("\"error\""),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(1_500));
    wait_until(
        addr,
        r#"up{job="first"}"#,
        "the old file runs on",
        value_is("1"),
    );

    // A good file: the new job starts, the removed one ends, `keep` goes on.
    let before = Instant::now();
    std::fs::write(&config, file(&["keep", "second"])).expect("rewrite");
    let (status, body) = call(addr, "POST", "/-/reload", "").expect("reload");
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("rule_files"), "{body}");
    wait_until(addr, r#"up{job="second"}"#, "second", value_is("1"));
    wait_until(addr, r#"up{job="first"}"#, "first ends", |a| a.is_empty());

    // SIGHUP: the same, from the operator's shell.
    std::fs::write(&config, file(&["keep", "third"])).expect("rewrite");
    let pid = platform.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    wait_until(addr, r#"up{job="third"}"#, "third", value_is("1"));
    wait_until(addr, r#"up{job="second"}"#, "second ends", |a| a.is_empty());
    let (status, shown) = call(addr, "GET", "/api/v1/status/config", "").expect("config");
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.contains("job_name: third") && !shown.contains("job_name: second"),
        "the running file: {shown}"
    );
    let (_, metrics) = call(addr, "GET", "/metrics", "").expect("metrics");
    assert!(
        metrics.contains("scraper_reloads_total 2")
            && metrics.contains("scraper_reloads_failed_total 1")
            && metrics.contains("scraper_targets 2"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_millis(1_500));

    // Its loop never restarted: no gap in `keep`'s scrapes across both
    // reloads (1 s apart, a missed one would be a 2 s gap).
    let keep: Vec<Instant> = exporter
        .times("/keep")
        .into_iter()
        .filter(|at| *at >= before - Duration::from_secs(2))
        .collect();
    assert!(keep.len() >= 3, "{} scrapes of keep", keep.len());
    let widest = keep
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        widest < Duration::from_millis(1_700),
        "keep's scrapes had a {widest:?} gap across the reloads"
    );
}

#[test]
fn a_scrape_the_queue_refuses_is_down_counted_and_named() {
    let exporter = Exporter::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: many\n  metrics_path: /many\n  static_configs:\n  - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .expect("write config");
    // A queue of 50 metrics cannot take a scrape of 200 samples at once.
    let (_platform, addr, _output) = start_platform_with_output(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--queue",
            "crossbeam",
            "--queue-capacity",
            "50",
            "--alert-interval",
            "1h",
        ],
        &dir.path().join("data"),
    );
    let error = wait_for_error(addr, "many", "the queue refused the scrape");
    eprintln!("{error}");
    assert!(query(addr, "many_series").is_empty());
    let (_, metrics) = call(addr, "GET", "/metrics", "").expect("metrics");
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("scraper_queue_refused_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "{metrics}");
}

/// An `https` target serving one gauge: Python's `http.server` behind
/// its `ssl` module, with a certificate `openssl` signs by a test CA.
const HTTPS_TARGET: &str = r##"
import http.server, ssl, sys
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"# TYPE secure_up gauge\nsecure_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"##;

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl {args:?}");
}

#[test]
fn https_targets_with_tls_config() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    };
    if !have("openssl") || !have("python3") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs openssl and python3"
        );
        eprintln!("skipping: needs openssl and python3");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=systems-craft test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
        ],
    );
    let port = support::free_port();
    let _target = support::Killed(
        Command::new("python3")
            .args([
                "-c",
                HTTPS_TARGET,
                &port.to_string(),
                "leaf.pem",
                "leaf.key",
            ])
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the https target"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the https target did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = d.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: trusted\n  scheme: https\n  tls_config: {{ca_file: ca.pem}}\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n\
             - job_name: untrusted\n  scheme: https\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n\
             - job_name: unchecked\n  scheme: https\n  tls_config: {{insecure_skip_verify: true}}\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("write config");
    let (_platform, addr, _output) = start_platform_with_output(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--alert-interval",
            "1h",
        ],
        &d.join("data"),
    );
    wait_until(
        addr,
        r#"secure_up{job="trusted"}"#,
        "trusted by its CA",
        value_is("1"),
    );
    wait_until(
        addr,
        r#"up{job="unchecked"}"#,
        "not verified",
        value_is("1"),
    );
    let error = wait_for_error(addr, "untrusted", "invalid peer certificate");
    eprintln!("untrusted: {error}");
    wait_until(addr, r#"up{job="untrusted"}"#, "not trusted", value_is("0"));

    // A CA file that is no certificate: refused at start, with the key.
    std::fs::write(d.join("bad.pem"), "not a certificate").expect("bad pem");
    std::fs::write(
        &config,
        "scrape_configs:\n- job_name: a\n  tls_config: {ca_file: bad.pem}\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["--port", "0", "--host", "127.0.0.1", "--config.file"])
        .arg(&config)
        .arg("--data-dir")
        .arg(d.join("data2"))
        .output()
        .expect("run platform");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("scrape_configs[0] (a).tls_config.ca_file"),
        "{stderr}"
    );
}

/// A target that gzips its page when asked (`/page`), and one whose small
/// gzipped body inflates to 2 MB (`/bomb`).
const GZIP_TARGET: &str = r##"
import gzip, http.server, sys
PAGE = "".join('gz_series{i="%d"} %d\n' % (i, i) for i in range(10)).encode()
BOMB = b"a 1\n" * 500000
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = BOMB if self.path == "/bomb" else PAGE
        asked = "gzip" in self.headers.get("Accept-Encoding", "")
        if not asked and self.path != "/bomb":
            body = b"# gzip was not asked for\nnot_gzipped 1\n"
        else:
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
"##;

#[test]
fn gzipped_pages_are_inflated_up_to_the_limit() {
    if Command::new("python3")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "CI needs python3");
        eprintln!("skipping: needs python3");
        return;
    }
    let port = support::free_port();
    let _target = support::Killed(
        Command::new("python3")
            .args(["-c", GZIP_TARGET, &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the gzip target"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gzip target did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: page\n  metrics_path: /page\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n\
             - job_name: bomb\n  metrics_path: /bomb\n  body_size_limit: 100KB\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("write config");
    let (_platform, addr, _output) = start_platform_with_output(
        &[
            "--config.file",
            config.to_str().expect("utf-8"),
            "--alert-interval",
            "1h",
        ],
        &dir.path().join("data"),
    );
    wait_until(
        addr,
        r#"count(gz_series{job="page"})"#,
        "inflated",
        value_is("10"),
    );
    assert!(query(addr, "not_gzipped").is_empty(), "gzip was asked for");
    wait_for_error(addr, "bomb", "body size limit exceeded");
    assert!(query(addr, r#"a{job="bomb"}"#).is_empty());
}
