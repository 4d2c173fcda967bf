//! A per-thread cache from a line-protocol series key as written
//! (`cpu_usage,host=h-001,region=eu`) to its decoded metric name and
//! sorted labels.
//!
//! The bottleneck it removes: turning a series key into a name and a label
//! set — unescape, sanitise, allocate a `String` per tag key and value,
//! sort — was over 40% of decoding a line (callgrind, chapter 3's
//! end-to-end run), and it is the same work every time a series is seen
//! again: every scrape interval for an agent, ten times per 10,000-line
//! body of the reference dataset. Prometheus keeps a series cache in its
//! scrape loop and VictoriaMetrics one per metric name for the same reason.
//! A hit costs a hash lookup and a clone of what was built the first time.
//!
//! Per thread, so no lock: the ingestion runtime has one cache per worker
//! thread. Bounded: at [`CAPACITY`] entries it is cleared and refills (a
//! churn of new series costs what it cost without a cache, plus a lookup).
//! Only what parsing *a key* decides is cached — the name and labels, a pure
//! function of the key's bytes — so limits and validation still run on
//! every metric.

use std::cell::RefCell;
use std::collections::HashMap;

use common::Labels;

/// Entries per thread before the cache is cleared (~100 bytes each).
pub const CAPACITY: usize = 100_000;

/// Keys longer than this are not cached (they are rare, and a key is
/// stored in full).
const MAX_KEY_BYTES: usize = 512;

thread_local! {
    static SERIES: RefCell<HashMap<Box<str>, (String, Labels)>> = RefCell::new(HashMap::new());
}

/// The name and labels of the series written as `key`: from the cache, or
/// built by `build` and remembered.
pub fn name_and_labels(key: &str, build: impl FnOnce() -> (String, Labels)) -> (String, Labels) {
    if key.len() > MAX_KEY_BYTES {
        return build();
    }
    SERIES.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return build();
        };
        if let Some((name, labels)) = cache.get(key) {
            return (name.clone(), labels.clone());
        }
        let built = build();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(key.into(), built.clone());
        built
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_returns_what_was_built_without_building_again() {
        let key = "series_cache_test,host=a";
        let built = || ("m".to_string(), Labels::from_pairs([("host", "a")]));
        assert_eq!(name_and_labels(key, built), built());
        let again = name_and_labels(key, || panic!("built twice"));
        assert_eq!(again, built());
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let mut calls = 0;
        for _ in 0..2 {
            name_and_labels(&long, || {
                calls += 1;
                built()
            });
        }
        assert_eq!(calls, 2, "long keys are not cached");
    }
}
