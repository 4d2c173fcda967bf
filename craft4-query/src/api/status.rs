//! What people open when a server misbehaves: `/api/v1/status/tsdb` (how
//! many series, and which metric names and labels make them — the first
//! question when memory grows), `/api/v1/status/runtimeinfo`, and the two
//! lists that stay empty until the platform scrapes and sends to an
//! Alertmanager itself, `/api/v1/targets` and `/api/v1/alertmanagers`
//! (answered empty, in their shape, so Grafana and Prometheus' UI show
//! "none" instead of an error).
//!
//! Cardinality comes from [`MetricStore::series`]: the store's indexes,
//! no sample read. Prometheus counts its head block only (the last two to
//! three hours); this counts every series the store holds, which is what
//! the index, and so the memory, carries. Docs chapter 4, "Speaking
//! Prometheus".

use std::collections::HashMap;

use common::{LabelMatcher, MetricStore, QueryError, TargetRegistry, TimeRange};
use serde_json::{Value as Json, json};

use super::params::{Params, invalid_parameter};
use crate::civil::civil_from_days;

/// How many entries each top list has when the client does not say:
/// Prometheus' default.
const DEFAULT_TOP: usize = 10;

/// `/api/v1/status/tsdb?limit=N`: series count, then the top `N` (10) of
/// metric names by series, label names by distinct values, label names by
/// the bytes their values take across series, and label pairs by series.
///
/// # Errors
/// A 400 for a `limit` that is not a positive integer; the store's errors.
pub fn tsdb(store: &dyn MetricStore, params: Params<'_>) -> Result<Json, QueryError> {
    let top = match params.value("limit") {
        "" => DEFAULT_TOP,
        text => match text.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(invalid_parameter(
                    "limit",
                    format!("{text:?} is not a positive integer"),
                ));
            }
        },
    };
    let series = store
        .series(&[], TimeRange::ALL)
        .map_err(QueryError::Storage)?;
    // label name → value → series carrying that pair; `__name__` included.
    let mut pairs: HashMap<&str, HashMap<&str, u64>> = HashMap::new();
    for key in &series {
        *pairs
            .entry(LabelMatcher::METRIC_NAME)
            .or_default()
            .entry(key.name.as_str())
            .or_default() += 1;
        for (name, value) in key.labels.iter() {
            *pairs.entry(name).or_default().entry(value).or_default() += 1;
        }
    }
    let mut by_metric_name = Vec::new();
    let mut value_counts = Vec::new();
    let mut value_bytes = Vec::new();
    let mut by_pair = Vec::new();
    let mut label_pairs = 0usize;
    for (name, values) in &pairs {
        label_pairs += values.len();
        value_counts.push((name.to_string(), values.len() as u64));
        value_bytes.push((
            name.to_string(),
            values
                .iter()
                .map(|(value, series)| value.len() as u64 * series)
                .sum(),
        ));
        for (value, series) in values {
            if *name == LabelMatcher::METRIC_NAME {
                by_metric_name.push((value.to_string(), *series));
            }
            by_pair.push((format!("{name}={value}"), *series));
        }
    }
    Ok(json!({
        "headStats": {
            "numSeries": series.len(),
            "numLabelPairs": label_pairs,
        },
        "seriesCountByMetricName": top_of(by_metric_name, top),
        "labelValueCountByLabelName": top_of(value_counts, top),
        "memoryInBytesByLabelName": top_of(value_bytes, top),
        "seriesCountByLabelValuePair": top_of(by_pair, top),
    }))
}

