//! The verbs on objects: get, list, watch, create, update, patch, delete, deletecollection.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, header};
use base64::Engine;
use serde_json::{Value, json};

use super::request::{Call, json_response};
use super::routing::{Target, name_of, not_found_path};
use super::{Shared, table, watch};
use crate::admission;
use crate::error::ApiError;
use crate::patch::{self, PatchType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ContinueToken, Preconditions, RESOURCES, ResourceType, resource_for_kind};

pub(super) fn get(
    shared: &Shared,
    call: &Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let obj = shared
        .store
        .get(r, target.namespace.as_deref(), name_of(target))
        .ok_or_else(|| ApiError::not_found(r, name_of(target)))?;
    if table::wants_table(call.header(header::ACCEPT)) {
        let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
        let include = call.param("includeObject").unwrap_or("Metadata");
        return Ok(json_response(
            200,
            &table::render(r, std::slice::from_ref(&obj), meta, include),
        ));
    }
    Ok(json_response(200, &obj))
}

pub(super) fn selectors(call: &Call) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(call.param("labelSelector").unwrap_or_default())?,
        FieldSelector::parse(call.param("fieldSelector").unwrap_or_default())?,
    ))
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion",
            )
        })
}

fn encode_continue(token: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(token).unwrap_or_default())
}

pub(super) fn list(
    shared: &Shared,
    call: &Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let (labels, fields) = selectors(call)?;
    let limit: usize = match call.param("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let start = call.param("continue").map(decode_continue).transpose()?;
    let filter = |obj: &Value| labels.matches(obj) && fields.matches(obj);
    let page = shared.store.list_page(
        r,
        target.namespace.as_deref(),
        &filter,
        limit,
        start.as_ref(),
    )?;
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        meta["continue"] = json!(encode_continue(token));
    }
    if table::wants_table(call.header(header::ACCEPT)) {
        let include = call.param("includeObject").unwrap_or("Metadata");
        let items: Vec<Value> = page.items.iter().map(|o| (**o).clone()).collect();
        return Ok(json_response(200, &table::render(r, &items, meta, include)));
    }
    // Written piece by piece: the items are shared with the store and are not copied.
    let mut body = Vec::with_capacity(page.items.len() * 4096 + 256);
    let head =
        json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &**item).map_err(|e| ApiError::internal(e.to_string()))?;
    }
    body.extend_from_slice(b"]}");
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default())
}

pub(super) fn start_watch(
    shared: &Shared,
    call: &Call,
    target: &Target,
    cut_after: Option<Duration>,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let (labels, mut fields) = selectors(call)?;
    if let Some(name) = &target.name {
        fields = FieldSelector::parse(&format!(
            "metadata.name={name},{}",
            call.param("fieldSelector").unwrap_or_default()
        ))?;
    }
    // "0" (any version) starts like no version: with the current objects; so does a streaming
    // list (`sendInitialEvents`), which the current state always satisfies.
    let send_initial_events = call.flag("sendInitialEvents");
    let since = match call.param("resourceVersion") {
        None | Some("0") => None,
        Some(_) if send_initial_events => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = call
        .param("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let start_rv = shared.store.resource_version();
    let table = table::wants_table(call.header(header::ACCEPT)).then(|| {
        call.param("includeObject")
            .unwrap_or("Metadata")
            .to_string()
    });
    let mut spec = watch::WatchSpec {
        resource: r,
        namespace: target.namespace.clone(),
        labels,
        fields,
        bookmarks: call.flag("allowWatchBookmarks"),
        bookmark_interval: shared.bookmark_interval,
        timeout,
        table,
        cut_after,
        start_rv: since.unwrap_or(0),
        initial_events_end: send_initial_events,
        visible: Default::default(),
    };
    let (first, live) = match shared.store.watch(r, since) {
        Ok(started) => started,
        // A watch from a version older than the history is a 200 stream with one ERROR event.
        Err(e) if e.code == 410 => {
            let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()}))
                .unwrap_or_default();
            line.push(b'\n');
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(line))
                .unwrap_or_default());
        }
        Err(e) => return Err(e),
    };
    if since.is_some() {
        spec.start_rv = spec.start_rv.max(start_rv.min(since.unwrap_or(0)));
        spec.visible = shared
            .store
            .list(r, target.namespace.as_deref())
            .iter()
            .filter(|o| spec.labels.matches(o) && spec.fields.matches(o))
            .map(|o| {
                (
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
    } else {
        spec.start_rv = start_rv;
    }
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(watch::stream(spec, first, live))
        .unwrap_or_default())
}

/// Checks the object of a create or update against the URL and brings it into the shape the
/// store keeps: apiVersion and kind of the resource, namespace from the URL.
pub(super) fn prepare_object(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let r = target.resource;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    if let Some(api_version) = obj["apiVersion"].as_str()
        && let Some(kind) = obj["kind"].as_str()
        && resource_for_kind(api_version, kind).is_none_or(|k| k != r)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            r.api_version()
        )));
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if let Some(ns) = &target.namespace {
        match obj["metadata"]["namespace"].as_str() {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => obj["metadata"]["namespace"] = json!(ns),
        }
    }
    if let Some(name) = &target.name
        && obj["metadata"]["name"].as_str() != Some(name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            obj["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    obj["apiVersion"] = json!(r.api_version());
    obj["kind"] = json!(r.kind);
    Ok(())
}

pub(super) fn namespaces() -> &'static ResourceType {
    resource_for_kind("v1", "Namespace").expect("namespaces are served")
}

