//! The parser: a hand-written precedence-climbing (Pratt) parser from
//! tokens to [`Expr`], type-checking every node as it builds it.
//!
//! Why by hand: Prometheus generates its parser with goyacc; a grammar file
//! hides the one idea worth learning here — *precedence climbing*. Each
//! binary operator has a precedence (`or` 1 … `^` 6); `Parser::parse_expr`
//! parses an operand, then keeps absorbing operators at least as tight as
//! the level it was called with, parsing each right operand one level
//! tighter (left-associative) or at the same level (`^`,
//! right-associative). Unary minus parses its operand at `^`'s level, so
//! `-2 ^ 2` is `-(2 ^ 2)` = -4, as in Prometheus. Postfix forms —
//! `[5m]`, `[1h:1m]`, `offset 5m` — bind tightest of all, to the operand.
//!
//! Type checking happens as nodes are built, because the parser knows
//! where each operand started: `rate(cpu)` fails at `cpu` with "expected
//! range vector argument", not later in an evaluator that no longer knows
//! positions. The rules are Prometheus': binary operands are scalars or
//! instant vectors; comparisons between two scalars need `bool`; `bool`
//! only follows comparisons; vector matching only between two instant
//! vectors; set operators (`and`, `or`, `unless`) only between instant
//! vectors and never with `group_left`/`group_right`.
//!
//! What it guards against: arbitrary input never panics, and nesting is
//! capped at [`MAX_DEPTH`] so neither this recursive parser nor the
//! recursive printer and evaluator can overflow the stack on a hostile
//! query like ten thousand `(`. Docs: `docs/src/ch04-query.md`,
//! "Precedence climbing".

use common::{LabelMatcher, MatchOp, StorageError};

use crate::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Expr, GroupModifier,
    Grouping, MatchingLabels, MatrixSelector, SubqueryExpr, UNARY_OPERAND_PRECEDENCE, ValueType,
    VectorMatching, VectorSelector, binary_result_type,
};
use crate::error::ParseError;
use crate::functions::lookup_function;
use crate::lexer::{Keyword, Token, TokenKind, tokenize};

/// The deepest a query may nest. It bounds both the parser's recursion
/// (each parenthesis, argument list and right operand is a level) and the
/// height of the tree, so a long `a + a + …` chain is capped too. Real
/// queries stay under 20.
pub const MAX_DEPTH: usize = 128;

/// Parses and type-checks one query.
///
/// # Errors
/// A [`ParseError`] with the byte position of the first problem and what
/// was expected there.
pub fn parse_expression(input: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        input,
        tokens,
        index: 0,
        nesting: 0,
    };
    if parser.peek().kind == TokenKind::Eof {
        return Err(parser.error_here("an expression"));
    }
    let node = parser.parse_expr(0)?;
    if parser.peek().kind != TokenKind::Eof {
        return Err(parser.error_here("an operator or the end of the query"));
    }
    Ok(node.expr)
}

/// An expression under construction, with what the checks need to know
/// about it.
struct Node {
    expr: Expr,
    /// Byte offset where it starts, for errors about it as a whole.
    start: usize,
    /// Its type, computed once as the node is built.
    value_type: ValueType,
    /// Height of the tree, checked against [`MAX_DEPTH`].
    depth: usize,
    /// Written inside parentheses: `(x)[5m]` and `(x) offset 5m` are
    /// errors in Prometheus, though the tree no longer shows the
    /// parentheses.
    parenthesized: bool,
}

impl Node {
    fn leaf(expr: Expr, start: usize, value_type: ValueType) -> Self {
        Node {
            expr,
            start,
            value_type,
            depth: 1,
            parenthesized: false,
        }
    }

    /// How an error names this expression: `a call to rate()`.
    fn describe(&self) -> String {
        if self.parenthesized {
            return "a parenthesised expression".to_string();
        }
        match &self.expr {
            Expr::Number(_) => "a number".to_string(),
            Expr::String(_) => "a string".to_string(),
            Expr::VectorSelector(_) => "a vector selector".to_string(),
            Expr::MatrixSelector(_) => "a range vector selector".to_string(),
            Expr::Subquery(_) => "a subquery".to_string(),
            Expr::Call(call) => format!("a call to {}()", call.function.name),
            Expr::Aggregate(aggregate) => format!("a {} aggregation", aggregate.op.as_str()),
            Expr::Negate(_) => "a negation".to_string(),
            Expr::Binary(binary) => format!("a {:?} operation", binary.op.as_str()),
        }
    }
}

