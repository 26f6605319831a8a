//! The Deployment controller: one ReplicaSet per pod template (`<name>-<hash>`, label
//! `pod-template-hash`), rolling from the old ReplicaSets to the new one within `maxSurge` and
//! `maxUnavailable` (or all at once with `Recreate`), nothing while `paused`, and the status
//! `kubectl rollout status` reads, with the `Available` and `Progressing` conditions.
//!
//! The current ReplicaSet is the one whose template equals the Deployment's, ignoring the hash
//! label, as the real controller decides; so a consistent loaded state starts no rollout. The
//! ReplicaSet handling is shared with Argo Rollouts ([`super::rollout`]).

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::pods::template_with_label;
use super::{Controllers, Key, Kind, meta};

/// The annotation that numbers a Deployment's revisions (Argo Rollouts have their own).
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// How a workload rolls its ReplicaSets.
pub struct Strategy {
    pub hash_label: &'static str,
    pub revision_annotation: &'static str,
    pub desired: i64,
    pub max_surge: i64,
    pub max_unavailable: i64,
    pub recreate: bool,
    pub paused: bool,
    pub revision_history_limit: usize,
}

/// A ReplicaSet as the rolling logic sees it.
pub struct Rs {
    pub obj: Value,
    pub key: Key,
    /// `spec.replicas`, as the rolling logic sets it.
    pub target: i64,
    pub pods: i64,
    pub ready: i64,
    pub available: i64,
    pub revision: i64,
}

impl Rs {
    fn new(obj: Value, revision_annotation: &str) -> Rs {
        let target = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        let status = &obj["status"];
        let count = |f: &str| status[f].as_i64().unwrap_or(0);
        Rs {
            key: Key::of(Kind::ReplicaSet, &obj),
            target,
            pods: count("replicas"),
            ready: count("readyReplicas"),
            // Status may lag a scale-down; a ReplicaSet never has more available pods than it wants.
            available: count("availableReplicas").min(target),
            revision: meta::annotation(&obj, revision_annotation)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            obj,
        }
    }
}

/// The ReplicaSets of a workload after one reconcile: the one of the current template (if the
/// workload is not paused before creating it) and the others.
pub struct ReplicaSets {
    pub current: Option<Rs>,
    pub old: Vec<Rs>,
    /// Whether this reconcile created or scaled a ReplicaSet.
    pub changed: bool,
}

impl ReplicaSets {
    pub fn all(&self) -> impl Iterator<Item = &Rs> {
        self.current.iter().chain(self.old.iter())
    }

    pub fn sum(&self, f: impl Fn(&Rs) -> i64) -> i64 {
        self.all().map(f).sum()
    }
}

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let deployment = ctl.get(key)?;
    if meta::is_terminating(&deployment) {
        return None;
    }
    let spec = &deployment["spec"];
    let desired = spec["replicas"].as_i64().unwrap_or(1).max(0);
    let rolling = &spec["strategy"]["rollingUpdate"];
    let strategy = Strategy {
        hash_label: "pod-template-hash",
        revision_annotation: REVISION,
        desired,
        max_surge: meta::int_or_percent(&rolling["maxSurge"], desired, "25%", true),
        max_unavailable: meta::int_or_percent(&rolling["maxUnavailable"], desired, "25%", false),
        recreate: spec["strategy"]["type"] == "Recreate",
        paused: spec["paused"] == true,
        revision_history_limit: spec["revisionHistoryLimit"].as_u64().unwrap_or(10) as usize,
    };
    let sets = reconcile_replica_sets(ctl, &deployment, &strategy);
    write_status(ctl, key, &deployment, &strategy, &sets)
}

