//! The expression tree a query parses into, the types its nodes evaluate
//! to, and the canonical printer (`Display`) that turns a tree back into
//! PromQL.
//!
//! What the tree leaves out on purpose: parentheses and unary plus. They
//! only steer parsing, so once the tree has its shape they are gone, and
//! the printer puts back exactly the parentheses the shape needs. That
//! makes the printed form *canonical*: `((a + b)) * c`, `(a+b)*c` and
//! `( a + b ) * c` all print `(a + b) * c`, so craft 4's result cache can
//! use it as a key, and `parse(print(e)) == e` holds for every tree the
//! parser can produce (a property test checks it on random trees).
//!
//! Durations are kept as signed milliseconds (`offset -5m` is valid), the
//! unit the store's `TimeRange` speaks, and printed by `duration.rs`.
//! Label matchers are `common::LabelMatcher`, regexes already compiled, so
//! an evaluator can hand a selector straight to `MetricStore::select`.
//! Docs: `docs/src/ch04-query.md`, "From text to tree, and back".

use std::fmt::{self, Display, Formatter, Write as _};

use common::{LabelMatcher, MatchOp};

use crate::duration::format_duration;
use crate::functions::Function;

/// What an expression evaluates to; the parser checks operands and
/// arguments against these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// One number, the same at every step (`1`, `time()`).
    Scalar,
    /// One sample per series per step (`cpu_usage`).
    InstantVector,
    /// A window of samples per series per step (`cpu_usage[5m]`).
    RangeVector,
    /// A string literal.
    String,
}

impl Display for ValueType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::InstantVector => "instant vector",
            ValueType::RangeVector => "range vector",
            ValueType::String => "string",
        })
    }
}

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A number literal; `-1` is folded into one literal, as Prometheus does.
    Number(f64),
    /// A string literal.
    String(String),
    /// `metric{label="value"} offset 5m`
    VectorSelector(VectorSelector),
    /// `metric{…}[5m] offset 1h`
    MatrixSelector(MatrixSelector),
    /// `expr[1h:5m] offset 1d`
    Subquery(SubqueryExpr),
    /// `rate(x[5m])`
    Call(Call),
    /// `sum by (job) (x)`
    Aggregate(AggregateExpr),
    /// Unary minus, `-x`.
    Negate(Box<Expr>),
    /// `a + on (job) b`
    Binary(BinaryExpr),
}

/// Two expressions are equal when they have the same shape and values.
/// Number literals compare by value except that every `NaN` equals every
/// other `NaN` and `-0` differs from `0`: equal means "prints the same".
impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Number(a), Expr::Number(b)) => {
                (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
            }
            (Expr::String(a), Expr::String(b)) => a == b,
            (Expr::VectorSelector(a), Expr::VectorSelector(b)) => a == b,
            (Expr::MatrixSelector(a), Expr::MatrixSelector(b)) => a == b,
            (Expr::Subquery(a), Expr::Subquery(b)) => a == b,
            (Expr::Call(a), Expr::Call(b)) => a == b,
            (Expr::Aggregate(a), Expr::Aggregate(b)) => a == b,
            (Expr::Negate(a), Expr::Negate(b)) => a == b,
            (Expr::Binary(a), Expr::Binary(b)) => a == b,
            _ => false,
        }
    }
}

impl Expr {
    /// True when a selector or subquery anywhere in the tree carries `@`:
    /// its answer at a step does not depend on the step alone, so a cache
    /// of per-step results must not hold it.
    pub fn uses_at(&self) -> bool {
        match self {
            Expr::Number(_) | Expr::String(_) => false,
            Expr::VectorSelector(selector) => selector.at.is_some(),
            Expr::MatrixSelector(matrix) => matrix.selector.at.is_some(),
            Expr::Subquery(subquery) => subquery.at.is_some() || subquery.expr.uses_at(),
            Expr::Call(call) => call.args.iter().any(Expr::uses_at),
            Expr::Aggregate(aggregate) => {
                aggregate.expr.uses_at() || aggregate.param.as_ref().is_some_and(|p| p.uses_at())
            }
            Expr::Negate(operand) => operand.uses_at(),
            Expr::Binary(binary) => binary.lhs.uses_at() || binary.rhs.uses_at(),
        }
    }

