//! The ReplicaSet and ReplicationController controllers: keep `spec.replicas` pods, replacing
//! deleted ones, and report the counts. A pod counts whatever its phase (only pods being deleted
//! do not), so a loaded ReplicaSet with the right number of pods creates nothing.

use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, PodInfo, PodName};
use super::{Controllers, Key, Kind, meta};

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let owner = ctl.get(key)?;
    if meta::is_terminating(&owner) {
        return None;
    }
    let desired = owner["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let mut pods = owned_pods(ctl, &owner);
    let missing = desired - pods.len() as i64;
    if missing > 0 {
        let prefix = format!("{}-", meta::name(&owner));
        for _ in 0..missing.min(super::CREATE_BURST) {
            let pod = pods::pod_from_template(
                &owner["spec"]["template"],
                &owner,
                PodName::Generated(&prefix),
                &[],
            );
            if let Some(created) = ctl.create_pod(pod) {
                let message = format!("Created pod: {}", meta::name(&created));
                ctl.record_event(&owner, "SuccessfulCreate", &message, controller_name(key));
                pods.push(PodInfo::of(&created));
            }
        }
    } else if missing < 0 {
        pods::scale_down_order(&mut pods);
        let surplus: Vec<PodInfo> = pods.drain(..(-missing) as usize).collect();
        for pod in &surplus {
            ctl.delete(&pod.key);
            let message = format!("Deleted pod: {}", pod.name());
            ctl.record_event(&owner, "SuccessfulDelete", &message, controller_name(key));
        }
    }
    write_status(ctl, key, &owner, &pods);
    // More pods to create than one burst: continue shortly.
    (missing > super::CREATE_BURST).then_some(Duration::from_millis(10))
}

fn controller_name(key: &Key) -> &'static str {
    match key.kind {
        Kind::ReplicationController => "replication-controller",
        _ => "replicaset-controller",
    }
}

/// The pods a ReplicaSet or ReplicationController controls and counts: all but those being
/// deleted, whatever their phase, so that a loaded state with failed pods is left as it is.
pub fn owned_pods(ctl: &Controllers, owner: &Value) -> Vec<PodInfo> {
    let mut pods = ctl.pods_of(meta::uid(owner));
    pods.retain(|pod| !pod.terminating);
    pods
}

fn write_status(ctl: &mut Controllers, key: &Key, owner: &Value, pods: &[PodInfo]) {
    let selector = &owner["spec"]["selector"];
    // A ReplicationController's selector is a plain label map.
    let selector = if key.kind == Kind::ReplicationController {
        json!({"matchLabels": selector})
    } else {
        selector.clone()
    };
    let ready = pods.iter().filter(|p| p.ready).count() as i64;
    let labelled = pods
        .iter()
        .filter(|p| meta::selector_matches(&selector, &p.labels))
        .count() as i64;
    let counts = [
        ("replicas", pods.len() as i64),
        ("fullyLabeledReplicas", labelled),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("observedGeneration", meta::generation(owner)),
    ];
    ctl.modify(key, |obj| set_counts(&mut obj["status"], &counts));
}

/// Sets integer status fields, leaving out zeros as the API server's `omitempty` does (except
/// `replicas`, which is always present). Other status fields are kept.
pub fn set_counts(status: &mut Value, counts: &[(&str, i64)]) {
    let status = meta::ensure_object(status);
    for (field, value) in counts {
        if *value == 0 && *field != "replicas" {
            status.remove(*field);
        } else {
            status.insert(field.to_string(), json!(value));
        }
    }
}
