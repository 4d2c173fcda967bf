//! The durable log through its real files: order, segments and the index,
//! recovery from a torn tail and a missing index, corruption detection,
//! retention, consumer groups, and a writer SIGKILLed mid-load.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::testkit::{self, metric};
use common::{Metric, MetricQueue};
use craft2_queue::log::queue::STORAGE_GROUP;
use craft2_queue::{FsyncPolicy, Log, LogConfig, LogError, LogQueue};

fn config(dir: &Path) -> LogConfig {
    LogConfig {
        partitions: 4,
        segment_bytes: 4096,
        index_interval: 256,
        fsync: FsyncPolicy::Never,
        ..LogConfig::new(dir)
    }
}

fn series_metrics(series: usize, per_series: usize) -> Vec<Metric> {
    (0..per_series)
        .flat_map(|i| {
            (0..series).map(move |s| {
                metric(
                    "seq",
                    &[("series", &format!("s{s}"))],
                    i as f64,
                    1_000 + i as i64,
                )
            })
        })
        .collect()
}

fn read_all(log: &Log) -> Vec<Vec<(u64, Metric)>> {
    log.offsets()
        .into_iter()
        .enumerate()
        .map(|(p, (start, end))| {
            let mut out = Vec::new();
            let mut at = start;
            while at < end {
                let batch = log.read(p as u32, at, 100).expect("read");
                out.extend(batch.records);
                at = batch.next_offset.max(at + 1);
            }
            out
        })
        .collect()
}

fn last_segment(dir: &Path, partition: u32) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir.join(format!("partition-{partition}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

#[test]
fn log_queue_conforms() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = dirs.clone();
    testkit::queue::run_all(&move |capacity| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = Log::open(LogConfig::new(dir.path())).expect("open");
        keep.lock().push(dir);
        Arc::new(LogQueue::new(log, capacity).expect("queue"))
    });
}

#[test]
fn offsets_are_dense_per_partition_and_each_series_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(config(dir.path())).unwrap();
    let metrics = series_metrics(8, 200);
    for chunk in metrics.chunks(37) {
        log.append(chunk).unwrap();
    }
    let partitions = read_all(&log);
    let mut total = 0;
    for (p, records) in partitions.iter().enumerate() {
        for (i, (offset, m)) in records.iter().enumerate() {
            assert_eq!(
                *offset, i as u64,
                "partition {p}: offsets start at 0 and have no gaps"
            );
            assert_eq!(
                log.partition_of(m),
                p as u32,
                "a series lives in one partition"
            );
        }
        total += records.len();
    }
    assert_eq!(total, metrics.len());
    for s in 0..8 {
        let name = format!("s{s}");
        let values: Vec<f64> = partitions
            .iter()
            .flatten()
            .filter(|(_, m)| m.labels.get("series") == Some(&name))
            .map(|(_, m)| m.value)
            .collect();
        assert_eq!(
            values,
            (0..200).map(f64::from).collect::<Vec<_>>(),
            "series {name} in push order"
        );
    }
    let usage = log.disk_usage();
    assert!(
        usage.iter().any(|(segments, _)| *segments > 2),
        "4 KiB segments roll: {usage:?}"
    );
}

#[test]
fn reopening_resumes_offsets_and_redelivers_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, _) = Log::open(config(dir.path())).unwrap();
        let queue = LogQueue::new(log, 1_000_000).unwrap();
        queue.push(series_metrics(4, 50)).unwrap();
        // Consume and commit some deliveries, leave one un-acked.
        let mut committed = 0;
        for _ in 0..2 {
            let d = queue.consume(30, Duration::from_secs(1)).unwrap().unwrap();
            committed += d.metrics.len();
            queue.ack(d.ack).unwrap();
        }
        let unacked = queue.consume(30, Duration::from_secs(1)).unwrap().unwrap();
        assert!(!unacked.metrics.is_empty());
        assert_eq!(
            queue.len(),
            200 - committed,
            "len is what the storage group has not committed"
        );
    }
    let (log, report) = Log::open(config(dir.path())).unwrap();
    assert_eq!(
        report.truncated_bytes, 0,
        "a clean shutdown leaves nothing to repair"
    );
    let before: u64 = log.offsets().iter().map(|(_, end)| end).sum();
    assert_eq!(before, 200);
    let queue = LogQueue::new(log, 1_000_000).unwrap();
    let backlog = queue.len();
    assert!(backlog > 0 && backlog < 200);
    let mut redelivered = 0;
    while let Some(d) = queue.consume(1000, Duration::from_millis(50)).unwrap() {
        redelivered += d.metrics.len();
        queue.ack(d.ack).unwrap();
    }
    assert_eq!(
        redelivered, backlog,
        "everything not committed comes again, nothing committed does"
    );
    queue.push(vec![metric("after", &[], 1.0, 1)]).unwrap();
    let after: u64 = queue.log().offsets().iter().map(|(_, end)| end).sum();
    assert_eq!(
        after, 201,
        "appends continue from the recovered end offsets"
    );
}

