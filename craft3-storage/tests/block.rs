//! Blocks on real files: what is written is read back bit for bit,
//! selectors and time ranges answer as the head's do, the directory dance
//! (`.tmp`, rename, refusal to overwrite) holds, compaction merges with the
//! newer block winning, and damage to any of a block's three files is an
//! error — never a panic, never a wrong sample. Chapter 3, "Blocks".

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use common::{LabelMatcher, Labels, MatchOp, TimeRange, matches_all};
use craft3_storage::block::chunks_file::CHUNKS_FILE;
use craft3_storage::block::index_file::INDEX_FILE;
use craft3_storage::block::meta::META_FILE;
use craft3_storage::block::{Block, BlockError, BlockIndex};
use craft3_storage::chunk::{SAMPLES_PER_CHUNK, Sample};
use craft3_storage::head::SeriesSamples;
use craft3_storage::{compact, write_block};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BASE: i64 = 1_700_000_000_000;

/// A value the codecs must get exactly right: specials, decimal gauges,
/// irrational noise.
fn value(rng: &mut StdRng, i: usize) -> f64 {
    match rng.gen_range(0..20) {
        0 => f64::NAN,
        1 => f64::from_bits(0x7ff8_0000_dead_beef), // NaN with a payload
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => -0.0,
        5..=12 => f64::from(rng.gen_range(0..10_000)) / 100.0,
        13..=16 => (i as f64).sqrt() * rng.r#gen::<f64>(),
        _ => f64::from_bits(rng.r#gen()),
    }
}

/// `series` series of `samples` samples each, named `cpu`/`mem`/`disk`
/// with `host` and (mostly) `region` labels, at irregular timestamps that
/// start at `start` (some series before the epoch).
fn dataset(seed: u64, series: usize, samples: usize, start: i64) -> Vec<SeriesSamples> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..series)
        .map(|s| {
            let name = ["cpu", "mem", "disk"][s % 3];
            let mut pairs = vec![("host".to_string(), format!("host-{:02}", s / 3))];
            if s % 4 != 3 {
                pairs.push(("region".into(), ["eu", "us"][s % 2].into()));
            }
            let mut ts = start + rng.gen_range(0..1_000) - if s % 7 == 0 { 50_000_000 } else { 0 };
            let samples = (0..samples)
                .map(|i| {
                    ts += match rng.gen_range(0..10) {
                        0 => rng.gen_range(1..5),               // bursts
                        1 => rng.gen_range(100_000..5_000_000), // gaps
                        _ => 10_000 + rng.gen_range(-500..500), // jittered scrape
                    };
                    Sample::new(ts, value(&mut rng, i))
                })
                .collect();
            SeriesSamples {
                name: name.into(),
                labels: Labels::from_pairs(pairs),
                samples,
            }
        })
        .collect()
}

fn sorted(mut series: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    series.retain(|s| !s.samples.is_empty());
    series.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    series
}

/// What a selector over `series` must return: the brute-force answer.
fn expected(
    series: &[SeriesSamples],
    matchers: &[LabelMatcher],
    range: TimeRange,
) -> Vec<SeriesSamples> {
    sorted(
        series
            .iter()
            .filter(|s| matches_all(matchers, &s.name, &s.labels))
            .map(|s| SeriesSamples {
                name: s.name.clone(),
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|x| range.contains(x.timestamp_ms))
                    .collect(),
            })
            .collect(),
    )
}

/// Equal names, labels, timestamps and value bits.
fn assert_same(actual: &[SeriesSamples], expected: &[SeriesSamples], context: &str) {
    assert_eq!(actual.len(), expected.len(), "{context}: series count");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!((&a.name, &a.labels), (&e.name, &e.labels), "{context}");
        assert!(
            Sample::same_bits(&a.samples, &e.samples),
            "{context}: samples of {}{} differ",
            a.name,
            a.labels
        );
    }
}

