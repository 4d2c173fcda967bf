//! Slot 4, query: answers questions about stored samples.
//!
//! The seed asks one question — samples of one name in a time range — and
//! phase0 answers it with a full file scan per request. Craft 4 answers a
//! PromQL-style language behind the same trait (and the Prometheus HTTP
//! API as routes of its own); an engine that cannot answer says so with
//! [`QueryError::Unsupported`], which HTTP turns into 501.
//! Story: docs chapter 0 and chapter 4.

use thiserror::Error;

use crate::{Labels, Metric, StorageError, TimeRange};

/// Why a query failed.
#[derive(Debug, Error)]
pub enum QueryError {
    /// A parameter or expression is malformed (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// This engine does not implement the call (HTTP 501).
    #[error("{0}")]
    Unsupported(String),
    /// The query exceeded its sample budget (HTTP 422, Prometheus'
    /// `execution`).
    #[error("query limit exceeded: {0}")]
    LimitExceeded(String),
    /// The query ran past its time limit (HTTP 503, Prometheus' `timeout`:
    /// the same query may succeed on a less busy server).
    #[error("query timed out: {0}")]
    Timeout(String),
    /// The expression is well formed but its evaluation failed on this data
    /// (HTTP 422, Prometheus' `execution`): many-to-many matching, two
    /// series with one label set, a NaN `topk` parameter.
    #[error("{0}")]
    Execution(String),
    /// The store failed (HTTP 500).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An instant query, as the alerting slot asks one for a rule that a
/// stream cannot answer (`sum by (job) (rate(x[5m])) > 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstantQuery {
    /// The expression, in the engine's language (PromQL for craft 4).
    pub expr: String,
    /// The evaluation time, ms since the epoch.
    pub time_ms: i64,
    /// Most samples the query may hold at once; `None`: the engine's own.
    /// The engine applies the tighter of this and its own limit.
    pub max_samples: Option<usize>,
    /// How long the query may run; `None`: the engine's own. The tighter
    /// of this and the engine's own applies.
    pub timeout: Option<std::time::Duration>,
}

/// One series of an instant query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The metric name, when the expression kept it (`up` does, `rate(up[1m])`
    /// does not).
    pub name: Option<String>,
    /// The other labels.
    pub labels: Labels,
    /// The value at the evaluation time.
    pub value: f64,
}

/// A query engine over some store.
///
/// # Contract
/// - [`samples`](Self::samples): every sample of every series named `name`
///   with a timestamp in `range` (both ends inclusive), ordered by timestamp
///   (ties: by labels). An unknown name, or `start > end`, gives an empty
///   `Vec` (the HTTP route refuses `start > end` with 400 before asking, to
///   tell the client about its likely mistake). May block on storage I/O.
/// - [`instant`](Self::instant): the expression's value at one instant, one
///   [`InstantSample`] per series (a scalar is one sample without name or
///   labels), in no particular order. An engine without a language keeps
///   the default, [`QueryError::Unsupported`].
/// - Engines with more to offer over HTTP (the Prometheus API) contribute
///   those routes as a [`RouteSet`](crate::http::RouteSet) beside the
///   engine; the trait carries no HTTP.
pub trait QueryEngine: Send + Sync {
    /// The seed's question.
    ///
    /// # Errors
    /// [`QueryError::Storage`] when the store cannot be read.
    fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<Metric>, QueryError>;

    /// An instant query.
    ///
    /// # Errors
    /// [`QueryError::Unsupported`] for an engine without a language;
    /// [`QueryError::BadRequest`] for an expression that does not parse,
    /// [`QueryError::LimitExceeded`] / [`QueryError::Timeout`] over the
    /// limits, [`QueryError::Execution`] when evaluation fails on the data,
    /// [`QueryError::Storage`] when the store fails.
    fn instant(&self, query: &InstantQuery) -> Result<Vec<InstantSample>, QueryError> {
        Err(QueryError::Unsupported(format!(
            "the {} query engine has no query language to evaluate {:?}",
            self.name(),
            query.expr
        )))
    }

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