#[test]
fn a_torn_tail_is_cut_off_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        partitions: 1,
        ..config(dir.path())
    };
    {
        let (log, _) = Log::open(cfg.clone()).unwrap();
        for i in 0..10 {
            log.append(&[metric("m", &[], f64::from(i), i64::from(i))])
                .unwrap();
        }
        log.shutdown().unwrap();
    }
    // A crash mid-write: the last record is half there.
    let segment = last_segment(dir.path(), 0);
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 7).unwrap();
    drop(file);
    let (log, report) = Log::open(cfg.clone()).unwrap();
    assert!(
        report.truncated_bytes > 0,
        "the torn record is cut off: {report:?}"
    );
    assert!(
        report.corruptions.is_empty(),
        "a torn tail is not corruption"
    );
    let records = &read_all(&log)[0];
    assert_eq!(records.len(), 9);
    assert_eq!(records.last().unwrap().1.value, 8.0);
    log.append(&[metric("m", &[], 99.0, 99)]).unwrap();
    let records = &read_all(&log)[0];
    assert_eq!(
        records.last().unwrap(),
        &(9, metric("m", &[], 99.0, 99)),
        "the torn offset is reused"
    );
    // Garbage (zeros after a power cut) at the tail is cut off too.
    log.shutdown().unwrap();
    drop(log);
    let segment = last_segment(dir.path(), 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(&segment, bytes).unwrap();
    let (log, report) = Log::open(cfg).unwrap();
    assert_eq!(report.truncated_bytes, 100);
    assert_eq!(read_all(&log)[0].len(), 10);
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        partitions: 1,
        ..config(dir.path())
    };
    {
        let (log, _) = Log::open(cfg.clone()).unwrap();
        for chunk in series_metrics(3, 300).chunks(50) {
            log.append(chunk).unwrap();
        }
        log.shutdown().unwrap();
    }
    let pdir = dir.path().join("partition-0");
    let mut indexes: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    indexes.sort();
    assert!(indexes.len() >= 2, "the batch spans segments");
    std::fs::remove_file(&indexes[0]).unwrap();
    std::fs::write(&indexes[1], [1, 2, 3]).unwrap();
    let (log, report) = Log::open(cfg).unwrap();
    assert!(report.indexes_rebuilt >= 2, "{report:?}");
    assert!(indexes[0].exists(), "the missing index is written again");
    let records = &read_all(&log)[0];
    assert_eq!(records.len(), 900);
    // Random access through the rebuilt index lands on the right record.
    for from in [0u64, 1, 77, 450, 899] {
        let batch = log.read(0, from, 1).unwrap();
        assert_eq!(batch.records[0].0, from);
        assert_eq!(batch.records[0].1, records[from as usize].1);
    }
}

