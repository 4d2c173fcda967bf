//! The parameters of one API call, read the way Prometheus' handlers read
//! them, with Prometheus' error messages: `invalid parameter "start":
//! cannot parse "abc" to a valid timestamp` and friends, each a 400
//! `bad_data`.
//!
//! Every check that can fail on client input happens here, before the
//! store or the evaluator is touched, so a bad request costs nothing and
//! no client string reaches code that could panic on it. Docs chapter 4,
//! "Speaking Prometheus".

use std::fmt::Display;

use common::{LabelMatcher, QueryError};
use promql::{Expr, parse};

use super::ApiCall;
use super::timestamp::{parse_duration_ms, parse_time};

/// A call's `key=value` pairs (query string, then form body).
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// The parameters of `call`.
    pub fn of(call: &'a ApiCall) -> Self {
        Params {
            pairs: &call.params,
        }
    }

    /// The first value of `key`, `""` when absent: Go's `FormValue`, which
    /// Prometheus reads everything but `match[]` through, so an empty
    /// value and a missing one mean the same.
    pub fn value(&self, key: &str) -> &'a str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, in order (`match[]` repeats).
    pub fn values(&self, key: &str) -> Vec<&'a str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required time (`start`, `end` of a range query): an absent one is
    /// an unparseable `""`, as in Prometheus.
    ///
    /// # Errors
    /// `invalid parameter "start": cannot parse "" to a valid timestamp`.
    pub fn required_time(&self, key: &str) -> Result<i64, QueryError> {
        parse_time(self.value(key)).map_err(|e| invalid_parameter(key, e))
    }

    /// An optional time, `default` when absent or empty.
    ///
    /// # Errors
    /// Prometheus' doubled wording, kept so clients that match on it work:
    /// `invalid parameter "time": Invalid time value for 'time': cannot
    /// parse "abc" to a valid timestamp`.
    pub fn optional_time(&self, key: &str, default: i64) -> Result<i64, QueryError> {
        match self.value(key) {
            "" => Ok(default),
            text => parse_time(text).map_err(|e| {
                invalid_parameter(key, format!("Invalid time value for '{key}': {e}"))
            }),
        }
    }

    /// A duration in milliseconds (`step`, `timeout`), `None` when absent.
    ///
    /// # Errors
    /// `invalid parameter "step": cannot parse "abc" to a valid duration`.
    pub fn optional_duration_ms(&self, key: &str) -> Result<Option<i64>, QueryError> {
        match self.value(key) {
            "" => Ok(None),
            text => parse_duration_ms(text)
                .map(Some)
                .map_err(|e| invalid_parameter(key, e)),
        }
    }

    /// `limit`: at most this many results (`None`: no limit; `0` also
    /// means none, as in Prometheus).
    ///
    /// # Errors
    /// A 400 for anything but a non-negative integer.
    pub fn limit(&self) -> Result<Option<usize>, QueryError> {
        match self.value("limit") {
            "" => Ok(None),
            text => match text.parse::<i64>() {
                Ok(limit) if limit < 0 => {
                    Err(invalid_parameter("limit", "limit must be non-negative"))
                }
                Ok(limit) => Ok(usize::try_from(limit).ok().filter(|&l| l > 0)),
                Err(_) => Err(invalid_parameter(
                    "limit",
                    format!("cannot parse {text:?} as an integer"),
                )),
            },
        }
    }

    /// The `match[]` selectors, each a list of matchers the store applies
    /// (metric name first). Empty when none is given.
    ///
    /// # Errors
    /// `invalid parameter "match[]": …` for a selector that does not parse,
    /// is not a plain series selector, or matches every series (`{a=""}`:
    /// Prometheus' "at least one non-empty matcher" rule, which keeps one
    /// request from reading the whole store).
    pub fn matcher_sets(&self) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
        self.values("match[]")
            .into_iter()
            .map(parse_series_selector)
            .collect()
    }
}

