//! Prometheus' relabelling: a list of rules, each rewriting a label set
//! or dropping it, applied to a target's discovered labels before it is
//! scraped (`relabel_configs`) and to every scraped sample before it is
//! stored (`metric_relabel_configs`).
//!
//! Hand-written because it is the part of a Prometheus configuration
//! people rely on most and understand least: every action is a few lines
//! here. A rule joins its `source_labels` with `separator`, matches the
//! result against `regex` (anchored at both ends, as Prometheus does), and
//! then, by `action`: `replace` writes `replacement` (with `$1`, `${name}`
//! expanded) into `target_label`; `keep`/`drop` keep or drop the set on a
//! match; `keepequal`/`dropequal` compare the joined value with
//! `target_label`'s; `hashmod` writes the MD5 of the value modulo
//! `modulus`; `labelmap` copies every label whose *name* matches under the
//! replaced name; `labeldrop`/`labelkeep` remove labels by name;
//! `lowercase`/`uppercase` write the value case-folded.
//!
//! The cost is per sample for metric relabelling: a rule is a regex match
//! on a joined string, so a job with many rules and many samples pays for
//! it on every scrape. Docs chapter 1, "Pull".

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use regex::Regex;
use serde::Deserialize;

/// A label set being relabelled, by name (`__name__` included for a
/// sample).
pub type LabelSet = BTreeMap<String, String>;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Writes `replacement` into `target_label` on a match.
    Replace,
    /// Drops the set unless the value matches.
    Keep,
    /// Drops the set if the value matches.
    Drop,
    /// Drops the set unless the value equals `target_label`'s.
    KeepEqual,
    /// Drops the set if the value equals `target_label`'s.
    DropEqual,
    /// `target_label` = MD5(value) mod `modulus`.
    HashMod,
    /// Copies each label whose name matches under the replaced name.
    LabelMap,
    /// Removes each label whose name matches.
    LabelDrop,
    /// Removes each label whose name does not match.
    LabelKeep,
    /// `target_label` = the value in lower case.
    Lowercase,
    /// `target_label` = the value in upper case.
    Uppercase,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        Some(match text.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

/// One rule as the file writes it (every key optional, Prometheus'
/// defaults applied by [`RelabelConfig::compile`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    action: Action,
    source_labels: Vec<String>,
    separator: String,
    /// `^(?:regex)$`.
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.action == other.action
            && self.source_labels == other.source_labels
            && self.separator == other.separator
            && self.regex.as_str() == other.regex.as_str()
            && self.modulus == other.modulus
            && self.target_label == other.target_label
            && self.replacement == other.replacement
    }
}

/// A label name as Prometheus allows it.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A `target_label` of `replace`: a label name in which `$1`, `${1}`,
/// `$name`, `${name}` may stand for parts.
fn valid_target_template(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    if bytes.is_empty() {
        return false;
    }
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'$' {
            i += 1;
            if i < bytes.len() && bytes[i] == b'{' {
                let close = match name[i..].find('}') {
                    Some(at) => i + at,
                    None => return false,
                };
                let inner = &name[i + 1..close];
                if inner.is_empty()
                    || !inner
                        .bytes()
                        .all(|b| b == b'_' || b.is_ascii_alphanumeric())
                {
                    return false;
                }
                i = close + 1;
            } else {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if c == b'_' || c.is_ascii_alphanumeric() {
            i += 1;
        } else {
            return false;
        }
    }
    !bytes[0].is_ascii_digit()
}

impl RelabelConfig {
    /// Applies Prometheus' defaults and checks the combination, as
    /// Prometheus' own loader does.
    ///
    /// # Errors
    /// What is wrong, naming the key.
    pub fn compile(&self) -> Result<Rule, String> {
        let action = match &self.action {
            None => Action::Replace,
            Some(text) => Action::parse(text).ok_or_else(|| {
                format!(
                    "action: unknown relabel action {text:?} (replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase)"
                )
            })?,
        };
        let pattern = self.regex.clone().unwrap_or_else(|| "(.*)".into());
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("regex: {pattern:?} is not a regular expression: {e}"))?;
        let target = self.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!(
                "target_label: relabel configuration for {} action requires 'target_label' value",
                self.action.as_deref().unwrap_or("replace")
            ));
        }
        match action {
            Action::Replace if !valid_target_template(&target) => {
                return Err(format!(
                    "target_label: {target:?} is invalid for the replace action"
                ));
            }
            Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
                if !valid_label_name(&target) =>
            {
                return Err(format!(
                    "target_label: {target:?} is not a valid label name"
                ));
            }
            _ => {}
        }
        if action == Action::HashMod && self.modulus.unwrap_or(0) == 0 {
            return Err(
                "modulus: relabel configuration for hashmod requires non-zero modulus".into(),
            );
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (self.source_labels.is_some()
                || self.target_label.is_some()
                || self.modulus.is_some()
                || self.separator.is_some()
                || self.replacement.is_some())
        {
            return Err(format!(
                "{}: only the regex key may be set for the {} action",
                first_set(self),
                self.action.as_deref().unwrap_or_default()
            ));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (self.regex.is_some() || self.modulus.is_some() || self.replacement.is_some())
        {
            return Err(format!(
                "regex: regex, modulus and replacement must not be set for the {} action",
                self.action.as_deref().unwrap_or_default()
            ));
        }
        if matches!(
            action,
            Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual
        ) && self.source_labels.as_ref().is_none_or(Vec::is_empty)
        {
            return Err(format!(
                "source_labels: the {} action needs source labels",
                self.action.as_deref().unwrap_or_default()
            ));
        }
        for name in self.source_labels.iter().flatten() {
            if !valid_label_name(name) {
                return Err(format!("source_labels: {name:?} is not a valid label name"));
            }
        }
        Ok(Rule {
            action,
            source_labels: self.source_labels.clone().unwrap_or_default(),
            separator: self.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            modulus: self.modulus.unwrap_or(0),
            target_label: target,
            replacement: self.replacement.clone().unwrap_or_else(|| "$1".into()),
        })
    }
}

