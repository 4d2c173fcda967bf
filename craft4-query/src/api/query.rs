//! `/api/v1/query` and `/api/v1/query_range`: parameters checked in
//! Prometheus' order with Prometheus' messages, the expression parsed and
//! handed to the evaluator, its [`Value`](crate::value::Value) turned into
//! Prometheus' JSON.
//!
//! The bottleneck it removes: phase0 answers one question per request
//! (one name, one range) and leaves every aggregation to the client, which
//! must download every raw sample first; here the client sends the
//! question and gets back only the answer. Docs chapter 4, "Speaking
//! Prometheus".

use std::time::Duration;

use common::{Clock, QueryError, StorageError};
use promql::{Expr, ValueType, parse};

use super::params::{Params, invalid_parameter};
use crate::cache::ResultCache;
use crate::eval::{Engine, EngineConfig, EvalError};
use crate::value::Value;

/// `GET/POST /api/v1/query?query=…&time=…&timeout=…`: `time` defaults to
/// now.
///
/// # Errors
/// 400 for bad parameters or a query that does not parse; the evaluator's
/// errors as [`eval_error`] maps them.
pub fn instant(
    engine: &Engine,
    clock: &dyn Clock,
    params: Params<'_>,
) -> Result<Value, QueryError> {
    let time_ms = params.optional_time("time", clock.now_ms())?;
    let timeout = timeout(params)?;
    let expr = parse_query(params)?;
    with_timeout(engine, timeout, |engine| engine.instant(&expr, time_ms))
}

/// `GET/POST /api/v1/query_range?query=…&start=…&end=…&step=…`: always a
/// matrix.
///
/// # Errors
/// 400 for bad parameters (Prometheus' messages for end before start, a
/// non-positive step, too many points per series), a query that does not
/// parse or is not a scalar or instant vector; the evaluator's errors as
/// [`eval_error`] maps them.
pub fn range(engine: &Engine, params: Params<'_>) -> Result<Value, QueryError> {
    range_with(engine, None, params)
}

/// [`range`] through the result cache, `now_ms` telling it which steps
/// can no longer change.
///
/// # Errors
/// As [`range`].
pub fn range_cached(
    engine: &Engine,
    cache: &ResultCache,
    now_ms: i64,
    params: Params<'_>,
) -> Result<Value, QueryError> {
    range_with(engine, Some((cache, now_ms)), params)
}

fn range_with(
    engine: &Engine,
    cache: Option<(&ResultCache, i64)>,
    params: Params<'_>,
) -> Result<Value, QueryError> {
    let start_ms = params.required_time("start")?;
    let end_ms = params.required_time("end")?;
    if end_ms < start_ms {
        return Err(QueryError::BadRequest(
            "end timestamp must not be before start time".into(),
        ));
    }
    // Required: an absent step is an unparseable "", as in Prometheus.
    let step_ms = match params.optional_duration_ms("step")? {
        Some(step) => step,
        None => {
            return Err(invalid_parameter(
                "step",
                "cannot parse \"\" to a valid duration",
            ));
        }
    };
    if step_ms <= 0 {
        return Err(QueryError::BadRequest(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    // Checked before anything is read: the points alone of a 1 ms step over
    // a year would exhaust memory. Prometheus counts intervals, not points.
    let max_points = engine.config().max_points_per_series;
    let intervals = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms);
    if intervals > max_points as i128 {
        return Err(QueryError::BadRequest(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            with_thousands_separators(max_points)
        )));
    }
    let timeout = timeout(params)?;
    let expr = parse_query(params)?;
    if !matches!(
        expr.value_type(),
        ValueType::Scalar | ValueType::InstantVector
    ) {
        return Err(invalid_parameter(
            "query",
            format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                expr.value_type()
            ),
        ));
    }
    // A step's answer under `@` depends on more than the step (a fixed
    // time, or the query's own start and end): never cached.
    // `nocache=1` (VictoriaMetrics' parameter): evaluate every step, so a
    // benchmark can say whether it measured the evaluator or the cache.
    let bypass = match params.value("nocache") {
        "" | "0" | "false" => false,
        "1" | "true" => true,
        other => {
            return Err(invalid_parameter(
                "nocache",
                format!("{other:?} is neither 1 nor 0"),
            ));
        }
    };
    let cache = cache.filter(|_| !expr.uses_at() && !bypass);
    with_timeout(engine, timeout, |engine| match cache {
        Some((cache, now_ms)) => cache.range(engine, &expr, start_ms, end_ms, step_ms, now_ms),
        None => engine.range(&expr, start_ms, end_ms, step_ms),
    })
}

