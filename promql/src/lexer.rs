//! The lexer: turns query text into tokens, each with the byte span it
//! came from, so every later error can point at the exact spot.
//!
//! It follows Prometheus' lexer (`promql/parser/lex.go`) in what it
//! accepts: metric names with `:`, three string quotes with Go's escapes,
//! hex and float numbers, `Inf` and `NaN`, durations such as `1h30m` (read
//! by `duration.rs`), and `#` comments. One choice differs and is
//! deliberate:
//!
//! - Words are not split into "keyword" and "label name" by context here.
//!   `by`, `offset`, `and`, … come out as [`TokenKind::Keyword`], and the
//!   parser accepts any word where a *label name* is due, because
//!   `sum by (on) (x)` and `{bool="yes"}` are valid PromQL.
//!
//! Integer literals with a leading zero are octal (`010` is 8), as Go's
//! `ParseInt(s, 0, 64)` reads them for Prometheus; `08`, which is no
//! octal, falls back to the decimal 8, as there.
//!
//! The one piece of context the lexer keeps is whether it is inside `[…]`,
//! where `:` separates a subquery's range from its step instead of
//! starting a metric name (`x[5m:1m]` against `:job:rate5m`).
//!
//! Cost: one pass over the bytes, one allocation per token list; the
//! parser, not the lexer, is where a query's time goes. Docs:
//! `docs/src/ch04-query.md`, "The lexer".

use crate::duration;
use crate::error::ParseError;

/// The words the grammar reserves outside label positions. Matched without
/// regard to case, as Prometheus does (`SUM BY (job)` is valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `by`, the grouping clause that keeps the listed labels.
    By,
    /// `without`, the grouping clause that drops the listed labels.
    Without,
    /// `on`, vector matching on the listed labels only.
    On,
    /// `ignoring`, vector matching on all but the listed labels.
    Ignoring,
    /// `group_left`, many-to-one matching.
    GroupLeft,
    /// `group_right`, one-to-many matching.
    GroupRight,
    /// `bool`, comparisons that return 0/1 instead of filtering.
    Bool,
    /// `offset`, shifting a selector back in time.
    Offset,
    /// `and`, set intersection.
    And,
    /// `or`, set union.
    Or,
    /// `unless`, set difference.
    Unless,
    /// `atan2`, the arithmetic operator `atan2(lhs, rhs)`.
    Atan2,
}

impl Keyword {
    /// The keyword spelled by `word`, in any case.
    pub fn from_word(word: &str) -> Option<Self> {
        const ALL: [Keyword; 12] = [
            Keyword::By,
            Keyword::Without,
            Keyword::On,
            Keyword::Ignoring,
            Keyword::GroupLeft,
            Keyword::GroupRight,
            Keyword::Bool,
            Keyword::Offset,
            Keyword::And,
            Keyword::Or,
            Keyword::Unless,
            Keyword::Atan2,
        ];
        ALL.into_iter()
            .find(|keyword| keyword.as_str().eq_ignore_ascii_case(word))
    }

    /// The canonical (lower-case) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::By => "by",
            Keyword::Without => "without",
            Keyword::On => "on",
            Keyword::Ignoring => "ignoring",
            Keyword::GroupLeft => "group_left",
            Keyword::GroupRight => "group_right",
            Keyword::Bool => "bool",
            Keyword::Offset => "offset",
            Keyword::And => "and",
            Keyword::Or => "or",
            Keyword::Unless => "unless",
            Keyword::Atan2 => "atan2",
        }
    }
}

/// What a token is. Identifier and keyword text is read back from the
/// token's span; literals carry their decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A metric, function, aggregation or label name.
    Identifier,
    /// A reserved word.
    Keyword(Keyword),
    /// A number: decimal, float, hex, `Inf` or `NaN`.
    Number(f64),
    /// A duration such as `5m` or `1h30m`, in milliseconds.
    Duration(i64),
    /// A string literal, escapes decoded.
    String(String),
    /// `(`
    LeftParen,
    /// `)`
    RightParen,
    /// `{`
    LeftBrace,
    /// `}`
    RightBrace,
    /// `[`
    LeftBracket,
    /// `]`
    RightBracket,
    /// `,`
    Comma,
    /// `:` inside brackets (the subquery step separator).
    Colon,
    /// `@` (lexed so the parser can say it is not supported).
    At,
    /// `=`
    Assign,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    RegexMatch,
    /// `!~`
    RegexNotMatch,
    /// `<`
    Less,
    /// `<=`
    LessEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterEqual,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `^`
    Caret,
    /// The end of the query; always the last token.
    Eof,
}

