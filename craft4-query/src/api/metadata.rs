//! The metadata endpoints — `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values` — and `/api/v1/status/buildinfo`: what
//! Grafana's query editor calls to offer metric names, label names and
//! values while someone types, and what it calls to find out what it is
//! talking to.
//!
//! The bottleneck it removes: phase0 can only be asked about a name you
//! already know. These answer from the store's own indexes where they
//! can (`label_names`, `label_values`, `series`: no sample read), also
//! when `match[]` narrows the question. Docs chapter 4,
//! "Speaking Prometheus".

use std::collections::BTreeSet;

use common::{
    LabelMatcher, Labels, MetadataRegistry, MetricStore, QueryError, SeriesKey, StorageError,
    TimeRange,
};
use serde_json::{Value as Json, json};

use super::format::format_labels;
use super::params::Params;
use super::timestamp::{MAX_TIME_MS, MIN_TIME_MS};
use crate::eval::{Compat, EngineConfig};

/// `/api/v1/series?match[]=…&start=…&end=…&limit=…`: every series matching
/// any selector with a sample in the range, as label objects, sorted.
///
/// # Errors
/// 400 without `match[]` or for bad parameters; the store's errors.
pub fn series(store: &dyn MetricStore, params: Params<'_>) -> Result<Json, QueryError> {
    if params.values("match[]").is_empty() {
        return Err(QueryError::BadRequest(
            "no match[] parameter provided".into(),
        ));
    }
    let limit = params.limit()?;
    let range = time_range(params)?;
    let matcher_sets = params.matcher_sets()?;
    // The union of the selectors' answers, each series once, ordered by
    // (name, labels) as Prometheus sorts them.
    let mut found: BTreeSet<(String, Labels)> = BTreeSet::new();
    for matchers in &matcher_sets {
        for SeriesKey { name, labels } in select(store, matchers, range)? {
            found.insert((name, labels));
        }
    }
    let series: Vec<Json> = found
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(name, labels)| format_labels(Some(name), labels))
        .collect();
    Ok(Json::Array(series))
}

/// `/api/v1/labels?match[]=…&start=…&end=…&limit=…`: label names, sorted,
/// `__name__` included.
///
/// Without `match[]` the store's index answers for all time, as cheap as
/// a lookup; Prometheus' own answer is no finer (it asks every block that
/// overlaps the range, and a block spans hours).
///
/// # Errors
/// 400 for bad parameters; the store's errors.
pub fn label_names(store: &dyn MetricStore, params: Params<'_>) -> Result<Json, QueryError> {
    let limit = params.limit()?;
    let range = time_range(params)?;
    let matcher_sets = params.matcher_sets()?;
    let names: Vec<String> = if matcher_sets.is_empty() {
        store.label_names().map_err(storage_error)?
    } else {
        let mut names = BTreeSet::new();
        for matchers in &matcher_sets {
            for series in select(store, matchers, range)? {
                names.insert(LabelMatcher::METRIC_NAME.to_string());
                names.extend(series.labels.iter().map(|(name, _)| name.to_string()));
            }
        }
        names.into_iter().collect()
    };
    Ok(limited(names, limit))
}

/// `/api/v1/label/<name>/values?match[]=…&start=…&end=…&limit=…`: the
/// values of one label (`__name__`: metric names), sorted.
///
/// # Errors
/// 400 for a name that is not a label name or bad parameters; the
/// store's errors.
pub fn label_values(
    store: &dyn MetricStore,
    name: &str,
    params: Params<'_>,
) -> Result<Json, QueryError> {
    if !common::metric::is_valid_label_name(name) {
        return Err(QueryError::BadRequest(format!(
            "invalid label name: {name:?}"
        )));
    }
    let limit = params.limit()?;
    let range = time_range(params)?;
    let matcher_sets = params.matcher_sets()?;
    let values: Vec<String> = if matcher_sets.is_empty() {
        store.label_values(name).map_err(storage_error)?
    } else {
        let mut values = BTreeSet::new();
        for matchers in &matcher_sets {
            for series in select(store, matchers, range)? {
                let value = if name == LabelMatcher::METRIC_NAME {
                    Some(series.name)
                } else {
                    series.labels.get(name).map(str::to_string)
                };
                values.extend(value);
            }
        }
        values.into_iter().collect()
    };
    Ok(limited(values, limit))
}

