//! `loadgen compare`: the same load against two servers — a baseline and a
//! candidate — started and stopped by loadgen, in one command, with one table
//! and the ratios the chapters quote ("×3.1 req/s, p99 ×0.2").
//!
//! Why loadgen starts the servers itself: a comparison is only fair when
//! both sides get identical conditions — a fresh process, a free port, the
//! same load options, nothing else of ours running at the same time — and
//! when both numbers come from the same invocation on the same machine state.
//! Doing that by hand in a shell script is where comparisons go wrong.
//!
//! How a server is run, for each of baseline, candidate (and with
//! `--null-server`, loadgen's own null-server as the ceiling row), one after
//! the other:
//! 1. A free port: bind 127.0.0.1:0, read the port, release it.
//! 2. The command is split into words with shell-like rules (`shlex`: quotes
//!    and backslashes work, but no shell runs — no pipes, `&&`, `$VARS` or
//!    globs), then `{port}` is replaced in every word. Running the program
//!    directly, not via `sh -c`, means the signal to stop it reaches the
//!    server itself. Wrap the command in `sh -c '...'` for shell features.
//! 3. It is spawned in its own process group, stdin closed, stdout and stderr
//!    into `<name>.log` in `--log-dir`, or else in a temporary directory that
//!    is deleted after a clean comparison and kept (its path printed) when
//!    anything went wrong.
//! 4. `GET /health` is polled every 50 ms until it answers 200, for at most
//!    `--startup-timeout`. If the process exits first, the error gives its
//!    exit status and the last lines of its log.
//! 5. Exactly the load `loadgen run` applies (`run::run_and_report`).
//! 6. SIGTERM to the process group (so helpers it started go too), SIGKILL
//!    after 10 s if it is still there, and wait for it. A server that died
//!    during the load is reported on stderr.
//!
//! Ctrl-C (or SIGTERM) during a comparison stops the running server the same
//! way before loadgen exits; if loadgen fails or panics, the server's group is
//! killed as the handle is dropped. No server outlives loadgen.

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::client::{Client, ClientOptions, RequestTemplate, WireRequest};
use crate::report::Report;
use crate::run::{RunConfig, run_and_report};
use crate::target::{HEALTH_PATH, Target};

/// The placeholder replaced by the chosen port in a server command.
pub const PORT_PLACEHOLDER: &str = "{port}";
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);
const READY_POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 20;

/// One server to measure: its name in the table and its command line.
#[derive(Clone, Debug)]
pub struct Contender {
    pub name: &'static str,
    /// The command as given, for display.
    pub command: String,
    /// Its words, `{port}` still in them.
    words: Vec<String>,
}

impl Contender {
    /// Splits `command` with shell-like rules. It must name a program and
    /// contain `{port}`, or loadgen could never find the server.
    pub fn parse(name: &'static str, command: &str) -> Result<Self> {
        let words = shlex::split(command).ok_or_else(|| {
            anyhow!("invalid --{name} command '{command}': unbalanced quotes or trailing backslash")
        })?;
        if words.is_empty() {
            bail!("invalid --{name} command '{command}': empty");
        }
        if !words.iter().any(|word| word.contains(PORT_PLACEHOLDER)) {
            bail!(
                "invalid --{name} command '{command}': it must contain {PORT_PLACEHOLDER}, \
                 which loadgen replaces with the free port it picked"
            );
        }
        Ok(Self {
            name,
            command: command.to_string(),
            words,
        })
    }

    /// `loadgen null-server` from this very executable.
    pub fn null_server() -> Result<Self> {
        let exe = std::env::current_exe().context("cannot locate the loadgen executable")?;
        let exe = exe.to_string_lossy().into_owned();
        let words: Vec<String> = [
            exe.as_str(),
            "null-server",
            "--port",
            PORT_PLACEHOLDER,
            "--host",
            "127.0.0.1",
        ]
        .iter()
        .map(|word| (*word).to_string())
        .collect();
        let command =
            shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "));
        Ok(Self {
            name: "null-server",
            command,
            words,
        })
    }

    fn argv(&self, port: u16) -> Vec<String> {
        let port = port.to_string();
        self.words
            .iter()
            .map(|word| word.replace(PORT_PLACEHOLDER, &port))
            .collect()
    }
}

