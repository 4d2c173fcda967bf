//! Fixtures for the evaluator tests: series loaded into a real store
//! (craft 3's in-memory head, or phase0's JSONL file), queries parsed and
//! evaluated through `Engine`, results flattened to `("name{labels}",
//! value)` pairs that read like Prometheus' test files.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use common::{Metric, MetricStore};
use craft4_query::eval::{Engine, EngineConfig, EvalError};
use craft4_query::value::{SeriesKey, Value};
use promql::parse;

/// One series: name, labels, `(seconds, value)` samples.
pub type SeriesSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<(i64, f64)>);

/// Samples `start, start + step, …` (seconds) with `values`.
pub fn every(start_s: i64, step_s: i64, values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (start_s + i as i64 * step_s, v))
        .collect()
}

/// Samples at the given seconds.
pub fn at(samples: &[(i64, f64)]) -> Vec<(i64, f64)> {
    samples.to_vec()
}

fn metrics(series: &[SeriesSpec<'_>]) -> Vec<Metric> {
    series
        .iter()
        .flat_map(|(name, labels, samples)| {
            samples
                .iter()
                .map(move |&(t, v)| common::testkit::metric(name, labels, v, t * 1000))
        })
        .collect()
}

/// An engine over a store holding `series`.
pub struct Fixture {
    pub engine: Engine,
    _dir: Option<tempfile::TempDir>,
}

/// The stores every fixture can be loaded into.
#[derive(Debug, Clone, Copy)]
pub enum StoreKind {
    /// craft 3's in-memory head (indexed).
    Head,
    /// phase0's JSONL file (scanned).
    Jsonl,
}

pub fn load(series: &[SeriesSpec<'_>]) -> Fixture {
    load_into(StoreKind::Head, series, EngineConfig::default())
}

pub fn load_with(series: &[SeriesSpec<'_>], config: EngineConfig) -> Fixture {
    load_into(StoreKind::Head, series, config)
}

pub fn load_into(kind: StoreKind, series: &[SeriesSpec<'_>], config: EngineConfig) -> Fixture {
    let (store, dir): (Arc<dyn MetricStore>, _) = match kind {
        StoreKind::Head => (Arc::new(craft3_storage::HeadStore::default()), None),
        StoreKind::Jsonl => {
            let dir = tempfile::tempdir().unwrap();
            let store = phase0::storage::JsonlFileStore::open(dir.path()).unwrap();
            (Arc::new(store), Some(dir))
        }
    };
    store.append(&metrics(series)).unwrap();
    Fixture {
        engine: Engine::new(store, config),
        _dir: dir,
    }
}

/// `name{a="1",b="2"}`, `{a="1"}` without a name, `{}` for neither.
pub fn key_text(key: &SeriesKey) -> String {
    let labels = key.labels.to_string();
    match (&key.name, labels.is_empty()) {
        (Some(name), _) => format!("{name}{labels}"),
        (None, true) => "{}".to_string(),
        (None, false) => labels,
    }
}

impl Fixture {
    /// An engine over `store` as it is.
    pub fn new(store: Arc<dyn MetricStore>) -> Fixture {
        Fixture {
            engine: Engine::new(store, EngineConfig::default()),
            _dir: None,
        }
    }

    pub fn instant_ms(&self, query: &str, time_ms: i64) -> Result<Value, EvalError> {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        self.engine.instant(&expr, time_ms)
    }

    pub fn instant(&self, query: &str, time_s: i64) -> Value {
        self.instant_ms(query, time_s * 1000)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    pub fn error(&self, query: &str, time_s: i64) -> EvalError {
        match self.instant_ms(query, time_s * 1000) {
            Ok(value) => panic!("{query}: expected an error, got {value:?}"),
            Err(error) => error,
        }
    }

    /// An instant vector as `(key, value)` pairs, in result order.
    pub fn vector_ms(&self, query: &str, time_ms: i64) -> Vec<(String, f64)> {
        match self.instant_ms(query, time_ms) {
            Ok(Value::Vector(samples)) => samples
                .iter()
                .map(|s| {
                    assert_eq!(s.point.t, time_ms, "{query}: sample time");
                    (key_text(&s.key), s.point.v)
                })
                .collect(),
            other => panic!("{query}: expected a vector, got {other:?}"),
        }
    }

    pub fn vector(&self, query: &str, time_s: i64) -> Vec<(String, f64)> {
        self.vector_ms(query, time_s * 1000)
    }

    pub fn scalar(&self, query: &str, time_s: i64) -> f64 {
        match self.instant(query, time_s) {
            Value::Scalar(point) => {
                assert_eq!(point.t, time_s * 1000);
                point.v
            }
            other => panic!("{query}: expected a scalar, got {other:?}"),
        }
    }

    /// A matrix as `(key, [(seconds, value)])`, in result order.
    pub fn matrix(&self, value: Value) -> Vec<(String, Vec<(f64, f64)>)> {
        match value {
            Value::Matrix(series) => series
                .iter()
                .map(|s| {
                    (
                        key_text(&s.key),
                        s.points
                            .iter()
                            .map(|p| (p.t as f64 / 1000.0, p.v))
                            .collect(),
                    )
                })
                .collect(),
            other => panic!("expected a matrix, got {other:?}"),
        }
    }

    pub fn range(
        &self,
        query: &str,
        start_s: i64,
        end_s: i64,
        step_s: i64,
    ) -> Vec<(String, Vec<(f64, f64)>)> {
        let value = self
            .range_result(query, start_s * 1000, end_s * 1000, step_s * 1000)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        self.matrix(value)
    }

    pub fn range_result(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, EvalError> {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        self.engine.range(&expr, start_ms, end_ms, step_ms)
    }
}

/// Equal within 1e-9 relative, or both NaN, or the same infinity.
pub fn close(actual: f64, expected: f64) -> bool {
    if expected.is_nan() {
        return actual.is_nan();
    }
    if expected.is_infinite() {
        return actual == expected;
    }
    (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

/// Asserts a vector result equals `expected` (order included, values
/// within [`close`]).
#[track_caller]
pub fn assert_vector(actual: &[(String, f64)], expected: &[(&str, f64)]) {
    let matches = actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|((ak, av), (ek, ev))| ak == ek && close(*av, *ev));
    assert!(matches, "got {actual:?}\nwant {expected:?}");
}

/// Asserts a matrix result equals `expected`.
#[track_caller]
pub fn assert_matrix(actual: &[(String, Vec<(f64, f64)>)], expected: &[(&str, &[(f64, f64)])]) {
    let matches = actual.len() == expected.len()
        && actual.iter().zip(expected).all(|((ak, ap), (ek, ep))| {
            ak == ek
                && ap.len() == ep.len()
                && ap
                    .iter()
                    .zip(ep.iter())
                    .all(|((at, av), (et, ev))| at == et && close(*av, *ev))
        });
    assert!(matches, "got {actual:?}\nwant {expected:?}");
}

/// A config with a small budget or a timeout.
pub fn config(max_samples: usize, timeout: Duration) -> EngineConfig {
    EngineConfig {
        max_samples,
        timeout,
        ..EngineConfig::default()
    }
}
