//! `/api/v1/parse_query`: a query's syntax tree as JSON, in the shape
//! Prometheus' own endpoint answers (its UI draws the tree from it, and
//! editors use it to explain a query): every node has a `type`
//! (`vectorSelector`, `matrixSelector`, `subquery`, `call`, `aggregation`,
//! `binaryExpr`, `unaryExpr`, `numberLiteral`, `stringLiteral`), durations
//! in milliseconds, an `@` as `timestamp` or `startOrEnd`.
//!
//! Two differences come from our tree, not from this file: parentheses
//! leave no `parenExpr` node (the tree keeps only what changes meaning),
//! and `-1` is one number literal, not a unary minus over `1`. Docs
//! chapter 4, "Speaking Prometheus".

use common::{LabelMatcher, MatchOp};
use promql::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Expr, GroupModifier, Grouping, MatchingLabels,
    ValueType, VectorSelector,
};
use serde_json::{Value as Json, json};

/// The tree of `expr`.
pub fn of(expr: &Expr) -> Json {
    match expr {
        Expr::Number(value) => json!({"type": "numberLiteral", "val": number(*value)}),
        Expr::String(text) => json!({"type": "stringLiteral", "val": text}),
        Expr::VectorSelector(selector) => {
            let mut node = selector_fields(selector);
            node["type"] = json!("vectorSelector");
            node
        }
        Expr::MatrixSelector(matrix) => {
            let mut node = selector_fields(&matrix.selector);
            node["type"] = json!("matrixSelector");
            node["range"] = json!(matrix.range_ms);
            node
        }
        Expr::Subquery(subquery) => {
            let (timestamp, start_or_end) = at(subquery.at);
            json!({
                "type": "subquery",
                "expr": of(&subquery.expr),
                "range": subquery.range_ms,
                "offset": subquery.offset_ms,
                "step": subquery.step_ms.unwrap_or(0),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::Call(call) => call_node(call),
        Expr::Aggregate(aggregate) => aggregate_node(aggregate),
        Expr::Negate(operand) => json!({"type": "unaryExpr", "op": "-", "expr": of(operand)}),
        Expr::Binary(binary) => binary_node(binary),
    }
}

/// A number as Go's `FormatFloat(v, 'f', -1, 64)` writes it, and
/// Prometheus' spellings of the non-finite ones.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal
        // without an exponent, as `'f', -1` is.
        value.to_string()
    }
}

fn at(modifier: Option<AtModifier>) -> (Json, Json) {
    match modifier {
        None => (Json::Null, Json::Null),
        Some(AtModifier::Time(ms)) => (json!(ms), Json::Null),
        Some(AtModifier::Start) => (Json::Null, json!("start")),
        Some(AtModifier::End) => (Json::Null, json!("end")),
    }
}

fn selector_fields(selector: &VectorSelector) -> Json {
    let (timestamp, start_or_end) = at(selector.at);
    let matchers: Vec<Json> = selector.store_matchers().iter().map(matcher).collect();
    json!({
        "name": selector.name.as_deref().unwrap_or(""),
        "offset": selector.offset_ms,
        "matchers": matchers,
        "timestamp": timestamp,
        "startOrEnd": start_or_end,
    })
}

fn matcher(matcher: &LabelMatcher) -> Json {
    let op = match matcher.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    };
    json!({"type": op, "name": matcher.name, "value": matcher.value})
}

/// Prometheus' names of value types in a function's signature.
fn type_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Scalar => "scalar",
        ValueType::InstantVector => "vector",
        ValueType::RangeVector => "matrix",
        ValueType::String => "string",
    }
}

fn call_node(call: &Call) -> Json {
    let function = call.function;
    // Prometheus' `Variadic`: 0 fixed, n optional trailing arguments, -1
    // any number of the last type.
    let variadic: i64 = if function.variadic {
        -1
    } else {
        function.optional_args as i64
    };
    let arg_types: Vec<&str> = function.arg_types.iter().map(|t| type_name(*t)).collect();
    json!({
        "type": "call",
        "func": {
            "name": function.name,
            "argTypes": arg_types,
            "variadic": variadic,
            "returnType": type_name(function.return_type),
        },
        "args": call.args.iter().map(of).collect::<Vec<_>>(),
    })
}

