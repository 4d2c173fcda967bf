//! The `index` file: every string once (symbols), every series with its
//! labels and chunk references (series), label pair → series ids
//! (postings), and a table of contents — plus [`BlockIndex`], the parsed
//! file, which answers selectors from those postings.
//!
//! The bottleneck it removes: a block's samples are useless if finding a
//! series means decoding the `chunks` file. The index is the block's
//! version of the head's inverted index (`crate::index`), made durable:
//! strings are stored once and referred to by number (a label like
//! `region="eu-west"` appears on thousands of series), each chunk is
//! described by its time range so a query skips the chunks it does not
//! need without reading them, and postings are stored ready to intersect
//! (docs chapter 3, "Blocks"; byte layout in `docs/src/formats/block.md`).
//!
//! ```text
//! header     "SCBI" · version 1
//! symbols    count · (length · UTF-8 bytes)×count, sorted, distinct · CRC32C
//! series     count · per series: label pairs (incl. __name__) as symbol
//!            refs · chunk count · first chunk offset · per chunk: min time,
//!            span, samples, length (delta varints) · CRC32C
//! postings   count · per (label, value): refs · id count · ids (deltas) · CRC32C
//! toc        offsets of the three sections (u64 LE ×3) · CRC32C
//! ```
//!
//! The reader distrusts every byte: the table of contents and each section
//! are checked against their CRC before a field is parsed; every count is
//! checked against the bytes left before anything is allocated by it;
//! every reference against the table it points into; chunk references
//! against the `chunks` file's size (they must tile it exactly); and the
//! postings against the series table (they must describe exactly the same
//! label pairs). A damaged index is an error at open, never a panic, a
//! huge allocation or a wrong answer later.

use std::collections::{BTreeMap, BTreeSet};

use common::{LabelMatcher, Labels, TimeRange};
use thiserror::Error;

use super::chunks_file::{CHUNKS_HEADER_LEN, MAX_CHUNK_BYTES, record_len};
use crate::chunk::MAX_SAMPLES_PER_CHUNK;
use crate::chunk::varint::{self, ByteReader};
use crate::index::Index;
use crate::index::SeriesId;

/// The file name inside a block directory.
pub const INDEX_FILE: &str = "index";

/// First four bytes of an `index` file.
pub const INDEX_MAGIC: [u8; 4] = *b"SCBI";

/// The `index` format this code writes and reads.
pub const INDEX_VERSION: u8 = 1;

const HEADER_LEN: usize = 5;
const CRC_LEN: usize = 4;
/// Three section offsets (u64) and their CRC.
const TOC_LEN: usize = 3 * 8 + CRC_LEN;

/// Least bytes one series entry can take: label count, one pair (two
/// refs), chunk count, first offset, one chunk (four varints). Used to
/// refuse a series count the section cannot hold before allocating for it.
const MIN_SERIES_BYTES: usize = 9;
/// Least bytes one postings entry can take: two refs, id count, one id.
const MIN_POSTINGS_BYTES: usize = 4;

/// Where one chunk is in the `chunks` file and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Earliest sample timestamp (inclusive).
    pub min_time: i64,
    /// Latest sample timestamp (inclusive).
    pub max_time: i64,
    /// Samples in the chunk.
    pub samples: u32,
    /// Byte offset of the chunk's record (its length varint) in `chunks`.
    pub offset: u64,
    /// Length of the chunk's bytes, without the record's length and CRC.
    pub data_len: u64,
}

impl ChunkMeta {
    /// Offset just past the chunk's record.
    pub fn end(&self) -> u64 {
        self.offset + record_len(self.data_len)
    }

    /// True when the chunk may hold a sample in `range`.
    pub fn overlaps(&self, range: TimeRange) -> bool {
        self.min_time <= range.end_ms && range.start_ms <= self.max_time
    }
}

