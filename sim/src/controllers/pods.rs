//! Building pods from templates, and reading what state a pod is in: shared by every controller.

use serde_json::{Value, json};

use super::{NEW_PODS_ANNOTATION, meta};

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
    let spec = meta::ensure_object(&mut pod["spec"]);
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    pod
}

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

pub fn is_ready(pod: &Value) -> bool {
    meta::condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// A pod that counts towards its controller's replicas: not being deleted. Pods that failed or
/// completed count too, so that a loaded state with such pods is left as it is.
pub fn is_counted(pod: &Value) -> bool {
    !meta::is_terminating(pod)
}

/// Orders pods for scale-down the way the ReplicaSet controller does, most expendable first:
/// unscheduled before scheduled, pending before running, not ready before ready, newer before older.
pub fn scale_down_order(pods: &mut [Value]) {
    pods.sort_by_key(|pod| {
        let scheduled = !pod["spec"]["nodeName"].is_null();
        let running = phase(pod) == "Running";
        let created = meta::created_at(pod).map(|t| -t.timestamp()).unwrap_or(0);
        (
            scheduled,
            running,
            is_ready(pod),
            created,
            meta::name(pod).to_string(),
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
