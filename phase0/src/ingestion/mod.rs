//! phase0's ingestion server: one thread, a blocking accept loop, one
//! request per connection, hand-written HTTP/1.1 (`http1.rs`).
//!
//! The bottleneck the seed ends on: while this thread reads one client's
//! request, parses it, pushes to the queue and writes the answer, every other
//! client waits in the kernel's accept backlog. A slow client (chapter 0's
//! `--slow-body` run) stalls everyone; `Connection: close` costs a TCP
//! handshake per metric. Craft 1 removes both, step by step.
//!
//! It answers the seed's write, `POST /metrics`, itself (one JSON object,
//! decoded by `common::decode_metric_json`) and hands every other request
//! to the pipeline's router.
//! Story: docs chapter 0, "The ingestion server".

pub mod http1;

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::http::{Request, Response};
use common::{IngestionError, IngestionServer, Ingress, Shutdown, decode_metric_json};

pub use http1::Limits;

/// The seed's server: everything on the calling thread.
#[derive(Debug, Default, Clone)]
pub struct SingleThreadServer {
    limits: Limits,
}

impl SingleThreadServer {
    /// A server enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        SingleThreadServer { limits }
    }

    fn handle_connection(&self, mut stream: TcpStream, ingress: &Ingress) {
        let _ = stream.set_write_timeout(Some(self.limits.request_timeout));
        match http1::read_request(&mut stream, &self.limits) {
            Ok(request) => {
                let response = answer(&request, ingress);
                let _ = http1::write_response(&mut stream, &response);
            }
            Err(error) => {
                if let Some(response) = error.response(&self.limits) {
                    let _ = http1::write_response(&mut stream, &response);
                    http1::close_after_error(&mut stream);
                }
            }
        }
        // Dropping the stream closes it: one request per connection.
    }
}

impl IngestionServer for SingleThreadServer {
    fn serve(
        &self,
        listener: TcpListener,
        ingress: Ingress,
        shutdown: Shutdown,
    ) -> Result<(), IngestionError> {
        listener.set_nonblocking(false)?;
        for connection in listener.incoming() {
            if shutdown.is_triggered() {
                break;
            }
            match connection {
                Ok(stream) => self.handle_connection(stream, &ingress),
                Err(e) => {
                    // Transient (ECONNABORTED, EMFILE): note it, breathe, go on.
                    common::say_err!("[Ingestion] accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "phase0"
    }

    fn describe(&self) -> String {
        "single thread, blocking I/O, one request per connection".to_string()
    }
}

/// The seed's write, or the router for anything else.
fn answer(request: &Request, ingress: &Ingress) -> Response {
    if request.path != "/metrics" {
        return ingress.routes.handle(request);
    }
    if request.method != "POST" {
        return Response::method_not_allowed(&request.method, &request.path, "POST");
    }
    if let Some(encoding) = request.header("content-encoding")
        && !encoding.eq_ignore_ascii_case("identity")
    {
        return Response::error(
            415,
            format!(
                "Content-Encoding {encoding:?} is not supported by this server; send the body uncompressed"
            ),
        );
    }
    match decode_metric_json(&request.body, ingress.clock.now_ms()) {
        Ok(metric) => ingress.push(vec![metric]),
        Err(e) => Response::error(400, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use common::SystemClock;

    #[test]
    fn conformance() {
        common::testkit::ingestion::run_all(&|dir, listener| {
            let config = crate::Config {
                data_dir: dir.to_path_buf(),
                notifiers: vec![],
                ..Default::default()
            };
            let components =
                crate::build(config, Arc::new(SystemClock)).expect("phase0 components");
            let options = pipeline::PipelineOptions {
                verbose: false,
                ..Default::default()
            };
            Box::new(pipeline::Pipeline::start(components, listener, options).expect("starts"))
        });
    }
}
