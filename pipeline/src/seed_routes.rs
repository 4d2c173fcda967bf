//! The runtime's own routes, answered over the slot traits so they work
//! with every implementation: `GET /health` (which implementation runs in
//! each slot, the queue's backlog and what a 202 promises) and the seed's
//! `GET /query?name=&start=&end=` (through `QueryEngine::samples`).
//! Story: docs chapter 0, "The query API".

use std::sync::Arc;

use common::http::{Request, Response, Route, RouteSet};
use common::{MetricQueue, QueryEngine, QueryError, TimeRange};
use serde_json::json;

/// Names of the five components, reported by `/health`.
#[derive(Debug, Clone, Default)]
pub struct ComponentNames {
    /// Ingestion server.
    pub ingestion: String,
    /// Queue.
    pub queue: String,
    /// Store.
    pub storage: String,
    /// Query engine.
    pub query: String,
    /// Alert engine.
    pub alerting: String,
}

/// `/health` and the seed's `/query`.
pub struct SeedRoutes {
    queue: Arc<dyn MetricQueue>,
    query: Arc<dyn QueryEngine>,
    components: ComponentNames,
}

impl SeedRoutes {
    /// The routes over `queue` (for `/health`) and `query` (for `/query`).
    pub fn new(
        queue: Arc<dyn MetricQueue>,
        query: Arc<dyn QueryEngine>,
        components: ComponentNames,
    ) -> Self {
        SeedRoutes {
            queue,
            query,
            components,
        }
    }

    fn seed_query(&self, request: &Request) -> Response {
        let mut name = None;
        let mut start = i64::MIN;
        let mut end = i64::MAX;
        for (key, value) in request.query_pairs() {
            match key.as_str() {
                "name" => name = Some(value),
                "start" | "end" => {
                    let Ok(ms) = value.trim().parse::<i64>() else {
                        return Response::error(
                            400,
                            format!(
                                "invalid {key} {value:?}: expected an integer number of milliseconds since the epoch"
                            ),
                        );
                    };
                    if key == "start" {
                        start = ms;
                    } else {
                        end = ms;
                    }
                }
                _ => {}
            }
        }
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Response::error(400, "missing query parameter \"name\"");
        };
        if start > end {
            return Response::error(400, format!("start {start} is after end {end}"));
        }
        match self.query.samples(&name, TimeRange::new(start, end)) {
            Ok(metrics) => match serde_json::to_vec(&metrics) {
                Ok(body) => Response {
                    status: 200,
                    content_type: "application/json",
                    headers: Vec::new(),
                    body,
                },
                Err(e) => Response::error(500, e.to_string()),
            },
            Err(e) => query_error(e),
        }
    }

    fn health(&self) -> Response {
        Response::json(
            200,
            &json!({
                "status": "healthy",
                "queue_size": self.queue.len(),
                "accepted_means": self.queue.durability().as_str(),
                "queue_guarantee": self.queue.guarantee(),
                "components": {
                    "ingestion": self.components.ingestion,
                    "queue": self.components.queue,
                    "storage": self.components.storage,
                    "query": self.components.query,
                    "alerting": self.components.alerting,
                },
            }),
        )
    }
}

impl RouteSet for SeedRoutes {
    fn owner(&self) -> &'static str {
        "pipeline"
    }

    fn routes(&self) -> Vec<Route> {
        vec![
            Route::new("/health", &["GET"]),
            Route::new("/query", &["GET"]),
        ]
    }

    fn handle(&self, request: &Request) -> Response {
        match request.path.as_str() {
            "/health" => self.health(),
            _ => self.seed_query(request),
        }
    }
}

/// A query slot error as the seed's routes answer it: `{"error": …}` with
/// the status the error's kind calls for.
fn query_error(error: QueryError) -> Response {
    let status = match error {
        QueryError::BadRequest(_) => 400,
        QueryError::Unsupported(_) => 501,
        QueryError::LimitExceeded(_) | QueryError::Execution(_) => 422,
        QueryError::Timeout(_) => 503,
        QueryError::Storage(_) => 500,
    };
    Response::error(status, error.to_string())
}