/// A token and where it came from: `input[start..end]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

impl Token {
    /// The source text of the token.
    pub fn text<'a>(&self, input: &'a str) -> &'a str {
        input.get(self.start..self.end).unwrap_or("")
    }

    /// The token as a word (identifier, keyword, `Inf`, `NaN`), if it is
    /// one: anything that may stand where a label name is expected.
    pub fn word<'a>(&self, input: &'a str) -> Option<&'a str> {
        let text = self.text(input);
        let is_word = match self.kind {
            TokenKind::Identifier | TokenKind::Keyword(_) => true,
            TokenKind::Number(_) => text.starts_with(|c: char| c.is_ascii_alphabetic()),
            _ => false,
        };
        is_word.then_some(text)
    }

    /// How an error message names this token: `","`, `end of input`,
    /// `number 5`, `keyword "by"`.
    pub fn describe(&self, input: &str) -> String {
        let text = shorten(self.text(input));
        match self.kind {
            TokenKind::Eof => "end of input".to_string(),
            TokenKind::Keyword(_) => format!("keyword {text:?}"),
            TokenKind::Number(_) => format!("number {text}"),
            TokenKind::Duration(_) => format!("duration {text}"),
            TokenKind::String(_) => format!("string {text}"),
            _ => format!("{text:?}"),
        }
    }
}

/// Keeps error messages one line long when a token is a long string.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Splits `input` into tokens, ending with [`TokenKind::Eof`].
///
/// # Errors
/// A [`ParseError`] at the first character that starts no valid token: an
/// unknown character, a malformed number or duration, an unterminated
/// string, an unknown escape sequence.
pub fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    Lexer {
        input,
        bytes: input.as_bytes(),
        position: 0,
        bracket_depth: 0,
        tokens: Vec::new(),
    }
    .run()
}