/// Finds or creates the ReplicaSet of the workload's template, scales the ReplicaSets one step
/// of the rollout, and prunes old ones beyond the history limit.
pub fn reconcile_replica_sets(
    ctl: &mut Controllers,
    owner: &Value,
    strategy: &Strategy,
) -> ReplicaSets {
    let owner_uid = meta::uid(owner);
    let template = &owner["spec"]["template"];
    let mut all: Vec<Rs> = ctl
        .dependents(owner_uid, Kind::ReplicaSet)
        .into_iter()
        .filter(|rs| meta::controller_of(rs).is_some_and(|(_, _, _, uid)| uid == owner_uid))
        .filter(|rs| !meta::is_terminating(rs))
        .map(|rs| Rs::new(rs, strategy.revision_annotation))
        .collect();
    all.sort_by_key(|rs| (meta::created_at(&rs.obj), meta::name(&rs.obj).to_string()));
    let current_index = all.iter().position(|rs| {
        meta::templates_equal_ignoring(&rs.obj["spec"]["template"], template, strategy.hash_label)
    });
    let mut current = current_index.map(|i| all.remove(i));
    let mut old = all;
    let mut changed = false;
    let max_old_revision = old.iter().map(|rs| rs.revision).max().unwrap_or(0);

    if current.is_none() && !strategy.paused {
        current = create_replica_set(ctl, owner, strategy, max_old_revision + 1)
            .map(|rs| Rs::new(rs, strategy.revision_annotation));
        changed = current.is_some();
    }
    let Some(new) = current.as_mut() else {
        return ReplicaSets {
            current,
            old,
            changed,
        };
    };
    if new.revision <= max_old_revision {
        // A rollback to an older template makes that ReplicaSet the newest revision again.
        new.revision = max_old_revision + 1;
        let revision = new.revision.to_string();
        ctl.modify(&new.key, |rs| {
            meta::set_meta_entry(rs, "annotations", strategy.revision_annotation, &revision)
        });
    }
    let owner_revision = new.revision.to_string();
    if meta::annotation(owner, strategy.revision_annotation) != Some(owner_revision.as_str()) {
        let owner_key = Key::of(owner_kind(owner), owner);
        ctl.modify(&owner_key, |o| {
            meta::set_meta_entry(
                o,
                "annotations",
                strategy.revision_annotation,
                &owner_revision,
            )
        });
    }

    if strategy.paused {
        // A paused workload only follows scaling, and only when it is not mid-rollout.
        if old.iter().all(|rs| rs.target == 0) {
            new.target = strategy.desired;
        }
    } else if strategy.recreate {
        for rs in old.iter_mut() {
            rs.target = 0;
        }
        if old.iter().all(|rs| rs.pods == 0) {
            new.target = strategy.desired;
        }
    } else {
        roll(strategy, new, &mut old);
    }
    for rs in std::iter::once(&*new).chain(old.iter()) {
        let target = rs.target;
        if rs.obj["spec"]["replicas"].as_i64() != Some(target) {
            changed = true;
            let desired = strategy.desired.to_string();
            let max = (strategy.desired + strategy.max_surge).to_string();
            ctl.modify(&rs.key, |obj| {
                obj["spec"]["replicas"] = json!(target);
                meta::set_meta_entry(
                    obj,
                    "annotations",
                    "deployment.kubernetes.io/desired-replicas",
                    &desired,
                );
                meta::set_meta_entry(
                    obj,
                    "annotations",
                    "deployment.kubernetes.io/max-replicas",
                    &max,
                );
            });
            let was = rs.obj["spec"]["replicas"].as_i64().unwrap_or(0);
            let direction = if target > was { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {was} to {target}",
                meta::name(&rs.obj)
            );
            let component = if owner["kind"] == "Rollout" {
                "rollouts-controller"
            } else {
                "deployment-controller"
            };
            ctl.record_event(owner, "ScalingReplicaSet", &message, component);
        }
    }
    if !strategy.paused {
        prune_history(ctl, &mut old, strategy.revision_history_limit);
    }
    ReplicaSets {
        current,
        old,
        changed,
    }
}

