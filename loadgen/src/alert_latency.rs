//! `loadgen alert-latency`: detection latency end to end — from the moment
//! the server answers 202 to a sample that crosses a rule's threshold, to the
//! moment the notification reaches the receiver.
//!
//! How a run goes:
//! 1. The notifications are watched one of two ways. `--watch webhook` runs a
//!    small HTTP receiver on 127.0.0.1 (`--receiver-port`, 0 = any free port,
//!    printed on stderr); the server's routing config must point a webhook at
//!    it. `--watch stdout` reads the server's standard output through a pipe
//!    and looks for the seed's console block (`   Metric:    alert_probe_7`):
//!    phase0 has no other channel, and craft 5's console receiver prints the
//!    same block, so both engines can be timed through the same path.
//! 2. With `--server`, loadgen starts the server itself (`{port}` replaced by
//!    a free port, its own process group, stopped with SIGTERM at the end);
//!    with `--url`, it uses a running one (webhook only: its stdout is not
//!    ours to read).
//! 3. Probe *i* is one sample `{"name":"<prefix><i>","value":<value>}`, POSTed
//!    every `--every` (open loop: probes do not wait for each other's
//!    notifications, so a 10 s polling interval does not make the run 10 s ×
//!    probes long). Each probe is a fresh metric, so it raises exactly one new
//!    alert; the rules come from `loadgen gen-rules --shape probes`, one rule
//!    per probe metric, which both engines read.
//! 4. Each probe's latency is *first arrival − 202 received*, on loadgen's own
//!    monotonic clock (one process, no clock sync). The notification can beat
//!    the 202 back to loadgen (the server answers after it stored the sample;
//!    the alert is raised on the way); those count as 0 and are reported.
//!    Later arrivals for the same probe are *repeats*: phase0 prints again at
//!    every check while the window holds, craft 5 pages once.
//!
//! Why the webhook receiver timestamps after reading the whole body: that is
//! "handed to the receiver" — the point where a real receiver could act.
//! Reading stdout through a pipe adds microseconds, not milliseconds; the
//! chapter runs craft 5 both ways to show it.
//!
//! The report gives p50/p90/p99/max, probes never notified within
//! `--timeout` (an error: exit status 1 after the report), repeats, and
//! notifications that named no probe of this run. Docs chapter 5, "Measured".

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::client::{Client, ClientOptions, RequestTemplate, WireRequest};
use crate::compare::{PORT_PLACEHOLDER, free_port, signal_group};
use crate::target::{HEALTH_PATH, Target};

/// Where notifications are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Watch {
    /// A local HTTP receiver (generic JSON webhook or Alertmanager payload).
    Webhook,
    /// The server's stdout, for the seed's console block (needs --server).
    Stdout,
}

/// Which server is measured.
#[derive(Clone, Debug)]
pub enum Server {
    /// Already running at this URL.
    Url(String),
    /// Started by loadgen: the command's words, `{port}` still in them.
    Command(Vec<String>),
}

/// Everything one run needs, checked by the command line.
#[derive(Clone, Debug)]
pub struct LatencyConfig {
    pub server: Server,
    pub watch: Watch,
    pub receiver_port: u16,
    pub probes: u32,
    pub every: Duration,
    pub prefix: String,
    pub value: f64,
    pub timeout: Duration,
    pub startup_timeout: Duration,
    /// The server's stderr (and stdout, with `--watch webhook`) go here.
    pub server_log: Option<PathBuf>,
}

/// One notification of one probe seen by the watcher.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    probe: u64,
    at: Instant,
}

/// What the watcher saw that named no probe of this run.
#[derive(Debug, Default)]
struct Strays {
    /// Notifications (payloads or console blocks) that named no probe.
    unknown: u64,
    /// Webhook bodies that were not JSON.
    unparsable: u64,
}