/// What came between a binary operator and its right operand.
#[derive(Default)]
struct Modifiers {
    return_bool: bool,
    matching: VectorMatching,
    /// Where `on`/`ignoring` was written, if it was: `ignoring ()` is the
    /// default matching but still only allowed between vectors.
    matching_position: Option<usize>,
}

struct Parser<'a> {
    input: &'a str,
    /// Never empty: the lexer always ends with `Eof`.
    tokens: Vec<Token>,
    index: usize,
    /// Current recursion depth of `parse_expr`.
    nesting: usize,
}

impl Parser<'_> {
    // --- token plumbing ----------------------------------------------------

    fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    fn peek_nth(&self, ahead: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.index + ahead).min(last)]
    }

    fn peek_keyword(&self) -> Option<Keyword> {
        match self.peek().kind {
            TokenKind::Keyword(keyword) => Some(keyword),
            _ => None,
        }
    }

    fn is_next(&self, kind: &TokenKind) -> bool {
        self.peek().kind == *kind
    }

    /// Moves past the current token (never past `Eof`) and returns it.
    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.index += 1;
        }
        token
    }

    fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<Token, ParseError> {
        if self.is_next(kind) {
            Ok(self.advance())
        } else {
            Err(self.error_here(expected))
        }
    }

    fn error_at(&self, position: usize, expected: &str, found: impl Into<String>) -> ParseError {
        ParseError::new(self.input, position, expected, found)
    }

    /// "Expected …, found <the current token>".
    fn error_here(&self, expected: &str) -> ParseError {
        let token = self.peek();
        self.error_at(token.start, expected, token.describe(self.input))
    }

    fn check_depth(&self, depth: usize, position: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            Err(self.error_at(
                position,
                &format!("an expression nested at most {MAX_DEPTH} levels deep"),
                "deeper nesting",
            ))
        } else {
            Ok(())
        }
    }

    // --- expressions -------------------------------------------------------

    /// Precedence climbing: an operand, then every binary operator binding
    /// at least as tightly as `min_precedence`, each with its right operand.
    fn parse_expr(&mut self, min_precedence: u8) -> Result<Node, ParseError> {
        self.nesting += 1;
        self.check_depth(self.nesting, self.peek().start)?;
        let mut lhs = self.parse_unary()?;
        while let Some(op) = binary_operator(&self.peek().kind) {
            if op.precedence() < min_precedence {
                break;
            }
            let operator = self.advance();
            let modifiers = self.parse_binary_modifiers(op)?;
            let next_precedence = if op.is_right_associative() {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let rhs = self.parse_expr(next_precedence)?;
            lhs = self.build_binary(op, &operator, modifiers, lhs, rhs)?;
        }
        self.nesting -= 1;
        Ok(lhs)
    }

    /// `-x`, `+x` or a postfix expression. The operand is parsed at `^`'s
    /// level, so `-a ^ b` negates `a ^ b` while `-a * b` multiplies `-a`.
    fn parse_unary(&mut self) -> Result<Node, ParseError> {
        let negate = match self.peek().kind {
            TokenKind::Minus => true,
            TokenKind::Plus => false,
            _ => return self.parse_postfix(),
        };
        let sign = self.advance();
        // Only a literal written right after the sign folds: `-1` is the
        // number -1, `-(1)` stays a negation, as in Prometheus.
        let operand_is_literal = matches!(self.peek().kind, TokenKind::Number(_));
        let operand = self.parse_expr(UNARY_OPERAND_PRECEDENCE)?;
        if !matches!(
            operand.value_type,
            ValueType::Scalar | ValueType::InstantVector
        ) {
            return Err(self.error_at(
                operand.start,
                &format!(
                    "a scalar or instant vector after unary {:?}",
                    sign.text(self.input)
                ),
                operand.value_type.to_string(),
            ));
        }
        if !negate {
            return Ok(Node {
                start: sign.start,
                parenthesized: false,
                ..operand
            });
        }
        let (expr, depth) = match operand.expr {
            Expr::Number(value) if operand_is_literal => (Expr::Number(-value), operand.depth),
            other => (Expr::Negate(Box::new(other)), operand.depth + 1),
        };
        self.check_depth(depth, sign.start)?;
        Ok(Node {
            expr,
            start: sign.start,
            value_type: operand.value_type,
            depth,
            parenthesized: false,
        })
    }

    /// An operand followed by any number of `[range]`, `[range:step]`,
    /// `offset d` and `@ t`.
    fn parse_postfix(&mut self) -> Result<Node, ParseError> {
        let mut node = self.parse_primary()?;
        loop {
            node = match self.peek().kind {
                TokenKind::LeftBracket => self.parse_range(node)?,
                TokenKind::Keyword(Keyword::Offset) => self.parse_offset(node)?,
                TokenKind::At => self.parse_at(node)?,
                _ => return Ok(node),
            };
        }
    }

    fn parse_primary(&mut self) -> Result<Node, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Number(value) => {
                self.advance();
                Ok(Node::leaf(
                    Expr::Number(value),
                    token.start,
                    ValueType::Scalar,
                ))
            }
            // Prometheus 3: a duration where a number goes is its seconds
            // (`cert_expiry - time() < 15d`).
            TokenKind::Duration(milliseconds) => {
                self.advance();
                Ok(Node::leaf(
                    Expr::Number(milliseconds as f64 / 1000.0),
                    token.start,
                    ValueType::Scalar,
                ))
            }
            TokenKind::String(text) => {
                self.advance();
                Ok(Node::leaf(
                    Expr::String(text),
                    token.start,
                    ValueType::String,
                ))
            }
            TokenKind::LeftParen => {
                self.advance();
                let inner = self.parse_expr(0)?;
                self.expect(&TokenKind::RightParen, "an operator or \")\"")?;
                Ok(Node {
                    start: token.start,
                    parenthesized: true,
                    ..inner
                })
            }
            TokenKind::LeftBrace => self.parse_selector(None, token.start),
            TokenKind::Identifier => {
                let word = token.text(self.input);
                if let Some(op) = AggregateOp::from_word(word) {
                    self.parse_aggregation(op, token.start)
                } else if self.peek_nth(1).kind == TokenKind::LeftParen {
                    self.parse_call(word, token.start)
                } else {
                    self.advance();
                    self.parse_selector(Some(word.to_string()), token.start)
                }
            }
            _ => Err(self.error_here("an expression")),
        }
    }

    // --- selectors ---------------------------------------------------------

    /// `name`, `name{…}` or `{…}`; the name (if any) is already consumed.
    fn parse_selector(&mut self, name: Option<String>, start: usize) -> Result<Node, ParseError> {
        let mut matchers = Vec::new();
        let mut label_positions = Vec::new();
        if self.is_next(&TokenKind::LeftBrace) {
            self.advance();
            while !self.is_next(&TokenKind::RightBrace) {
                label_positions.push(self.peek().start);
                matchers.push(self.parse_matcher()?);
                match self.peek().kind {
                    TokenKind::Comma => {
                        self.advance();
                    }
                    TokenKind::RightBrace => {}
                    _ => return Err(self.error_here("\",\" or \"}\" after a label matcher")),
                }
            }
            self.advance();
        }
        if let Some(name) = &name {
            let named_twice = matchers
                .iter()
                .zip(&label_positions)
                .find(|(matcher, _)| matcher.name == LabelMatcher::METRIC_NAME);
            if let Some((matcher, &position)) = named_twice {
                return Err(self.error_at(
                    position,
                    &format!("no __name__ matcher after the metric name {name:?}"),
                    format!("the name set twice, {name:?} and {:?}", matcher.value),
                ));
            }
        } else if matchers.iter().all(|matcher| matcher.matches_value("")) {
            // `{}` or `{job=~".*"}` would select every series there is.
            let end = self.tokens[self.index.saturating_sub(1)].end;
            let text = self.input.get(start..end).unwrap_or("{}");
            return Err(self.error_at(
                start,
                "a selector with a metric name or a matcher that does not match the empty string",
                format!("{text:?}"),
            ));
        }
        let selector = VectorSelector {
            name,
            matchers,
            offset_ms: 0,
            at: None,
        };
        Ok(Node::leaf(
            Expr::VectorSelector(selector),
            start,
            ValueType::InstantVector,
        ))
    }

    /// `label op "value"`, the regex compiled by `LabelMatcher::new`.
    fn parse_matcher(&mut self) -> Result<LabelMatcher, ParseError> {
        let label = self.parse_label_name("a label name or \"}\"")?;
        let op = match self.peek().kind {
            TokenKind::Assign => MatchOp::Equal,
            TokenKind::NotEqual => MatchOp::NotEqual,
            TokenKind::RegexMatch => MatchOp::Regex,
            TokenKind::RegexNotMatch => MatchOp::NotRegex,
            _ => {
                return Err(
                    self.error_here("a matcher operator (=, !=, =~ or !~) after the label name")
                );
            }
        };
        self.advance();
        let value_token = self.peek().clone();
        let TokenKind::String(value) = value_token.kind else {
            return Err(self.error_here("a quoted label value (like \"api\")"));
        };
        self.advance();
        LabelMatcher::new(label, op, value).map_err(|error| {
            let message = match error {
                StorageError::InvalidSelector(message) => message,
                other => other.to_string(),
            };
            // The regex crate's message spans lines; an API error is one.
            let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
            self.error_at(value_token.start, "a valid regular expression", message)
        })
    }

    /// Any word — identifier, keyword, even `inf` — without `:` is a label
    /// name: `sum by (on) (x)` and `{bool="1"}` are valid PromQL.
    fn parse_label_name(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek().word(self.input) {
            Some(word) if !word.contains(':') => {
                let word = word.to_string();
                self.advance();
                Ok(word)
            }
            _ => Err(self.error_here(expected)),
        }
    }

    /// `( label, label, … )`, possibly empty, trailing comma allowed.
    fn parse_label_list(&mut self, after: &str) -> Result<Vec<String>, ParseError> {
        self.expect(
            &TokenKind::LeftParen,
            &format!("\"(\" to start the label list after {after}"),
        )?;
        let mut labels = Vec::new();
        while !self.is_next(&TokenKind::RightParen) {
            labels.push(self.parse_label_name("a label name or \")\"")?);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RightParen => {}
                _ => return Err(self.error_here("\",\" or \")\" in the label list")),
            }
        }
        self.advance();
        Ok(labels)
    }

    /// `[range]` on a vector selector, or `[range:step]` / `[range:]` on
    /// any instant-vector expression.
    fn parse_range(&mut self, node: Node) -> Result<Node, ParseError> {
        let bracket = self.advance();
        let range_ms = self.parse_positive_duration("a range duration (like 5m)", "range")?;
        if self.is_next(&TokenKind::Colon) {
            self.advance();
            let step_ms = if matches!(
                self.peek().kind,
                TokenKind::Duration(_) | TokenKind::Number(_)
            ) {
                Some(self.parse_positive_duration("a subquery step", "step")?)
            } else {
                None
            };
            self.expect(
                &TokenKind::RightBracket,
                "a step duration or \"]\" after the subquery range",
            )?;
            if node.value_type != ValueType::InstantVector {
                return Err(self.error_at(
                    node.start,
                    "an instant vector before a subquery [range:step]",
                    node.value_type.to_string(),
                ));
            }
            let depth = node.depth + 1;
            self.check_depth(depth, node.start)?;
            let subquery = SubqueryExpr {
                expr: Box::new(node.expr),
                range_ms,
                step_ms,
                offset_ms: 0,
                at: None,
            };
            return Ok(Node {
                expr: Expr::Subquery(subquery),
                start: node.start,
                value_type: ValueType::RangeVector,
                depth,
                parenthesized: false,
            });
        }
        self.expect(&TokenKind::RightBracket, "\"]\" after the range duration")?;
        match node.expr {
            Expr::VectorSelector(selector) if !node.parenthesized => {
                if selector.offset_ms != 0 {
                    return Err(self.error_at(
                        bracket.start,
                        "the range before the offset (like x[5m] offset 1h)",
                        "a range after offset",
                    ));
                }
                if selector.at.is_some() {
                    return Err(self.error_at(
                        bracket.start,
                        "the range before @ (like x[5m] @ 1700000000)",
                        "a range after @",
                    ));
                }
                let matrix = MatrixSelector { selector, range_ms };
                Ok(Node::leaf(
                    Expr::MatrixSelector(matrix),
                    node.start,
                    ValueType::RangeVector,
                ))
            }
            _ => Err(self.error_at(
                bracket.start,
                "a vector selector before a range (or a subquery, like [5m:1m])",
                format!("a range after {}", node.describe()),
            )),
        }
    }

    fn parse_positive_duration(&mut self, expected: &str, what: &str) -> Result<i64, ParseError> {
        let token = self.peek().clone();
        let milliseconds = match token.kind {
            TokenKind::Duration(milliseconds) => milliseconds,
            TokenKind::Number(seconds) => self.seconds_as_duration(&token, seconds)?,
            _ => return Err(self.error_here(expected)),
        };
        if milliseconds <= 0 {
            return Err(self.error_at(
                token.start,
                &format!("a {what} greater than 0"),
                token.describe(self.input),
            ));
        }
        self.advance();
        Ok(milliseconds)
    }

    /// Prometheus 3: a number where a duration goes is seconds (`x[300]`,
    /// `offset 60`), to the millisecond.
    fn seconds_as_duration(&self, token: &Token, seconds: f64) -> Result<i64, ParseError> {
        let milliseconds = (seconds * 1000.0).round();
        if !milliseconds.is_finite() || milliseconds.abs() > i64::MAX as f64 / 2.0 {
            return Err(self.error_at(
                token.start,
                "a duration in seconds within the range of time",
                token.describe(self.input),
            ));
        }
        Ok(milliseconds as i64)
    }

    /// `@ 1700000000`, `@ start()`, `@ end()` after a selector or subquery.
    fn parse_at(&mut self, mut node: Node) -> Result<Node, ParseError> {
        let at_token = self.advance();
        let negative = self.is_next(&TokenKind::Minus);
        if negative {
            self.advance();
        }
        let token = self.peek().clone();
        let at = match token.kind {
            TokenKind::Number(seconds) if seconds.is_finite() => {
                self.advance();
                let ms = (seconds * 1000.0).round();
                if ms.abs() > i64::MAX as f64 / 2.0 {
                    return Err(self.error_at(
                        token.start,
                        "a timestamp in seconds within the range of time",
                        token.describe(self.input),
                    ));
                }
                let ms = ms as i64;
                AtModifier::Time(if negative { -ms } else { ms })
            }
            TokenKind::Identifier if !negative => {
                let word = token.text(self.input);
                let which = match word {
                    "start" => AtModifier::Start,
                    "end" => AtModifier::End,
                    _ => {
                        return Err(self.error_here("a timestamp, start() or end() after @"));
                    }
                };
                self.advance();
                self.expect(&TokenKind::LeftParen, "\"(\" after start or end")?;
                self.expect(&TokenKind::RightParen, "\")\" after start( or end(")?;
                which
            }
            _ => return Err(self.error_here("a timestamp, start() or end() after @")),
        };
        let slot = match &mut node.expr {
            _ if node.parenthesized => None,
            Expr::VectorSelector(selector) => Some(&mut selector.at),
            Expr::MatrixSelector(matrix) => Some(&mut matrix.selector.at),
            Expr::Subquery(subquery) => Some(&mut subquery.at),
            _ => None,
        };
        match slot {
            Some(slot) if slot.is_none() => {
                *slot = Some(at);
                Ok(node)
            }
            Some(_) => {
                Err(self.error_at(at_token.start, "at most one @ per selector", "a second @"))
            }
            None => Err(self.error_at(
                at_token.start,
                "a vector selector, range vector selector or subquery before @",
                format!("@ after {}", node.describe()),
            )),
        }
    }

    /// `offset 5m` / `offset -5m` after a selector or subquery.
    fn parse_offset(&mut self, mut node: Node) -> Result<Node, ParseError> {
        let keyword = self.advance();
        let negative = self.is_next(&TokenKind::Minus);
        if negative {
            self.advance();
        }
        let token = self.peek().clone();
        let milliseconds = match token.kind {
            TokenKind::Duration(milliseconds) => milliseconds,
            TokenKind::Number(seconds) => self.seconds_as_duration(&token, seconds)?,
            _ => return Err(self.error_here("a duration after offset (like 5m or -5m)")),
        };
        self.advance();
        let offset = if negative {
            -milliseconds
        } else {
            milliseconds
        };
        let slot = match &mut node.expr {
            _ if node.parenthesized => None,
            Expr::VectorSelector(selector) => Some(&mut selector.offset_ms),
            Expr::MatrixSelector(matrix) => Some(&mut matrix.selector.offset_ms),
            Expr::Subquery(subquery) => Some(&mut subquery.offset_ms),
            _ => None,
        };
        match slot {
            Some(slot) if *slot == 0 => {
                *slot = offset;
                Ok(node)
            }
            Some(_) => Err(self.error_at(
                keyword.start,
                "at most one offset per selector",
                "a second offset",
            )),
            None => Err(self.error_at(
                keyword.start,
                "a vector selector, range vector selector or subquery before offset",
                format!("offset after {}", node.describe()),
            )),
        }
    }

    // --- calls and aggregations -------------------------------------------

    /// `name(args…)` checked against the function table.
    fn parse_call(&mut self, name: &str, start: usize) -> Result<Node, ParseError> {
        let Some(function) = lookup_function(name) else {
            return Err(self.error_at(
                start,
                "a known function (rate, increase, avg_over_time, abs, …)",
                format!("unknown function {name:?}"),
            ));
        };
        self.advance();
        self.advance();
        let args = self.parse_arguments()?;
        if !(function.min_args()..=function.max_args()).contains(&args.len()) {
            let wanted = if function.min_args() == function.max_args() {
                plural(function.max_args(), "argument")
            } else if function.variadic {
                format!("at least {}", plural(function.min_args(), "argument"))
            } else {
                format!(
                    "{} to {} arguments",
                    function.min_args(),
                    function.max_args()
                )
            };
            return Err(self.error_at(
                start,
                &format!("{wanted} in call to {name}()"),
                plural(args.len(), "argument"),
            ));
        }
        for (index, arg) in args.iter().enumerate() {
            let Some(wanted) = function.arg_type(index) else {
                break;
            };
            if arg.value_type != wanted {
                return Err(self.error_at(
                    arg.start,
                    &format!("{wanted} argument in call to {name}()"),
                    arg.value_type.to_string(),
                ));
            }
        }
        let depth = 1 + args.iter().map(|arg| arg.depth).max().unwrap_or(0);
        self.check_depth(depth, start)?;
        let call = Call {
            function,
            args: args.into_iter().map(|arg| arg.expr).collect(),
        };
        Ok(Node {
            expr: Expr::Call(call),
            start,
            value_type: function.return_type,
            depth,
            parenthesized: false,
        })
    }

    /// The arguments after `(` up to and including `)`, trailing comma
    /// allowed as in Prometheus.
    fn parse_arguments(&mut self) -> Result<Vec<Node>, ParseError> {
        let mut args = Vec::new();
        while !self.is_next(&TokenKind::RightParen) {
            args.push(self.parse_expr(0)?);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RightParen => {}
                _ => return Err(self.error_here("an operator, \",\" or \")\" after an argument")),
            }
        }
        self.advance();
        Ok(args)
    }

    /// `op [by|without (…)] ([param,] expr) [by|without (…)]`.
    fn parse_aggregation(&mut self, op: AggregateOp, start: usize) -> Result<Node, ParseError> {
        let name = op.as_str();
        self.advance();
        let mut grouping = self.parse_grouping()?;
        self.expect(
            &TokenKind::LeftParen,
            &format!("\"(\" to start the arguments of {name}"),
        )?;
        let mut args = self.parse_arguments()?;
        if grouping.is_none() {
            grouping = self.parse_grouping()?;
        }
        let wanted = if op.has_parameter() { 2 } else { 1 };
        if args.len() != wanted {
            let shape = if op.has_parameter() {
                format!("2 arguments in {name}(parameter, vector)")
            } else {
                format!("1 argument in {name}(vector)")
            };
            return Err(self.error_at(start, &shape, plural(args.len(), "argument")));
        }
        let body = args.pop().ok_or_else(|| self.error_here("an argument"))?;
        let param = args.pop();
        if let Some(param) = &param
            && param.value_type != op.parameter_type()
        {
            return Err(self.error_at(
                param.start,
                &format!("{} parameter to {name}", op.parameter_type()),
                param.value_type.to_string(),
            ));
        }
        if body.value_type != ValueType::InstantVector {
            return Err(self.error_at(
                body.start,
                &format!("instant vector argument to aggregate with {name}"),
                body.value_type.to_string(),
            ));
        }
        let depth = 1 + body
            .depth
            .max(param.as_ref().map_or(0, |param| param.depth));
        self.check_depth(depth, start)?;
        let aggregate = AggregateExpr {
            op,
            param: param.map(|param| Box::new(param.expr)),
            expr: Box::new(body.expr),
            grouping: grouping.unwrap_or_default(),
        };
        Ok(Node {
            expr: Expr::Aggregate(aggregate),
            start,
            value_type: ValueType::InstantVector,
            depth,
            parenthesized: false,
        })
    }

    /// `by (…)` or `without (…)` if one comes next.
    fn parse_grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let keyword = match self.peek_keyword() {
            Some(keyword @ (Keyword::By | Keyword::Without)) => keyword,
            _ => return Ok(None),
        };
        self.advance();
        let labels = self.parse_label_list(keyword.as_str())?;
        Ok(Some(if keyword == Keyword::By {
            Grouping::By(labels)
        } else {
            Grouping::Without(labels)
        }))
    }

    // --- binary operations -------------------------------------------------

    /// `[bool] [on|ignoring (…)] [group_left|group_right [(…)]]`, in that
    /// order, as Prometheus' grammar has them.
    fn parse_binary_modifiers(&mut self, op: BinaryOp) -> Result<Modifiers, ParseError> {
        let mut modifiers = Modifiers::default();
        if self.peek_keyword() == Some(Keyword::Bool) {
            if !op.is_comparison() {
                return Err(self.error_here(&format!(
                    "an expression after {:?} (bool only follows a comparison operator)",
                    op.as_str()
                )));
            }
            self.advance();
            modifiers.return_bool = true;
        }
        if let Some(keyword @ (Keyword::On | Keyword::Ignoring)) = self.peek_keyword() {
            let position = self.advance().start;
            let labels = self.parse_label_list(keyword.as_str())?;
            modifiers.matching.labels = if keyword == Keyword::On {
                MatchingLabels::On(labels)
            } else {
                MatchingLabels::Ignoring(labels)
            };
            modifiers.matching_position = Some(position);
        }
        if let Some(keyword @ (Keyword::GroupLeft | Keyword::GroupRight)) = self.peek_keyword() {
            let name = keyword.as_str();
            if modifiers.matching_position.is_none() {
                return Err(self.error_here(&format!("on (…) or ignoring (…) before {name}")));
            }
            if op.is_set_operator() {
                return Err(self.error_here(&format!(
                    "the right operand of {:?} (set operators are many-to-many: no {name})",
                    op.as_str()
                )));
            }
            let position = self.advance().start;
            // As in Prometheus, a `(` right after group_left is its label
            // list, never the right operand.
            let labels = if self.is_next(&TokenKind::LeftParen) {
                self.parse_label_list(name)?
            } else {
                Vec::new()
            };
            if let MatchingLabels::On(on_labels) = &modifiers.matching.labels
                && let Some(label) = labels.iter().find(|label| on_labels.contains(label))
            {
                return Err(self.error_at(
                    position,
                    &format!("label {label:?} in on (…) or in {name} (…), not both"),
                    format!("{label:?} in both"),
                ));
            }
            modifiers.matching.group = Some(if keyword == Keyword::GroupLeft {
                GroupModifier::Left(labels)
            } else {
                GroupModifier::Right(labels)
            });
        }
        Ok(modifiers)
    }

    /// Type-checks `lhs op rhs` and builds the node.
    fn build_binary(
        &self,
        op: BinaryOp,
        operator: &Token,
        modifiers: Modifiers,
        lhs: Node,
        rhs: Node,
    ) -> Result<Node, ParseError> {
        let name = op.as_str();
        for side in [&lhs, &rhs] {
            if !matches!(
                side.value_type,
                ValueType::Scalar | ValueType::InstantVector
            ) {
                return Err(self.error_at(
                    side.start,
                    &format!("a scalar or instant vector operand for {name:?}"),
                    side.value_type.to_string(),
                ));
            }
            if op.is_set_operator() && side.value_type == ValueType::Scalar {
                return Err(self.error_at(
                    side.start,
                    &format!("instant vector operands for the set operator {name:?}"),
                    "scalar",
                ));
            }
        }
        let any_scalar = lhs.value_type == ValueType::Scalar || rhs.value_type == ValueType::Scalar;
        if let Some(position) = modifiers.matching_position
            && any_scalar
        {
            return Err(self.error_at(
                position,
                "instant vectors on both sides of on (…) / ignoring (…)",
                "a scalar operand",
            ));
        }
        if op.is_comparison()
            && lhs.value_type == ValueType::Scalar
            && rhs.value_type == ValueType::Scalar
            && !modifiers.return_bool
        {
            return Err(self.error_at(
                operator.start,
                &format!("bool after {name:?} (comparisons between scalars must use bool)"),
                format!("{name:?} between two scalars"),
            ));
        }
        let depth = 1 + lhs.depth.max(rhs.depth);
        self.check_depth(depth, operator.start)?;
        let value_type = binary_result_type(lhs.value_type, rhs.value_type);
        let binary = BinaryExpr {
            op,
            lhs: Box::new(lhs.expr),
            rhs: Box::new(rhs.expr),
            return_bool: modifiers.return_bool,
            matching: modifiers.matching,
        };
        Ok(Node {
            expr: Expr::Binary(binary),
            start: lhs.start,
            value_type,
            depth,
            parenthesized: false,
        })
    }
}

