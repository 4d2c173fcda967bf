//! # craft5-alerting — the alerting slot, rebuilt to stream
//!
//! phase0 polls: every 10 s it re-queries every rule's whole window through
//! the query slot (one full scan per rule), and a condition that stays true
//! prints again at every check. Craft 5 evaluates on ingest, pages once per
//! transition, routes and groups like Alertmanager, delivers durably, and
//! remembers what it paged across restarts.
//!
//! # Layout
//!
//! One folder per stage an alert passes through, one file per concept:
//!
//! - [`rules`] — rule files in the shape of Prometheus rule groups,
//!   alerting and recording rules, with errors that name the file, group,
//!   rule and line; expressions sorted into *streaming*
//!   (`avg_over_time(x[5m]) > 80`) and *periodic* (anything else, asked of
//!   the query slot); the seed's defaults as `rules/default.yml`. The
//!   language itself is the `promql` crate's.
//! - [`evaluation`] — the [`StreamingAlertEngine`]: sliding windows, the
//!   rule index, periodic rules, recording rules (written back through
//!   the platform's queue, `common::MetricWriter`), the alert state
//!   machine and its persisted state.
//! - [`routing`] — the route tree, alert groups and their timers,
//!   inhibition, and the [`Dispatcher`] that flushes groups.
//! - [`delivery`] — the outbox, the delivery worker (retries, fallback,
//!   dead letters), the notification history, and the receivers.
//! - [`oncall`] — acknowledgements, escalation policies and the escalator,
//!   on-call schedules.
//! - [`config`] — the `alertmanager.yml`-shaped file that configures
//!   routing, receivers, delivery, escalation and schedules, in one place;
//!   [`args`] — the slot's command-line flags and its `build()`.
//! - [`service`] — [`AlertingService`], all of it behind
//!   `common::AlertEngine`; [`api`] — [`AlertingApi`], its routes
//!   (`/api/v1/rules`, `/api/v1/alerts`, silences, notifications,
//!   on-call).
//! - [`silence`] — silences with label matchers and a time range,
//!   persisted.
//! - [`notification`], [`console`] — the transition event, the channels
//!   that hear firing *and* resolved, the seed's console block.
//! - The small pieces the stages share: [`matcher`] (label matchers of
//!   routes and silences), [`fingerprint`], [`template`] (`{{ $value }}`
//!   in annotations), [`signal`] (wake a sleeping thread), `atomic_file`
//!   (crash-safe replacement of small state files).
//!
//! Measured (docs chapter 5, "Measured"): detection latency end to end
//! (`loadgen alert-latency`), rule checks per second beside phase0
//! (`benches/rules.rs`), delivery under a flaky receiver
//! (`examples/flaky_delivery.rs`).

pub mod api;
pub mod args;
mod atomic_file;
pub mod config;
pub mod console;
pub mod delivery;
pub mod evaluation;
pub mod fingerprint;
pub mod matcher;
pub mod notification;
pub mod oncall;
pub mod routing;
pub mod rules;
pub mod service;
pub mod signal;
pub mod silence;
pub mod template;

pub use api::AlertingApi;
pub use config::{ConfigProblem, RoutingConfig, RoutingConfigError};
pub use console::ConsoleNotifier;
pub use delivery::outbox::{Outbox, OutboxError};
pub use delivery::receivers::{Integration, Notification, NotifiedAlert, ReceiverSet, Status};
pub use evaluation::state::{AlertState, AlertStatus, Transition};
pub use evaluation::store::{StateStore, StoreError};
pub use evaluation::{
    AlertSnapshot, EngineError, EngineOptions, EngineStats, Outcome, StreamingAlertEngine,
};
pub use notification::{AlertEvent, TransitionNotifier};
pub use routing::Dispatcher;
pub use rules::{Rule, RuleFileError, RuleGroup, RuleSet, Scope, file::load_rule_files};
pub use service::{AlertingService, ServiceError, ServiceOptions};
pub use silence::{Silence, SilenceError, SilenceSpec, Silences};
pub use template::{Template, TemplateError};