/// One step of a rolling update, as the Deployment controller computes it: scale the new
/// ReplicaSet up as far as `maxSurge` allows, then the old ones down as far as `maxUnavailable`
/// allows, unhealthy pods first.
fn roll(strategy: &Strategy, new: &mut Rs, old: &mut [Rs]) {
    let desired = strategy.desired;
    let (max_surge, mut max_unavailable) = (strategy.max_surge, strategy.max_unavailable);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let old_targets: i64 = old.iter().map(|rs| rs.target).sum();
    if old_targets == 0 {
        new.target = desired;
        return;
    }
    let total = new.target + old_targets;
    let max_total = desired + max_surge;
    if new.target < desired && total < max_total {
        new.target = (new.target + max_total - total).min(desired);
    } else if new.target > desired {
        new.target = desired;
    }

    let min_available = desired - max_unavailable;
    let all_targets = new.target + old.iter().map(|rs| rs.target).sum::<i64>();
    let new_unavailable = (new.target - new.available).max(0);
    let mut may_scale_down = all_targets - min_available - new_unavailable;
    if may_scale_down <= 0 {
        return;
    }
    // Old pods that are not available anyway go first: removing them costs no availability.
    for rs in old.iter_mut() {
        let unhealthy = (rs.target - rs.available).max(0).min(may_scale_down);
        rs.target -= unhealthy;
        may_scale_down -= unhealthy;
    }
    let available: i64 = new.available.min(new.target)
        + old
            .iter()
            .map(|rs| rs.available.min(rs.target))
            .sum::<i64>();
    let mut may_remove_available = (available - min_available).min(may_scale_down);
    for rs in old.iter_mut() {
        let cut = rs.target.min(may_remove_available.max(0));
        rs.target -= cut;
        may_remove_available -= cut;
    }
}

fn owner_kind(owner: &Value) -> Kind {
    if owner["kind"] == "Rollout" {
        Kind::Rollout
    } else {
        Kind::Deployment
    }
}

fn create_replica_set(
    ctl: &mut Controllers,
    owner: &Value,
    strategy: &Strategy,
    revision: i64,
) -> Option<Value> {
    let template = &owner["spec"]["template"];
    let first_collision = owner["status"]["collisionCount"].as_i64().unwrap_or(0);
    for collisions in first_collision..first_collision + 5 {
        let hash = meta::template_hash(template, collisions);
        let name = format!("{}-{hash}", meta::name(owner));
        let rs_template = template_with_label(template, strategy.hash_label, &hash);
        let mut annotations = owner["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        annotations.insert(
            strategy.revision_annotation.to_string(),
            json!(revision.to_string()),
        );
        annotations.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            json!(strategy.desired.to_string()),
        );
        annotations.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            json!((strategy.desired + strategy.max_surge).to_string()),
        );
        let mut selector = owner["spec"]["selector"].clone();
        meta::ensure_object(&mut selector["matchLabels"])
            .insert(strategy.hash_label.to_string(), json!(hash));
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta::namespace(owner),
                "labels": rs_template["metadata"]["labels"],
                "annotations": annotations,
                "ownerReferences": [meta::controller_reference(owner)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": owner["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": rs_template,
            },
        });
        if let Some(created) = ctl.create(Kind::ReplicaSet, rs) {
            return Some(created);
        }
        // The name is taken by a ReplicaSet of another template: count a collision, as the real
        // controller does, and try the next hash.
        let owner_key = Key::of(owner_kind(owner), owner);
        ctl.modify(&owner_key, |o| {
            o["status"]["collisionCount"] = json!(collisions + 1)
        });
    }
    None
}

/// Deletes the oldest empty old ReplicaSets beyond `revisionHistoryLimit`.
fn prune_history(ctl: &mut Controllers, old: &mut Vec<Rs>, limit: usize) {
    let empty = old
        .iter()
        .filter(|rs| rs.target == 0 && rs.pods == 0)
        .count();
    if empty <= limit {
        return;
    }
    // The oldest revisions go first.
    old.sort_by_key(|rs| rs.revision);
    let mut surplus = empty - limit;
    old.retain(|rs| {
        let doomed = surplus > 0 && rs.target == 0 && rs.pods == 0;
        if doomed {
            surplus -= 1;
            ctl.delete(&rs.key);
        }
        !doomed
    });
}

