//! The queue slot on NATS JetStream: the backlog lives in a broker, so
//! ingestion and storage can run on different machines and a crash of
//! either loses nothing the broker acknowledged.
//!
//! Removes: the single-machine limit of `crossbeam.rs` and `log/` (the
//! queue is a network service shared by many producers), and memory-only
//! durability (a 202 waits for the JetStream publish ack: `Broker`). Has: a
//! network round trip per push (publishes of one push are pipelined, so it
//! is one round trip, not one per metric), and one JetStream message per
//! metric — simple and exact to count, but more per-message overhead than
//! `log/`'s batched records. Story: docs chapter 2, "Step 3: NATS JetStream".
//!
//! Shape on the broker:
//! - one stream (`METRICS` by default, work-queue retention: a message is
//!   deleted once acked) over the subjects `<prefix>.<partition>`;
//! - each metric is one message whose payload is the metric's JSON
//!   (`serde_json` of [`common::Metric`]), published to the partition its
//!   series key (name + sorted labels, FNV-1a) hashes to, so one series
//!   always travels one subject and keeps its order;
//! - one durable pull consumer (`storage` by default) is the consumer group;
//!   explicit acks, sent by [`MetricQueue::ack`] after the store appended.
//!   A delivery not acked within `ack_wait` is redelivered (at-least-once);
//!   dropping the queue naks what it still holds, so a restart gets it back
//!   at once.
//!
//! The trait is synchronous; the client is async. The queue owns a small
//! tokio runtime (one worker thread) and every call hands a future to it
//! and waits on a std channel with a bounded timeout — never
//! `Runtime::block_on`, so calling from inside another tokio runtime (the
//! hyper server's blocking handlers) does not panic.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{self as js_stream, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Message as JsMessage};
use async_nats::{Client, ConnectOptions, Subject};
use common::{AckToken, Delivery, Durability, Metric, MetricQueue, QueueError};
use futures_util::StreamExt;
use parking_lot::Mutex;
use thiserror::Error;
use tokio::runtime::{Handle, Runtime};

use crate::backlog::Backlog;

/// Extra time a caller waits for the runtime beyond a call's own deadline.
const BRIDGE_GRACE: Duration = Duration::from_secs(1);
/// Shortest pull-request expiry sent to the server.
const MIN_EXPIRES: Duration = Duration::from_millis(10);
/// How often an idle `consume` may re-read the backlog from the broker.
const RESYNC_EVERY: Duration = Duration::from_millis(500);

/// Where and how the queue lives on the broker.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL(s), as `--nats-url` gives it: `nats://host:4222`,
    /// comma-separated for a cluster.
    pub url: String,
    /// JetStream stream name (default `METRICS`).
    pub stream: String,
    /// Subject prefix: partition `p` is the subject `<prefix>.<p>`
    /// (default `metrics`).
    pub subject_prefix: String,
    /// Number of partition subjects (default 8). A series always maps to the
    /// same one; changing it while a backlog exists reorders nothing already
    /// in the stream (one stream keeps one total order).
    pub partitions: u32,
    /// Durable consumer name: the consumer group (default `storage`).
    pub durable: String,
    /// Most metrics accepted and not yet acked before pushes fail with
    /// [`QueueError::Full`] (default 1,000,000).
    pub capacity: usize,
    /// How long a delivery may stay unacked before the broker redelivers it
    /// (default 30 s). Applied when the consumer is created.
    pub ack_wait: Duration,
    /// Most messages delivered and not yet acked (default 10,000); a consume
    /// beyond it gets nothing until acks arrive.
    pub max_ack_pending: usize,
    /// Bound on the first connection (default 5 s).
    pub connect_timeout: Duration,
    /// Bound on each broker round trip: publish acks, pulls, acks, stream
    /// and consumer calls (default 5 s).
    pub request_timeout: Duration,
    /// Longest pause between reconnect attempts; the delay doubles from
    /// 10 ms up to this (default 2 s). Reconnection never gives up.
    pub max_reconnect_delay: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            stream: "METRICS".into(),
            subject_prefix: "metrics".into(),
            partitions: 8,
            durable: "storage".into(),
            capacity: 1_000_000,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(2),
        }
    }
}

