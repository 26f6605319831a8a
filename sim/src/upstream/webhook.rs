//! kube-sim's sidecar injector served as a mutating admission webhook, so that a real
//! kube-apiserver injects pods as Istio's webhook would (DESIGN §5.1).
//!
//! The API server decides *whether* a revision injects a pod, by the namespace and object
//! selectors of Istio's MutatingWebhookConfigurations; each revision's webhooks call
//! `POST /inject/<revision>`. What is injected is [`crate::injector::inject_revision`], the same
//! code kube-sim's own admission runs, with that revision's injector ConfigMap read from the API
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

use crate::error::Error;
use crate::injector;

/// Reads a revision's injector ConfigMap `data.values`: `None` when there is no ConfigMap.
pub type ValuesSource = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, Result<Option<Value>, String>>
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
        Ok(values) => admit(&review, &revision, values.as_ref()),
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
/// as a JSON patch (none when nothing is injected).
pub fn admit(review: &Value, revision: &str, values: Option<&Value>) -> Value {
    let request = &review["request"];
    let mut pod = request["object"].clone();
    // Pods a controller creates carry no namespace in the object yet; the injector reads it.
    if pod["metadata"]["namespace"].is_null() && request["namespace"].is_string() {
        pod["metadata"]["namespace"] = request["namespace"].clone();
    }
    let before = pod.clone();
    let mut response = json!({"uid": request["uid"], "allowed": true});
    if injector::inject_revision(&mut pod, revision, values, None) {
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

/// Istio's MutatingWebhookConfiguration of one revision (as `istioctl` installs it), each of
/// its webhooks calling `url_base/inject/<revision>` with the CA `ca_pem`. The default revision
/// (`istio-sidecar-injector`) also injects through `istio-injection=enabled` and the pod label
/// `sidecar.istio.io/inject: "true"`; every revision through `istio.io/rev=<revision>` on the
/// namespace, or on the pod in a namespace without injection labels.
pub fn istio_webhook_configuration(revision: &str, url_base: &str, ca_pem: &str) -> Value {
    let not_opted_out =
        json!({"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]});
    let absent = |key: &str| json!({"key": key, "operator": "DoesNotExist"});
    let is = |key: &str, value: &str| json!({"key": key, "operator": "In", "values": [value]});
    let webhook = |name: &str, namespace: Vec<Value>, object: Vec<Value>| {
        json!({
            "name": name,
            "clientConfig": {
                "url": format!("{url_base}/inject/{revision}"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "*"}],
            "namespaceSelector": {"matchExpressions": namespace},
            "objectSelector": {"matchExpressions": object},
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        })
    };
    let mut webhooks = vec![
        webhook(
            "rev.namespace.sidecar-injector.istio.io",
            vec![is("istio.io/rev", revision), absent("istio-injection")],
            vec![not_opted_out.clone()],
        ),
        webhook(
            "rev.object.sidecar-injector.istio.io",
            vec![absent("istio.io/rev"), absent("istio-injection")],
            vec![not_opted_out.clone(), is("istio.io/rev", revision)],
        ),
    ];
    let name = injector::injector_configmap(revision);
    if revision == "default" {
        webhooks.push(webhook(
            "namespace.sidecar-injector.istio.io",
            vec![is("istio-injection", "enabled")],
            vec![not_opted_out],
        ));
        webhooks.push(webhook(
            "object.sidecar-injector.istio.io",
            vec![absent("istio-injection"), absent("istio.io/rev")],
            vec![
                is("sidecar.istio.io/inject", "true"),
                absent("istio.io/rev"),
            ],
        ));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app": "sidecar-injector", "istio.io/rev": revision}},
        "webhooks": webhooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(pod: Value) -> Value {
        json!({"request": {"uid": "u-1", "namespace": "shop", "object": pod}})
    }

    fn values() -> Value {
        json!({"global": {"hub": "europe-docker.pkg.dev/kyma-project/prod/external/istio",
                          "tag": "1.24.1", "variant": "distroless"}})
    }

    #[test]
    fn a_pod_is_patched_with_the_revisions_proxy() {
        let pod = json!({"metadata": {"generateName": "orders-"},
                         "spec": {"containers": [{"name": "app", "image": "orders:1"}]}});
        let response = admit(&review(pod.clone()), "default", Some(&values()));
        assert_eq!(response["allowed"], true);
        assert_eq!(response["uid"], "u-1");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
        let mut patched = pod;
        json_patch::patch(&mut patched, &patch).unwrap();
        let proxy = patched["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "istio-proxy")
            .unwrap();
        assert_eq!(
            proxy["image"],
            "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless"
        );
        assert!(
            patched["metadata"]["namespace"].is_null(),
            "the namespace is not patched in"
        );
    }

    #[test]
    fn no_configmap_or_an_opt_out_patches_nothing() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}});
        let response = admit(&review(pod), "default", None);
        assert_eq!(response["allowed"], true);
        assert!(response["patch"].is_null());
        let opted_out = json!({"metadata": {"name": "p", "annotations": {"sidecar.istio.io/inject": "false"}},
                               "spec": {"containers": [{"name": "app"}]}});
        assert!(admit(&review(opted_out), "default", Some(&values()))["patch"].is_null());
    }

    /// The revision whose webhook configuration (default and a canary `1-24`) the API server
    /// would call for a pod, evaluating the selectors as it does.
    fn selected_revision(namespace: &Value, pod: &Value) -> Option<String> {
        let mut matched = Vec::new();
        for revision in ["default", "1-24"] {
            let configuration = istio_webhook_configuration(revision, "https://127.0.0.1:1", "ca");
            let selects = |webhook: &Value, key: &str, labels: &Value| {
                crate::selector::LabelSelector::from_spec(Some(&webhook[key]))
                    .is_none_or(|s| s.matches_labels(Some(labels)))
            };
            for webhook in configuration["webhooks"].as_array().unwrap() {
                if selects(webhook, "namespaceSelector", namespace)
                    && selects(webhook, "objectSelector", pod)
                {
                    matched.push(revision.to_string());
                }
            }
        }
        matched.dedup();
        assert!(
            matched.len() <= 1,
            "two revisions' webhooks match: {matched:?}"
        );
        matched.pop()
    }

    /// The revision kube-sim's own admission injects the pod with.
    fn injected_revision(namespace: &Value, pod: &Value) -> Option<String> {
        let injector = |name: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "istio-system"},
            "data": {"values": values().to_string()}})
        };
        let state = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": namespace}},
            injector("istio-sidecar-injector"), injector("istio-sidecar-injector-1-24")]});
        let store = crate::store::Store::new();
        store.load_list(&state).unwrap();
        let mut pod = json!({"metadata": {"name": "p", "namespace": "shop", "labels": pod},
                             "spec": {"containers": [{"name": "app", "image": "a:1"}]}});
        crate::injector::inject(&store, &mut pod, None);
        let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()?;
        let status: Value = serde_json::from_str(status).unwrap();
        status["revision"].as_str().map(str::to_string)
    }

    /// One table for both deciders of which revision injects a pod: the webhook selectors the
    /// upstream API server evaluates, and kube-sim's own admission.
    #[test]
    fn webhooks_and_kube_sims_admission_pick_the_same_revision() {
        let cases = [
            (
                json!({"istio-injection": "enabled"}),
                json!({}),
                Some("default"),
            ),
            (json!({"istio-injection": "disabled"}), json!({}), None),
            (
                json!({"istio-injection": "disabled"}),
                json!({"sidecar.istio.io/inject": "true"}),
                None,
            ),
            (json!({"istio.io/rev": "1-24"}), json!({}), Some("1-24")),
            (json!({}), json!({"istio.io/rev": "1-24"}), Some("1-24")),
            (
                json!({}),
                json!({"sidecar.istio.io/inject": "true"}),
                Some("default"),
            ),
            (
                json!({"istio-injection": "enabled"}),
                json!({"sidecar.istio.io/inject": "false"}),
                None,
            ),
            (
                json!({"istio.io/rev": "1-24"}),
                json!({"sidecar.istio.io/inject": "false"}),
                None,
            ),
            (json!({}), json!({}), None),
            (
                json!({"istio-injection": "enabled", "istio.io/rev": "1-24"}),
                json!({}),
                Some("default"),
            ),
            (
                json!({"istio-injection": "enabled"}),
                json!({"istio.io/rev": "1-24"}),
                Some("default"),
            ),
        ];
        for (namespace, pod, expected) in cases {
            let expected = expected.map(str::to_string);
            assert_eq!(
                selected_revision(&namespace, &pod),
                expected,
                "webhooks: {namespace} {pod}"
            );
            assert_eq!(
                injected_revision(&namespace, &pod),
                expected,
                "kube-sim: {namespace} {pod}"
            );
        }
    }

    #[test]
    fn the_default_revision_has_four_webhooks_a_canary_two() {
        let default = istio_webhook_configuration("default", "https://127.0.0.1:1", "ca");
        assert_eq!(default["metadata"]["name"], "istio-sidecar-injector");
        assert_eq!(default["webhooks"].as_array().unwrap().len(), 4);
        let canary = istio_webhook_configuration("1-24", "https://127.0.0.1:1", "ca");
        assert_eq!(canary["metadata"]["name"], "istio-sidecar-injector-1-24");
        assert_eq!(canary["webhooks"].as_array().unwrap().len(), 2);
        assert_eq!(
            canary["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:1/inject/1-24"
        );
    }
}