pub(super) fn require_namespace(shared: &Shared, target: &Target) -> Result<(), ApiError> {
    match &target.namespace {
        Some(ns) if shared.store.get(namespaces(), None, ns).is_none() => {
            Err(ApiError::not_found(namespaces(), ns))
        }
        None if target.resource.namespaced => Err(not_found_path()),
        _ => Ok(()),
    }
}

pub(super) fn is_dry_run(call: &Call) -> bool {
    call.param("dryRun") == Some("All")
}

pub(super) async fn create(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let mut obj = call.body_json().await?;
    prepare_object(target, &mut obj)?;
    require_namespace(shared, target)?;
    admission::validate_shape(r, &obj)?;
    admission::apply_defaults(r, &mut obj);
    admission::initial_status(r, &mut obj);
    if r.kind == "Pod" && r.group.is_empty() {
        crate::injector::inject(&shared.store, &mut obj, shared.proxy_image.as_deref());
    }
    admission::validate(r, &obj)?;
    if is_dry_run(call) {
        return Ok(json_response(201, &obj));
    }
    let created = shared.store.create(r, obj)?;
    Ok(json_response(201, &created))
}

pub(super) async fn update(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let mut obj = call.body_json().await?;
    prepare_object(target, &mut obj)?;
    let updated = if target.subresource.as_deref() == Some("status") {
        shared.store.update_status(r, obj)?
    } else {
        // Defaults are written on create only: an object loaded from the state without them
        // must not change its spec (and generation) because of an unrelated write.
        admission::validate(r, &obj)?;
        if is_dry_run(call) {
            return Ok(json_response(200, &obj));
        }
        shared.store.update(r, obj)?
    };
    Ok(json_response(200, &updated))
}