/// The probe numbers of the *firing* alerts of one webhook payload, in this
/// project's generic JSON webhook shape (`alerts[].metric`) or Alertmanager's
/// (`alerts[].labels`: a label value that is the probe's metric, or an
/// `alertname` that starts with it, as rules converted from the seed's JSON
/// are named `alert_probe_7 avg(1m0s) > 50`).
///
/// # Errors
/// The body is not JSON.
pub fn probes_in_payload(body: &[u8], prefix: &str) -> Result<Vec<u64>, serde_json::Error> {
    let value: Value = serde_json::from_slice(body)?;
    let Some(alerts) = value.get("alerts").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut probes = Vec::new();
    for alert in alerts {
        if alert.get("status").and_then(Value::as_str) != Some("firing") {
            continue;
        }
        let metric = alert.get("metric").and_then(Value::as_str);
        let labels = alert
            .get("labels")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|labels| labels.values().filter_map(Value::as_str));
        if let Some(probe) = metric.into_iter().chain(labels).find_map(|text| {
            // A label value may be `alert_probe_7 avg(1m0s) > 50`.
            let first = text.split_whitespace().next().unwrap_or_default();
            probe_number(first, prefix)
        }) {
            probes.push(probe);
        }
    }
    Ok(probes)
}

/// The probe of one line of the seed's console block
/// (`   Metric:    alert_probe_7` or `…alert_probe_7{host="a"}`); `None` for
/// any other line, resolved lines included.
pub fn probe_in_console_line(line: &str, prefix: &str) -> Option<u64> {
    let metric = line.trim_start().strip_prefix("Metric:")?.trim();
    let name = metric.split('{').next().unwrap_or_default();
    probe_number(name, prefix)
}

/// `alert_probe_7` → 7 for prefix `alert_probe_`.
fn probe_number(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `q`-quantile (0 < q ≤ 1) of `sorted` by nearest rank: the smallest
/// value with at least `q` of the values at or below it. `None` when empty.
/// Nearest rank, not interpolation: every reported figure is a latency that
/// was actually measured.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The figures of one run.
#[derive(Debug, Serialize)]
pub struct LatencyReport {
    pub watch: &'static str,
    pub probes: u32,
    pub accepted: u32,
    pub rejected: u32,
    /// Status of the first rejected probe, or the transport error.
    pub first_rejection: Option<String>,
    pub notified: u32,
    pub missing: u32,
    /// Notifications that arrived before loadgen had read the 202.
    pub before_202: u32,
    /// Notifications after the first, per probe, summed.
    pub repeats: u64,
    pub unknown_notifications: u64,
    pub unparsable_payloads: u64,
    /// Milliseconds, nearest rank, 202 → arrival.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// Milliseconds, request sent → 202 read: the ingestion round trip.
    pub accept_p50_ms: Option<f64>,
    pub wall_seconds: f64,
}

impl LatencyReport {
    fn build(
        config: &LatencyConfig,
        probes: &[ProbeRecord],
        arrivals: &HashMap<u64, Vec<Instant>>,
        strays: &Strays,
        wall: Duration,
    ) -> Self {
        let mut latencies = Vec::new();
        let mut accept_times = Vec::new();
        let (mut accepted, mut rejected, mut before_202, mut repeats) = (0, 0, 0, 0);
        let mut first_rejection = None;
        for (index, probe) in probes.iter().enumerate() {
            let Some(accepted_at) = probe.accepted_at else {
                rejected += 1;
                if first_rejection.is_none() {
                    first_rejection = probe.rejection.clone();
                }
                continue;
            };
            accepted += 1;
            accept_times.push(accepted_at.saturating_duration_since(probe.sent_at));
            let Some(seen) = arrivals.get(&(index as u64)) else {
                continue;
            };
            repeats += seen.len().saturating_sub(1) as u64;
            if let Some(first) = seen.iter().min() {
                if *first < accepted_at {
                    before_202 += 1;
                }
                latencies.push(first.saturating_duration_since(accepted_at));
            }
        }
        // Arrivals for probes this run never sent (an earlier run's alert
        // resolving and firing again, another client) are strays too.
        let foreign: u64 = arrivals
            .iter()
            .filter(|(probe, _)| **probe >= probes.len() as u64)
            .map(|(_, seen)| seen.len() as u64)
            .sum();
        latencies.sort_unstable();
        accept_times.sort_unstable();
        let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0);
        let mean = (!latencies.is_empty())
            .then(|| latencies.iter().sum::<Duration>() / latencies.len() as u32);
        let notified = latencies.len() as u32;
        LatencyReport {
            watch: match config.watch {
                Watch::Webhook => "webhook",
                Watch::Stdout => "stdout",
            },
            probes: probes.len() as u32,
            accepted,
            rejected,
            first_rejection,
            notified,
            missing: accepted - notified,
            before_202,
            repeats,
            unknown_notifications: strays.unknown + foreign,
            unparsable_payloads: strays.unparsable,
            p50_ms: ms(quantile(&latencies, 0.50)),
            p90_ms: ms(quantile(&latencies, 0.90)),
            p99_ms: ms(quantile(&latencies, 0.99)),
            max_ms: ms(latencies.last().copied()),
            mean_ms: ms(mean),
            accept_p50_ms: ms(quantile(&accept_times, 0.50)),
            wall_seconds: (wall.as_secs_f64() * 100.0).round() / 100.0,
        }
    }

    pub fn to_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2} ms"));
        let mut text = format!(
            "alert-latency (202 → notification at the receiver, via {})\n\
             probes:    {} sent, {} accepted, {} rejected{}\n\
             notified:  {} ({} missing, {} before the 202 was read)\n\
             latency:   p50 {}  p90 {}  p99 {}  max {}  mean {}\n\
             ingest:    202 after {} (p50, request sent → 202 read)\n\
             repeats:   {} further notifications of already-notified probes\n",
            self.watch,
            self.probes,
            self.accepted,
            self.rejected,
            self.first_rejection
                .as_deref()
                .map(|r| format!(" (first: {r})"))
                .unwrap_or_default(),
            self.notified,
            self.missing,
            self.before_202,
            ms(self.p50_ms),
            ms(self.p90_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            ms(self.mean_ms),
            ms(self.accept_p50_ms),
            self.repeats,
        );
        if self.unknown_notifications + self.unparsable_payloads > 0 {
            text.push_str(&format!(
                "strays:    {} notifications named no probe of this run, {} payloads were not JSON\n",
                self.unknown_notifications, self.unparsable_payloads
            ));
        }
        text.push_str(&format!("wall time: {:.2} s\n", self.wall_seconds));
        text
    }
}