pub struct CompareConfig {
    pub contenders: Vec<Contender>,
    /// The write path (with query), already checked against the format.
    pub path: String,
    pub startup_timeout: Duration,
    /// Where `<name>.log` files go; `None`: a temporary directory.
    pub log_dir: Option<PathBuf>,
    /// The load; its target and address are set per server.
    pub load: RunConfig,
}

/// One row: a server's report plus what was run.
#[derive(Serialize, Debug, Clone)]
pub struct Row {
    pub command: String,
    /// Requests without a 2xx: failures plus non-2xx responses.
    pub not_accepted: u64,
    #[serde(flatten)]
    pub report: Report,
    #[serde(skip)]
    pub name: &'static str,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    pub rps: Option<f64>,
    pub metrics_per_s: Option<f64>,
    pub p99: Option<f64>,
}

impl Ratios {
    fn of(numerator: &Report, denominator: &Report) -> Self {
        let ratio = |n: f64, d: f64| (d > 0.0 && n.is_finite()).then(|| n / d);
        Self {
            rps: ratio(numerator.rps, denominator.rps),
            metrics_per_s: ratio(numerator.metrics_per_s, denominator.metrics_per_s),
            p99: match (numerator.latency_ms.p99, denominator.latency_ms.p99) {
                (Some(n), Some(d)) => ratio(n, d),
                _ => None,
            },
        }
    }
}

/// All rows, in the order measured: baseline, candidate, null-server.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub duration: Duration,
}

impl Comparison {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|row| row.name == name)
    }

    /// candidate ÷ baseline.
    pub fn ratios(&self) -> Option<Ratios> {
        Some(Ratios::of(
            &self.row("candidate")?.report,
            &self.row("baseline")?.report,
        ))
    }

    /// candidate ÷ null-server, when the ceiling was measured.
    pub fn ceiling_ratios(&self) -> Option<Ratios> {
        Some(Ratios::of(
            &self.row("candidate")?.report,
            &self.row("null-server")?.report,
        ))
    }

    pub fn to_json(&self) -> String {
        let mut object = serde_json::Map::new();
        for row in &self.rows {
            let key = row.name.replace('-', "_");
            object.insert(key, serde_json::to_value(row).unwrap_or_default());
        }
        object.insert(
            "ratios".to_string(),
            serde_json::to_value(self.ratios()).unwrap_or_default(),
        );
        if let Some(ceiling) = self.ceiling_ratios() {
            object.insert(
                "candidate_vs_null_server".to_string(),
                serde_json::to_value(ceiling).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(object).to_string()
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        if let Some(first) = self.rows.first() {
            let report = &first.report;
            let path = report
                .url
                .find("://")
                .and_then(|scheme| {
                    let rest = &report.url[scheme + 3..];
                    rest.find('/').map(|slash| &rest[slash..])
                })
                .unwrap_or("/");
            let mut shape = format!(
                "{} connection{}, {}, batch {}, {} body{}",
                report.concurrency,
                if report.concurrency == 1 { "" } else { "s" },
                if report.keep_alive {
                    "keep-alive"
                } else {
                    "no keep-alive"
                },
                report.batch,
                report.format,
                if report.gzip { ", gzip" } else { "" },
            );
            if let Some(ms) = report.slow_body_ms {
                let _ = write!(shape, ", slow body {ms} ms");
            }
            writeln!(
                out,
                "loadgen compare: {shape}, {} each → POST {path}",
                seconds(self.duration)
            )?;
        }
        for row in &self.rows {
            writeln!(out, "  {:<12} {}", row.name, row.command)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "  {:<12} {:>11} {:>12} {:>10} {:>10} {:>8} {:>16}",
            "", "req/s", "metrics/s", "p50", "p99", "errors", "peak queue_size"
        )?;
        for row in &self.rows {
            let report = &row.report;
            writeln!(
                out,
                "  {:<12} {:>11.1} {:>12.1} {:>10} {:>10} {:>8} {:>16}",
                row.name,
                report.rps,
                report.metrics_per_s,
                ms(report.latency_ms.p50),
                ms(report.latency_ms.p99),
                row.not_accepted,
                report
                    .peak_queue_size
                    .map_or_else(|| "n/a".to_string(), |peak| peak.to_string()),
            )?;
        }
        if let Some(ratios) = self.ratios() {
            writeln!(
                out,
                "candidate/baseline: req/s {}, metrics/s {}, p99 {}",
                times(ratios.rps),
                times(ratios.metrics_per_s),
                times(ratios.p99)
            )?;
        }
        if let Some(ceiling) = self.ceiling_ratios() {
            writeln!(
                out,
                "candidate/null-server: req/s {}, metrics/s {}, p99 {}",
                times(ceiling.rps),
                times(ceiling.metrics_per_s),
                times(ceiling.p99)
            )?;
        }
        Ok(())
    }
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs} s")
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} ms"))
}