/// The binary operator a token spells, if any.
fn binary_operator(kind: &TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Plus => BinaryOp::Add,
        TokenKind::Minus => BinaryOp::Sub,
        TokenKind::Star => BinaryOp::Mul,
        TokenKind::Slash => BinaryOp::Div,
        TokenKind::Percent => BinaryOp::Mod,
        TokenKind::Caret => BinaryOp::Pow,
        TokenKind::Equal => BinaryOp::Eq,
        TokenKind::NotEqual => BinaryOp::Ne,
        TokenKind::Greater => BinaryOp::Gt,
        TokenKind::Less => BinaryOp::Lt,
        TokenKind::GreaterEqual => BinaryOp::Ge,
        TokenKind::LessEqual => BinaryOp::Le,
        TokenKind::Keyword(Keyword::And) => BinaryOp::And,
        TokenKind::Keyword(Keyword::Or) => BinaryOp::Or,
        TokenKind::Keyword(Keyword::Unless) => BinaryOp::Unless,
        TokenKind::Keyword(Keyword::Atan2) => BinaryOp::Atan2,
        _ => return None,
    })
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree's shape as a fully parenthesised string, independent of
    /// the printer under test.
    fn shape(expr: &Expr) -> String {
        match expr {
            Expr::Binary(binary) => format!(
                "({} {} {})",
                shape(&binary.lhs),
                binary.op.as_str(),
                shape(&binary.rhs)
            ),
            Expr::Negate(operand) => format!("(-{})", shape(operand)),
            other => other.to_string(),
        }
    }

    fn parse_shape(input: &str) -> String {
        match parse_expression(input) {
            Ok(expr) => shape(&expr),
            Err(error) => panic!("{input:?}: {error}"),
        }
    }

    #[test]
    fn precedence_and_associativity_follow_prometheus() {
        for (input, expected) in [
            ("1 + 2 * 3", "(1 + (2 * 3))"),
            ("1 * 2 + 3", "((1 * 2) + 3)"),
            ("1 - 2 - 3", "((1 - 2) - 3)"),
            ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
            ("-2 ^ 2", "(-(2 ^ 2))"),
            ("-x * y", "((-x) * y)"),
            ("2 ^ -1", "(2 ^ -1)"),
            ("a or b and c", "(a or (b and c))"),
            ("a and b unless c", "((a and b) unless c)"),
            ("a > b + 1", "(a > (b + 1))"),
            ("a == b or c", "((a == b) or c)"),
            ("(1 + 2) * 3", "((1 + 2) * 3)"),
            ("1 + -2", "(1 + -2)"),
            ("- -x", "(-(-x))"),
            ("-(1)", "(-1)"),
        ] {
            assert_eq!(parse_shape(input), expected, "{input}");
        }
    }

    #[test]
    fn negative_literals_fold_only_when_bare() {
        assert_eq!(parse_expression("-1"), Ok(Expr::Number(-1.0)));
        assert_eq!(
            parse_expression("-(1)"),
            Ok(Expr::Negate(Box::new(Expr::Number(1.0))))
        );
        assert_eq!(parse_expression("+5"), Ok(Expr::Number(5.0)));
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH + 5),
            ")".repeat(MAX_DEPTH + 5)
        );
        let error = parse_expression(&deep).unwrap_err();
        assert!(error.expected.contains("levels deep"), "{error}");
        let ok = format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH - 2),
            ")".repeat(MAX_DEPTH - 2)
        );
        assert!(parse_expression(&ok).is_ok());
        let long_chain = vec!["x"; MAX_DEPTH + 5].join(" + ");
        assert!(parse_expression(&long_chain).is_err());
        let minus_chain = format!("{}x", "-".repeat(MAX_DEPTH + 5));
        assert!(parse_expression(&minus_chain).is_err());
    }
}