/// [`Strays`] as the receiver task counts them (atomics: no lock needed).
#[derive(Debug, Default)]
struct StrayCounters {
    unknown: AtomicU64,
    unparsable: AtomicU64,
}

/// One probe as sent.
#[derive(Debug)]
struct ProbeRecord {
    sent_at: Instant,
    accepted_at: Option<Instant>,
    rejection: Option<String>,
}

/// Runs the measurement; the report is returned even when probes went
/// missing (the caller prints it, then fails).
pub async fn run(config: &LatencyConfig) -> Result<LatencyReport> {
    if config.watch == Watch::Stdout && matches!(config.server, Server::Url(_)) {
        bail!(
            "--watch stdout needs --server: loadgen can only read the stdout of a server it starts"
        );
    }
    let (arrivals_tx, mut arrivals_rx) = mpsc::unbounded_channel::<Arrival>();
    let strays = Arc::new(StrayCounters::default());

    // The receiver listens before the server starts, so not even the
    // server's first notification can miss it.
    if config.watch == Watch::Webhook {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.receiver_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on 127.0.0.1:{} for the webhook receiver (--receiver-port)",
                    config.receiver_port
                )
            })?;
        let local = listener
            .local_addr()
            .context("cannot read the receiver's address")?;
        eprintln!("loadgen alert-latency: webhook receiver on http://{local}/");
        tokio::spawn(receive_webhooks(
            listener,
            arrivals_tx.clone(),
            config.prefix.clone(),
            strays.clone(),
        ));
    }

    let mut spawned = None;
    let target = match &config.server {
        Server::Url(url) => Target::parse(url, "/metrics")?,
        Server::Command(words) => {
            let port = free_port()?;
            let mut process = Process::spawn(words, port, config)?;
            if let Some(stdout) = process.child.stdout.take() {
                tokio::spawn(read_console(
                    stdout,
                    arrivals_tx.clone(),
                    config.prefix.clone(),
                ));
            }
            spawned = Some(process);
            Target::parse(&format!("http://127.0.0.1:{port}/metrics"), "/metrics")?
        }
    };
    drop(arrivals_tx);
    let addr = target.resolve().await?;
    let started = Instant::now();
    let result = async {
        wait_ready(
            addr,
            &target.authority,
            config.startup_timeout,
            spawned.as_mut(),
        )
        .await?;
        let probes = send_probes(addr, &target, config).await;
        // Collect until every accepted probe has arrived or the last
        // acceptance is `--timeout` old.
        let mut arrivals: HashMap<u64, Vec<Instant>> = HashMap::new();
        let expected: Vec<u64> = probes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.accepted_at.is_some())
            .map(|(i, _)| i as u64)
            .collect();
        let last = probes
            .iter()
            .filter_map(|p| p.accepted_at)
            .max()
            .unwrap_or_else(Instant::now);
        let deadline = tokio::time::Instant::from_std(last + config.timeout);
        loop {
            while let Ok(arrival) = arrivals_rx.try_recv() {
                arrivals.entry(arrival.probe).or_default().push(arrival.at);
            }
            if expected.iter().all(|p| arrivals.contains_key(p)) {
                break;
            }
            match tokio::time::timeout_at(deadline, arrivals_rx.recv()).await {
                Ok(Some(arrival)) => arrivals.entry(arrival.probe).or_default().push(arrival.at),
                // Every sender is gone (the server exited) or time is up.
                Ok(None) | Err(_) => break,
            }
        }
        Ok::<_, anyhow::Error>((probes, arrivals))
    }
    .await;
    let wall = started.elapsed();
    if let Some(mut process) = spawned {
        process.stop().await;
    }
    let (probes, arrivals) = result?;
    let strays = Strays {
        unknown: strays.unknown.load(Ordering::Relaxed),
        unparsable: strays.unparsable.load(Ordering::Relaxed),
    };
    Ok(LatencyReport::build(
        config, &probes, &arrivals, &strays, wall,
    ))
}