fn first_set(config: &RelabelConfig) -> &'static str {
    if config.source_labels.is_some() {
        "source_labels"
    } else if config.target_label.is_some() {
        "target_label"
    } else if config.modulus.is_some() {
        "modulus"
    } else if config.separator.is_some() {
        "separator"
    } else {
        "replacement"
    }
}

/// Runs `rules` over `labels` in order; `false` when a rule dropped the
/// set (what is left in `labels` then means nothing).
pub fn apply(rules: &[Rule], labels: &mut LabelSet) -> bool {
    for rule in rules {
        if !rule.apply(labels) {
            return false;
        }
    }
    true
}

impl Rule {
    fn value(&self, labels: &LabelSet) -> String {
        let mut value = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                value.push_str(&self.separator);
            }
            if let Some(v) = labels.get(name) {
                value.push_str(v);
            }
        }
        value
    }

    fn apply(&self, labels: &mut LabelSet) -> bool {
        match self.action {
            Action::Replace => {
                let value = self.value(labels);
                let Some(captures) = self.regex.captures(&value) else {
                    return true;
                };
                let mut target = String::new();
                captures.expand(&self.target_label, &mut target);
                if !valid_label_name(&target) {
                    return true;
                }
                let mut result = String::new();
                captures.expand(&self.replacement, &mut result);
                if result.is_empty() {
                    labels.remove(&target);
                } else {
                    labels.insert(target, result);
                }
            }
            Action::Keep => return self.regex.is_match(&self.value(labels)),
            Action::Drop => return !self.regex.is_match(&self.value(labels)),
            Action::KeepEqual => {
                return labels
                    .get(&self.target_label)
                    .map(String::as_str)
                    .unwrap_or("")
                    == self.value(labels);
            }
            Action::DropEqual => {
                return labels
                    .get(&self.target_label)
                    .map(String::as_str)
                    .unwrap_or("")
                    != self.value(labels);
            }
            Action::HashMod => {
                let value = self.value(labels);
                let digest = Md5::digest(value.as_bytes());
                let mut low = [0u8; 8];
                low.copy_from_slice(&digest[8..16]);
                let hash = u64::from_be_bytes(low) % self.modulus;
                labels.insert(self.target_label.clone(), hash.to_string());
            }
            Action::LabelMap => {
                let mut added = Vec::new();
                for (name, value) in labels.iter() {
                    if let Some(captures) = self.regex.captures(name) {
                        let mut renamed = String::new();
                        captures.expand(&self.replacement, &mut renamed);
                        added.push((renamed, value.clone()));
                    }
                }
                labels.extend(added);
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
            Action::Lowercase => {
                let value = self.value(labels).to_lowercase();
                labels.insert(self.target_label.clone(), value);
            }
            Action::Uppercase => {
                let value = self.value(labels).to_uppercase();
                labels.insert(self.target_label.clone(), value);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
        configs.iter().map(|c| c.compile().unwrap()).collect()
    }

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replace_with_defaults_copies_a_label() {
        let mut labels = set(&[("__address__", "a:9100")]);
        assert!(apply(
            &rules("- source_labels: [__address__]\n  target_label: host\n"),
            &mut labels
        ));
        assert_eq!(labels["host"], "a:9100");
    }

    #[test]
    fn replace_expands_groups_in_the_target_and_the_value_and_deletes_on_empty() {
        let mut labels = set(&[("__address__", "db-1.example:9187"), ("env", "x")]);
        let ok = apply(
            &rules(
                "- source_labels: [__address__]\n  regex: '([^.]+)\\.example:(\\d+)'\n  target_label: host_${2}\n  replacement: '$1'\n\
                 - source_labels: [nothing]\n  target_label: env\n  replacement: ''\n\
                 - source_labels: [__address__]\n  regex: nomatch\n  target_label: never\n",
            ),
            &mut labels,
        );
        assert!(ok);
        assert_eq!(labels.get("host_9187").map(String::as_str), Some("db-1"));
        assert!(!labels.contains_key("env"), "an empty result deletes");
        assert!(!labels.contains_key("never"), "no match, no change");
    }

    #[test]
    fn keep_drop_and_their_equal_forms() {
        let keep = rules("- source_labels: [team]\n  regex: infra|db\n  action: keep\n");
        assert!(apply(&keep, &mut set(&[("team", "db")])));
        assert!(!apply(&keep, &mut set(&[("team", "web")])));
        assert!(
            !apply(&keep, &mut set(&[])),
            "a missing label is the empty string"
        );
        let drop = rules(
            "- source_labels: [team, env]\n  separator: '/'\n  regex: web/.*\n  action: drop\n",
        );
        assert!(!apply(&drop, &mut set(&[("team", "web"), ("env", "prod")])));
        assert!(apply(&drop, &mut set(&[("team", "db"), ("env", "prod")])));
        let keepequal = rules("- source_labels: [a]\n  target_label: b\n  action: keepequal\n");
        assert!(apply(&keepequal, &mut set(&[("a", "1"), ("b", "1")])));
        assert!(!apply(&keepequal, &mut set(&[("a", "1"), ("b", "2")])));
        let dropequal = rules("- source_labels: [a]\n  target_label: b\n  action: dropequal\n");
        assert!(!apply(&dropequal, &mut set(&[("a", "1"), ("b", "1")])));
        assert!(apply(&dropequal, &mut set(&[("a", "1"), ("b", "2")])));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus: the last 8 bytes of MD5("a:9100"), big-endian, mod 10.
        let digest = Md5::digest(b"a:9100");
        let expected = u64::from_be_bytes(digest[8..16].try_into().unwrap()) % 10;
        let mut labels = set(&[("__address__", "a:9100")]);
        apply(
            &rules(
                "- source_labels: [__address__]\n  modulus: 10\n  target_label: __tmp_hash\n  action: hashmod\n",
            ),
            &mut labels,
        );
        assert_eq!(labels["__tmp_hash"], expected.to_string());
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        let mut empty = set(&[]);
        apply(
            &rules(
                "- source_labels: [none]\n  modulus: 1000000\n  target_label: h\n  action: hashmod\n",
            ),
            &mut empty,
        );
        assert_eq!(empty["h"], (0xe9800998ecf8427e_u64 % 1_000_000).to_string());
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_and_case() {
        let mut labels = set(&[
            ("__meta_kubernetes_pod_label_app", "api"),
            ("__meta_kubernetes_pod_label_tier", "Front"),
            ("keep_me", "1"),
        ]);
        apply(
            &rules(
                "- regex: __meta_kubernetes_pod_label_(.+)\n  action: labelmap\n\
                 - source_labels: [tier]\n  target_label: tier_lower\n  action: lowercase\n\
                 - source_labels: [app]\n  target_label: APP\n  action: uppercase\n\
                 - regex: __meta_.*\n  action: labeldrop\n",
            ),
            &mut labels,
        );
        assert_eq!(
            labels,
            set(&[
                ("APP", "API"),
                ("app", "api"),
                ("keep_me", "1"),
                ("tier", "Front"),
                ("tier_lower", "front"),
            ])
        );
        apply(
            &rules("- regex: app|tier\n  action: labelkeep\n"),
            &mut labels,
        );
        assert_eq!(labels, set(&[("app", "api"), ("tier", "Front")]));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_key() {
        for (yaml, phrase) in [
            ("action: rewrite", "unknown relabel action"),
            ("regex: '('", "regex"),
            (
                "action: hashmod\ntarget_label: h\nsource_labels: [a]",
                "modulus",
            ),
            ("action: lowercase\nsource_labels: [a]", "target_label"),
            (
                "action: labeldrop\nregex: a\ntarget_label: b",
                "target_label",
            ),
            ("action: keep", "source_labels"),
            ("target_label: 'bad-name'", "target_label"),
            ("source_labels: ['1x']\ntarget_label: a", "source_labels"),
            (
                "action: keepequal\nsource_labels: [a]\ntarget_label: b\nregex: x",
                "regex",
            ),
        ] {
            let config: RelabelConfig = serde_yaml_ng::from_str(yaml).unwrap();
            let error = config.compile().unwrap_err();
            assert!(error.contains(phrase), "{yaml:?}: {error}");
        }
        assert!(serde_yaml_ng::from_str::<RelabelConfig>("regexp: a").is_err());
    }
}
