//! `Db` end to end on real files: the conformance suite (reopen included),
//! persist → blocks → WAL checkpoint, compaction and retention keeping
//! query results identical to a reference, newest write winning across
//! head and blocks, the clean-up of interrupted swaps at open, and the
//! series limit. Chapter 3, "Blocks, compaction, retention".

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::testkit::storage;
use common::{LabelMatcher, Labels, MatchOp, Metric, TimeRange};
use craft3_storage::db::{Db, DbConfig, DbError};
use craft3_storage::{HeadConfig, Sample};

const HOUR: i64 = 3_600_000;

/// No background thread: tests call `maintain` themselves.
fn manual() -> DbConfig {
    DbConfig {
        maintenance_interval: None,
        ..DbConfig::default()
    }
}

#[test]
fn conformance() {
    storage::run_all(&|dir| Arc::new(Db::open(dir, manual()).expect("open")));
}

#[test]
fn conformance_with_a_background_thread() {
    storage::run_all(&|dir| {
        let config = DbConfig {
            maintenance_interval: Some(std::time::Duration::from_millis(5)),
            block_range_ms: 1_000,
            compaction_ranges_ms: vec![3_000],
            ..DbConfig::default()
        };
        Arc::new(Db::open(dir, config).expect("open"))
    });
}

type Reference = BTreeMap<(String, String), BTreeMap<i64, f64>>;

fn metric(name: &str, host: &str, value: f64, t: i64) -> Metric {
    Metric::new(name, value, t).with_labels(Labels::from_pairs([("host", host)]))
}

/// `hours` of 10 s samples for `hosts` hosts of `cpu` and `mem`, in
/// batches of one timestamp, mirrored into `reference`.
fn load(db: &Db, reference: &mut Reference, from_h: i64, hours: i64, hosts: usize) {
    for t in (from_h * HOUR..(from_h + hours) * HOUR).step_by(10_000) {
        let batch: Vec<Metric> = (0..hosts)
            .flat_map(|h| {
                let host = format!("h{h}");
                let v = ((t / 10_000) % 97) as f64 / 10.0 + h as f64;
                [metric("cpu", &host, v, t), metric("mem", &host, v * 2.0, t)]
            })
            .collect();
        for m in &batch {
            reference
                .entry((m.name.clone(), m.labels.get("host").unwrap_or("").into()))
                .or_default()
                .insert(m.timestamp_ms, m.value);
        }
        db.append(&batch).expect("append");
    }
}

