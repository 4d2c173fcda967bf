//! The query slot's conformance suites: [`run_all`], the seed's question
//! every engine answers (samples of a name in an inclusive range, in time
//! order, empty for unknown names), and [`run_prometheus_api`], the
//! Prometheus HTTP API for the engines that offer it.

use std::sync::Arc;

use serde_json::Value;

use crate::http::{Request, RouteSet};
use crate::testkit::metric;
use crate::{MetricStore, QueryEngine, TimeRange};

/// Runs every query check. `make(store)` builds the engine over a store that
/// the suite fills through `store.append`.
pub fn run_all(
    store: Arc<dyn MetricStore>,
    make: &dyn Fn(Arc<dyn MetricStore>) -> Arc<dyn QueryEngine>,
) {
    store
        .append(&[
            metric("cpu_usage", &[("host", "b")], 3.0, 3_000),
            metric("cpu_usage", &[("host", "a")], 1.0, 1_000),
            metric("cpu_usage", &[("host", "a")], 2.0, 2_000),
            metric("cpu_usage", &[("host", "b")], 2.5, 2_000),
            metric("memory_usage", &[], 50.0, 2_000),
        ])
        .expect("append");
    let engine = make(store);

    let got = engine
        .samples("cpu_usage", TimeRange::new(1_000, 2_000))
        .expect("samples");
    let points: Vec<(i64, f64, Option<&str>)> = got
        .iter()
        .map(|m| (m.timestamp_ms, m.value, m.labels.get("host")))
        .collect();
    assert_eq!(
        points,
        vec![
            (1_000, 1.0, Some("a")),
            (2_000, 2.0, Some("a")),
            (2_000, 2.5, Some("b"))
        ],
        "inclusive range over all series of the name, ordered by time then labels"
    );
    assert!(got.iter().all(|m| m.name == "cpu_usage"));

    let all = engine
        .samples("cpu_usage", TimeRange::ALL)
        .expect("samples");
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms),
        "time order"
    );

    assert!(
        engine
            .samples("unknown_metric", TimeRange::ALL)
            .expect("unknown")
            .is_empty(),
        "unknown name: empty"
    );
    assert!(
        engine
            .samples("cpu_usage", TimeRange::new(5_000, 1_000))
            .expect("inverted")
            .is_empty(),
        "start > end: empty"
    );
    assert!(
        engine
            .samples("cpu_usage", TimeRange::new(3_001, 4_000))
            .expect("past end")
            .is_empty()
    );
}

