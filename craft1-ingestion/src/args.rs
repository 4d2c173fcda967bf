//! Craft 1's command-line flags, as a clap `Args` struct the platform
//! flattens into its own, and the servers built from them: the staircase's
//! `threads` and `pool` steps and the async server, under one set of
//! limits. Docs chapter 1.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use common::IngestionServer;
use common::duration::parse_positive_duration;
use thiserror::Error;

use crate::{AsyncServer, ServerConfig, ThreadPerConnectionServer, ThreadPoolServer};

/// A flag value the servers cannot run with.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct ArgsError(String);

/// Which craft 1 server to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A thread per connection, keep-alive.
    Threads,
    /// A fixed pool of threads, keep-alive.
    Pool,
    /// hyper + tokio.
    Async,
}

/// Craft 1's flags.
#[derive(Debug, Clone, Args)]
pub struct IngestionArgs {
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most labels per series (400 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_labels_per_series)]
    pub max_labels: usize,
    /// Most samples one request may carry (413 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_samples_per_request)]
    pub max_samples: usize,
    /// Request headers must arrive within this long.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Idle keep-alive connections are closed after this long.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,
    /// Most open connections (503 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Per-client sustained requests per second (429 beyond); off by default.
    #[arg(long)]
    pub rate_limit: Option<f64>,
    /// Requests a client may burst above --rate-limit.
    #[arg(long, default_value_t = 100.0)]
    pub rate_burst: f64,
    /// Require `Authorization: Bearer <token>` on everything but /health.
    /// Also read from the PLATFORM_AUTH_TOKEN environment variable.
    #[arg(long, env = "PLATFORM_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Worker threads of the async runtime; default: one per core.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Threads of the `pool` step: at most this many keep-alive clients are
    /// served at once, the rest wait for a free thread.
    #[arg(long, default_value_t = 32)]
    pub pool_size: usize,
}

impl IngestionArgs {
    /// The limits the flags describe.
    ///
    /// # Errors
    /// [`ArgsError`] naming the flag whose value cannot work.
    pub fn server_config(&self) -> Result<ServerConfig, ArgsError> {
        let defaults = ServerConfig::default();
        if self.max_connections == 0 {
            return Err(ArgsError("--max-connections must be at least 1".into()));
        }
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(ArgsError(format!(
                "--rate-limit {rate} must be a positive number of requests per second"
            )));
        }
        if !(self.rate_burst.is_finite() && self.rate_burst >= 1.0) {
            return Err(ArgsError(format!(
                "--rate-burst {} must be at least 1",
                self.rate_burst
            )));
        }
        if self.auth_token.as_deref().is_some_and(str::is_empty) {
            return Err(ArgsError("--auth-token must not be empty".into()));
        }
        Ok(ServerConfig {
            max_body_bytes: self.max_body_bytes,
            max_decompressed_bytes: defaults.max_decompressed_bytes.max(self.max_body_bytes),
            max_labels_per_series: self.max_labels,
            max_samples_per_request: self.max_samples.max(1),
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            rate_limit_per_client: self.rate_limit,
            rate_limit_burst: self.rate_burst,
            auth_token: self.auth_token.clone(),
            worker_threads: self.workers.unwrap_or(defaults.worker_threads).max(1),
        })
    }

    /// The server of `step` under these limits.
    ///
    /// # Errors
    /// As [`server_config`](Self::server_config).
    pub fn build(&self, step: Step) -> Result<Arc<dyn IngestionServer>, ArgsError> {
        let config = self.server_config()?;
        Ok(match step {
            Step::Threads => Arc::new(ThreadPerConnectionServer::new(config)),
            Step::Pool => Arc::new(ThreadPoolServer::new(config, self.pool_size)),
            Step::Async => Arc::new(AsyncServer::new(config)),
        })
    }
}