fn parse_series_selector(text: &str) -> Result<Vec<LabelMatcher>, QueryError> {
    let expr = parse(text).map_err(|e| invalid_parameter("match[]", e))?;
    let Expr::VectorSelector(selector) = expr else {
        return Err(invalid_parameter(
            "match[]",
            format!(
                "expected a series selector such as up{{job=\"api\"}}, found the {} {expr}",
                expr.value_type()
            ),
        ));
    };
    if selector.offset_ms != 0 {
        return Err(invalid_parameter(
            "match[]",
            format!("a series selector takes no offset: {text:?}"),
        ));
    }
    let matchers = selector.store_matchers();
    if matchers.iter().all(|m| m.matches_value("")) {
        return Err(invalid_parameter(
            "match[]",
            "match[] must contain at least one non-empty matcher",
        ));
    }
    Ok(matchers)
}

/// Prometheus' `invalidParamError`: `invalid parameter "name": why`.
pub fn invalid_parameter(name: &str, why: impl Display) -> QueryError {
    QueryError::BadRequest(format!("invalid parameter {name:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiEndpoint;

    fn call(pairs: &[(&str, &str)]) -> ApiCall {
        ApiCall {
            endpoint: ApiEndpoint::Series,
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn message(error: QueryError) -> String {
        match error {
            QueryError::BadRequest(m) => m,
            other => panic!("not a bad request: {other:?}"),
        }
    }

    #[test]
    fn first_value_wins_and_empty_means_absent() {
        let call = call(&[("time", "1"), ("time", "2"), ("step", "")]);
        let params = Params::of(&call);
        assert_eq!(params.value("time"), "1");
        assert_eq!(params.values("time"), ["1", "2"]);
        assert_eq!(params.optional_duration_ms("step").unwrap(), None);
        assert_eq!(params.optional_time("end", 7).unwrap(), 7);
    }

    #[test]
    fn time_errors_use_prometheus_words() {
        let call = call(&[("start", "abc"), ("time", "abc")]);
        let params = Params::of(&call);
        assert_eq!(
            message(params.required_time("start").unwrap_err()),
            r#"invalid parameter "start": cannot parse "abc" to a valid timestamp"#
        );
        assert_eq!(
            message(params.required_time("end").unwrap_err()),
            r#"invalid parameter "end": cannot parse "" to a valid timestamp"#
        );
        assert_eq!(
            message(params.optional_time("time", 0).unwrap_err()),
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "abc" to a valid timestamp"#
        );
    }

    #[test]
    fn limits() {
        let limit = |text: &str| Params::of(&call(&[("limit", text)])).limit();
        assert_eq!(limit("").unwrap(), None);
        assert_eq!(limit("0").unwrap(), None);
        assert_eq!(limit("5").unwrap(), Some(5));
        assert!(message(limit("-1").unwrap_err()).contains("non-negative"));
        assert!(message(limit("x").unwrap_err()).starts_with("invalid parameter \"limit\""));
    }

    #[test]
    fn selectors() {
        let sets = |texts: &[&str]| {
            let pairs: Vec<(&str, &str)> = texts.iter().map(|t| ("match[]", *t)).collect();
            Params::of(&call(&pairs)).matcher_sets()
        };
        let parsed = sets(&["up", r#"{job=~"a.*", x!="1"}"#]).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0][0].name, "__name__");
        assert_eq!(parsed[1].len(), 2);
        assert!(sets(&[]).unwrap().is_empty());
        for (bad, needle) in [
            // The parser refuses these already; the handler's own check
            // stands behind it.
            (r#"{job=""}"#, "empty"),
            (r#"{job=~".*"}"#, "empty"),
            ("rate(x[5m])", "series selector"),
            ("x[5m]", "series selector"),
            ("x offset 5m", "no offset"),
            ("x{", "invalid parameter \"match[]\": 1:"),
        ] {
            let error = message(sets(&[bad]).unwrap_err());
            assert!(error.contains(needle), "{bad}: {error}");
            assert!(
                error.starts_with("invalid parameter \"match[]\": "),
                "{error}"
            );
        }
    }
}