    /// The type the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::InstantVector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::RangeVector,
            Expr::Call(call) => call.function.return_type,
            Expr::Negate(operand) => operand.value_type(),
            Expr::Binary(binary) => binary.value_type(),
        }
    }
}

/// `@ t`, `@ start()`, `@ end()`: the time a selector or subquery is read
/// at, whatever the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtModifier {
    /// A fixed time, in ms since the epoch.
    Time(i64),
    /// The range query's start (an instant query's time).
    Start,
    /// The range query's end (an instant query's time).
    End,
}

impl AtModifier {
    /// The time in ms, given the query's start and end.
    pub fn resolve(self, start_ms: i64, end_ms: i64) -> i64 {
        match self {
            AtModifier::Time(ms) => ms,
            AtModifier::Start => start_ms,
            AtModifier::End => end_ms,
        }
    }
}

/// `name{matchers} @ t offset …`: the series to read at each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// The matchers written inside the braces, in order.
    pub matchers: Vec<LabelMatcher>,
    /// How far back in time to read, in ms; negative reads ahead; 0 = none.
    pub offset_ms: i64,
    /// `@`: read at this time at every step, if set.
    pub at: Option<AtModifier>,
}

impl VectorSelector {
    /// Every matcher the store must apply: the metric name (as
    /// `__name__="…"`) first, then the ones in braces.
    pub fn store_matchers(&self) -> Vec<LabelMatcher> {
        self.name
            .iter()
            .map(|name| LabelMatcher::metric_name(name))
            .chain(self.matchers.iter().cloned())
            .collect()
    }
}

/// `selector[range]`: a window of samples per series.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    /// The series and the offset.
    pub selector: VectorSelector,
    /// The window's length in ms, always > 0.
    pub range_ms: i64,
}

/// `expr[range:step] offset …`: an instant-vector expression evaluated at
/// each step inside a window, giving a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryExpr {
    /// The inner expression; an instant vector.
    pub expr: Box<Expr>,
    /// The window's length in ms, > 0.
    pub range_ms: i64,
    /// The inner step in ms (> 0); `None` uses the engine's default.
    pub step_ms: Option<i64>,
    /// As [`VectorSelector::offset_ms`].
    pub offset_ms: i64,
    /// As [`VectorSelector::at`].
    pub at: Option<AtModifier>,
}

/// `function(args…)`, checked against the function table.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The table entry: name, argument types, return type.
    pub function: &'static Function,
    /// The arguments, each of the type the table gives.
    pub args: Vec<Expr>,
}

/// The aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `stddev` (population standard deviation, as Prometheus)
    Stddev,
    /// `stdvar`: the population variance.
    Stdvar,
    /// `group`: 1 for every group with a value.
    Group,
    /// `topk(k, v)`
    Topk,
    /// `bottomk(k, v)`
    Bottomk,
    /// `quantile(φ, v)`
    Quantile,
    /// `count_values("label", v)`: how many series have each value, the
    /// value as a label.
    CountValues,
}

impl AggregateOp {
    /// Every operator, for tables and tests.
    pub const ALL: [AggregateOp; 12] = [
        AggregateOp::Sum,
        AggregateOp::Avg,
        AggregateOp::Min,
        AggregateOp::Max,
        AggregateOp::Count,
        AggregateOp::Stddev,
        AggregateOp::Stdvar,
        AggregateOp::Group,
        AggregateOp::Topk,
        AggregateOp::Bottomk,
        AggregateOp::Quantile,
        AggregateOp::CountValues,
    ];

    /// The operator spelled `word`, in any case (as Prometheus).
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Count => "count",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Group => "group",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
            AggregateOp::CountValues => "count_values",
        }
    }

    /// True for the operators that take a parameter first (`topk(5, x)`,
    /// `quantile(0.9, x)`, `count_values("v", x)`).
    pub fn has_parameter(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::Quantile
                | AggregateOp::CountValues
        )
    }

    /// The type of the parameter: a string for `count_values` (the label
    /// to write values into), a scalar for the others.
    pub fn parameter_type(self) -> ValueType {
        match self {
            AggregateOp::CountValues => ValueType::String,
            _ => ValueType::Scalar,
        }
    }
}