struct Lexer<'a> {
    input: &'a str,
    bytes: &'a [u8],
    position: usize,
    bracket_depth: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        loop {
            self.skip_space_and_comments();
            let start = self.position;
            let Some(&byte) = self.bytes.get(start) else {
                self.tokens.push(Token {
                    kind: TokenKind::Eof,
                    start,
                    end: start,
                });
                return Ok(self.tokens);
            };
            let next = self.bytes.get(start + 1).copied();
            let (kind, length) = match byte {
                b'(' => (TokenKind::LeftParen, 1),
                b')' => (TokenKind::RightParen, 1),
                b'{' => (TokenKind::LeftBrace, 1),
                b'}' => (TokenKind::RightBrace, 1),
                b'[' => {
                    self.bracket_depth += 1;
                    (TokenKind::LeftBracket, 1)
                }
                b']' => {
                    self.bracket_depth = self.bracket_depth.saturating_sub(1);
                    (TokenKind::RightBracket, 1)
                }
                b',' => (TokenKind::Comma, 1),
                b'@' => (TokenKind::At, 1),
                b'+' => (TokenKind::Plus, 1),
                b'-' => (TokenKind::Minus, 1),
                b'*' => (TokenKind::Star, 1),
                b'/' => (TokenKind::Slash, 1),
                b'%' => (TokenKind::Percent, 1),
                b'^' => (TokenKind::Caret, 1),
                b'=' => match next {
                    Some(b'=') => (TokenKind::Equal, 2),
                    Some(b'~') => (TokenKind::RegexMatch, 2),
                    _ => (TokenKind::Assign, 1),
                },
                b'!' => match next {
                    Some(b'=') => (TokenKind::NotEqual, 2),
                    Some(b'~') => (TokenKind::RegexNotMatch, 2),
                    _ => return Err(self.error(start, "\"!=\" or \"!~\"", "\"!\"")),
                },
                b'<' => match next {
                    Some(b'=') => (TokenKind::LessEqual, 2),
                    _ => (TokenKind::Less, 1),
                },
                b'>' => match next {
                    Some(b'=') => (TokenKind::GreaterEqual, 2),
                    _ => (TokenKind::Greater, 1),
                },
                b':' if self.bracket_depth > 0 => (TokenKind::Colon, 1),
                b'"' | b'\'' => self.quoted_string(byte)?,
                b'`' => self.raw_string()?,
                b'0'..=b'9' => self.number_or_duration()?,
                b'.' if next.is_some_and(|b| b.is_ascii_digit()) => self.number_or_duration()?,
                b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':' => self.word(),
                _ => {
                    let character = self.input[start..].chars().next().unwrap_or('?');
                    return Err(self.error(
                        start,
                        "an expression, an operator or a bracket",
                        format!("unexpected character {character:?}"),
                    ));
                }
            };
            self.position = start + length;
            self.tokens.push(Token {
                kind,
                start,
                end: self.position,
            });
        }
    }

    fn error(&self, position: usize, expected: &str, found: impl Into<String>) -> ParseError {
        ParseError::new(self.input, position, expected, found)
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(&byte) = self.bytes.get(self.position) {
            if byte.is_ascii_whitespace() {
                self.position += 1;
            } else if byte == b'#' {
                // A comment runs to the end of the line.
                while self.bytes.get(self.position).is_some_and(|&b| b != b'\n') {
                    self.position += 1;
                }
            } else {
                break;
            }
        }
    }

    /// An identifier or keyword; `Inf`/`NaN` become numbers. Inside
    /// brackets `:` ends a word, so `x[5m:1m]` never lexes `:1m` as a name.
    fn word(&self) -> (TokenKind, usize) {
        let start = self.position;
        let allow_colon = self.bracket_depth == 0;
        let length = self.bytes[start..]
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || (b == b':' && allow_colon))
            .count();
        let word = &self.input[start..start + length];
        let kind = if word.eq_ignore_ascii_case("inf") {
            TokenKind::Number(f64::INFINITY)
        } else if word.eq_ignore_ascii_case("nan") {
            TokenKind::Number(f64::NAN)
        } else if let Some(keyword) = Keyword::from_word(word) {
            TokenKind::Keyword(keyword)
        } else {
            TokenKind::Identifier
        };
        (kind, length)
    }

    /// Digits start either a duration (`5m`, `1h30m`) or a number (`5`,
    /// `1.5e3`, `0x1F`). Whichever form it is must not run straight into
    /// more letters or digits: `5x` and `1.5m` are errors, not `5` followed
    /// by a name.
    fn number_or_duration(&self) -> Result<(TokenKind, usize), ParseError> {
        let start = self.position;
        if let Some((end, milliseconds)) = self.scan_duration(start)? {
            return Ok((TokenKind::Duration(milliseconds), end - start));
        }
        if let Some((end, value)) = self.scan_number(start)? {
            return Ok((TokenKind::Number(value), end - start));
        }
        let end = self.word_end(start);
        Err(self.error(
            start,
            "a number or a duration (like 5, 1.5e3, 0x1F or 1h30m)",
            format!("{:?}", shorten(&self.input[start..end])),
        ))
    }

    /// Where a run of letters, digits, `_` and `.` starting at `index` ends.
    fn word_end(&self, index: usize) -> usize {
        index
            + self.bytes[index..]
                .iter()
                .take_while(|&&b| continues_literal(b))
                .count()
    }

    fn digits_end(&self, index: usize) -> usize {
        index
            + self.bytes[index..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
    }

    /// A duration at `start`, read by `duration.rs`; `None` when there is
    /// none or it runs straight into more letters or digits (`5m30`).
    fn scan_duration(&self, start: usize) -> Result<Option<(usize, i64)>, ParseError> {
        let Some((length, value)) = duration::scan_duration(&self.input[start..]) else {
            return Ok(None);
        };
        let end = start + length;
        if self.bytes.get(end).is_some_and(|&b| continues_literal(b)) {
            return Ok(None);
        }
        match value {
            Ok(milliseconds) => Ok(Some((end, milliseconds))),
            Err(problem) => Err(self.error(
                start,
                problem.expected(),
                format!("{:?}", &self.input[start..end]),
            )),
        }
    }

    /// A hex integer or a decimal float with optional fraction and exponent.
    fn scan_number(&self, start: usize) -> Result<Option<(usize, f64)>, ParseError> {
        let bytes = self.bytes;
        if bytes[start] == b'0' && matches!(bytes.get(start + 1), Some(b'x' | b'X')) {
            let digits_start = start + 2;
            let length = bytes[digits_start..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let end = digits_start + length;
            if length == 0 || bytes.get(end).is_some_and(|&b| continues_literal(b)) {
                return Ok(None);
            }
            return match u64::from_str_radix(&self.input[digits_start..end], 16) {
                // Precision beyond 2^53 is lost, as in Prometheus' float64.
                Ok(value) => Ok(Some((end, value as f64))),
                Err(_) => Err(self.error(
                    start,
                    "a hex number below 2^64",
                    format!("{:?}", shorten(&self.input[start..end])),
                )),
            };
        }
        let integer_end = self.digits_end(start);
        // Octal, as Go's `ParseInt(s, 0, 64)` reads an integer literal with
        // a leading zero: `010` is 8. Digits beyond 7 (`08`), a fraction or
        // an exponent make it no integer, and Prometheus falls back to a
        // decimal float (8); so does an octal beyond 2^63.
        if bytes[start] == b'0'
            && integer_end - start > 1
            && !matches!(bytes.get(integer_end), Some(b'.' | b'e' | b'E'))
            && !bytes
                .get(integer_end)
                .is_some_and(|&b| continues_literal(b))
            && let Ok(value) = i64::from_str_radix(&self.input[start + 1..integer_end], 8)
        {
            return Ok(Some((integer_end, value as f64)));
        }
        let mut end = integer_end;
        let mut digit_count = integer_end - start;
        if bytes.get(end) == Some(&b'.') {
            let fraction_end = self.digits_end(end + 1);
            digit_count += fraction_end - (end + 1);
            end = fraction_end;
        }
        if digit_count == 0 {
            return Ok(None);
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let mut exponent = end + 1;
            if matches!(bytes.get(exponent), Some(b'+' | b'-')) {
                exponent += 1;
            }
            let exponent_end = self.digits_end(exponent);
            if exponent_end > exponent {
                end = exponent_end;
            }
        }
        if bytes.get(end).is_some_and(|&b| continues_literal(b)) {
            return Ok(None);
        }
        // Rust's float parser rounds correctly, so printing a number back
        // with `{}` and reading it again gives the same bits.
        Ok(self.input[start..end]
            .parse()
            .ok()
            .map(|value| (end, value)))
    }

    /// `'…'` or `"…"` with Go's escapes, as Prometheus' `lexString` and
    /// `lexEscape`: `\a \b \f \n \r \t \v \\`, the opening quote, `\NNN`
    /// octal and `\xNN` bytes, `\uNNNN` and `\UNNNNNNNN` code points. Octal
    /// and hex escapes are bytes, so the result is checked to be UTF-8.
    fn quoted_string(&self, quote: u8) -> Result<(TokenKind, usize), ParseError> {
        let start = self.position;
        let quote_text = char::from(quote);
        let mut decoded: Vec<u8> = Vec::new();
        let mut index = start + 1;
        loop {
            match self.bytes.get(index) {
                None => {
                    return Err(self.error(
                        start,
                        &format!("a closing {quote_text} to end the string"),
                        "end of input (unterminated string)",
                    ));
                }
                Some(b'\n') => {
                    return Err(self.error(
                        start,
                        &format!("a closing {quote_text} to end the string"),
                        "end of line (unterminated string)",
                    ));
                }
                Some(&byte) if byte == quote => break,
                Some(b'\\') => index = self.escape(index, quote, &mut decoded)?,
                Some(&byte) => {
                    decoded.push(byte);
                    index += 1;
                }
            }
        }
        let end = index + 1;
        match String::from_utf8(decoded) {
            Ok(text) => Ok((TokenKind::String(text), end - start)),
            Err(_) => Err(self.error(
                start,
                "a string that decodes to UTF-8",
                "escapes that form invalid UTF-8",
            )),
        }
    }

    /// Decodes the escape whose backslash is at `backslash`; returns the
    /// index after it.
    fn escape(
        &self,
        backslash: usize,
        quote: u8,
        decoded: &mut Vec<u8>,
    ) -> Result<usize, ParseError> {
        let index = backslash + 1;
        let Some(&letter) = self.bytes.get(index) else {
            return Err(self.error(
                self.position,
                &format!("a closing {} to end the string", char::from(quote)),
                "end of input (unterminated string)",
            ));
        };
        let simple = match letter {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0C),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0B),
            b'\\' => Some(b'\\'),
            _ if letter == quote => Some(quote),
            _ => None,
        };
        if let Some(byte) = simple {
            decoded.push(byte);
            return Ok(index + 1);
        }
        let (digits_start, digit_count, radix, max) = match letter {
            b'0'..=b'7' => (index, 3, 8, 0xFF),
            b'x' => (index + 1, 2, 16, 0xFF),
            b'u' => (index + 1, 4, 16, 0x10_FFFF),
            b'U' => (index + 1, 8, 16, 0x10_FFFF),
            _ => {
                let end = index + self.input[index..].chars().next().map_or(0, char::len_utf8);
                return Err(self.error(
                    backslash,
                    "a valid escape sequence (like \\n, \\\\, \\\", \\x41, \\u00e9)",
                    format!("{:?}", &self.input[backslash..end]),
                ));
            }
        };
        let digits_end = digits_start + digit_count;
        let digits = self
            .bytes
            .get(digits_start..digits_end)
            .filter(|digits| digits.iter().all(|&b| char::from(b).is_digit(radix)));
        let value = digits
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u32::from_str_radix(digits, radix).ok())
            .filter(|&value| value <= max);
        let end = if digits.is_some() {
            digits_end
        } else {
            self.word_end(index).max(index + 1)
        };
        let text = self.input.get(backslash..end).unwrap_or("\\");
        let Some(value) = value else {
            return Err(self.error(
                backslash,
                "a valid escape sequence (\\NNN octal up to \\377, \\xNN, \\uNNNN, \\UNNNNNNNN)",
                format!("{text:?}"),
            ));
        };
        if matches!(letter, b'u' | b'U') {
            // `char::from_u32` refuses surrogates, as Go's lexer does.
            let Some(character) = char::from_u32(value) else {
                return Err(self.error(
                    backslash,
                    "a valid Unicode code point",
                    format!("{text:?}"),
                ));
            };
            let mut buffer = [0; 4];
            decoded.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
        } else {
            // `max` is 0xFF for octal and hex escapes: one byte.
            decoded.push(u8::try_from(value).unwrap_or(u8::MAX));
        }
        Ok(digits_end)
    }

    /// `` `…` ``: no escapes, newlines allowed, as in Go.
    fn raw_string(&self) -> Result<(TokenKind, usize), ParseError> {
        let start = self.position;
        match self.input[start + 1..].find('`') {
            Some(length) => Ok((
                TokenKind::String(self.input[start + 1..start + 1 + length].to_string()),
                length + 2,
            )),
            None => Err(self.error(
                start,
                "a closing ` to end the raw string",
                "end of input (unterminated string)",
            )),
        }
    }
}

