//! The Prometheus HTTP API over the craft 4 engine: `routes.rs` matches
//! the path and gathers the parameters into one [`ApiCall`]; the rest
//! answers it with the `data` member of Prometheus' success answer, or a
//! [`QueryError`] that `routes.rs` turns into Prometheus' error JSON
//! (`{"status":"error","errorType":"bad_data","error":…}`).
//!
//! ```text
//! /api/v1/query           query.rs     parse → Engine::instant → format.rs
//! /api/v1/query_range     query.rs     parse → Engine::range   → format.rs
//!                                      (or ResultCache::range, cache.rs)
//! /api/v1/series          metadata.rs  match[] → store.select
//! /api/v1/labels          metadata.rs  store.label_names (or match[])
//! /api/v1/label/<n>/values metadata.rs store.label_values (or match[])
//! /api/v1/status/buildinfo metadata.rs
//! /api/v1/status/flags    metadata.rs  the engine's settings, Prometheus' names
//! /api/v1/status/runtimeinfo status.rs start time, working directory, cores
//! /api/v1/status/tsdb     status.rs    cardinality: store.series → top 10s
//! /api/v1/targets         status.rs    the scraper's targets and their health
//! /api/v1/targets/metadata status.rs   each target's families, from its last page
//! /api/v1/alertmanagers   status.rs    the Alertmanagers alerts are sent to
//! /api/v1/metadata        metadata.rs  the MetadataRegistry the write paths fill
//! /api/v1/query_exemplars metadata.rs  no exemplars stored yet: an empty list
//! /api/v1/format_query    metadata.rs  parse → the canonical printer
//! /api/v1/parse_query     syntax_tree.rs parse → Prometheus' JSON syntax tree
//! /api/v1/admin/tsdb/delete_series admin.rs store.delete (with --web.enable-admin-api)
//!                         params.rs, timestamp.rs: every parameter, checked first
//!                         routes.rs: the paths, the envelope, the error JSON
//! ```
//!
//! The bottleneck it removes: phase0 speaks one home-made endpoint, so
//! every dashboard and tool needs an adapter; this speaks the API that
//! `promtool`, Grafana and every Prometheus client already speak. Docs
//! chapter 4, "Speaking Prometheus".

pub mod admin;
pub mod format;
pub mod metadata;
pub mod params;
pub mod query;
pub mod routes;
pub mod status;
pub mod syntax_tree;
pub mod timestamp;

use common::{Clock, MetadataRegistry, QueryError, TargetRegistry, WriteBarrier};
use serde_json::Value as Json;

use crate::cache::ResultCache;
use crate::eval::Engine;
use crate::value::Value;
use params::Params;

/// The Prometheus HTTP API endpoints craft 4 answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// `/api/v1/query`
    Query,
    /// `/api/v1/query_range`
    QueryRange,
    /// `/api/v1/series`
    Series,
    /// `/api/v1/labels`
    Labels,
    /// `/api/v1/label/<name>/values`
    LabelValues(String),
    /// `/api/v1/status/buildinfo`
    BuildInfo,
    /// `/api/v1/status/flags`
    Flags,
    /// `/api/v1/metadata`
    Metadata,
    /// `/api/v1/query_exemplars`
    QueryExemplars,
    /// `/api/v1/format_query`
    FormatQuery,
    /// `/api/v1/parse_query`
    ParseQuery,
    /// `/api/v1/status/runtimeinfo`
    RuntimeInfo,
    /// `/api/v1/status/tsdb`
    TsdbStatus,
    /// `/api/v1/targets`
    Targets,
    /// `/api/v1/targets/metadata`
    TargetsMetadata,
    /// `/api/v1/alertmanagers`
    Alertmanagers,
    /// `/api/v1/admin/tsdb/delete_series` (admin: see [`admin`])
    DeleteSeries,
    /// `/api/v1/admin/tsdb/clean_tombstones` (admin)
    CleanTombstones,
}

impl ApiEndpoint {
    /// Whether the endpoint changes data, and so answers only when the
    /// admin API is enabled (`--web.enable-admin-api`).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            ApiEndpoint::DeleteSeries | ApiEndpoint::CleanTombstones
        )
    }
}

/// One API call: the endpoint and its parameters (query string and form body
/// merged, in order; repeated keys such as `match[]` kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// Which endpoint.
    pub endpoint: ApiEndpoint,
    /// Decoded `key=value` pairs.
    pub params: Vec<(String, String)>,
}

