//! `IngestHandler`: what every craft 1 server does with a request, whatever
//! its concurrency model — auth, rate limit, decompression, the write
//! protocols, the server's own `/metrics` — before handing everything else
//! to the pipeline's router (the [`Ingress`]'s handler).
//!
//! The staircase servers and the async server differ only in how they get
//! bytes in and out; they all call [`IngestHandler::handle`], so they speak
//! exactly the same protocols and a measured difference between them is
//! concurrency, nothing else. Story: docs chapter 1.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use common::http::{Request, Response};
use common::{Ingress, Metric};

use crate::config::ServerConfig;
use crate::decode::{self, DecodeLimits, Format, Precision};
use crate::rate_limit::RateLimiter;
use crate::self_metrics::{RejectReason, SelfMetrics};

/// Prometheus' text exposition content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handler reads from a request. The staircase servers parse
/// into common's owned [`Request`]; the async server hands over a borrowed
/// view of hyper's request instead, so a write copies no header, path or
/// body on its way to the decoder (those copies were a tenth of a
/// single-metric request's instructions). Only a request for the router
/// is turned into an owned `Request`, by [`RequestView::to_request`].
pub trait RequestView {
    /// `GET`, `POST`, …
    fn method(&self) -> &str;
    /// The path without the query string.
    fn path(&self) -> &str;
    /// The raw query string after `?`, still percent-encoded ("" if none).
    fn query(&self) -> &str;
    /// The first header named `name` (lowercase), case-insensitively.
    fn header(&self, name: &str) -> Option<&str>;
    /// The whole body.
    fn body(&self) -> &[u8];
    /// The request as the router takes it.
    fn to_request(&self) -> Cow<'_, Request>;
}

impl RequestView for Request {
    fn method(&self) -> &str {
        &self.method
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn query(&self) -> &str {
        &self.query
    }

    fn header(&self, name: &str) -> Option<&str> {
        Request::header(self, name)
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    fn to_request(&self) -> Cow<'_, Request> {
        Cow::Borrowed(self)
    }
}

/// The request handling shared by every craft 1 server.
pub struct IngestHandler {
    ingress: Ingress,
    config: ServerConfig,
    metrics: Arc<SelfMetrics>,
    limiter: Option<RateLimiter>,
    decode_limits: DecodeLimits,
}

/// Which write protocol a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteRoute {
    /// `POST /metrics`: the seed's JSON object, a JSON array, or NDJSON.
    Json,
    /// `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x).
    LineProtocol,
    /// `POST /api/v1/write`: Prometheus remote_write.
    RemoteWrite,
}

impl IngestHandler {
    /// A handler writing to `ingress`'s queue and answering the rest
    /// through its router, under `config`'s limits.
    pub fn new(ingress: Ingress, config: ServerConfig) -> Self {
        let limiter = config
            .rate_limit_per_client
            .map(|rate| RateLimiter::new(rate, config.rate_limit_burst));
        let decode_limits = DecodeLimits {
            max_labels_per_series: config.max_labels_per_series,
            max_body_bytes: config.max_decompressed_bytes,
            max_samples_per_request: config.max_samples_per_request,
        };
        IngestHandler {
            ingress,
            config,
            metrics: Arc::new(SelfMetrics::default()),
            limiter,
            decode_limits,
        }
    }

    /// The limits this handler enforces.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The server's own counters (servers record connections here).
    pub fn metrics(&self) -> &Arc<SelfMetrics> {
        &self.metrics
    }

    /// True for requests that may block on storage (queries): async servers
    /// run those off their event loop.
    pub fn may_block(request: &impl RequestView) -> bool {
        let (method, path) = (request.method(), request.path());
        method == "GET" && (path == "/query" || path.starts_with("/api/v1/"))
            || method == "POST" && path.starts_with("/api/v1/") && path != "/api/v1/write"
    }

    /// Answers one request from `client`. Never panics on client input.
    pub fn handle(&self, request: &impl RequestView, client: IpAddr) -> Response {
        let started = Instant::now();
        let response = self.answer(request, client);
        self.metrics.record_request(
            route_label(request.path()),
            response.status,
            started.elapsed(),
        );
        response
    }

