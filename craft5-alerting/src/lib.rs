//! # craft5-alerting — the alerting slot, rebuilt to stream
//!
//! phase0 polls: every 10 s it re-queries every rule's whole window through
//! the query slot (one full scan per rule), and a condition that stays true
//! prints again at every check. Craft 5 evaluates on ingest, pages once per
//! transition, and remembers what it paged across restarts. This first
//! increment (issue 7), one concept per file:
//!
//! - [`rules`]: rule files in the shape of Prometheus rule groups, with
//!   errors that name the file, group, rule and line; expressions sorted
//!   into *streaming* (`avg_over_time(x[5m]) > 80`, `x > 80`) and
//!   *periodic* (anything else, run through craft 4's evaluator); the seed's
//!   defaults as `rules/default.yml`.
//! - [`template`]: `{{ $value }}` and `{{ $labels.host }}` in annotations
//!   and labels, checked at load time.
//! - [`window`]: sliding-window count/sum/avg/min/max in amortised O(1)
//!   per sample, late samples included.
//! - [`state`]: the alert state machine (inactive → pending → firing →
//!   resolved, `for`, `keep_firing_for`), one event per transition.
//! - [`store`]: the alert states in a JSON file written atomically, so a
//!   restart neither pages again nor forgets a `for` timer.
//! - [`notification`], [`console`]: the transition event, the channels that
//!   hear firing *and* resolved, the seed's console block plus a
//!   RESOLVED line.
//! - [`engine`]: [`StreamingAlertEngine`], the `common::AlertEngine` that
//!   ties them together.
//!
//! The second increment routes, silences and delivers:
//!
//! - [`routing`]: an `alertmanager.yml`-shaped route tree (`continue`,
//!   nested routes, a default), alert groups with `group_wait`,
//!   `group_interval` and `repeat_interval`, and the [`routing::Dispatcher`]
//!   that flushes groups on its own thread;
//! - [`silence`]: silences with label matchers and a time range, persisted,
//!   and a per-route `send_resolved_when_silenced`;
//! - [`receivers`]: console, a generic JSON webhook, Alertmanager's
//!   webhook payload, Slack, PagerDuty Events v2, email over SMTP;
//! - [`outbox`], [`delivery`], [`history`]: notifications written durably
//!   before they are sent, retried with backoff and jitter on their own
//!   thread, dead-lettered, handed to a fallback receiver when a receiver
//!   keeps failing, and recorded in a queryable history;
//! - [`service`]: [`AlertingService`], all of it behind
//!   `common::AlertEngine`; [`api`]: the JSON bodies of `/api/v1/rules`,
//!   `/api/v1/alerts`, `/api/v1/silences`, `/api/v1/notifications`;
//! - [`matcher`], [`fingerprint`], [`signal`]: the small pieces they share.
//!
//! The third increment keeps a page from going unanswered:
//!
//! - [`ack`]: acknowledgement of one alert episode (`POST
//!   /api/v1/alerts/{id}/ack`), persisted, ending when the alert resolves;
//! - [`escalation`]: policies whose steps page the next level when an
//!   alert is not acknowledged in time, through the outbox, restart-safe;
//! - [`schedule`]: on-call rotations with handoff times and overrides,
//!   which escalation steps ask "who is on call now".
//!
//! And the rest of the rule and routing model:
//!
//! - [`periodic`]: rules a stream cannot answer, run at their group's
//!   interval as instant queries through craft 4's evaluator over the
//!   platform's store, into the same state machines;
//! - [`routing::inhibit`]: `inhibit_rules`, a firing cause muting its
//!   symptoms;
//! - [`rule_index`]: which streaming rules a sample can feed, by metric
//!   and by an equality matcher, so 10,000 rules cost a sample only the
//!   few that watch its series.
//!
//! Measured (docs chapter 5, "Measured"): detection latency end to end
//! (`loadgen alert-latency`), rule checks per second beside phase0
//! (`benches/rules.rs`), delivery under a flaky receiver
//! (`examples/flaky_delivery.rs`). The story is docs chapter 5.

pub mod ack;
pub mod api;
pub mod args;
pub mod console;
pub mod delivery;
pub mod engine;
pub mod escalation;
pub mod fingerprint;
pub mod history;
pub mod matcher;
pub mod notification;
pub mod outbox;
pub mod periodic;
pub mod receivers;
pub mod routing;
pub mod rule_index;
pub mod rules;
pub mod schedule;
pub mod service;
pub mod signal;
pub mod silence;
pub mod state;
pub mod store;
pub mod template;
pub mod window;

pub use api::AlertingApi;
pub use console::ConsoleNotifier;
pub use engine::{
    AlertSnapshot, EngineError, EngineOptions, EngineStats, Outcome, StreamingAlertEngine,
};
pub use notification::{AlertEvent, TransitionNotifier};
pub use outbox::{Outbox, OutboxError};
pub use receivers::{Integration, Notification, NotifiedAlert, ReceiverSet, Status};
pub use routing::{Dispatcher, RoutingConfig, RoutingConfigError};
pub use rules::{Rule, RuleFileError, RuleGroup, RuleSet, Scope, file::load_rule_files};
pub use service::{AlertingService, ServiceError, ServiceOptions};
pub use silence::{Silence, SilenceError, SilenceSpec, Silences};
pub use state::{AlertState, AlertStatus, Transition};
pub use store::{StateStore, StoreError};
pub use template::{Template, TemplateError};