impl NatsConfig {
    /// The defaults, pointed at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            ..NatsConfig::default()
        }
    }

    fn validate(&self) -> Result<(), NatsQueueError> {
        let bad = |why: String| Err(NatsQueueError::Config(why));
        if self.url.trim().is_empty() {
            return bad("the NATS URL is empty".into());
        }
        check_name("stream", &self.stream)?;
        check_name("durable consumer", &self.durable)?;
        let prefix = &self.subject_prefix;
        if prefix.is_empty()
            || prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>']) || t.contains(char::is_whitespace))
        {
            return bad(format!(
                "subject prefix {prefix:?} must be dot-separated non-empty tokens without spaces, `*` or `>`"
            ));
        }
        if self.partitions == 0 || self.partitions > 4096 {
            return bad(format!(
                "partitions must be 1..=4096, got {}",
                self.partitions
            ));
        }
        if self.max_ack_pending == 0 {
            return bad("max_ack_pending must be at least 1".into());
        }
        for (what, d) in [
            ("ack_wait", self.ack_wait),
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return bad(format!("{what} must be positive"));
            }
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<(), NatsQueueError> {
    if name.is_empty()
        || name.contains(['.', '*', '>', '/', '\\'])
        || name.contains(char::is_whitespace)
    {
        return Err(NatsQueueError::Config(format!(
            "{what} name {name:?} must be non-empty without `.`, `*`, `>`, slashes or spaces"
        )));
    }
    Ok(())
}

/// Why [`NatsQueue::connect`] failed.
#[derive(Debug, Error)]
pub enum NatsQueueError {
    /// A [`NatsConfig`] field is unusable.
    #[error("invalid NATS queue config: {0}")]
    Config(String),
    /// The queue's own tokio runtime could not start.
    #[error("cannot start the NATS queue's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server refused or failed the connection.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL tried, credentials hidden.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// Nothing answered within the connect timeout.
    #[error("no NATS server answered at {url} within {timeout:?}")]
    ConnectTimeout {
        /// The URL tried, credentials hidden.
        url: String,
        /// The bound that elapsed.
        timeout: Duration,
    },
    /// Connected, but the stream or the durable consumer could not be set up
    /// (JetStream disabled, a conflicting stream, a timeout).
    #[error("JetStream setup at {url} failed: {reason}")]
    Setup {
        /// The server URL, credentials hidden.
        url: String,
        /// What went wrong, naming the stream or consumer.
        reason: String,
    },
}

/// The partition (0..`partitions`) a metric's series routes to: FNV-1a over
/// the name and the sorted label pairs. Stable across processes, machines
/// and Rust versions, so every producer routes a series the same way.
pub fn partition_of(metric: &Metric, partitions: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    feed(metric.name.as_bytes());
    // 0xff and 0xfe never occur in UTF-8, so they separate fields unambiguously.
    for (name, value) in metric.labels.iter() {
        feed(&[0xff]);
        feed(name.as_bytes());
        feed(&[0xfe]);
        feed(value.as_bytes());
    }
    (hash % u64::from(partitions.max(1))) as u32
}

/// A NATS JetStream–backed [`MetricQueue`]: `Broker` durability, per-series
/// order, at-least-once delivery through a durable consumer.
///
/// `len` is this handle's view of the backlog: the consumer's pending and
/// unacked messages when it connected, plus what it pushed, minus what it
/// acked (each stream message counted once, however often redelivered). An
/// idle `consume` corrects it downwards from the broker's count, so a
/// failed publish of unknown outcome cannot make it drift upwards and stall
/// a shutdown drain. Pushes from other machines are not counted here.
pub struct NatsQueue {
    config: NatsConfig,
    handle: Handle,
    client: Client,
    js: jetstream::Context,
    consumer: PullConsumer,
    /// `<prefix>.<p>` for each partition.
    subjects: Vec<Subject>,
    backlog: Backlog,
    closed: AtomicBool,
    pushes_started: AtomicU64,
    pushes_in_flight: AtomicUsize,
    next_token: AtomicU64,
    ledger: Mutex<Ledger>,
    last_resync: Mutex<Option<Instant>>,
    /// Last field: shut down after everything above that may hold tasks.
    /// Only held, never read: calls go through `handle`.
    _runtime: OwnedRuntime,
}

/// One delivered message awaiting its ack.
struct Held {
    /// Stream sequence, to count a redelivered message once.
    seq: Option<u64>,
    /// The `$JS.ACK…` subject acks go to.
    reply: Option<Subject>,
}

#[derive(Default)]
struct SeqState {
    /// Deliveries (tokens) currently holding this stream message.
    holders: u32,
    /// Already left the backlog through one of them.
    acked: bool,
}

/// Deliveries handed out and not yet acked.
#[derive(Default)]
struct Ledger {
    deliveries: HashMap<u64, Vec<Held>>,
    seqs: HashMap<u64, SeqState>,
}

impl Ledger {
    fn hand_out(&mut self, token: u64, held: Vec<Held>) {
        for seq in held.iter().filter_map(|h| h.seq) {
            self.seqs.entry(seq).or_default().holders += 1;
        }
        self.deliveries.insert(token, held);
    }

    /// Forgets a delivery's messages; returns how many leave the backlog
    /// (a message redelivered while an older delivery still holds it leaves
    /// it once).
    fn settle(&mut self, held: &[Held]) -> usize {
        let mut leaving = 0;
        for h in held {
            let Some(seq) = h.seq else {
                leaving += 1;
                continue;
            };
            let Some(state) = self.seqs.get_mut(&seq) else {
                continue;
            };
            if !state.acked {
                state.acked = true;
                leaving += 1;
            }
            state.holders = state.holders.saturating_sub(1);
            if state.holders == 0 {
                self.seqs.remove(&seq);
            }
        }
        leaving
    }
}

/// Owns the runtime and shuts it down without blocking, which is also
/// allowed from inside another runtime (plain `drop` would panic there).
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `fut` on the queue's runtime and waits for it from any thread, at
/// most `limit` (+ a grace). `None` when it did not finish in time.
fn run_on<T, F>(handle: &Handle, limit: Duration, fut: F) -> Option<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    handle.spawn(async move {
        if let Ok(value) = tokio::time::timeout(limit, fut).await {
            let _ = tx.send(value);
        }
    });
    rx.recv_timeout(limit + BRIDGE_GRACE).ok()
}

