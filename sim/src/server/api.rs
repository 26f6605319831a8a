//! The front door of every request: authentication, latency, chaos, routing, authorization,
//! then the verb's handler; and the request log entry for it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, header};
use serde_json::json;
use tokio::sync::Notify;

use super::request::{Call, error_response, json_response};
use super::routing::{Route, not_found_path, route, verb};
use super::{ADMIN_USER, Policy, RequestRecord, Shared, discovery, objects, subresources, tokens};
use crate::chaos::Fault;
use crate::error::ApiError;
use crate::rbac::{Attributes, Rbac};

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

    let (user, policy) = match authenticate(shared, &parts.headers) {
        Ok(identity) => identity,
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
        policy,
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
        Fault::TooManyRequests => {
            let mut error = ApiError::new(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later (simulated)",
            );
            error.details = Some(json!({"retryAfterSeconds": 1}));
            error
        }
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

/// The user a request's bearer token authenticates as, and the policy that user is subject to.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(String, Policy), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let user = if token == shared.tokens.admin {
        // The admin may act as someone else, as `kubectl --as` asks.
        let impersonated = headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok());
        impersonated.unwrap_or(ADMIN_USER).to_string()
    } else if token == shared.tokens.user.0 {
        shared.tokens.user.1.clone()
    } else {
        let user = shared.tokens.issued.user_of(token, shared);
        return user.map(|u| (u, Policy::Stored)).ok_or_else(unauthorized);
    };
    let policy = if user == ADMIN_USER {
        Policy::Unchecked
    } else {
        Policy::Configured
    };
    Ok((user, policy))
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The RBAC evaluator of the caller's policy, or `None` when its requests are not checked.
pub(super) fn policy_of<'a>(shared: &'a Shared, call: &Call) -> Option<Cow<'a, Rbac>> {
    match call.policy {
        Policy::Unchecked => None,
        Policy::Configured => shared.rbac.as_ref().map(Cow::Borrowed),
        Policy::Stored => Some(Cow::Owned(Rbac::from_store(&shared.store))),
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
        return subresources::access_review(shared, &mut call).await;
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
        Route::OpenApiV2 => {
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, discovery::OPENAPI_V2_PROTOBUF)
                .body(Body::from(discovery::OPENAPI_V2_EMPTY))
                .unwrap_or_default());
        }
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
    if let Some(rbac) = policy_of(shared, &call) {
        rbac.authorize(&Attributes {
            user: &call.user,
            verb,
            group: target.resource.group,
            resource: target.resource.plural,
            subresource: target.subresource.as_deref(),
            // As kube-apiserver reads it: a request for a Namespace by name is within that
            // namespace, so a RoleBinding there can grant `get` on its own Namespace.
            namespace: match (target.resource.plural, target.resource.group) {
                ("namespaces", "") => target.name.as_deref(),
                _ => target.namespace.as_deref(),
            },
            name: target.name.as_deref(),
        })?;
    }
    if let Some(sub) = &target.subresource
        && !(sub == "status"
            || (sub == "scale" && discovery::has_scale(target.resource))
            || (sub == "log" && target.resource.kind == "Pod" && verb == "get")
            || (sub == "eviction"
                && target.resource.plural == "pods"
                && target.resource.group.is_empty())
            || (sub == "token" && target.resource.kind == "ServiceAccount" && verb == "create"))
    {
        return Err(not_found_path());
    }
    if target.subresource.as_deref() == Some("log") {
        return subresources::pod_log(shared, &call, &target);
    }
    if target.subresource.as_deref() == Some("scale") {
        return subresources::scale(shared, &mut call, &target, verb).await;
    }
    match verb {
        "get" => objects::get(shared, &call, &target),
        "list" => objects::list(shared, &call, &target),
        "watch" => objects::start_watch(shared, &call, &target, cut_after),
        "create" if target.subresource.as_deref() == Some("eviction") => {
            subresources::evict(shared, &mut call, &target).await
        }
        "create" if target.subresource.as_deref() == Some("token") => {
            tokens::create_token(shared, &mut call, &target).await
        }
        "create" if target.name.is_none() => objects::create(shared, &mut call, &target).await,
        "update" => objects::update(shared, &mut call, &target).await,
        "patch" => objects::patch_object(shared, &mut call, &target).await,
        "delete" => objects::delete(shared, &mut call, &target).await,
        "deletecollection" => objects::delete_collection(shared, &call, &target),
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}