fn times(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_string(), |r| format!("×{r:.2}"))
}

/// Where the servers' logs go.
enum LogDir {
    /// `--log-dir`: the user's, never deleted.
    Given(PathBuf),
    /// Deleted after a clean comparison, kept when something went wrong.
    Temporary(tempfile::TempDir),
}

impl LogDir {
    fn path(&self) -> &Path {
        match self {
            Self::Given(path) => path,
            Self::Temporary(dir) => dir.path(),
        }
    }
}

/// Measures every contender in turn. Servers are always stopped.
pub async fn compare(config: &CompareConfig) -> Result<Comparison> {
    let logs = match &config.log_dir {
        Some(path) => {
            std::fs::create_dir_all(path)
                .with_context(|| format!("cannot create --log-dir {}", path.display()))?;
            LogDir::Given(path.clone())
        }
        None => LogDir::Temporary(
            tempfile::Builder::new()
                .prefix("loadgen-compare-")
                .tempdir()
                .context("cannot create a directory for the server logs")?,
        ),
    };
    let mut rows = Vec::new();
    let mut keep_logs = false;
    let mut failure = None;
    for contender in &config.contenders {
        match measure(contender, config, logs.path()).await {
            Ok((row, healthy)) => {
                keep_logs |= !healthy;
                rows.push(row);
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    if (failure.is_some() || keep_logs)
        && let LogDir::Temporary(dir) = logs
    {
        let kept = dir.keep();
        eprintln!("loadgen compare: server logs kept in {}", kept.display());
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(Comparison {
            rows,
            duration: config.load.duration,
        }),
    }
}

/// Starts one server, loads it, stops it. The bool is false when the server
/// did not survive the load.
async fn measure(
    contender: &Contender,
    config: &CompareConfig,
    logs: &Path,
) -> Result<(Row, bool)> {
    let name = contender.name;
    let port = free_port()?;
    let target = Target::parse(&format!("http://127.0.0.1:{port}{}", config.path), "/")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log = logs.join(format!("{name}.log"));
    let mut server = Server::spawn(contender, port, &log)?;

    let mut load = config.load.clone();
    load.target = target;
    load.addr = addr;
    let startup_timeout = config.startup_timeout;
    let measured = tokio::select! {
        result = async {
            let took = server.wait_ready(addr, &load.target.authority, startup_timeout).await?;
            eprintln!(
                "loadgen compare: {name} ready on {addr} after {:.2} s; loading for {}",
                took.as_secs_f64(),
                seconds(load.duration)
            );
            run_and_report(&load).await
        } => result,
        signal = interrupted() => Err(anyhow!("interrupted by {signal}")),
    };

    let died = match server.child.try_wait() {
        Ok(Some(status)) => Some(status),
        _ => None,
    };
    let stopped = server.stop().await;
    let report = measured?;
    if let Some(status) = died {
        eprintln!(
            "loadgen compare: warning: {name} exited during the load ({status}); log: {}",
            log.display()
        );
    }
    let healthy = died.is_none();
    if let Err(error) = stopped {
        eprintln!("loadgen compare: warning: could not stop {name} cleanly: {error:#}");
    }
    Ok((
        Row {
            command: contender.command.clone(),
            not_accepted: report.not_accepted(),
            report,
            name,
        },
        healthy,
    ))
}

/// A port free right now on 127.0.0.1. Another process could take it before
/// the server binds it; the server then fails to start and says so.
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(listener
        .local_addr()
        .context("cannot read a bound port")?
        .port())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; never if they cannot be watched.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

/// A running server process, leader of its own process group.
struct Server {
    name: &'static str,
    command: String,
    child: Child,
    /// The process group (the child's pid), for signalling it and its helpers.
    pgid: i32,
    log: PathBuf,
    reaped: bool,
}

impl Server {
    fn spawn(contender: &Contender, port: u16, log: &Path) -> Result<Self> {
        let name = contender.name;
        let argv = contender.argv(port);
        // Quoted again where needed, so the line can be pasted into a shell.
        let shown =
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
        let stdout = std::fs::File::create(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("cannot open the log file {}", log.display()))?;
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start the {name} server '{shown}'"))?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| anyhow!("the {name} server '{shown}' has no process id"))?;
        Ok(Self {
            name,
            command: shown,
            child,
            pgid,
            log: log.to_path_buf(),
            reaped: false,
        })
    }

    /// Polls `GET /health` until it answers 200; returns how long that took.
    async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        authority: &str,
        startup_timeout: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        let deadline = started + startup_timeout;
        let mut request = WireRequest::default();
        RequestTemplate::get(HEALTH_PATH, authority).render(b"", &mut request);
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("cannot check on the server process")?
            {
                self.reaped = true;
                bail!(
                    "the {} server exited before it was ready ({status})\n  command: {}\n{}",
                    self.name,
                    self.command,
                    self.log_excerpt()
                );
            }
            let mut client = Client::new(
                addr,
                ClientOptions {
                    keep_alive: false,
                    slow_body: None,
                },
            );
            // Even at the deadline a poll gets a moment to connect.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let last = match tokio::time::timeout(
                remaining.clamp(READY_POLL_INTERVAL, READY_POLL_TIMEOUT),
                client.send(&request, None),
            )
            .await
            {
                Ok(Ok(200)) => return Ok(started.elapsed()),
                Ok(Ok(status)) => format!("GET {HEALTH_PATH} answered {status}"),
                Ok(Err(error)) => format!("GET {HEALTH_PATH}: {}", error.kind.label()),
                Err(_) => format!("GET {HEALTH_PATH} timed out"),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!(
                    "the {} server did not answer GET {HEALTH_PATH} with 200 within {:?} \
                     (last: {last})\n  command: {}\n{}",
                    self.name,
                    startup_timeout,
                    self.command,
                    self.log_excerpt()
                );
            }
            // The last poll happens at the deadline, so a server that comes
            // up just in time still counts.
            tokio::time::sleep(READY_POLL_INTERVAL.min(remaining)).await;
        }
    }

    /// SIGTERM to the group, SIGKILL after the grace period, then reap.
    async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            self.reaped = true;
            return Ok(status);
        }
        signal_group(self.pgid, libc::SIGTERM);
        let status = match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                eprintln!(
                    "loadgen compare: {} ignored SIGTERM for {:?}; sending SIGKILL",
                    self.name, STOP_GRACE
                );
                signal_group(self.pgid, libc::SIGKILL);
                self.child.wait().await?
            }
        };
        self.reaped = true;
        Ok(status)
    }

    /// The log's path and last lines, for error messages.
    fn log_excerpt(&self) -> String {
        let tail = tail_lines(&self.log, LOG_TAIL_LINES);
        let mut text = format!("  log: {}", self.log.display());
        if tail.is_empty() {
            text.push_str(" (empty)");
        } else {
            let _ = write!(text, "\n  last lines of the log:");
            for line in tail {
                let _ = write!(text, "\n    {line}");
            }
        }
        text
    }
}