/// Which labels an aggregation keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// `by (labels)`: one group per value combination of these labels;
    /// `By(vec![])` — no clause — aggregates everything into one series.
    By(Vec<String>),
    /// `without (labels)`: one group per combination of all other labels.
    Without(Vec<String>),
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping::By(Vec::new())
    }
}

/// `op [by|without (…)] ([param,] expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExpr {
    /// Which aggregation.
    pub op: AggregateOp,
    /// The scalar parameter of `topk`, `bottomk`, `quantile`.
    pub param: Option<Box<Expr>>,
    /// The instant vector aggregated.
    pub expr: Box<Expr>,
    /// The grouping clause.
    pub grouping: Grouping,
}

/// The binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `atan2`: the angle of the point (rhs, lhs), Go's `math.Atan2`.
    Atan2,
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

/// The operand precedence of unary minus: it binds tighter than `*` but
/// looser than `^`, so `-2 ^ 2` is `-(2 ^ 2)`, as in Prometheus.
pub const UNARY_OPERAND_PRECEDENCE: u8 = 6;

impl BinaryOp {
    /// Every operator, for tables and tests.
    pub const ALL: [BinaryOp; 16] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Atan2,
        BinaryOp::Pow,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Gt,
        BinaryOp::Lt,
        BinaryOp::Ge,
        BinaryOp::Le,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Unless,
    ];

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Lt => "<",
            BinaryOp::Ge => ">=",
            BinaryOp::Le => "<=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// Prometheus' precedence, loosest first: `or` 1; `and`, `unless` 2;
    /// comparisons 3; `+ -` 4; `* / %` 5; `^` 6.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Gt
            | BinaryOp::Lt
            | BinaryOp::Ge
            | BinaryOp::Le => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Only `^` groups to the right: `2 ^ 3 ^ 2` is `2 ^ (3 ^ 2)`.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }

    /// `== != > < >= <=`: they filter, or return 0/1 with `bool`.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// `and or unless`: they work on series sets, between instant vectors.
    pub fn is_set_operator(self) -> bool {
        self.precedence() <= 2
    }
}

/// `on (…)` or `ignoring (…)`: which labels must agree for two series to
/// match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchingLabels {
    /// `on (labels)`: only these labels.
    On(Vec<String>),
    /// `ignoring (labels)`: all labels but these; `Ignoring(vec![])` is
    /// the default, all labels.
    Ignoring(Vec<String>),
}

/// `group_left (…)` / `group_right (…)`: which side may have many series
/// per match, and which labels to copy from the other ("one") side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupModifier {
    /// Many on the left, one on the right.
    Left(Vec<String>),
    /// One on the left, many on the right.
    Right(Vec<String>),
}

/// How the two sides of a binary operation between instant vectors pair
/// up. The default — ignoring no labels, one-to-one — is what a query
/// without modifiers means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` or `ignoring`.
    pub labels: MatchingLabels,
    /// Many-to-one or one-to-many; `None` is one-to-one.
    pub group: Option<GroupModifier>,
}

impl Default for VectorMatching {
    fn default() -> Self {
        VectorMatching {
            labels: MatchingLabels::Ignoring(Vec::new()),
            group: None,
        }
    }
}

impl VectorMatching {
    /// True for the default, which prints as nothing.
    pub fn is_default(&self) -> bool {
        *self == VectorMatching::default()
    }
}

/// `lhs op [bool] [on|ignoring (…)] [group_left|group_right (…)] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinaryOp,
    /// Left operand: a scalar or instant vector.
    pub lhs: Box<Expr>,
    /// Right operand: a scalar or instant vector.
    pub rhs: Box<Expr>,
    /// `bool`: a comparison returns 0/1 instead of filtering.
    pub return_bool: bool,
    /// Vector matching; the default unless both sides are instant vectors.
    pub matching: VectorMatching,
}

impl BinaryExpr {
    /// Scalar when both sides are scalars, otherwise instant vector.
    pub fn value_type(&self) -> ValueType {
        binary_result_type(self.lhs.value_type(), self.rhs.value_type())
    }
}

