//! The one HTTP surface: what every route does, independent of which server
//! parsed the request.
//!
//! Ingestion servers (phase0's hand-written loop, craft 1's staircase and its
//! hyper server) turn bytes into a [`Request`] and hand it to
//! [`Routes::handle`]; the query and alerting slots contribute their answers
//! through their traits. So swapping a server never drops or changes an
//! endpoint. Story: docs chapter 0.

use std::sync::Arc;

use serde_json::json;

use crate::query::{ApiCall, ApiEndpoint};
use crate::{
    AlertEngine, Clock, MetricQueue, MetricStore, QueryError, QueueError, TimeRange,
    decode_metric_json,
};

/// A parsed HTTP request, as any server hands it over.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query string, e.g. `/query`.
    pub path: String,
    /// The raw query string after `?`, still percent-encoded ("" if none).
    pub query: String,
    /// Header pairs as received; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    /// The body, whole.
    pub body: Vec<u8>,
}

impl Request {
    /// Splits a request target (`/query?name=x`) into path and query.
    pub fn new(method: &str, target: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, query),
            None => (target, ""),
        };
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body,
        }
    }

    /// The first header named `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Query-string pairs, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A response for the server to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers (`Retry-After`, `Allow`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// `{"error": message}` with `status`: the error form of every route
    /// outside `/api/v1`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({ "error": message.into() }))
    }

    /// The response as HTTP/1.1 bytes: status line, `Content-Type`,
    /// `Content-Length`, `Connection`, the extra headers, the body. Every
    /// hand-written server writes its answers with this.
    pub fn to_http1(&self, keep_alive: bool) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = Vec::with_capacity(192 + self.body.len());
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// How a request's body is delimited, decided from its headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no `Content-Length`, no `Transfer-Encoding`).
    Empty,
    /// Exactly this many bytes follow the headers.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Reads `Transfer-Encoding` and `Content-Length` strictly, as every
/// hand-written server here must: a single `chunked` or nothing (repeated or
/// listed codings are where a proxy and a server start disagreeing about
/// where a request ends), digits-only lengths (`parse` alone would take
/// "+29"), duplicates only when they agree, and never both headers at once
/// (how request smuggling starts).
///
/// # Errors
/// A message for a 400 answer naming the offending header.
pub fn body_framing(request: &Request) -> Result<BodyFraming, String> {
    let encodings: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.as_str())
        .collect();
    let chunked = match encodings[..] {
        [] => false,
        [te] if te.eq_ignore_ascii_case("chunked") => true,
        _ => {
            return Err(format!(
                "unsupported Transfer-Encoding {:?}: only a single \"chunked\" is accepted",
                encodings.join(", ")
            ));
        }
    };
    let mut lengths = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str());
    let length = match lengths.next() {
        None => None,
        Some(first) => {
            if lengths.any(|other| other != first) {
                return Err("conflicting Content-Length headers".into());
            }
            let length: u64 = (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()))
                .then(|| first.parse().ok())
                .flatten()
                .ok_or_else(|| format!("bad Content-Length {first:?}"))?;
            Some(length)
        }
    };
    match (chunked, length) {
        (true, Some(_)) => Err("both Transfer-Encoding and Content-Length".into()),
        (true, None) => Ok(BodyFraming::Chunked),
        (false, Some(length)) => Ok(BodyFraming::Length(length)),
        (false, None) => Ok(BodyFraming::Empty),
    }
}

/// The standard reason phrase for the status codes the routes use.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Names of the five components, reported by `/health`.
#[derive(Debug, Clone, Default)]
pub struct ComponentNames {
    /// Ingestion server.
    pub ingestion: String,
    /// Queue.
    pub queue: String,
    /// Store.
    pub storage: String,
    /// Query engine.
    pub query: String,
    /// Alert engine.
    pub alerting: String,
}

/// Every route of the pipeline, shared by all ingestion servers.
pub struct Routes {
    queue: Arc<dyn MetricQueue>,
    query: Arc<dyn crate::QueryEngine>,
    alerting: Arc<dyn AlertEngine>,
    clock: Arc<dyn Clock>,
    components: ComponentNames,
}

impl Routes {
    /// Routes over the given slots.
    pub fn new(
        queue: Arc<dyn MetricQueue>,
        store: &Arc<dyn MetricStore>,
        query: Arc<dyn crate::QueryEngine>,
        alerting: &Arc<dyn AlertEngine>,
        clock: Arc<dyn Clock>,
        ingestion_name: &str,
    ) -> Self {
        let components = ComponentNames {
            ingestion: ingestion_name.to_string(),
            queue: queue.name().to_string(),
            storage: store.name().to_string(),
            query: query.name().to_string(),
            alerting: alerting.name().to_string(),
        };
        Routes {
            queue,
            query,
            alerting: alerting.clone(),
            clock,
            components,
        }
    }

