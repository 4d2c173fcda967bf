//! The Prometheus HTTP API of craft 4, from the outside: each endpoint's
//! JSON shape, byte for byte where Prometheus is particular (values as
//! strings, timestamps as seconds, label order), Prometheus' error
//! messages for bad parameters, over both stores (phase0's file and craft
//! 3's TSDB) through `Craft4QueryEngine::api`, and end to end through the
//! shared HTTP routes on 127.0.0.1 port 0. Docs chapter 4, "Speaking
//! Prometheus".
//!
//! Tests named `evaluated_…` need the evaluator (`eval/`); the formatting
//! they rely on is checked on hand-built values in `format_…` tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::testkit::ingestion::{Reply, get, send};
use common::{Labels, ManualClock, Metric, MetricStore, QueryEngine, QueryError, TimeRange};
use craft4_query::api::format::{
    format_labels, format_sample_value, format_timestamp, format_value,
};
use craft4_query::api::{ApiCall, ApiEndpoint};
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;
use craft4_query::value::{InstantSample, Point, RangeSeries, SeriesKey, Value};
use pipeline::{Pipeline, PipelineOptions, RunningPipeline};
use serde_json::{Value as Json, json};

/// 2023-11-14T22:13:20Z, the fixtures' "now".
const T0: i64 = 1_700_000_000_000;

fn metric(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) -> Metric {
    Metric::new(name, value, timestamp_ms).with_labels(Labels::from_pairs(labels.iter().copied()))
}

/// The fixture: two CPU series, a memory series with an upper-case label
/// (it sorts before `__name__`), and a counter from an hour earlier.
fn fixture() -> Vec<Metric> {
    vec![
        metric("cpu_usage", &[("host", "a")], 1.0, T0 - 60_000),
        metric("cpu_usage", &[("host", "a")], 2.0, T0 - 30_000),
        metric("cpu_usage", &[("host", "a")], 3.0, T0),
        metric("cpu_usage", &[("host", "b")], 10.5, T0),
        metric("memory_usage", &[("host", "a"), ("Zone", "eu")], 50.0, T0),
        metric(
            "http_requests_total",
            &[("host", "b"), ("code", "200")],
            7.0,
            T0 - 3_600_000,
        ),
    ]
}

/// Each store, filled with the fixture, behind a craft 4 engine whose
/// clock reads `T0`.
fn engines() -> Vec<(&'static str, Craft4QueryEngine, tempfile::TempDir)> {
    ["phase0", "craft3"]
        .into_iter()
        .map(|kind| {
            let (engine, dir) = engine_over(kind);
            (kind, engine, dir)
        })
        .collect()
}

/// The fixture in one store (`phase0` or `craft3`), clock at `T0`.
fn engine_over(kind: &str) -> (Craft4QueryEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn MetricStore> = match kind {
        "phase0" => Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("open")),
        _ => Arc::new(
            craft3_storage::db::Db::open(dir.path(), craft3_storage::db::DbConfig::default())
                .expect("open"),
        ),
    };
    store.append(&fixture()).expect("append");
    let engine = Craft4QueryEngine::new(store, EngineConfig::default())
        .with_clock(Arc::new(ManualClock::new(T0)));
    (engine, dir)
}

/// For checks that do not depend on the store.
fn engine() -> (Craft4QueryEngine, tempfile::TempDir) {
    engine_over("phase0")
}

