//! The Prometheus API's routes: what craft 4 adds to the platform's one
//! HTTP surface, as a `common::http::RouteSet` the runtime mounts beside
//! the others.
//!
//! Each request becomes one [`ApiCall`] (query string and form body merged,
//! as Prometheus reads them), the engine's answer is wrapped in
//! `{"status":"success","data":…}` without re-parsing it, and every
//! [`QueryError`] becomes Prometheus' error JSON with the status its kind
//! calls for: `bad_data` 400, `execution` 422, `timeout` 503,
//! `unavailable` 501, `internal` 500. Docs chapter 4, "Speaking
//! Prometheus".

use std::sync::Arc;

use common::QueryError;
use common::http::{Request, Response, Route, RouteSet};

use super::{ApiCall, ApiEndpoint};
use crate::engine::Craft4QueryEngine;

/// The routes, over one engine.
pub struct PrometheusApi {
    engine: Arc<Craft4QueryEngine>,
}

impl PrometheusApi {
    /// The API over `engine`.
    pub fn new(engine: Arc<Craft4QueryEngine>) -> Self {
        PrometheusApi { engine }
    }
}

const BOTH: &[&str] = &["GET", "POST"];
const CHANGE: &[&str] = &["POST", "PUT"];
const GET: &[&str] = &["GET"];

impl RouteSet for PrometheusApi {
    fn owner(&self) -> &'static str {
        "craft4"
    }

    fn routes(&self) -> Vec<Route> {
        vec![
            Route::new("/api/v1/query", BOTH),
            Route::new("/api/v1/query_range", BOTH),
            Route::new("/api/v1/series", BOTH),
            Route::new("/api/v1/labels", BOTH),
            Route::new("/api/v1/label/*/values", GET),
            Route::new("/api/v1/status/buildinfo", GET),
            Route::new("/api/v1/status/flags", GET),
            Route::new("/api/v1/metadata", GET),
            Route::new("/api/v1/query_exemplars", BOTH),
            Route::new("/api/v1/format_query", BOTH),
            Route::new("/api/v1/parse_query", BOTH),
            Route::new("/api/v1/status/runtimeinfo", GET),
            Route::new("/api/v1/status/tsdb", GET),
            Route::new("/api/v1/targets", GET),
            Route::new("/api/v1/targets/metadata", GET),
            Route::new("/api/v1/alertmanagers", GET),
            Route::new("/api/v1/admin/tsdb/delete_series", CHANGE),
            Route::new("/api/v1/admin/tsdb/clean_tombstones", CHANGE),
        ]
    }

    fn handle(&self, request: &Request) -> Response {
        let Some(endpoint) = endpoint(&request.path) else {
            return Response::api_error(
                404,
                "not_found",
                format!("unknown API endpoint {}", request.path),
            );
        };
        if endpoint.is_admin() && !self.engine.admin_api() {
            // Prometheus' answer without `--web.enable-admin-api`.
            return Response::api_error(503, "unavailable", "admin APIs disabled");
        }
        let mut params = request.query_pairs();
        if request.method == "POST" || request.method == "PUT" {
            params.extend(form_urlencoded::parse(&request.body).into_owned());
        }
        let admin = endpoint.is_admin();
        match self.engine.api_json(&ApiCall { endpoint, params }) {
            Ok(_) if admin => Response {
                status: 204,
                content_type: "application/json",
                headers: Vec::new(),
                body: Vec::new(),
            },
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
            Err(error) => api_error(error),
        }
    }

    fn write_metrics(&self, out: &mut String) {
        self.engine.write_metrics(out);
    }
}

/// A [`QueryError`] as Prometheus' error JSON.
pub fn api_error(error: QueryError) -> Response {
    match error {
        QueryError::BadRequest(m) => Response::api_error(400, "bad_data", m),
        QueryError::Unsupported(m) => Response::api_error(501, "unavailable", m),
        QueryError::LimitExceeded(m) | QueryError::Execution(m) => {
            Response::api_error(422, "execution", m)
        }
        QueryError::Timeout(m) => Response::api_error(503, "timeout", m),
        e @ QueryError::Storage(_) => Response::api_error(500, "internal", e.to_string()),
    }
}

/// The endpoint a path names.
pub fn endpoint(path: &str) -> Option<ApiEndpoint> {
    match path {
        "/api/v1/query" => Some(ApiEndpoint::Query),
        "/api/v1/query_range" => Some(ApiEndpoint::QueryRange),
        "/api/v1/series" => Some(ApiEndpoint::Series),
        "/api/v1/labels" => Some(ApiEndpoint::Labels),
        "/api/v1/status/buildinfo" => Some(ApiEndpoint::BuildInfo),
        "/api/v1/status/flags" => Some(ApiEndpoint::Flags),
        "/api/v1/metadata" => Some(ApiEndpoint::Metadata),
        "/api/v1/query_exemplars" => Some(ApiEndpoint::QueryExemplars),
        "/api/v1/format_query" => Some(ApiEndpoint::FormatQuery),
        "/api/v1/parse_query" => Some(ApiEndpoint::ParseQuery),
        "/api/v1/status/runtimeinfo" => Some(ApiEndpoint::RuntimeInfo),
        "/api/v1/status/tsdb" => Some(ApiEndpoint::TsdbStatus),
        "/api/v1/targets" => Some(ApiEndpoint::Targets),
        "/api/v1/targets/metadata" => Some(ApiEndpoint::TargetsMetadata),
        "/api/v1/alertmanagers" => Some(ApiEndpoint::Alertmanagers),
        "/api/v1/admin/tsdb/delete_series" => Some(ApiEndpoint::DeleteSeries),
        "/api/v1/admin/tsdb/clean_tombstones" => Some(ApiEndpoint::CleanTombstones),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_map_to_endpoints() {
        assert_eq!(
            endpoint("/api/v1/query_range"),
            Some(ApiEndpoint::QueryRange)
        );
        assert_eq!(
            endpoint("/api/v1/label/__name__/values"),
            Some(ApiEndpoint::LabelValues("__name__".into()))
        );
        assert_eq!(
            endpoint("/api/v1/label/a%2Fb/values"),
            None,
            "a decoded slash is no label name"
        );
        assert_eq!(endpoint("/api/v1/label//values"), None);
        assert_eq!(endpoint("/api/v1/nope"), None);
    }
}
