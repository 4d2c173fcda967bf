//! # pipeline — the runtime that wires five slots into one system
//!
//! `common` says what each slot must do; this crate runs them together:
//! it starts the threads between the slots, assembles one HTTP surface
//! from the routes each slot contributes, and stops everything in the
//! order that loses nothing accepted. phase0's binary and the `platform`
//! composer both run their slots through it, so the learner's swap and the
//! product share one runtime.
//!
//! # Layout
//!
//! - [`run`]: [`Pipeline`] and [`RunningPipeline`] — start, the startup
//!   log, shutdown and drain; [`Components`], what a pipeline runs.
//! - [`consumer`]: the storage consumer thread — queue → store, ack after
//!   append, observers and the alert engine told, retries.
//! - [`router`]: [`Router`], one HTTP surface from every slot's
//!   `RouteSet`; 405, 501 and 404 answered here.
//! - [`seed_routes`]: the runtime's own routes over the slot traits —
//!   `/health` and the seed's `/query`.
//!
//! Story: docs chapter 0 and `docs/src/architecture.md`.

pub mod consumer;
pub mod router;
pub mod run;
pub mod seed_routes;

pub use router::{Router, RouterError};
pub use run::{
    Components, Pipeline, PipelineError, PipelineOptions, RunningPipeline, ShutdownReport,
};

#[cfg(feature = "testkit")]
impl common::testkit::ingestion::SystemUnderTest for RunningPipeline {
    fn addr(&self) -> std::net::SocketAddr {
        self.local_addr()
    }

    fn store(&self) -> std::sync::Arc<dyn common::MetricStore> {
        self.components().store.clone()
    }

    fn stop(self: Box<Self>) -> Result<usize, String> {
        RunningPipeline::stop(*self)
            .map(|report| report.left_in_queue)
            .map_err(|e| e.to_string())
    }
}
