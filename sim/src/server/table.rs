//! `meta.k8s.io/v1` Table rendering, what `kubectl get` asks for to print its columns. Each kind
//! has the columns the real server prints for it; kinds without a printer get NAME and AGE.

use serde_json::{Value, json};

use crate::store::ResourceType;

/// Whether the `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// One column: its header, its type, whether only `-o wide` shows it, and its cell.
struct Column {
    name: &'static str,
    kind: &'static str,
    wide: bool,
    cell: fn(&Value) -> Value,
}

const fn col(name: &'static str, kind: &'static str, cell: fn(&Value) -> Value) -> Column {
    Column {
        name,
        kind,
        wide: false,
        cell,
    }
}

const fn wide(name: &'static str, cell: fn(&Value) -> Value) -> Column {
    Column {
        name,
        kind: "string",
        wide: true,
        cell,
    }
}

fn name(obj: &Value) -> Value {
    obj["metadata"]["name"].clone()
}

fn created(obj: &Value) -> Value {
    json!(elapsed_since(&obj["metadata"]["creationTimestamp"]))
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn text_or(v: &Value, default: &str) -> Value {
    match v {
        Value::String(s) if !s.is_empty() => json!(s),
        Value::Number(n) => json!(n.to_string()),
        _ => json!(default),
    }
}

/// `5s`, `3m`, `2h`, `4d` since an RFC 3339 timestamp, as kubectl prints ages.
fn elapsed_since(timestamp: &Value) -> String {
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

fn container_statuses(pod: &Value) -> Vec<Value> {
    pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod_ready(pod: &Value) -> Value {
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = container_statuses(pod)
        .iter()
        .filter(|s| s["ready"] == true)
        .count();
    json!(format!("{ready}/{total}"))
}

fn pod_status(pod: &Value) -> Value {
    if pod["metadata"].get("deletionTimestamp").is_some() {
        return json!("Terminating");
    }
    let statuses = container_statuses(pod);
    let waiting = statuses
        .iter()
        .find_map(|s| s["state"]["waiting"]["reason"].as_str());
    json!(
        waiting
            .or(pod["status"]["phase"].as_str())
            .unwrap_or("Unknown")
    )
}

fn pod_restarts(pod: &Value) -> Value {
    let restarts: i64 = container_statuses(pod)
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    json!(restarts.to_string())
}

fn ready_of_replicas(obj: &Value) -> Value {
    json!(format!(
        "{}/{}",
        obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
        obj["spec"]["replicas"].as_i64().unwrap_or(1)
    ))
}

fn printer(r: &ResourceType) -> Vec<Column> {
    let age = col("Age", "string", created);
    match r.kind {
        "Pod" => vec![
            col("Name", "string", name),
            col("Ready", "string", pod_ready),
            col("Status", "string", pod_status),
            col("Restarts", "string", pod_restarts),
            age,
            wide("IP", |p| text_or(&p["status"]["podIP"], "<none>")),
            wide("Node", |p| text_or(&p["spec"]["nodeName"], "<none>")),
        ],
        "Deployment" => vec![
            col("Name", "string", name),
            col("Ready", "string", ready_of_replicas),
            col("Up-to-date", "integer", |o| {
                int(&o["status"]["updatedReplicas"])
            }),
            col("Available", "integer", |o| {
                int(&o["status"]["availableReplicas"])
            }),
            age,
        ],
        "StatefulSet" => vec![
            col("Name", "string", name),
            col("Ready", "string", ready_of_replicas),
            age,
        ],
        "Rollout" => vec![
            col("Name", "string", name),
            col("Desired", "integer", |o| {
                json!(o["spec"]["replicas"].as_i64().unwrap_or(1))
            }),
            col("Current", "integer", |o| int(&o["status"]["replicas"])),
            col("Up-to-date", "integer", |o| {
                int(&o["status"]["updatedReplicas"])
            }),
            col("Available", "integer", |o| {
                int(&o["status"]["availableReplicas"])
            }),
            age,
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            col("Name", "string", name),
            col("Desired", "integer", |o| int(&o["spec"]["replicas"])),
            col("Current", "integer", |o| int(&o["status"]["replicas"])),
            col("Ready", "integer", |o| int(&o["status"]["readyReplicas"])),
            age,
        ],
        "DaemonSet" => vec![
            col("Name", "string", name),
            col("Desired", "integer", |o| {
                int(&o["status"]["desiredNumberScheduled"])
            }),
            col("Current", "integer", |o| {
                int(&o["status"]["currentNumberScheduled"])
            }),
            col("Ready", "integer", |o| int(&o["status"]["numberReady"])),
            col("Up-to-date", "integer", |o| {
                int(&o["status"]["updatedNumberScheduled"])
            }),
            col("Available", "integer", |o| {
                int(&o["status"]["numberAvailable"])
            }),
            age,
        ],
        "Job" => vec![
            col("Name", "string", name),
            col("Status", "string", |j| {
                let conditions = j["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let holds = |t: &str| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == t && c["status"] == "True")
                };
                json!(if holds("Complete") {
                    "Complete"
                } else if holds("Failed") {
                    "Failed"
                } else {
                    "Running"
                })
            }),
            col("Completions", "string", |j| {
                json!(format!(
                    "{}/{}",
                    j["status"]["succeeded"].as_i64().unwrap_or(0),
                    j["spec"]["completions"].as_i64().unwrap_or(1)
                ))
            }),
            age,
        ],
        "CronJob" => vec![
            col("Name", "string", name),
            col("Schedule", "string", |c| {
                text_or(&c["spec"]["schedule"], "")
            }),
            col("Suspend", "boolean", |c| {
                json!(c["spec"]["suspend"].as_bool().unwrap_or(false))
            }),
            col("Active", "integer", |c| {
                json!(c["status"]["active"].as_array().map_or(0, Vec::len))
            }),
            col("Last Schedule", "string", |c| {
                match c["status"].get("lastScheduleTime") {
                    Some(t) if t.is_string() => json!(elapsed_since(t)),
                    _ => json!("<none>"),
                }
            }),
            age,
        ],
        "PodDisruptionBudget" => vec![
            col("Name", "string", name),
            col("Min Available", "string", |p| {
                text_or(&p["spec"]["minAvailable"], "N/A")
            }),
            col("Max Unavailable", "string", |p| {
                text_or(&p["spec"]["maxUnavailable"], "N/A")
            }),
            col("Allowed Disruptions", "integer", |p| {
                int(&p["status"]["disruptionsAllowed"])
            }),
            age,
        ],
        "ConfigMap" => vec![
            col("Name", "string", name),
            col("Data", "integer", |c| {
                let count = |f: &str| c[f].as_object().map_or(0, |m| m.len());
                json!(count("data") + count("binaryData"))
            }),
            age,
        ],
        "Secret" => vec![
            col("Name", "string", name),
            col("Type", "string", |s| text_or(&s["type"], "Opaque")),
            col("Data", "integer", |s| {
                json!(s["data"].as_object().map_or(0, |m| m.len()))
            }),
            age,
        ],
        "MutatingWebhookConfiguration" => vec![
            col("Name", "string", name),
            col("Webhooks", "integer", |c| {
                json!(c["webhooks"].as_array().map_or(0, Vec::len))
            }),
            age,
        ],
        "Namespace" => vec![
            col("Name", "string", name),
            col("Status", "string", |n| {
                text_or(&n["status"]["phase"], "Active")
            }),
            age,
        ],
        "Node" => vec![
            col("Name", "string", name),
            col("Status", "string", |n| {
                let ready = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                let state = if ready { "Ready" } else { "NotReady" };
                if n["spec"]["unschedulable"] == true {
                    json!(format!("{state},SchedulingDisabled"))
                } else {
                    json!(state)
                }
            }),
            age,
            col("Version", "string", |n| {
                text_or(&n["status"]["nodeInfo"]["kubeletVersion"], "")
            }),
        ],
        "Event" => vec![
            col("Last Seen", "string", |e| {
                let seen = e
                    .get("lastTimestamp")
                    .filter(|t| t.is_string())
                    .unwrap_or(&e["metadata"]["creationTimestamp"]);
                json!(elapsed_since(seen))
            }),
            col("Type", "string", |e| e["type"].clone()),
            col("Reason", "string", |e| e["reason"].clone()),
            col("Object", "string", |e| {
                let object = e
                    .get("involvedObject")
                    .filter(|o| o.is_object())
                    .unwrap_or(&e["regarding"]);
                json!(format!(
                    "{}/{}",
                    object["kind"].as_str().unwrap_or_default().to_lowercase(),
                    object["name"].as_str().unwrap_or_default()
                ))
            }),
            col("Message", "string", |e| {
                e.get("message").unwrap_or(&e["note"]).clone()
            }),
        ],
        _ => vec![col("Name", "string", name), age],
    }
}

/// A Table of `items`. Rows carry the object's metadata (`includeObject=Metadata`, kubectl's
/// default) or the whole object (`includeObject=Object`).
pub fn render(r: &ResourceType, items: &[Value], list_meta: Value, include_object: &str) -> Value {
    let columns = printer(r);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.kind, "format": format, "description": "",
                   "priority": u8::from(c.wide)})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
            };
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(obj)).collect();
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}
