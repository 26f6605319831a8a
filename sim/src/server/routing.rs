//! Which resource, object and subresource a path names, and the RBAC verb of a request.

use axum::http::Method;

use crate::error::ApiError;
use crate::store::{ResourceType, resource_for_plural};

/// Where a request goes.
pub(super) enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    Resources(String, String),
    OpenApiIndex,
    OpenApiV2,
    OpenApi(String),
    Object(Target),
}

/// A resource path: `/api/v1/namespaces/ns/pods/name/status` and the like.
pub(super) struct Target {
    pub(super) resource: &'static ResourceType,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

pub(super) fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

pub(super) fn route(path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["api", "v1"] => Ok(Route::Resources(String::new(), "v1".into())),
        ["api", "v1", rest @ ..] => target("", "v1", rest).map(Route::Object),
        ["apis"] => Ok(Route::GroupList),
        ["openapi", "v2"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiIndex),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["apis", group] => Ok(Route::Group(group.to_string())),
        ["apis", group, version] => Ok(Route::Resources(group.to_string(), version.to_string())),
        ["apis", group, version, rest @ ..] => target(group, version, rest).map(Route::Object),
        _ => Err(not_found_path()),
    }
}

pub(super) fn target(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
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
pub(super) fn verb(method: &Method, target: &Target, watch: bool) -> &'static str {
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

pub(super) fn name_of(target: &Target) -> &str {
    target.name.as_deref().unwrap_or_default()
}
