//! One API request: authentication, the test controls, routing, authorization and the verbs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{ADMIN_USER, RequestRecord, Shared, discovery, protobuf, table, watch};
use crate::admission;
use crate::chaos::Fault;
use crate::error::ApiError;
use crate::patch::{self, PatchType};
use crate::rbac::Attributes;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{
    ContinueToken, Preconditions, RESOURCES, ResourceType, resource_for_kind, resource_for_plural,
};

/// The largest request body accepted.
const MAX_BODY: usize = 64 << 20;

/// A request, parsed.
struct Call {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    user: String,
    body: Body,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("1" | "true" | "True"))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    async fn body_bytes(&mut self) -> Result<bytes::Bytes, ApiError> {
        let body = std::mem::replace(&mut self.body, Body::empty());
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| ApiError::bad_request(format!("unable to read the request body: {e}")))
    }

    /// The body as JSON. Protobuf bodies are read for the few kinds kubectl sends only that way.
    async fn body_json(&mut self) -> Result<Value, ApiError> {
        let content_type = self.header(header::CONTENT_TYPE).to_string();
        let unsupported = || {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {content_type}"
                ),
            )
        };
        if content_type.contains("cbor") {
            return Err(unsupported());
        }
        let bytes = self.body_bytes().await?;
        if content_type.contains("protobuf") {
            return protobuf::decode(&bytes).ok_or_else(unsupported);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })
    }
}

/// Where a request goes.
enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    Resources(String, String),
    OpenApiIndex,
    OpenApi(String),
    Object(Target),
}

/// A resource path: `/api/v1/namespaces/ns/pods/name/status` and the like.
struct Target {
    resource: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn route(path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["api", "v1"] => Ok(Route::Resources(String::new(), "v1".into())),
        ["api", "v1", rest @ ..] => target("", "v1", rest).map(Route::Object),
        ["apis"] => Ok(Route::GroupList),
        ["openapi", "v3"] => Ok(Route::OpenApiIndex),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["apis", group] => Ok(Route::Group(group.to_string())),
        ["apis", group, version] => Ok(Route::Resources(group.to_string(), version.to_string())),
        ["apis", group, version, rest @ ..] => target(group, version, rest).map(Route::Object),
        _ => Err(not_found_path()),
    }
}

fn target(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if resource_for_plural(group, plural).is_some() => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(not_found_path()),
    };
    let resource = resource_for_plural(group, plural)
        .filter(|r| r.version == version)
        .ok_or_else(not_found_path)?;
    if namespace.is_some() && !resource.namespaced {
        return Err(not_found_path());
    }
    Ok(Target {
        resource,
        namespace,
        name,
        subresource,
    })
}

/// The RBAC verb of a request.
fn verb(method: &Method, target: &Target, watch: bool) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .unwrap_or_default()
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if error.code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// What a handled request turns into.
enum Outcome {
    Respond(Response<Body>),
    /// Chaos: close the connection without answering.
    Drop,
}

/// Handles one request and records it in the request log.
pub async fn handle(shared: Arc<Shared>, req: Request<Body>, kill: Arc<Notify>) -> Response<Body> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let outcome = respond(&shared, req, &user_agent).await;
    let status = match &outcome {
        Outcome::Respond(r) => r.status().as_u16(),
        Outcome::Drop => 0,
    };
    shared.log.record(RequestRecord {
        method,
        path,
        query,
        status,
        user_agent,
    });
    match outcome {
        Outcome::Respond(response) => response,
        Outcome::Drop => {
            kill.notify_one();
            std::future::pending().await
        }
    }
}

async fn respond(shared: &Shared, req: Request<Body>, user_agent: &str) -> Outcome {
    let (parts, body) = req.into_parts();
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();

    let user = match authenticate(shared, &parts.headers) {
        Ok(user) => user,
        Err(e) => return Outcome::Respond(error_response(&e)),
    };
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    let mut cut_after = None;
    if let Some(chaos) = &shared.chaos
        && !user_agent.starts_with("kubectl")
    {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_default();
        match chaos.decide(parts.method.as_str(), path_and_query, is_watch) {
            None => {}
            Some(Fault::DropConnection) => return Outcome::Drop,
            Some(Fault::CutWatch(after)) => cut_after = Some(after),
            Some(fault) => return Outcome::Respond(error_response(&chaos_error(fault))),
        }
    }
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        user,
        body,
    };
    let response = match dispatch(shared, call, cut_after).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    };
    Outcome::Respond(response)
}