fn same(actual: &[SeriesSamples], expected: &[SeriesSamples]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| {
            (&a.name, &a.labels) == (&e.name, &e.labels)
                && Sample::same_bits(&a.samples, &e.samples)
        })
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).expect("valid matcher")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_keeps_every_sample_bit_exact() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = dataset(1, 50, 1000, BASE);
    let meta =
        write_block(parent.path(), "b1", 3, 1, vec!["b1".into()], data.clone()).expect("written");

    assert_eq!(entries(parent.path()), vec!["b1"]);
    assert_eq!(
        entries(&parent.path().join("b1")),
        vec![CHUNKS_FILE, INDEX_FILE, META_FILE]
    );
    assert_eq!(meta.stats.series, 50);
    assert_eq!(meta.stats.samples, 50_000);
    assert_eq!(
        meta.stats.chunks,
        50 * 1000_u64.div_ceil(SAMPLES_PER_CHUNK as u64)
    );
    let all: Vec<Sample> = data
        .iter()
        .flat_map(|s| s.samples.iter().copied())
        .collect();
    assert_eq!(
        meta.min_time,
        all.iter().map(|s| s.timestamp_ms).min().expect("some")
    );
    assert_eq!(
        meta.max_time,
        all.iter().map(|s| s.timestamp_ms).max().expect("some")
    );
    // Compressed: far below the 16 bytes a raw sample takes.
    assert!(meta.stats.bytes < 50_000 * 16, "{} bytes", meta.stats.bytes);

    let block = Block::open(&parent.path().join("b1")).expect("opens");
    assert_eq!(block.meta(), &meta);
    assert_eq!(block.series_count(), 50);
    assert_eq!(block.dir(), parent.path().join("b1"));
    let read = block.all_series().expect("readable");
    assert_same(&read, &sorted(data), "all series");
}

#[test]
fn select_answers_each_matcher_op_like_a_scan() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = dataset(2, 24, 300, BASE);
    write_block(parent.path(), "b", 1, 1, vec![], data.clone()).expect("written");
    let block = Block::open(&parent.path().join("b")).expect("opens");
    let selectors: Vec<Vec<LabelMatcher>> = vec![
        vec![],
        vec![LabelMatcher::metric_name("cpu")],
        vec![LabelMatcher::metric_name("nothing")],
        vec![m("host", MatchOp::Equal, "host-01")],
        vec![
            LabelMatcher::metric_name("mem"),
            m("region", MatchOp::NotEqual, "eu"),
        ],
        vec![m("host", MatchOp::Regex, "host-0[1-3]")],
        vec![m("host", MatchOp::Regex, "host")], // anchored: matches nothing
        vec![
            m("__name__", MatchOp::Regex, "cpu|disk"),
            m("region", MatchOp::NotRegex, "us"),
        ],
        vec![m("region", MatchOp::Equal, "")], // series without region
        vec![m("region", MatchOp::Regex, "eu|")], // eu, or without region
        vec![m("region", MatchOp::NotEqual, "")], // has a region
        vec![m("region", MatchOp::Regex, ".*")], // everything
        vec![m("nolabel", MatchOp::NotEqual, "x")],
        vec![m("nolabel", MatchOp::Regex, "x")],
        vec![
            m("__name__", MatchOp::NotEqual, "cpu"),
            m("host", MatchOp::Regex, ".+"),
        ],
    ];
    let ranges = [
        TimeRange::ALL,
        TimeRange::new(BASE, BASE + 600_000),
        TimeRange::new(BASE + 1_000_000, BASE + 30_000_000),
        TimeRange::new(i64::MIN, BASE - 1),
    ];
    for matchers in &selectors {
        for range in ranges {
            let context = format!("{matchers:?} over {range:?}");
            let got = block.select(matchers, range).expect("select");
            assert_same(&got, &expected(&data, matchers, range), &context);
        }
    }
}

#[test]
fn time_ranges_are_inclusive_at_both_ends() {
    let parent = tempfile::tempdir().expect("tempdir");
    let samples: Vec<Sample> = (0..400)
        .map(|i| Sample::new(1_000 + i * 10, i as f64))
        .collect();
    let series = vec![SeriesSamples {
        name: "up".into(),
        labels: Labels::empty(),
        samples,
    }];
    write_block(parent.path(), "b", 1, 1, vec![], series).expect("written");
    let block = Block::open(&parent.path().join("b")).expect("opens");
    let count = |start, end| -> usize {
        block
            .select(&[], TimeRange::new(start, end))
            .expect("select")
            .iter()
            .map(|s| s.samples.len())
            .sum()
    };
    assert_eq!(count(1_000, 1_000), 1, "one instant, the first sample");
    assert_eq!(count(4_990, 4_990), 1, "the last sample");
    assert_eq!(count(1_000, 1_020), 3, "both ends included");
    assert_eq!(count(2_191, 2_199), 0, "between two chunks' samples");
    assert_eq!(count(2_190, 2_200), 2, "across a chunk boundary");
    assert_eq!(count(0, 999), 0);
    assert_eq!(count(4_991, i64::MAX), 0);
    assert_eq!(count(3_000, 2_000), 0, "inverted range");
    assert!(
        block
            .select(&[], TimeRange::new(0, 999))
            .expect("select")
            .is_empty()
    );
}

