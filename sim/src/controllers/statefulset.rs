//! The StatefulSet controller: pods `<name>-<ordinal>`, created in order (each Running and Ready
//! before the next, unless `podManagementPolicy: Parallel`), updated with `RollingUpdate` from the
//! highest ordinal down to `partition`, one pod at a time, or not at all with `OnDelete` until a
//! pod is deleted. Pods carry the `controller-revision-hash` of the template they were made from;
//! the status reports `currentRevision` and `updateRevision` as `kubectl rollout status` expects,
//! and each template is kept as a ControllerRevision of that name for `kubectl rollout history`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, PodInfo, PodName};
use super::revision::{self, Revision};
use super::{Controllers, Key, meta};

const REVISION_LABEL: &str = revision::HASH_LABEL;

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let sts = ctl.get(key)?;
    if meta::is_terminating(&sts) {
        return None;
    }
    let name = meta::name(&sts).to_string();
    let spec = &sts["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let parallel = spec["podManagementPolicy"] == "Parallel";
    let on_delete = spec["updateStrategy"]["type"] == "OnDelete";
    let partition = spec["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0)
        .max(0) as usize;

    // A state whose status saw the current spec names the revision of the current template.
    let observed = sts["status"]["observedGeneration"]
        .as_i64()
        .is_none_or(|g| g == meta::generation(&sts));
    let loaded = sts["status"]["updateRevision"]
        .as_str()
        .filter(|_| observed)
        .map(str::to_string);
    let update_revision = ctl.revision_name(&sts, loaded, |hash| format!("{name}-{hash}"));
    let current_revision = sts["status"]["currentRevision"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| update_revision.clone());

    let uid = meta::uid(&sts).to_string();
    let mut by_ordinal: BTreeMap<usize, PodInfo> = BTreeMap::new();
    for pod in ctl.pods_of(&uid) {
        if let Some(ordinal) = pod
            .name()
            .strip_prefix(&format!("{name}-"))
            .and_then(|o| o.parse().ok())
        {
            by_ordinal.insert(ordinal, pod);
        }
    }
    record_revision(ctl, &sts, &current_revision, &update_revision, &by_ordinal);
    let healthy = |pod: &PodInfo| pod.healthy();

    // Create missing pods, lowest ordinal first; in order, wait for each to be Running and Ready.
    let mut waiting = false;
    let mut created = 0;
    for ordinal in 0..replicas {
        if created >= super::CREATE_BURST {
            break;
        }
        match by_ordinal.get(&ordinal) {
            Some(pod) if healthy(pod) => {}
            Some(_) => {
                waiting = true;
                if !parallel {
                    break;
                }
            }
            None => {
                let revision = if !on_delete && ordinal < partition {
                    &current_revision
                } else {
                    &update_revision
                };
                let template = ctl
                    .revision_templates
                    .get(&(uid.clone(), revision.clone()))
                    .cloned()
                    .unwrap_or_else(|| spec["template"].clone());
                let pod_name = format!("{name}-{ordinal}");
                let index = ordinal.to_string();
                let pod = pods::pod_from_template(
                    &template,
                    &sts,
                    PodName::Fixed(&pod_name),
                    &[
                        (REVISION_LABEL, revision),
                        ("statefulset.kubernetes.io/pod-name", &pod_name),
                        ("apps.kubernetes.io/pod-index", &index),
                    ],
                );
                let mut pod = pod;
                pod["spec"]["hostname"] = json!(pod_name);
                if let Some(service) = spec["serviceName"].as_str() {
                    pod["spec"]["subdomain"] = json!(service);
                }
                if let Some(pod) = ctl.create_pod(pod) {
                    let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
                    ctl.record_event(&sts, "SuccessfulCreate", &message, "statefulset-controller");
                    by_ordinal.insert(ordinal, PodInfo::of(&pod));
                }
                created += 1;
                waiting = true;
                if !parallel {
                    break;
                }
            }
        }
    }

    // Scale down from the highest ordinal, one at a time unless parallel.
    let surplus: Vec<usize> = by_ordinal
        .keys()
        .copied()
        .filter(|&o| o >= replicas)
        .rev()
        .collect();
    if !waiting {
        for ordinal in surplus {
            if let Some(pod) = by_ordinal.remove(&ordinal)
                && !pod.terminating
            {
                ctl.delete(&pod.key);
                let message = format!("delete Pod {} in StatefulSet {name} successful", pod.name());
                ctl.record_event(&sts, "SuccessfulDelete", &message, "statefulset-controller");
            }
            if !parallel {
                break;
            }
        }
    }

    // Rolling update: replace the highest outdated pod at or above the partition once all are healthy.
    let all_healthy = (0..replicas).all(|o| by_ordinal.get(&o).is_some_and(healthy));
    if !on_delete && all_healthy {
        let outdated = (partition..replicas).rev().find(|o| {
            by_ordinal
                .get(o)
                .is_some_and(|p| p.label(REVISION_LABEL) != Some(update_revision.as_str()))
        });
        if let Some(pod) = outdated.and_then(|ordinal| by_ordinal.remove(&ordinal)) {
            ctl.delete(&pod.key);
            let message = format!("delete Pod {} in StatefulSet {name} successful", pod.name());
            ctl.record_event(&sts, "SuccessfulDelete", &message, "statefulset-controller");
        }
    }

    let live: Vec<&PodInfo> = by_ordinal.values().filter(|p| !p.terminating).collect();
    let count = |f: &dyn Fn(&PodInfo) -> bool| live.iter().filter(|p| f(p)).count() as i64;
    let ready = count(&|p| p.ready);
    let updated = count(&|p| p.label(REVISION_LABEL) == Some(update_revision.as_str()));
    let mut current_revision = current_revision;
    if updated == replicas as i64 && ready == replicas as i64 && live.len() == replicas {
        current_revision = update_revision.clone();
    }
    let current = count(&|p| p.label(REVISION_LABEL) == Some(current_revision.as_str()));
    let counts = [
        ("observedGeneration", meta::generation(&sts)),
        ("replicas", live.len() as i64),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
    ];
    ctl.modify(key, |obj| {
        super::replicaset::set_counts(&mut obj["status"], &counts);
        obj["status"]["currentRevision"] = json!(current_revision);
        obj["status"]["updateRevision"] = json!(update_revision);
        obj["status"]["collisionCount"] =
            json!(obj["status"]["collisionCount"].as_i64().unwrap_or(0));
    });
    // More pods to create than one burst: continue shortly.
    (created >= super::CREATE_BURST).then_some(Duration::from_millis(10))
}

/// Keeps the update revision's ControllerRevision, and those of the current revision and the
/// pods, from being pruned.
fn record_revision(
    ctl: &mut Controllers,
    sts: &Value,
    current: &str,
    update: &str,
    pods: &BTreeMap<usize, PodInfo>,
) {
    let mut in_use: Vec<String> = pods
        .values()
        .filter_map(|p| p.label(REVISION_LABEL))
        .map(str::to_string)
        .collect();
    in_use.push(current.to_string());
    revision::record(ctl, sts, &Revision::of_statefulset(sts, update), &in_use);
}
