//! On-call: keeping a page from going unanswered.
//!
//! # Layout
//!
//! - `ack.rs` — acknowledgement of one alert episode
//!   (`POST /api/v1/alerts/{id}/ack`), persisted, ending when the alert
//!   resolves;
//! - `policy.rs` — escalation policies as the config file declares them,
//!   checked against receivers and schedules;
//! - `escalation.rs` — the escalator: pages a policy's next level when an
//!   alert is not acknowledged in time, through the outbox, restart-safe;
//! - `schedule.rs` — on-call rotations with handoff times and overrides,
//!   which escalation steps ask "who is on call now".
//!
//! Docs: chapter 5, "Escalation and on-call".

pub mod ack;
pub mod escalation;
pub mod policy;
pub mod schedule;
