//! ServiceAccount tokens: `POST serviceaccounts/NAME/token` (authentication.k8s.io/v1
//! TokenRequest, what `kubectl create token` sends) issues one, and a request bearing it
//! authenticates as `system:serviceaccount:NS:NAME`, as long as the token has not expired and
//! the ServiceAccount it was issued for still exists.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::Response;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::request::{Call, json_response};
use super::routing::{Target, name_of};
use crate::controllers::meta;
use crate::error::ApiError;

/// The audience of tokens that did not ask for one, and the one the API server accepts, as
/// kube-apiserver's `--api-audiences` default.
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// The lifetime of a token that did not ask for one (`kubectl create token` without `--duration`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime the API server issues.
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// One issued token: whom it was issued for and until when it is valid.
struct Issued {
    namespace: String,
    name: String,
    /// A token dies with its ServiceAccount: one recreated under the same name has another uid.
    uid: String,
    audiences: Vec<String>,
    expires: DateTime<Utc>,
}

/// The tokens issued so far, by token.
#[derive(Default)]
pub struct IssuedTokens {
    tokens: Mutex<HashMap<String, Issued>>,
}

impl IssuedTokens {
    /// The user a token authenticates as, if it is an issued token that is still valid.
    pub(super) fn user_of(&self, token: &str, shared: &Shared) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let issued = tokens.get(token)?;
        let serviceaccounts = crate::store::resource_for_plural("", "serviceaccounts")?;
        let account = shared
            .store
            .get(serviceaccounts, Some(&issued.namespace), &issued.name)?;
        let valid = meta::uid(&account) == issued.uid
            && issued.expires > Utc::now()
            && issued.audiences.iter().any(|a| a == API_AUDIENCE);
        valid.then(|| service_account_user(&issued.namespace, &issued.name))
    }

    fn remember(&self, token: String, issued: Issued) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, issued);
    }
}

/// The user name of a ServiceAccount, which RBAC subjects of kind ServiceAccount stand for.
fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// `POST serviceaccounts/NAME/token`: a new token for the ServiceAccount, 404 when it does not
/// exist. The spec's `boundObjectRef` is not checked.
pub(super) async fn create_token(
    shared: &Shared,
    call: &mut Call,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let mut request = call.body_json().await?;
    let (namespace, name) = (
        target.namespace.as_deref().unwrap_or("default"),
        name_of(target),
    );
    let account = shared
        .store
        .get(target.resource, Some(namespace), name)
        .ok_or_else(|| ApiError::not_found(target.resource, name))?;
    let seconds = expiration_seconds(&request["spec"], name)?;
    let audiences = audiences(&request["spec"]);
    let expires = Utc::now() + Duration::seconds(seconds);
    let issued = Issued {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: meta::uid(&account).to_string(),
        audiences: audiences.clone(),
        expires,
    };
    let token = jwt_shaped_token(&issued);
    shared.tokens.issued.remember(token.clone(), issued);
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] =
        json!({"name": name, "namespace": namespace, "creationTimestamp": Value::Null});
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(seconds);
    request["status"] = json!({"token": token, "expirationTimestamp": meta::format_time(expires)});
    Ok(json_response(201, &request))
}

fn expiration_seconds(spec: &Value, name: &str) -> Result<i64, ApiError> {
    let seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if seconds >= MIN_EXPIRATION_SECONDS {
        return Ok(seconds);
    }
    let why = format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes");
    let mut error = ApiError::new(
        422,
        "Invalid",
        format!(
            "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: {why}"
        ),
    );
    error.details =
        Some(json!({"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest"}));
    Err(error.with_causes(
        json!([{"reason": "FieldValueInvalid", "message": why, "field": "spec.expirationSeconds"}]),
    ))
}

fn audiences(spec: &Value) -> Vec<String> {
    let asked: Vec<String> = spec["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    if asked.is_empty() {
        vec![API_AUDIENCE.to_string()]
    } else {
        asked
    }
}

/// A token shaped as the real server's (a JWT with the usual claims), so that clients reading
/// its expiry or subject find them; its signature part is random, which makes it unguessable,
/// and the server recognises it by remembering it, not by checking a signature.
fn jwt_shaped_token(issued: &Issued) -> String {
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let header = json!({"alg": "RS256", "kid": "kube-sim"});
    let now = Utc::now().timestamp();
    let claims = json!({
        "aud": issued.audiences,
        "exp": issued.expires.timestamp(),
        "iat": now,
        "nbf": now,
        "iss": API_AUDIENCE,
        "sub": service_account_user(&issued.namespace, &issued.name),
        "kubernetes.io": {"namespace": issued.namespace,
                          "serviceaccount": {"name": issued.name, "uid": issued.uid}},
    });
    let signature: String = (0..86).map(|_| signature_char()).collect();
    format!("{}.{}.{signature}", encode(&header), encode(&claims))
}

fn signature_char() -> char {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    ALPHABET[fastrand::usize(0..ALPHABET.len())] as char
}
