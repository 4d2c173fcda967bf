//! Staircase step 2: a fixed pool of worker threads fed by a bounded
//! crossbeam channel of accepted connections, with keep-alive.
//!
//! Removes the spawn per connection and bounds the threads. Keeps, and
//! shows: a worker is tied to its connection for the connection's whole
//! life, idle or not — with N workers the (N+1)-th keep-alive client waits
//! until someone disconnects or idles out. That is the wall the async step
//! removes. Story: docs chapter 1, "Step 2: a thread pool".

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{IngestionError, IngestionServer, Shutdown};
use crossbeam_channel::TrySendError;

use super::{InFlight, accept_loop, connection, refuse_connection};
use crate::config::ServerConfig;
use crate::handler::IngestHandler;

/// A fixed pool of connection-serving threads.
pub struct ThreadPoolServer {
    config: ServerConfig,
    workers: usize,
}

impl ThreadPoolServer {
    /// `workers` threads (at least 1) under `config`'s limits.
    pub fn new(config: ServerConfig, workers: usize) -> Self {
        ThreadPoolServer {
            config,
            workers: workers.max(1),
        }
    }
}

impl IngestionServer for ThreadPoolServer {
    fn serve(
        &self,
        listener: TcpListener,
        ingress: common::Ingress,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError> {
        let handler = Arc::new(IngestHandler::new(ingress, self.config.clone()));
        let in_flight = Arc::new(InFlight::default());
        // Accepted connections wait here for a free worker; beyond the
        // connection limit they are refused instead of queued without end.
        let waiting = self
            .config
            .max_connections
            .saturating_sub(self.workers)
            .max(1);
        let (sender, receiver) = crossbeam_channel::bounded::<TcpStream>(waiting);
        let mut workers = Vec::with_capacity(self.workers);
        for index in 0..self.workers {
            let (receiver, handler, shutdown, in_flight) = (
                receiver.clone(),
                handler.clone(),
                shutdown.clone(),
                in_flight.clone(),
            );
            let worker = std::thread::Builder::new()
                .name(format!("pool-worker-{index}"))
                .spawn(move || {
                    for stream in receiver {
                        let _guard = in_flight.enter();
                        let client = connection::client_ip(&stream);
                        handler.metrics().connection_opened();
                        connection::serve(stream, client, &handler, true, &shutdown);
                        handler.metrics().connection_closed();
                    }
                })
                .map_err(|e| IngestionError::Startup(format!("cannot spawn pool worker: {e}")))?;
            workers.push(worker);
        }
        accept_loop(listener, &shutdown, |stream| {
            match sender.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(stream) | TrySendError::Disconnected(stream)) => {
                    refuse_connection(stream, &handler)
                }
            }
        })?;
        // Closing the channel ends each worker after its current connection,
        // which notices the shutdown between requests.
        drop(sender);
        in_flight.wait_idle(Duration::from_secs(30));
        for worker in workers {
            let _ = worker.join();
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "pool"
    }

    fn describe(&self) -> String {
        format!(
            "a fixed pool of {} threads, keep-alive (staircase step 2)",
            self.workers
        )
    }
}
