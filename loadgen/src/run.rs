//! `loadgen run`: sustained closed-loop load — C workers, each sending its
//! next request as soon as the previous one is answered, for a duration.
//!
//! Why closed loop: each worker models one client that waits for its answer,
//! so offered load adapts to the server and the figures read directly as
//! "C clients get this throughput at this latency". Keep-alive is on by
//! default so connection setup is not what gets measured (phase0 answers
//! `Connection: close`, so against it every request still reconnects — which
//! the `connections opened` figure makes visible). `--no-keep-alive` measures
//! setup on purpose; `--slow-body` holds each request's body back to expose
//! head-of-line blocking in servers that read one request at a time;
//! `--batch` sends N metrics per request to show how amortising per-request
//! cost moves metrics/s, in any `--format` (see `body.rs`).
//!
//! Requests still in flight when the duration is up are abandoned (and
//! counted as cut off), so a stalled server cannot stretch the run by up to
//! `--timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::body::{BodyEncoder, BodySpec, SeriesTables};
use crate::client::{Client, ClientOptions, FailureKind, RequestTemplate, WireRequest};
use crate::generator::{MetricGenerator, worker_seed};
use crate::health::{HealthMonitor, HealthSummary};
use crate::report::{LoadShape, Report};
use crate::stats::Tally;
use crate::target::Target;

/// Pause after a failed connect. Without it a dead or refusing server turns
/// every worker into a busy loop of failing syscalls that starves the health
/// poller and buries the report under meaningless error counts.
const CONNECT_FAILURE_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Clone)]
pub struct RunConfig {
    pub target: Target,
    pub addr: SocketAddr,
    pub connections: u64,
    pub duration: Duration,
    pub keep_alive: bool,
    pub batch: usize,
    pub body: BodySpec,
    pub slow_body: Option<Duration>,
    /// How many of the connections hold their bodies back (all when `None`).
    /// A mix shows head-of-line blocking: fast clients wait behind slow ones
    /// on a server that reads one request at a time.
    pub slow_clients: Option<u64>,
    pub seed: u64,
    pub hosts: usize,
    pub timeout: Duration,
    pub max_requests: Option<u64>,
    /// `None`: do not poll /health.
    pub drain_timeout: Option<Duration>,
}

pub struct RunOutcome {
    pub tally: Tally,
    /// The clients sending at full speed, when only some are slow.
    pub fast_tally: Option<(u64, Tally)>,
    pub elapsed: Duration,
    pub health: Option<HealthSummary>,
}

/// Runs the load and turns the outcome into a report (`mode` "run").
pub async fn run_and_report(config: &RunConfig) -> Result<Report> {
    let outcome = run(config).await?;
    let shape = LoadShape {
        mode: "run",
        url: config.target.write_url(),
        concurrency: config.connections,
        keep_alive: config.keep_alive,
        batch: config.batch as u64,
        body: config.body,
        slow_body: config.slow_body,
    };
    let mut report = Report::new(&shape, &outcome.tally, outcome.elapsed, outcome.health);
    if let Some((clients, fast)) = &outcome.fast_tally {
        report.add_fast_clients(*clients, fast, outcome.elapsed);
    }
    Ok(report)
}

