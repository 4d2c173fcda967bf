//! The HTTP surface's contract: the wire types every server speaks
//! ([`Request`], [`Response`]), the [`Handler`] a server hands requests to,
//! and the [`RouteSet`] through which a slot contributes its own routes.
//!
//! Ingestion servers (phase0's hand-written loop, craft 1's staircase and
//! its hyper server) turn bytes into a [`Request`]; the slots that answer
//! questions (query, alerting) each offer a [`RouteSet`]; the runtime crate
//! (`pipeline/src/router.rs`) assembles one router from them, so swapping a
//! slot never drops an endpoint and a request reaches exactly one crate.
//! None of the five slot traits carries these types: only the ingestion
//! server, whose job is HTTP, takes a [`Handler`]. Story: docs chapter 0
//! and `docs/src/architecture.md`.

use serde_json::json;

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

    /// Prometheus' error envelope, `{"status":"error","errorType":…,
    /// "error":…}`: the error form of every route under `/api/v1`.
    pub fn api_error(status: u16, error_type: &str, message: impl Into<String>) -> Self {
        Self::json(
            status,
            &json!({"status": "error", "errorType": error_type, "error": message.into()}),
        )
    }

    /// `405 Method Not Allowed` naming the allowed methods (also in
    /// `Allow`), in the error form of `path`'s family.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        let message = format!("method {method} not allowed on {path}; allowed: {allowed}");
        let response = if path.starts_with("/api/v1/") {
            Self::api_error(405, "bad_data", message)
        } else {
            Self::error(405, message)
        };
        response.with_header("Allow", allowed)
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

/// Whatever answers the requests a server does not answer itself: the
/// router the runtime assembles from every slot's [`RouteSet`].
pub trait Handler: Send + Sync {
    /// Answers one request. Never panics on client input.
    fn handle(&self, request: &Request) -> Response;

    /// Appends the counters of the components behind this handler (a
    /// query cache's hits, …) in Prometheus' text format 0.0.4, for the
    /// ingestion server's `GET /metrics` to serve after its own.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// One route a [`RouteSet`] answers: a path pattern and its methods.
///
/// The pattern is matched segment by segment; a segment `*` matches any
/// one non-empty segment (`/api/v1/label/*/values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path pattern.
    pub path: &'static str,
    /// The methods answered (`GET`, `POST`, …); others get a 405.
    pub methods: &'static [&'static str],
}

impl Route {
    /// A route answering `methods` on `path`.
    pub const fn new(path: &'static str, methods: &'static [&'static str]) -> Self {
        Route { path, methods }
    }

    /// True when `path` matches this route's pattern.
    pub fn matches(&self, path: &str) -> bool {
        let mut pattern = self.path.split('/');
        let mut actual = path.split('/');
        loop {
            match (pattern.next(), actual.next()) {
                (None, None) => return true,
                (Some("*"), Some(segment)) if !segment.is_empty() => {}
                (Some(expected), Some(segment)) if expected == segment => {}
                _ => return false,
            }
        }
    }
}

/// The routes one slot implementation contributes to the one HTTP surface
/// (craft 4: the Prometheus query API; craft 5: rules, alerts, silences,
/// notifications, on-call).
///
/// # Contract
/// - [`routes`](Self::routes) is fixed for the set's life; no two sets in
///   one pipeline may claim the same pattern (the runtime refuses to
///   start).
/// - [`handle`](Self::handle) is called only for a request whose path
///   matches one of the routes and whose method that route lists; the
///   runtime answers 404 and 405 itself.
/// - Errors under `/api/v1` use [`Response::api_error`]'s envelope, others
///   [`Response::error`]'s; nothing a client sends may panic.
pub trait RouteSet: Send + Sync {
    /// Who answers, for logs and conflicts (`craft4`, `craft5`).
    fn owner(&self) -> &'static str;

    /// The routes answered.
    fn routes(&self) -> Vec<Route>;

    /// Answers a request for one of [`routes`](Self::routes).
    fn handle(&self, request: &Request) -> Response;

    /// Appends the owner's counters in Prometheus' text format 0.0.4 (see
    /// [`Handler::write_metrics`]); the default writes nothing.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
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
    fn route_patterns_match_segment_by_segment() {
        let values = Route::new("/api/v1/label/*/values", &["GET"]);
        assert!(values.matches("/api/v1/label/job/values"));
        assert!(!values.matches("/api/v1/label//values"));
        assert!(!values.matches("/api/v1/label/a/b/values"));
        assert!(!values.matches("/api/v1/label/job/values/"));
        assert!(Route::new("/query", &["GET"]).matches("/query"));
        assert!(!Route::new("/query", &["GET"]).matches("/query/x"));
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