#[test]
fn chunks_outside_the_range_are_never_read() {
    let parent = tempfile::tempdir().expect("tempdir");
    let samples: Vec<Sample> = (0..600).map(|i| Sample::new(i * 10, 1.5)).collect();
    let series = vec![SeriesSamples {
        name: "up".into(),
        labels: Labels::empty(),
        samples,
    }];
    write_block(parent.path(), "b", 1, 1, vec![], series).expect("written");
    // Damage the first chunk (its bytes start after the 5-byte header and
    // the 1-byte length): a query that prunes it must still succeed.
    let chunks = parent.path().join("b").join(CHUNKS_FILE);
    let mut bytes = fs::read(&chunks).expect("readable");
    bytes[10] ^= 0xff;
    fs::write(&chunks, &bytes).expect("writable");
    let block = Block::open(&parent.path().join("b")).expect("damage in chunks shows on read");
    let later = block
        .select(&[], TimeRange::new(3_000, 5_990))
        .expect("pruned");
    assert_eq!(later[0].samples.len(), 300);
    assert!(matches!(
        block.select(&[], TimeRange::new(0, 10)),
        Err(BlockError::Corrupt { .. })
    ));
}

#[test]
fn label_names_and_values_are_sorted() {
    let parent = tempfile::tempdir().expect("tempdir");
    write_block(parent.path(), "b", 1, 1, vec![], dataset(3, 12, 10, BASE)).expect("written");
    let block = Block::open(&parent.path().join("b")).expect("opens");
    assert_eq!(block.label_names(), vec!["__name__", "host", "region"]);
    assert_eq!(block.label_values("__name__"), vec!["cpu", "disk", "mem"]);
    assert_eq!(block.label_values("region"), vec!["eu", "us"]);
    assert_eq!(block.label_values("host").len(), 4);
    assert!(block.label_values("nope").is_empty());
}

#[test]
fn an_existing_target_is_refused_and_a_stale_tmp_is_cleared() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = dataset(4, 3, 10, BASE);
    write_block(parent.path(), "b", 1, 1, vec![], data.clone()).expect("written");
    let again = write_block(parent.path(), "b", 2, 1, vec![], data.clone());
    assert!(
        matches!(again, Err(BlockError::AlreadyExists { .. })),
        "{again:?}"
    );
    fs::create_dir(parent.path().join("empty")).expect("mkdir");
    let over_empty = write_block(parent.path(), "empty", 2, 1, vec![], data.clone());
    assert!(matches!(over_empty, Err(BlockError::AlreadyExists { .. })));

    // A crash mid-write left `c.tmp` behind: the next write of `c` clears it.
    let stale = parent.path().join("c.tmp");
    fs::create_dir(&stale).expect("mkdir");
    fs::write(stale.join(CHUNKS_FILE), b"half a block").expect("write");
    write_block(parent.path(), "c", 3, 1, vec![], data).expect("written over a stale tmp");
    assert_eq!(entries(parent.path()), vec!["b", "c", "empty"]);
    Block::open(&parent.path().join("c")).expect("opens");
}