pub async fn run(config: &RunConfig) -> Result<RunOutcome> {
    let template = Arc::new(RequestTemplate::post(
        &config.target.write_path,
        &config.target.authority,
        config.keep_alive,
        &config.body.headers(),
    ));
    // Built once, shared by every worker's encoder.
    let tables = Arc::new(SeriesTables::new(config.body.format, config.hosts));
    // One body before any load: a body that cannot be built fails the run
    // here, not inside every worker.
    BodyEncoder::new(config.body, tables.clone())
        .encode(
            &mut MetricGenerator::new(config.seed, config.hosts),
            config.batch,
            &mut Vec::new(),
        )
        .context("cannot build a request body")?;
    let health = config
        .drain_timeout
        .map(|drain| HealthMonitor::start(config.addr, &config.target.authority, drain));

    let started = Instant::now();
    let deadline = started + config.duration;
    // Requests still allowed by --max-requests; u64::MAX when unbounded.
    let budget = Arc::new(AtomicU64::new(config.max_requests.unwrap_or(u64::MAX)));
    let mut workers = JoinSet::new();
    let slow_clients = match config.slow_body {
        Some(_) => config
            .slow_clients
            .unwrap_or(config.connections)
            .min(config.connections),
        None => 0,
    };
    for worker in 0..config.connections {
        let slow = worker < slow_clients;
        let worker_config = WorkerConfig {
            addr: config.addr,
            template: template.clone(),
            options: ClientOptions {
                keep_alive: config.keep_alive,
                slow_body: if slow { config.slow_body } else { None },
            },
            batch: config.batch,
            encoder: BodyEncoder::new(config.body, tables.clone()),
            seed: worker_seed(config.seed, worker),
            hosts: config.hosts,
            timeout: config.timeout,
            deadline,
            budget: budget.clone(),
        };
        workers.spawn(async move { (slow, run_worker(worker_config).await) });
    }

    let mut tally = Tally::new();
    let mut fast_tally = Tally::new();
    while let Some(joined) = workers.join_next().await {
        let (slow, worker_tally) = joined.context("a load worker panicked")?;
        let worker_tally = worker_tally?;
        tally.merge(&worker_tally);
        if !slow {
            fast_tally.merge(&worker_tally);
        }
    }
    let fast_clients = config.connections - slow_clients;
    let fast_tally = (slow_clients > 0 && fast_clients > 0).then_some((fast_clients, fast_tally));
    let stopped = Instant::now();
    let health = match health {
        Some(monitor) => Some(monitor.finish(stopped).await),
        None => None,
    };
    Ok(RunOutcome {
        tally,
        fast_tally,
        elapsed: stopped - started,
        health,
    })
}

struct WorkerConfig {
    addr: SocketAddr,
    template: Arc<RequestTemplate>,
    options: ClientOptions,
    batch: usize,
    encoder: BodyEncoder,
    seed: u64,
    hosts: usize,
    timeout: Duration,
    deadline: Instant,
    budget: Arc<AtomicU64>,
}

/// Takes one request from the shared budget; false once it is exhausted.
fn take_one(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

async fn run_worker(mut config: WorkerConfig) -> Result<Tally> {
    let mut tally = Tally::new();
    let mut client = Client::new(config.addr, config.options);
    let mut generator = MetricGenerator::new(config.seed, config.hosts);
    // Reused for every request: the hot path allocates nothing.
    let mut body = Vec::with_capacity(200 * config.batch.max(1));
    let mut wire = WireRequest::default();
    let metrics_per_request = config.batch.max(1) as u64;

    while Instant::now() < config.deadline && take_one(&config.budget) {
        config
            .encoder
            .encode(&mut generator, config.batch, &mut body)?;
        config.template.render(&body, &mut wire);

        let sent_at = Instant::now();
        let timeout_at_ = sent_at + config.timeout;
        // One timer serves both limits: the request's own timeout and the end
        // of the run, whichever comes first.
        let limit = timeout_at_.min(config.deadline);
        match timeout_at(limit.into(), client.send(&wire, None)).await {
            Ok(Ok(status)) => tally.record_response(status, sent_at.elapsed(), metrics_per_request),
            Ok(Err(error)) => {
                tally.record_failure(error.kind);
                if matches!(
                    error.kind,
                    FailureKind::ConnectRefused
                        | FailureKind::Connect
                        | FailureKind::NoLocalPort
                        | FailureKind::FdLimit
                ) {
                    tokio::time::sleep(CONNECT_FAILURE_BACKOFF).await;
                }
            }
            Err(_) if limit < timeout_at_ => {
                tally.in_flight_at_end += 1;
                break;
            }
            Err(_) => tally.record_failure(FailureKind::Timeout),
        }
    }
    tally.connections_opened = client.connections_opened();
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_exact_under_contention() {
        let budget = Arc::new(AtomicU64::new(1000));
        let taken: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let budget = budget.clone();
                    scope.spawn(move || {
                        let mut taken = 0u64;
                        while take_one(&budget) {
                            taken += 1;
                        }
                        taken
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(taken, 1000);
        assert!(!take_one(&budget));
    }
}