    /// The queue the write routes push to.
    pub fn queue(&self) -> &Arc<dyn MetricQueue> {
        &self.queue
    }

    /// The other slots' own counters in Prometheus' text format (the query
    /// engine's cache, …), for the ingestion server's `GET /metrics` to
    /// serve after its own.
    pub fn component_metrics(&self) -> String {
        let mut out = String::new();
        self.query.write_metrics(&mut out);
        out
    }

    /// The clock that stamps samples without a timestamp.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Answers one request. Never panics on client input.
    pub fn handle(&self, request: &Request) -> Response {
        let method = request.method.as_str();
        let path = request.path.as_str();
        // The alerting engine's own API (craft 5: rules, alerts, silences,
        // notifications) answers first; everything else under /api/v1 is
        // the query slot's.
        if path.starts_with("/api/v1/")
            && let Some(response) = self.alerting.handle_http(request)
        {
            return response;
        }
        match path {
            "/metrics" => match method {
                "POST" => self.write_one(request),
                _ => method_not_allowed(method, path, "POST"),
            },
            "/query" => match method {
                "GET" => self.seed_query(request),
                _ => method_not_allowed(method, path, "GET"),
            },
            "/health" => match method {
                "GET" => self.health(),
                _ => method_not_allowed(method, path, "GET"),
            },
            _ if path.starts_with("/api/v1/") => match api_endpoint(path) {
                Some(endpoint) => match method {
                    "GET" | "POST" => self.api(endpoint, request),
                    _ => method_not_allowed(method, path, "GET, POST"),
                },
                None => api_error(404, "not_found", format!("unknown API endpoint {path}")),
            },
            _ => Response::error(404, format!("no route for {method} {path}")),
        }
    }

    /// Pushes an already-decoded batch, mapping queue errors to HTTP. Write
    /// routes of every server end here, so backpressure answers the same.
    pub fn accept(&self, metrics: Vec<crate::Metric>) -> Response {
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

    fn write_one(&self, request: &Request) -> Response {
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
        match decode_metric_json(&request.body, self.clock.now_ms()) {
            Ok(metric) => self.accept(vec![metric]),
            Err(e) => Response::error(400, e.to_string()),
        }
    }

    fn seed_query(&self, request: &Request) -> Response {
        let mut name = None;
        let mut start = i64::MIN;
        let mut end = i64::MAX;
        for (key, value) in request.query_pairs() {
            match key.as_str() {
                "name" => name = Some(value),
                "start" | "end" => {
                    let Ok(ms) = value.trim().parse::<i64>() else {
                        return Response::error(
                            400,
                            format!(
                                "invalid {key} {value:?}: expected an integer number of milliseconds since the epoch"
                            ),
                        );
                    };
                    if key == "start" {
                        start = ms;
                    } else {
                        end = ms;
                    }
                }
                _ => {}
            }
        }
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Response::error(400, "missing query parameter \"name\"");
        };
        if start > end {
            return Response::error(400, format!("start {start} is after end {end}"));
        }
        match self.query.samples(&name, TimeRange::new(start, end)) {
            Ok(metrics) => match serde_json::to_vec(&metrics) {
                Ok(body) => Response {
                    status: 200,
                    content_type: "application/json",
                    headers: Vec::new(),
                    body,
                },
                Err(e) => Response::error(500, e.to_string()),
            },
            Err(e) => query_error(e),
        }
    }

    fn health(&self) -> Response {
        Response::json(
            200,
            &json!({
                "status": "healthy",
                "queue_size": self.queue.len(),
                "accepted_means": self.queue.durability().as_str(),
                "queue_guarantee": self.queue.guarantee(),
                "components": {
                    "ingestion": self.components.ingestion,
                    "queue": self.components.queue,
                    "storage": self.components.storage,
                    "query": self.components.query,
                    "alerting": self.components.alerting,
                },
            }),
        )
    }

    fn api(&self, endpoint: ApiEndpoint, request: &Request) -> Response {
        let mut params = request.query_pairs();
        if request.method == "POST" {
            params.extend(form_urlencoded::parse(&request.body).into_owned());
        }
        match self.query.api_json(&ApiCall { endpoint, params }) {
            Ok(data) => {
                // The envelope around the engine's text, without parsing it.
                const HEAD: &[u8] = br#"{"status":"success","data":"#;
                const TAIL: &[u8] = b"}";
                let mut body = Vec::with_capacity(HEAD.len() + data.len() + TAIL.len());
                body.extend_from_slice(HEAD);
                body.extend_from_slice(&data);
                body.extend_from_slice(TAIL);
                Response {
                    status: 200,
                    content_type: "application/json",
                    headers: Vec::new(),
                    body,
                }
            }
            Err(QueryError::BadRequest(m)) => api_error(400, "bad_data", m),
            Err(QueryError::Unsupported(m)) => api_error(501, "unavailable", m),
            Err(QueryError::LimitExceeded(m) | QueryError::Execution(m)) => {
                api_error(422, "execution", m)
            }
            Err(QueryError::Timeout(m)) => api_error(503, "timeout", m),
            Err(e @ QueryError::Storage(_)) => api_error(500, "internal", e.to_string()),
        }
    }
}

