//! Consumer groups: which member reads which partition, and how far the
//! group has got.
//!
//! A group has a *committed offset* per partition, persisted under
//! `groups/<name>.offsets`, so a restarted consumer resumes where the last
//! one stopped — after the last record it acknowledged, not the last one it
//! was handed. That is at-least-once delivery: a crash between "stored" and
//! "committed" re-delivers, never skips. Members share the partitions; when
//! one joins or leaves, the partitions are dealt out again (a rebalance) and
//! a partition that changed hands restarts from its committed offset, so
//! records the old owner had not acknowledged go to the new one. Kafka's
//! group coordinator does the same across machines; here it is one mutex.
//! Story: docs chapter 2, "Consumer groups".

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Names one delivery to [`commit`](super::GroupMember::commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitToken {
    /// The partition the records came from.
    pub partition: u32,
    /// The partition's assignment epoch when it was handed out; a token from
    /// before a rebalance is refused.
    pub epoch: u64,
    /// First offset of the delivery.
    pub start: u64,
    /// One past its last offset.
    pub end: u64,
}

/// The persisted form of a group's offsets.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetsFile {
    group: String,
    committed: Vec<u64>,
}

/// One group's state, kept under the log's group lock.
pub(crate) struct GroupState {
    pub name: String,
    path: PathBuf,
    /// Per partition: every record below this offset is acknowledged.
    pub committed: Vec<u64>,
    /// The sum of `committed`, readable without the group lock, so a
    /// producer can check the group's lag on every push for free.
    pub committed_sum: Arc<AtomicU64>,
    /// Per partition: where the owner reads next.
    pub fetch: Vec<u64>,
    /// Per partition: the member reading it.
    pub owner: Vec<Option<u64>>,
    /// Per partition: bumped whenever the partition changes hands.
    pub epoch: Vec<u64>,
    /// Per partition: a read is in progress outside the lock.
    pub busy: Vec<bool>,
    /// Per partition: deliveries handed out, by start → (end, acknowledged).
    pub inflight: Vec<BTreeMap<u64, (u64, bool)>>,
    pub members: BTreeSet<u64>,
    pub next_member: u64,
    /// Bumped on every join and leave.
    pub generation: u64,
    /// Committed offsets changed since they were last written.
    pub dirty: bool,
}

/// Group names become file names, so they are kept plain.
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl GroupState {
    /// Loads the group's committed offsets, or starts it at each
    /// partition's first offset.
    pub fn load(dir: &Path, name: &str, starts: &[u64]) -> io::Result<GroupState> {
        let path = dir.join(format!("{name}.offsets"));
        let partitions = starts.len();
        let mut committed = starts.to_vec();
        match fs::read(&path) {
            Ok(bytes) => {
                let file: OffsetsFile = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                if file.committed.len() != partitions {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} has offsets for {} partitions, the log has {partitions}",
                            path.display(),
                            file.committed.len()
                        ),
                    ));
                }
                for (c, (saved, start)) in
                    committed.iter_mut().zip(file.committed.iter().zip(starts))
                {
                    *c = (*saved).max(*start);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(GroupState {
            name: name.to_string(),
            path,
            committed_sum: Arc::new(AtomicU64::new(committed.iter().sum())),
            fetch: committed.clone(),
            committed,
            owner: vec![None; partitions],
            epoch: vec![0; partitions],
            busy: vec![false; partitions],
            inflight: vec![BTreeMap::new(); partitions],
            members: BTreeSet::new(),
            next_member: 0,
            generation: 0,
            dirty: false,
        })
    }

    /// Writes the committed offsets: to a temporary file, then renamed over
    /// the old one, so a crash leaves either the old or the new offsets,
    /// never half of each. `sync` also fsyncs the file.
    pub fn persist(&mut self, sync: bool) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let tmp = self.path.with_extension("offsets.tmp");
        let body = serde_json::to_vec(&OffsetsFile {
            group: self.name.clone(),
            committed: self.committed.clone(),
        })
        .map_err(io::Error::other)?;
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&body)?;
        if sync {
            file.sync_data()?;
        }
        fs::rename(&tmp, &self.path)?;
        self.dirty = false;
        Ok(())
    }

    /// Adds a member and deals the partitions out again; returns its id.
    pub fn join(&mut self) -> u64 {
        let id = self.next_member;
        self.next_member += 1;
        self.members.insert(id);
        self.rebalance();
        id
    }

    /// Removes a member and deals its partitions to the others.
    pub fn leave(&mut self, id: u64) {
        if self.members.remove(&id) {
            self.rebalance();
        }
    }

    /// Round-robin assignment: partition p goes to the (p mod n)-th member in
    /// id order. A partition that changes hands restarts at its committed
    /// offset; its deliveries in flight become stale.
    fn rebalance(&mut self) {
        self.generation += 1;
        let members: Vec<u64> = self.members.iter().copied().collect();
        for p in 0..self.owner.len() {
            let new_owner = if members.is_empty() {
                None
            } else {
                Some(members[p % members.len()])
            };
            if self.owner[p] != new_owner {
                self.owner[p] = new_owner;
                self.epoch[p] += 1;
                self.fetch[p] = self.committed[p];
                self.inflight[p].clear();
            }
        }
    }

    /// The partitions `member` reads.
    pub fn assignment(&self, member: u64) -> Vec<u32> {
        (0..self.owner.len())
            .filter(|p| self.owner[*p] == Some(member))
            .map(|p| p as u32)
            .collect()
    }

    /// Marks a delivery acknowledged and moves the committed offset over
    /// every acknowledged delivery at its front. Returns how many records the
    /// committed offset moved past, or `None` for a token that is unknown,
    /// already committed, or from before a rebalance.
    pub fn commit(&mut self, member: u64, token: CommitToken) -> Option<u64> {
        let p = token.partition as usize;
        if p >= self.owner.len() || self.owner[p] != Some(member) || self.epoch[p] != token.epoch {
            return None;
        }
        match self.inflight[p].get_mut(&token.start) {
            Some((end, acked)) if *end == token.end && !*acked => *acked = true,
            _ => return None,
        }
        let before = self.committed[p];
        while let Some(entry) = self.inflight[p].first_entry() {
            let (end, acked) = *entry.get();
            if !acked {
                break;
            }
            entry.remove();
            self.committed[p] = self.committed[p].max(end);
        }
        let moved = self.committed[p] - before;
        if moved > 0 {
            self.dirty = true;
            self.committed_sum.fetch_add(moved, Ordering::AcqRel);
        }
        Some(moved)
    }

    /// Moves a partition's offsets up to `start` after retention deleted the
    /// records below it; returns how many unconsumed records were lost.
    pub fn skip_to(&mut self, partition: usize, start: u64) -> u64 {
        let lost = start.saturating_sub(self.committed[partition]);
        if lost > 0 {
            self.committed[partition] = start;
            self.dirty = true;
            self.committed_sum.fetch_add(lost, Ordering::AcqRel);
        }
        if self.fetch[partition] < start {
            self.fetch[partition] = start;
            self.inflight[partition].retain(|s, _| *s >= start);
        }
        lost
    }
}