fn check(db: &Db, reference: &Reference, range: TimeRange) {
    let got = db
        .select(
            &[LabelMatcher::new("__name__", MatchOp::Regex, "cpu|mem").expect("regex")],
            range,
        )
        .expect("select");
    let expected: Vec<_> = reference
        .iter()
        .map(|(key, samples)| {
            let samples: Vec<(i64, f64)> = samples
                .range(range.start_ms..=range.end_ms)
                .map(|(t, v)| (*t, *v))
                .collect();
            (key.clone(), samples)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let got: Vec<_> = got
        .into_iter()
        .map(|s| {
            let key = (
                s.name.clone(),
                s.labels.get("host").unwrap_or("").to_string(),
            );
            let samples: Vec<(i64, f64)> = s
                .samples
                .iter()
                .map(|x| (x.timestamp_ms, x.value))
                .collect();
            (key, samples)
        })
        .collect();
    // The index-only listing names at least every series select found (at
    // chunk granularity it may name more), and exactly those over all time.
    let matchers = [LabelMatcher::new("__name__", MatchOp::Regex, "cpu|mem").expect("regex")];
    let listed: Vec<(String, String)> = db
        .series(&matchers, range)
        .into_iter()
        .map(|k| (k.name, k.labels.get("host").unwrap_or("").to_string()))
        .collect();
    for (key, _) in &got {
        assert!(listed.contains(key), "series() misses {key:?} in {range:?}");
    }
    let everything: Vec<(String, String)> = db
        .series(&matchers, TimeRange::ALL)
        .into_iter()
        .map(|k| (k.name, k.labels.get("host").unwrap_or("").to_string()))
        .collect();
    let all_keys: Vec<(String, String)> = reference.keys().cloned().collect();
    assert_eq!(everything, all_keys, "series() over all time");
    assert_eq!(got.len(), expected.len(), "series count");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        assert!(g.1 == e.1, "samples of {:?} differ in {range:?}", g.0);
    }
}

fn wal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_head_is_persisted_into_blocks_and_the_wal_checkpointed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::new();
    {
        let db = Db::open(dir.path(), manual()).expect("open");
        load(&db, &mut reference, 0, 7, 5);
        db.maintain().expect("maintain");
        let blocks = db.blocks();
        // 7 h in the head: [0,2h) and [2h,4h) are cut; the rest spans
        // 3 h − 10 s, under 1.5 ranges, and stays.
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0].min_time, 0);
        assert_eq!(blocks[0].max_time, 2 * HOUR - 10_000);
        assert_eq!(blocks[0].stats.series, 10);
        assert_eq!(blocks[0].stats.samples, 10 * 720);
        let (min, _) = db.head().time_bounds().expect("head has data");
        assert_eq!(min, 4 * HOUR);
        let files = wal_files(dir.path());
        assert!(
            files.iter().any(|f| f.starts_with("checkpoint.")),
            "{files:?}"
        );
        assert!(files.len() <= 3, "old segments deleted: {files:?}");
        check(&db, &reference, TimeRange::ALL);
        check(&db, &reference, TimeRange::new(HOUR + 5_000, 4 * HOUR));
    }
    let db = Db::open(dir.path(), manual()).expect("reopen");
    assert_eq!(db.blocks().len(), 2);
    assert_eq!(
        db.stats().replay.samples,
        10 * 1080,
        "only [4h,7h) replayed"
    );
    check(&db, &reference, TimeRange::ALL);
    assert_eq!(
        db.label_values("host"),
        (0..5).map(|h| format!("h{h}")).collect::<Vec<_>>()
    );
    assert_eq!(db.label_values("__name__"), vec!["cpu", "mem"]);
    assert_eq!(db.label_names(), vec!["__name__", "host"]);
}

#[test]
fn compaction_and_retention_keep_answers_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DbConfig {
        block_range_ms: HOUR,
        compaction_ranges_ms: vec![3 * HOUR, 9 * HOUR],
        ..manual()
    };
    let db = Db::open(dir.path(), config.clone()).expect("open");
    let mut reference = Reference::new();
    load(&db, &mut reference, 0, 24, 3);
    let before = db
        .select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
        .expect("select");
    db.maintain().expect("maintain");
    let stats = db.stats();
    assert!(stats.compactions >= 3, "{stats:?}");
    let levels: Vec<u32> = db.blocks().iter().map(|b| b.compaction.level).collect();
    assert!(levels.iter().any(|&l| l >= 3), "{levels:?}");
    let after = db
        .select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
        .expect("select");
    assert_eq!(before, after, "compaction changes no answer");
    check(&db, &reference, TimeRange::ALL);
    for (from, to) in [(0, 1), (2, 11), (17, 23)] {
        check(&db, &reference, TimeRange::new(from * HOUR, to * HOUR - 1));
    }
    drop(db);
    // Retention of 6 h: blocks that end before (newest − 6 h) go.
    let db = Db::open(
        dir.path(),
        DbConfig {
            retention_ms: Some(6 * HOUR),
            ..config
        },
    )
    .expect("reopen");
    db.maintain().expect("retention");
    assert!(db.stats().retention_deleted >= 1);
    let newest = 24 * HOUR - 10_000;
    for block in db.blocks() {
        assert!(block.max_time >= newest - 6 * HOUR, "{block:?}");
    }
    let got = db
        .select(
            &[LabelMatcher::metric_name("cpu")],
            TimeRange::new(newest - 6 * HOUR, newest),
        )
        .expect("select");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].samples.len(), 6 * 360 + 1);
}

