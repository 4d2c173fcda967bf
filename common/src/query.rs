//! Slot 4, query: answers questions about stored samples.
//!
//! The seed asks one question — samples of one name in a time range — and
//! phase0 answers it with a full file scan per request. Craft 4 answers a
//! PromQL-style language and the Prometheus HTTP API through the same trait;
//! an engine that cannot answer an API call says so with
//! [`QueryError::Unsupported`], which the routes turn into 501.
//! Story: docs chapter 0 and chapter 4.

use thiserror::Error;

use crate::{Metric, StorageError, TimeRange};

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

/// The Prometheus HTTP API calls the routes hand to a query engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// `/api/v1/query`
    Query,
    /// `/api/v1/query_range`
    QueryRange,
    /// `/api/v1/series`
    Series,
    /// `/api/v1/labels`
    Labels,
    /// `/api/v1/label/<name>/values`
    LabelValues(String),
    /// `/api/v1/status/buildinfo`
    BuildInfo,
}

/// One API call: the endpoint and its parameters (query string and form body
/// merged, in order; repeated keys such as `match[]` kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// Which endpoint.
    pub endpoint: ApiEndpoint,
    /// Decoded `key=value` pairs.
    pub params: Vec<(String, String)>,
}

/// A query engine over some store.
///
/// # Contract
/// - [`samples`](Self::samples): every sample of every series named `name`
///   with a timestamp in `range` (both ends inclusive), ordered by timestamp
///   (ties: by labels). An unknown name, or `start > end`, gives an empty
///   `Vec` (the HTTP route refuses `start > end` with 400 before asking, to
///   tell the client about its likely mistake). May block on storage I/O.
/// - [`api`](Self::api): the `data` member of a Prometheus API success
///   response; errors map to Prometheus' `errorType`s.
pub trait QueryEngine: Send + Sync {
    /// The seed's question.
    ///
    /// # Errors
    /// [`QueryError::Storage`] when the store cannot be read.
    fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<Metric>, QueryError>;

    /// A Prometheus HTTP API call.
    ///
    /// # Errors
    /// [`QueryError::Unsupported`] for calls the engine does not implement,
    /// [`QueryError::BadRequest`] for bad parameters, others as their docs say.
    fn api(&self, call: &ApiCall) -> Result<serde_json::Value, QueryError>;

    /// [`api`](Self::api)'s answer as JSON text — what the HTTP routes
    /// send. The default serialises `api`'s tree; an engine whose answers
    /// are megabytes (craft 4's matrices) writes the text directly and
    /// skips building the tree. Both must give the same JSON.
    ///
    /// # Errors
    /// As [`api`](Self::api).
    fn api_json(&self, call: &ApiCall) -> Result<Vec<u8>, QueryError> {
        self.api(call).map(|data| data.to_string().into_bytes())
    }

    /// Sees each batch right after the storage consumer stored it (as
    /// [`AlertEngine::observe`](crate::AlertEngine::observe) does). An
    /// engine that keeps results between queries — craft 4's result cache —
    /// drops what a late sample changes; engines without one ignore it.
    fn observe(&self, metrics: &[Metric]) {
        let _ = metrics;
    }

    /// Appends the engine's own counters (a result cache's hits and
    /// misses, …) in Prometheus' text format 0.0.4 to `out`; the ingestion
    /// server's `GET /metrics` serves them after its own. Engines without
    /// counters keep the default, which writes nothing.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