/// One series of a block: its identity and its chunks, in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSeries {
    /// Metric name.
    pub name: String,
    /// Labels, without `__name__`.
    pub labels: Labels,
    /// Chunks in time order, contiguous in `chunks`.
    pub chunks: Vec<ChunkMeta>,
}

/// The `index` file contradicts its format.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("index {section}: {message}")]
pub struct IndexCorrupt {
    /// Which part of the file: `header`, `toc`, `symbols`, `series`, `postings`.
    pub section: &'static str,
    /// What was wrong.
    pub message: String,
}

fn corrupt(section: &'static str, message: impl Into<String>) -> IndexCorrupt {
    IndexCorrupt {
        section,
        message: message.into(),
    }
}

/// A parsed, validated `index` file.
#[derive(Debug, Default)]
pub struct BlockIndex {
    /// Sorted by (name, labels); a series' id is its position.
    series: Vec<IndexSeries>,
    /// Label name → value → ids, as read from the postings section, in
    /// the head's index type: the same matcher rules answer both.
    postings: Index,
}

/// A series' label pairs with `__name__` filed among them in name order —
/// the form the file stores and the postings are keyed by.
fn label_pairs<'a>(name: &'a str, labels: &'a Labels) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
    let at = pairs.partition_point(|(label, _)| *label < LabelMatcher::METRIC_NAME);
    pairs.insert(at, (LabelMatcher::METRIC_NAME, name));
    pairs
}

/// Appends `body` and its CRC to `out`, returning where the section starts.
fn put_section(out: &mut Vec<u8>, body: &[u8]) -> u64 {
    let offset = out.len() as u64;
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    offset
}

impl BlockIndex {
    /// Encodes the `index` file for `series`, which the writer has sorted by
    /// (name, labels), made unique, given at least one chunk each, and
    /// whose labels do not contain `__name__`. Chunk offsets are those of
    /// the `chunks` file written alongside.
    pub fn encode(series: &[IndexSeries]) -> Vec<u8> {
        let pairs: Vec<Vec<(&str, &str)>> = series
            .iter()
            .map(|s| label_pairs(&s.name, &s.labels))
            .collect();
        let symbols: Vec<&str> = pairs
            .iter()
            .flatten()
            .flat_map(|&(label, value)| [label, value])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Every string was collected above, so the search always succeeds.
        let symbol_ref = |s: &str| symbols.binary_search(&s).unwrap_or_default() as u64;

        let mut out = Vec::new();
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(INDEX_VERSION);

        let mut body = Vec::new();
        varint::put_uvarint(&mut body, symbols.len() as u64);
        for symbol in &symbols {
            varint::put_uvarint(&mut body, symbol.len() as u64);
            body.extend_from_slice(symbol.as_bytes());
        }
        let symbols_offset = put_section(&mut out, &body);

        body.clear();
        varint::put_uvarint(&mut body, series.len() as u64);
        for (entry, pairs) in series.iter().zip(&pairs) {
            varint::put_uvarint(&mut body, pairs.len() as u64);
            for &(label, value) in pairs {
                varint::put_uvarint(&mut body, symbol_ref(label));
                varint::put_uvarint(&mut body, symbol_ref(value));
            }
            varint::put_uvarint(&mut body, entry.chunks.len() as u64);
            varint::put_uvarint(&mut body, entry.chunks.first().map_or(0, |c| c.offset));
            let mut previous_max: Option<i64> = None;
            for chunk in &entry.chunks {
                match previous_max {
                    None => varint::put_varint(&mut body, chunk.min_time),
                    // Chunks do not overlap, so the gap is at least 1.
                    Some(max) => {
                        varint::put_uvarint(&mut body, chunk.min_time.wrapping_sub(max) as u64)
                    }
                }
                varint::put_uvarint(
                    &mut body,
                    chunk.max_time.wrapping_sub(chunk.min_time) as u64,
                );
                varint::put_uvarint(&mut body, u64::from(chunk.samples));
                varint::put_uvarint(&mut body, chunk.data_len);
                previous_max = Some(chunk.max_time);
            }
        }
        let series_offset = put_section(&mut out, &body);

        let mut postings: BTreeMap<(u64, u64), Vec<SeriesId>> = BTreeMap::new();
        for (id, pairs) in pairs.iter().enumerate() {
            for &(label, value) in pairs {
                postings
                    .entry((symbol_ref(label), symbol_ref(value)))
                    .or_default()
                    .push(id as SeriesId);
            }
        }
        body.clear();
        varint::put_uvarint(&mut body, postings.len() as u64);
        for ((label, value), ids) in &postings {
            varint::put_uvarint(&mut body, *label);
            varint::put_uvarint(&mut body, *value);
            varint::put_uvarint(&mut body, ids.len() as u64);
            let mut previous = None;
            for &id in ids {
                let delta = previous.map_or(id, |previous| id - previous);
                varint::put_uvarint(&mut body, u64::from(delta));
                previous = Some(id);
            }
        }
        let postings_offset = put_section(&mut out, &body);

        let mut toc = Vec::with_capacity(TOC_LEN);
        for offset in [symbols_offset, series_offset, postings_offset] {
            toc.extend_from_slice(&offset.to_le_bytes());
        }
        put_section(&mut out, &toc);
        out
    }