/// Bytes that may not directly follow a number or duration.
fn continues_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .unwrap_or_else(|error| panic!("{input:?}: {error}"))
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    fn single(input: &str) -> TokenKind {
        let mut all = kinds(input);
        assert_eq!(all.len(), 2, "{input:?} → {all:?}");
        all.swap_remove(0)
    }

    fn lex_error(input: &str) -> ParseError {
        match tokenize(input) {
            Ok(tokens) => panic!("{input:?} lexed: {tokens:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn spans_point_into_the_input() {
        let input = "sum(rate(http:requests_total{job=~\"a.*\"}[5m]))";
        let tokens = tokenize(input).unwrap();
        let texts: Vec<&str> = tokens.iter().map(|t| t.text(input)).collect();
        assert_eq!(
            texts,
            [
                "sum",
                "(",
                "rate",
                "(",
                "http:requests_total",
                "{",
                "job",
                "=~",
                "\"a.*\"",
                "}",
                "[",
                "5m",
                "]",
                ")",
                ")",
                ""
            ]
        );
    }

    #[test]
    fn operators_take_the_longest_match() {
        use TokenKind::*;
        assert_eq!(
            kinds("== != >= <= > < = =~ !~ + - * / % ^ @"),
            [
                Equal,
                NotEqual,
                GreaterEqual,
                LessEqual,
                Greater,
                Less,
                Assign,
                RegexMatch,
                RegexNotMatch,
                Plus,
                Minus,
                Star,
                Slash,
                Percent,
                Caret,
                At,
                Eof
            ]
        );
    }

    #[test]
    fn keywords_in_any_case() {
        assert_eq!(single("BY"), TokenKind::Keyword(Keyword::By));
        assert_eq!(single("Group_Left"), TokenKind::Keyword(Keyword::GroupLeft));
        assert_eq!(single("unless"), TokenKind::Keyword(Keyword::Unless));
        assert_eq!(single("sum"), TokenKind::Identifier);
        assert_eq!(single("bye"), TokenKind::Identifier);
    }

    #[test]
    fn numbers() {
        for (input, value) in [
            ("42", 42.0),
            ("010", 8.0),
            ("0755", 493.0),
            ("08", 8.0),
            ("0019", 19.0),
            ("00", 0.0),
            ("010.5", 10.5),
            ("010e1", 100.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("2.5E-2", 0.025),
            ("1e+2", 100.0),
            ("0x1F", 31.0),
            ("0XfF", 255.0),
            ("Inf", f64::INFINITY),
            ("inf", f64::INFINITY),
        ] {
            assert_eq!(single(input), TokenKind::Number(value), "{input}");
        }
        assert!(matches!(single("NaN"), TokenKind::Number(v) if v.is_nan()));
    }

    #[test]
    fn durations() {
        for (input, milliseconds) in [
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("100ms", 100),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1m1s1ms", 61_001),
            ("0s", 0),
        ] {
            assert_eq!(single(input), TokenKind::Duration(milliseconds), "{input}");
        }
    }

    #[test]
    fn colon_is_a_separator_only_inside_brackets() {
        use TokenKind::*;
        assert_eq!(
            kinds("x[5m:1m]"),
            [
                Identifier,
                LeftBracket,
                Duration(300_000),
                Colon,
                Duration(60_000),
                RightBracket,
                Eof
            ]
        );
        assert_eq!(kinds(":job:rate5m"), [Identifier, Eof]);
    }

    #[test]
    fn strings_decode_go_escapes() {
        for (input, expected) in [
            (r#""plain""#, "plain"),
            (r#""a\"b""#, "a\"b"),
            (r"'a\'b'", "a'b"),
            (r#""\a\b\f\n\r\t\v\\""#, "\x07\x08\x0C\n\r\t\x0B\\"),
            (r#""\101\x42\u0043\U00000044""#, "ABCD"),
            (r#""\u00e9\xc3\xa9""#, "éé"),
            (r#""é ☃""#, "é ☃"),
            (r"`raw \n 'x' \d`", r"raw \n 'x' \d"),
            ("`two\nlines`", "two\nlines"),
        ] {
            assert_eq!(
                single(input),
                TokenKind::String(expected.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(kinds("x # the rest\n+ 1 # more"), kinds("x + 1"));
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (input, position, phrase) in [
            ("x + 5x", 4, "a number or a duration"),
            ("x[1.5m]", 2, "a number or a duration"),
            ("x[30m1h]", 2, "largest to smallest"),
            ("x[1h1h]", 2, "largest to smallest"),
            ("x[99999999999999999999s]", 2, "292 million years"),
            ("0x", 0, "a number or a duration"),
            ("a $ b", 2, "unexpected character '$'"),
            ("a ! b", 2, "\"!=\" or \"!~\""),
            ("{a=\"abc", 3, "unterminated string"),
            ("{a='ab\nc'}", 3, "end of line"),
            ("`abc", 0, "raw string"),
            (r#""a\qb""#, 2, r#""\\q""#),
            (r#""\'""#, 1, "escape"),
            (r#"'\"'"#, 1, "escape"),
            (r#""\400""#, 1, "octal"),
            (r#""\x4""#, 1, "\\xNN"),
            (r#""\ud800""#, 1, "Unicode code point"),
            (r#""\xff""#, 0, "UTF-8"),
            ("0x10000000000000000", 0, "below 2^64"),
        ] {
            let error = lex_error(input);
            assert_eq!(error.position, position, "{input:?}: {error}");
            assert!(error.to_string().contains(phrase), "{input:?}: {error}");
        }
    }
}