fn chaos_error(fault: Fault) -> ApiError {
    match fault {
        Fault::TooManyRequests => ApiError::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later (simulated)",
        ),
        Fault::Internal => ApiError::internal(
            "an error on the server (\"simulated fault\") has prevented the request from succeeding",
        ),
        Fault::Unavailable => ApiError::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (simulated)",
        ),
        _ => ApiError::new(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted (simulated)",
        ),
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauthorized = || ApiError::new(401, "Unauthorized", "Unauthorized");
    match token {
        Some(t) if t == shared.tokens.admin => {
            // The admin may act as someone else, as `kubectl --as` asks.
            match headers
                .get("impersonate-user")
                .and_then(|v| v.to_str().ok())
            {
                Some(user) => Ok(user.to_string()),
                None => Ok(ADMIN_USER.to_string()),
            }
        }
        Some(t) if t == shared.tokens.user.0 => Ok(shared.tokens.user.1.clone()),
        _ => Err(unauthorized()),
    }
}

async fn dispatch(
    shared: &Shared,
    mut call: Call,
    cut_after: Option<Duration>,
) -> Result<Response<Body>, ApiError> {
    if call.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        && call.method == Method::POST
    {
        return access_review(shared, &mut call).await;
    }
    let route = route(&call.path)?;
    let read_only = call.method == Method::GET || call.method == Method::HEAD;
    let target = match route {
        Route::Object(target) => target,
        _ if !read_only => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        Route::Version => return Ok(json_response(200, &discovery::version())),
        Route::Health => {
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("ok"))
                .unwrap_or_default());
        }
        Route::CoreVersions => {
            let host = call.header(header::HOST).to_string();
            return Ok(json_response(200, &discovery::core_versions(&host)));
        }
        Route::GroupList => return Ok(json_response(200, &discovery::group_list())),
        Route::OpenApiIndex => return Ok(json_response(200, &discovery::openapi_index())),
        Route::OpenApi(gv_path) => {
            return discovery::openapi_group_version(&gv_path)
                .map(|doc| json_response(200, &doc))
                .ok_or_else(not_found_path);
        }
        Route::Group(group) => {
            return discovery::group(&group)
                .map(|g| json_response(200, &g))
                .ok_or_else(not_found_path);
        }
        Route::Resources(group, version) => {
            return discovery::resource_list(&group, &version)
                .map(|l| json_response(200, &l))
                .ok_or_else(not_found_path);
        }
    };
    let is_watch = call.flag("watch");
    let verb = verb(&call.method, &target, is_watch);
    if let Some(rbac) = &shared.rbac
        && call.user != ADMIN_USER
    {
        rbac.authorize(&Attributes {
            user: &call.user,
            verb,
            group: target.resource.group,
            resource: target.resource.plural,
            subresource: target.subresource.as_deref(),
            namespace: target.namespace.as_deref(),
            name: target.name.as_deref(),
        })?;
    }
    if let Some(sub) = &target.subresource
        && !(sub == "status"
            || (sub == "scale" && discovery::has_scale(target.resource))
            || (sub == "log" && target.resource.kind == "Pod" && verb == "get")
            || (sub == "eviction"
                && target.resource.plural == "pods"
                && target.resource.group.is_empty()))
    {
        return Err(not_found_path());
    }
    if target.subresource.as_deref() == Some("log") {
        return pod_log(shared, &call, &target);
    }
    if target.subresource.as_deref() == Some("scale") {
        return scale(shared, &mut call, &target, verb).await;
    }
    match verb {
        "get" => get(shared, &call, &target),
        "list" => list(shared, &call, &target),
        "watch" => start_watch(shared, &call, &target, cut_after),
        "create" if target.subresource.as_deref() == Some("eviction") => {
            evict(shared, &mut call, &target).await
        }
        "create" if target.name.is_none() => create(shared, &mut call, &target).await,
        "update" => update(shared, &mut call, &target).await,
        "patch" => patch_object(shared, &mut call, &target).await,
        "delete" => delete(shared, &mut call, &target).await,
        "deletecollection" => delete_collection(shared, &call, &target),
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn name_of(target: &Target) -> &str {
    target.name.as_deref().unwrap_or_default()
}

fn get(shared: &Shared, call: &Call, target: &Target) -> Result<Response<Body>, ApiError> {
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

fn selectors(call: &Call) -> Result<(LabelSelector, FieldSelector), ApiError> {
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

fn list(shared: &Shared, call: &Call, target: &Target) -> Result<Response<Body>, ApiError> {
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

fn start_watch(
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
fn prepare_object(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
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

fn namespaces() -> &'static ResourceType {
    resource_for_kind("v1", "Namespace").expect("namespaces are served")
}

fn require_namespace(shared: &Shared, target: &Target) -> Result<(), ApiError> {
    match &target.namespace {
        Some(ns) if shared.store.get(namespaces(), None, ns).is_none() => {
            Err(ApiError::not_found(namespaces(), ns))
        }
        None if target.resource.namespaced => Err(not_found_path()),
        _ => Ok(()),
    }
}

fn is_dry_run(call: &Call) -> bool {
    call.param("dryRun") == Some("All")
}

async fn create(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let mut obj = call.body_json().await?;
    prepare_object(target, &mut obj)?;
    require_namespace(shared, target)?;
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

async fn update(
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
        admission::apply_defaults(r, &mut obj);
        admission::validate(r, &obj)?;
        if is_dry_run(call) {
            return Ok(json_response(200, &obj));
        }
        shared.store.update(r, obj)?
    };
    Ok(json_response(200, &updated))
}

async fn patch_object(
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
        admission::apply_defaults(r, &mut obj);
        admission::initial_status(r, &mut obj);
        admission::validate(r, &obj)?;
        return Ok(json_response(201, &shared.store.create(r, obj)?));
    }

    let dry_run = is_dry_run(call);
    let mut dry_result = None;
    let patched = shared.store.try_modify(r, ns, name, |obj| {
        let original = obj.clone();
        patch::apply(patch_type, obj, &body)?;
        let rv = |o: &Value| o["metadata"]["resourceVersion"].clone();
        if rv(obj) != rv(&original) {
            return Err(ApiError::conflict(r, name, "the object has been modified; please apply your changes to the latest version and try again"));
        }
        if obj["metadata"]["name"] != original["metadata"]["name"] {
            return Err(ApiError::invalid(r, name, "metadata.name", "field is immutable"));
        }
        if status_only {
            // Only the status changes through the status subresource.
            let status = obj.get("status").cloned();
            *obj = original;
            match status {
                Some(status) => obj["status"] = status,
                None => obj["status"] = json!({}),
            }
        } else {
            match original.get("status") {
                Some(status) => obj["status"] = status.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            admission::apply_defaults(r, obj);
            admission::validate(r, obj)?;
        }
        if dry_run {
            dry_result = Some(obj.clone());
            return Err(ApiError::new(0, "DryRun", ""));
        }
        Ok(())
    });
    match (patched, dry_result) {
        (_, Some(result)) => Ok(json_response(200, &result)),
        (Ok(obj), None) => Ok(json_response(200, &obj)),
        (Err(e), None) => Err(e),
    }
}

/// `DeleteOptions` from the body or the query.
fn preconditions(options: &Value) -> Preconditions {
    let pre = &options["preconditions"];
    Preconditions {
        uid: pre["uid"].as_str().map(str::to_string),
        resource_version: pre["resourceVersion"].as_str().map(str::to_string),
    }
}

async fn delete(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let r = target.resource;
    let body = call.body_bytes().await?;
    let options: Value = if body.is_empty() {
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

fn delete_collection(
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

async fn evict(
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
async fn access_review(shared: &Shared, call: &mut Call) -> Result<Response<Body>, ApiError> {
    let mut review = call.body_json().await?;
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().filter(|v| !v.is_empty());
    let allowed = match (&shared.rbac, attributes.is_object()) {
        (None, _) => true,
        (Some(_), _) if call.user == ADMIN_USER => true,
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
async fn scale(
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
fn pod_log(shared: &Shared, call: &Call, target: &Target) -> Result<Response<Body>, ApiError> {
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
