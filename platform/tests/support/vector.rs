//! Instant queries for the scrape tests: the vector an expression answers
//! now, and a bounded wait until it answers what a test expects.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{call, encode};

/// The instant vector `query` answers, as (labels, value) pairs.
pub fn query(addr: SocketAddr, expr: &str) -> Vec<(serde_json::Value, String)> {
    let (status, body) = call(
        addr,
        "GET",
        &format!("/api/v1/query?query={}", encode(expr)),
        "",
    )
    .expect("query");
    assert_eq!(status, 200, "{expr}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    answer["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Waits (bounded) until `expr`'s answer satisfies `done`.
pub fn wait_until(
    addr: SocketAddr,
    expr: &str,
    what: &str,
    done: impl Fn(&[(serde_json::Value, String)]) -> bool,
) -> Vec<(serde_json::Value, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = query(addr, expr);
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {expr} answers {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `done` for a one-series answer of `expected`.
pub fn value_is(expected: &str) -> impl Fn(&[(serde_json::Value, String)]) -> bool + '_ {
    move |answer| answer.len() == 1 && answer[0].1 == expected
}
