//! The reference dataset (`fixtures::dataset`) loaded into craft 3's
//! `Db` and persisted into compacted blocks, shared by the query benches
//! (`benches/query.rs`) and the figures example
//! (`examples/query_figures.rs`), so both measure the same store.
//!
//! Loading goes through the storage contract (`MetricStore::append`, one
//! series per call on every core, the WAL unsynced): these programs
//! measure queries, and the blocks they query are the same whichever way
//! the samples arrived (chunks are cut by count and at block boundaries,
//! not by arrival order). The head is then cut into 2 h blocks and
//! compacted, and the engine reopened cold, as
//! `craft3-storage/examples/tsdb_figures.rs` does.

#![allow(dead_code)]

use std::path::Path;

use craft3_storage::db::{Db, DbConfig};
use craft3_storage::wal::{WalConfig, WalFsync};
use fixtures::dataset::{Dataset, DatasetSpec};

/// The engine's configuration for measurements: no fsync, no background
/// thread (the program decides when to persist and compact).
pub fn db_config() -> DbConfig {
    DbConfig {
        wal: WalConfig {
            fsync: WalFsync::Never,
            ..WalConfig::default()
        },
        maintenance_interval: None,
        ..DbConfig::default()
    }
}

/// Writes `spec`'s dataset into a `Db` in `dir`, persists it into blocks,
/// compacts them, and reopens the engine cold (nothing in the head).
///
/// # Errors
/// The engine's error, as text, when a step fails.
pub fn load_db(dir: &Path, spec: DatasetSpec) -> Result<Db, String> {
    let dataset = Dataset::new(spec).map_err(|e| e.to_string())?;
    let db = Db::open(dir, db_config()).map_err(|e| e.to_string())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    dataset.append_to(&db, threads).map_err(|e| e.to_string())?;
    let head = db.head();
    let (_, max) = head.time_bounds().ok_or("the dataset is empty")?;
    db.persist_before(max + 1).map_err(|e| e.to_string())?;
    db.maintain().map_err(|e| e.to_string())?;
    drop(db);
    Db::open(dir, db_config()).map_err(|e| e.to_string())
}

/// The first and last timestamps of `spec`'s dataset (no jitter).
pub fn bounds(spec: &DatasetSpec) -> (i64, i64) {
    let last = spec.start_ms + (spec.samples_per_series() as i64 - 1) * spec.interval_ms;
    (spec.start_ms, last)
}

/// The `host` label of the first host, `h-001` (or `h-0001` from 1,000
/// hosts up).
pub fn first_host(spec: &DatasetSpec) -> String {
    let width = spec.hosts.to_string().len().max(3);
    format!("h-{:0width$}", 1)
}

/// Milliseconds as the API's seconds, exactly (`1700000000.5`).
pub fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
    }
}