impl Drop for Server {
    /// Only reached without `stop` on a panic or an early error: do not
    /// leave the server running.
    fn drop(&mut self) {
        if !self.reaped {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Sends `signal` to every process in the group `pgid`.
pub(crate) fn signal_group(pgid: i32, signal: libc::c_int) {
    // kill(-1) would signal every process we may signal, kill(0) our own
    // group: only ever a real group id.
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) only takes integers and touches none of our memory. A
    // group that is already gone (ESRCH) is what we wanted anyway.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// The last `count` lines of a log file (reading at most its last 64 KiB).
fn tail_lines(path: &Path, count: usize) -> Vec<String> {
    const MAX_TAIL_BYTES: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file
        .seek(SeekFrom::Start(length.saturating_sub(MAX_TAIL_BYTES)))
        .is_err()
    {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| (*line).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{BodyFormat, BodySpec};
    use crate::report::LoadShape;
    use crate::stats::Tally;

    #[test]
    fn commands_are_split_and_need_the_port() {
        let contender = Contender::parse(
            "baseline",
            "server --port {port} --name 'a b' --url=http://h:{port}/",
        )
        .expect("valid");
        assert_eq!(
            contender.argv(8080),
            vec![
                "server",
                "--port",
                "8080",
                "--name",
                "a b",
                "--url=http://h:8080/"
            ]
        );
        for bad in ["", "   ", "server --port 8080", "server 'unclosed {port}"] {
            let error = Contender::parse("candidate", bad)
                .expect_err(bad)
                .to_string();
            assert!(error.contains("--candidate"), "{error}");
        }
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        let tail = tail_lines(&path, 3);
        assert_eq!(tail, vec!["line 28", "line 29", "line 30"]);
        assert!(tail_lines(&dir.path().join("missing.log"), 3).is_empty());
    }

    fn row(name: &'static str, responses: u64, latency_ms: u64) -> Row {
        let mut tally = Tally::new();
        for _ in 0..responses {
            tally.record_response(202, Duration::from_millis(latency_ms), 10);
        }
        tally.record_failure(crate::client::FailureKind::Reset);
        let shape = LoadShape {
            mode: "run",
            url: "http://127.0.0.1:9/write?precision=ms".into(),
            concurrency: 4,
            keep_alive: true,
            batch: 10,
            body: BodySpec::new(BodyFormat::Lp, false).expect("valid"),
            slow_body: None,
        };
        let report = Report::new(&shape, &tally, Duration::from_secs(1), None);
        Row {
            command: format!("{name} --port {{port}}"),
            not_accepted: report.not_accepted(),
            report,
            name,
        }
    }

    #[test]
    fn table_json_and_ratios() {
        let comparison = Comparison {
            rows: vec![
                row("baseline", 100, 8),
                row("candidate", 400, 2),
                row("null-server", 800, 1),
            ],
            duration: Duration::from_secs(1),
        };
        let ratios = comparison.ratios().expect("both rows");
        assert_eq!(ratios.rps, Some(4.0));
        assert_eq!(ratios.metrics_per_s, Some(4.0));
        let p99 = ratios.p99.expect("p99");
        assert!((p99 - 0.25).abs() < 0.01, "{p99}");

        let text = comparison.to_text();
        assert!(
            text.starts_with(
                "loadgen compare: 4 connections, keep-alive, batch 10, lp body, 1 s each → POST /write?precision=ms\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("candidate/baseline: req/s ×4.00, metrics/s ×4.00, p99 ×0.25"),
            "{text}"
        );
        assert!(
            text.contains("candidate/null-server: req/s ×0.50"),
            "{text}"
        );
        let baseline_line = text
            .lines()
            .find(|line| line.trim_start().starts_with("baseline") && line.contains("ms"))
            .expect("baseline row");
        let cells: Vec<&str> = baseline_line.split_whitespace().collect();
        assert_eq!(cells[1], "100.0", "{baseline_line}");
        assert_eq!(cells[2], "1000.0", "{baseline_line}");
        // One reset: one request not accepted; no /health: n/a.
        assert_eq!(cells[7], "1", "{baseline_line}");
        assert_eq!(cells[8], "n/a", "{baseline_line}");

        let json: serde_json::Value =
            serde_json::from_str(&comparison.to_json()).expect("valid json");
        assert_eq!(json["baseline"]["rps"], 100.0);
        assert_eq!(json["candidate"]["not_accepted"], 1);
        assert_eq!(json["null_server"]["command"], "null-server --port {port}");
        assert_eq!(json["ratios"]["rps"], 4.0);
        assert_eq!(json["candidate_vs_null_server"]["rps"], 0.5);
    }

    #[test]
    fn ratios_of_nothing_are_null() {
        let comparison = Comparison {
            rows: vec![row("baseline", 0, 1), row("candidate", 10, 1)],
            duration: Duration::from_secs(1),
        };
        let ratios = comparison.ratios().expect("both rows");
        assert_eq!(ratios.rps, None);
        assert_eq!(ratios.p99, None);
        assert!(comparison.to_text().contains("req/s n/a"));
        assert!(comparison.ceiling_ratios().is_none());
        let json: serde_json::Value =
            serde_json::from_str(&comparison.to_json()).expect("valid json");
        assert!(json["ratios"]["rps"].is_null());
        assert!(json.get("null_server").is_none());
    }
}
