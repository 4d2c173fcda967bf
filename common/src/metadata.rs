//! What a metric *is*, beside its samples: its type (counter, gauge,
//! histogram, …), its help text and its unit — the `# TYPE`, `# HELP` and
//! `# UNIT` lines of an exposition, and the `metadata` a Prometheus sends
//! in each remote_write request (every minute by default).
//!
//! It does not travel with samples: a write path that carries it records
//! it here ([`crate::Ingress::metadata`]), and whoever answers
//! `/api/v1/metadata` reads it (Grafana's metric browser shows the help
//! text and picks `rate()` for a counter from the type). One registry per
//! running pipeline, in memory: a sender repeats its metadata, so a
//! restart forgets it for at most one send interval, as Prometheus itself
//! forgets a target's metadata until the next scrape.
//!
//! Bounded: at most [`MAX_FAMILIES`] metric families and
//! [`MAX_ENTRIES_PER_FAMILY`] distinct entries each (different targets may
//! describe one name differently, which Prometheus' API shows as a list).
//! What does not fit is counted, not stored ([`MetadataRegistry::refused`]).
//! Docs chapter 4, "Speaking Prometheus".

use std::collections::BTreeMap;

use parking_lot::RwLock;

/// Most metric families kept.
pub const MAX_FAMILIES: usize = 100_000;

/// Most distinct descriptions kept per family; a new one replaces the
/// oldest.
pub const MAX_ENTRIES_PER_FAMILY: usize = 8;

/// Longest help text kept, in bytes; longer ones are cut at a character
/// boundary.
pub const MAX_HELP_BYTES: usize = 4_096;

/// A metric family's type, as the exposition formats name it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram`
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info`
    Info,
    /// `stateset`
    Stateset,
    /// `unknown` (or untyped): what a family without a `TYPE` is.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name `/api/v1/metadata` answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::Stateset => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// A type from its exposition name (`untyped` is `unknown`); `None`
    /// for a word that is no type.
    pub fn parse(text: &str) -> Option<MetricType> {
        Some(match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::Stateset,
            "unknown" | "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// One description of a metric family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    /// Its type.
    pub metric_type: MetricType,
    /// The help text ("" when none was given).
    pub help: String,
    /// The unit ("" when none was given).
    pub unit: String,
}

/// The metadata heard so far, by metric family name. Safe to share between
/// threads; reads do not block each other.
#[derive(Debug, Default)]
pub struct MetadataRegistry {
    families: RwLock<BTreeMap<String, Vec<MetricMetadata>>>,
    refused: std::sync::atomic::AtomicU64,
}

impl MetadataRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        MetadataRegistry::default()
    }

    /// Records descriptions, each `(family name, metadata)`. An entry
    /// already known changes nothing (the common case: a sender repeats
    /// itself every minute), so the write lock is taken only for news.
    /// An empty family name is skipped.
    pub fn record(&self, entries: impl IntoIterator<Item = (String, MetricMetadata)>) {
        let news: Vec<(String, MetricMetadata)> = {
            let families = self.families.read();
            entries
                .into_iter()
                .filter(|(family, _)| !family.is_empty())
                .map(|(family, mut entry)| {
                    cut_to_boundary(&mut entry.help, MAX_HELP_BYTES);
                    (family, entry)
                })
                .filter(|(family, entry)| {
                    families
                        .get(family)
                        .is_none_or(|known| !known.contains(entry))
                })
                .collect()
        };
        if news.is_empty() {
            return;
        }
        let mut families = self.families.write();
        for (family, entry) in news {
            let room = families.len() < MAX_FAMILIES;
            match families.get_mut(&family) {
                Some(known) if known.contains(&entry) => {}
                Some(known) => {
                    if known.len() >= MAX_ENTRIES_PER_FAMILY {
                        known.remove(0);
                    }
                    known.push(entry);
                }
                None if room => {
                    families.insert(family, vec![entry]);
                }
                None => {
                    self.refused
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// The descriptions of `family`, or of every family when `None`, in
    /// name order: at most `limit` families (all when `None`) and
    /// `limit_per_metric` entries each.
    pub fn snapshot(
        &self,
        family: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
    ) -> Vec<(String, Vec<MetricMetadata>)> {
        let families = self.families.read();
        let per = limit_per_metric.unwrap_or(usize::MAX);
        let pick = |(name, entries): (&String, &Vec<MetricMetadata>)| {
            (name.clone(), entries.iter().take(per).cloned().collect())
        };
        match family {
            Some(name) => families.get_key_value(name).map(pick).into_iter().collect(),
            None => families
                .iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(pick)
                .collect(),
        }
    }

    /// How many families are known.
    pub fn len(&self) -> usize {
        self.families.read().len()
    }

    /// Whether nothing is known yet.
    pub fn is_empty(&self) -> bool {
        self.families.read().is_empty()
    }

    /// Descriptions not kept because [`MAX_FAMILIES`] was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Shortens `text` to at most `max` bytes without splitting a character.
fn cut_to_boundary(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(metric_type: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata {
            metric_type,
            help: help.to_string(),
            unit: String::new(),
        }
    }

    #[test]
    fn repeats_change_nothing_and_differences_are_listed() {
        let registry = MetadataRegistry::new();
        let up = || ("up".to_string(), entry(MetricType::Gauge, "1 if up"));
        registry.record([up(), up()]);
        registry.record([up()]);
        registry.record([("up".to_string(), entry(MetricType::Gauge, "other help"))]);
        registry.record([(String::new(), entry(MetricType::Counter, "no name"))]);
        let all = registry.snapshot(None, None, None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.len(), 2, "two distinct descriptions of up");
        assert_eq!(registry.snapshot(None, None, Some(1))[0].1.len(), 1);
        assert!(registry.snapshot(Some("down"), None, None).is_empty());
        assert_eq!(registry.snapshot(Some("up"), None, None)[0].0, "up");
    }

    #[test]
    fn bounded_per_family_and_in_help_length() {
        let registry = MetadataRegistry::new();
        for i in 0..(MAX_ENTRIES_PER_FAMILY + 3) {
            registry.record([(
                "x".to_string(),
                entry(MetricType::Counter, &format!("help {i}")),
            )]);
        }
        let kept = &registry.snapshot(Some("x"), None, None)[0].1;
        assert_eq!(kept.len(), MAX_ENTRIES_PER_FAMILY);
        assert_eq!(
            kept.last().unwrap().help,
            format!("help {}", MAX_ENTRIES_PER_FAMILY + 2)
        );
        registry.record([(
            "long".to_string(),
            entry(MetricType::Gauge, &"é".repeat(3_000)),
        )]);
        let help = &registry.snapshot(Some("long"), None, None)[0].1[0].help;
        assert!(help.len() <= MAX_HELP_BYTES && help.chars().all(|c| c == 'é'));
    }

    #[test]
    fn types_read_as_the_exposition_names_them() {
        for t in [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::Stateset,
            MetricType::Unknown,
        ] {
            assert_eq!(MetricType::parse(t.as_str()), Some(t));
        }
        assert_eq!(MetricType::parse("untyped"), Some(MetricType::Unknown));
        assert_eq!(MetricType::parse("Counter"), None);
    }
}
