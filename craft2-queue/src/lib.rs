//! # craft2-queue — the queue slot, rebuilt
//!
//! phase0's `Mutex<VecDeque>` serialises every producer on one lock, polls
//! every 100 ms, and loses everything queued when the process dies. This
//! crate replaces it three ways, all behind [`common::MetricQueue`]:
//!
//! # Layout
//!
//! - [`crossbeam`] — a bounded MPMC channel: no shared lock, no polling,
//!   still memory-only.
//! - [`log`] — the embedded durable default, a Kafka-style partitioned,
//!   segmented, append-only log: `record.rs` and `codec.rs` (CRC-checked
//!   records), `segment.rs`, `index.rs` (the sparse offset index),
//!   `partition.rs`, `group.rs` (consumer groups), `queue.rs` (the log
//!   behind `common::MetricQueue`), fsync policies, retention, recovery.
//! - [`nats`] — NATS JetStream, for deployments that outgrow one machine.
//! - [`backlog`] — the lock-free capacity count that makes `push`
//!   all-or-nothing for the in-memory and broker queues.
//! - [`args`] — the queue flags, and the log or NATS queue built from them.
//! - `bin/craft2-log.rs` — an inspector for the log's files.
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