#[test]
fn a_flipped_byte_mid_segment_is_detected_reported_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        partitions: 1,
        segment_bytes: 1 << 20,
        ..config(dir.path())
    };
    let metrics: Vec<Metric> = (0..100)
        .map(|i| metric("m", &[("k", "v")], f64::from(i), i64::from(i)))
        .collect();
    {
        let (log, _) = Log::open(cfg.clone()).unwrap();
        log.append(&metrics).unwrap();
        log.shutdown().unwrap();
    }
    let segment = last_segment(dir.path(), 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    let record_len = bytes.len() / 100;
    let at = 50 * record_len + 20; // inside record 50's payload
    bytes[at] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let (log, report) = Log::open(cfg.clone()).unwrap();
    assert_eq!(
        report.truncated_bytes, 0,
        "records after the damage are sound: not a torn tail"
    );
    assert_eq!(
        report.corruptions.len(),
        1,
        "recovery reports the damaged record"
    );
    let c = &report.corruptions[0];
    assert_eq!(
        (c.partition, c.position, c.expected_offset),
        (0, (50 * record_len) as u64, 50)
    );

    // A consumer group reads past it: 99 records, never the damaged one.
    let queue = LogQueue::new(log, 1_000).unwrap();
    let mut got = Vec::new();
    while let Some(d) = queue.consume(1000, Duration::from_millis(50)).unwrap() {
        got.extend(d.metrics);
        queue.ack(d.ack).unwrap();
    }
    let expected: Vec<Metric> = metrics
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 50)
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(got, expected);
    assert!(queue.is_empty(), "the group moves past the damaged record");
    assert!(
        queue
            .log()
            .stats()
            .corrupt_records
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // A damaged length field: readers find their footing through the index.
    drop(queue);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[10 * record_len] = 0xEE;
    bytes[10 * record_len + 3] = 0x7F;
    std::fs::write(&segment, &bytes).unwrap();
    let (log, report) = Log::open(cfg).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    let records = &read_all(&log)[0];
    assert!(
        records.len() < 99 && records.len() > 80,
        "only the interval around the damage is lost: {}",
        records.len()
    );
    assert!(
        records.iter().all(|(o, m)| m.value as u64 == *o),
        "nothing damaged is returned as data"
    );
}

#[test]
fn retention_deletes_whole_old_segments_by_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        partitions: 1,
        retention_bytes: Some(10_000),
        ..config(dir.path())
    };
    let (log, _) = Log::open(cfg.clone()).unwrap();
    let queue_member = log.join("slow").unwrap();
    for chunk in series_metrics(1, 2_000).chunks(20) {
        log.append(chunk).unwrap();
    }
    let (segments_before, bytes_before) = log.disk_usage()[0];
    assert!(bytes_before > 40_000);
    let removed = log.enforce_retention(SystemTime::now()).unwrap();
    let (segments_after, bytes_after) = log.disk_usage()[0];
    assert!(removed.segments > 0 && segments_after < segments_before);
    assert!(
        bytes_after <= 10_000 + 4096,
        "at most one segment over the limit: {bytes_after}"
    );
    let (start, end) = log.offsets()[0];
    assert_eq!(
        start, removed.records,
        "the log now starts after the deleted records"
    );
    assert_eq!(end, 2_000);
    // A group behind the deleted records jumps to the new start, and the
    // loss is counted, not hidden.
    let batch = queue_member
        .poll(10, Duration::from_millis(10))
        .unwrap()
        .unwrap();
    assert_eq!(batch.token.start, start);
    assert_eq!(
        log.stats()
            .lost_to_retention
            .load(std::sync::atomic::Ordering::Relaxed),
        start
    );
    drop(queue_member);

    // Age: nothing is old yet; an hour from now, everything sealed is.
    let cfg = LogConfig {
        retention_bytes: None,
        retention_age: Some(Duration::from_secs(60)),
        ..cfg
    };
    log.shutdown().unwrap();
    drop(log);
    let (log, _) = Log::open(cfg).unwrap();
    assert_eq!(
        log.enforce_retention(SystemTime::now()).unwrap().segments,
        0
    );
    let removed = log
        .enforce_retention(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    assert!(removed.segments > 0);
    assert_eq!(
        log.disk_usage()[0].0,
        1,
        "the active segment is never deleted"
    );
}

