//! Discovery documents, in the plain (non-aggregated) form every client understands.

use serde_json::{Value, json};

use crate::store::{RESOURCES, ResourceType};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn short_names(r: &ResourceType) -> &'static [&'static str] {
    match r.plural {
        "pods" => &["po"],
        "namespaces" => &["ns"],
        "nodes" => &["no"],
        "configmaps" => &["cm"],
        "services" => &["svc"],
        "serviceaccounts" => &["sa"],
        "events" if r.group.is_empty() => &["ev"],
        "replicationcontrollers" => &["rc"],
        "deployments" => &["deploy"],
        "replicasets" => &["rs"],
        "statefulsets" => &["sts"],
        "daemonsets" => &["ds"],
        "cronjobs" => &["cj"],
        "poddisruptionbudgets" => &["pdb"],
        "rollouts" => &["ro"],
        _ => &[],
    }
}

fn in_category_all(r: &ResourceType) -> bool {
    matches!(
        r.plural,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "deployments"
            | "replicasets"
            | "statefulsets"
            | "daemonsets"
            | "jobs"
            | "cronjobs"
            | "rollouts"
    )
}

/// Resources with a `scale` subresource: those with `spec.replicas`.
pub fn has_scale(r: &ResourceType) -> bool {
    matches!(
        r.kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController" | "Rollout"
    )
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The API groups other than core, in the order of [`RESOURCES`].
/// The group of the access reviews, which are answered, not stored.
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = vec![(AUTHORIZATION_GROUP, "v1")];
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Option<Value> {
    let (g, v) = groups().into_iter().find(|(g, _)| *g == name)?;
    let mut doc = group_json(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The `APIResourceList` of one group version, or `None` when it is not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if (group, version) == (AUTHORIZATION_GROUP, "v1") {
        let review = |name: &str, kind: &str| json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": false, "kind": kind, "verbs": ["create"]});
        return Some(json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1",
            "resources": [review("selfsubjectaccessreviews", "SelfSubjectAccessReview")],
        }));
    }
    let served: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in served {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.kind.to_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !short_names(r).is_empty() {
            entry["shortNames"] = json!(short_names(r));
        }
        if in_category_all(r) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        let status_verbs = json!(["get", "patch", "update"]);
        resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": status_verbs}));
        if has_scale(r) {
            resources.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true,
                                  "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if r.plural == "serviceaccounts" {
            resources.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
                                  "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if r.plural == "pods" && r.group.is_empty() {
            resources.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
            resources.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                                  "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `/openapi/v2` as kubectl asks for it (protobuf, gnostic's `openapi_v2.Document`).
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// An OpenAPI v2 document with no definitions: field 1 (`swagger`) = "2.0". kubectl validates a
/// `kind: List` on the client against it; a kind it has no schema for is not validated there
/// (each item is then validated by the server, as `fieldValidation` says), where a 404 made
/// `kubectl apply -f` of a List fail.
pub const OPENAPI_V2_EMPTY: &[u8] = b"\x0a\x032.0";

/// `/openapi/v3`: the index of the per-group-version documents.
pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    let mut add = |gv_path: String| {
        let url = format!("/openapi/v3/{gv_path}?hash=kube-sim");
        paths.insert(gv_path, json!({"serverRelativeURL": url}));
    };
    add("api/v1".to_string());
    for (group, version) in groups() {
        add(format!("apis/{group}/{version}"));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/G/V`: for each resource, the PATCH operation with its
/// group-version-kind and the `fieldValidation` parameter. That is what kubectl looks for to
/// validate on the server instead of downloading schemas; there are no schemas.
pub fn openapi_group_version(gv_path: &str) -> Option<Value> {
    let (group, version) = match gv_path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", "v1"] => ("", "v1"),
        ["apis", group, version] => (*group, *version),
        _ => return None,
    };
    let prefix = if group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let operation = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": operation}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {},
    }))
}