pub(super) async fn patch_object(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let content_type = call.header(header::CONTENT_TYPE).to_string();
    let patch_type = PatchType::from_content_type(&content_type).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"))
    })?;
    let body = call.body_bytes().await?;
    let ns = target.namespace.as_deref();
    let name = name_of(target);
    let status_only = target.subresource.as_deref() == Some("status");

    if patch_type == PatchType::Apply && shared.store.get(r, ns, name).is_none() {
        // Server-side apply creates what does not exist.
        let text = std::str::from_utf8(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut obj: Value = serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        prepare_object(target, &mut obj)?;
        require_namespace(shared, target)?;
        admission::validate_shape(r, &obj)?;
        admission::apply_defaults(r, &mut obj);
        admission::initial_status(r, &mut obj);
        admission::validate(r, &obj)?;
        return Ok(json_response(201, &shared.store.create(r, obj)?));
    }

    let apply_patch = |current: &Value| patched(r, name, current, patch_type, &body, status_only);
    if is_dry_run(call) {
        let current = shared
            .store
            .get(r, ns, name)
            .ok_or_else(|| ApiError::not_found(r, name))?;
        return Ok(json_response(200, &apply_patch(&current)?));
    }
    let obj = shared.store.try_modify(r, ns, name, |obj| {
        *obj = apply_patch(obj)?;
        Ok(())
    })?;
    Ok(json_response(200, &obj))
}

/// `current` with the patch applied, as it would be stored: through the status subresource only
/// the status changes, otherwise everything but the status; the result must be valid.
fn patched(
    r: &ResourceType,
    name: &str,
    current: &Value,
    patch_type: PatchType,
    body: &[u8],
    status_only: bool,
) -> Result<Value, ApiError> {
    let mut obj = current.clone();
    patch::apply(patch_type, &mut obj, body)?;
    admission::validate_shape(r, &obj)?;
    let rv = |o: &Value| o["metadata"]["resourceVersion"].clone();
    if rv(&obj) != rv(current) {
        return Err(ApiError::conflict(
            r,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    if obj["metadata"]["name"] != current["metadata"]["name"] {
        return Err(ApiError::invalid(
            r,
            name,
            "metadata.name",
            "field is immutable",
        ));
    }
    if status_only {
        let status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
        obj = current.clone();
        obj["status"] = status;
        return Ok(obj);
    }
    match current.get("status") {
        Some(status) => obj["status"] = status.clone(),
        None => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }
    admission::validate(r, &obj)?;
    Ok(obj)
}

/// `DeleteOptions` from the body or the query.
fn preconditions(options: &Value) -> Preconditions {
    let pre = &options["preconditions"];
    Preconditions {
        uid: pre["uid"].as_str().map(str::to_string),
        resource_version: pre["resourceVersion"].as_str().map(str::to_string),
    }
}

pub(super) async fn delete(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let protobuf = call.header(header::CONTENT_TYPE).contains("protobuf");
    let body = call.body_bytes().await?;
    // Options sent as protobuf (typed clients) are not read: the defaults apply.
    let options: Value = if body.is_empty() || protobuf {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let ns = target.namespace.as_deref();
    let name = name_of(target);
    if is_dry_run(call)
        || options["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"))
    {
        let obj = shared
            .store
            .get(r, ns, name)
            .ok_or_else(|| ApiError::not_found(r, name))?;
        return Ok(json_response(200, &obj));
    }
    if r == namespaces() {
        // Deleting a namespace deletes everything in it.
        for resource in RESOURCES.iter().filter(|r| r.namespaced) {
            for obj in shared.store.list(resource, Some(name)) {
                let _ = shared.store.delete(
                    resource,
                    Some(name),
                    obj["metadata"]["name"].as_str().unwrap_or_default(),
                );
            }
        }
    }
    let deleted = shared
        .store
        .delete_with(r, ns, name, &preconditions(&options))?;
    Ok(json_response(200, &deleted))
}

pub(super) fn delete_collection(
    shared: &Shared,
    call: &Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let (labels, fields) = selectors(call)?;
    let mut deleted = Vec::new();
    for obj in shared.store.list(r, target.namespace.as_deref()) {
        if labels.matches(&obj) && fields.matches(&obj) {
            let ns = obj["metadata"]["namespace"].as_str();
            if let Ok(gone) =
                shared
                    .store
                    .delete(r, ns, obj["metadata"]["name"].as_str().unwrap_or_default())
            {
                deleted.push(gone);
            }
        }
    }
    let list = json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(),
                      "metadata": {"resourceVersion": shared.store.resource_version().to_string()}, "items": deleted});
    Ok(json_response(200, &list))
}
