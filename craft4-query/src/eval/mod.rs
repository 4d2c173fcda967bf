//! The evaluator: an expression tree (`crate::lang`) in, a [`Value`] out,
//! reading samples through `common::MetricStore`. Docs chapter 4.
//!
//! INTERFACE ONLY in this commit — the bodies are being written (issue 6,
//! second increment) and until then every query answers
//! [`EvalError::Unsupported`]; nothing here panics.

use std::sync::Arc;
use std::time::Duration;

use common::{MetricStore, StorageError};
use thiserror::Error;

use crate::lang::Expr;
use crate::value::Value;

/// Prometheus' default lookback: an instant selector takes a series' latest
/// sample at most this old.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Limits and knobs of one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// How far back an instant selector looks for a series' latest sample.
    pub lookback_ms: i64,
    /// Most samples one query may load from the store (and hold as points)
    /// before it is stopped with [`EvalError::TooManySamples`].
    pub max_samples: usize,
    /// Longest a query may run before it is stopped with
    /// [`EvalError::Timeout`].
    pub timeout: Duration,
    /// Most points a range query may produce per series
    /// (`(end - start) / step + 1`); Prometheus' limit is 11,000.
    pub max_points_per_series: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lookback_ms: DEFAULT_LOOKBACK_MS,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
        }
    }
}

/// Why a query could not be answered.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The query loaded more samples than its budget allows.
    #[error("query processing would load too many samples into memory (limit {limit})")]
    TooManySamples {
        /// The budget.
        limit: usize,
    },
    /// The query ran longer than its timeout.
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    /// The parameters cannot work (step ≤ 0, end before start, too many
    /// points per series, …).
    #[error("{0}")]
    BadQuery(String),
    /// Evaluation reached something not implemented.
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// The query engine over a store.
pub struct Engine {
    store: Arc<dyn MetricStore>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store.name())
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    /// An engine reading from `store`.
    pub fn new(store: Arc<dyn MetricStore>, config: EngineConfig) -> Self {
        Self { store, config }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn MetricStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Evaluates `expr` at `time_ms`: a scalar, a string, an instant vector
    /// or (for a range selector) a matrix.
    ///
    /// # Errors
    /// [`EvalError`].
    pub fn instant(&self, expr: &Expr, time_ms: i64) -> Result<Value, EvalError> {
        let _ = (expr, time_ms);
        Err(EvalError::Unsupported("evaluation is not implemented yet".into()))
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms` (both
    /// included): always a [`Value::Matrix`] (a scalar expression becomes
    /// one series without labels), series ordered by key.
    ///
    /// # Errors
    /// [`EvalError::BadQuery`] for `step_ms <= 0`, `end_ms < start_ms` or
    /// more than `max_points_per_series` steps; others as [`Engine::instant`].
    pub fn range(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, EvalError> {
        let _ = (expr, start_ms, end_ms, step_ms);
        Err(EvalError::Unsupported("evaluation is not implemented yet".into()))
    }
}
