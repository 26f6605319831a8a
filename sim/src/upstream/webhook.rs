//! kube-sim's sidecar injector served as a mutating admission webhook, so that a real
//! kube-apiserver injects pods as Istio's webhook would (DESIGN §5.1).
//!
//! The API server decides *which* revision's webhook it calls for a pod, by the namespace and
//! object selectors of Istio's MutatingWebhookConfigurations (built from
//! `istio_injection::webhooks`, as kube-sim's own admission evaluates them); each revision's
//! webhooks (and each tag's, pointing at its revision) call `POST /inject/<revision>`. The
//! webhook then applies the revision's injector rules ([`istio_injection::policy::decide`] with
//! its ConfigMap's `config`) and injects [`crate::injector::inject_revision`], the same code
//! kube-sim's own admission runs, with that revision's injector ConfigMap read from the API
//! server at the time of the request (a test upgrades the control plane by editing it).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};

use istio_injection::policy;
use istio_injection::webhooks::{self, WebhookConfiguration};

use crate::controllers::meta;
use crate::error::Error;
use crate::injector::{self, RevisionInjector};

/// Reads what a revision's injector reads (its ConfigMap's `data.values` and `data.config`,
/// istiod's `ENABLE_NATIVE_SIDECARS`): `None` when there is no ConfigMap.
pub type ValuesSource = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, Result<Option<RevisionInjector>, String>>
        + Send
        + Sync,
>;

/// The injector's TLS configuration from its PEM certificate and key.
fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    let tls_error = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls_error(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(&e))?;
    Ok(Arc::new(config))
}

/// Listens on a free loopback port; returns it and the task that serves until aborted.
pub async fn serve(
    cert_pem: &str,
    key_pem: &str,
    values: ValuesSource,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(cert_pem, key_pem)?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::io("cannot listen for the injector webhook", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the webhook's address", e))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let acceptor = acceptor.clone();
            let values = values.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let values = values.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(request, values).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    values: ValuesSource,
) -> Response<Full<Bytes>> {
    let revision = request
        .uri()
        .path()
        .strip_prefix("/inject/")
        .map(str::to_string);
    let (Some(revision), true) = (revision, request.method() == hyper::Method::POST) else {
        return plain(StatusCode::NOT_FOUND, "POST /inject/<revision>");
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let review: Value = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("not an AdmissionReview: {e}"),
            );
        }
    };
    let response = match values(revision.clone()).await {
        Ok(injector) => admit(&review, &revision, injector.as_ref()),
        // Failing closed, as Istio's webhook (failurePolicy: Fail) does when it cannot answer.
        Err(e) => json!({"uid": review["request"]["uid"], "allowed": false,
                         "status": {"code": 500, "message": format!("injector: {e}")}}),
    };
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a static response")
}

/// The AdmissionReview `response` for one request: the pod as the revision's injector leaves it,
/// as a JSON patch (none when nothing is injected: no injector ConfigMap, a `config` it cannot
/// read, or its rules refuse the pod).
pub fn admit(review: &Value, revision: &str, injector: Option<&RevisionInjector>) -> Value {
    let request = &review["request"];
    let mut pod = request["object"].clone();
    // Pods a controller creates carry no namespace in the object yet; the injector reads it.
    if pod["metadata"]["namespace"].is_null() && request["namespace"].is_string() {
        pod["metadata"]["namespace"] = request["namespace"].clone();
    }
    let mut response = json!({"uid": request["uid"], "allowed": true});
    let Some(injector) = injector else {
        return response;
    };
    let config = match injector.config() {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(%revision, "the injector ConfigMap's config cannot be read, nothing injected: {e}");
            return response;
        }
    };
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    if !policy::decide(&injector::pod_facts(&pod, &namespace), &config).injects() {
        return response;
    }
    let before = pod.clone();
    if injector::inject_revision(&mut pod, revision, Some(injector), None) {
        let patch = json_patch::diff(&before, &pod);
        let patch = serde_json::to_vec(&patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    response
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(message.to_string())))
        .expect("a static response")
}

/// Istio's MutatingWebhookConfiguration of one revision (as `istioctl` installs it,
/// [`webhooks::revision_configuration`]), each of its webhooks calling
/// `url_base/inject/<revision>` with the CA `ca_pem`.
pub fn istio_webhook_configuration(revision: &str, url_base: &str, ca_pem: &str) -> Value {
    configuration_json(
        &webhooks::revision_configuration(revision),
        url_base,
        ca_pem,
    )
}

/// The configuration of the revision tag `tag` pointing at `revision` (as `istioctl tag set`
/// installs it, [`webhooks::tag_configuration`]): its webhooks call the revision's path.
pub fn istio_tag_configuration(tag: &str, revision: &str, url_base: &str, ca_pem: &str) -> Value {
    configuration_json(
        &webhooks::tag_configuration(tag, revision),
        url_base,
        ca_pem,
    )
}

/// A configuration as the API server takes it: each webhook calling the path of the
/// configuration's revision (`url_base/inject/<revision>`) with the CA `ca_pem`, for pod
/// creations, failing closed, as Istio's do.
pub fn configuration_json(
    configuration: &WebhookConfiguration,
    url_base: &str,
    ca_pem: &str,
) -> Value {
    let mut json = serde_json::to_value(configuration).expect("a configuration serializes");
    let url = format!("{url_base}/inject/{}", configuration.revision());
    for webhook in json["webhooks"].as_array_mut().into_iter().flatten() {
        let fields = json!({
            "clientConfig": {
                "url": url,
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "*"}],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        });
        let webhook = meta::ensure_object(webhook);
        for (key, value) in fields.as_object().expect("an object") {
            webhook.insert(key.clone(), value.clone());
        }
        // The API server takes no null selector: absent means every namespace or object.
        webhook.retain(|_, value| !value.is_null());
    }
    json["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    json["kind"] = json!("MutatingWebhookConfiguration");
    json
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