    /// Parses and validates an `index` file whose block's `chunks` file is
    /// `chunks_len` bytes long.
    ///
    /// # Errors
    /// [`IndexCorrupt`] naming the section and what was wrong.
    pub fn decode(bytes: &[u8], chunks_len: u64) -> Result<Self, IndexCorrupt> {
        if bytes.len() < HEADER_LEN + 3 * CRC_LEN + TOC_LEN {
            return Err(corrupt(
                "header",
                format!("file of {} bytes is too short", bytes.len()),
            ));
        }
        if bytes[..4] != INDEX_MAGIC {
            return Err(corrupt("header", "not an index file (bad magic)"));
        }
        if bytes[4] != INDEX_VERSION {
            return Err(corrupt(
                "header",
                format!(
                    "index format version {}, this build reads {INDEX_VERSION}",
                    bytes[4]
                ),
            ));
        }
        let toc_start = bytes.len() - TOC_LEN;
        let toc = checked_section(bytes, toc_start, bytes.len(), "toc")?;
        let offset_at = |at: usize| {
            let mut raw = [0; 8];
            raw.copy_from_slice(&toc[at..at + 8]);
            u64::from_le_bytes(raw)
        };
        let offsets = [offset_at(0), offset_at(8), offset_at(16)];
        // The sections tile the file: header, symbols, series, postings, toc.
        let bounds = [offsets[0], offsets[1], offsets[2], toc_start as u64];
        if offsets[0] != HEADER_LEN as u64
            || bounds
                .windows(2)
                .any(|w| w[1] < w[0].saturating_add(CRC_LEN as u64))
        {
            return Err(corrupt(
                "toc",
                format!(
                    "section offsets {offsets:?} do not tile a file of {} bytes",
                    bytes.len()
                ),
            ));
        }
        // All bounds are now ≤ toc_start, a usize.
        let at = |i: usize| bounds[i] as usize;
        let symbols_body = checked_section(bytes, at(0), at(1), "symbols")?;
        let series_body = checked_section(bytes, at(1), at(2), "series")?;
        let postings_body = checked_section(bytes, at(2), at(3), "postings")?;

        let symbols = decode_symbols(symbols_body)?;
        let series = decode_series(series_body, &symbols, chunks_len)?;
        let postings = decode_postings(postings_body, &symbols, &series)?;
        // Series count was checked to fit a SeriesId when decoding.
        let count = series.len() as SeriesId;
        Ok(Self {
            series,
            postings: Index::from_postings(postings, count),
        })
    }