#[test]
fn a_sample_from_the_far_future_does_not_expire_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DbConfig {
        block_range_ms: HOUR,
        compaction_ranges_ms: vec![3 * HOUR],
        retention_ms: Some(24 * HOUR),
        ..manual()
    };
    let db = Db::open(dir.path(), config).expect("open");
    // Recent data (the last 6 hours of wall-clock time), cut into blocks.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let start = now - 6 * HOUR;
    let batch: Vec<Metric> = (0..360)
        .map(|i| metric("cpu", "a", i as f64, start + i * 60_000))
        .collect();
    db.append(&batch).expect("append");
    db.persist_before(now - HOUR).expect("persist");
    assert!(!db.blocks().is_empty());
    // A client whose clock says 2100.
    db.append(&[metric("cpu", "a", 1.0, 4_102_444_800_000)])
        .expect("append");
    db.maintain().expect("retention");
    assert_eq!(db.stats().retention_deleted, 0, "{:?}", db.blocks());
    let got = db
        .select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
        .expect("select");
    assert_eq!(got[0].samples.len(), 361);
}

#[test]
fn the_newest_write_wins_across_head_blocks_compaction_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DbConfig {
        block_range_ms: HOUR,
        compaction_ranges_ms: vec![3 * HOUR],
        ..manual()
    };
    let db = Db::open(dir.path(), config.clone()).expect("open");
    let mut reference = Reference::new();
    load(&db, &mut reference, 0, 4, 2);
    db.maintain().expect("maintain");
    assert!(!db.blocks().is_empty());
    // Rewrite persisted samples: they go to the head and win there…
    let rewrites = [
        metric("cpu", "h0", -1.0, 600_000),
        metric("cpu", "h1", -2.0, HOUR + 20_000),
    ];
    db.append(&rewrites).expect("rewrite");
    for m in &rewrites {
        reference
            .get_mut(&(
                m.name.clone(),
                m.labels.get("host").unwrap_or("").to_string(),
            ))
            .expect("series")
            .insert(m.timestamp_ms, m.value);
    }
    check(&db, &reference, TimeRange::ALL);
    // …then in an overlapping block of a higher sequence…
    assert!(db.persist_before(2 * HOUR).expect("persist"));
    check(&db, &reference, TimeRange::ALL);
    // …then in the block compaction merges the overlap into…
    db.maintain().expect("compact");
    check(&db, &reference, TimeRange::ALL);
    drop(db);
    // …and after a restart.
    let db = Db::open(dir.path(), config).expect("reopen");
    check(&db, &reference, TimeRange::ALL);
}

#[test]
fn interrupted_swaps_are_cleaned_up_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DbConfig {
        block_range_ms: HOUR,
        compaction_ranges_ms: vec![3 * HOUR],
        ..manual()
    };
    let mut reference = Reference::new();
    let blocks_dir = dir.path().join("blocks");
    {
        let db = Db::open(dir.path(), config.clone()).expect("open");
        load(&db, &mut reference, 0, 3, 2);
        // Persist three 1 h blocks without compacting them.
        for h in 1..=3 {
            db.persist_before(h * HOUR).expect("persist");
        }
        assert_eq!(db.blocks().len(), 3);
    }
    // Keep copies of the three inputs, let compaction run, then put the
    // inputs back: a crash between the swap and the deletion.
    let copies = tempfile::tempdir().expect("tempdir");
    let inputs: Vec<String> = std::fs::read_dir(&blocks_dir)
        .expect("blocks")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for id in &inputs {
        copy_dir(&blocks_dir.join(id), &copies.path().join(id));
    }
    {
        let db = Db::open(dir.path(), config.clone()).expect("open");
        db.maintain().expect("compact");
        assert_eq!(db.blocks().len(), 1);
    }
    for id in &inputs {
        copy_dir(&copies.path().join(id), &blocks_dir.join(id));
    }
    // And a half-written block and a half-deleted one.
    std::fs::create_dir_all(blocks_dir.join("00000000000000ff.tmp")).expect("tmp");
    std::fs::write(blocks_dir.join("00000000000000ff.tmp/chunks"), b"half").expect("half");
    std::fs::create_dir_all(blocks_dir.join("0000000000000001.deleted")).expect("deleted");
    let db = Db::open(dir.path(), config).expect("reopen");
    assert_eq!(db.blocks().len(), 1, "obsolete inputs dropped");
    let left: Vec<String> = std::fs::read_dir(&blocks_dir)
        .expect("blocks")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    check(&db, &reference, TimeRange::ALL);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn the_series_limit_refuses_new_series_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        DbConfig {
            head: HeadConfig {
                series_limit: 2,
                ..HeadConfig::default()
            },
            ..manual()
        },
    )
    .expect("open");
    db.append(&[metric("cpu", "a", 1.0, 1), metric("cpu", "b", 2.0, 1)])
        .expect("within the limit");
    let batch = [metric("cpu", "c", 3.0, 1), metric("cpu", "a", 4.0, 2)];
    let error = db.append(&batch).expect_err("c is refused");
    assert!(
        matches!(error, DbError::Refused { refused: 1, .. }),
        "{error}"
    );
    let message = common::StorageError::from(error).to_string();
    assert!(message.contains("series limit of 2"), "{message}");
    assert!(message.contains("cpu{host=\"c\"}"), "{message}");
    let got = db
        .select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
        .expect("select");
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].samples,
        vec![Sample::new(1, 1.0), Sample::new(2, 4.0)]
    );
    drop(db);
    let db = Db::open(dir.path(), manual()).expect("reopen");
    assert_eq!(
        db.select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
            .expect("select")
            .len(),
        2
    );
}