/// POSTs one probe every `config.every`, on one keep-alive connection.
async fn send_probes(
    addr: SocketAddr,
    target: &Target,
    config: &LatencyConfig,
) -> Vec<ProbeRecord> {
    let mut client = Client::new(
        addr,
        ClientOptions {
            keep_alive: true,
            slow_body: None,
        },
    );
    let template = RequestTemplate::post(
        &target.write_path,
        &target.authority,
        true,
        &[("Content-Type", "application/json")],
    );
    let mut request = WireRequest::default();
    let mut records = Vec::with_capacity(config.probes as usize);
    let mut ticker = tokio::time::interval(config.every);
    // A slow answer must not make the next probes bunch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for probe in 0..config.probes {
        ticker.tick().await;
        let body = serde_json::json!({
            "name": format!("{}{probe}", config.prefix),
            "value": config.value,
        })
        .to_string();
        template.render(body.as_bytes(), &mut request);
        let sent_at = Instant::now();
        let outcome = tokio::time::timeout(config.timeout, client.send(&request, None)).await;
        let answered_at = Instant::now();
        let (accepted_at, rejection) = match outcome {
            Ok(Ok(status)) if (200..300).contains(&status) => (Some(answered_at), None),
            Ok(Ok(status)) => (None, Some(format!("HTTP {status}"))),
            Ok(Err(error)) => (None, Some(error.kind.label().to_string())),
            Err(_) => (None, Some("timeout".to_string())),
        };
        records.push(ProbeRecord {
            sent_at,
            accepted_at,
            rejection,
        });
    }
    records
}