fn aggregate_node(aggregate: &AggregateExpr) -> Json {
    let (grouping, without) = match &aggregate.grouping {
        Grouping::By(labels) => (labels, false),
        Grouping::Without(labels) => (labels, true),
    };
    json!({
        "type": "aggregation",
        "op": aggregate.op.as_str(),
        "expr": of(&aggregate.expr),
        "param": aggregate.param.as_deref().map_or(Json::Null, of),
        "grouping": grouping,
        "without": without,
    })
}

fn binary_node(binary: &BinaryExpr) -> Json {
    // Matching exists between two vectors only, as Prometheus' parser
    // sets it: set operators are many-to-many, the rest one-to-one unless
    // grouped.
    let vectors = binary.lhs.value_type() != ValueType::Scalar
        && binary.rhs.value_type() != ValueType::Scalar;
    let matching = if vectors {
        let (labels, on) = match &binary.matching.labels {
            MatchingLabels::On(labels) => (labels.clone(), true),
            MatchingLabels::Ignoring(labels) => (labels.clone(), false),
        };
        let (card, include) = match &binary.matching.group {
            _ if binary.op.is_set_operator() => ("many-to-many", Vec::new()),
            None => ("one-to-one", Vec::new()),
            Some(GroupModifier::Left(extra)) => ("many-to-one", extra.clone()),
            Some(GroupModifier::Right(extra)) => ("one-to-many", extra.clone()),
        };
        json!({"card": card, "labels": labels, "on": on, "include": include})
    } else {
        Json::Null
    };
    json!({
        "type": "binaryExpr",
        "op": binary.op.as_str(),
        "lhs": of(&binary.lhs),
        "rhs": of(&binary.rhs),
        "matching": matching,
        "bool": binary.return_bool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(query: &str) -> Json {
        of(&promql::parse(query).expect("parses"))
    }

    #[test]
    fn selectors_carry_their_matchers_offsets_and_at() {
        let node = tree("rate(http_requests_total{job=~\"api\"}[5m] offset 1m @ end())");
        assert_eq!(node["type"], "call");
        assert_eq!(node["func"]["name"], "rate");
        assert_eq!(node["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(node["func"]["returnType"], "vector");
        let matrix = &node["args"][0];
        assert_eq!(matrix["type"], "matrixSelector");
        assert_eq!(matrix["range"], 300_000);
        assert_eq!(matrix["offset"], 60_000);
        assert_eq!(matrix["startOrEnd"], "end");
        assert_eq!(matrix["timestamp"], Json::Null);
        assert_eq!(
            matrix["matchers"],
            json!([
                {"type": "=", "name": "__name__", "value": "http_requests_total"},
                {"type": "=~", "name": "job", "value": "api"},
            ])
        );
    }

    #[test]
    fn operators_aggregations_and_literals() {
        let node = tree("sum without (cpu) (a) / on (host) group_left (dc) b > bool 1.5");
        assert_eq!(node["type"], "binaryExpr");
        assert_eq!(node["op"], ">");
        assert_eq!(node["bool"], true);
        assert_eq!(node["matching"], Json::Null, "vector against scalar");
        assert_eq!(node["rhs"], json!({"type": "numberLiteral", "val": "1.5"}));
        let division = &node["lhs"];
        assert_eq!(
            division["matching"],
            json!({"card": "many-to-one", "labels": ["host"], "on": true, "include": ["dc"]})
        );
        assert_eq!(division["lhs"]["type"], "aggregation");
        assert_eq!(division["lhs"]["without"], true);
        assert_eq!(division["lhs"]["grouping"], json!(["cpu"]));
        assert_eq!(division["lhs"]["param"], Json::Null);
        assert_eq!(tree("a or b")["matching"]["card"], "many-to-many");
        assert_eq!(tree("-a")["type"], "unaryExpr");
        assert_eq!(
            tree("label_join(a, \"d\", \",\", \"x\")")["func"]["variadic"],
            -1
        );
        assert_eq!(tree("round(a)")["func"]["variadic"], 1);
        assert_eq!(tree("NaN")["val"], "NaN");
        assert_eq!(tree("x[1h:5m]")["step"], 300_000);
        assert_eq!(tree("topk(3, a)")["param"]["val"], "3");
    }
}