#[test]
fn a_tmp_directory_is_never_opened_as_a_block() {
    let parent = tempfile::tempdir().expect("tempdir");
    write_block(parent.path(), "b", 1, 1, vec![], dataset(5, 3, 10, BASE)).expect("written");
    assert!(
        entries(parent.path())
            .iter()
            .all(|name| !name.ends_with(".tmp"))
    );
    // Even complete, a block under its `.tmp` name is refused: the meta's
    // id names the final directory.
    let copy = parent.path().join("b.tmp");
    fs::create_dir(&copy).expect("mkdir");
    for file in [CHUNKS_FILE, INDEX_FILE, META_FILE] {
        fs::copy(parent.path().join("b").join(file), copy.join(file)).expect("copy");
    }
    assert!(matches!(
        Block::open(&copy),
        Err(BlockError::Corrupt { .. })
    ));
    // Without meta.json (written last) a directory is no block at all.
    fs::remove_file(copy.join(META_FILE)).expect("rm");
    assert!(matches!(Block::open(&copy), Err(BlockError::Io { .. })));
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let parent = tempfile::tempdir().expect("tempdir");
    let series = |name: &str, labels: Labels, ts: &[i64]| SeriesSamples {
        name: name.into(),
        labels,
        samples: ts.iter().map(|&t| Sample::new(t, 1.0)).collect(),
    };
    let write = |series: Vec<SeriesSamples>| write_block(parent.path(), "b", 1, 1, vec![], series);

    let unordered = write(vec![series("up", Labels::empty(), &[1, 3, 2])]);
    assert!(
        matches!(unordered, Err(BlockError::InvalidSeries { .. })),
        "{unordered:?}"
    );
    let repeated = write(vec![series("up", Labels::empty(), &[1, 1])]);
    assert!(matches!(repeated, Err(BlockError::InvalidSeries { .. })));
    let twice = write(vec![
        series("up", Labels::empty(), &[1]),
        series("up", Labels::empty(), &[2]),
    ]);
    assert!(matches!(twice, Err(BlockError::InvalidSeries { .. })));
    let named = write(vec![series(
        "up",
        Labels::from_pairs([("__name__", "x")]),
        &[1],
    )]);
    assert!(matches!(named, Err(BlockError::InvalidSeries { .. })));
    assert!(matches!(write(vec![]), Err(BlockError::Empty)));
    assert!(matches!(
        write(vec![series("up", Labels::empty(), &[])]),
        Err(BlockError::Empty)
    ));
    for id in ["", ".", "..", "a/b", "x.tmp"] {
        let result = write_block(parent.path(), id, 1, 1, vec![], dataset(6, 1, 3, BASE));
        assert!(
            matches!(result, Err(BlockError::InvalidArgument(_))),
            "{id:?}"
        );
    }
    assert!(entries(parent.path()).is_empty());

    // Empty series are dropped, the rest written.
    let meta = write(vec![
        series("up", Labels::empty(), &[5]),
        series("down", Labels::empty(), &[]),
    ])
    .expect("written");
    assert_eq!(meta.stats.series, 1);
}

/// The reference merge: inputs applied oldest sequence first, later inputs
/// winning ties, so the newest value of each timestamp survives.
fn merge_by_sequence(inputs: &[(u64, Vec<SeriesSamples>)]) -> Vec<SeriesSamples> {
    let mut ranked: Vec<&(u64, Vec<SeriesSamples>)> = inputs.iter().collect();
    ranked.sort_by_key(|(sequence, _)| *sequence);
    let mut merged: BTreeMap<(String, Labels), BTreeMap<i64, f64>> = BTreeMap::new();
    for (_, series) in ranked {
        for s in series {
            let samples = merged
                .entry((s.name.clone(), s.labels.clone()))
                .or_default();
            for sample in &s.samples {
                samples.insert(sample.timestamp_ms, sample.value);
            }
        }
    }
    merged
        .into_iter()
        .map(|((name, labels), samples)| SeriesSamples {
            name,
            labels,
            samples: samples
                .into_iter()
                .map(|(t, v)| Sample::new(t, v))
                .collect(),
        })
        .filter(|s| !s.samples.is_empty())
        .collect()
}

