//! Reloading the configuration without a restart: `POST /-/reload` and
//! SIGHUP, as Prometheus offers both. Each sends a request to the scrape
//! manager, which reads the file again and answers; a file that does not
//! load leaves the running configuration as it was, and the answer (the
//! HTTP reply, or the log line for SIGHUP) names the file, line and key.
//! `GET /api/v1/status/config` shows the configuration running, secrets
//! masked.
//! Docs chapter 1, "Pull".

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use parking_lot::RwLock;

use common::http::{Request, Response, Route, RouteSet};

use super::stats::ScrapeStats;

/// The manager's answer: what was loaded, or why nothing was.
pub type Outcome = Result<String, String>;

/// How long a caller waits for the manager's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Asks the running scraper to reload; clone it for each asker.
#[derive(Clone)]
pub struct ReloadHandle {
    send: Sender<Sender<Outcome>>,
    receive: Receiver<Sender<Outcome>>,
    shown: Arc<RwLock<String>>,
}

/// The manager's end.
pub struct Requests {
    receive: Receiver<Sender<Outcome>>,
    shown: Arc<RwLock<String>>,
}

impl Requests {
    /// The next request's reply channel, if one comes within `wait`.
    pub fn next(&self, wait: Duration) -> Option<Sender<Outcome>> {
        self.receive.recv_timeout(wait).ok()
    }

    /// The configuration now running, as `/api/v1/status/config` shows it.
    pub fn show(&self, yaml: String) {
        *self.shown.write() = yaml;
    }
}

impl Default for ReloadHandle {
    fn default() -> Self {
        ReloadHandle::new()
    }
}

impl ReloadHandle {
    /// A handle no manager answers yet.
    pub fn new() -> Self {
        let (send, receive) = unbounded();
        ReloadHandle {
            send,
            receive,
            shown: Arc::default(),
        }
    }

    /// The manager's end of it.
    pub fn requests(&self) -> Requests {
        Requests {
            receive: self.receive.clone(),
            shown: self.shown.clone(),
        }
    }

    /// Reloads and waits for the outcome.
    ///
    /// # Errors
    /// The file's error, or that no scraper answered in time.
    pub fn reload(&self) -> Outcome {
        let (reply, answer) = bounded(1);
        self.send
            .send(reply)
            .map_err(|_| "the scraper is not running".to_string())?;
        answer
            .recv_timeout(ANSWER_WITHIN)
            .map_err(|_| "the scraper did not answer the reload in time".to_string())?
    }

    /// Reloads on every SIGHUP, saying the outcome.
    ///
    /// # Errors
    /// When the signal handler cannot be installed.
    pub fn reload_on_sighup(&self) -> std::io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
        let handle = self.clone();
        std::thread::Builder::new()
            .name("sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if let Err(error) = handle.reload() {
                        common::say_err!(
                            "[Scrape] SIGHUP: the configuration was not reloaded, the old one runs: {error}"
                        );
                    }
                }
            })?;
        Ok(())
    }
}

/// `POST /-/reload` (and `PUT`, as Prometheus answers both), and the
/// scraper's counters on `GET /metrics`.
pub struct ReloadRoutes {
    handle: ReloadHandle,
    stats: Arc<ScrapeStats>,
}

impl ReloadRoutes {
    /// Routes over `handle`, counters from `stats`.
    pub fn new(handle: ReloadHandle, stats: Arc<ScrapeStats>) -> Self {
        ReloadRoutes { handle, stats }
    }
}

impl RouteSet for ReloadRoutes {
    fn owner(&self) -> &'static str {
        "scrape"
    }

    fn routes(&self) -> Vec<Route> {
        vec![
            Route::new("/-/reload", &["POST", "PUT"]),
            Route::new("/api/v1/status/config", &["GET"]),
        ]
    }

    fn handle(&self, request: &Request) -> Response {
        if request.path == "/api/v1/status/config" {
            let yaml = self.handle.shown.read().clone();
            return Response::json(
                200,
                &serde_json::json!({"status": "success", "data": {"yaml": yaml}}),
            );
        }
        match self.handle.reload() {
            Ok(message) => Response::json(
                200,
                &serde_json::json!({"status": "success", "data": message}),
            ),
            // Prometheus answers a file that does not load with a 500: the
            // request was fine, the server's file is not.
            Err(error) => {
                Response::api_error(500, "internal", format!("failed to reload config: {error}"))
            }
        }
    }

    fn write_metrics(&self, out: &mut String) {
        self.stats.write(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_waits_for_the_managers_answer() {
        let handle = ReloadHandle::new();
        let requests = handle.requests();
        let manager = std::thread::spawn(move || {
            let reply = requests.next(Duration::from_secs(10)).unwrap();
            reply.send(Err("prometheus.yml: line 3".into())).unwrap();
        });
        let routes = ReloadRoutes::new(handle, Arc::default());
        let response = routes.handle(&Request::new("POST", "/-/reload", vec![], vec![]));
        manager.join().unwrap();
        assert_eq!(response.status, 500);
        let body = String::from_utf8_lossy(&response.body).to_string();
        assert!(body.contains("line 3"), "{body}");
    }
}
