//! Annotation and label templates: `{{ $value }}`, `{{ $labels.host }}`,
//! `{{ $labels }}`, parsed once when the rule file loads.
//!
//! Prometheus runs Go's `text/template` here, a language of its own. A
//! notification needs three things from it — the value, one label, all the
//! labels — so this is a hand-written subset: small enough to read, and
//! strict where it matters. A typo (`{{ $valeu }}`) or a function we do
//! not have (`{{ humanize $value }}`) is an error *at load time*, naming
//! the template and the position, instead of a page at 3 a.m. that reads
//! `<no value>`. The Go spellings `.Value` and `.Labels.host` are accepted
//! too, as are the whitespace-trimming markers `{{-` and `-}}`, so most
//! Prometheus annotations load unchanged. Docs chapter 5, "The rule file".

use std::fmt;

use common::Labels;
use common::metric::is_valid_label_name;
use thiserror::Error;

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("template {template:?}, at byte {position}: {message}")]
pub struct TemplateError {
    /// The template text.
    pub template: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{{ $value }}`: the alert's value, shortest exact form.
    Value,
    /// `{{ $labels }}`: every label, `{host="a",region="eu"}`.
    AllLabels,
    /// `{{ $labels.host }}`: one label's value, empty when absent.
    Label(String),
}

/// A parsed template, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

const KNOWN: &str = "known: $value, $labels, $labels.<name> (or .Value, .Labels, .Labels.<name>)";

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`TemplateError`] for an unclosed `{{`, an empty action, an unknown
    /// variable or function, or a label name that cannot exist.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let error = |position: usize, message: String| TemplateError {
            template: text.to_string(),
            position,
            message,
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            let start = offset + open;
            literal.push_str(&rest[..open]);
            let after_open = &rest[open + 2..];
            let close = after_open
                .find("}}")
                .ok_or_else(|| error(start, "\"{{\" is never closed by \"}}\"".into()))?;
            let mut action = &after_open[..close];
            // `{{-` trims the whitespace before the action, `-}}` after it.
            let trim_before = action.starts_with("- ") || action == "-";
            if trim_before {
                action = &action[1..];
                literal.truncate(literal.trim_end().len());
            }
            let trim_after = action.ends_with(" -");
            if trim_after {
                action = &action[..action.len() - 1];
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(parse_action(action.trim()).map_err(|message| error(start, message))?);
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
            if trim_after {
                let trimmed = rest.trim_start();
                offset += rest.len() - trimmed.len();
                rest = trimmed;
            }
        }
        if let Some(stray) = rest.find("}}") {
            return Err(error(
                offset + stray,
                "\"}}\" without an opening \"{{\"".into(),
            ));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template mentions `$value`: a label templated with
    /// the value would change on every evaluation, which Prometheus warns
    /// against (the rule loader does too).
    pub fn uses_value(&self) -> bool {
        self.parts.contains(&Part::Value)
    }

    /// Renders with the alert's value and labels. Never fails: everything
    /// that could go wrong was checked by [`parse`](Self::parse).
    pub fn render(&self, value: Option<f64>, labels: &Labels) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Value => match value {
                    Some(value) => out.push_str(&format_value(value)),
                    None => out.push_str("(no value)"),
                },
                Part::AllLabels => out.push_str(&labels.to_string()),
                Part::Label(name) => out.push_str(labels.get(name).unwrap_or("")),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The value as Go's `%v` prints a float in spirit: the shortest text that
/// reads back as the same number (`92`, `0.1`, `81.25`).
pub fn format_value(value: f64) -> String {
    format!("{value}")
}

fn parse_action(action: &str) -> Result<Part, String> {
    if action.is_empty() {
        return Err(format!("empty action \"{{{{ }}}}\"; {KNOWN}"));
    }
    if action.contains(char::is_whitespace) || action.contains('|') {
        return Err(format!(
            "{action:?}: functions and pipelines are not supported, only a variable; {KNOWN}"
        ));
    }
    match action {
        "$value" | ".Value" => return Ok(Part::Value),
        "$labels" | ".Labels" => return Ok(Part::AllLabels),
        _ => {}
    }
    let label = action
        .strip_prefix("$labels.")
        .or_else(|| action.strip_prefix(".Labels."));
    match label {
        Some(name) if is_valid_label_name(name) => Ok(Part::Label(name.to_string())),
        Some(name) => Err(format!("{name:?} is not a valid label name")),
        None => Err(format!("unknown variable {action}; {KNOWN}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::from_pairs([("host", "a"), ("region", "eu")])
    }

    #[test]
    fn renders_value_one_label_and_all_labels() {
        let template =
            Template::parse("{{ $labels.host }} at {{ $value }}; all {{$labels}}").unwrap();
        assert_eq!(
            template.render(Some(92.5), &labels()),
            "a at 92.5; all {host=\"a\",region=\"eu\"}"
        );
        assert!(template.uses_value());
    }

    #[test]
    fn go_spellings_and_trim_markers() {
        let template = Template::parse("host  {{- .Labels.host -}}  ,{{ .Value }}").unwrap();
        assert_eq!(template.render(Some(1.0), &labels()), "hosta,1");
    }

    #[test]
    fn missing_label_and_value_render_visibly_empty() {
        let template = Template::parse("[{{ $labels.zone }}] {{ $value }}").unwrap();
        assert_eq!(template.render(None, &Labels::empty()), "[] (no value)");
    }

    #[test]
    fn plain_text_and_empty() {
        assert_eq!(
            Template::parse("no actions")
                .unwrap()
                .render(None, &labels()),
            "no actions"
        );
        assert_eq!(Template::parse("").unwrap().render(None, &labels()), "");
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        let cases = [
            ("CPU {{ $valeu }}", 4, "unknown variable $valeu"),
            (
                "{{ humanize $value }}",
                0,
                "functions and pipelines are not supported",
            ),
            ("{{ $value | printf \"%.2f\" }}", 0, "not supported"),
            ("x {{ $value", 2, "never closed"),
            ("x }} y", 2, "without an opening"),
            ("{{ }}", 0, "empty action"),
            ("{{ $labels.9x }}", 0, "not a valid label name"),
        ];
        for (text, position, message) in cases {
            let err = Template::parse(text).unwrap_err();
            assert_eq!(err.position, position, "{text}: {err}");
            assert!(err.to_string().contains(message), "{text}: {err}");
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }
}
