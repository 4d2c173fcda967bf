//! The inverted index: label name → value → postings (sorted series ids),
//! the metric name filed as the label `__name__`, and selectors answered by
//! intersecting and merging postings instead of scanning series.
//!
//! The bottleneck it removes: without it, `select` has to test every
//! series' labels against every matcher. With it, `=` is one map lookup and
//! the other operators touch only the values of the one label they name
//! (docs chapter 3, "The inverted index"; set operations in `postings.rs`).
//!
//! Matchers follow Prometheus exactly, with `common::LabelMatcher` doing the
//! value test (its regexes are anchored, `^(?:re)$`, as Prometheus'):
//!
//! - a matcher that does **not** match `""` selects the union of the
//!   postings of the values it matches (`host="a"`, `host=~"a|b"`);
//! - a matcher that **does** match `""` (`host!="a"`, `host=""`,
//!   `host=~".*"`, `host!~"a"`) also selects every series *without* the
//!   label — a missing label has the value `""` — so it is answered as
//!   "all series minus the union of the values it rejects".
//!
//! Positive matchers are intersected first (smallest result first), then
//! the negative ones are subtracted; a selector with no positive matcher
//! starts from all series, as Prometheus' `PostingsForMatchers` does.

pub mod postings;

use std::collections::BTreeMap;

use common::{LabelMatcher, Labels, MatchOp};

pub use postings::SeriesId;

/// Label name → value → series ids carrying that pair.
#[derive(Debug, Default)]
pub struct Index {
    labels: BTreeMap<String, BTreeMap<String, Vec<SeriesId>>>,
    all: Vec<SeriesId>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files series `id` under `__name__=name` and each of its labels. Ids
    /// must arrive in increasing order (the head assigns them so); an id not
    /// above the last one is ignored, which keeps every list sorted.
    pub fn add(&mut self, id: SeriesId, name: &str, labels: &Labels) {
        if self.all.last().is_some_and(|&last| last >= id) {
            return;
        }
        self.all.push(id);
        self.file(LabelMatcher::METRIC_NAME, name, id);
        for (label, value) in labels.iter() {
            // `common` reads `__name__` as the metric name; a label of that
            // name would contradict it, so it is not indexed.
            if label != LabelMatcher::METRIC_NAME {
                self.file(label, value, id);
            }
        }
    }

    fn file(&mut self, label: &str, value: &str, id: SeriesId) {
        let values = match self.labels.get_mut(label) {
            Some(values) => values,
            None => self.labels.entry(label.to_string()).or_default(),
        };
        match values.get_mut(value) {
            Some(list) => list.push(id),
            None => {
                values.insert(value.to_string(), vec![id]);
            }
        }
    }

    /// Series indexed.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// True before the first series.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// An index over postings read from elsewhere (a block's index file),
    /// series ids `0..series`. Every list must be sorted (the block reader
    /// checks that before it calls this).
    pub fn from_postings(
        labels: BTreeMap<String, BTreeMap<String, Vec<SeriesId>>>,
        series: SeriesId,
    ) -> Self {
        Self {
            labels,
            all: (0..series).collect(),
        }
    }

    /// Every series id, ascending.
    pub fn all(&self) -> &[SeriesId] {
        &self.all
    }

    /// The postings of `label=value`; empty when no series has it.
    pub fn postings(&self, label: &str, value: &str) -> &[SeriesId] {
        self.labels
            .get(label)
            .and_then(|values| values.get(value))
            .map_or(&[], Vec::as_slice)
    }

    /// Label names in use, sorted (`__name__` once any series exists).
    pub fn label_names(&self) -> Vec<String> {
        self.labels.keys().cloned().collect()
    }

