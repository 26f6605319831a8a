//! `meta.k8s.io/v1` Table rendering, what `kubectl get` asks for to print its columns.

use serde_json::{Value, json};

use crate::store::ResourceType;

/// Whether the `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn column(name: &str, kind: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

fn columns(r: &ResourceType) -> Vec<Value> {
    let name = column("Name", "string", "name", 0);
    let age = column("Age", "string", "", 0);
    match r.kind {
        "Pod" => vec![
            name,
            column("Ready", "string", "", 0),
            column("Status", "string", "", 0),
            column("Restarts", "string", "", 0),
            age,
            column("IP", "string", "", 1),
            column("Node", "string", "", 1),
        ],
        "Deployment" | "StatefulSet" | "Rollout" => vec![
            name,
            column("Ready", "string", "", 0),
            column("Up-to-date", "integer", "", 0),
            column("Available", "integer", "", 0),
            age,
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            name,
            column("Desired", "integer", "", 0),
            column("Current", "integer", "", 0),
            column("Ready", "integer", "", 0),
            age,
        ],
        "DaemonSet" => vec![
            name,
            column("Desired", "integer", "", 0),
            column("Current", "integer", "", 0),
            column("Ready", "integer", "", 0),
            column("Up-to-date", "integer", "", 0),
            column("Available", "integer", "", 0),
            age,
        ],
        "Namespace" => vec![name, column("Status", "string", "", 0), age],
        "Event" => vec![
            column("Last Seen", "string", "", 0),
            column("Type", "string", "", 0),
            column("Reason", "string", "", 0),
            column("Object", "string", "", 0),
            column("Message", "string", "", 0),
        ],
        _ => vec![name, age],
    }
}

/// `5s`, `3m`, `2h`, `4d` since an RFC 3339 timestamp, as kubectl prints ages.
fn age(timestamp: &Value) -> String {
    let Some(t) = timestamp
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return "<unknown>".to_string();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    let waiting = statuses
        .iter()
        .find_map(|s| s["state"]["waiting"]["reason"].as_str());
    let status = if pod["metadata"].get("deletionTimestamp").is_some() {
        "Terminating".to_string()
    } else {
        waiting
            .or(pod["status"]["phase"].as_str())
            .unwrap_or("Unknown")
            .to_string()
    };
    vec![
        pod["metadata"]["name"].clone(),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        json!(age(&pod["metadata"]["creationTimestamp"])),
        json!(pod["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(pod["spec"]["nodeName"].as_str().unwrap_or("<none>")),
    ]
}

fn cells(r: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    let created = json!(age(&obj["metadata"]["creationTimestamp"]));
    let status = &obj["status"];
    let int = |v: &Value| json!(v.as_i64().unwrap_or(0));
    match r.kind {
        "Pod" => pod_cells(obj),
        "Deployment" | "StatefulSet" | "Rollout" => vec![
            name,
            json!(format!(
                "{}/{}",
                status["readyReplicas"].as_i64().unwrap_or(0),
                obj["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            int(&status["updatedReplicas"]),
            int(&status["availableReplicas"]),
            created,
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            name,
            int(&obj["spec"]["replicas"]),
            int(&status["replicas"]),
            int(&status["readyReplicas"]),
            created,
        ],
        "DaemonSet" => vec![
            name,
            int(&status["desiredNumberScheduled"]),
            int(&status["currentNumberScheduled"]),
            int(&status["numberReady"]),
            int(&status["updatedNumberScheduled"]),
            int(&status["numberAvailable"]),
            created,
        ],
        "Namespace" => vec![
            name,
            json!(status["phase"].as_str().unwrap_or("Active")),
            created,
        ],
        "Event" => vec![
            json!(age(obj
                .get("lastTimestamp")
                .filter(|t| !t.is_null())
                .unwrap_or(&obj["metadata"]["creationTimestamp"]))),
            obj["type"].clone(),
            obj["reason"].clone(),
            json!(format!(
                "{}/{}",
                obj["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase(),
                obj["involvedObject"]["name"].as_str().unwrap_or_default()
            )),
            obj["message"].clone(),
        ],
        _ => vec![name, created],
    }
}

/// A Table of `items`. Rows carry the object's metadata (`includeObject=Metadata`, kubectl's
/// default) or the whole object (`includeObject=Object`).
pub fn render(r: &ResourceType, items: &[Value], list_meta: Value, include_object: &str) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
            };
            json!({"cells": cells(r, obj), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns(r),
        "rows": rows,
    })
}
