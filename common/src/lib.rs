//! # common — the contract of Systems Craft
//!
//! Every component of the monitoring pipeline plugs in here, and nothing
//! else lives here: no thread is started and no route is answered by this
//! crate (the runtime that wires slots together is `pipeline/`).
//!
//! # Layout
//!
//! - [`metric`], [`labels`], [`rule`]: the data — a `Metric` (name, labels,
//!   value, timestamp in ms), its seed wire form and validation; `AlertRule`,
//!   the seed's rule form.
//! - [`ingestion`]: slot 1, [`IngestionServer`], and the [`Ingress`] it is
//!   handed.
//! - [`queue`]: slot 2, [`MetricQueue`], with acks and a durability promise.
//! - [`storage`]: slot 3, [`MetricStore`], matchers and time ranges, and
//!   [`AppendObserver`] for whoever derives data from the store.
//! - [`query`]: slot 4, [`QueryEngine`]: the seed's question and instant
//!   queries.
//! - [`alerting`]: slot 5, [`AlertEngine`]; [`notifier`]: [`Notifier`], the
//!   channel an alert goes out on.
//! - [`metadata`]: what a metric is beside its samples (type, help,
//!   unit), in the one [`MetadataRegistry`] a pipeline shares between the
//!   write paths that carry it and the API that answers it.
//! - [`http`]: the HTTP surface's contract — [`http::Request`],
//!   [`http::Response`], the [`http::Handler`] a server hands requests to,
//!   the [`http::RouteSet`] a slot contributes routes through.
//! - [`targets`]: the scrape targets and their health, in the one
//!   [`TargetRegistry`] the scraper writes and `/api/v1/targets` reads.
//! - [`barrier`]: [`WriteBarrier`], "every write accepted so far is
//!   stored", which a slot asks of the runtime before a deletion.
//! - [`writer`]: [`MetricWriter`], how a slot that derives samples
//!   (recording rules) writes them back through the queue.
//! - [`clock`], [`shutdown`], [`duration`], [`console`]: time, stopping,
//!   flag durations and log lines, injectable or panic-free for tests.
//! - `testkit` (feature `testkit`): the conformance suites every
//!   implementation of a slot runs, phase0's included.
//!
//! The traits are synchronous, object-safe and `Send + Sync`: an
//! implementation may use threads or an async runtime inside, but the seams
//! between slots stay simple enough to read in one sitting. The story is in
//! `docs/src/ch00-phase0.md` and `docs/src/architecture.md`.

pub mod alerting;
pub mod barrier;
pub mod clock;
pub mod console;
pub mod duration;
pub mod http;
pub mod ingestion;
pub mod labels;
pub mod metadata;
pub mod metric;
pub mod notifier;
pub mod query;
pub mod queue;
pub mod rule;
pub mod shutdown;
pub mod storage;
pub mod targets;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod writer;

pub use alerting::{AlertEngine, AlertError, Evaluation};
pub use barrier::WriteBarrier;
pub use clock::{Clock, ManualClock, SystemClock};
pub use ingestion::{IngestionError, IngestionServer, Ingress};
pub use labels::Labels;
pub use metadata::{MetadataRegistry, MetricMetadata, MetricType};
pub use metric::{Metric, MetricError, MetricInput, decode_metric_json};
pub use notifier::{Alert, Notifier, NotifyError};
pub use query::{InstantQuery, InstantSample, QueryEngine, QueryError};
pub use queue::{AckToken, Delivery, Durability, MetricQueue, QueueError};
pub use rule::{AlertRule, Condition, RuleError, load_rules, parse_rules};
pub use shutdown::Shutdown;
pub use storage::{
    AppendObserver, LabelMatcher, MatchOp, MetricStore, Sample, Series, SeriesKey, StorageError,
    TimeRange, matches_all,
};
pub use targets::{DroppedTarget, TargetHealth, TargetRegistry, TargetStatus};
pub use writer::{MetricWriter, QueueWriter};
