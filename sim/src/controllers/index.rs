//! Which objects each object owns, kept up to date from store events, so that a controller finds
//! its pods without listing a whole namespace.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::{Key, Kind, meta};

struct Entry {
    uid: String,
    owners: Vec<String>,
}

#[derive(Default)]
pub struct OwnerIndex {
    entries: HashMap<Key, Entry>,
    dependents: HashMap<String, BTreeSet<Key>>,
    live: HashSet<String>,
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
        self.entries.insert(
            key.clone(),
            Entry {
                uid: uid.to_string(),
                owners,
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
        self.entries.keys().filter(move |k| k.kind == kind)
    }

    /// Whether an object with this uid exists.
    pub fn is_live(&self, uid: &str) -> bool {
        self.live.contains(uid)
    }
}