fn write_status(
    ctl: &mut Controllers,
    key: &Key,
    deployment: &Value,
    strategy: &Strategy,
    sets: &ReplicaSets,
) -> Option<Duration> {
    let desired = strategy.desired;
    let replicas = sets.sum(|rs| rs.pods);
    let updated = sets.current.as_ref().map_or(0, |rs| rs.pods);
    let ready = sets.sum(|rs| rs.ready);
    let available = sets.sum(|rs| rs.available);
    let old_pods: i64 = sets.old.iter().map(|rs| rs.pods).sum();
    let previous = &deployment["status"];
    let was = |f: &str| previous[f].as_i64().unwrap_or(0);
    // Progress, as the real controller sees it: more updated, ready or available pods, or fewer old.
    let progressed = sets.changed
        || updated > was("updatedReplicas")
        || ready > was("readyReplicas")
        || available > was("availableReplicas")
        || replicas - updated < was("replicas") - was("updatedReplicas");
    let complete =
        updated == desired && replicas == desired && available == desired && old_pods == 0;

    let now = meta::now();
    let mut conditions: Vec<Value> = previous["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let min_available = desired - strategy.max_unavailable;
    let (available_status, available_reason, available_message) = if available >= min_available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition_keeping_update_time(
        &mut conditions,
        json!({"type": "Available", "status": available_status, "reason": available_reason, "message": available_message}),
        &now,
        false,
    );
    let requeue = update_progressing(
        &mut conditions,
        deployment,
        Progress {
            paused: strategy.paused,
            complete,
            progressed,
            created: sets.changed,
        },
        sets,
        &now,
    );
    conditions.sort_by_key(|c| if c["type"] == "Available" { 0 } else { 1 });

    let counts = [
        ("observedGeneration", meta::generation(deployment)),
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", (desired - available).max(0)),
    ];
    ctl.modify(key, |d| {
        super::replicaset::set_counts(&mut d["status"], &counts);
        d["status"]["conditions"] = json!(conditions);
    });
    requeue
}

/// What a reconcile found about a rollout's progress.
pub struct Progress {
    pub paused: bool,
    pub complete: bool,
    /// More updated, ready or available pods, or fewer old ones, than the status said.
    pub progressed: bool,
    /// This reconcile created or scaled a ReplicaSet.
    pub created: bool,
}

/// Sets the `Progressing` condition as the Deployment controller does (Argo Rollouts too):
/// `NewReplicaSetAvailable` once complete, `ReplicaSetUpdated` while progress is made, and
/// `ProgressDeadlineExceeded` when none was made for `spec.progressDeadlineSeconds` (default 600).
/// A completed rollout is not timed out by pods failing later. Returns when to look again.
pub fn update_progressing(
    conditions: &mut Vec<Value>,
    obj: &Value,
    progress: Progress,
    sets: &ReplicaSets,
    now: &str,
) -> Option<Duration> {
    let deadline = obj["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .unwrap_or(600);
    let rs_name = sets
        .current
        .as_ref()
        .map(|rs| meta::name(&rs.obj).to_string())
        .unwrap_or_default();
    let progressing = meta::condition(obj, "Progressing").cloned();
    let old_reason = progressing
        .as_ref()
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default();
    let mut requeue = None;
    let kind = obj["kind"].as_str().unwrap_or("Deployment");
    let paused_reason = format!("{kind}Paused");
    let new_progressing = if progress.paused {
        Some(
            json!({"type": "Progressing", "status": "Unknown", "reason": paused_reason,
                    "message": format!("{kind} is paused")}),
        )
    } else if progress.complete {
        Some(
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                    "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed.")}),
        )
    } else if progress.progressed || progressing.is_none() || old_reason == paused_reason {
        let reason = if progress.created && old_reason != "ReplicaSetUpdated" {
            "NewReplicaSetCreated"
        } else {
            "ReplicaSetUpdated"
        };
        requeue = Some(Duration::from_secs(deadline.max(0) as u64) + Duration::from_millis(100));
        Some(
            json!({"type": "Progressing", "status": "True", "reason": reason,
                    "message": format!("ReplicaSet \"{rs_name}\" is progressing.")}),
        )
    } else if old_reason == "ProgressDeadlineExceeded" || old_reason == "NewReplicaSetAvailable" {
        // A rollout that timed out stays so; one that completed is not timed out by pods failing later.
        None
    } else {
        let since = progressing
            .as_ref()
            .and_then(|c| c["lastUpdateTime"].as_str())
            .and_then(meta::parse_time)
            .unwrap_or_else(Utc::now);
        let overdue = Utc::now().signed_duration_since(since).num_milliseconds() - deadline * 1000;
        if overdue >= 0 {
            Some(
                json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                        "message": format!("ReplicaSet \"{rs_name}\" has timed out progressing.")}),
            )
        } else {
            requeue = Some(Duration::from_millis((-overdue) as u64 + 100));
            None
        }
    };
    if let Some(condition) = new_progressing {
        let touch = progress.progressed || condition["reason"] != old_reason;
        set_condition_keeping_update_time(conditions, condition, now, touch);
    }
    requeue
}

