//! The garbage collector: when an owner is deleted, its dependents go too (background cascading
//! deletion). A dependent with another owner that still exists is kept, as in Kubernetes.
//!
//! Only deletions seen while running cascade: dependents whose owners were already missing in the
//! loaded state are left alone, so that a snapshot with dangling references loads as it is.

use super::{Controllers, Key, meta};

pub fn collect_dependents_of(ctl: &mut Controllers, owner_uid: &str) {
    if owner_uid.is_empty() {
        return;
    }
    let dependents: Vec<Key> = ctl.index.dependents(owner_uid).cloned().collect();
    for key in dependents {
        let Some(obj) = ctl.get(&key) else { continue };
        if meta::is_terminating(&obj) {
            continue;
        }
        let owners = meta::owner_uids(&obj);
        if owners.iter().any(|u| u == owner_uid) && owners.iter().all(|u| !ctl.index.is_live(u)) {
            ctl.delete(&key);
        }
    }
}
