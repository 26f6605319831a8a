//! A request as the handlers see it, and the responses they build.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::Value;

use super::{Policy, protobuf};
use crate::error::ApiError;

/// The largest request body accepted.
const MAX_BODY: usize = 64 << 20;

/// A request, parsed.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: HashMap<String, String>,
    pub(super) headers: HeaderMap,
    pub(super) user: String,
    /// What the user's requests are authorized against.
    pub(super) policy: Policy,
    pub(super) body: Body,
}

impl Call {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("1" | "true" | "True"))
    }

    pub(super) fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub(super) async fn body_bytes(&mut self) -> Result<bytes::Bytes, ApiError> {
        let body = std::mem::replace(&mut self.body, Body::empty());
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| ApiError::bad_request(format!("unable to read the request body: {e}")))
    }

    /// The body as JSON. Protobuf bodies are read for the few kinds kubectl sends only that way.
    pub(super) async fn body_json(&mut self) -> Result<Value, ApiError> {
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

pub(super) fn json_response(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .unwrap_or_default()
}

pub(super) fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    // As the real server, only errors that name a delay say when to retry.
    let retry_after = error
        .details
        .as_ref()
        .and_then(|d| d["retryAfterSeconds"].as_u64());
    if let Some(seconds) = retry_after
        && let Ok(value) = header::HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