fn call(
    engine: &Craft4QueryEngine,
    endpoint: ApiEndpoint,
    params: &[(&str, &str)],
) -> Result<Json, QueryError> {
    engine.api(&ApiCall {
        endpoint,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn ok(engine: &Craft4QueryEngine, endpoint: ApiEndpoint, params: &[(&str, &str)]) -> Json {
    call(engine, endpoint.clone(), params)
        .unwrap_or_else(|e| panic!("{endpoint:?} {params:?} failed: {e:?}"))
}

/// The 400 message of a call that must fail as a bad request.
fn bad(engine: &Craft4QueryEngine, endpoint: ApiEndpoint, params: &[(&str, &str)]) -> String {
    match call(engine, endpoint.clone(), params) {
        Err(QueryError::BadRequest(message)) => message,
        other => panic!("{endpoint:?} {params:?}: expected a bad request, got {other:?}"),
    }
}

fn seconds(t_ms: i64) -> String {
    format_timestamp(t_ms).to_string()
}

// ---------------------------------------------------------------- formatting

#[test]
fn format_vector_shape() {
    let vector = Value::Vector(vec![
        InstantSample {
            key: SeriesKey {
                name: Some("cpu_usage".into()),
                labels: Labels::from_pairs([("host", "a")]),
            },
            point: Point {
                t: T0 + 123,
                v: 1.5,
            },
        },
        InstantSample {
            key: SeriesKey {
                name: None,
                labels: Labels::from_pairs([("host", "b")]),
            },
            point: Point {
                t: T0,
                v: f64::INFINITY,
            },
        },
    ]);
    assert_eq!(
        format_value(&vector).to_string(),
        r#"{"resultType":"vector","result":[{"metric":{"__name__":"cpu_usage","host":"a"},"value":[1700000000.123,"1.5"]},{"metric":{"host":"b"},"value":[1700000000,"+Inf"]}]}"#
    );
    assert_eq!(
        format_value(&Value::Vector(vec![])).to_string(),
        r#"{"resultType":"vector","result":[]}"#
    );
}

#[test]
fn format_matrix_scalar_and_string_shapes() {
    let matrix = Value::Matrix(vec![RangeSeries {
        key: SeriesKey {
            name: None,
            labels: Labels::empty(),
        },
        points: vec![
            Point { t: T0, v: f64::NAN },
            Point {
                t: T0 + 15_000,
                v: -0.001,
            },
            Point {
                t: T0 + 30_000,
                v: 1e21,
            },
        ],
    }]);
    assert_eq!(
        format_value(&matrix).to_string(),
        r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"NaN"],[1700000015,"-0.001"],[1700000030,"1000000000000000000000"]]}]}"#
    );
    assert_eq!(
        format_value(&Value::Scalar(Point { t: 4000, v: 2.0 })).to_string(),
        r#"{"resultType":"scalar","result":[4,"2"]}"#
    );
    assert_eq!(
        format_value(&Value::String {
            t: 1500,
            v: "hi \"there\"".into()
        })
        .to_string(),
        r#"{"resultType":"string","result":[1.5,"hi \"there\""]}"#
    );
}

#[test]
fn format_values_and_labels_like_prometheus() {
    assert_eq!(format_sample_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_sample_value(0.1), "0.1");
    assert_eq!(format_sample_value(1e-10), "0.0000000001");
    assert_eq!(seconds(T0 + 5), "1700000000.005");
    assert_eq!(
        format_labels(Some("m"), &Labels::from_pairs([("b", "2"), ("A", "1")])).to_string(),
        r#"{"A":"1","__name__":"m","b":"2"}"#
    );
}

// -------------------------------------------------------------------- series