#[test]
fn group_members_share_partitions_and_a_leaver_s_records_go_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(config(dir.path())).unwrap();
    log.append(&series_metrics(16, 25)).unwrap();
    let a = log.join("readers").unwrap();
    assert_eq!(a.assignment(), vec![0, 1, 2, 3]);
    let b = log.join("readers").unwrap();
    assert_eq!(a.assignment(), vec![0, 2]);
    assert_eq!(b.assignment(), vec![1, 3]);
    assert!(b.generation() > 1);

    // b takes a batch and leaves without committing it.
    let taken = b.poll(5, Duration::from_millis(100)).unwrap().unwrap();
    let stale = taken.token;
    drop(b);
    assert_eq!(a.assignment(), vec![0, 1, 2, 3], "a gets b's partitions");
    assert!(matches!(a.commit(stale), Err(LogError::StaleCommit { .. })));

    let mut seen = 0;
    while let Some(batch) = a.poll(7, Duration::from_millis(20)).unwrap() {
        seen += batch.records.len();
        a.commit(batch.token).unwrap();
        assert!(
            matches!(a.commit(batch.token), Err(LogError::StaleCommit { .. })),
            "a second commit is refused"
        );
    }
    assert_eq!(seen, 400, "b's uncommitted records are delivered to a");
    assert_eq!(log.lag("readers"), 0);
    // Another group reads the same records independently.
    assert_eq!(log.lag("other"), 0, "a group never joined has no lag");
    let c = log.join("other").unwrap();
    assert_eq!(log.lag("other"), 400);
    drop(c);
    assert_eq!(log.committed("readers").unwrap().iter().sum::<u64>(), 400);
}

#[test]
fn commits_wait_for_earlier_deliveries_of_their_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(LogConfig {
        partitions: 1,
        ..config(dir.path())
    })
    .unwrap();
    log.append(&series_metrics(1, 30)).unwrap();
    let m = log.join(STORAGE_GROUP).unwrap();
    let first = m.poll(10, Duration::ZERO).unwrap().unwrap();
    let second = m.poll(10, Duration::ZERO).unwrap().unwrap();
    assert_eq!(
        m.commit(second.token).unwrap(),
        0,
        "committed cannot pass an unacked delivery"
    );
    assert_eq!(log.committed(STORAGE_GROUP).unwrap(), vec![0]);
    assert_eq!(m.commit(first.token).unwrap(), 20);
    assert_eq!(log.committed(STORAGE_GROUP).unwrap(), vec![20]);
}

#[test]
fn a_changed_partition_count_or_bad_config_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(config(dir.path())).unwrap();
    log.shutdown().unwrap();
    drop(log);
    let err = Log::open(LogConfig {
        partitions: 8,
        ..config(dir.path())
    })
    .err()
    .expect("8 partitions over a 4-partition log");
    assert!(err.to_string().contains("has 4 partitions"), "{err}");
    let err = Log::open(LogConfig {
        partitions: 0,
        ..config(dir.path())
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("partitions must be"), "{err}");
    let (log, _) = Log::open(config(dir.path())).unwrap();
    assert!(log.join("../etc").is_err());
    assert!(
        "sometimes"
            .parse::<FsyncPolicy>()
            .unwrap_err()
            .contains("sometimes")
    );
    assert_eq!(
        "25ms".parse::<FsyncPolicy>().unwrap(),
        FsyncPolicy::Interval(Duration::from_millis(25))
    );
}