/// What an API call answers: a query's evaluated [`Value`], still in the
/// engine's types so it can be written as JSON text directly
/// ([`format::write_value`]), or the metadata endpoints' small JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `/api/v1/query`, `/api/v1/query_range`.
    Evaluated(Value),
    /// The other endpoints.
    Json(Json),
    /// Done, nothing to say (the admin endpoints: HTTP 204).
    Done,
}

impl Answer {
    /// The `data` member as a JSON tree.
    pub fn into_json(self) -> Json {
        match self {
            Answer::Evaluated(value) => format::format_value(&value),
            Answer::Json(json) => json,
            Answer::Done => Json::Null,
        }
    }

    /// The `data` member as JSON text, without building the tree for an
    /// evaluated value.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Answer::Evaluated(value) => {
                let mut out = Vec::new();
                format::write_value(value, &mut out);
                out
            }
            Answer::Json(json) => json.to_string().into_bytes(),
            Answer::Done => Vec::new(),
        }
    }
}

/// What an API call is answered with: the evaluator (and its store), the
/// result cache if there is one, the clock, when the server started, and
/// the metadata the write paths heard.
pub struct ApiContext<'a> {
    /// The evaluator; its store answers the metadata endpoints.
    pub engine: &'a Engine,
    /// Range queries go through it when present.
    pub cache: Option<&'a ResultCache>,
    /// The time an instant query runs at when the client does not say
    /// (and what tells the cache which steps can no longer change).
    pub clock: &'a dyn Clock,
    /// When the engine was built, ms since the epoch
    /// (`/api/v1/status/runtimeinfo`'s `startTime`).
    pub started_ms: i64,
    /// Types and help by metric family, for `/api/v1/metadata`.
    pub metadata: &'a MetadataRegistry,
    /// Settled before a deletion.
    pub barrier: &'a WriteBarrier,
    /// The scraper's targets, for `/api/v1/targets`.
    pub targets: &'a TargetRegistry,
}

/// Answers one API call.
///
/// # Errors
/// [`QueryError::BadRequest`] for bad parameters or queries,
/// [`QueryError::LimitExceeded`] over the sample budget or time limit,
/// [`QueryError::Unsupported`] for what the evaluator does not implement,
/// [`QueryError::Storage`] when the store fails.
pub fn answer(context: &ApiContext<'_>, call: &ApiCall) -> Result<Answer, QueryError> {
    let ApiContext {
        engine,
        cache,
        clock,
        ..
    } = *context;
    let params = Params::of(call);
    let store = engine.store().as_ref();
    let json = match &call.endpoint {
        ApiEndpoint::Query => return query::instant(engine, clock, params).map(Answer::Evaluated),
        ApiEndpoint::QueryRange => {
            let value = match cache {
                Some(cache) => query::range_cached(engine, cache, clock.now_ms(), params),
                None => query::range(engine, params),
            };
            return value.map(Answer::Evaluated);
        }
        ApiEndpoint::Series => metadata::series(store, params),
        ApiEndpoint::Labels => metadata::label_names(store, params),
        ApiEndpoint::LabelValues(name) => metadata::label_values(store, name, params),
        ApiEndpoint::BuildInfo => Ok(metadata::build_info()),
        ApiEndpoint::Flags => Ok(metadata::flags(engine.config())),
        ApiEndpoint::RuntimeInfo => Ok(status::runtime_info(context.started_ms, store)),
        ApiEndpoint::TsdbStatus => status::tsdb(store, params),
        ApiEndpoint::Targets => status::targets(context.targets, params),
        ApiEndpoint::TargetsMetadata => status::targets_metadata(context.targets, params),
        ApiEndpoint::Alertmanagers => Ok(status::alertmanagers(context.targets)),
        ApiEndpoint::Metadata => metadata::metric_metadata(context.metadata, params),
        ApiEndpoint::QueryExemplars => metadata::query_exemplars(params),
        ApiEndpoint::FormatQuery => {
            query::parse_query(params).map(|expr| Json::String(expr.to_string()))
        }
        ApiEndpoint::ParseQuery => query::parse_query(params).map(|expr| syntax_tree::of(&expr)),
        ApiEndpoint::DeleteSeries => {
            return admin::delete_series(store, context.barrier, params).map(|_| Answer::Done);
        }
        // Deletions rewrite what they touch at once: no tombstone is left.
        ApiEndpoint::CleanTombstones => return Ok(Answer::Done),
    };
    json.map(Answer::Json)
}