/// The `n` largest, largest first, ties by name; as `{name, value}`.
fn top_of(mut entries: Vec<(String, u64)>, n: usize) -> Json {
    entries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    entries.truncate(n);
    Json::Array(
        entries
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// `/api/v1/status/runtimeinfo`: when the server started, where it runs,
/// and the store it reads. Prometheus' Go runtime fields (goroutines,
/// `GOGC`, …) have no meaning here and are left out, except `GOMAXPROCS`,
/// given as the threads the evaluator spreads over.
pub fn runtime_info(started_ms: i64, store: &dyn MetricStore) -> Json {
    let cwd = std::env::current_dir()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    let started = rfc3339(started_ms);
    json!({
        "startTime": started,
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": started,
        "GOMAXPROCS": rayon::current_num_threads(),
        "storageRetention": store.describe(),
    })
}

/// `/api/v1/targets`: the scraper's targets (craft 1, `--config.file`)
/// with their health, in Prometheus' shape; `state` (`active`, `dropped`,
/// `any`) and `scrapePool` filter. Nothing is dropped (there is no
/// relabelling to drop a target yet), so `droppedTargets` is empty.
///
/// # Errors
/// 400 for a `state` that is none of the three.
pub fn targets(registry: &TargetRegistry, params: Params<'_>) -> Result<Json, QueryError> {
    let state = params.value("state");
    let active = match state {
        "" | "any" | "active" => true,
        "dropped" => false,
        other => {
            return Err(QueryError::BadRequest(format!(
                "invalid parameter \"state\": {other:?} is not active, dropped or any"
            )));
        }
    };
    let pool = params.value("scrapePool");
    let dropped: Vec<Json> = if state == "active" {
        Vec::new()
    } else {
        registry
            .dropped()
            .into_iter()
            .filter(|t| pool.is_empty() || t.job == pool)
            .map(|t| json!({"discoveredLabels": t.discovered_labels}))
            .collect()
    };
    let targets: Vec<Json> = if active {
        registry
            .snapshot()
            .into_iter()
            .filter(|t| pool.is_empty() || t.job == pool)
            .map(|t| {
                json!({
                    "discoveredLabels": t.discovered_labels,
                    "labels": t.labels,
                    "scrapePool": t.job,
                    "scrapeUrl": t.scrape_url,
                    "globalUrl": t.scrape_url,
                    "lastError": t.last_error,
                    "lastScrape": t.last_scrape_ms.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339),
                    "lastScrapeDuration": t.last_scrape_duration.as_secs_f64(),
                    "health": t.health.as_str(),
                    "scrapeInterval": promql::format_duration(t.interval.as_millis() as i64),
                    "scrapeTimeout": promql::format_duration(t.timeout.as_millis() as i64),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({"activeTargets": targets, "droppedTargets": dropped}))
}

/// `/api/v1/targets/metadata`: the families each target's last page
/// described. `match_target` is a label selector over the targets' labels
/// (`{job="node"}`), `metric` one family, `limit` the most targets.
///
/// # Errors
/// `invalid parameter …` for a selector that does not parse or names a
/// metric, or a bad limit.
pub fn targets_metadata(registry: &TargetRegistry, params: Params<'_>) -> Result<Json, QueryError> {
    let limit = params.limit()?;
    let matchers = match params.value("match_target") {
        "" => Vec::new(),
        text => {
            let invalid = |why: String| super::params::invalid_parameter("match_target", why);
            let expr = promql::parse(text).map_err(|e| invalid(e.to_string()))?;
            let promql::Expr::VectorSelector(selector) = expr else {
                return Err(invalid(format!(
                    "expected a label selector such as {{job=\"node\"}}, found {expr}"
                )));
            };
            let matchers = selector.store_matchers();
            if matchers
                .iter()
                .any(|m| m.name == common::LabelMatcher::METRIC_NAME)
            {
                return Err(invalid(
                    "a target selector names labels, not a metric".into(),
                ));
            }
            matchers
        }
    };
    let metric = params.value("metric");
    let mut out = Vec::new();
    let mut matched = 0;
    for target in registry.snapshot() {
        let labels =
            common::Labels::from_pairs(target.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        if !common::matches_all(&matchers, "", &labels) {
            continue;
        }
        if limit.is_some_and(|limit| matched >= limit) {
            break;
        }
        matched += 1;
        for (family, entry) in &target.metadata {
            if !metric.is_empty() && family != metric {
                continue;
            }
            out.push(json!({
                "target": target.labels,
                "metric": family,
                "type": entry.metric_type.as_str(),
                "help": entry.help,
                "unit": entry.unit,
            }));
        }
    }
    Ok(Json::Array(out))
}

/// `/api/v1/alertmanagers`: the Alertmanagers of `--config.file`'s
/// `alerting` section that craft 5 sends alerts to (none without one:
/// craft 5 then delivers notifications only itself).
pub fn alertmanagers(registry: &TargetRegistry) -> Json {
    let active: Vec<Json> = registry
        .alertmanagers()
        .into_iter()
        .map(|url| json!({"url": url}))
        .collect();
    json!({"activeAlertmanagers": active, "droppedAlertmanagers": []})
}

/// `ms` since the epoch as RFC 3339 in UTC, millisecond precision
/// (`2026-12-07T15:35:06.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let date = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year,
        date.month,
        date.day,
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_650_506_123), "2026-12-07T13:35:06.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn top_lists_are_largest_first_then_by_name() {
        let list = top_of(
            vec![
                ("b".into(), 2),
                ("a".into(), 2),
                ("c".into(), 5),
                ("d".into(), 1),
            ],
            3,
        );
        assert_eq!(
            list,
            json!([
                {"name": "c", "value": 5},
                {"name": "a", "value": 2},
                {"name": "b", "value": 2},
            ])
        );
    }
}
