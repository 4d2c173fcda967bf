//! The alerting conformance suite (`common::testkit::alerting::run_all`),
//! unchanged, against both engines craft 5 offers the platform: the bare
//! streaming engine and the whole service (routing, outbox, delivery and
//! escalation around it), which is what `--alerting craft5` runs.

use std::sync::Arc;

use common::testkit::alerting::run_all;
use craft5_alerting::{
    AlertingService, EngineOptions, RoutingConfig, RuleSet, ServiceOptions, StreamingAlertEngine,
};

#[test]
fn streaming_engine_passes_the_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("store"));
    run_all(store, &|fixture| {
        Arc::new(
            StreamingAlertEngine::from_seed_rules(
                &fixture.rules,
                fixture.notifiers,
                EngineOptions::new(fixture.clock),
            )
            .expect("seed rules load"),
        )
    });
}

#[test]
fn alerting_service_passes_the_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("store"));
    run_all(store, &|fixture| {
        let rules = RuleSet::from_seed_rules(&fixture.rules).expect("seed rules load");
        let options = ServiceOptions::new(fixture.clock).with_notifiers(fixture.notifiers);
        Arc::new(
            AlertingService::new(rules, RoutingConfig::console_default(), options)
                .expect("service builds in memory"),
        )
    });
}