#[test]
fn compaction_merges_inputs_and_the_newer_sequence_wins() {
    let parent = tempfile::tempdir().expect("tempdir");
    // Overlapping series and time ranges, and a third block that repeats
    // every third timestamp of four of the first block's series with the
    // value -1.0 and the highest sequence.
    let first = dataset(7, 9, 400, BASE);
    let second = dataset(8, 12, 400, BASE + 2_000_000);
    let overwrite: Vec<SeriesSamples> = first
        .iter()
        .take(4)
        .map(|s| SeriesSamples {
            name: s.name.clone(),
            labels: s.labels.clone(),
            samples: s
                .samples
                .iter()
                .step_by(3)
                .map(|x| Sample::new(x.timestamp_ms, -1.0))
                .collect(),
        })
        .collect();
    let blocks = [(5, "a", first), (9, "c", overwrite), (6, "b", second)];
    let mut opened = Vec::new();
    for (sequence, id, data) in &blocks {
        write_block(
            parent.path(),
            id,
            *sequence,
            1,
            vec![id.to_string()],
            data.clone(),
        )
        .expect("written");
        opened.push(Block::open(&parent.path().join(id)).expect("opens"));
    }
    let inputs: Vec<&Block> = opened.iter().collect();
    let meta = compact(&inputs, parent.path(), "abc", 9).expect("compacted");
    assert_eq!(meta.compaction.level, 2);
    assert_eq!(meta.compaction.sources, vec!["a", "b", "c"]);
    assert_eq!(meta.sequence, 9);
    let compacted = Block::open(&parent.path().join("abc")).expect("opens");

    let reference: Vec<(u64, Vec<SeriesSamples>)> =
        blocks.iter().map(|(s, _, d)| (*s, d.clone())).collect();
    assert_same(
        &compacted.all_series().expect("read"),
        &merge_by_sequence(&reference),
        "all",
    );
    // The overwriting block's -1.0 won where it had a sample.
    let overwritten = compacted.all_series().expect("read")[0].samples.clone();
    assert!(overwritten.iter().filter(|s| s.value == -1.0).count() >= 100);

    // The compacted block answers every selector as the merge of the
    // inputs' answers does.
    for matchers in [
        vec![LabelMatcher::metric_name("cpu")],
        vec![m("region", MatchOp::NotEqual, "us")],
    ] {
        for range in [
            TimeRange::ALL,
            TimeRange::new(BASE + 1_000_000, BASE + 3_000_000),
        ] {
            let per_input: Vec<(u64, Vec<SeriesSamples>)> = opened
                .iter()
                .map(|b| {
                    (
                        b.meta().sequence,
                        b.select(&matchers, range).expect("select"),
                    )
                })
                .collect();
            assert_same(
                &compacted.select(&matchers, range).expect("select"),
                &merge_by_sequence(&per_input),
                &format!("{matchers:?} {range:?}"),
            );
        }
    }

    // Compacting compacted blocks climbs a level and flattens sources.
    let again = compact(&[&compacted, &opened[0]], parent.path(), "abc2", 9).expect("compacted");
    assert_eq!(again.compaction.level, 3);
    assert_eq!(again.compaction.sources, vec!["a", "b", "c"]);
    assert!(matches!(
        compact(&[], parent.path(), "none", 1),
        Err(BlockError::Empty)
    ));
    // Inputs are left in place for the caller to swap.
    assert_eq!(entries(parent.path()), vec!["a", "abc", "abc2", "b", "c"]);
}

#[test]
fn equal_sequences_let_the_later_input_win() {
    let parent = tempfile::tempdir().expect("tempdir");
    let one = |id: &str, value: f64| {
        let series = vec![SeriesSamples {
            name: "up".into(),
            labels: Labels::empty(),
            samples: vec![Sample::new(1, value)],
        }];
        write_block(parent.path(), id, 4, 1, vec![], series).expect("written");
        Block::open(&parent.path().join(id)).expect("opens")
    };
    let (x, y) = (one("x", 1.0), one("y", 2.0));
    compact(&[&x, &y], parent.path(), "xy", 4).expect("compacted");
    let merged = Block::open(&parent.path().join("xy")).expect("opens");
    assert_eq!(merged.all_series().expect("read")[0].samples[0].value, 2.0);
    // Sourceless inputs count as their own sources.
    assert_eq!(merged.meta().compaction.sources, vec!["x", "y"]);
}

