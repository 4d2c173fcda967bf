//! # craft2-queue — the queue slot, rebuilt
//!
//! phase0's `Mutex<VecDeque>` serialises every producer on one lock, polls
//! every 100 ms, and loses everything queued when the process dies. This
//! crate replaces it three ways, all behind [`common::MetricQueue`]:
//!
//! - `crossbeam.rs` — a bounded MPMC channel: no shared lock, no polling,
//!   still memory-only;
//! - `log/` — the embedded durable default, a Kafka-style partitioned,
//!   segmented, append-only log with CRC-checked records, a sparse offset
//!   index, fsync policies, retention, crash recovery and consumer groups;
//! - `nats.rs` — NATS JetStream, for deployments that outgrow one machine.
//!
//! The story, with measurements, is `docs/src/ch02-queue.md`; the log's byte
//! layout is `docs/src/formats/log-segment.md`.

pub mod args;
pub mod backlog;
pub mod crossbeam;
pub mod log;
pub mod nats;

pub use crossbeam::CrossbeamQueue;
pub use log::{FsyncPolicy, Log, LogConfig, LogError, LogQueue};
pub use nats::{NatsConfig, NatsQueue, NatsQueueError};
