//! `Labels`: the sorted, de-duplicated label pairs that, with the metric name,
//! identify a series.
//!
//! Sorting once at construction makes equality, hashing and the series key
//! cheap and canonical: `{host="a",region="eu"}` and `{region="eu",host="a"}`
//! are the same series everywhere in the pipeline. Story: docs chapter 0.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Label pairs sorted by name, each name at most once.
///
/// An empty value means "no such label" (Prometheus' rule), so pairs with an
/// empty value are dropped at construction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// No labels.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order. When a name repeats, the
    /// last pair wins, as it does for a JSON object with a repeated key.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        // A sorted Vec, not a BTreeMap: series have a handful of labels, and
        // this runs for every sample every decoder produces.
        let mut labels: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        // Decoders usually hand names over sorted already: skip the sort.
        if !labels.windows(2).all(|w| w[0].0 < w[1].0) {
            labels.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal names keep their order
            // The last of equal names wins, in place: keep a pair only when
            // the next one has another name.
            let mut write = 0;
            for read in 0..labels.len() {
                let last_of_its_name =
                    read + 1 == labels.len() || labels[read + 1].0 != labels[read].0;
                if last_of_its_name {
                    labels.swap(write, read);
                    write += 1;
                }
            }
            labels.truncate(write);
        }
        labels.retain(|(_, v)| !v.is_empty());
        Labels(labels)
    }

    /// Builds a label set from pairs that are already what [`iter`](Self::iter)
    /// yields — sorted by name, names unique, values non-empty — without
    /// re-sorting (decoders of stored data use this). Pairs that are not
    /// take the [`from_pairs`](Self::from_pairs) path, so the result is
    /// always a valid label set.
    pub fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        let canonical =
            pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|(_, v)| !v.is_empty());
        if canonical {
            Labels(pairs)
        } else {
            Self::from_pairs(pairs)
        }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The pairs themselves, in name order, for a caller that builds a
    /// new set from them without copying their strings.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Prometheus' text form: `{host="a",region="eu"}`, or nothing when empty.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(Labels::from_pairs(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_sorted_keeps_canonical_pairs_and_fixes_others() {
        let sorted = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(
            Labels::from_sorted(sorted.clone()),
            Labels::from_pairs(sorted)
        );
        let messy = vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
            ("a".to_string(), "3".to_string()),
            ("c".to_string(), String::new()),
        ];
        assert_eq!(
            Labels::from_sorted(messy.clone()),
            Labels::from_pairs(messy)
        );
    }

    #[test]
    fn pairs_are_sorted_and_last_duplicate_wins() {
        let labels = Labels::from_pairs([("region", "eu"), ("host", "a"), ("host", "b")]);
        let pairs: Vec<_> = labels.iter().collect();
        assert_eq!(pairs, vec![("host", "b"), ("region", "eu")]);
        assert_eq!(labels.get("host"), Some("b"));
        assert_eq!(labels.get("zone"), None);
    }

    #[test]
    fn runs_of_duplicates_keep_their_last_value() {
        let labels = Labels::from_pairs([
            ("b", "x"),
            ("a", "1"),
            ("a", "2"),
            ("b", "y"),
            ("a", "3"),
            ("c", "z"),
        ]);
        let pairs: Vec<_> = labels.iter().collect();
        assert_eq!(pairs, vec![("a", "3"), ("b", "y"), ("c", "z")]);
    }

    #[test]
    fn empty_values_mean_absent() {
        let labels = Labels::from_pairs([("host", ""), ("region", "eu")]);
        assert_eq!(labels.len(), 1);
        assert_eq!(labels.get("host"), None);
    }

    #[test]
    fn order_of_construction_does_not_change_identity() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let b = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), r#"{a="1",b="2"}"#);
    }

    #[test]
    fn display_escapes_quotes_and_backslashes() {
        let labels = Labels::from_pairs([("path", "C:\\x \"y\"")]);
        assert_eq!(labels.to_string(), r#"{path="C:\\x \"y\""}"#);
    }
}