#[test]
fn damage_to_any_file_is_an_error_never_a_panic_or_a_wrong_sample() {
    let parent = tempfile::tempdir().expect("tempdir");
    let data = sorted(dataset(9, 8, 500, BASE));
    write_block(parent.path(), "b", 1, 1, vec![], data.clone()).expect("written");
    let dir = parent.path().join("b");
    let originals: Vec<(&str, Vec<u8>)> = [CHUNKS_FILE, INDEX_FILE, META_FILE]
        .into_iter()
        .map(|name| (name, fs::read(dir.join(name)).expect("readable")))
        .collect();

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut errors = 0;
    for round in 0..120 {
        let (name, original) = &originals[round % 3];
        let mut damaged = original.clone();
        let what = if rng.gen_bool(0.5) {
            let at = rng.gen_range(0..damaged.len());
            damaged[at] ^= rng.gen_range(1..=255u8);
            format!("{name}: byte {at} flipped")
        } else {
            let len = rng.gen_range(0..damaged.len());
            damaged.truncate(len);
            format!("{name}: cut to {len} bytes")
        };
        fs::write(dir.join(name), &damaged).expect("writable");

        let outcome = Block::open(&dir).and_then(|block| block.all_series());
        match outcome {
            Err(BlockError::Corrupt { .. } | BlockError::Io { .. }) => errors += 1,
            Err(other) => panic!("{what}: unexpected error kind {other}"),
            // `chunks` and `index` are covered by CRCs byte for byte: any
            // damage must be found. `meta.json` has no checksum; a flipped
            // digit of, say, its sequence may go unnoticed, but the samples
            // it serves must still be the right ones.
            Ok(read) => {
                assert_eq!(*name, META_FILE, "{what}: damage went unnoticed");
                assert!(same(&read, &data), "{what}: wrong samples");
            }
        }
        fs::write(dir.join(name), original).expect("restored");
    }
    assert!(errors >= 100, "only {errors} of 120 rounds failed");
    // Restored, it reads as written.
    assert_same(
        &Block::open(&dir)
            .expect("opens")
            .all_series()
            .expect("read"),
        &data,
        "restored",
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let parent = tempfile::tempdir().expect("tempdir");
    write_block(parent.path(), "b", 1, 1, vec![], dataset(10, 2, 5, BASE)).expect("written");
    let dir = parent.path().join("b");
    for name in [CHUNKS_FILE, INDEX_FILE, META_FILE] {
        let bytes = fs::read(dir.join(name)).expect("readable");
        fs::remove_file(dir.join(name)).expect("rm");
        assert!(
            matches!(Block::open(&dir), Err(BlockError::Io { .. })),
            "{name}"
        );
        fs::write(dir.join(name), bytes).expect("restored");
    }
}

#[test]
fn one_block_serves_many_query_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Block>();

    let parent = tempfile::tempdir().expect("tempdir");
    let data = dataset(11, 12, 300, BASE);
    write_block(parent.path(), "b", 1, 1, vec![], data.clone()).expect("written");
    let block = Arc::new(Block::open(&parent.path().join("b")).expect("opens"));
    let threads: Vec<_> = ["cpu", "mem", "disk", "cpu"]
        .into_iter()
        .map(|name| {
            let block = Arc::clone(&block);
            std::thread::spawn(move || {
                block.select(&[LabelMatcher::metric_name(name)], TimeRange::ALL)
            })
        })
        .collect();
    for (thread, name) in threads.into_iter().zip(["cpu", "mem", "disk", "cpu"]) {
        let got = thread.join().expect("no panic").expect("select");
        assert_same(
            &got,
            &expected(&data, &[LabelMatcher::metric_name(name)], TimeRange::ALL),
            name,
        );
    }
}

/// A valid index (and its chunks file's length) to damage, written once.
fn sample_index() -> &'static (Vec<u8>, u64) {
    static INDEX: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let parent = tempfile::tempdir().expect("tempdir");
        write_block(parent.path(), "b", 1, 1, vec![], dataset(12, 6, 250, BASE)).expect("written");
        let dir = parent.path().join("b");
        let index = fs::read(dir.join(INDEX_FILE)).expect("readable");
        let chunks_len = fs::metadata(dir.join(CHUNKS_FILE)).expect("stat").len();
        (index, chunks_len)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any edit to a valid index — bytes changed, inserted, removed, the
    /// file cut — is refused, and parsing never panics.
    #[test]
    fn index_parsing_refuses_every_edit(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..4),
    ) {
        let (original, chunks_len) = sample_index();
        let mut bytes = original.clone();
        for (at, kind, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] ^= byte | 1,
                1 => bytes.insert(at, byte),
                2 => { bytes.remove(at); }
                _ => bytes.truncate(at),
            }
        }
        prop_assume!(bytes != *original);
        prop_assert!(BlockIndex::decode(&bytes, *chunks_len).is_err());
    }

    /// Arbitrary bytes behind a valid header parse to an error, not a panic
    /// or an allocation sized by garbage.
    #[test]
    fn index_parsing_survives_garbage(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"SCBI\x01".to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(BlockIndex::decode(&bytes, 1 << 20).is_err());
    }
}
