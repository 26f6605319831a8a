//! Building pods from templates, and reading what state a pod is in: shared by every controller.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Key, Kind, NEW_PODS_ANNOTATION, meta};

/// What the controllers need to know about a pod, kept in the index from store events, so that
/// counting the pods of a workload never copies them.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub key: Key,
    /// The uid of the pod's controller, if it has one.
    pub controller_uid: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub terminating: bool,
    pub node: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub labels: Value,
}

impl PodInfo {
    pub fn of(pod: &Value) -> PodInfo {
        PodInfo {
            key: Key::of(Kind::Pod, pod),
            controller_uid: meta::controller_of(pod).map(|(_, _, _, uid)| uid.to_string()),
            phase: phase(pod).to_string(),
            ready: is_ready(pod),
            terminating: meta::is_terminating(pod),
            node: pod["spec"]["nodeName"].as_str().map(str::to_string),
            created: meta::created_at(pod),
            labels: pod["metadata"]["labels"].clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels[key].as_str()
    }

    /// Running and Ready, and not being deleted: what ordered StatefulSet creation waits for.
    pub fn healthy(&self) -> bool {
        !self.terminating && self.phase == "Running" && self.ready
    }
}

/// How a new pod is named: a fixed name (StatefulSet ordinals) or a prefix the API server
/// completes (`generateName`).
pub enum PodName<'a> {
    Fixed(&'a str),
    Generated(&'a str),
}

/// A new pod from a workload's pod template, with a controller reference to `owner`.
/// `extra_labels` are what the controller adds (`pod-template-hash`, `controller-revision-hash`,
/// ...). The owner's [`NEW_PODS_ANNOTATION`] is passed on, so that the scenario it asks for
/// applies to the pod.
pub fn pod_from_template(
    template: &Value,
    owner: &Value,
    name: PodName<'_>,
    extra_labels: &[(&str, &str)],
) -> Value {
    let mut metadata = json!({
        "namespace": meta::namespace(owner).unwrap_or("default"),
        "labels": template["metadata"]["labels"].clone(),
        "ownerReferences": [meta::controller_reference(owner)],
    });
    match name {
        PodName::Fixed(name) => metadata["name"] = json!(name),
        PodName::Generated(prefix) => metadata["generateName"] = json!(prefix),
    }
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        metadata["annotations"] = json!(annotations);
    }
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"].clone()});
    for (key, value) in extra_labels {
        meta::set_meta_entry(&mut pod, "labels", key, value);
    }
    if let Some(behaviour) = meta::annotation(owner, NEW_PODS_ANNOTATION) {
        meta::set_meta_entry(&mut pod, "annotations", NEW_PODS_ANNOTATION, behaviour);
    }
    pod
}

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

pub fn is_ready(pod: &Value) -> bool {
    meta::condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Orders pods for scale-down the way the ReplicaSet controller does, most expendable first:
/// unscheduled before scheduled, pending before running, not ready before ready, newer before older.
pub fn scale_down_order(pods: &mut [PodInfo]) {
    pods.sort_by_key(|pod| {
        let created = pod.created.map(|t| -t.timestamp()).unwrap_or(0);
        (
            pod.node.is_some(),
            pod.phase == "Running",
            pod.ready,
            created,
            pod.name().to_string(),
        )
    });
}

/// The template a workload's pods are made from, with the hash label the controller adds.
pub fn template_with_label(template: &Value, key: &str, value: &str) -> Value {
    let mut template = template.clone();
    let labels = meta::ensure_object(&mut template["metadata"]["labels"]);
    labels.insert(key.to_string(), json!(value));
    template
}
