//! The router: one HTTP surface assembled from the routes every slot
//! contributes.
//!
//! The ingestion server answers its own write routes and hands every other
//! request here. The router holds the runtime's own routes (`seed_routes.rs`)
//! and each slot's [`RouteSet`] (craft 4's Prometheus API, craft 5's
//! alerting API), refuses to start when two claim one pattern, and sends a
//! request to exactly one of them. It answers what no one claims itself:
//! 405 for a method a route does not list, 501 for a well-known route of a
//! slot whose running implementation does not answer it (phase0's scan has
//! no PromQL), 404 for the rest. Story: `docs/src/architecture.md`.

use std::sync::Arc;

use common::http::{Handler, Request, Response, Route, RouteSet};
use thiserror::Error;

use crate::Components;
use crate::seed_routes::{ComponentNames, SeedRoutes};

/// Why the routes could not be assembled.
#[derive(Debug, Error)]
pub enum RouterError {
    /// Two route sets claimed the same pattern.
    #[error("route {path} is claimed by both {first} and {second}")]
    Conflict {
        /// The pattern.
        path: &'static str,
        /// Who claimed it first.
        first: &'static str,
        /// Who claimed it again.
        second: &'static str,
    },
}

/// The routes some implementation of a slot answers: when the running one
/// does not, the router says so with a 501 naming the slot, instead of a
/// 404 that reads like a typo.
const WELL_KNOWN: &[(&str, Slot)] = &[
    ("/api/v1/query", Slot::Query),
    ("/api/v1/query_range", Slot::Query),
    ("/api/v1/series", Slot::Query),
    ("/api/v1/labels", Slot::Query),
    ("/api/v1/label/*/values", Slot::Query),
    ("/api/v1/status/buildinfo", Slot::Query),
    ("/api/v1/status/flags", Slot::Query),
    ("/api/v1/metadata", Slot::Query),
    ("/api/v1/query_exemplars", Slot::Query),
    ("/api/v1/format_query", Slot::Query),
    ("/api/v1/parse_query", Slot::Query),
    ("/api/v1/status/runtimeinfo", Slot::Query),
    ("/api/v1/status/tsdb", Slot::Query),
    ("/api/v1/targets", Slot::Query),
    ("/api/v1/alertmanagers", Slot::Query),
    ("/api/v1/admin/tsdb/delete_series", Slot::Query),
    ("/api/v1/admin/tsdb/clean_tombstones", Slot::Query),
    ("/api/v1/rules", Slot::Alerting),
    ("/api/v1/alerts", Slot::Alerting),
    ("/api/v1/alerts/groups", Slot::Alerting),
    ("/api/v1/alerts/*/ack", Slot::Alerting),
    ("/api/v1/silences", Slot::Alerting),
    ("/api/v1/silences/*", Slot::Alerting),
    ("/api/v1/notifications", Slot::Alerting),
    ("/api/v1/oncall", Slot::Alerting),
];

#[derive(Debug, Clone, Copy)]
enum Slot {
    Query,
    Alerting,
}

/// One claimed route and who answers it.
struct Entry {
    route: Route,
    set: usize,
}

/// The assembled routes; see the module notes.
pub struct Router {
    sets: Vec<Arc<dyn RouteSet>>,
    /// Exact patterns before patterns with `*`, so `/api/v1/alerts/groups`
    /// wins over `/api/v1/alerts/*` where both could match.
    entries: Vec<Entry>,
    names: ComponentNames,
}

impl Router {
    /// The runtime's routes plus every route set of `components`.
    ///
    /// # Errors
    /// [`RouterError::Conflict`] when two sets claim one pattern.
    pub fn new(components: &Components) -> Result<Self, RouterError> {
        let names = ComponentNames {
            ingestion: components.ingestion.name().to_string(),
            queue: components.queue.name().to_string(),
            storage: components.store.name().to_string(),
            query: components.query.name().to_string(),
            alerting: components.alerting.name().to_string(),
        };
        let seed: Arc<dyn RouteSet> = Arc::new(SeedRoutes::new(
            components.queue.clone(),
            components.query.clone(),
            names.clone(),
        ));
        let mut sets = vec![seed];
        sets.extend(components.routes.iter().cloned());
        Self::from_sets(sets, names)
    }