/// The webhook receiver: answers every request 200 after reading its body,
/// and reports the probes of its firing alerts.
async fn receive_webhooks(
    listener: TcpListener,
    arrivals: mpsc::UnboundedSender<Arrival>,
    prefix: String,
    strays: Arc<StrayCounters>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let arrivals = arrivals.clone();
        let prefix = prefix.clone();
        let strays = strays.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let arrivals = arrivals.clone();
                let prefix = prefix.clone();
                let strays = strays.clone();
                async move {
                    let body = request.into_body().collect().await.map(|b| b.to_bytes());
                    // "Handed to the receiver": the whole body is here.
                    let at = Instant::now();
                    let status = match body {
                        Ok(body) => {
                            match probes_in_payload(&body, &prefix) {
                                Ok(probes) if probes.is_empty() => {
                                    strays.unknown.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(probes) => {
                                    for probe in probes {
                                        let _ = arrivals.send(Arrival { probe, at });
                                    }
                                }
                                Err(_) => {
                                    strays.unparsable.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            StatusCode::OK
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    };
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads the server's stdout line by line for console blocks.
async fn read_console(
    stdout: tokio::process::ChildStdout,
    arrivals: mpsc::UnboundedSender<Arrival>,
    prefix: String,
) {
    let mut lines = BufReader::new(stdout).lines();
    // Until the server closes its stdout (it exited) or a read fails.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(probe) = probe_in_console_line(&line, &prefix) {
            let _ = arrivals.send(Arrival {
                probe,
                at: Instant::now(),
            });
        }
    }
}

/// Polls `GET /health` until 200, failing early if the server exits.
async fn wait_ready(
    addr: SocketAddr,
    authority: &str,
    timeout: Duration,
    mut process: Option<&mut Process>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut request = WireRequest::default();
    RequestTemplate::get(HEALTH_PATH, authority).render(b"", &mut request);
    loop {
        if let Some(process) = process.as_deref_mut()
            && let Ok(Some(status)) = process.child.try_wait()
        {
            bail!(
                "the server exited before it was ready ({status}); command: {}",
                process.shown
            );
        }
        let mut client = Client::new(
            addr,
            ClientOptions {
                keep_alive: false,
                slow_body: None,
            },
        );
        let answer =
            tokio::time::timeout(Duration::from_secs(1), client.send(&request, None)).await;
        if matches!(answer, Ok(Ok(200))) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the server at {addr} did not answer GET {HEALTH_PATH} with 200 within {timeout:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server started by loadgen, leader of its own process group.
struct Process {
    child: Child,
    pgid: i32,
    shown: String,
    stopped: bool,
}

impl Process {
    fn spawn(words: &[String], port: u16, config: &LatencyConfig) -> Result<Self> {
        let port = port.to_string();
        let argv: Vec<String> = words
            .iter()
            .map(|word| word.replace(PORT_PLACEHOLDER, &port))
            .collect();
        let shown =
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
        let program = argv
            .first()
            .ok_or_else(|| anyhow!("invalid --server command: empty"))?;
        let log = |what: &str| -> Result<Stdio> {
            Ok(match &config.server_log {
                Some(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| {
                        format!("cannot open --server-log {} for {what}", path.display())
                    })?
                    .into(),
                None => Stdio::null(),
            })
        };
        let stdout = match config.watch {
            Watch::Stdout => Stdio::piped(),
            Watch::Webhook => log("stdout")?,
        };
        let child = Command::new(program)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log("stderr")?)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the server '{shown}'"))?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| anyhow!("the server '{shown}' has no process id"))?;
        eprintln!("loadgen alert-latency: started {shown}");
        Ok(Self {
            child,
            pgid,
            shown,
            stopped: false,
        })
    }

    /// SIGTERM to the group, SIGKILL after 10 s.
    async fn stop(&mut self) {
        signal_group(self.pgid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            signal_group(self.pgid, libc::SIGKILL);
            let _ = self.child.wait().await;
        }
        self.stopped = true;
    }
}

impl Drop for Process {
    /// Only reached without `stop` on an early error: no server outlives us.
    fn drop(&mut self) {
        if !self.stopped {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(quantile(&sorted, 0.5), Some(Duration::from_millis(5)));
        assert_eq!(quantile(&sorted, 0.9), Some(Duration::from_millis(9)));
        assert_eq!(quantile(&sorted, 0.99), Some(Duration::from_millis(10)));
        assert_eq!(quantile(&sorted, 1.0), Some(Duration::from_millis(10)));
        assert_eq!(quantile(&ms(&[7]), 0.5), Some(Duration::from_millis(7)));
        assert_eq!(quantile(&[], 0.5), None);
        // p99 of 200 values is the 198th, not the maximum.
        let many: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(quantile(&many, 0.99), Some(Duration::from_millis(198)));
    }

    #[test]
    fn generic_webhook_payloads_name_firing_probes_only() {
        let body = br#"{"id":"x","status":"firing","alerts":[
            {"status":"firing","metric":"alert_probe_12","labels":{"alertname":"P"}},
            {"status":"resolved","metric":"alert_probe_3","labels":{}},
            {"status":"firing","metric":"cpu_usage","labels":{"host":"a"}}]}"#;
        assert_eq!(probes_in_payload(body, "alert_probe_").unwrap(), vec![12]);
    }

    #[test]
    fn alertmanager_payloads_name_probes_by_label() {
        let body = br#"{"version":"4","status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"alert_probe_7 avg(1m0s) > 50"}},
            {"status":"firing","labels":{"alertname":"Probe","probe_metric":"alert_probe_8"}},
            {"status":"firing","labels":{"alertname":"alert_probe_x"}}]}"#;
        assert_eq!(probes_in_payload(body, "alert_probe_").unwrap(), vec![7, 8]);
        assert!(probes_in_payload(b"not json", "alert_probe_").is_err());
        assert!(probes_in_payload(b"{}", "alert_probe_").unwrap().is_empty());
    }

    #[test]
    fn console_blocks_name_their_probe() {
        let p = "alert_probe_";
        assert_eq!(
            probe_in_console_line("   Metric:    alert_probe_4", p),
            Some(4)
        );
        assert_eq!(
            probe_in_console_line("   Metric:    alert_probe_4{host=\"a\"}", p),
            Some(4)
        );
        assert_eq!(probe_in_console_line("   Metric:    cpu_usage", p), None);
        assert_eq!(probe_in_console_line("   Metric:    alert_probe_", p), None);
        assert_eq!(
            probe_in_console_line("✅ [RESOLVED] 2025-01-01 alert_probe_4 avg(60s) > 50", p),
            None
        );
        assert_eq!(
            probe_in_console_line("🚨 [ALERT] 2025-01-01 10:00:00", p),
            None
        );
    }

    #[test]
    fn the_report_counts_missing_repeats_and_early_arrivals() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let probe = |sent: u64, accepted: Option<u64>| ProbeRecord {
            sent_at: at(sent),
            accepted_at: accepted.map(at),
            rejection: accepted.is_none().then(|| "HTTP 503".to_string()),
        };
        let probes = vec![
            probe(0, Some(2)),
            probe(100, Some(101)),
            probe(200, None),
            probe(300, Some(302)),
        ];
        let arrivals = HashMap::from([
            (0, vec![at(12), at(10_012)]), // 10 ms, then a repeat
            (1, vec![at(100)]),            // before its 202 was read: 0 ms
            (9, vec![at(50)]),             // not a probe of this run
        ]);
        let config = LatencyConfig {
            server: Server::Url("http://127.0.0.1:1".into()),
            watch: Watch::Webhook,
            receiver_port: 0,
            probes: 4,
            every: Duration::from_millis(100),
            prefix: "alert_probe_".into(),
            value: 100.0,
            timeout: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(1),
            server_log: None,
        };
        let report = LatencyReport::build(
            &config,
            &probes,
            &arrivals,
            &Strays::default(),
            Duration::from_secs(1),
        );
        assert_eq!((report.accepted, report.rejected), (3, 1));
        assert_eq!(report.first_rejection.as_deref(), Some("HTTP 503"));
        assert_eq!((report.notified, report.missing), (2, 1));
        assert_eq!((report.before_202, report.repeats), (1, 1));
        assert_eq!(report.unknown_notifications, 1);
        assert_eq!(report.p50_ms, Some(0.0));
        assert_eq!(report.max_ms, Some(10.0));
        assert!(
            report.to_text().contains("1 missing"),
            "{}",
            report.to_text()
        );
    }

    #[tokio::test]
    async fn the_receiver_reports_what_arrives_over_http() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let strays = Arc::new(StrayCounters::default());
        tokio::spawn(receive_webhooks(
            listener,
            tx,
            "alert_probe_".into(),
            strays.clone(),
        ));
        let mut client = Client::new(
            addr,
            ClientOptions {
                keep_alive: true,
                slow_body: None,
            },
        );
        let template = RequestTemplate::post("/hook", "x", true, &[]);
        let mut request = WireRequest::default();
        for body in [
            &br#"{"alerts":[{"status":"firing","metric":"alert_probe_5"}]}"#[..],
            b"garbage",
            br#"{"alerts":[]}"#,
        ] {
            template.render(body, &mut request);
            assert_eq!(client.send(&request, None).await.unwrap(), 200);
        }
        let arrival = rx.recv().await.unwrap();
        assert_eq!(arrival.probe, 5);
        assert!(rx.try_recv().is_err());
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((load(&strays.unknown), load(&strays.unparsable)), (1, 1));
    }
}
