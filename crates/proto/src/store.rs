//! Version ordering of snapshots on a node: older refused, same ignored,
//! newer replaces.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::message::{ErrorBody, ErrorCode};
use crate::snapshot::{CallId, CallSnapshot, ConferenceId, ConferenceSnapshot, Snapshot};

/// A snapshot that has a key and a version.
pub trait Versioned: Clone {
    type Key: Ord + Clone + std::fmt::Debug;
    fn key(&self) -> &Self::Key;
    fn version(&self) -> u64;
    fn into_snapshot(self) -> Snapshot;
}

impl Versioned for CallSnapshot {
    type Key = CallId;
    fn key(&self) -> &CallId {
        &self.call_id
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn into_snapshot(self) -> Snapshot {
        Snapshot::Call(self)
    }
}

impl Versioned for ConferenceSnapshot {
    type Key = ConferenceId;
    fn key(&self) -> &ConferenceId {
        &self.conference_id
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn into_snapshot(self) -> Snapshot {
        Snapshot::Conference(self)
    }
}

/// What [`SnapshotStore::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<S> {
    /// First snapshot for this key.
    New,
    /// Replaced the previous snapshot, which is returned so the node can
    /// work out what to tear down.
    Updated(S),
    /// Same version already in force: nothing to do.
    Unchanged,
}

/// An older snapshot than the one in force; the store kept its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("snapshot version {offered} is older than version {current} in force")]
pub struct StaleVersion {
    pub current: u64,
    pub offered: u64,
}

impl From<StaleVersion> for ErrorBody {
    fn from(e: StaleVersion) -> Self {
        ErrorBody::new(ErrorCode::STALE_VERSION, e.to_string())
    }
}

/// The snapshots a node carries, one per key, kept in version order.
#[derive(Debug, Clone)]
pub struct SnapshotStore<S: Versioned> {
    by_key: BTreeMap<S::Key, S>,
}

impl<S: Versioned> Default for SnapshotStore<S> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
        }
    }
}

impl<S: Versioned> SnapshotStore<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `snapshot` if it is newer than what is held. Re-applying the
    /// same version is a no-op (the brain resends after a timeout); an older
    /// one is refused so a reordered or replayed request cannot roll a call back.
    pub fn apply(&mut self, snapshot: S) -> Result<Applied<S>, StaleVersion> {
        match self.by_key.entry(snapshot.key().clone()) {
            Entry::Vacant(slot) => {
                slot.insert(snapshot);
                Ok(Applied::New)
            }
            Entry::Occupied(mut slot) => {
                let current = slot.get().version();
                let offered = snapshot.version();
                if offered < current {
                    Err(StaleVersion { current, offered })
                } else if offered == current {
                    Ok(Applied::Unchanged)
                } else {
                    Ok(Applied::Updated(slot.insert(snapshot)))
                }
            }
        }
    }

    pub fn release(&mut self, key: &S::Key) -> Option<S> {
        self.by_key.remove(key)
    }

    pub fn get(&self, key: &S::Key) -> Option<&S> {
        self.by_key.get(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &S> {
        self.by_key.values()
    }

    /// Everything held, ready for `Hello::snapshots`.
    pub fn export(&self) -> Vec<Snapshot> {
        self.by_key
            .values()
            .cloned()
            .map(S::into_snapshot)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(version: u64) -> CallSnapshot {
        CallSnapshot {
            call_id: CallId("c1".into()),
            version,
            legs: vec![],
        }
    }

    #[test]
    fn newer_applies_same_is_noop_older_is_refused() {
        let mut store = SnapshotStore::new();
        assert_eq!(store.apply(call(5)), Ok(Applied::New));
        assert_eq!(store.apply(call(5)), Ok(Applied::Unchanged));
        assert_eq!(store.apply(call(7)), Ok(Applied::Updated(call(5))));
        assert_eq!(
            store.apply(call(6)),
            Err(StaleVersion {
                current: 7,
                offered: 6
            })
        );
        // The refused snapshot left the state alone.
        assert_eq!(store.get(&CallId("c1".into())).map(|c| c.version), Some(7));
        let err: ErrorBody = StaleVersion {
            current: 7,
            offered: 6,
        }
        .into();
        assert_eq!(err.code, ErrorCode::STALE_VERSION);
    }

    #[test]
    fn release_and_export() {
        let mut store = SnapshotStore::new();
        store.apply(call(1)).expect("new");
        assert_eq!(store.export(), vec![Snapshot::Call(call(1))]);
        assert_eq!(store.release(&CallId("c1".into())), Some(call(1)));
        assert!(store.is_empty());
        // After a release the call may come back at any version.
        assert_eq!(store.apply(call(1)), Ok(Applied::New));
    }
}