    /// A response for a request refused before it was read (too large, too
    /// many connections), counted like any other.
    pub fn refuse(&self, request_path: &str, status: u16, message: impl Into<String>) -> Response {
        let reason = match status {
            413 => RejectReason::TooLarge,
            429 => RejectReason::RateLimited,
            503 => RejectReason::QueueFull,
            _ => RejectReason::Invalid,
        };
        self.metrics.record_rejected(reason);
        let label = route_label(request_path);
        self.metrics
            .record_request(label, status, std::time::Duration::ZERO);
        Response::error(status, message)
    }

    fn answer(&self, request: &impl RequestView, client: IpAddr) -> Response {
        if let Some(token) = &self.config.auth_token
            && request.path() != "/health"
            && !bearer_matches(request, token)
        {
            self.metrics.record_rejected(RejectReason::Unauthorized);
            return Response::error(
                401,
                "missing or wrong bearer token: send Authorization: Bearer <token>",
            )
            .with_header("WWW-Authenticate", "Bearer realm=\"systems-craft\"");
        }
        if let Some(limiter) = &self.limiter
            && let Err(wait) = limiter.check(client, Instant::now())
        {
            self.metrics.record_rejected(RejectReason::RateLimited);
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Response::error(
                429,
                format!("rate limit exceeded for {client}; retry in {seconds} s"),
            )
            .with_header("Retry-After", seconds.to_string());
        }
        match (request.method(), request.path()) {
            ("POST", "/metrics") => self.write(request, WriteRoute::Json),
            ("POST", "/write" | "/api/v2/write") => self.write(request, WriteRoute::LineProtocol),
            ("POST", "/api/v1/write") => self.write(request, WriteRoute::RemoteWrite),
            ("GET", "/metrics") => Response {
                status: 200,
                content_type: PROMETHEUS_TEXT,
                headers: Vec::new(),
                body: {
                    let mut text = self.metrics.render(self.ingress.queue.len());
                    self.ingress.routes.write_metrics(&mut text);
                    text.into_bytes()
                },
            },
            // InfluxDB clients probe /ping before writing.
            ("GET" | "HEAD", "/ping") => Response {
                status: 204,
                content_type: "text/plain",
                headers: Vec::new(),
                body: Vec::new(),
            },
            (method, path @ ("/write" | "/api/v2/write" | "/api/v1/write")) => {
                Response::method_not_allowed(method, path, "POST")
            }
            (method, "/metrics") => Response::method_not_allowed(method, "/metrics", "GET, POST"),
            _ => self.ingress.routes.handle(&request.to_request()),
        }
    }

    fn write(&self, request: &impl RequestView, route: WriteRoute) -> Response {
        if request.body().len() > self.config.max_body_bytes {
            return self.refuse(
                request.path(),
                413,
                format!(
                    "body of {} bytes exceeds the limit of {} bytes",
                    request.body().len(),
                    self.config.max_body_bytes
                ),
            );
        }
        let metrics = match self.decode_body(request, route) {
            Ok(metrics) => metrics,
            Err((status, message)) => {
                self.metrics.record_rejected(if status == 413 {
                    RejectReason::TooLarge
                } else {
                    RejectReason::Invalid
                });
                return Response::error(status, message);
            }
        };
        if metrics.is_empty() {
            // Line protocol with only string fields: nothing to store, and
            // nothing wrong with the request either.
            return no_content();
        }
        let count = metrics.len();
        let response = self.ingress.push(metrics);
        match response.status {
            202 => {
                self.metrics.record_accepted(count);
                match route {
                    WriteRoute::Json => response,
                    // InfluxDB and Prometheus clients expect 204 No Content.
                    WriteRoute::LineProtocol | WriteRoute::RemoteWrite => no_content(),
                }
            }
            503 => {
                self.metrics.record_rejected(RejectReason::QueueFull);
                response
            }
            _ => response,
        }
    }