    /// The series, sorted by (name, labels); a series' id is its position.
    pub fn series(&self) -> &[IndexSeries] {
        &self.series
    }

    /// The postings of `label=value`; empty when no series has it.
    pub fn postings(&self, label: &str, value: &str) -> &[SeriesId] {
        self.postings.postings(label, value)
    }

    /// Label names in use, sorted, `__name__` included.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    /// Values of `label`, sorted; empty for an unknown label.
    pub fn label_values(&self, label: &str) -> Vec<String> {
        self.postings.label_values(label)
    }

    /// Ids of the series matching every matcher, ascending — hence in
    /// (name, labels) order — by the head's rules (`crate::index`,
    /// Prometheus').
    pub fn select(&self, matchers: &[LabelMatcher]) -> Vec<SeriesId> {
        self.postings.select(matchers)
    }
}

/// `bytes[start..end]` without its trailing CRC, once the CRC matches.
fn checked_section<'a>(
    bytes: &'a [u8],
    start: usize,
    end: usize,
    section: &'static str,
) -> Result<&'a [u8], IndexCorrupt> {
    let body_end = end
        .checked_sub(CRC_LEN)
        .filter(|&body_end| start <= body_end && end <= bytes.len())
        .ok_or_else(|| corrupt(section, "section bounds outside the file"))?;
    let body = &bytes[start..body_end];
    let mut stored = [0; CRC_LEN];
    stored.copy_from_slice(&bytes[body_end..end]);
    let stored = u32::from_le_bytes(stored);
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Err(corrupt(
            section,
            format!("CRC mismatch (stored {stored:08x}, computed {actual:08x})"),
        ));
    }
    Ok(body)
}

/// A bounds-checked reader over one section, whose errors name it.
struct Cursor<'a> {
    reader: ByteReader<'a>,
    section: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], section: &'static str) -> Self {
        Self {
            reader: ByteReader::new(bytes),
            section,
        }
    }

    fn error(&self, message: impl Into<String>) -> IndexCorrupt {
        corrupt(self.section, message)
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, IndexCorrupt> {
        self.reader
            .read_uvarint()
            .map_err(|e| corrupt(self.section, format!("{what}: {e}")))
    }

    fn varint(&mut self, what: &str) -> Result<i64, IndexCorrupt> {
        self.reader
            .read_varint()
            .map_err(|e| corrupt(self.section, format!("{what}: {e}")))
    }

    /// A count of items taking at least `min_bytes_each` bytes each, refused
    /// when the rest of the section could not hold that many — so a damaged
    /// count can never size an allocation beyond the file.
    fn count(&mut self, what: &str, min_bytes_each: usize) -> Result<usize, IndexCorrupt> {
        let count = self.uvarint(what)?;
        let room = self.reader.rest().len() / min_bytes_each.max(1);
        usize::try_from(count)
            .ok()
            .filter(|&count| count <= room)
            .ok_or_else(|| {
                self.error(format!(
                    "{what} {count} cannot fit in the {} bytes left",
                    self.reader.rest().len()
                ))
            })
    }

    /// A reference into a table of `len` entries.
    fn reference(&mut self, what: &str, len: usize) -> Result<usize, IndexCorrupt> {
        let value = self.uvarint(what)?;
        usize::try_from(value)
            .ok()
            .filter(|&value| value < len)
            .ok_or_else(|| self.error(format!("{what} {value} outside a table of {len}")))
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], IndexCorrupt> {
        self.reader
            .take(len)
            .map_err(|_| self.error(format!("{what} runs past the section")))
    }

    fn finish(&self) -> Result<(), IndexCorrupt> {
        match self.reader.rest().len() {
            0 => Ok(()),
            left => Err(self.error(format!("{left} unexplained bytes at the end"))),
        }
    }
}