/// Runs the Prometheus HTTP API checks, for query engines that offer the
/// API (`/api/v1/query`, `query_range`, `series`, `labels`,
/// `label/<name>/values`) as a [`RouteSet`]: the answers Grafana and
/// promtool read, in Prometheus' envelope. `make(store)` builds the routes
/// over a store the suite fills first.
pub fn run_prometheus_api(
    store: Arc<dyn MetricStore>,
    make: &dyn Fn(Arc<dyn MetricStore>) -> Arc<dyn RouteSet>,
) {
    store
        .append(&[
            metric("cpu_usage", &[("host", "a")], 1.0, 1_000),
            metric("cpu_usage", &[("host", "a")], 2.0, 2_000),
            metric("cpu_usage", &[("host", "b")], 2.5, 2_000),
            metric("cpu_usage", &[("host", "b")], 3.0, 3_000),
            metric("memory_usage", &[], 50.0, 2_000),
        ])
        .expect("append");
    let routes = make(store);
    let offered = routes.routes();
    for path in [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/host/values",
        "/api/v1/metadata",
        "/api/v1/query_exemplars",
        "/api/v1/status/tsdb",
        "/api/v1/status/runtimeinfo",
        "/api/v1/targets",
        "/api/v1/alertmanagers",
    ] {
        assert!(
            offered.iter().any(|route| route.matches(path)),
            "{} offers {path}",
            routes.owner()
        );
    }
    let call = |method: &str, target: &str, form: Option<&str>| -> (u16, Value) {
        let headers = match form {
            Some(_) => vec![(
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            )],
            None => Vec::new(),
        };
        let body = form.unwrap_or("").as_bytes().to_vec();
        let response = routes.handle(&Request::new(method, target, headers, body));
        let json: Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("{method} {target}: body is not JSON ({e})"));
        (response.status, json)
    };
    let success = |method: &str, target: &str, form: Option<&str>| -> Value {
        let (status, json) = call(method, target, form);
        assert_eq!(status, 200, "{method} {target}: {json}");
        assert_eq!(json["status"], "success", "{method} {target}: {json}");
        json["data"].clone()
    };
    // A sample as Prometheus writes it: `[seconds, "value"]`.
    let point = |pair: &Value| -> (f64, String) {
        (
            pair[0].as_f64().expect("timestamp in seconds"),
            pair[1].as_str().expect("value as a string").to_string(),
        )
    };

    // Instant query: the latest sample of each series at `time`.
    let data = success("GET", "/api/v1/query?query=cpu_usage&time=2", None);
    assert_eq!(data["resultType"], "vector");
    let mut got: Vec<(String, String, (f64, String))> = data["result"]
        .as_array()
        .expect("result list")
        .iter()
        .map(|sample| {
            (
                sample["metric"]["__name__"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                sample["metric"]["host"].as_str().unwrap_or("").to_string(),
                point(&sample["value"]),
            )
        })
        .collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        vec![
            ("cpu_usage".into(), "a".into(), (2.0, "2".into())),
            ("cpu_usage".into(), "b".into(), (2.0, "2.5".into())),
        ],
        "instant query at t=2s: one sample per series, named, as strings"
    );

    // The same call as a form POST, which Grafana sends for long queries.
    let data = success("POST", "/api/v1/query", Some("query=memory_usage&time=2"));
    let result = data["result"].as_array().expect("result list");
    assert_eq!(result.len(), 1, "POST form body: {data}");
    assert_eq!(point(&result[0]["value"]), (2.0, "50".into()));

    // Range query: every step from start to end, both included.
    let data = success(
        "GET",
        "/api/v1/query_range?query=cpu_usage%7Bhost%3D%22a%22%7D&start=1&end=2&step=1",
        None,
    );
    assert_eq!(data["resultType"], "matrix");
    let series = data["result"].as_array().expect("result list");
    assert_eq!(series.len(), 1, "{data}");
    let values: Vec<(f64, String)> = series[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(point)
        .collect();
    assert_eq!(values, vec![(1.0, "1".into()), (2.0, "2".into())]);

    // Series, label names, label values.
    let data = success("GET", "/api/v1/series?match%5B%5D=cpu_usage", None);
    let mut hosts: Vec<&str> = data
        .as_array()
        .expect("series list")
        .iter()
        .map(|labels| labels["host"].as_str().unwrap_or(""))
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["a", "b"], "series of cpu_usage: {data}");
    let data = success("GET", "/api/v1/labels", None);
    let names: Vec<&str> = data
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"__name__") && names.contains(&"host"),
        "label names: {names:?}"
    );
    let data = success("GET", "/api/v1/label/host/values", None);
    assert_eq!(data, serde_json::json!(["a", "b"]), "sorted label values");

    // Grafana's other calls answer Prometheus' shapes: metadata is an
    // object by metric name, exemplars a list of series.
    assert!(
        success("GET", "/api/v1/metadata", None).is_object(),
        "metadata is an object"
    );
    assert!(
        success(
            "GET",
            "/api/v1/query_exemplars?query=cpu_usage&start=0&end=10",
            None
        )
        .is_array(),
        "exemplars are a list"
    );

    // What people open when the server is slow: cardinality from the
    // store's index (3 series; cpu_usage makes 2 of them, host has 2
    // values), and the lists that stay empty until there are targets.
    let tsdb = success("GET", "/api/v1/status/tsdb", None);
    assert_eq!(tsdb["headStats"]["numSeries"], 3, "{tsdb}");
    assert_eq!(
        tsdb["seriesCountByMetricName"][0],
        serde_json::json!({"name": "cpu_usage", "value": 2}),
        "{tsdb}"
    );
    assert!(
        tsdb["labelValueCountByLabelName"]
            .as_array()
            .is_some_and(|list| list.contains(&serde_json::json!({"name": "host", "value": 2}))),
        "{tsdb}"
    );
    assert!(tsdb["seriesCountByLabelValuePair"].is_array(), "{tsdb}");
    assert!(tsdb["memoryInBytesByLabelName"].is_array(), "{tsdb}");
    let one = success("GET", "/api/v1/status/tsdb?limit=1", None);
    assert_eq!(
        one["seriesCountByLabelValuePair"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(call("GET", "/api/v1/status/tsdb?limit=x", None).0, 400);
    assert!(
        success("GET", "/api/v1/status/runtimeinfo", None)["startTime"].is_string(),
        "runtimeinfo says when the server started"
    );
    assert_eq!(
        success("GET", "/api/v1/targets", None)["activeTargets"],
        serde_json::json!([])
    );
    assert_eq!(
        success("GET", "/api/v1/alertmanagers", None)["activeAlertmanagers"],
        serde_json::json!([])
    );

    // Bad input: 400 with Prometheus' error envelope, never a panic.
    for target in [
        "/api/v1/query?query=sum(",
        "/api/v1/query",
        "/api/v1/query_range?query=up&start=2&end=1&step=1",
        "/api/v1/query?query=up&time=yesterday",
    ] {
        let (status, json) = call("GET", target, None);
        assert_eq!(status, 400, "GET {target}: {json}");
        assert_eq!(json["status"], "error", "GET {target}: {json}");
        assert_eq!(json["errorType"], "bad_data", "GET {target}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "GET {target}: the error says why: {json}"
        );
    }
}