    /// Body → metrics, or (status, message).
    fn decode_body(
        &self,
        request: &impl RequestView,
        route: WriteRoute,
    ) -> Result<Vec<Metric>, (u16, String)> {
        let encoding: Cow<'_, str> = match request.header("content-encoding") {
            None => Cow::Borrowed(""),
            Some(e) => Cow::Owned(e.trim().to_ascii_lowercase()),
        };
        let now_ms = self.ingress.clock.now_ms();
        let format = match route {
            WriteRoute::Json => {
                let ndjson = request.header("content-type").is_some_and(|t| {
                    t.get(..20)
                        .is_some_and(|p| p.eq_ignore_ascii_case("application/x-ndjson"))
                });
                if ndjson { Format::Ndjson } else { Format::Json }
            }
            WriteRoute::LineProtocol => {
                let precision = form_urlencoded::parse(request.query().as_bytes())
                    .find(|(k, _)| k == "precision")
                    .map(|(_, v)| v);
                let precision = match precision {
                    Some(text) => Precision::parse(&text).map_err(|e| (400, e.to_string()))?,
                    None => Precision::Nanoseconds,
                };
                Format::LineProtocol(precision)
            }
            WriteRoute::RemoteWrite => {
                if let Some(content_type) = request.header("content-type")
                    && !content_type
                        .to_ascii_lowercase()
                        .starts_with("application/x-protobuf")
                {
                    return Err((
                        415,
                        format!(
                            "remote_write expects Content-Type application/x-protobuf, got {content_type:?}"
                        ),
                    ));
                }
                if !(encoding.is_empty() || encoding == "snappy") {
                    return Err((
                        415,
                        format!("remote_write expects Content-Encoding snappy, got {encoding:?}"),
                    ));
                }
                let body = request.body();
                if body.len() > self.decode_limits.max_body_bytes {
                    let error = decode::DecodeError::TooLarge {
                        stage: "body",
                        limit: self.decode_limits.max_body_bytes,
                    };
                    return Err((error.status(), error.to_string()));
                }
                let (metrics, metadata) =
                    decode::decode_remote_write_with_metadata(body, &self.decode_limits)
                        .map_err(|e| (e.status(), e.to_string()))?;
                // Recorded whatever the queue answers: a sender told 503
                // repeats the request, and a repeat changes nothing here.
                self.ingress.metadata.record(metadata);
                return Ok(metrics);
            }
        };
        let inflated;
        let body: &[u8] = match &*encoding {
            "" | "identity" => request.body(),
            "gzip" | "x-gzip" => {
                inflated = decode::gzip::gunzip(request.body(), self.decode_limits.max_body_bytes)
                    .map_err(|e| (e.status(), e.to_string()))?;
                &inflated
            }
            other => {
                return Err((
                    415,
                    format!("Content-Encoding {other:?} is not supported here; use gzip or none"),
                ));
            }
        };
        decode::decode(format, body, now_ms, &self.decode_limits)
            .map_err(|e| (e.status(), e.to_string()))
    }
}

fn no_content() -> Response {
    Response {
        status: 204,
        content_type: "text/plain",
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte
/// from response times.
fn bearer_matches(request: &impl RequestView, token: &str) -> bool {
    let Some(given) = request.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A bounded set of route names for the self-metrics labels (never the raw
/// path: a client must not be able to create label values at will).
fn route_label(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/write" => "/write",
        "/api/v2/write" => "/api/v2/write",
        "/api/v1/write" => "/api/v1/write",
        "/query" => "/query",
        "/health" => "/health",
        "/ping" => "/ping",
        p if p.starts_with("/api/v1/") => "/api/v1/*",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_compare_exactly() {
        let with = |h: &str| {
            Request::new(
                "POST",
                "/metrics",
                vec![("Authorization".into(), h.into())],
                vec![],
            )
        };
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cret!"), "s3cret"));
        assert!(!bearer_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(
            &Request::new("POST", "/", vec![], vec![]),
            "s3cret"
        ));
    }

    #[test]
    fn route_labels_are_bounded() {
        let label = route_label;
        assert_eq!(label("/api/v1/query"), "/api/v1/*");
        assert_eq!(label("/random/path/12345"), "other");
    }
}
