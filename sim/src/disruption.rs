//! PodDisruptionBudgets: their status (as the disruption controller keeps it) and the
//! `pods/eviction` subresource that honours them.
//!
//! The expected pod count of a budget is, as the disruption controller computes it, the number of
//! pods its selector matches for an integer `minAvailable`, and the scale (`spec.replicas`) of
//! their controllers otherwise. An allowed eviction deletes the pod at once.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::selector::LabelSelector;
use crate::store::{Preconditions, ResourceType, Store, WatchEventType, now, resource_for_kind};

fn pods() -> &'static ResourceType {
    resource_for_kind("v1", "Pod").expect("pods are served")
}

fn budgets() -> &'static ResourceType {
    resource_for_kind("policy/v1", "PodDisruptionBudget").expect("PDBs are served")
}

/// A budget's numbers for the pods it selects now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetStatus {
    pub expected_pods: i64,
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub disruptions_allowed: i64,
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn is_terminating(pod: &Value) -> bool {
    pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// `3`, `"3"` or `"30%"` of `total` (percentages round up, as the API server's do here).
fn scaled(value: &Value, total: i64) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(pct) => pct
                .trim()
                .parse::<i64>()
                .ok()
                .map(|p| (p * total + 99) / 100),
            None => s.trim().parse().ok(),
        },
        _ => None,
    }
}

/// The pods a budget selects (none when it has no selector).
fn selected_pods(store: &Store, pdb: &Value) -> Vec<Arc<Value>> {
    let ns = pdb["metadata"]["namespace"].as_str();
    let Some(selector) = LabelSelector::from_spec(pdb["spec"].get("selector")) else {
        return Vec::new();
    };
    store
        .list_shared(pods(), ns)
        .into_iter()
        .filter(|p| selector.matches(p) && !is_terminal(p))
        .collect()
}

/// Computes a budget's status from the pods it selects.
pub fn budget_status(store: &Store, pdb: &Value) -> BudgetStatus {
    let selected = selected_pods(store, pdb);
    let healthy = selected
        .iter()
        .filter(|p| is_ready(p) && !is_terminating(p))
        .count() as i64;
    let spec = &pdb["spec"];
    let min_available = spec.get("minAvailable").filter(|v| !v.is_null());
    let max_unavailable = spec.get("maxUnavailable").filter(|v| !v.is_null());
    // As the disruption controller: an integer minAvailable counts the pods there are; a
    // percentage or maxUnavailable counts the pods the controllers want (their scale), so a pod
    // that was just evicted and not yet replaced still counts as missing.
    let (expected, desired) = match (min_available, max_unavailable) {
        (Some(Value::Number(n)), _) => (selected.len() as i64, n.as_i64().unwrap_or(0)),
        (Some(min), _) => {
            let expected = expected_by_controllers(store, &selected);
            (expected, scaled(min, expected).unwrap_or(expected))
        }
        (None, Some(max)) => {
            let expected = expected_by_controllers(store, &selected);
            (
                expected,
                (expected - scaled(max, expected).unwrap_or(0)).max(0),
            )
        }
        (None, None) => (selected.len() as i64, 1),
    };
    BudgetStatus {
        expected_pods: expected,
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: (healthy - desired).max(0),
    }
}

fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
}

/// The replicas the pods' controllers want, each controller once. A ReplicaSet owned by a
/// Deployment or Rollout counts with its owner's scale; a pod without a controller counts as one.
fn expected_by_controllers(store: &Store, pods: &[Arc<Value>]) -> i64 {
    let mut seen = std::collections::HashSet::new();
    let mut expected = 0;
    for pod in pods {
        let ns = pod["metadata"]["namespace"].as_str();
        let Some(owner) = controller_of(pod) else {
            expected += 1;
            continue;
        };
        let mut scale_owner = owner.clone();
        if let Some(rs_type) = resource_for_kind("apps/v1", "ReplicaSet")
            && owner["kind"] == "ReplicaSet"
            && let Some(rs) = store.get(rs_type, ns, owner["name"].as_str().unwrap_or_default())
            && let Some(top) = controller_of(&rs)
        {
            scale_owner = top.clone();
        }
        let api_version = scale_owner["apiVersion"].as_str().unwrap_or_default();
        let kind = scale_owner["kind"].as_str().unwrap_or_default();
        let replicas = resource_for_kind(api_version, kind)
            .and_then(|r| store.get(r, ns, scale_owner["name"].as_str().unwrap_or_default()))
            .and_then(|o| o["spec"]["replicas"].as_i64());
        match replicas {
            Some(replicas) => {
                if seen.insert(scale_owner["uid"].as_str().unwrap_or_default().to_string()) {
                    expected += replicas;
                }
            }
            // Owners that are gone or have no scale count the pod itself.
            None => expected += 1,
        }
    }
    expected
}

fn status_json(pdb: &Value, s: &BudgetStatus) -> Value {
    let allowed = s.disruptions_allowed > 0;
    let previous = pdb["status"]["conditions"]
        .as_array()
        .and_then(|c| c.first())
        .cloned();
    let transition = match previous {
        Some(c) if (c["status"] == "True") == allowed => c["lastTransitionTime"].clone(),
        _ => json!(now()),
    };
    json!({
        "observedGeneration": pdb["metadata"]["generation"],
        "disruptionsAllowed": s.disruptions_allowed,
        "currentHealthy": s.current_healthy,
        "desiredHealthy": s.desired_healthy,
        "expectedPods": s.expected_pods,
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": if allowed { "True" } else { "False" },
            "reason": if allowed { "SufficientPods" } else { "InsufficientPods" },
            "message": "",
            "observedGeneration": pdb["metadata"]["generation"],
            "lastTransitionTime": transition,
        }],
    })
}