/// The type of `lhs op rhs` for operand types already checked to be
/// scalars or instant vectors.
pub fn binary_result_type(lhs: ValueType, rhs: ValueType) -> ValueType {
    if lhs == ValueType::Scalar && rhs == ValueType::Scalar {
        ValueType::Scalar
    } else {
        ValueType::InstantVector
    }
}

// ---------------------------------------------------------------------------
// The canonical printer.
// ---------------------------------------------------------------------------

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(value) => f.write_str(&format_number(*value)),
            Expr::String(text) => f.write_str(&quote_string(text)),
            Expr::VectorSelector(selector) => selector.fmt(f),
            Expr::MatrixSelector(matrix) => matrix.fmt(f),
            Expr::Subquery(subquery) => subquery.fmt(f),
            Expr::Call(call) => call.fmt(f),
            Expr::Aggregate(aggregate) => aggregate.fmt(f),
            Expr::Negate(operand) => {
                // Parenthesised unless the operand binds tighter than the
                // minus: a number would fold into a literal (`-(1)` is not
                // `-1`), a lower-precedence operation would lose its operand.
                // A double negation gets a space, not parentheses, so the
                // printed query nests no deeper than the tree does.
                match operand.as_ref() {
                    Expr::Negate(_) => write!(f, "- {operand}"),
                    Expr::Binary(binary) if binary.op != BinaryOp::Pow => write!(f, "-({operand})"),
                    Expr::Number(_) => write!(f, "-({operand})"),
                    _ => write!(f, "-{operand}"),
                }
            }
            Expr::Binary(binary) => binary.fmt(f),
        }
    }
}

impl Display for VectorSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            f.write_str(name)?;
        }
        if !self.matchers.is_empty() || self.name.is_none() {
            f.write_char('{')?;
            for (index, matcher) in self.matchers.iter().enumerate() {
                if index > 0 {
                    f.write_str(", ")?;
                }
                let op = match matcher.op {
                    MatchOp::Equal => "=",
                    MatchOp::NotEqual => "!=",
                    MatchOp::Regex => "=~",
                    MatchOp::NotRegex => "!~",
                };
                write!(f, "{}{op}{}", matcher.name, quote_string(&matcher.value))?;
            }
            f.write_char('}')?;
        }
        write_at_offset(f, self.at, self.offset_ms)
    }
}

impl Display for MatrixSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let selector = VectorSelector {
            offset_ms: 0,
            at: None,
            ..self.selector.clone()
        };
        write!(f, "{selector}[{}]", format_duration(self.range_ms))?;
        write_at_offset(f, self.selector.at, self.selector.offset_ms)
    }
}

impl Display for SubqueryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // `[…]` binds to the nearest operand, so anything built from an
        // operator needs parentheses to be the subject of the subquery.
        let needs_parens = matches!(*self.expr, Expr::Binary(_) | Expr::Negate(_))
            || is_negative_number(&self.expr);
        if needs_parens {
            write!(f, "({})", self.expr)?;
        } else {
            write!(f, "{}", self.expr)?;
        }
        write!(f, "[{}:", format_duration(self.range_ms))?;
        if let Some(step) = self.step_ms {
            f.write_str(&format_duration(step))?;
        }
        f.write_char(']')?;
        write_at_offset(f, self.at, self.offset_ms)
    }
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name)?;
        write_list(f, &self.args)?;
        f.write_char(')')
    }
}

