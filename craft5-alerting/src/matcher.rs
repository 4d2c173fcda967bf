//! Label matchers as routes and silences write them: `severity="page"`,
//! `team!="db"`, `host=~"web-.*"`, `env!~"dev|test"` — Alertmanager's
//! `matchers:` syntax.
//!
//! The matching itself is `common::LabelMatcher`'s (the query slot's: a
//! regex is anchored at both ends, a missing label has the value `""`);
//! this file adds the text form, parsed with errors that say what is wrong
//! and printed back canonically (for route keys, group keys and the API).
//! Values may be quoted (`"page"`, with `\"` and `\\` escapes) or bare
//! (`page`), as Alertmanager accepts both. Docs chapter 5, "Routing".

use std::fmt;

use common::metric::is_valid_label_name;
use common::{LabelMatcher, Labels, MatchOp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One condition on one label of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    inner: LabelMatcher,
}

impl Matcher {
    /// A matcher; a regex is compiled (anchored) here.
    ///
    /// # Errors
    /// A message for an invalid label name or a regex that does not compile.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !is_valid_label_name(name) {
            return Err(format!(
                "label name {name:?} is not valid: letters, digits and `_`, not starting with a digit"
            ));
        }
        let inner = LabelMatcher::new(name, op, value).map_err(|e| e.to_string())?;
        Ok(Matcher { inner })
    }

    /// Parses `name op value`, e.g. `severity="page"`.
    ///
    /// # Errors
    /// A message naming the text and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let name_end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        let name = &trimmed[..name_end];
        let rest = trimmed[name_end..].trim_start();
        let (op, rest) = if let Some(rest) = rest.strip_prefix("=~") {
            (MatchOp::Regex, rest)
        } else if let Some(rest) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, rest)
        } else if let Some(rest) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, rest)
        } else if let Some(rest) = rest.strip_prefix('=') {
            (MatchOp::Equal, rest)
        } else {
            return Err(format!(
                "matcher {text:?}: expected `name=\"value\"` with one of =, !=, =~, !~"
            ));
        };
        if name.is_empty() {
            return Err(format!("matcher {text:?}: missing the label name"));
        }
        let value =
            unquote(rest.trim()).map_err(|problem| format!("matcher {text:?}: {problem}"))?;
        Matcher::new(name, op, &value).map_err(|problem| format!("matcher {text:?}: {problem}"))
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.inner.op
    }

    /// The value or pattern.
    pub fn value(&self) -> &str {
        &self.inner.value
    }

    /// True for `=~` and `!~`.
    pub fn is_regex(&self) -> bool {
        matches!(self.op(), MatchOp::Regex | MatchOp::NotRegex)
    }

    /// True for `=` and `=~`.
    pub fn is_equal(&self) -> bool {
        matches!(self.op(), MatchOp::Equal | MatchOp::Regex)
    }

    /// True when the labels satisfy it (a missing label is `""`).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.inner
            .matches_value(labels.get(self.name()).unwrap_or(""))
    }

    /// True when a label set without this label satisfies it: a silence
    /// made only of such matchers would silence everything.
    pub fn matches_empty(&self) -> bool {
        self.inner.matches_value("")
    }
}

/// True when every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="1", b=~"x"}`: a list as route keys and group keys print it.
pub fn format_matchers(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

fn op_symbol(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name(), op_symbol(self.op()))?;
        for c in self.value().chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Matcher::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A quoted value with `\"`, `\\` and `\n` escapes, or a bare one.
fn unquote(text: &str) -> Result<String, String> {
    let Some(body) = text.strip_prefix('"') else {
        if text.contains('"') {
            return Err("a bare value may not contain `\"`".into());
        }
        return Ok(text.to_string());
    };
    let mut value = String::new();
    let mut chars = body.chars();
    loop {
        match chars.next() {
            None => return Err("the value's closing `\"` is missing".into()),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some(other) => return Err(format!("unknown escape `\\{other}`")),
                None => return Err("the value's closing `\"` is missing".into()),
            },
            Some(c) => value.push(c),
        }
    }
    if !chars.as_str().trim().is_empty() {
        return Err(format!("unexpected {:?} after the value", chars.as_str()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::from_pairs([("severity", "page"), ("host", "web-1")])
    }

    #[test]
    fn the_four_operators_parse_and_match() {
        for (text, expected) in [
            ("severity=\"page\"", true),
            ("severity = page", true),
            ("severity!=\"page\"", false),
            ("host=~\"web-.*\"", true),
            ("host=~\"web\"", false),
            ("host!~\"db-.*|cache\"", true),
            ("team=\"\"", true),
            ("team!=\"\"", false),
        ] {
            let matcher = Matcher::parse(text).unwrap();
            assert_eq!(matcher.matches(&labels()), expected, "{text}");
        }
    }

    #[test]
    fn printing_is_canonical_and_round_trips() {
        let matcher = Matcher::parse(r#"  summary  != "a\"b\\c" "#).unwrap();
        assert_eq!(matcher.to_string(), r#"summary!="a\"b\\c""#);
        assert_eq!(Matcher::parse(&matcher.to_string()).unwrap(), matcher);
        assert!(!matcher.is_regex() && !matcher.is_equal());
        let regex = Matcher::parse("host=~\"web-\\\\d+\"").unwrap();
        assert_eq!(regex.value(), "web-\\d+");
        assert!(regex.is_regex() && regex.is_equal());
        let list = [
            Matcher::parse("a=1").unwrap(),
            Matcher::parse("b!~x").unwrap(),
        ];
        assert_eq!(format_matchers(&list), r#"{a="1",b!~"x"}"#);
        assert_eq!(format_matchers(&[]), "{}");
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (text, needle) in [
            ("severity", "expected `name=\"value\"`"),
            ("=\"x\"", "missing the label name"),
            ("9x=\"y\"", "not valid"),
            ("a=~\"(\"", "regex"),
            ("a=\"open", "closing"),
            ("a=\"x\" y", "unexpected"),
            ("a=\"\\q\"", "unknown escape"),
            ("a=b\"c", "bare value"),
        ] {
            let error = Matcher::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn matches_empty_tells_matchers_that_match_everything() {
        assert!(Matcher::parse("a=~\".*\"").unwrap().matches_empty());
        assert!(Matcher::parse("a!=\"x\"").unwrap().matches_empty());
        assert!(!Matcher::parse("a=\"x\"").unwrap().matches_empty());
    }
}