fn decode_symbols(body: &[u8]) -> Result<Vec<String>, IndexCorrupt> {
    let mut cursor = Cursor::new(body, "symbols");
    let count = cursor.count("symbol count", 1)?;
    let mut symbols: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let len = cursor.count("symbol length", 1)?;
        let raw = cursor.take(len, "symbol")?;
        let symbol = std::str::from_utf8(raw)
            .map_err(|_| cursor.error("symbol is not UTF-8"))?
            .to_string();
        // Strictly increasing: sorted (refs compare as strings do) and
        // distinct (one ref per string).
        if symbols.last().is_some_and(|last| *last >= symbol) {
            return Err(cursor.error("symbols not sorted and distinct"));
        }
        symbols.push(symbol);
    }
    cursor.finish()?;
    Ok(symbols)
}

fn decode_series(
    body: &[u8],
    symbols: &[String],
    chunks_len: u64,
) -> Result<Vec<IndexSeries>, IndexCorrupt> {
    let mut cursor = Cursor::new(body, "series");
    let count = cursor.count("series count", MIN_SERIES_BYTES)?;
    if count == 0 || count > SeriesId::MAX as usize {
        return Err(cursor.error(format!("series count {count}")));
    }
    let name_ref = symbols
        .binary_search_by(|s| s.as_str().cmp(LabelMatcher::METRIC_NAME))
        .map_err(|_| cursor.error("no __name__ symbol"))?;
    let mut series: Vec<IndexSeries> = Vec::with_capacity(count);
    // Chunk records must tile `chunks` exactly, series after series.
    let mut next_offset = CHUNKS_HEADER_LEN;
    for _ in 0..count {
        let pair_count = cursor.count("label count", 2)?;
        let mut name: Option<String> = None;
        let mut labels = Vec::with_capacity(pair_count);
        let mut previous_label: Option<usize> = None;
        for _ in 0..pair_count {
            let label = cursor.reference("label name ref", symbols.len())?;
            let value = cursor.reference("label value ref", symbols.len())?;
            if previous_label.is_some_and(|previous| previous >= label) {
                return Err(cursor.error("label names not sorted and distinct"));
            }
            previous_label = Some(label);
            if label == name_ref {
                name = Some(symbols[value].clone());
            } else if symbols[value].is_empty() {
                return Err(cursor.error(format!("label {} has an empty value", symbols[label])));
            } else {
                labels.push((symbols[label].clone(), symbols[value].clone()));
            }
        }
        let name = name.ok_or_else(|| cursor.error("series without __name__"))?;
        let labels = Labels::from_sorted(labels);

        let chunk_count = cursor.count("chunk count", 4)?;
        if chunk_count == 0 {
            return Err(cursor.error(format!("series {name}{labels} without chunks")));
        }
        let offset = cursor.uvarint("first chunk offset")?;
        if offset != next_offset {
            return Err(cursor.error(format!(
                "series {name}{labels} starts at {offset}, expected {next_offset}"
            )));
        }
        let mut chunks = Vec::with_capacity(chunk_count);
        let mut previous_max: Option<i64> = None;
        for _ in 0..chunk_count {
            let min_time = match previous_max {
                None => cursor.varint("chunk min time")?,
                Some(max) => {
                    let gap = cursor.uvarint("chunk time gap")?;
                    // A gap of 0 would make two chunks share a timestamp.
                    if gap == 0 {
                        return Err(cursor.error("chunks overlap in time"));
                    }
                    max.checked_add_unsigned(gap)
                        .ok_or_else(|| cursor.error("chunk min time overflows"))?
                }
            };
            let span = cursor.uvarint("chunk span")?;
            let max_time = min_time
                .checked_add_unsigned(span)
                .ok_or_else(|| cursor.error("chunk max time overflows"))?;
            let samples = cursor.uvarint("chunk sample count")?;
            if samples == 0 || samples > MAX_SAMPLES_PER_CHUNK as u64 {
                return Err(cursor.error(format!("chunk of {samples} samples")));
            }
            if span == 0 && samples != 1 {
                return Err(cursor.error("several samples at one timestamp"));
            }
            let data_len = cursor.uvarint("chunk length")?;
            // Two bytes at least: the encoding tag and the sample count.
            if !(2..=MAX_CHUNK_BYTES).contains(&data_len) {
                return Err(cursor.error(format!("chunk of {data_len} bytes")));
            }
            let chunk = ChunkMeta {
                min_time,
                max_time,
                samples: samples as u32,
                offset: next_offset,
                data_len,
            };
            if chunk.end() > chunks_len {
                return Err(cursor.error(format!(
                    "chunk at {} ends past the chunks file ({chunks_len} bytes)",
                    chunk.offset
                )));
            }
            next_offset = chunk.end();
            previous_max = Some(max_time);
            chunks.push(chunk);
        }
        let entry = IndexSeries {
            name,
            labels,
            chunks,
        };
        if let Some(previous) = series.last()
            && (&previous.name, &previous.labels) >= (&entry.name, &entry.labels)
        {
            return Err(cursor.error("series not sorted and distinct"));
        }
        series.push(entry);
    }
    if next_offset != chunks_len {
        return Err(cursor.error(format!(
            "chunks end at {next_offset}, the chunks file is {chunks_len} bytes"
        )));
    }
    cursor.finish()?;
    Ok(series)
}

