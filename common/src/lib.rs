//! # common — the contract of Systems Craft
//!
//! Every component of the monitoring pipeline plugs in here. The layout:
//!
//! - [`metric`], [`labels`], [`rule`]: the data — a `Metric` (name, labels,
//!   value, timestamp in ms), its seed wire form and validation; `AlertRule`.
//! - One trait per slot, each with its contract written on it:
//!   [`ingestion::IngestionServer`], [`queue::MetricQueue`],
//!   [`storage::MetricStore`], [`query::QueryEngine`],
//!   [`alerting::AlertEngine`], plus [`notifier::Notifier`].
//! - [`http`]: the routes every ingestion server answers through, so a server
//!   swap never drops an endpoint.
//! - [`pipeline`]: wires any five implementations, runs the storage consumer
//!   and the alert loop, shuts down without losing what was accepted.
//! - [`clock`], [`shutdown`]: time and stopping, injectable for tests.
//! - `testkit` (feature `testkit`): the conformance suites every
//!   implementation of a slot runs, phase0's included.
//!
//! The traits are synchronous, object-safe and `Send + Sync`: an
//! implementation may use threads or an async runtime inside, but the seams
//! between slots stay simple enough to read in one sitting. The story is in
//! `docs/src/ch00-phase0.md`.

pub mod alerting;
pub mod clock;
pub mod console;
pub mod duration;
pub mod http;
pub mod ingestion;
pub mod labels;
pub mod metric;
pub mod notifier;
pub mod pipeline;
pub mod query;
pub mod queue;
pub mod rule;
pub mod shutdown;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use alerting::{AlertEngine, AlertError, Evaluation};
pub use clock::{Clock, ManualClock, SystemClock};
pub use ingestion::{IngestionError, IngestionServer};
pub use labels::Labels;
pub use metric::{Metric, MetricError, MetricInput, decode_metric_json};
pub use notifier::{Alert, Notifier, NotifyError};
pub use pipeline::{
    Components, Pipeline, PipelineError, PipelineOptions, RunningPipeline, ShutdownReport,
};
pub use query::{ApiCall, ApiEndpoint, QueryEngine, QueryError};
pub use queue::{AckToken, Delivery, Durability, MetricQueue, QueueError};
pub use rule::{AlertRule, Condition, RuleError, load_rules, parse_rules};
pub use shutdown::Shutdown;
pub use storage::{
    LabelMatcher, MatchOp, MetricStore, Sample, Series, StorageError, TimeRange, matches_all,
};
