//! ControllerRevisions of StatefulSets and DaemonSets: one `apps/v1` ControllerRevision per
//! distinct pod template, named `<workload>-<hash>`, owned by the workload (`controller: true`),
//! labelled with the template's labels and `controller-revision-hash`, numbered in the order the
//! templates became current. This is what `kubectl rollout history` lists.
//!
//! A workload whose template is still the one of the loaded state gets none written: a
//! consistent state loads without a write. Its first ControllerRevision is written when its
//! template changes (numbered after those the state holds for it, 1 when it holds none).

use serde_json::{Value, json};

use super::{Controllers, Key, Kind, meta};

/// The label a ControllerRevision (and a DaemonSet's pods) carries with the template's hash.
pub const HASH_LABEL: &str = "controller-revision-hash";
/// How many revisions no pod uses are kept when the workload does not say.
const DEFAULT_HISTORY_LIMIT: usize = 10;

/// A revision of a workload's template: its ControllerRevision's name and its hash.
pub struct Revision {
    pub name: String,
    pub hash: String,
}

impl Revision {
    /// A StatefulSet's revision: its pods are labelled with the name, `<sts>-<hash>`.
    pub fn of_statefulset(sts: &Value, name: &str) -> Revision {
        let prefix = format!("{}-", meta::name(sts));
        Revision {
            hash: name.strip_prefix(&prefix).unwrap_or(name).to_string(),
            name: name.to_string(),
        }
    }

    /// A DaemonSet's revision: its pods are labelled with the hash.
    pub fn of_daemonset(ds: &Value, hash: &str) -> Revision {
        Revision {
            name: format!("{}-{hash}", meta::name(ds)),
            hash: hash.to_string(),
        }
    }
}

/// Makes `update` the workload's newest ControllerRevision, creating it or, when an older
/// template came back, renumbering its revision as the real controllers do; then deletes the
/// oldest revisions beyond `revisionHistoryLimit` that no name in `in_use` refers to.
pub fn record(ctl: &mut Controllers, workload: &Value, update: &Revision, in_use: &[String]) {
    let uid = meta::uid(workload);
    if ctl.template_as_loaded(uid) {
        return;
    }
    let mut revisions = ctl.dependents(uid, Kind::ControllerRevision);
    revisions.retain(|r| meta::controller_of(r).is_some_and(|(_, _, _, owner)| owner == uid));
    let newest = revisions.iter().map(number).max().unwrap_or(0);
    match revisions.iter().find(|r| meta::name(r) == update.name) {
        Some(existing) if number(existing) < newest => {
            ctl.modify(&Key::of(Kind::ControllerRevision, existing), |r| {
                r["revision"] = json!(newest + 1);
            });
        }
        Some(_) => {}
        None => {
            // The update revision is the workload's template as it is now.
            let template = &workload["spec"]["template"];
            let revision = controller_revision(workload, update, template, newest + 1);
            ctl.create(Kind::ControllerRevision, revision);
        }
    }
    prune(ctl, workload, revisions, update, in_use);
}

fn number(revision: &Value) -> i64 {
    revision["revision"].as_i64().unwrap_or(0)
}

fn controller_revision(workload: &Value, revision: &Revision, template: &Value, n: i64) -> Value {
    let mut labels = template["metadata"]["labels"].clone();
    meta::ensure_object(&mut labels).insert(HASH_LABEL.to_string(), json!(revision.hash));
    // The data is the patch that restores the template, as the real controllers store it.
    let mut restore = template.clone();
    meta::ensure_object(&mut restore).insert("$patch".to_string(), json!("replace"));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision.name,
            "namespace": meta::namespace(workload),
            "labels": labels,
            "ownerReferences": [meta::controller_reference(workload)],
        },
        "data": {"spec": {"template": restore}},
        "revision": n,
    })
}

/// Deletes the oldest revisions beyond the history limit, sparing the current and those in use.
fn prune(
    ctl: &mut Controllers,
    workload: &Value,
    revisions: Vec<Value>,
    update: &Revision,
    in_use: &[String],
) {
    let limit = workload["spec"]["revisionHistoryLimit"]
        .as_i64()
        .map_or(DEFAULT_HISTORY_LIMIT, |n| n.max(0) as usize);
    let mut unused: Vec<Value> = revisions
        .into_iter()
        .filter(|r| meta::name(r) != update.name && !in_use.iter().any(|n| n == meta::name(r)))
        .collect();
    unused.sort_by_key(number);
    let excess = unused.len().saturating_sub(limit);
    for revision in &unused[..excess] {
        ctl.delete(&Key::of(Kind::ControllerRevision, revision));
    }
}