#[test]
fn bad_configurations_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (config, needle) in [
        (
            DbConfig {
                block_range_ms: 0,
                ..manual()
            },
            "block range",
        ),
        (
            DbConfig {
                compaction_ranges_ms: vec![5 * HOUR],
                ..manual()
            },
            "compaction range 18000000",
        ),
        (
            DbConfig {
                retention_ms: Some(-1),
                ..manual()
            },
            "retention",
        ),
    ] {
        let error = Db::open(dir.path(), config).expect_err("invalid");
        assert!(error.to_string().contains(needle), "{error}");
    }
}

#[test]
fn concurrent_reads_during_persist_and_compaction_see_every_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DbConfig {
        block_range_ms: HOUR,
        compaction_ranges_ms: vec![3 * HOUR],
        maintenance_interval: Some(std::time::Duration::from_millis(1)),
        ..DbConfig::default()
    };
    let db = Arc::new(Db::open(dir.path(), config).expect("open"));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One series; the reader checks that the prefix written so far is all
    // there, whatever the background thread is moving at that moment.
    let written = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let reader = {
        let (db, done, written) = (db.clone(), done.clone(), written.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let upto = written.load(std::sync::atomic::Ordering::Acquire);
                if upto < 0 {
                    continue;
                }
                let got = db
                    .select(
                        &[LabelMatcher::metric_name("cpu")],
                        TimeRange::new(0, upto * 10_000),
                    )
                    .expect("select");
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].samples.len() as i64, upto + 1, "no sample missing");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..(12 * 360) {
        db.append(&[metric("cpu", "a", i as f64, i * 10_000)])
            .expect("append");
        written.store(i, std::sync::atomic::Ordering::Release);
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let reads = reader.join().expect("reader");
    assert!(reads > 0);
    db.maintain().expect("maintain");
    assert!(db.stats().persisted >= 1 || !db.blocks().is_empty());
    assert!(db.last_error().is_none(), "{:?}", db.last_error());
}

/// Removes what a deletion removes from the reference.
fn delete_in_reference(
    reference: &mut Reference,
    name: &str,
    host: Option<&str>,
    range: TimeRange,
) {
    for ((n, h), samples) in reference.iter_mut() {
        if n == name && host.is_none_or(|want| want == h) {
            samples.retain(|t, _| !(range.start_ms..=range.end_ms).contains(t));
        }
    }
    reference.retain(|_, samples| !samples.is_empty());
}

fn host_matcher(name: &str, host: &str) -> Vec<LabelMatcher> {
    vec![
        LabelMatcher::metric_name(name),
        LabelMatcher::new("host", MatchOp::Equal, host).expect("matcher"),
    ]
}

