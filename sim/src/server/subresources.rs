//! Subresources and reviews: eviction, scale, pod logs, and SelfSubjectAccessReview.

use axum::body::Body;
use axum::http::{Response, header};
use serde_json::{Value, json};

use super::Shared;
use super::api::policy_of;
use super::request::{Call, json_response};
use super::routing::{Target, name_of};
use crate::error::ApiError;
use crate::patch::{self, PatchType};
use crate::rbac::Attributes;

pub(super) async fn evict(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let eviction = call.body_json().await?;
    let ns = target.namespace.as_deref().unwrap_or("default");
    let name = name_of(target);
    if let Some(body_name) = eviction["metadata"]["name"].as_str()
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {body_name}"
        )));
    }
    let status = shared.evictions.evict(&shared.store, ns, name, &eviction)?;
    Ok(json_response(201, &status))
}

/// `SelfSubjectAccessReview` (`kubectl auth can-i`): may the caller do this?
pub(super) async fn access_review(
    shared: &Shared,
    call: &mut Call,
) -> Result<Response<Body>, ApiError> {
    let mut review = call.body_json().await?;
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().filter(|v| !v.is_empty());
    let allowed = match (policy_of(shared, call), attributes.is_object()) {
        (None, _) => true,
        // Non-resource URLs (discovery, health) are open to every authenticated user.
        (Some(_), false) => true,
        (Some(rbac), true) => rbac.allows(&Attributes {
            user: &call.user,
            verb: text("verb").unwrap_or_default(),
            group: text("group").unwrap_or_default(),
            resource: text("resource").unwrap_or_default(),
            subresource: text("subresource"),
            namespace: text("namespace"),
            name: text("name"),
        }),
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = json!({"allowed": allowed});
    Ok(json_response(201, &review))
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// The `scale` subresource: reads and writes `spec.replicas` through a Scale object.
pub(super) async fn scale(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
    verb: &str,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let ns = target.namespace.as_deref();
    let name = name_of(target);
    let wanted = match verb {
        "get" => None,
        "update" => Some(call.body_json().await?),
        "patch" => {
            let content_type = call.header(header::CONTENT_TYPE).to_string();
            let patch_type = PatchType::from_content_type(&content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("unsupported patch type {content_type:?}"),
                )
            })?;
            let body = call.body_bytes().await?;
            let current = shared
                .store
                .get(r, ns, name)
                .ok_or_else(|| ApiError::not_found(r, name))?;
            let mut scale = scale_of(&current);
            patch::apply(patch_type, &mut scale, &body)?;
            Some(scale)
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the scale subresource supports get, update and patch",
            ));
        }
    };
    let obj = match wanted {
        None => shared
            .store
            .get(r, ns, name)
            .ok_or_else(|| ApiError::not_found(r, name))?,
        Some(scale) => {
            let replicas = scale["spec"]["replicas"]
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid(
                        r,
                        name,
                        "spec.replicas",
                        "must be greater than or equal to 0",
                    )
                })?;
            let expected_rv = scale["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            shared.store.try_modify(r, ns, name, |obj| {
                if let Some(rv) = &expected_rv
                    && obj["metadata"]["resourceVersion"].as_str() != Some(rv)
                {
                    return Err(ApiError::conflict(r, name, "the object has been modified; please apply your changes to the latest version and try again"));
                }
                obj["spec"]["replicas"] = json!(replicas);
                Ok(())
            })?
        }
    };
    Ok(json_response(200, &scale_of(&obj)))
}

/// `pods/log`: containers here print nothing, so a log is empty; unknown containers are a 400.
pub(super) fn pod_log(
    shared: &Shared,
    call: &Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let name = name_of(target);
    let pod = shared
        .store
        .get(r, target.namespace.as_deref(), name)
        .ok_or_else(|| ApiError::not_found(r, name))?;
    let containers: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match call.param("container") {
        Some(container) if !containers.contains(&container) => Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        ))),
        None if pod["spec"]["containers"]
            .as_array()
            .is_some_and(|c| c.len() > 1) =>
        {
            Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )))
        }
        _ => Ok(Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::empty())
            .unwrap_or_default()),
    }
}