/// What each evaluator error means to an HTTP client.
///
/// - over the sample budget: [`QueryError::LimitExceeded`] (422
///   `execution`, Prometheus' answer to too many samples);
/// - over the time limit: [`QueryError::Timeout`] (503 `timeout`, as
///   Prometheus: the same query may pass on a less busy server);
/// - an execution error on this data (many-to-many matching, …):
///   [`QueryError::Execution`] (422 `execution`);
/// - parameters that cannot work, or a selector the store cannot evaluate:
///   [`QueryError::BadRequest`];
/// - not implemented: [`QueryError::Unsupported`] (501);
/// - the store failing: [`QueryError::Storage`] (500).
pub fn eval_error(error: EvalError) -> QueryError {
    match error {
        EvalError::TooManySamples { .. } => QueryError::LimitExceeded(error.to_string()),
        EvalError::Timeout(_) => QueryError::Timeout(error.to_string()),
        EvalError::BadQuery(message) => QueryError::BadRequest(message),
        EvalError::Execution(message) => QueryError::Execution(message),
        EvalError::Unsupported(_) => QueryError::Unsupported(error.to_string()),
        EvalError::Storage(StorageError::InvalidSelector(message)) => {
            QueryError::BadRequest(format!("invalid selector: {message}"))
        }
        EvalError::Storage(error) => QueryError::Storage(error),
    }
}

/// The `query` parameter, parsed.
///
/// # Errors
/// `invalid parameter "query": …` with the parser's positioned message.
pub fn parse_query(params: Params<'_>) -> Result<Expr, QueryError> {
    parse(params.value("query")).map_err(|e| invalid_parameter("query", e))
}

/// `timeout`: a client may shorten the engine's limit, never lengthen it.
fn timeout(params: Params<'_>) -> Result<Option<Duration>, QueryError> {
    Ok(params.optional_duration_ms("timeout")?.map(|ms| {
        // A zero or negative timeout has already passed, as in Prometheus.
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }))
}

/// Runs `evaluate` on `engine`, or on an engine with the same store and a
/// shorter timeout when the client asked for one.
///
/// A second `Engine` is cheap (a store handle and a config); the price is
/// that anything the engine keeps between queries is not shared with it,
/// which is why only a request that shortens the limit takes this path.
fn with_timeout<T>(
    engine: &Engine,
    timeout: Option<Duration>,
    evaluate: impl FnOnce(&Engine) -> Result<T, EvalError>,
) -> Result<T, QueryError> {
    let result = match timeout {
        Some(timeout) if timeout < engine.config().timeout => {
            let shorter = Engine::new(
                engine.store().clone(),
                EngineConfig {
                    timeout,
                    ..engine.config().clone()
                },
            );
            evaluate(&shorter)
        }
        _ => evaluate(engine),
    };
    result.map_err(eval_error)
}

/// `11000` → `11,000`, as Prometheus' message spells its limit.
fn with_thousands_separators(number: usize) -> String {
    let digits = number.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(with_thousands_separators(11_000), "11,000");
        assert_eq!(with_thousands_separators(999), "999");
        assert_eq!(with_thousands_separators(1_234_567), "1,234,567");
        assert_eq!(with_thousands_separators(0), "0");
    }

    #[test]
    fn evaluator_errors_map_to_prometheus_error_types() {
        assert!(matches!(
            eval_error(EvalError::TooManySamples { limit: 5 }),
            QueryError::LimitExceeded(m) if m.contains("too many samples")
        ));
        assert!(matches!(
            eval_error(EvalError::Timeout(Duration::from_secs(1))),
            QueryError::Timeout(m) if m.contains("timed out")
        ));
        assert!(matches!(
            eval_error(EvalError::BadQuery("step".into())),
            QueryError::BadRequest(m) if m == "step"
        ));
        assert!(matches!(
            eval_error(EvalError::Execution("many-to-many".into())),
            QueryError::Execution(m) if m == "many-to-many"
        ));
        assert!(matches!(
            eval_error(EvalError::Unsupported("x".into())),
            QueryError::Unsupported(_)
        ));
        assert!(matches!(
            eval_error(EvalError::Storage(StorageError::InvalidSelector(
                "re".into()
            ))),
            QueryError::BadRequest(_)
        ));
        assert!(matches!(
            eval_error(EvalError::Storage(StorageError::Limit("x".into()))),
            QueryError::Storage(_)
        ));
    }
}