/// The crash test: a child appends with fsync per batch and prints each
/// acknowledged sequence number; it is SIGKILLed mid-load. Every
/// acknowledged record must be readable after reopening, none damaged, and
/// appends must continue.
#[test]
fn every_acknowledged_record_survives_a_sigkill_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_craft2-log"))
        .args([
            "append",
            "--count",
            "100000000",
            "--batch",
            "7",
            "--fsync",
            "every-batch",
        ])
        .args(["--segment-bytes", "65536"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start craft2-log");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    // Let it write a while (enough to roll segments), then kill it.
    for _ in 0..400 {
        let line = lines.next().expect("child output").expect("line");
        acked = line.strip_prefix("acked ").unwrap().parse().unwrap();
    }
    child.kill().expect("SIGKILL");
    // Lines already in the pipe were acknowledged too.
    for line in lines {
        acked = line
            .unwrap()
            .strip_prefix("acked ")
            .unwrap()
            .parse()
            .unwrap();
    }
    child.wait().unwrap();

    let (log, report) = Log::open(LogConfig {
        partitions: 4,
        ..LogConfig::new(dir.path())
    })
    .unwrap();
    assert!(report.corruptions.is_empty(), "{report:?}");
    let mut seqs: Vec<u64> = read_all(&log)
        .into_iter()
        .flatten()
        .map(|(_, m)| m.value as u64)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(
        seqs.len() as u64 > acked,
        "all {} acknowledged records are there (found {})",
        acked + 1,
        seqs.len()
    );
    assert!(
        seqs.iter()
            .take(acked as usize + 1)
            .enumerate()
            .all(|(i, s)| *s == i as u64),
        "no acknowledged record is missing"
    );
    assert!(log.corruptions().is_empty());
    log.append(&[metric("after_crash", &[], 1.0, 1)]).unwrap();
}

#[test]
fn a_clean_stop_after_draining_redelivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, _) = Log::open(config(dir.path())).unwrap();
        let queue = LogQueue::new(log, 1_000).unwrap();
        queue.push(series_metrics(4, 25)).unwrap();
        queue.close();
        while let Some(d) = queue.consume(7, Duration::from_millis(10)).unwrap() {
            queue.ack(d.ack).unwrap();
        }
        assert!(queue.is_empty());
        // Leaked, not dropped: like a process that exits right after the
        // drain, before any background tick or destructor.
        std::mem::forget(queue);
    }
    let (log, _) = Log::open(config(dir.path())).unwrap();
    let queue = LogQueue::new(log, 1_000).unwrap();
    assert_eq!(queue.len(), 0, "the drain's commits are on disk");
}

#[test]
fn random_damage_never_panics_and_never_returns_a_wrong_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        partitions: 1,
        segment_bytes: 1 << 20,
        ..config(dir.path())
    };
    let metrics: Vec<Metric> = (0..300)
        .map(|i| {
            metric(
                "m",
                &[("k", &format!("v{}", i % 7))],
                f64::from(i),
                i64::from(i),
            )
        })
        .collect();
    {
        let (log, _) = Log::open(cfg.clone()).unwrap();
        for chunk in metrics.chunks(10) {
            log.append(chunk).unwrap();
        }
        log.shutdown().unwrap();
    }
    let segment = last_segment(dir.path(), 0);
    let pristine = std::fs::read(&segment).unwrap();
    // A deterministic walk over positions and bit patterns.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..40 {
        let mut bytes = pristine.clone();
        for _ in 0..(1 + round % 4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % bytes.len() as u64) as usize;
            bytes[at] ^= (state >> 56) as u8 | 1;
        }
        std::fs::write(&segment, &bytes).unwrap();
        let (log, _) = Log::open(cfg.clone()).unwrap();
        for (offset, m) in &read_all(&log)[0] {
            assert_eq!(
                m, &metrics[*offset as usize],
                "round {round}: offset {offset} returned damaged data"
            );
        }
        log.shutdown().unwrap();
        drop(log);
        // Recovery may have cut a "torn" tail: restore the file for the next round.
        std::fs::write(&segment, &pristine).unwrap();
        let _ = std::fs::remove_file(segment.with_extension("index"));
    }
}

/// `sync_acks` is what a deletion relies on: acks are written every
/// `commit_interval`, so without it a crash right after an ack delivers
/// the batch again; with it, nothing acked comes back.
#[test]
fn sync_acks_makes_acks_durable_before_the_next_tick() {
    let crash_after_acks = |sync: bool| {
        let dir = tempfile::tempdir().unwrap();
        let config = || LogConfig {
            commit_interval: Duration::from_secs(3600),
            ..config(dir.path())
        };
        let (log, _) = Log::open(config()).unwrap();
        let queue = LogQueue::new(log, 1_000).unwrap();
        queue.push(series_metrics(4, 25)).unwrap();
        while let Some(d) = queue.consume(7, Duration::from_millis(10)).unwrap() {
            queue.ack(d.ack).unwrap();
        }
        if sync {
            queue.sync_acks().unwrap();
        }
        // Leaked, not dropped: a SIGKILL right after.
        std::mem::forget(queue);
        let (log, _) = Log::open(config()).unwrap();
        LogQueue::new(log, 1_000).unwrap().len()
    };
    assert_eq!(crash_after_acks(false), 100, "acks wait for the tick");
    assert_eq!(crash_after_acks(true), 0, "synced acks are on disk");
}
