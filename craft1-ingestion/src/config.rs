//! `ServerConfig`: every limit and knob of craft 1's servers in one place,
//! with defaults chosen for a small machine facing untrusted clients.
//!
//! phase0 had three hard-coded limits; a server on a network needs a budget
//! for everything a client can make it spend — bytes, labels, connections,
//! time, and requests per second. Story: docs chapter 1, "Protection".

use std::time::Duration;

/// Limits and options shared by every craft 1 server (staircase and async).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, compressed or not, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest body after gzip/snappy decompression, in bytes (413 beyond).
    pub max_decompressed_bytes: usize,
    /// Most labels one series may carry (400 beyond).
    pub max_labels_per_series: usize,
    /// Most samples one request may expand to (413 beyond): bounds the
    /// memory one request can claim, which bytes alone do not.
    pub max_samples_per_request: usize,
    /// A new connection's first request, and any request's line + headers
    /// once its first byte arrived, must arrive within this long: the
    /// blocking steps answer 408 and close; the async server closes (its
    /// watchdog looks once a second, so up to two seconds late).
    pub header_timeout: Duration,
    /// A kept-alive connection with no new request (not a byte of one) for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// Most open connections; further ones are closed at once (503).
    pub max_connections: usize,
    /// Per-client (IP) token bucket: sustained requests per second; `None`
    /// disables rate limiting.
    pub rate_limit_per_client: Option<f64>,
    /// Bucket size: requests a client may burst above the sustained rate.
    pub rate_limit_burst: f64,
    /// When set, writes and reads require `Authorization: Bearer <token>`
    /// (`/health` stays open for load balancers).
    pub auth_token: Option<String>,
    /// Worker threads for the thread-pool step and the async runtime.
    pub worker_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 32 * 1024 * 1024,
            max_labels_per_series: 32,
            max_samples_per_request: crate::decode::DEFAULT_MAX_SAMPLES_PER_REQUEST,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            rate_limit_per_client: None,
            rate_limit_burst: 100.0,
            auth_token: None,
            worker_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}