    /// Values of `label`, sorted; empty for an unknown label.
    pub fn label_values(&self, label: &str) -> Vec<String> {
        self.labels
            .get(label)
            .map(|values| values.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Series ids matching every matcher, ascending. No matcher at all
    /// selects every series.
    pub fn select(&self, matchers: &[LabelMatcher]) -> Vec<SeriesId> {
        let mut positive: Vec<Vec<SeriesId>> = Vec::new();
        let mut negative: Vec<Vec<SeriesId>> = Vec::new();
        for matcher in matchers {
            if matcher.matches_value("") {
                negative.push(self.rejected_by(matcher));
            } else {
                positive.push(self.accepted_by(matcher));
            }
        }
        positive.sort_by_key(Vec::len);
        let mut result = match positive.split_first() {
            Some((first, rest)) => rest
                .iter()
                .fold(first.clone(), |acc, list| postings::intersect(&acc, list)),
            None => self.all.clone(),
        };
        for list in &negative {
            if result.is_empty() {
                break;
            }
            result = postings::difference(&result, list);
        }
        result
    }

    /// Union of the postings of the values `matcher` accepts (for a matcher
    /// that rejects `""`, so series without the label are not among them).
    fn accepted_by(&self, matcher: &LabelMatcher) -> Vec<SeriesId> {
        if matcher.op == MatchOp::Equal {
            return self.postings(&matcher.name, &matcher.value).to_vec();
        }
        self.union_where(&matcher.name, |value| matcher.matches_value(value))
    }

    /// Union of the postings of the values `matcher` rejects (for a matcher
    /// that accepts `""`: everything else, labelless series included, passes).
    fn rejected_by(&self, matcher: &LabelMatcher) -> Vec<SeriesId> {
        if matcher.op == MatchOp::NotEqual {
            return self.postings(&matcher.name, &matcher.value).to_vec();
        }
        self.union_where(&matcher.name, |value| !matcher.matches_value(value))
    }

    /// Union of the postings of label `name`'s values that `keep` accepts.
    fn union_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<SeriesId> {
        let Some(values) = self.labels.get(name) else {
            return Vec::new();
        };
        postings::union_all(
            values
                .iter()
                .filter(|(value, _)| keep(value))
                .map(|(_, list)| list.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0: cpu{host=a,region=eu} 1: cpu{host=b,region=us} 2: cpu{}
    /// 3: mem{host=a} 4: mem{host=c,region=eu}
    fn index() -> Index {
        let mut index = Index::new();
        let series: [(&str, &[(&str, &str)]); 5] = [
            ("cpu", &[("host", "a"), ("region", "eu")]),
            ("cpu", &[("host", "b"), ("region", "us")]),
            ("cpu", &[]),
            ("mem", &[("host", "a")]),
            ("mem", &[("host", "c"), ("region", "eu")]),
        ];
        for (id, (name, labels)) in series.iter().enumerate() {
            index.add(
                id as SeriesId,
                name,
                &Labels::from_pairs(labels.iter().copied()),
            );
        }
        index
    }

    fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, value).expect("valid matcher")
    }

    fn ids(index: &Index, matchers: &[LabelMatcher]) -> Vec<SeriesId> {
        index.select(matchers)
    }

    #[test]
    fn equal_intersects_postings() {
        let index = index();
        assert_eq!(ids(&index, &[m("host", MatchOp::Equal, "a")]), vec![0, 3]);
        assert_eq!(
            ids(
                &index,
                &[
                    LabelMatcher::metric_name("cpu"),
                    m("host", MatchOp::Equal, "a")
                ]
            ),
            vec![0]
        );
        assert!(ids(&index, &[m("host", MatchOp::Equal, "zzz")]).is_empty());
        assert!(ids(&index, &[LabelMatcher::metric_name("nothing")]).is_empty());
    }

    #[test]
    fn not_equal_keeps_series_without_the_label() {
        let index = index();
        assert_eq!(
            ids(
                &index,
                &[
                    LabelMatcher::metric_name("cpu"),
                    m("host", MatchOp::NotEqual, "a")
                ]
            ),
            vec![1, 2]
        );
        assert_eq!(
            ids(&index, &[m("region", MatchOp::NotEqual, "eu")]),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn regex_is_anchored_and_merges_values() {
        let index = index();
        assert_eq!(
            ids(&index, &[m("host", MatchOp::Regex, "a|b")]),
            vec![0, 1, 3]
        );
        assert!(
            ids(&index, &[m("region", MatchOp::Regex, "e")]).is_empty(),
            "anchored"
        );
        assert_eq!(
            ids(&index, &[m("region", MatchOp::Regex, "e.")]),
            vec![0, 4]
        );
        assert_eq!(
            ids(&index, &[m("__name__", MatchOp::Regex, "c.*")]),
            vec![0, 1, 2]
        );
        // `.+` does not match "": the labelless series stays out.
        assert_eq!(
            ids(
                &index,
                &[
                    LabelMatcher::metric_name("cpu"),
                    m("host", MatchOp::Regex, ".+")
                ]
            ),
            vec![0, 1]
        );
    }

    #[test]
    fn not_regex_keeps_series_without_the_label() {
        let index = index();
        assert_eq!(
            ids(
                &index,
                &[
                    LabelMatcher::metric_name("cpu"),
                    m("host", MatchOp::NotRegex, "a|b")
                ]
            ),
            vec![2]
        );
        assert_eq!(
            ids(&index, &[m("host", MatchOp::NotRegex, "a")]),
            vec![1, 2, 4]
        );
        // `!~ ".+"` accepts only "": exactly the series lacking the label.
        assert_eq!(
            ids(&index, &[m("region", MatchOp::NotRegex, ".+")]),
            vec![2, 3]
        );
    }

    #[test]
    fn matchers_accepting_empty_select_series_lacking_the_label() {
        let index = index();
        // `=""` means "has no such label".
        assert_eq!(ids(&index, &[m("region", MatchOp::Equal, "")]), vec![2, 3]);
        // `=~"eu|"` matches "" too: eu series plus the ones without region.
        assert_eq!(
            ids(&index, &[m("region", MatchOp::Regex, "eu|")]),
            vec![0, 2, 3, 4]
        );
        // `=~".*"` matches everything, labelled or not.
        assert_eq!(
            ids(&index, &[m("nolabel", MatchOp::Regex, ".*")]),
            vec![0, 1, 2, 3, 4]
        );
        // An unknown label with `!=` matches every series.
        assert_eq!(
            ids(&index, &[m("nolabel", MatchOp::NotEqual, "x")]).len(),
            5
        );
        // An unknown label with `=~` that rejects "" matches none.
        assert!(ids(&index, &[m("nolabel", MatchOp::Regex, "x")]).is_empty());
        // No matcher: all series.
        assert_eq!(ids(&index, &[]).len(), 5);
    }

    #[test]
    fn label_listings_are_sorted() {
        let index = index();
        assert_eq!(index.label_names(), vec!["__name__", "host", "region"]);
        assert_eq!(index.label_values("host"), vec!["a", "b", "c"]);
        assert_eq!(index.label_values("__name__"), vec!["cpu", "mem"]);
        assert!(index.label_values("nope").is_empty());
        assert!(Index::new().label_names().is_empty());
    }

    #[test]
    fn ids_out_of_order_are_ignored() {
        let mut index = index();
        index.add(1, "late", &Labels::empty());
        assert!(index.postings("__name__", "late").is_empty());
        assert_eq!(index.len(), 5);
    }
}
