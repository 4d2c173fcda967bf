//! Delivery: from "this group needs a notification" to "the receiver has
//! it", durably.
//!
//! A notification is written to the outbox before anyone tries to send it;
//! a worker thread sends it, retries with backoff and jitter, hands it to
//! a fallback receiver when one keeps failing, dead-letters it at last,
//! and records every attempt in a queryable history.
//!
//! # Layout
//!
//! - `outbox.rs` — the durable log of notifications and their attempts;
//! - `notify_log.rs` — what each integration was last told about each
//!   group, persisted with the outbox;
//! - `worker.rs` — the delivery thread: backoff, jitter, fallback,
//!   dead letters, and the file's `delivery:` settings;
//! - `history.rs` — what was sent to whom and how it went
//!   (`GET /api/v1/notifications`);
//! - `receivers/` — the integrations: console, JSON webhook,
//!   Alertmanager's webhook payload, Slack, PagerDuty Events v2, email.
//!
//! Docs: chapter 5, "Delivery guarantees".

pub mod alertmanager_api;
pub mod history;
pub mod notify_log;
pub mod outbox;
pub mod receivers;
pub mod worker;

pub use worker::{DeliverySettings, DeliveryWorker, Jitter};