fn api_endpoint(path: &str) -> Option<ApiEndpoint> {
    match path {
        "/api/v1/query" => Some(ApiEndpoint::Query),
        "/api/v1/query_range" => Some(ApiEndpoint::QueryRange),
        "/api/v1/series" => Some(ApiEndpoint::Series),
        "/api/v1/labels" => Some(ApiEndpoint::Labels),
        "/api/v1/status/buildinfo" => Some(ApiEndpoint::BuildInfo),
        _ => {
            let name = path
                .strip_prefix("/api/v1/label/")?
                .strip_suffix("/values")?;
            let name = percent_decode(name);
            (!name.is_empty() && !name.contains('/')).then_some(ApiEndpoint::LabelValues(name))
        }
    }
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn api_error(status: u16, error_type: &str, message: impl Into<String>) -> Response {
    Response::json(
        status,
        &json!({"status": "error", "errorType": error_type, "error": message.into()}),
    )
}

fn query_error(error: QueryError) -> Response {
    let status = match error {
        QueryError::BadRequest(_) => 400,
        QueryError::Unsupported(_) => 501,
        QueryError::LimitExceeded(_) | QueryError::Execution(_) => 422,
        QueryError::Timeout(_) => 503,
        QueryError::Storage(_) => 500,
    };
    Response::error(status, error.to_string())
}

fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Response {
    Response::error(
        405,
        format!("method {method} not allowed on {path}; allowed: {allowed}"),
    )
    .with_header("Allow", allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        let request = Request::new("GET", "/query?name=cpu%5Fusage&start=1", vec![], vec![]);
        assert_eq!(request.path, "/query");
        assert_eq!(
            request.query_pairs(),
            vec![
                ("name".to_string(), "cpu_usage".to_string()),
                ("start".to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn api_paths_map_to_endpoints() {
        assert_eq!(
            api_endpoint("/api/v1/query_range"),
            Some(ApiEndpoint::QueryRange)
        );
        assert_eq!(
            api_endpoint("/api/v1/label/__name__/values"),
            Some(ApiEndpoint::LabelValues("__name__".into()))
        );
        assert_eq!(api_endpoint("/api/v1/label//values"), None);
        assert_eq!(api_endpoint("/api/v1/nope"), None);
    }

    #[test]
    fn body_framing_is_strict() {
        let with = |headers: &[(&str, &str)]| {
            let headers = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            body_framing(&Request::new("POST", "/", headers, vec![]))
        };
        assert_eq!(with(&[]), Ok(BodyFraming::Empty));
        assert_eq!(
            with(&[("Content-Length", "12")]),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            with(&[("content-length", "3"), ("Content-Length", "3")]),
            Ok(BodyFraming::Length(3))
        );
        assert_eq!(
            with(&[("Transfer-Encoding", "Chunked")]),
            Ok(BodyFraming::Chunked)
        );
        for (headers, needle) in [
            (vec![("Content-Length", "+29")], "bad Content-Length"),
            (vec![("Content-Length", "")], "bad Content-Length"),
            (
                vec![("Content-Length", "99999999999999999999")],
                "bad Content-Length",
            ),
            (
                vec![("Content-Length", "2"), ("Content-Length", "3")],
                "conflicting",
            ),
            (
                vec![("Transfer-Encoding", "gzip, chunked")],
                "only a single",
            ),
            (
                vec![
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked"),
                ],
                "only a single",
            ),
            (
                vec![("Transfer-Encoding", "chunked"), ("Content-Length", "1")],
                "both",
            ),
        ] {
            let error = with(&headers).unwrap_err();
            assert!(error.contains(needle), "{headers:?}: {error}");
        }
    }

    #[test]
    fn responses_encode_as_http1() {
        let bytes = Response::error(503, "full")
            .with_header("Retry-After", "1")
            .to_http1(false);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\
             Connection: close\r\nRetry-After: 1\r\n\r\n{\"error\":\"full\"}"
        );
        assert!(
            String::from_utf8(Response::error(400, "x").to_http1(true))
                .unwrap()
                .contains("Connection: keep-alive\r\n")
        );
    }

    #[test]
    fn headers_are_case_insensitive() {
        let request = Request::new(
            "POST",
            "/",
            vec![("Content-Type".into(), "a".into())],
            vec![],
        );
        assert_eq!(request.header("content-type"), Some("a"));
    }
}
