//! Every craft 2 queue passes the queue slot's conformance suite.

use std::sync::Arc;

use common::testkit;
use craft2_queue::CrossbeamQueue;

#[test]
fn crossbeam_queue_conforms() {
    testkit::queue::run_all(&|capacity| Arc::new(CrossbeamQueue::new(capacity)));
}