/// `/api/v1/status/buildinfo`: Prometheus' fields, so clients that decode
/// them (Grafana reads it to tell Prometheus from Mimir: no `features`
/// member means Prometheus) find each one. Go-specific fields stay empty.
pub fn build_info() -> Json {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    })
}

/// `/api/v1/status/flags`: the settings that shape answers, under the
/// names of Prometheus' flags where one exists, as strings as Prometheus
/// writes them.
pub fn flags(config: &EngineConfig) -> Json {
    let compat = match config.compat {
        Compat::Prometheus3 => "prometheus3",
        Compat::Prometheus2 => "prometheus2",
    };
    json!({
        "query.lookback-delta": promql::format_duration(config.lookback_ms),
        "query.max-samples": config.max_samples.to_string(),
        "query.timeout": promql::format_duration(
            i64::try_from(config.timeout.as_millis()).unwrap_or(i64::MAX)
        ),
        "query.compat": compat,
    })
}

/// `/api/v1/metadata?metric=…&limit=…&limit_per_metric=…`: metric
/// types, help and units by metric family, as the write paths heard them
/// (remote_write's `metadata`): `{"up": [{"type": "gauge", "help": …,
/// "unit": ""}]}`. Grafana's metric browser shows the help and picks
/// `rate()` for counters from it.
///
/// # Errors
/// `invalid parameter "limit": …` (or `limit_per_metric`) for a value that
/// is not an integer.
pub fn metric_metadata(
    registry: &MetadataRegistry,
    params: Params<'_>,
) -> Result<Json, QueryError> {
    let limit = params.limit()?;
    let per_metric = match params.value("limit_per_metric") {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(n) => usize::try_from(n).ok().filter(|&n| n > 0),
            Err(_) => {
                return Err(super::params::invalid_parameter(
                    "limit_per_metric",
                    format!("cannot parse {text:?} as an integer"),
                ));
            }
        },
    };
    let metric = Some(params.value("metric")).filter(|m| !m.is_empty());
    let mut out = serde_json::Map::new();
    for (family, entries) in registry.snapshot(metric, limit, per_metric) {
        let entries: Vec<Json> = entries
            .iter()
            .map(|e| json!({"type": e.metric_type.as_str(), "help": e.help, "unit": e.unit}))
            .collect();
        out.insert(family, Json::Array(entries));
    }
    Ok(Json::Object(out))
}

/// `/api/v1/query_exemplars`: exemplars are not stored, so every valid
/// call answers an empty list; a bad query or time is still a 400, as
/// Prometheus checks them first.
///
/// # Errors
/// `invalid parameter …` for a query that does not parse or a bad time.
pub fn query_exemplars(params: Params<'_>) -> Result<Json, QueryError> {
    super::query::parse_query(params)?;
    time_range(params)?;
    Ok(json!([]))
}

/// `start` and `end`, each optional: all of time by default.
fn time_range(params: Params<'_>) -> Result<TimeRange, QueryError> {
    let start_ms = params.optional_time("start", MIN_TIME_MS)?;
    let end_ms = params.optional_time("end", MAX_TIME_MS)?;
    Ok(TimeRange::new(start_ms, end_ms))
}

/// The identities of the matching series with data in the range, from
/// the store's indexes where it has them ([`MetricStore::series`]): no
/// sample is read to list a name.
fn select(
    store: &dyn MetricStore,
    matchers: &[LabelMatcher],
    range: TimeRange,
) -> Result<Vec<SeriesKey>, QueryError> {
    if range.start_ms > range.end_ms {
        return Ok(Vec::new());
    }
    store.series(matchers, range).map_err(storage_error)
}

/// A selector the store cannot evaluate is the client's mistake (400);
/// anything else is the server's (500).
fn storage_error(error: StorageError) -> QueryError {
    match error {
        StorageError::InvalidSelector(message) => {
            QueryError::BadRequest(format!("invalid selector: {message}"))
        }
        error => QueryError::Storage(error),
    }
}

/// Prometheus answers a cut list without saying so in `data` (it adds a
/// warning beside it, which `QueryEngine::api` has no place for).
fn limited(mut names: Vec<String>, limit: Option<usize>) -> Json {
    if let Some(limit) = limit {
        names.truncate(limit);
    }
    json!(names)
}
