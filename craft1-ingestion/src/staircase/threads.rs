//! Staircase step 1: a thread per connection (std only).
//!
//! Removes phase0's one-at-a-time: a slow client now blocks only its own
//! thread. Keeps: a thread spawned (and its stack mapped) for every
//! connection, and no bound but the connection limit — ten thousand idle
//! keep-alive clients are ten thousand threads. Story: docs chapter 1,
//! "Step 1: a thread per connection".

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{IngestionError, IngestionServer, Shutdown};

use super::{InFlight, accept_loop, connection, refuse_connection};
use crate::config::ServerConfig;
use crate::handler::IngestHandler;

/// One thread per connection.
pub struct ThreadPerConnectionServer {
    config: ServerConfig,
}

impl ThreadPerConnectionServer {
    /// A server under `config`'s limits.
    pub fn new(config: ServerConfig) -> Self {
        ThreadPerConnectionServer { config }
    }
}

impl IngestionServer for ThreadPerConnectionServer {
    fn serve(
        &self,
        listener: TcpListener,
        ingress: common::Ingress,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError> {
        let handler = Arc::new(IngestHandler::new(ingress, self.config.clone()));
        let open = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(InFlight::default());
        accept_loop(listener, &shutdown, |stream| {
            if open.load(Ordering::SeqCst) >= self.config.max_connections {
                refuse_connection(stream, &handler);
                return;
            }
            let client = connection::client_ip(&stream);
            open.fetch_add(1, Ordering::SeqCst);
            handler.metrics().connection_opened();
            let (handler, open, shutdown, guard) = (
                handler.clone(),
                open.clone(),
                shutdown.clone(),
                in_flight.enter(),
            );
            let spawned = std::thread::Builder::new()
                .name("connection".into())
                .spawn(move || {
                    let _guard = guard;
                    connection::serve(stream, client, &handler, true, &shutdown);
                    handler.metrics().connection_closed();
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                // Out of threads: the connection is dropped (the client sees
                // a reset) but the server goes on.
                common::say_err!("[Ingestion] cannot spawn a connection thread: {e}");
            }
        })?;
        // Connections notice the shutdown between requests (within 200 ms);
        // give requests in progress time to finish.
        in_flight.wait_idle(Duration::from_secs(30));
        Ok(())
    }

    fn name(&self) -> &'static str {
        "threads"
    }

    fn describe(&self) -> String {
        "a thread per connection, keep-alive (staircase step 1)".to_string()
    }
}
