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
//!   *periodic* (anything else, for craft 4's evaluator later); the seed's
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
//! Still to come (issue 7): routing with grouping and silences, receivers
//! (webhooks, Slack, PagerDuty, email), a durable outbox with retries,
//! escalation and acknowledgement, the alerting HTTP API, periodic rules
//! through craft 4, and the platform's `--alerting craft5 --rules FILE`.
//! The story is docs chapter 5.

pub mod console;
pub mod engine;
pub mod notification;
pub mod rules;
pub mod state;
pub mod store;
pub mod template;
pub mod window;

pub use console::ConsoleNotifier;
pub use engine::{
    AlertSnapshot, EngineError, EngineOptions, EngineStats, Outcome, StreamingAlertEngine,
};
pub use notification::{AlertEvent, TransitionNotifier};
pub use rules::{Rule, RuleFileError, RuleGroup, RuleSet, Scope, file::load_rule_files};
pub use state::{AlertState, AlertStatus, Transition};
pub use store::{StateStore, StoreError};
pub use template::{Template, TemplateError};
