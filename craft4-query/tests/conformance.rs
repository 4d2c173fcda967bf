//! The query slot's conformance suites, unchanged, against craft 4: the
//! seed's question (`run_all`) with and without the result cache, and the
//! Prometheus HTTP API (`run_prometheus_api`) through the routes craft 4
//! contributes to the platform's router — over phase0's store and craft
//! 3's, the two stores the platform can put under it.

use std::sync::Arc;

use common::MetricStore;
use common::testkit::query::{run_all, run_prometheus_api};
use craft4_query::cache::CacheConfig;
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;

fn phase0_store(dir: &tempfile::TempDir) -> Arc<dyn MetricStore> {
    Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("store"))
}

fn craft3_store() -> Arc<dyn MetricStore> {
    Arc::new(craft3_storage::HeadStore::default())
}

#[test]
fn seed_question_without_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_all(phase0_store(&dir), &|store| {
        Arc::new(Craft4QueryEngine::new(store, EngineConfig::default()))
    });
}

#[test]
fn seed_question_with_cache() {
    run_all(craft3_store(), &|store| {
        Arc::new(
            Craft4QueryEngine::new(store, EngineConfig::default())
                .with_cache(CacheConfig::default()),
        )
    });
}

#[test]
fn prometheus_api_over_phase0_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_prometheus_api(phase0_store(&dir), &|store| {
        Craft4QueryEngine::new(store, EngineConfig::default())
            .slot()
            .routes
    });
}

#[test]
fn prometheus_api_over_craft3_store_with_cache() {
    run_prometheus_api(craft3_store(), &|store| {
        Craft4QueryEngine::new(store, EngineConfig::default())
            .with_cache(CacheConfig::default())
            .slot()
            .routes
    });
}
