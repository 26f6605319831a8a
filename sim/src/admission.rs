//! What the API server does to an object before storing it from a request: defaulting of the
//! fields the controllers rely on, the status a new object starts with, and validation (422).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::selector::LabelSelector;
use crate::store::ResourceType;

/// Resources whose status is written only through the `status` subresource and starts empty.
fn has_status_subresource(r: &ResourceType) -> bool {
    !matches!(
        r.kind,
        "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "Event"
            | "ControllerRevision"
            | "Role"
            | "ClusterRole"
            | "RoleBinding"
            | "ClusterRoleBinding"
    )
}

/// Sets the status a newly created object starts with.
pub fn initial_status(r: &ResourceType, obj: &mut Value) {
    if !has_status_subresource(r) {
        return;
    }
    obj["status"] = match r.kind {
        "Pod" => json!({"phase": "Pending", "qosClass": "BestEffort"}),
        "Namespace" => json!({"phase": "Active"}),
        _ => json!({}),
    };
}

fn set_default(obj: &mut Value, path: &[&str], value: Value) {
    let mut target = obj;
    for part in &path[..path.len() - 1] {
        if !target[*part].is_object() {
            target[*part] = json!({});
        }
        target = &mut target[*part];
    }
    let last = path[path.len() - 1];
    if target.get(last).is_none_or(Value::is_null) {
        target[last] = value;
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, &["restartPolicy"], json!("Always"));
    set_default(spec, &["terminationGracePeriodSeconds"], json!(30));
    set_default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    set_default(spec, &["schedulerName"], json!("default-scheduler"));
    set_default(spec, &["securityContext"], json!({}));
    for list in ["containers", "initContainers"] {
        // `get_mut`, not indexing: indexing would store `initContainers: null`, which a real
        // server never writes and which changes the template's hash when a patch drops it.
        let containers = spec.get_mut(list).and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            set_default(c, &["imagePullPolicy"], json!("IfNotPresent"));
            set_default(
                c,
                &["terminationMessagePath"],
                json!("/dev/termination-log"),
            );
            set_default(c, &["terminationMessagePolicy"], json!("File"));
            set_default(c, &["resources"], json!({}));
        }
    }
}

/// Fills in the defaults a real API server writes (those the controllers and clients read).
pub fn apply_defaults(r: &ResourceType, obj: &mut Value) {
    match (r.group, r.kind) {
        ("", "Pod") => default_pod_spec(&mut obj["spec"]),
        ("apps", "Deployment") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            set_default(
                obj,
                &["spec", "strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        ("apps", "StatefulSet") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(
                obj,
                &["spec", "updateStrategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
        }
        ("apps", "DaemonSet") => {
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(
                obj,
                &["spec", "updateStrategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        ("", "Secret") if obj["type"].as_str().is_none_or(str::is_empty) => {
            obj["type"] = json!("Opaque");
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            set_default(obj, &["spec", "replicas"], json!(1));
        }
        _ => {}
    }
    if obj["spec"]["template"]["spec"].is_object() {
        default_pod_spec(&mut obj["spec"]["template"]["spec"]);
    }
}

fn validate_pod_spec(
    r: &ResourceType,
    name: &str,
    spec: &Value,
    field: &str,
) -> Result<(), ApiError> {
    let containers = spec["containers"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(r, name, &format!("{field}.containers"), "Required value")
        })?;
    for (i, c) in containers.iter().enumerate() {
        if c["name"].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                r,
                name,
                &format!("{field}.containers[{i}].name"),
                "Required value",
            ));
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                r,
                name,
                &format!("{field}.containers[{i}].image"),
                "Required value",
            ));
        }
    }
    Ok(())
}

/// Rejects objects whose top-level parts are not objects, before anything reads or writes them.
pub fn validate_shape(r: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if !obj.is_object() {
        return Err(ApiError::invalid(r, name, "<root>", "must be an object"));
    }
    for field in ["metadata", "spec", "status"] {
        if obj
            .get(field)
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err(ApiError::invalid(r, name, field, "must be an object"));
        }
    }
    Ok(())
}

/// Rejects objects a real server would reject for the fields this simulation relies on.
pub fn validate(r: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    validate_shape(r, obj)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if !name.is_empty() && !is_dns_subdomain(name) && r.kind != "Event" {
        return Err(ApiError::invalid(
            r,
            name,
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        ));
    }
    match r.kind {
        "ConfigMap" | "Secret" => validate_data_size(r, name, obj)?,
        "Pod" => validate_pod_spec(r, name, &obj["spec"], "spec")?,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Rollout" => {
            validate_pod_spec(
                r,
                name,
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
            )?;
            let selector = LabelSelector::from_spec(obj["spec"].get("selector"))
                .ok_or_else(|| ApiError::invalid(r, name, "spec.selector", "Required value"))?;
            if selector.is_empty() {
                return Err(ApiError::invalid(
                    r,
                    name,
                    "spec.selector",
                    "empty selector is invalid for deployment",
                ));
            }
            if !selector.matches_labels(obj["spec"]["template"]["metadata"].get("labels")) {
                return Err(ApiError::invalid(
                    r,
                    name,
                    "spec.template.metadata.labels",
                    "`selector` does not match template `labels`",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The most a ConfigMap's or a Secret's values may hold together, as kube-apiserver enforces.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// kube-apiserver's limit on the values of a ConfigMap (`data` and `binaryData`, keys not
/// counted) and of a Secret (`data` decoded, and `stringData`), with its message: a report that
/// does not fit must be refused here as it is there.
fn validate_data_size(r: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    use base64::Engine as _;
    let values = |field: &str| {
        obj[field]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_str)
    };
    let decoded = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_or(text.len(), |bytes| bytes.len())
    };
    let (size, field) = if r.kind == "Secret" {
        let data: usize = values("data").map(decoded).sum();
        (
            data + values("stringData").map(str::len).sum::<usize>(),
            "data",
        )
    } else {
        let data: usize = values("data").map(str::len).sum();
        (
            data + values("binaryData").map(decoded).sum::<usize>(),
            "[]",
        )
    };
    if size > MAX_DATA_BYTES {
        return Err(ApiError::too_long(r, name, field, MAX_DATA_BYTES));
    }
    Ok(())
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmaps_and_secrets_hold_at_most_one_mebibyte_of_values() {
        use base64::Engine as _;
        let configmaps = crate::store::resource_for_plural("", "configmaps").unwrap();
        let secrets = crate::store::resource_for_plural("", "secrets").unwrap();
        let configmap = |size: usize| json!({"metadata": {"name": "report"}, "data": {"report.json": "x".repeat(size - 1), "b": "y"}});
        assert!(validate(configmaps, &configmap(MAX_DATA_BYTES)).is_ok());
        let error = validate(configmaps, &configmap(MAX_DATA_BYTES + 1)).unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "ConfigMap \"report\" is invalid: []: Too long: may not be more than 1048576 bytes"
        );
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(vec![b'x'; MAX_DATA_BYTES + 1]);
        let secret = json!({"metadata": {"name": "s"}, "data": {"a": encoded}});
        let error = validate(secrets, &secret).unwrap_err();
        assert_eq!(
            error.message,
            "Secret \"s\" is invalid: data: Too long: may not be more than 1048576 bytes"
        );
    }

    #[test]
    fn defaulting_adds_no_empty_lists() {
        let pods = crate::store::resource_for_plural("", "pods").unwrap();
        let mut pod = json!({"spec": {"containers": [{"name": "app", "image": "app:1"}]}});
        apply_defaults(pods, &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert!(pod["spec"].get("initContainers").is_none());
    }
}
