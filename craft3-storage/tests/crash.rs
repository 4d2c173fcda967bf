//! Crash safety, with real processes: `craft3-tsdb ingest` appends while
//! its background thread cuts blocks and compacts them every millisecond;
//! the test SIGKILLs it at a random acknowledged batch, restarts it where
//! it left off, kills it again, and finally opens the directory itself:
//! every acknowledged sample must be there, exactly once, and no
//! half-written block may be exposed (open would refuse it). Chapter 3,
//! "What durability costs".

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{LabelMatcher, TimeRange};
use craft3_storage::db::{Db, DbConfig};
use rand::{Rng, SeedableRng};

const SERIES: u32 = 8;

/// Kills the child on drop, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the child from batch `from` and SIGKILLs it once `kill_after`
/// batches are acknowledged (or lets it finish). Returns the last batch
/// acknowledged.
fn run_and_kill(dir: &Path, from: u64, batches: u64, kill_after: u64) -> Option<u64> {
    let child = Command::new(env!("CARGO_BIN_EXE_craft3-tsdb"))
        .args(["ingest", &dir.display().to_string()])
        .args(["--series", &SERIES.to_string()])
        .args(["--from", &from.to_string()])
        .args(["--batches", &batches.to_string()])
        .args(["--pause-us", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn craft3-tsdb");
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read");
        let Some(batch) = line.strip_prefix("acked ") else {
            continue;
        };
        let batch: u64 = batch.parse().expect("batch number");
        last = Some(batch);
        if batch + 1 - from >= kill_after {
            // SIGKILL: no destructor, no flush, no final fsync.
            child.0.kill().expect("SIGKILL");
            break;
        }
    }
    let _ = child.0.wait();
    last
}

#[test]
fn sigkill_during_ingest_persist_and_compaction_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut next = 0u64;
    for _round in 0..5 {
        let kill_after = rng.gen_range(100..1_500);
        let acked = run_and_kill(dir.path(), next, 10_000, kill_after).expect("some acks");
        next = acked + 1;
    }
    let db = Db::open(
        dir.path(),
        DbConfig {
            maintenance_interval: None,
            ..DbConfig::default()
        },
    )
    .expect("every block on disk opens, no half-written one is exposed");
    let check = |db: &Db, when: &str| {
        let got = db
            .select(&[LabelMatcher::metric_name("load")], TimeRange::ALL)
            .expect("select");
        assert_eq!(got.len(), SERIES as usize, "{when}");
        for series in &got {
            // Every acknowledged batch, in order, once; a batch written but
            // not yet acknowledged when the kill came may be there too.
            let stored: Vec<u64> = series.samples.iter().map(|s| s.value as u64).collect();
            assert!(
                stored.len() as u64 >= next,
                "{when}: {}: {} of {next}",
                series.labels,
                stored.len()
            );
            for (i, sample) in series.samples.iter().enumerate() {
                assert_eq!(
                    sample.timestamp_ms,
                    i as i64 * 10_000,
                    "{when}: {}",
                    series.labels
                );
                assert_eq!(sample.value, i as f64, "{when}: {}", series.labels);
            }
        }
    };
    check(&db, "after the kills");
    // Whether a kill landed during a compaction depends on timing; what
    // the kills leave behind does not: blocks cut twice across a restart
    // (the WAL replays what the last block already has) and a replayed
    // head. All of it must compact into one store that answers the same.
    let compacted_while_killed = db.blocks().iter().any(|b| b.compaction.level >= 2);
    db.persist_before(i64::MAX).expect("cut the replayed head");
    db.maintain().expect("compact what the kills left");
    let blocks = db.blocks();
    assert!(
        blocks.iter().any(|b| b.compaction.level >= 2),
        "what the kills left compacts: {} blocks, none compacted",
        blocks.len()
    );
    check(&db, "after compacting what the kills left");
    eprintln!(
        "crash: {} blocks after compaction; a compaction had run before a kill: {compacted_while_killed}",
        blocks.len()
    );
}