/// The URL as errors and `/health` show it: credentials (`user:pass@`,
/// `token@`) replaced by `***`.
fn shown_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let server = server.trim();
            let start = server.find("://").map_or(0, |i| i + 3);
            match server[start..].rfind('@') {
                Some(at) => format!("{}***{}", &server[..start], &server[start + at..]),
                None => server.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// 10 ms, doubling per attempt, capped at `max`.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16) as u32;
    Duration::from_millis(10)
        .saturating_mul(1u32 << exponent)
        .min(max)
}

impl NatsQueue {
    /// Connects (bounded by `connect_timeout`), creates the stream and the
    /// durable consumer if they do not exist, and reads the backlog.
    ///
    /// An existing stream is used as it is, but must cover
    /// `<subject_prefix>.*`; an existing consumer keeps its own `ack_wait`.
    ///
    /// # Errors
    /// [`NatsQueueError`] naming the URL: bad config, no server, JetStream
    /// unavailable, a conflicting stream.
    pub fn connect(config: NatsConfig) -> Result<Self, NatsQueueError> {
        let capacity = config.capacity;
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats-queue")
            .enable_all()
            .build()
            .map_err(NatsQueueError::Runtime)?;
        let handle = runtime.handle().clone();
        let runtime = OwnedRuntime(Some(runtime));

        let url = shown_url(&config.url);
        let connect = {
            let url = config.url.clone();
            let options = ConnectOptions::new()
                .name("systems-craft-queue")
                .connection_timeout(config.connect_timeout)
                .request_timeout(Some(config.request_timeout))
                .reconnect_delay_callback({
                    let max = config.max_reconnect_delay;
                    move |attempts| reconnect_delay(attempts, max)
                });
            async move { options.connect(url.as_str()).await }
        };
        let client = match run_on(&handle, config.connect_timeout, connect) {
            Some(Ok(client)) => client,
            Some(Err(e)) => {
                return Err(NatsQueueError::Connect {
                    url,
                    reason: e.to_string(),
                });
            }
            None => {
                return Err(NatsQueueError::ConnectTimeout {
                    url,
                    timeout: config.connect_timeout,
                });
            }
        };

        let setup = setup(client.clone(), config.clone());
        let (js, consumer, backlog) = match run_on(&handle, config.request_timeout * 3, setup) {
            Some(Ok(done)) => done,
            Some(Err(reason)) => return Err(NatsQueueError::Setup { url, reason }),
            None => {
                return Err(NatsQueueError::Setup {
                    url,
                    reason: format!(
                        "stream {} / consumer {} setup timed out",
                        config.stream, config.durable
                    ),
                });
            }
        };

        let subjects = (0..config.partitions)
            .map(|p| Subject::from(format!("{}.{p}", config.subject_prefix)))
            .collect();
        Ok(NatsQueue {
            config,
            handle,
            client,
            js,
            consumer,
            subjects,
            backlog: Backlog::new(capacity, backlog),
            closed: AtomicBool::new(false),
            pushes_started: AtomicU64::new(0),
            pushes_in_flight: AtomicUsize::new(0),
            next_token: AtomicU64::new(0),
            ledger: Mutex::new(Ledger::default()),
            last_resync: Mutex::new(None),
            _runtime: runtime,
        })
    }

