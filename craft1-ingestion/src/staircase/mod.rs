//! The staircase: the blocking servers between phase0 and the async one,
//! each removing one bottleneck so chapter 1 can measure each step.
//!
//! | step | file | removes | still has |
//! |---|---|---|---|
//! | `threads` | `threads.rs` | one-at-a-time: every connection gets its own thread | a thread spawn per connection; threads unbounded until the connection limit |
//! | `pool` | `pool.rs` | spawn cost and unbounded threads: a fixed pool takes connections from a channel | a connection occupies a worker while idle: N workers serve N keep-alive clients, the rest wait |
//! | `craft1` | `../server.rs` | thread-per-connection: thousands of idle connections cost a few KB each | — |
//!
//! Both blocking steps serve connections with `connection.rs` and answer
//! through the same `IngestHandler` as the async server.

pub mod connection;
pub mod pool;
pub mod threads;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::Response;

use crate::handler::IngestHandler;

/// Counts requests being served, so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct InFlight(AtomicUsize);

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Waits (bounded) until no connection is being served.
    pub(crate) fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.0.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers 503 on a connection refused at the limit, then drops it.
pub(crate) fn refuse_connection(mut stream: TcpStream, handler: &IngestHandler) {
    use std::io::Write;
    handler.metrics().connection_refused();
    let response =
        Response::error(503, "too many connections; retry later").with_header("Retry-After", "1");
    // Written straight from the accept thread: bounded, and no draining.
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(&response.to_http1(false));
}

/// The accept loop both blocking steps share; `dispatch` hands each accepted
/// connection to a thread.
pub(crate) fn accept_loop(
    listener: TcpListener,
    shutdown: &common::Shutdown,
    mut dispatch: impl FnMut(TcpStream),
) -> std::io::Result<()> {
    listener.set_nonblocking(false)?;
    for connection in listener.incoming() {
        if shutdown.is_triggered() {
            break;
        }
        match connection {
            Ok(stream) => dispatch(stream),
            Err(e) => {
                common::say_err!("[Ingestion] accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}