    fn from_sets(sets: Vec<Arc<dyn RouteSet>>, names: ComponentNames) -> Result<Self, RouterError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (index, set) in sets.iter().enumerate() {
            for route in set.routes() {
                if let Some(claimed) = entries.iter().find(|e| e.route.path == route.path) {
                    return Err(RouterError::Conflict {
                        path: route.path,
                        first: sets[claimed.set].owner(),
                        second: set.owner(),
                    });
                }
                entries.push(Entry { route, set: index });
            }
        }
        entries.sort_by_key(|entry| entry.route.path.contains('*'));
        Ok(Router {
            sets,
            entries,
            names,
        })
    }

    /// Every route answered, with its owner, in the order matched.
    pub fn routes(&self) -> Vec<(Route, &'static str)> {
        self.entries
            .iter()
            .map(|entry| (entry.route, self.sets[entry.set].owner()))
            .collect()
    }

    /// One line per owner naming the paths it answers, for the startup
    /// log: `craft4: /api/v1/query /api/v1/query_range …`.
    pub fn summary(&self) -> Vec<String> {
        self.sets
            .iter()
            .enumerate()
            .map(|(index, set)| {
                let paths: Vec<&str> = self
                    .entries
                    .iter()
                    .filter(|entry| entry.set == index)
                    .map(|entry| entry.route.path)
                    .collect();
                format!("{}: {}", set.owner(), paths.join(" "))
            })
            .collect()
    }

    fn unclaimed(&self, request: &Request) -> Response {
        let path = request.path.as_str();
        let well_known = WELL_KNOWN
            .iter()
            .find(|(pattern, _)| Route::new(pattern, &[]).matches(path));
        if let Some((_, slot)) = well_known {
            let (slot, running, flag) = match slot {
                Slot::Query => ("query", &self.names.query, "--query craft4"),
                Slot::Alerting => ("alerting", &self.names.alerting, "--alerting craft5"),
            };
            return Response::api_error(
                501,
                "unavailable",
                format!(
                    "{path} belongs to the {slot} slot, and its running implementation ({running}) \
                     does not answer it; run the platform with {flag}"
                ),
            );
        }
        if path.starts_with("/api/v1/") {
            Response::api_error(404, "not_found", format!("unknown API endpoint {path}"))
        } else {
            Response::error(404, format!("no route for {} {path}", request.method))
        }
    }
}

impl Handler for Router {
    fn handle(&self, request: &Request) -> Response {
        let path = request.path.as_str();
        let Some(entry) = self.entries.iter().find(|e| e.route.matches(path)) else {
            return self.unclaimed(request);
        };
        let method = request.method.as_str();
        if !entry.route.methods.contains(&method) {
            return Response::method_not_allowed(method, path, &entry.route.methods.join(", "));
        }
        self.sets[entry.set].handle(request)
    }

    fn write_metrics(&self, out: &mut String) {
        for set in &self.sets {
            set.write_metrics(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Vec<Route>);

    impl RouteSet for Fixed {
        fn owner(&self) -> &'static str {
            self.0
        }

        fn routes(&self) -> Vec<Route> {
            self.1.clone()
        }

        fn handle(&self, request: &Request) -> Response {
            Response::error(200, format!("{} {}", self.0, request.path))
        }
    }

    fn router(sets: Vec<Arc<dyn RouteSet>>) -> Result<Router, RouterError> {
        Router::from_sets(
            sets,
            ComponentNames {
                query: "phase0".into(),
                alerting: "phase0".into(),
                ..Default::default()
            },
        )
    }

    fn get(router: &Router, method: &str, target: &str) -> (u16, serde_json::Value) {
        let response = router.handle(&Request::new(method, target, vec![], vec![]));
        let body = serde_json::from_slice(&response.body).expect("JSON");
        (response.status, body)
    }

    #[test]
    fn a_request_reaches_exactly_its_owner() {
        let router = router(vec![
            Arc::new(Fixed(
                "a",
                vec![
                    Route::new("/api/v1/alerts/*", &["GET"]),
                    Route::new("/x", &["GET", "POST"]),
                ],
            )),
            Arc::new(Fixed(
                "b",
                vec![Route::new("/api/v1/alerts/groups", &["GET"])],
            )),
        ])
        .unwrap();
        assert_eq!(get(&router, "GET", "/x?q=1").1["error"], "a /x");
        assert_eq!(
            get(&router, "GET", "/api/v1/alerts/groups").1["error"],
            "b /api/v1/alerts/groups",
            "an exact pattern wins over a wildcard"
        );
        assert_eq!(
            get(&router, "GET", "/api/v1/alerts/abc").1["error"],
            "a /api/v1/alerts/abc"
        );
        let (status, body) = get(&router, "DELETE", "/x");
        assert_eq!(status, 405);
        assert!(body["error"].as_str().unwrap().contains("GET, POST"));
    }

    #[test]
    fn unclaimed_routes_answer_501_for_a_slot_and_404_otherwise() {
        let router = router(vec![]).unwrap();
        let (status, body) = get(&router, "GET", "/api/v1/query?query=up");
        assert_eq!(status, 501);
        assert_eq!(body["errorType"], "unavailable");
        assert!(body["error"].as_str().unwrap().contains("--query craft4"));
        let (status, body) = get(&router, "GET", "/api/v1/silences/abc");
        assert_eq!(status, 501);
        assert!(body["error"].as_str().unwrap().contains("alerting slot"));
        let (status, body) = get(&router, "GET", "/api/v1/nope");
        assert_eq!(
            (status, body["errorType"].as_str()),
            (404, Some("not_found"))
        );
        let (status, body) = get(&router, "GET", "/nope");
        assert_eq!(status, 404);
        assert!(body["error"].as_str().unwrap().contains("no route"));
    }

    #[test]
    fn two_owners_of_one_route_refuse_to_start() {
        let error = router(vec![
            Arc::new(Fixed("a", vec![Route::new("/x", &["GET"])])),
            Arc::new(Fixed("b", vec![Route::new("/x", &["POST"])])),
        ])
        .err()
        .expect("conflict");
        assert_eq!(error.to_string(), "route /x is claimed by both a and b");
    }
}
