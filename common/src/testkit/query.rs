//! The query slot's conformance suite for the seed's question: samples of a
//! name in an inclusive range, in time order, empty for unknown names.

use std::sync::Arc;

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
