//! Slot 1, ingestion: the HTTP server in front of everything.
//!
//! The server owns sockets, HTTP parsing and concurrency; what each route
//! does lives in [`crate::http::Routes`], shared by every server, so swapping
//! phase0's single thread for craft 1's async server never drops an endpoint.
//! Story: docs chapter 0 and chapter 1.

use std::net::TcpListener;
use std::sync::Arc;

use thiserror::Error;

use crate::Shutdown;
use crate::http::Routes;

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

/// An HTTP server that answers the pipeline's routes.
///
/// # Contract
/// - [`serve`](Self::serve) blocks the calling thread until `shutdown` is
///   triggered, then stops accepting, finishes the requests in flight and
///   returns. The pipeline wakes a blocking `accept` by connecting once after
///   triggering; a server must treat that connection as a wake-up, not a
///   client.
/// - Every request is answered through `routes.handle`; malformed HTTP gets a
///   4xx with a JSON `{"error": ...}` body; nothing a client sends may panic
///   the server or stop it serving others (beyond the delay the
///   implementation's concurrency model implies).
pub trait IngestionServer: Send + Sync {
    /// Serves on `listener` until `shutdown`.
    ///
    /// # Errors
    /// [`IngestionError`] when the listener itself fails.
    fn serve(
        &self,
        listener: TcpListener,
        routes: Arc<Routes>,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError>;

    /// A short name (`phase0`, `threads`, `pool`, `craft1`).
    fn name(&self) -> &'static str;

    /// A one-line description of the concurrency model for the startup log.
    fn describe(&self) -> String;
}
