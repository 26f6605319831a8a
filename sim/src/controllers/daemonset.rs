//! The DaemonSet controller: one pod per node (the Nodes of the state, or three simulated nodes
//! when it has none), replaced with `RollingUpdate` within `maxUnavailable`, or only when deleted
//! with `OnDelete`. Pods carry the `controller-revision-hash` of their template, which is kept as
//! the ControllerRevision `<name>-<hash>` for `kubectl rollout history`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, PodInfo, PodName};
use super::revision::{self, Revision};
use super::{Controllers, Key, meta};

const REVISION_LABEL: &str = revision::HASH_LABEL;

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let ds = ctl.get(key)?;
    if meta::is_terminating(&ds) {
        return None;
    }
    let uid = meta::uid(&ds).to_string();
    let spec = &ds["spec"];
    let on_delete = spec["updateStrategy"]["type"] == "OnDelete";
    let mut owned = ctl.pods_of(&uid);
    owned.retain(|p| !p.terminating);
    owned.sort_by_key(|p| (p.created, p.name().to_string()));
    let nodes = nodes_of(ctl, &uid, &owned);
    let desired = nodes.len() as i64;
    let max_unavailable = meta::int_or_percent(
        &spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
        "1",
        true,
    )
    .max(1);

    // The newest pod was made from the template the state's DaemonSet has.
    let loaded = owned
        .last()
        .and_then(|p| p.label(REVISION_LABEL))
        .map(str::to_string);
    let observed = ds["status"]["observedGeneration"]
        .as_i64()
        .is_none_or(|g| g == meta::generation(&ds));
    let revision = ctl.revision_name(&ds, loaded.filter(|_| observed), |hash| hash.to_string());
    record_revision(ctl, &ds, &revision, &owned);

    let mut by_node: BTreeMap<String, Vec<PodInfo>> =
        nodes.iter().map(|n| (n.clone(), Vec::new())).collect();
    for pod in owned {
        match by_node.get_mut(pod.node.as_deref().unwrap_or_default()) {
            Some(list) => list.push(pod),
            // A pod on no node of the cluster is misscheduled.
            None => ctl.delete(&pod.key),
        }
    }
    for (node, list) in by_node.iter_mut() {
        // One pod per node: the newest extra ones go.
        while list.len() > 1 {
            let extra = list.pop().expect("more than one");
            ctl.delete(&extra.key);
        }
        if list.is_empty() {
            let generation = meta::generation(&ds).to_string();
            let mut pod = pods::pod_from_template(
                &spec["template"],
                &ds,
                PodName::Generated(&format!("{}-", meta::name(&ds))),
                &[
                    (REVISION_LABEL, &revision),
                    ("pod-template-generation", &generation),
                ],
            );
            pod["spec"]["nodeName"] = json!(node);
            if let Some(created) = ctl.create_pod(pod) {
                let message = format!("Created pod: {}", meta::name(&created));
                ctl.record_event(&ds, "SuccessfulCreate", &message, "daemonset-controller");
                list.push(PodInfo::of(&created));
            }
        }
    }

    if !on_delete {
        let unavailable = by_node
            .values()
            .filter(|l| !l.first().is_some_and(|p| p.ready))
            .count() as i64;
        let mut budget = max_unavailable - unavailable;
        let outdated: Vec<PodInfo> = by_node
            .values()
            .filter_map(|l| l.first())
            .filter(|p| p.label(REVISION_LABEL) != Some(revision.as_str()))
            .cloned()
            .collect();
        for pod in outdated {
            // Replacing a pod that is not available anyway costs nothing.
            if pod.ready {
                if budget <= 0 {
                    continue;
                }
                budget -= 1;
            }
            ctl.delete(&pod.key);
            let message = format!("Deleted pod: {}", pod.name());
            ctl.record_event(&ds, "SuccessfulDelete", &message, "daemonset-controller");
            if let Some(list) = by_node.get_mut(pod.node.as_deref().unwrap_or_default()) {
                list.clear();
            }
        }
    }

    let scheduled: Vec<&PodInfo> = by_node.values().filter_map(|l| l.first()).collect();
    let ready = scheduled.iter().filter(|p| p.ready).count() as i64;
    let updated = scheduled
        .iter()
        .filter(|p| p.label(REVISION_LABEL) == Some(revision.as_str()))
        .count() as i64;
    let counts = [
        ("observedGeneration", meta::generation(&ds)),
        ("desiredNumberScheduled", desired),
        ("currentNumberScheduled", scheduled.len() as i64),
        ("numberMisscheduled", 0),
        ("numberReady", ready),
        ("numberAvailable", ready),
        ("numberUnavailable", (desired - ready).max(0)),
        ("updatedNumberScheduled", updated),
    ];
    ctl.modify(key, |obj| {
        super::replicaset::set_counts(&mut obj["status"], &counts);
        for always in [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "numberMisscheduled",
            "numberReady",
        ] {
            if obj["status"][always].is_null() {
                obj["status"][always] = json!(0);
            }
        }
    });
    None
}

/// The nodes a DaemonSet runs on: the Nodes of the state. A state without Node objects only says
/// where the DaemonSet's pods run; the nodes of its pods when first seen are its nodes from then
/// on, so that loading such a state moves nothing (and a DaemonSet without pods gets the cluster's).
fn nodes_of(ctl: &mut Controllers, uid: &str, pods: &[PodInfo]) -> Vec<String> {
    if ctl.has_node_objects() {
        return ctl.node_names();
    }
    if let Some(nodes) = ctl.daemonset_nodes.get(uid) {
        return nodes.clone();
    }
    let mut nodes: Vec<String> = pods.iter().filter_map(|p| p.node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        nodes = ctl.node_names();
    }
    ctl.daemonset_nodes.insert(uid.to_string(), nodes.clone());
    nodes
}

/// Keeps the current template's ControllerRevision, and those of the pods, from being pruned.
fn record_revision(ctl: &mut Controllers, ds: &Value, hash: &str, pods: &[PodInfo]) {
    let in_use: Vec<String> = pods
        .iter()
        .filter_map(|p| p.label(REVISION_LABEL))
        .map(|hash| Revision::of_daemonset(ds, hash).name)
        .collect();
    revision::record(ctl, ds, &Revision::of_daemonset(ds, hash), &in_use);
}
