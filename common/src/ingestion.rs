//! Slot 1, ingestion: the HTTP server in front of everything.
//!
//! The server owns sockets, HTTP parsing, concurrency and the write
//! protocols it decodes; whatever else a client asks (queries, health, the
//! alerting API) it hands to the [`Handler`] in its [`Ingress`], the
//! router the runtime assembled from the other slots' routes. So swapping
//! phase0's single thread for craft 1's async server never drops an
//! endpoint. Story: docs chapter 0 and chapter 1.

use std::net::TcpListener;
use std::sync::Arc;

use serde_json::json;
use thiserror::Error;

use crate::http::{Handler, Response};
use crate::{Clock, MetadataRegistry, Metric, MetricQueue, QueueError, Shutdown};

/// Why a server stopped abnormally.
#[derive(Debug, Error)]
pub enum IngestionError {
    /// The listening socket failed.
    #[error("ingestion server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server could not start (runtime, configuration).
    #[error("ingestion server failed to start: {0}")]
    Startup(String),
}

/// What a server is handed: where writes go, the time that stamps samples
/// without one, and the handler for every request it does not answer
/// itself.
#[derive(Clone)]
pub struct Ingress {
    /// The queue the write routes push to.
    pub queue: Arc<dyn MetricQueue>,
    /// Stamps samples that arrive without a timestamp.
    pub clock: Arc<dyn Clock>,
    /// Everything but the server's own write routes.
    pub routes: Arc<dyn Handler>,
    /// Where a write path that carries metric types and help (remote_write's
    /// `metadata`) records them, for `/api/v1/metadata`.
    pub metadata: Arc<MetadataRegistry>,
}

impl Ingress {
    /// Pushes a decoded batch and answers as every write route must: 202
    /// (the seed's `{"status":"accepted"}` for one metric, with a `count`
    /// for more), 503 with `Retry-After` when the queue is full or closing
    /// (backpressure), 500 when the queue's backend failed.
    pub fn push(&self, metrics: Vec<Metric>) -> Response {
        let count = metrics.len();
        match self.queue.push(metrics) {
            // The seed's answer, as static bytes: it is every write's answer.
            Ok(()) if count == 1 => Response {
                status: 202,
                content_type: "application/json",
                headers: Vec::new(),
                body: br#"{"status":"accepted"}"#.to_vec(),
            },
            Ok(()) => Response::json(202, &json!({"status": "accepted", "count": count})),
            Err(e @ QueueError::Full { .. }) => {
                Response::error(503, e.to_string()).with_header("Retry-After", "1")
            }
            Err(e @ QueueError::Closed) => {
                Response::error(503, format!("{e}: the server is shutting down"))
                    .with_header("Retry-After", "5")
            }
            Err(e) => Response::error(500, e.to_string()),
        }
    }
}

/// An HTTP server that takes writes and answers the pipeline's routes.
///
/// # Contract
/// - [`serve`](Self::serve) blocks the calling thread until `shutdown` is
///   triggered, then stops accepting, finishes the requests in flight and
///   returns. The pipeline wakes a blocking `accept` by connecting once after
///   triggering; a server must treat that connection as a wake-up, not a
///   client.
/// - `POST /metrics` with the seed's JSON object is a write every server
///   answers (202 through [`Ingress::push`], 400 with a JSON error for a
///   bad body); servers may speak more write protocols. Every other request
///   goes to `ingress.routes`. Malformed HTTP gets a 4xx with a JSON
///   `{"error": ...}` body; nothing a client sends may panic the server or
///   stop it serving others (beyond the delay the implementation's
///   concurrency model implies).
pub trait IngestionServer: Send + Sync {
    /// Serves on `listener` until `shutdown`.
    ///
    /// # Errors
    /// [`IngestionError`] when the listener itself fails.
    fn serve(
        &self,
        listener: TcpListener,
        ingress: Ingress,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError>;

    /// A short name (`phase0`, `threads`, `pool`, `craft1`).
    fn name(&self) -> &'static str;

    /// A one-line description of the concurrency model for the startup log.
    fn describe(&self) -> String;
}