#[test]
fn series_answers_label_objects_sorted_and_deduplicated() {
    for (store, engine, _dir) in engines() {
        let got = ok(
            &engine,
            ApiEndpoint::Series,
            &[
                ("match[]", "cpu_usage"),
                ("match[]", r#"{host="a"}"#),
                ("match[]", r#"cpu_usage{host="b"}"#),
            ],
        );
        assert_eq!(
            got.to_string(),
            r#"[{"__name__":"cpu_usage","host":"a"},{"__name__":"cpu_usage","host":"b"},{"Zone":"eu","__name__":"memory_usage","host":"a"}]"#,
            "{store}"
        );
        let regex = ok(
            &engine,
            ApiEndpoint::Series,
            &[("match[]", r#"{__name__=~"http_.*|nothing"}"#)],
        );
        assert_eq!(
            regex,
            json!([{"__name__": "http_requests_total", "code": "200", "host": "b"}]),
            "{store}"
        );
        let none = ok(&engine, ApiEndpoint::Series, &[("match[]", "unknown")]);
        assert_eq!(none, json!([]), "{store}: an empty list, not null");
    }
}

#[test]
fn series_honours_start_end_and_limit() {
    for (store, engine, _dir) in engines() {
        // Only the counter has a sample an hour back.
        let early = ok(
            &engine,
            ApiEndpoint::Series,
            &[
                ("match[]", r#"{host=~".+"}"#),
                ("start", &seconds(T0 - 3_700_000)),
                ("end", "2023-11-14T21:15:00Z"),
            ],
        );
        assert_eq!(
            early,
            json!([{"__name__": "http_requests_total", "code": "200", "host": "b"}]),
            "{store}"
        );
        let limited = ok(
            &engine,
            ApiEndpoint::Series,
            &[("match[]", r#"{host=~".+"}"#), ("limit", "2")],
        );
        assert_eq!(limited.as_array().map(Vec::len), Some(2), "{store}");
        let inverted = ok(
            &engine,
            ApiEndpoint::Series,
            &[("match[]", "cpu_usage"), ("start", "2"), ("end", "1")],
        );
        assert_eq!(inverted, json!([]), "{store}");
    }
}

#[test]
fn series_refuses_bad_parameters_in_prometheus_words() {
    let (engine, _dir) = engine();
    for (params, message) in [
        (vec![], "no match[] parameter provided"),
        (
            vec![("match[]", "up"), ("start", "abc")],
            r#"invalid parameter "start": Invalid time value for 'start': cannot parse "abc" to a valid timestamp"#,
        ),
        (
            vec![("match[]", "up"), ("end", "yesterday")],
            r#"invalid parameter "end": Invalid time value for 'end': cannot parse "yesterday" to a valid timestamp"#,
        ),
        (
            vec![("match[]", "up"), ("limit", "-1")],
            r#"invalid parameter "limit": limit must be non-negative"#,
        ),
    ] {
        assert_eq!(bad(&engine, ApiEndpoint::Series, &params), message);
    }
    for selector in ["up{", "rate(up[5m])", r#"{job=""}"#, "1"] {
        let message = bad(&engine, ApiEndpoint::Series, &[("match[]", selector)]);
        assert!(
            message.starts_with(r#"invalid parameter "match[]": "#),
            "{selector}: {message}"
        );
    }
}

// -------------------------------------------------------------- labels, values

#[test]
fn label_names_from_the_index_or_from_matching_series() {
    for (store, engine, _dir) in engines() {
        assert_eq!(
            ok(&engine, ApiEndpoint::Labels, &[]),
            json!(["Zone", "__name__", "code", "host"]),
            "{store}"
        );
        assert_eq!(
            ok(&engine, ApiEndpoint::Labels, &[("match[]", "cpu_usage")]),
            json!(["__name__", "host"]),
            "{store}"
        );
        assert_eq!(
            ok(
                &engine,
                ApiEndpoint::Labels,
                &[("match[]", "cpu_usage"), ("match[]", "memory_usage")]
            ),
            json!(["Zone", "__name__", "host"]),
            "{store}"
        );
        assert_eq!(
            ok(&engine, ApiEndpoint::Labels, &[("match[]", "unknown")]),
            json!([]),
            "{store}"
        );
        assert_eq!(
            ok(&engine, ApiEndpoint::Labels, &[("limit", "1")]),
            json!(["Zone"]),
            "{store}"
        );
    }
}

#[test]
fn label_values_from_the_index_or_from_matching_series() {
    for (store, engine, _dir) in engines() {
        let values = |name: &str, params: &[(&str, &str)]| {
            ok(&engine, ApiEndpoint::LabelValues(name.into()), params)
        };
        assert_eq!(
            values("__name__", &[]),
            json!(["cpu_usage", "http_requests_total", "memory_usage"]),
            "{store}"
        );
        assert_eq!(values("host", &[]), json!(["a", "b"]), "{store}");
        assert_eq!(values("nope", &[]), json!([]), "{store}");
        assert_eq!(
            values("host", &[("match[]", "memory_usage")]),
            json!(["a"]),
            "{store}"
        );
        assert_eq!(
            values("__name__", &[("match[]", r#"{host="b"}"#)]),
            json!(["cpu_usage", "http_requests_total"]),
            "{store}"
        );
        assert_eq!(
            values("__name__", &[("limit", "2")]),
            json!(["cpu_usage", "http_requests_total"]),
            "{store}"
        );
    }
}

#[test]
fn label_values_refuse_names_that_are_not_label_names() {
    let (engine, _dir) = engine();
    for name in ["1x", "a-b", "é"] {
        assert_eq!(
            bad(&engine, ApiEndpoint::LabelValues(name.into()), &[]),
            format!("invalid label name: {name:?}")
        );
    }
}

#[test]
fn build_info_has_every_prometheus_field() {
    let (engine, _dir) = engine();
    let info = ok(&engine, ApiEndpoint::BuildInfo, &[]);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    for field in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(info[field].is_string(), "{field}: {info}");
    }
    assert!(
        info.get("features").is_none(),
        "no features: Grafana sees Prometheus"
    );
}

// ---------------------------------------------------- query parameter checks

#[test]
fn instant_query_refuses_bad_parameters_before_evaluating() {
    let (engine, _dir) = engine();
    for (params, message) in [
        (
            vec![("query", "up"), ("time", "abc")],
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "abc" to a valid timestamp"#,
        ),
        (
            vec![("query", "up"), ("timeout", "soon")],
            r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
        ),
    ] {
        assert_eq!(bad(&engine, ApiEndpoint::Query, &params), message);
    }
    for query in [
        "",
        "rate(x[5m],",
        "sum(",
        "nonexistent_function(x)",
        "x{a=~\"(\"}",
    ] {
        let message = bad(&engine, ApiEndpoint::Query, &[("query", query)]);
        assert!(
            message.starts_with(r#"invalid parameter "query": "#),
            "{query:?}: {message}"
        );
    }
    // The parser's position and expectation reach the client.
    assert_eq!(
        bad(&engine, ApiEndpoint::Query, &[("query", "rate(x[5m,")]),
        r#"invalid parameter "query": 1:10: expected "]" after the range duration, found ",""#
    );
}

#[test]
fn range_query_refuses_bad_parameters_in_prometheus_words() {
    let (engine, _dir) = engine();
    let q = ("query", "cpu_usage");
    for (params, message) in [
        (
            vec![q, ("start", "abc"), ("end", "2"), ("step", "1")],
            r#"invalid parameter "start": cannot parse "abc" to a valid timestamp"#,
        ),
        (
            vec![q, ("end", "2"), ("step", "1")],
            r#"invalid parameter "start": cannot parse "" to a valid timestamp"#,
        ),
        (
            vec![
                q,
                ("start", "1"),
                ("end", "2023-11-14T22:13:20"),
                ("step", "1"),
            ],
            r#"invalid parameter "end": cannot parse "2023-11-14T22:13:20" to a valid timestamp"#,
        ),
        (
            vec![q, ("start", "2"), ("end", "1"), ("step", "1")],
            "end timestamp must not be before start time",
        ),
        (
            vec![q, ("start", "1"), ("end", "2")],
            r#"invalid parameter "step": cannot parse "" to a valid duration"#,
        ),
        (
            vec![q, ("start", "1"), ("end", "2"), ("step", "1x")],
            r#"invalid parameter "step": cannot parse "1x" to a valid duration"#,
        ),
        (
            vec![q, ("start", "1"), ("end", "2"), ("step", "0")],
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            vec![q, ("start", "1"), ("end", "2"), ("step", "-15s")],
            r#"invalid parameter "step": cannot parse "-15s" to a valid duration"#,
        ),
        (
            vec![q, ("start", "1"), ("end", "2"), ("step", "-15")],
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            vec![q, ("start", "0"), ("end", "11001"), ("step", "1")],
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            vec![
                ("query", "cpu_usage[5m]"),
                ("start", "1"),
                ("end", "2"),
                ("step", "1"),
            ],
            r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
        ),
        (
            vec![
                ("query", "\"text\""),
                ("start", "1"),
                ("end", "2"),
                ("step", "1"),
            ],
            r#"invalid parameter "query": invalid expression type "string" for range query, must be Scalar or instant Vector"#,
        ),
    ] {
        assert_eq!(
            bad(&engine, ApiEndpoint::QueryRange, &params),
            message,
            "{params:?}"
        );
    }
    let message = bad(
        &engine,
        ApiEndpoint::QueryRange,
        &[
            ("query", "sum("),
            ("start", "1"),
            ("end", "2"),
            ("step", "1m"),
        ],
    );
    assert!(
        message.starts_with(r#"invalid parameter "query": 1:5: "#),
        "{message}"
    );
}

#[test]
fn seed_question_is_answered_through_the_store() {
    let (engine, _dir) = engine();
    let samples = engine
        .samples("cpu_usage", TimeRange::new(T0 - 30_000, T0))
        .expect("samples");
    let got: Vec<(i64, f64, Option<&str>)> = samples
        .iter()
        .map(|m| (m.timestamp_ms, m.value, m.labels.get("host")))
        .collect();
    assert_eq!(
        got,
        [
            (T0 - 30_000, 2.0, Some("a")),
            (T0, 3.0, Some("a")),
            (T0, 10.5, Some("b"))
        ]
    );
}

// ------------------------------------------------------ evaluated (eval/ needed)

#[test]
fn evaluated_instant_queries_answer_each_result_type() {
    for (store, engine, _dir) in engines() {
        // Grafana's health check.
        assert_eq!(
            ok(
                &engine,
                ApiEndpoint::Query,
                &[("query", "1+1"), ("time", "4")]
            ),
            json!({"resultType": "scalar", "result": [4, "2"]}),
            "{store}"
        );
        assert_eq!(
            ok(
                &engine,
                ApiEndpoint::Query,
                &[("query", "\"hi\""), ("time", "1.5")]
            ),
            json!({"resultType": "string", "result": [1.5, "hi"]}),
            "{store}"
        );
        // `time` defaults to the engine clock's now (T0).
        let vector = ok(&engine, ApiEndpoint::Query, &[("query", "cpu_usage")]);
        assert_eq!(
            vector,
            json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "cpu_usage", "host": "a"}, "value": [1_700_000_000, "3"]},
                {"metric": {"__name__": "cpu_usage", "host": "b"}, "value": [1_700_000_000, "10.5"]},
            ]}),
            "{store}"
        );
        let at = ok(
            &engine,
            ApiEndpoint::Query,
            &[
                ("query", r#"cpu_usage{host="a"}[45s]"#),
                ("time", "2023-11-14T22:13:20Z"),
            ],
        );
        assert_eq!(at["resultType"], "matrix", "{store}");
        assert_eq!(
            at["result"][0]["values"],
            json!([[1_699_999_970, "2"], [1_700_000_000, "3"]]),
            "{store}: the samples of the 45 s before T0 (away from the window's edge, \
             where Prometheus 2 and 3 differ)"
        );
        let summed = ok(
            &engine,
            ApiEndpoint::Query,
            &[("query", "sum(cpu_usage)"), ("time", &seconds(T0 + 500))],
        );
        assert_eq!(
            summed,
            json!({"resultType": "vector", "result": [
                {"metric": {}, "value": [1_700_000_000.5, "13.5"]},
            ]}),
            "{store}"
        );
    }
}

#[test]
fn evaluated_range_query_answers_a_matrix() {
    for (store, engine, _dir) in engines() {
        let got = ok(
            &engine,
            ApiEndpoint::QueryRange,
            &[
                ("query", r#"cpu_usage{host="a"}"#),
                ("start", &seconds(T0 - 60_000)),
                ("end", &seconds(T0)),
                ("step", "30s"),
            ],
        );
        assert_eq!(
            got,
            json!({"resultType": "matrix", "result": [
                {"metric": {"__name__": "cpu_usage", "host": "a"},
                 "values": [[1_699_999_940, "1"], [1_699_999_970, "2"], [1_700_000_000, "3"]]},
            ]}),
            "{store}"
        );
        let scalar = ok(
            &engine,
            ApiEndpoint::QueryRange,
            &[
                ("query", "2 * 3"),
                ("start", "0"),
                ("end", "30"),
                ("step", "15"),
            ],
        );
        assert_eq!(
            scalar,
            json!({"resultType": "matrix", "result": [
                {"metric": {}, "values": [[0, "6"], [15, "6"], [30, "6"]]},
            ]}),
            "{store}"
        );
    }
}

#[test]
fn evaluated_query_over_its_sample_budget_is_a_limit_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn MetricStore> =
        Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("open"));
    store.append(&fixture()).expect("append");
    let engine = Craft4QueryEngine::new(
        store,
        EngineConfig {
            max_samples: 2,
            ..EngineConfig::default()
        },
    );
    let result = call(
        &engine,
        ApiEndpoint::Query,
        &[("query", "cpu_usage[1h]"), ("time", &seconds(T0))],
    );
    assert!(
        matches!(result, Err(QueryError::LimitExceeded(_))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------- over HTTP

/// phase0's pipeline with craft 4 in slot 4, on 127.0.0.1 port 0.
struct Server {
    pipeline: Option<RunningPipeline>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(EngineConfig::default())
    }

    fn start_with(config: EngineConfig) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut components = phase0::build(
            phase0::Config {
                data_dir: dir.path().to_path_buf(),
                rules: vec![],
                notifiers: vec![],
                ..Default::default()
            },
            Arc::new(common::SystemClock),
        )
        .expect("components");
        let slot = Craft4QueryEngine::new(components.store.clone(), config).slot();
        components.query = slot.engine;
        let components = components
            .with_routes(slot.routes)
            .with_observer(slot.observer);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let pipeline = Pipeline::start(
            components,
            listener,
            PipelineOptions {
                verbose: false,
                ..Default::default()
            },
        )
        .expect("pipeline");
        Server {
            pipeline: Some(pipeline),
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.pipeline.as_ref().expect("running").local_addr()
    }

    /// Writes the fixture through `POST /metrics` and waits until stored.
    fn load_fixture(&self) {
        let fixture = fixture();
        for metric in &fixture {
            let body = serde_json::to_string(metric).expect("json");
            let reply = common::testkit::ingestion::post(self.addr(), "/metrics", &body);
            assert_eq!(reply.status, 202, "{reply:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let pipeline = self.pipeline.as_ref().expect("running");
        while pipeline.stored() < fixture.len() as u64 {
            assert!(Instant::now() < deadline, "fixture not stored within 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `POST target` with a form body, as Grafana sends queries.
    fn post_form(&self, target: &str, form: &str) -> Reply {
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        send(self.addr(), &[request.as_bytes()], Duration::ZERO)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pipeline) = self.pipeline.take() {
            let _ = pipeline.stop();
        }
    }
}

fn success(reply: &Reply) -> Json {
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["status"], "success", "{body}");
    body["data"].clone()
}

#[test]
fn http_metadata_endpoints_answer_prometheus_json() {
    let server = Server::start();
    server.load_fixture();
    let addr = server.addr();

    let series = get(
        addr,
        "/api/v1/series?match%5B%5D=cpu_usage&match[]=memory_usage",
    );
    assert_eq!(
        series.body,
        r#"{"status":"success","data":[{"__name__":"cpu_usage","host":"a"},{"__name__":"cpu_usage","host":"b"},{"Zone":"eu","__name__":"memory_usage","host":"a"}]}"#
    );
    assert_eq!(
        series.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        success(&get(addr, "/api/v1/labels")),
        json!(["Zone", "__name__", "code", "host"])
    );
    assert_eq!(
        success(&server.post_form("/api/v1/labels", "match%5B%5D=cpu_usage")),
        json!(["__name__", "host"])
    );
    assert_eq!(
        success(&get(addr, "/api/v1/label/__name__/values")),
        json!(["cpu_usage", "http_requests_total", "memory_usage"])
    );
    assert_eq!(
        success(&get(
            addr,
            "/api/v1/label/host/values?match[]=%7Bhost%3D%22b%22%7D"
        )),
        json!(["b"])
    );
    let info = success(&get(addr, "/api/v1/status/buildinfo"));
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    // What Grafana's data source calls besides queries: metadata and
    // exemplars answer Prometheus' shapes (empty: neither is stored), a
    // query is formatted by the canonical printer, the flags say how the
    // engine answers.
    assert_eq!(success(&get(addr, "/api/v1/metadata")), json!({}));
    assert_eq!(
        success(&get(addr, "/api/v1/metadata?metric=cpu_usage&limit=5")),
        json!({})
    );
    assert_eq!(
        success(&get(
            addr,
            "/api/v1/query_exemplars?query=cpu_usage&start=0&end=100"
        )),
        json!([])
    );
    assert_eq!(
        success(&server.post_form("/api/v1/query_exemplars", "query=rate(x%5B5m%5D)")),
        json!([])
    );
    assert_eq!(
        success(&get(
            addr,
            "/api/v1/format_query?query=sum%28rate%28x%5B5m%5D%29%29by%28job%29"
        )),
        json!("sum by (job) (rate(x[5m]))")
    );
    let flags = success(&get(addr, "/api/v1/status/flags"));
    assert_eq!(flags["query.lookback-delta"], "5m");
    assert_eq!(flags["query.compat"], "prometheus3");
    for target in [
        "/api/v1/query_exemplars?query=sum(",
        "/api/v1/format_query?query=rate(x)",
        "/api/v1/metadata?limit=many",
    ] {
        let reply = get(addr, target);
        assert_eq!(reply.status, 400, "{target}: {reply:?}");
        assert_eq!(reply.json()["errorType"], "bad_data", "{target}");
    }

    // The seed's question still works, through the craft 4 engine.
    let seed = get(addr, &format!("/query?name=cpu_usage&start={T0}&end={T0}"));
    assert_eq!(seed.status, 200, "{seed:?}");
    assert_eq!(seed.json().as_array().map(Vec::len), Some(2), "{seed:?}");
    // The health report names the engine.
    assert_eq!(get(addr, "/health").json()["components"]["query"], "craft4");
}

#[test]
fn http_bad_parameters_answer_400_with_prometheus_error_json() {
    let server = Server::start();
    let addr = server.addr();
    for (reply, message) in [
        (
            get(addr, "/api/v1/query_range?query=up&start=abc&end=1&step=1"),
            r#"invalid parameter "start": cannot parse "abc" to a valid timestamp"#,
        ),
        (
            get(addr, "/api/v1/query_range?query=up&start=1&end=2&step=0"),
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            server.post_form(
                "/api/v1/query_range",
                "query=up&start=2023-11-14T22%3A13%3A20Z&end=2023-11-14T22%3A13%3A19.999Z&step=1",
            ),
            "end timestamp must not be before start time",
        ),
        (get(addr, "/api/v1/series"), "no match[] parameter provided"),
        (
            get(addr, "/api/v1/label/1x/values"),
            r#"invalid label name: "1x""#,
        ),
        (
            get(addr, "/api/v1/query?query=rate(x%5B5m%2C"),
            r#"invalid parameter "query": 1:10: expected "]" after the range duration, found ",""#,
        ),
    ] {
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(
            reply.json(),
            json!({"status": "error", "errorType": "bad_data", "error": message}),
        );
    }
}

/// Prometheus' statuses for a query that parses but cannot be answered:
/// 422 `execution` for an execution error or too many samples, 503
/// `timeout` for a query past its time limit.
#[test]
fn http_execution_errors_and_limits_answer_prometheus_statuses() {
    let server = Server::start_with(EngineConfig {
        max_samples: 10,
        ..EngineConfig::default()
    });
    server.load_fixture();
    let addr = server.addr();
    let at = seconds(T0);
    let error = |reply: &Reply, status: u16, error_type: &str| {
        assert_eq!(reply.status, status, "{reply:?}");
        let body = reply.json();
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], error_type, "{body}");
        body["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    };
    // Many-to-many: `on()` puts both CPU series in one match group.
    let message = error(
        &get(
            addr,
            &format!("/api/v1/query?query=memory_usage%20%2B%20on()%20cpu_usage&time={at}"),
        ),
        422,
        "execution",
    );
    assert!(
        message.contains("many-to-many matching not allowed"),
        "{message}"
    );
    // 601 steps of two series against a budget of ten points.
    let message = error(
        &get(
            addr,
            &format!(
                "/api/v1/query_range?query=cpu_usage&start={}&end={at}&step=1",
                seconds(T0 - 600_000)
            ),
        ),
        422,
        "execution",
    );
    assert!(message.contains("too many samples"), "{message}");
    // A client's timeout that has already passed.
    let message = error(
        &get(
            addr,
            &format!("/api/v1/query?query=cpu_usage&time={at}&timeout=0s"),
        ),
        503,
        "timeout",
    );
    assert!(message.contains("timed out"), "{message}");
    // The same questions within the limits still answer.
    success(&get(
        addr,
        &format!("/api/v1/query?query=cpu_usage&time={at}"),
    ));
}

#[test]
fn evaluated_http_queries_answer_prometheus_json() {
    let server = Server::start();
    server.load_fixture();
    let addr = server.addr();
    // Grafana's health check, as it sends it.
    let health = server.post_form("/api/v1/query", "query=1%2B1&time=4");
    assert_eq!(
        health.body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
    let vector = get(
        addr,
        &format!("/api/v1/query?query=cpu_usage&time={}", seconds(T0)),
    );
    assert_eq!(
        vector.body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"cpu_usage","host":"a"},"value":[1700000000,"3"]},{"metric":{"__name__":"cpu_usage","host":"b"},"value":[1700000000,"10.5"]}]}}"#
    );
    let range = server.post_form(
        "/api/v1/query_range",
        &format!(
            "query=cpu_usage%7Bhost%3D%22a%22%7D&start={}&end={}&step=1m",
            seconds(T0 - 60_000),
            seconds(T0)
        ),
    );
    assert_eq!(
        range.body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"cpu_usage","host":"a"},"values":[[1699999940,"1"],[1700000000,"3"]]}]}}"#
    );
}

// ------------------------------------------------------------- properties

mod properties {
    use super::*;
    use craft4_query::api::timestamp::{parse_duration_ms, parse_time};
    use proptest::prelude::*;

    fn any_endpoint() -> impl Strategy<Value = ApiEndpoint> {
        prop_oneof![
            Just(ApiEndpoint::Query),
            Just(ApiEndpoint::QueryRange),
            Just(ApiEndpoint::Series),
            Just(ApiEndpoint::Labels),
            Just(ApiEndpoint::BuildInfo),
            ".{0,8}".prop_map(ApiEndpoint::LabelValues),
        ]
    }

    fn any_params() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop_oneof![
            Just("query"),
            Just("time"),
            Just("start"),
            Just("end"),
            Just("step"),
            Just("timeout"),
            Just("limit"),
            Just("match[]"),
        ];
        let value = prop_oneof![
            ".{0,12}",
            "-?[0-9]{1,20}(\\.[0-9]{0,6})?(e[0-9]{1,3})?",
            "[0-9]{1,4}(ms|s|m|h|d|w|y)",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
            "[a-z_]{1,6}(\\{[a-z]{1,3}(=|!=|=~|!~)\"[a-z.*]{0,3}\"\\})?",
        ];
        proptest::collection::vec((key.prop_map(str::to_string), value), 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever a client sends, the answer is a value or a typed error.
        #[test]
        fn no_parameters_make_the_api_panic(endpoint in any_endpoint(), params in any_params()) {
            let (engine, _dir) = engine();
            let _ = engine.api(&ApiCall { endpoint, params });
        }

        #[test]
        fn time_and_duration_parsers_never_panic(text in "\\PC{0,40}") {
            let _ = parse_time(&text);
            let _ = parse_duration_ms(&text);
        }

        /// What the API writes as a timestamp, it reads back to the same
        /// millisecond — within ±31,000 years of 1970, where an `f64` of
        /// seconds still holds every millisecond (Prometheus' float
        /// seconds have the same horizon).
        #[test]
        fn timestamps_round_trip(t_ms in -1_000_000_000_000_000i64..1_000_000_000_000_000) {
            prop_assert_eq!(parse_time(&format_timestamp(t_ms).to_string()), Ok(t_ms));
        }
    }
}