#[test]
fn deletion_reaches_head_and_blocks_purges_listings_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::new();
    {
        let db = Db::open(dir.path(), manual()).expect("open");
        load(&db, &mut reference, 0, 7, 4);
        db.maintain().expect("maintain");
        assert_eq!(
            db.blocks().len(),
            2,
            "[0,2h) and [2h,4h) in blocks, the rest in the head"
        );
        let before = db.deletions();

        // Part of one series, across a block and the head.
        let range = TimeRange::new(HOUR, 5 * HOUR);
        let deleted = db
            .delete(&host_matcher("cpu", "h1"), range)
            .expect("delete");
        assert_eq!(
            deleted,
            4 * 360 + 1,
            "4 h of 10 s samples, both ends included"
        );
        delete_in_reference(&mut reference, "cpu", Some("h1"), range);
        // Every series of one host, entirely: it must vanish from listings.
        let all_of_h3 = [LabelMatcher::new("host", MatchOp::Equal, "h3").expect("matcher")];
        assert_eq!(
            db.delete(&all_of_h3, TimeRange::ALL).expect("delete"),
            2 * 7 * 360
        );
        delete_in_reference(&mut reference, "cpu", Some("h3"), TimeRange::ALL);
        delete_in_reference(&mut reference, "mem", Some("h3"), TimeRange::ALL);
        assert!(db.deletions() > before, "the generation moves for caches");
        // Nothing matches any more: nothing to do.
        assert_eq!(db.delete(&all_of_h3, TimeRange::ALL).expect("again"), 0);

        check(&db, &reference, TimeRange::ALL);
        check(
            &db,
            &reference,
            TimeRange::new(HOUR - 5_000, 5 * HOUR + 5_000),
        );
        assert_eq!(db.label_values("host"), vec!["h0", "h1", "h2"]);
        assert!(
            db.series(&all_of_h3, TimeRange::ALL).is_empty(),
            "no index lists the deleted series"
        );
        // A sample written into the deleted range afterwards is kept.
        db.append(&[metric("cpu", "h1", 42.0, 3 * HOUR + 5_000)])
            .expect("append");
        reference
            .entry(("cpu".into(), "h1".into()))
            .or_default()
            .insert(3 * HOUR + 5_000, 42.0);
        check(&db, &reference, TimeRange::ALL);
    }
    // Replay applies the delete record where it was written: the head's
    // deleted samples stay deleted, the later one stays.
    let db = Db::open(dir.path(), manual()).expect("reopen");
    check(&db, &reference, TimeRange::ALL);
    assert_eq!(db.label_values("host"), vec!["h0", "h1", "h2"]);
    // And a persist and a compaction after it change nothing.
    db.maintain().expect("maintain");
    check(&db, &reference, TimeRange::ALL);
}

#[test]
fn a_rewrite_interrupted_before_the_old_block_went_is_finished_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks_dir = dir.path().join("blocks");
    let mut reference = Reference::new();
    {
        let db = Db::open(dir.path(), manual()).expect("open");
        load(&db, &mut reference, 0, 5, 2);
        db.maintain().expect("maintain");
        assert_eq!(db.blocks().len(), 1);
    }
    let copies = tempfile::tempdir().expect("tempdir");
    let original: Vec<String> = std::fs::read_dir(&blocks_dir)
        .expect("blocks")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for id in &original {
        copy_dir(&blocks_dir.join(id), &copies.path().join(id));
    }
    let range = TimeRange::new(0, HOUR);
    {
        let db = Db::open(dir.path(), manual()).expect("open");
        db.delete(&host_matcher("mem", "h0"), range)
            .expect("delete");
    }
    delete_in_reference(&mut reference, "mem", Some("h0"), range);
    // The crash: the original block is back beside its rewrite.
    for id in &original {
        copy_dir(&copies.path().join(id), &blocks_dir.join(id));
    }
    let db = Db::open(dir.path(), manual()).expect("reopen");
    assert_eq!(
        db.blocks().len(),
        1,
        "the original is recognised and dropped"
    );
    check(&db, &reference, TimeRange::ALL);
}

#[test]
fn a_deletion_of_replayed_series_survives_the_next_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::new();
    {
        let db = Db::open(dir.path(), manual()).expect("open");
        load(&db, &mut reference, 0, 1, 2);
    }
    {
        // The series come from replay: this process has not defined them
        // in the WAL yet, so the deletion must.
        let db = Db::open(dir.path(), manual()).expect("reopen");
        let gone = db
            .delete(&host_matcher("cpu", "h0"), TimeRange::ALL)
            .expect("delete");
        assert_eq!(gone, 360);
        delete_in_reference(&mut reference, "cpu", Some("h0"), TimeRange::ALL);
        check(&db, &reference, TimeRange::ALL);
    }
    let db = Db::open(dir.path(), manual()).expect("reopen again");
    check(&db, &reference, TimeRange::ALL);
}
