//! `/api/v1/admin/tsdb/delete_series` and `/api/v1/admin/tsdb/clean_tombstones`:
//! what an operator calls to remove data that should never have been
//! written (a secret in a label, a runaway cardinality experiment).
//!
//! Off unless the server runs with `--web.enable-admin-api`, as in
//! Prometheus: one unauthenticated request deletes data. Deleting is the
//! store's ([`MetricStore::delete`]): craft 3 removes the samples from the
//! head (logged in its WAL) and rewrites every block holding some, so a
//! series left empty disappears from `series`, `labels` and label values at
//! once. Prometheus instead writes tombstones and leaves the index as it
//! was until a compaction rewrites the block, so label values of deleted
//! series linger (its issue 7932); `clean_tombstones` is that rewrite, and
//! here has nothing left to do. Docs chapter 4, "Speaking Prometheus".

use std::time::Duration;

use common::{MetricStore, QueryError, StorageError, TimeRange, WriteBarrier};

use super::params::Params;
use super::timestamp::{MAX_TIME_MS, MIN_TIME_MS};

/// How long a deletion waits for the writes accepted before it to be
/// stored.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletes what every `match[]` selector matches in `[start, end]`
/// (all of time by default); the samples deleted. Every write accepted
/// before the call is stored first (`barrier`), so none lands after the
/// deletion and none is delivered again after a crash.
///
/// # Errors
/// 400 without `match[]` or for bad parameters; 503 when the pipeline does
/// not settle in time (nothing is deleted); 501 when the store cannot
/// delete; the store's other errors as 500.
pub fn delete_series(
    store: &dyn MetricStore,
    barrier: &WriteBarrier,
    params: Params<'_>,
) -> Result<u64, QueryError> {
    if params.values("match[]").is_empty() {
        return Err(QueryError::BadRequest(
            "no match[] parameter provided".into(),
        ));
    }
    let start_ms = params.optional_time("start", MIN_TIME_MS)?;
    let end_ms = params.optional_time("end", MAX_TIME_MS)?;
    let range = TimeRange::new(start_ms, end_ms);
    let matcher_sets = params.matcher_sets()?;
    barrier
        .settle(SETTLE_TIMEOUT)
        .map_err(|why| QueryError::Timeout(format!("nothing was deleted: {why}")))?;
    let mut deleted = 0;
    for matchers in matcher_sets {
        deleted += store
            .delete(&matchers, range)
            .map_err(|error| match error {
                StorageError::Unsupported(message) => QueryError::Unsupported(message),
                StorageError::InvalidSelector(message) => {
                    QueryError::BadRequest(format!("invalid selector: {message}"))
                }
                other => QueryError::Storage(other),
            })?;
    }
    Ok(deleted)
}