/// Brings the status of every budget in `namespace` up to date; writes only what changed.
pub fn refresh_namespace(store: &Store, namespace: &str) {
    for pdb in store.list(budgets(), Some(namespace)) {
        let status = status_json(&pdb, &budget_status(store, &pdb));
        let unchanged = [
            "observedGeneration",
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ]
        .iter()
        .all(|f| pdb["status"][f] == status[f]);
        if !unchanged {
            let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
            let _ = store.modify(budgets(), Some(namespace), name, |p| p["status"] = status);
        }
    }
}

/// Keeps budget statuses current as pods and budgets change, until the task is aborted.
pub fn spawn_status_updater(store: Arc<Store>) -> tokio::task::JoinHandle<()> {
    let mut events = store.subscribe();
    tokio::spawn(async move {
        for pdb in store.list(budgets(), None) {
            refresh_namespace(
                &store,
                pdb["metadata"]["namespace"].as_str().unwrap_or_default(),
            );
        }
        loop {
            let first = match events.recv().await {
                Ok(e) => Some(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            // Handle a burst of changes once per namespace.
            let mut namespaces = std::collections::BTreeSet::new();
            let mut lagged = first.is_none();
            let mut note = |e: &crate::store::StoreEvent| {
                let relevant = e.resource == pods() || e.resource == budgets();
                // A budget whose status has seen its current spec changed only its status:
                // most likely this task's own write.
                let own_status_write = e.resource == budgets()
                    && e.kind == WatchEventType::Modified
                    && e.object["status"]["observedGeneration"]
                        == e.object["metadata"]["generation"];
                if relevant && !own_status_write {
                    namespaces.insert(
                        e.object["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            };
            if let Some(e) = &first {
                note(e);
            }
            loop {
                match events.try_recv() {
                    Ok(e) => note(&e),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
            if lagged {
                namespaces.extend(
                    store
                        .list(budgets(), None)
                        .iter()
                        .filter_map(|p| p["metadata"]["namespace"].as_str().map(str::to_string)),
                );
            }
            for ns in namespaces {
                refresh_namespace(&store, &ns);
            }
        }
    })
}

/// The `pods/eviction` subresource. Evictions are serialised so that two of them cannot both
/// spend a budget's last allowed disruption.
#[derive(Default)]
pub struct Evictions {
    lock: Mutex<()>,
}

impl Evictions {
    /// Evicts pod `ns/name` unless a budget forbids it (429 TooManyRequests). `eviction` is the
    /// request body (`policy/v1` Eviction, with optional `deleteOptions.preconditions`).
    pub fn evict(
        &self,
        store: &Store,
        ns: &str,
        name: &str,
        eviction: &Value,
    ) -> Result<Value, ApiError> {
        let _serialised = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let pod = store
            .get(pods(), Some(ns), name)
            .ok_or_else(|| ApiError::not_found(pods(), name))?;
        let pre = &eviction["deleteOptions"]["preconditions"];
        let preconditions = Preconditions {
            uid: pre["uid"].as_str().map(str::to_string),
            resource_version: pre["resourceVersion"].as_str().map(str::to_string),
        };
        let success = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        if is_terminating(&pod) {
            return Ok(success);
        }
        // Pods that are not running can always be evicted.
        let ignores_budgets = is_terminal(&pod) || pod["status"]["phase"] == "Pending";
        let matching: Vec<Value> = if ignores_budgets {
            Vec::new()
        } else {
            store
                .list(budgets(), Some(ns))
                .into_iter()
                .filter(|pdb| {
                    LabelSelector::from_spec(pdb["spec"].get("selector"))
                        .is_some_and(|s| !s.is_empty() && s.matches(&pod))
                })
                .collect()
        };
        match matching.as_slice() {
            [] => {}
            [pdb] => {
                let status = budget_status(store, pdb);
                let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default();
                let always_allow = pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
                let allowed = if is_ready(&pod) {
                    status.disruptions_allowed > 0
                } else {
                    always_allow || status.current_healthy >= status.desired_healthy
                };
                if !allowed {
                    return Err(ApiError::new(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    )
                    .with_causes(json!([{
                        "reason": "DisruptionBudget",
                        "message": format!(
                            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                            status.desired_healthy, status.current_healthy
                        ),
                    }])));
                }
                if is_ready(&pod) {
                    let _ = store.modify(budgets(), Some(ns), pdb_name, |p| {
                        if !p["status"].is_object() {
                            p["status"] = json!({});
                        }
                        if !p["status"]["disruptedPods"].is_object() {
                            p["status"]["disruptedPods"] = json!({});
                        }
                        p["status"]["disruptionsAllowed"] = json!(status.disruptions_allowed - 1);
                        p["status"]["disruptedPods"][name] = json!(now());
                    });
                }
            }
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        }
        store.delete_with(pods(), Some(ns), name, &preconditions)?;
        Ok(success)
    }
}
