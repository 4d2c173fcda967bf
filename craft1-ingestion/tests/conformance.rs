//! Every staircase step and the async server pass the ingestion slot's
//! conformance suite — the same one phase0's server passes.

mod support;

use craft1_ingestion::ServerConfig;
use pipeline::{Pipeline, PipelineOptions};
use support::{ALL_STEPS, components};

#[test]
fn every_step_passes_the_ingestion_suite() {
    for step in ALL_STEPS {
        common::testkit::ingestion::run_all(&|dir, listener| {
            let components = components(dir, step, ServerConfig::default(), 1_000_000);
            let options = PipelineOptions {
                verbose: false,
                ..Default::default()
            };
            Box::new(Pipeline::start(components, listener, options).expect("starts"))
        });
    }
}