fn decode_postings(
    body: &[u8],
    symbols: &[String],
    series: &[IndexSeries],
) -> Result<BTreeMap<String, BTreeMap<String, Vec<SeriesId>>>, IndexCorrupt> {
    let mut cursor = Cursor::new(body, "postings");
    let count = cursor.count("postings count", MIN_POSTINGS_BYTES)?;
    let mut postings: BTreeMap<String, BTreeMap<String, Vec<SeriesId>>> = BTreeMap::new();
    let mut previous_pair: Option<(usize, usize)> = None;
    let mut entries = 0usize;
    for _ in 0..count {
        let label = cursor.reference("postings label ref", symbols.len())?;
        let value = cursor.reference("postings value ref", symbols.len())?;
        if previous_pair.is_some_and(|previous| previous >= (label, value)) {
            return Err(cursor.error("postings not sorted and distinct"));
        }
        previous_pair = Some((label, value));
        let (label, value) = (&symbols[label], &symbols[value]);
        let id_count = cursor.count("postings length", 1)?;
        if id_count == 0 {
            return Err(cursor.error(format!("empty postings for {label}={value:?}")));
        }
        let mut ids: Vec<SeriesId> = Vec::with_capacity(id_count);
        for _ in 0..id_count {
            let delta = cursor.uvarint("series id")?;
            let id = match ids.last() {
                None => Some(delta),
                // Deltas of 0 would repeat an id.
                Some(&last) if delta > 0 => u64::from(last).checked_add(delta),
                Some(_) => None,
            }
            .filter(|&id| id < series.len() as u64)
            .ok_or_else(|| cursor.error(format!("bad series id in {label}={value:?}")))?;
            // Each posting must name a series that carries the pair: with
            // distinct pairs, distinct ids and the total checked below,
            // postings and series describe exactly the same labels.
            let entry = &series[id as usize];
            let carries = if label == LabelMatcher::METRIC_NAME {
                entry.name == *value
            } else {
                entry.labels.get(label) == Some(value.as_str())
            };
            if !carries {
                return Err(cursor.error(format!(
                    "postings of {label}={value:?} list series {}{} which lacks it",
                    entry.name, entry.labels
                )));
            }
            ids.push(id as SeriesId);
        }
        entries += ids.len();
        postings
            .entry(label.clone())
            .or_default()
            .insert(value.clone(), ids);
    }
    cursor.finish()?;
    let expected: usize = series.iter().map(|s| 1 + s.labels.len()).sum();
    if entries != expected {
        return Err(cursor.error(format!(
            "{entries} postings entries for {expected} label pairs"
        )));
    }
    Ok(postings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::MatchOp;

    fn chunk(offset: u64, min_time: i64, max_time: i64, samples: u32) -> ChunkMeta {
        ChunkMeta {
            min_time,
            max_time,
            samples,
            offset,
            data_len: 10,
        }
    }

    /// Two series over a pretend chunks file of three 15-byte records.
    fn series() -> Vec<IndexSeries> {
        let start = CHUNKS_HEADER_LEN;
        let step = record_len(10);
        vec![
            IndexSeries {
                name: "cpu".into(),
                labels: Labels::from_pairs([("host", "a"), ("Zone", "x")]),
                chunks: vec![chunk(start, -10, 5, 3), chunk(start + step, 6, 6, 1)],
            },
            IndexSeries {
                name: "mem".into(),
                labels: Labels::empty(),
                chunks: vec![chunk(start + 2 * step, i64::MIN, i64::MAX, 2)],
            },
        ]
    }

    fn chunks_len() -> u64 {
        CHUNKS_HEADER_LEN + 3 * record_len(10)
    }

    #[test]
    fn encoded_index_decodes_to_the_same_series_and_postings() {
        let series = series();
        let bytes = BlockIndex::encode(&series);
        let index = BlockIndex::decode(&bytes, chunks_len()).expect("valid");
        assert_eq!(index.series(), series.as_slice());
        assert_eq!(index.label_names(), vec!["Zone", "__name__", "host"]);
        assert_eq!(index.label_values("__name__"), vec!["cpu", "mem"]);
        assert_eq!(index.postings("host", "a"), &[0]);
        assert_eq!(index.select(&[]), vec![0, 1]);
        let not_a = LabelMatcher::new("host", MatchOp::NotEqual, "a").expect("valid");
        assert_eq!(index.select(&[not_a]), vec![1]);
    }

    #[test]
    fn chunks_must_tile_the_chunks_file() {
        let bytes = BlockIndex::encode(&series());
        assert!(BlockIndex::decode(&bytes, chunks_len() + 1).is_err());
        assert!(BlockIndex::decode(&bytes, chunks_len() - 1).is_err());
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_an_error() {
        let bytes = BlockIndex::encode(&series());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x41;
            assert!(
                BlockIndex::decode(&damaged, chunks_len()).is_err(),
                "flip at {at}"
            );
            assert!(
                BlockIndex::decode(&bytes[..at], chunks_len()).is_err(),
                "cut at {at}"
            );
        }
    }

    /// A body with a valid CRC but nonsense inside: the parser's own checks,
    /// not the CRC, must refuse it.
    fn with_series_body(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(INDEX_VERSION);
        let mut symbols = Vec::new();
        varint::put_uvarint(&mut symbols, 1);
        varint::put_uvarint(&mut symbols, 8);
        symbols.extend_from_slice(b"__name__");
        let a = put_section(&mut out, &symbols);
        let b = put_section(&mut out, body);
        let c = put_section(&mut out, &[0]);
        let mut toc = Vec::new();
        for offset in [a, b, c] {
            toc.extend_from_slice(&offset.to_le_bytes());
        }
        put_section(&mut out, &toc);
        out
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut body = Vec::new();
        varint::put_uvarint(&mut body, u64::MAX);
        let error = BlockIndex::decode(&with_series_body(&body), 5).expect_err("refused");
        assert_eq!(error.section, "series");
        let mut body = Vec::new();
        varint::put_uvarint(&mut body, 1);
        varint::put_uvarint(&mut body, 1 << 40); // label count
        body.extend_from_slice(&[0; 16]);
        let error = BlockIndex::decode(&with_series_body(&body), 5).expect_err("refused");
        assert!(error.message.contains("label count"), "{error}");
    }
}
