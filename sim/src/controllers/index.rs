//! Which objects each object owns, kept up to date from store events, so that a controller finds
//! its pods without listing a whole namespace.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::pods::PodInfo;
use super::{Key, Kind, meta};

struct Entry {
    uid: String,
    owners: Vec<String>,
    pod: Option<PodInfo>,
}

#[derive(Default)]
pub struct OwnerIndex {
    entries: HashMap<Key, Entry>,
    dependents: HashMap<String, BTreeSet<Key>>,
    live: HashSet<String>,
    by_kind: HashMap<Kind, BTreeSet<Key>>,
    /// Uids of objects that are gone: uids are never reused, so an event about one of them that
    /// arrives late must not bring the object back.
    deleted: HashSet<String>,
}

impl OwnerIndex {
    /// Records an object; returns false when the object is already known to be deleted.
    pub fn upsert(&mut self, key: &Key, obj: &Value) -> bool {
        let uid = meta::uid(obj);
        if self.deleted.contains(uid) {
            return false;
        }
        self.unlink(key);
        let owners = meta::owner_uids(obj);
        for owner in &owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        self.live.insert(uid.to_string());
        self.by_kind
            .entry(key.kind)
            .or_default()
            .insert(key.clone());
        let pod = (key.kind == Kind::Pod).then(|| PodInfo::of(obj));
        self.entries.insert(
            key.clone(),
            Entry {
                uid: uid.to_string(),
                owners,
                pod,
            },
        );
        true
    }

    /// Forgets an object, unless the name is held by a newer object with another uid.
    pub fn remove(&mut self, key: &Key, uid: &str) {
        if !uid.is_empty() {
            self.deleted.insert(uid.to_string());
        }
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.uid == uid || uid.is_empty())
        {
            self.unlink(key);
        }
    }

    fn unlink(&mut self, key: &Key) {
        let Some(old) = self.entries.remove(key) else {
            return;
        };
        self.live.remove(&old.uid);
        if let Some(keys) = self.by_kind.get_mut(&key.kind) {
            keys.remove(key);
        }
        for owner in old.owners {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    pub fn dependents(&self, owner_uid: &str) -> impl Iterator<Item = &Key> {
        self.dependents.get(owner_uid).into_iter().flatten()
    }

    pub fn keys_of(&self, kind: Kind) -> impl Iterator<Item = &Key> {
        self.by_kind.get(&kind).into_iter().flatten()
    }

    /// The pods whose controller is `owner_uid`, as last seen.
    pub fn pods_of(&self, owner_uid: &str) -> Vec<PodInfo> {
        self.dependents(owner_uid)
            .filter_map(|key| self.entries.get(key)?.pod.as_ref())
            .filter(|pod| pod.controller_uid.as_deref() == Some(owner_uid))
            .cloned()
            .collect()
    }

    /// Whether an object with this uid exists.
    pub fn is_live(&self, uid: &str) -> bool {
        self.live.contains(uid)
    }
}
