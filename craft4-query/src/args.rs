//! Craft 4's command-line flags, as a clap `Args` struct the platform
//! flattens into its own, and the engine built from them over the
//! platform's store, with its routes and cache observer
//! ([`QuerySlot`]). Docs chapter 4.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use common::duration::parse_positive_duration;
use common::{MetadataRegistry, MetricStore, TargetRegistry, WriteBarrier};
use thiserror::Error;

use crate::cache::CacheConfig;
use crate::engine::{Craft4QueryEngine, QuerySlot};
use crate::eval::{Compat, EngineConfig};

/// A flag value the engine cannot run with.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct ArgsError(String);

/// Craft 4's flags.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Craft 4 query: most samples one query may load before it is stopped
    /// with an error (422) instead of exhausting memory.
    #[arg(long, default_value_t = EngineConfig::default().max_samples)]
    pub query_max_samples: usize,
    /// Craft 4 query: longest a query may run before it is stopped; a
    /// request's `timeout` parameter can only shorten it.
    #[arg(long, default_value = "2m", value_parser = parse_positive_duration)]
    pub query_timeout: Duration,
    /// Craft 4 query: keep the steps of range queries that can no longer
    /// change and evaluate only the new tail on a repeat (`on`/`off`).
    /// Late samples reported by the storage consumer invalidate it.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub query_cache: String,
    /// Craft 4 query: which Prometheus to answer as where 2.x and 3.x
    /// differ on the same samples — `prometheus3` (left-open windows,
    /// `x[5m]` is `(t-5m, t]`) or `prometheus2` (closed windows,
    /// `[t-5m, t]`, and 2.x's `rate` extrapolation near a counter's zero).
    #[arg(long, default_value = "prometheus3", value_parser = ["prometheus3", "prometheus2"])]
    pub query_compat: String,
    /// Craft 4 query: answer the admin endpoints that change data
    /// (`POST /api/v1/admin/tsdb/delete_series`), as Prometheus' flag of
    /// the same name; off, they answer 503 "admin APIs disabled".
    #[arg(long = "web.enable-admin-api")]
    pub web_enable_admin_api: bool,
}

impl QueryArgs {
    /// The engine over `store`, ready for slot 4.
    ///
    /// # Errors
    /// [`ArgsError`] for a zero sample budget.
    pub fn build(
        &self,
        store: Arc<dyn MetricStore>,
        metadata: Arc<MetadataRegistry>,
        barrier: Arc<WriteBarrier>,
        targets: Arc<TargetRegistry>,
    ) -> Result<QuerySlot, ArgsError> {
        if self.query_max_samples == 0 {
            return Err(ArgsError("--query-max-samples must be at least 1".into()));
        }
        let config = EngineConfig {
            max_samples: self.query_max_samples,
            timeout: self.query_timeout,
            compat: if self.query_compat == "prometheus2" {
                Compat::Prometheus2
            } else {
                Compat::Prometheus3
            },
            ..EngineConfig::default()
        };
        let mut engine = Craft4QueryEngine::new(store, config)
            .with_metadata(metadata)
            .with_targets(targets)
            .with_admin_api(self.web_enable_admin_api, barrier);
        if self.query_cache == "on" {
            engine = engine.with_cache(CacheConfig::enabled());
        }
        Ok(engine.slot())
    }
}