impl Display for AggregateExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        match &self.grouping {
            Grouping::By(labels) if labels.is_empty() => {}
            Grouping::By(labels) => write!(f, " by ({}) ", labels.join(", "))?,
            Grouping::Without(labels) => write!(f, " without ({}) ", labels.join(", "))?,
        }
        f.write_char('(')?;
        if let Some(param) = &self.param {
            write!(f, "{param}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let op = self.op;
        let lhs_needs_parens = match self.lhs.as_ref() {
            Expr::Binary(inner) => {
                inner.op.precedence() < op.precedence()
                    || (inner.op.precedence() == op.precedence() && op.is_right_associative())
            }
            // `-a ^ b` is `-(a ^ b)`: a negated left operand of `^` must
            // keep its own parentheses.
            Expr::Negate(_) => op == BinaryOp::Pow,
            other => op == BinaryOp::Pow && is_negative_number(other),
        };
        let rhs_needs_parens = match self.rhs.as_ref() {
            Expr::Binary(inner) => {
                inner.op.precedence() < op.precedence()
                    || (inner.op.precedence() == op.precedence() && !op.is_right_associative())
            }
            _ => false,
        };
        if lhs_needs_parens {
            write!(f, "({}) ", self.lhs)?;
        } else {
            write!(f, "{} ", self.lhs)?;
        }
        f.write_str(op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        let rhs = if rhs_needs_parens {
            format!("({})", self.rhs)
        } else {
            self.rhs.to_string()
        };
        let matching = &self.matching;
        if !matching.is_default() {
            match &matching.labels {
                MatchingLabels::On(labels) => write!(f, " on ({})", labels.join(", "))?,
                MatchingLabels::Ignoring(labels) => {
                    write!(f, " ignoring ({})", labels.join(", "))?;
                }
            }
            if let Some(group) = &matching.group {
                let (keyword, labels) = match group {
                    GroupModifier::Left(labels) => ("group_left", labels),
                    GroupModifier::Right(labels) => ("group_right", labels),
                };
                f.write_char(' ')?;
                f.write_str(keyword)?;
                // `group_left (x)` would read `(x)` as the label list, so
                // an empty list is spelled out before a parenthesis.
                if !labels.is_empty() || rhs.starts_with('(') {
                    write!(f, " ({})", labels.join(", "))?;
                }
            }
        }
        write!(f, " {rhs}")
    }
}

fn write_list(f: &mut Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// ` @ 1700000000.000 offset 5m`, as Prometheus prints them: `@` first,
/// its time in seconds with three decimals.
fn write_at_offset(f: &mut Formatter<'_>, at: Option<AtModifier>, offset_ms: i64) -> fmt::Result {
    match at {
        None => {}
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        Some(AtModifier::Time(ms)) => {
            let sign = if ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            write!(f, " @ {sign}{}.{:03}", abs / 1000, abs % 1000)?;
        }
    }
    if offset_ms != 0 {
        write!(f, " offset {}", format_duration(offset_ms))?;
    }
    Ok(())
}

fn is_negative_number(expr: &Expr) -> bool {
    matches!(expr, Expr::Number(value) if !value.is_nan() && value.is_sign_negative())
}

/// A number as PromQL that reads back to the same `f64`: `Inf`, `NaN`,
/// plain decimals for ordinary magnitudes, exponent form (`1e21`,
/// `5e-324`) for the rest. Rust prints the shortest digits that round-trip.
pub fn format_number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_sign_negative() {
        return format!("-{}", format_number(-value));
    }
    if value.is_infinite() {
        "Inf".to_string()
    } else if value == 0.0 || (1e-4..1e15).contains(&value) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// A string as a double-quoted PromQL literal: `"` and `\` escaped, control
/// characters as Go escapes, everything else as itself.
pub fn quote_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{07}' => quoted.push_str("\\a"),
            '\u{08}' => quoted.push_str("\\b"),
            '\u{0C}' => quoted.push_str("\\f"),
            '\u{0B}' => quoted.push_str("\\v"),
            c if c.is_ascii_control() => {
                let _ = write!(quoted, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_shortest_and_read_back() {
        for (value, text) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (-2.5, "-2.5"),
            (1e21, "1e21"),
            (1.5e-7, "1.5e-7"),
            (123_456_789.0, "123456789"),
            (f64::INFINITY, "Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
            (0.0, "0"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(format_number(value), text);
        }
    }

    #[test]
    fn strings_are_quoted_with_go_escapes() {
        assert_eq!(quote_string("plain"), r#""plain""#);
        assert_eq!(quote_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote_string("\n\t\u{1}\u{7f}"), r#""\n\t\x01\x7f""#);
        assert_eq!(quote_string("\u{85}é"), "\"\\u0085é\"");
    }

    #[test]
    fn operator_tables_agree() {
        assert!(BinaryOp::ALL.iter().filter(|op| op.is_comparison()).count() == 6);
        assert!(
            BinaryOp::ALL
                .iter()
                .filter(|op| op.is_set_operator())
                .count()
                == 3
        );
        assert_eq!(AggregateOp::from_word("TOPK"), Some(AggregateOp::Topk));
        assert_eq!(AggregateOp::from_word("summary"), None);
    }
}
