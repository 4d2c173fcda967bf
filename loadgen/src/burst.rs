//! `loadgen burst`: N one-shot POSTs, each on its own new connection, all
//! released at the same instant.
//!
//! Why: this is the seed's test. A burst measures what happens when many
//! clients arrive at once — the accept backlog, a server that handles one
//! connection at a time, per-connection setup cost. Requests that queue behind
//! each other show up as a wide latency spread (p50 vs max); a backlog that
//! overflows shows up as `connect refused` or `reset`.
//!
//! Bodies are generated before the start signal so generation is not part of
//! the measured window, and the start is a barrier so no request gets a head
//! start while later tasks are still being spawned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::body::{BodyEncoder, BodySpec, SeriesTables};
use crate::client::{Client, ClientOptions, FailureKind, RequestTemplate, WireRequest};
use crate::generator::MetricGenerator;
use crate::health::{HealthMonitor, HealthSummary};
use crate::stats::Tally;
use crate::target::Target;

pub struct BurstConfig {
    pub target: Target,
    pub addr: SocketAddr,
    pub requests: u64,
    pub body: BodySpec,
    pub seed: u64,
    pub hosts: usize,
    pub timeout: Duration,
    /// `None`: do not poll /health.
    pub drain_timeout: Option<Duration>,
}

pub struct BurstOutcome {
    pub tally: Tally,
    pub wall_time: Duration,
    pub health: Option<HealthSummary>,
}

pub async fn burst(config: &BurstConfig) -> Result<BurstOutcome> {
    let template = RequestTemplate::post(
        &config.target.write_path,
        &config.target.authority,
        false,
        &config.body.headers(),
    );
    let mut generator = MetricGenerator::new(config.seed, config.hosts);
    let mut encoder = BodyEncoder::new(
        config.body,
        Arc::new(SeriesTables::new(config.body.format, config.hosts)),
    );
    let mut body = Vec::with_capacity(256);
    let mut requests: Vec<WireRequest> = Vec::new();
    for _ in 0..config.requests {
        encoder
            .encode(&mut generator, 1, &mut body)
            .context("cannot build a request body")?;
        let mut wire = WireRequest::default();
        template.render(&body, &mut wire);
        requests.push(wire);
    }

    let health = config
        .drain_timeout
        .map(|drain| HealthMonitor::start(config.addr, &config.target.authority, drain));

    let start = Arc::new(Barrier::new(requests.len() + 1));
    let mut tasks = JoinSet::new();
    for wire in requests {
        let start = start.clone();
        let addr = config.addr;
        let timeout = config.timeout;
        tasks.spawn(async move {
            start.wait().await;
            one_shot(addr, &wire, timeout).await
        });
    }
    start.wait().await;
    // Wall time spans the first request's start to the last one's end, as
    // the tasks saw them: this task may be scheduled after the barrier opens
    // later than the requests it released.
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;

    let mut tally = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let (outcome, latency, opened, began) = joined.context("a burst request task panicked")?;
        first_start = Some(first_start.map_or(began, |t| t.min(began)));
        last_end = Some(last_end.map_or(began + latency, |t| t.max(began + latency)));
        tally.connections_opened += opened;
        match outcome {
            Ok(status) => tally.record_response(status, latency, 1),
            Err(kind) => tally.record_failure(kind),
        }
    }
    let stopped = Instant::now();
    let wall_time = match (first_start, last_end) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    };
    let health = match health {
        Some(monitor) => Some(monitor.finish(stopped).await),
        None => None,
    };
    Ok(BurstOutcome {
        tally,
        wall_time,
        health,
    })
}

/// One request on a fresh connection: (status or failure, latency,
/// connections opened, when it started).
async fn one_shot(
    addr: SocketAddr,
    wire: &WireRequest,
    timeout: Duration,
) -> (Result<u16, FailureKind>, Duration, u64, Instant) {
    let mut client = Client::new(
        addr,
        ClientOptions {
            keep_alive: false,
            slow_body: None,
        },
    );
    let started = Instant::now();
    let outcome = match tokio::time::timeout(timeout, client.send(wire, None)).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(error)) => Err(error.kind),
        Err(_) => Err(FailureKind::Timeout),
    };
    (
        outcome,
        started.elapsed(),
        client.connections_opened(),
        started,
    )
}