/// Sets a condition as the Deployment controller does: `lastTransitionTime` moves when the status
/// changes, `lastUpdateTime` when the condition is touched (progress) or its reason changes.
fn set_condition_keeping_update_time(
    conditions: &mut Vec<Value>,
    mut new: Value,
    now: &str,
    touch: bool,
) {
    let old = conditions
        .iter()
        .find(|c| c["type"] == new["type"])
        .cloned();
    new["lastUpdateTime"] = match &old {
        Some(old)
            if !touch && old["reason"] == new["reason"] && !old["lastUpdateTime"].is_null() =>
        {
            old["lastUpdateTime"].clone()
        }
        _ => json!(now),
    };
    meta::set_condition(conditions, new, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(target: i64, available: i64) -> Rs {
        Rs {
            obj: json!({}),
            key: Key::new(Kind::ReplicaSet, "ns", "rs"),
            target,
            pods: target,
            ready: available,
            available,
            revision: 1,
        }
    }

    fn strategy(desired: i64, surge: i64, unavailable: i64) -> Strategy {
        Strategy {
            hash_label: "pod-template-hash",
            revision_annotation: REVISION,
            desired,
            max_surge: surge,
            max_unavailable: unavailable,
            recreate: false,
            paused: false,
            revision_history_limit: 10,
        }
    }

    #[test]
    fn a_rolling_update_surges_then_scales_down_within_bounds() {
        let s = strategy(4, 1, 1);
        let mut new = rs(0, 0);
        let mut old = vec![rs(4, 4)];
        roll(&s, &mut new, &mut old);
        assert_eq!((new.target, old[0].target), (1, 3));
        // New pods never get ready: the rollout stalls at minimum availability.
        let mut new = rs(1, 0);
        let mut old = vec![rs(3, 3)];
        roll(&s, &mut new, &mut old);
        assert_eq!((new.target, old[0].target), (2, 3));
        let mut new = rs(2, 0);
        roll(&s, &mut new, &mut old);
        assert_eq!((new.target, old[0].target), (2, 3));
        // Once the new pods are available, the old go.
        let mut new = rs(2, 2);
        roll(&s, &mut new, &mut old);
        assert_eq!((new.target, old[0].target), (2, 1));
    }

    #[test]
    fn no_surge_no_unavailable_still_moves() {
        let s = strategy(2, 0, 0);
        let mut new = rs(0, 0);
        let mut old = vec![rs(2, 2)];
        roll(&s, &mut new, &mut old);
        assert_eq!((new.target, old[0].target), (0, 1));
    }
}