    /// The configuration this queue was opened with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The partition subject a metric is published to.
    pub fn subject_for(&self, metric: &Metric) -> &str {
        self.subjects[partition_of(metric, self.config.partitions) as usize].as_str()
    }

    /// Deletes the stream, its consumer and every message in it. For tests
    /// and teardown; the queue is unusable afterwards.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the broker refuses or does not answer.
    pub fn delete_stream(&self) -> Result<(), QueueError> {
        let js = self.js.clone();
        let stream = self.config.stream.clone();
        let deleted = run_on(&self.handle, self.config.request_timeout, async move {
            js.delete_stream(&stream).await.map(|_| ())
        });
        match deleted {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                Err(self.backend(format!("deleting stream {}: {e}", self.config.stream)))
            }
            None => Err(self.timed_out("deleting the stream")),
        }
    }

    fn backend(&self, what: String) -> QueueError {
        QueueError::Backend(format!("NATS at {}: {what}", shown_url(&self.config.url)))
    }

    fn timed_out(&self, what: &str) -> QueueError {
        self.backend(format!(
            "{what} timed out after {:?}",
            self.config.request_timeout
        ))
    }

    /// Publishes every message and waits for the broker's acks until one
    /// shared deadline. Returns how many were confirmed and the first error.
    fn publish(&self, messages: Vec<(Subject, Vec<u8>)>) -> (usize, Option<String>) {
        let client = self.client.clone();
        let js = self.js.clone();
        let timeout = self.config.request_timeout;
        let publish = async move {
            if client.connection_state() != State::Connected {
                return (0, Some("not connected (reconnecting)".to_string()));
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let mut acks = Vec::with_capacity(messages.len());
            let mut error = None;
            for (subject, payload) in messages {
                match js.publish(subject, payload.into()).await {
                    Ok(ack) => acks.push(ack),
                    Err(e) => {
                        error = Some(format!("publish failed: {e}"));
                        break;
                    }
                }
            }
            let mut confirmed = 0;
            for ack in acks {
                match tokio::time::timeout_at(deadline, ack.into_future()).await {
                    Ok(Ok(_)) => confirmed += 1,
                    Ok(Err(e)) => {
                        error.get_or_insert_with(|| format!("publish not acknowledged: {e}"));
                    }
                    Err(_) => {
                        error.get_or_insert_with(|| {
                            format!("publish not acknowledged within {timeout:?}")
                        });
                    }
                }
            }
            (confirmed, error)
        };
        run_on(&self.handle, timeout + BRIDGE_GRACE, publish)
            .unwrap_or_else(|| (0, Some(format!("publish timed out after {timeout:?}"))))
    }

    /// When idle with a positive backlog, lowers it to the broker's count if
    /// that is smaller and no push ran meanwhile (see the type's docs).
    fn maybe_resync(&self) {
        let before = self.backlog.get();
        if before == 0 {
            return;
        }
        {
            let mut last = self.last_resync.lock();
            if last.is_some_and(|at| at.elapsed() < RESYNC_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let started = self.pushes_started.load(Ordering::Acquire);
        if self.pushes_in_flight.load(Ordering::Acquire) != 0 {
            return;
        }
        let consumer = self.consumer.clone();
        let Some(Ok(info)) = run_on(&self.handle, self.config.request_timeout, async move {
            consumer.get_info().await
        }) else {
            return;
        };
        let broker = usize::try_from(info.num_pending)
            .unwrap_or(usize::MAX)
            .saturating_add(info.num_ack_pending);
        if broker < before
            && self.pushes_in_flight.load(Ordering::Acquire) == 0
            && self.pushes_started.load(Ordering::Acquire) == started
        {
            self.backlog.correct(before, broker);
        }
    }
}

/// Creates (or finds) the stream and the durable consumer; returns the
/// JetStream context, the consumer and its backlog in messages.
async fn setup(
    client: Client,
    config: NatsConfig,
) -> Result<(jetstream::Context, PullConsumer, usize), String> {
    let js = jetstream::ContextBuilder::new()
        .timeout(config.request_timeout)
        .backpressure_on_inflight(true)
        .build(client);
    let subjects = format!("{}.*", config.subject_prefix);
    let stream = js
        .get_or_create_stream(js_stream::Config {
            name: config.stream.clone(),
            subjects: vec![subjects.clone()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {}: {e}", config.stream))?;
    let existing = &stream.cached_info().config.subjects;
    if !existing.contains(&subjects) {
        return Err(format!(
            "stream {} exists with subjects {existing:?}, not {subjects}",
            config.stream
        ));
    }
    let consumer: PullConsumer = stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: i64::try_from(config.max_ack_pending).unwrap_or(i64::MAX),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            format!(
                "durable consumer {} on stream {}: {e}",
                config.durable, config.stream
            )
        })?;
    let info = consumer.cached_info();
    let backlog = usize::try_from(info.num_pending)
        .unwrap_or(usize::MAX)
        .saturating_add(info.num_ack_pending);
    Ok((js, consumer, backlog))
}

/// Takes what is available now (a `no_wait` pull), up to `max`.
async fn fetch_available(
    consumer: &PullConsumer,
    max: usize,
    timeout: Duration,
) -> Result<Vec<JsMessage>, String> {
    let pull = async {
        let mut batch = consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| format!("pull failed: {e}"))?;
        let mut out = Vec::new();
        while let Some(item) = batch.next().await {
            match item {
                Ok(message) => out.push(message),
                Err(e) if out.is_empty() => return Err(format!("pull failed: {e}")),
                Err(_) => break,
            }
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, pull)
        .await
        .map_err(|_| format!("pull timed out after {timeout:?}"))?
}

/// Up to `max` messages: what is available now, or else the first to
/// arrive within `wait` plus whatever is available right after it.
///
/// The wait is a pull request for one message with an expiry, so no pull
/// request outlives the call with messages the caller will never see.
async fn fetch(
    client: Client,
    consumer: PullConsumer,
    max: usize,
    wait: Duration,
    timeout: Duration,
) -> Result<Vec<JsMessage>, String> {
    if client.connection_state() != State::Connected {
        return Err("not connected (reconnecting)".into());
    }
    let mut out = fetch_available(&consumer, max, timeout).await?;
    if !out.is_empty() || wait.is_zero() {
        return Ok(out);
    }
    let expires = wait.max(MIN_EXPIRES);
    let mut one = consumer
        .batch()
        .max_messages(1)
        .expires(expires)
        .messages()
        .await
        .map_err(|e| format!("pull failed: {e}"))?;
    match tokio::time::timeout(expires + BRIDGE_GRACE, one.next()).await {
        Ok(Some(Ok(first))) => {
            out.push(first);
            if max > 1 {
                // The first is already ours: a failure here only shortens
                // the delivery.
                if let Ok(more) = fetch_available(&consumer, max - 1, timeout).await {
                    out.extend(more);
                }
            }
            Ok(out)
        }
        Ok(Some(Err(e))) => Err(format!("pull failed: {e}")),
        Ok(None) | Err(_) => Ok(out),
    }
}

impl MetricQueue for NatsQueue {
    fn push(&self, metrics: Vec<Metric>) -> Result<(), QueueError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        if metrics.is_empty() {
            return Ok(());
        }
        // Encode before reserving: a metric that cannot travel refuses the
        // whole batch with nothing reserved or sent.
        let mut messages = Vec::with_capacity(metrics.len());
        for metric in &metrics {
            let payload = serde_json::to_vec(metric)
                .map_err(|e| self.backend(format!("cannot encode {}: {e}", metric.name)))?;
            let partition = partition_of(metric, self.config.partitions) as usize;
            messages.push((self.subjects[partition].clone(), payload));
        }
        let n = messages.len();
        // Announce the push before reserving, so a concurrent resync cannot
        // mistake the reservation for drift.
        self.pushes_started.fetch_add(1, Ordering::AcqRel);
        self.pushes_in_flight.fetch_add(1, Ordering::AcqRel);
        let result = self.backlog.reserve(n).map(|()| self.publish(messages));
        self.pushes_in_flight.fetch_sub(1, Ordering::AcqRel);
        let (confirmed, error) = result?;
        match error {
            None if confirmed == n => Ok(()),
            error => {
                // Unconfirmed publishes may or may not be in the stream;
                // count them out (a client retry may duplicate them, which
                // at-least-once allows and the store absorbs).
                self.backlog.release(n - confirmed);
                Err(self.backend(format!(
                    "{} ({confirmed} of {n} metrics confirmed)",
                    error.unwrap_or_else(|| "publish incomplete".into())
                )))
            }
        }
    }

    fn consume(&self, max: usize, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let max = max.max(1).min(self.config.max_ack_pending);
        let timeout = self.config.request_timeout;
        let pull = fetch(
            self.client.clone(),
            self.consumer.clone(),
            max,
            wait,
            timeout,
        );
        let messages = match run_on(&self.handle, wait + timeout * 2, pull) {
            Some(Ok(messages)) => messages,
            Some(Err(e)) => return Err(self.backend(e)),
            None => return Err(self.timed_out("pulling from the consumer")),
        };
        if messages.is_empty() {
            self.maybe_resync();
            return Ok(None);
        }
        let mut metrics = Vec::with_capacity(messages.len());
        let mut held = Vec::with_capacity(messages.len());
        let mut poison = Vec::new();
        for message in messages {
            let seq = message.info().ok().map(|info| info.stream_sequence);
            let reply = message.message.reply.clone();
            match serde_json::from_slice::<Metric>(&message.message.payload) {
                Ok(metric) => {
                    metrics.push(metric);
                    held.push(Held { seq, reply });
                }
                // Not ours (someone published junk to our subjects):
                // terminate it so it is never redelivered, and skip it.
                Err(_) => poison.extend(reply),
            }
        }
        if !poison.is_empty() {
            self.backlog.release(poison.len());
            let client = self.client.clone();
            self.handle.spawn(async move {
                for reply in poison {
                    let _ = client.publish(reply, AckKind::Term.into()).await;
                }
            });
        }
        if metrics.is_empty() {
            return Ok(None);
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.ledger.lock().hand_out(token, held);
        Ok(Some(Delivery {
            metrics,
            ack: AckToken(token),
        }))
    }

    fn ack(&self, token: AckToken) -> Result<(), QueueError> {
        let (held, leaving) = {
            let mut ledger = self.ledger.lock();
            let Some(held) = ledger.deliveries.remove(&token.0) else {
                return Err(QueueError::UnknownAck(token.0));
            };
            let leaving = ledger.settle(&held);
            (held, leaving)
        };
        // Count them out before the broker hears it: the local count may be
        // briefly below the broker's, never above (see `maybe_resync`).
        self.backlog.release(leaving);
        let replies: Vec<Subject> = held.into_iter().filter_map(|h| h.reply).collect();
        let client = self.client.clone();
        let send = async move {
            for reply in replies {
                client
                    .publish(reply, AckKind::Ack.into())
                    .await
                    .map_err(|e| format!("ack failed: {e}"))?;
            }
            // The server handles a connection's messages in order: once
            // the flush's PONG is back, it has processed every ack.
            client
                .flush()
                .await
                .map_err(|e| format!("ack flush failed: {e}"))
        };
        match run_on(&self.handle, self.config.request_timeout, send) {
            Some(Ok(())) => Ok(()),
            // The broker redelivers what it did not hear acked.
            Some(Err(e)) => Err(self.backend(e)),
            None => Err(self.timed_out("acking")),
        }
    }

    fn len(&self) -> usize {
        self.backlog.get()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn durability(&self) -> Durability {
        Durability::Broker
    }

    fn guarantee(&self) -> String {
        format!(
            "acknowledged by NATS JetStream at {} (stream {}, file storage) before the 202: \
             survives a broker process crash; the broker fsyncs on its own interval, so a \
             single server's power loss may lose the last writes",
            shown_url(&self.config.url),
            self.config.stream
        )
    }

    fn name(&self) -> &'static str {
        "nats"
    }
}

impl Drop for NatsQueue {
    /// Naks what is still held (redelivered at once to whoever consumes
    /// next) and flushes pending acks, within a bounded wait.
    fn drop(&mut self) {
        let held: Vec<Subject> = std::mem::take(&mut self.ledger.lock().deliveries)
            .into_values()
            .flatten()
            .filter_map(|h| h.reply)
            .collect();
        let client = self.client.clone();
        let limit = self.config.request_timeout.min(Duration::from_secs(2));
        let _ = run_on(&self.handle, limit, async move {
            for reply in held {
                let _ = client.publish(reply, AckKind::Nak(None).into()).await;
            }
            let _ = client.flush().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::testkit::metric;

    #[test]
    fn partitions_are_stable_and_spread() {
        let a = metric("cpu", &[("host", "a")], 1.0, 1);
        let same = metric("cpu", &[("host", "a")], 2.0, 2);
        assert_eq!(partition_of(&a, 8), partition_of(&same, 8));
        let used: std::collections::HashSet<u32> = (0..64)
            .map(|i| partition_of(&metric("cpu", &[("host", &format!("h{i}"))], 0.0, 0), 8))
            .collect();
        assert!(
            used.len() > 4,
            "64 series should spread over 8 partitions: {used:?}"
        );
        assert!(used.iter().all(|p| *p < 8));
        assert_eq!(partition_of(&a, 0), 0, "0 partitions is treated as 1");
    }

    #[test]
    fn ledger_counts_a_redelivered_message_once() {
        let mut ledger = Ledger::default();
        let held = |seq| Held {
            seq: Some(seq),
            reply: None,
        };
        ledger.hand_out(1, vec![held(10), held(11)]);
        ledger.hand_out(2, vec![held(10)]);
        let first = ledger.deliveries.remove(&1).unwrap();
        assert_eq!(ledger.settle(&first), 2);
        let second = ledger.deliveries.remove(&2).unwrap();
        assert_eq!(ledger.settle(&second), 0, "seq 10 already left the backlog");
        assert!(ledger.seqs.is_empty());
    }

    #[test]
    fn bad_config_is_a_typed_error() {
        let mut config = NatsConfig::new("nats://127.0.0.1:1");
        config.stream = "has.dot".into();
        assert!(matches!(
            NatsQueue::connect(config),
            Err(NatsQueueError::Config(_))
        ));
        let mut config = NatsConfig::new("nats://127.0.0.1:1");
        config.partitions = 0;
        assert!(matches!(
            NatsQueue::connect(config),
            Err(NatsQueueError::Config(_))
        ));
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            shown_url("nats://user:secret@a:4222, tls://tok@b:4222,c:4222"),
            "nats://***@a:4222,tls://***@b:4222,c:4222"
        );
        assert_eq!(shown_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn reconnect_delay_doubles_up_to_the_cap() {
        let max = Duration::from_secs(2);
        assert_eq!(reconnect_delay(1, max), Duration::from_millis(10));
        assert_eq!(reconnect_delay(2, max), Duration::from_millis(20));
        assert_eq!(reconnect_delay(100, max), max);
    }
}
