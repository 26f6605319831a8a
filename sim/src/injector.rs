//! The Istio sidecar injector, applied to every pod on creation as Istio's mutating webhook would.
//!
//! Injection applies when the pod's namespace has `istio-injection=enabled` (the default
//! revision, whatever the pod says) or an `istio.io/rev` label, or the pod has the label
//! `istio.io/rev` or `sidecar.istio.io/inject: "true"`; a pod label or annotation
//! `sidecar.istio.io/inject: "false"` (or the namespace label `istio-injection=disabled`) wins.
//! `upstream::webhook`'s table test holds this to Istio's webhook selectors.
//! The proxy image comes from the injector ConfigMap of the pod's revision
//! (`istio-sidecar-injector` or `istio-sidecar-injector-<rev>` in `istio-system`), unless an
//! override is given. Without either there is no injector, and nothing is injected.

use serde_json::{Value, json};

use crate::controllers::meta;
use crate::store::{Store, resource_for_plural};

/// The namespace Istio's control plane and injector ConfigMaps live in.
pub const ISTIO_NAMESPACE: &str = "istio-system";

/// Injects the Istio sidecar into `pod` when injection applies.
pub fn inject(store: &Store, pod: &mut Value, proxy_image_override: Option<&str>) {
    if has_proxy(pod) {
        return;
    }
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let ns = resource_for_plural("", "namespaces").and_then(|r| store.get(r, None, &namespace));
    let ns_label = |key: &str| {
        ns.as_ref()
            .and_then(|ns| meta::label(ns, key).map(str::to_string))
    };
    let ns_injection = ns_label("istio-injection");
    let ns_revision = ns_label("istio.io/rev");
    let wanted = match ns_injection.as_deref() {
        Some("disabled") => false,
        Some("enabled") => true,
        _ => {
            ns_revision.is_some()
                || meta::label(pod, "sidecar.istio.io/inject") == Some("true")
                || meta::label(pod, "istio.io/rev").is_some()
        }
    };
    if !wanted || opted_out(pod) {
        return;
    }
    // As Istio's webhooks select: `istio-injection=enabled` is the default revision's, whatever
    // the pod says; else the namespace's `istio.io/rev`; else the pod's; else the default.
    let revision = if ns_injection.as_deref() == Some("enabled") {
        "default".to_string()
    } else {
        ns_revision
            .or_else(|| meta::label(pod, "istio.io/rev").map(str::to_string))
            .unwrap_or_else(|| "default".to_string())
    };
    let values = injector_values(store, &revision);
    inject_revision(pod, &revision, values.as_ref(), proxy_image_override);
}

/// Injects what `revision`'s injector (its ConfigMap's `data.values`) injects, once the decision
/// that this revision injects the pod is made: by the namespace and pod labels in kube-sim, by
/// the API server's webhook selectors upstream. Returns whether anything was injected (not
/// without values and without an override: no injector, nothing injected).
pub fn inject_revision(
    pod: &mut Value,
    revision: &str,
    values: Option<&Value>,
    proxy_image_override: Option<&str>,
) -> bool {
    if has_proxy(pod) || opted_out(pod) {
        return false;
    }
    let image = match (proxy_image_override, values) {
        (Some(image), _) => image.to_string(),
        (None, Some(values)) => proxy_image(values),
        (None, None) => return false,
    };
    let native = match meta::annotation(pod, "sidecar.istio.io/nativeSidecar") {
        Some(flag) => flag == "true",
        None => values.is_some_and(native_sidecars),
    };
    add_sidecar(pod, &image, revision, native);
    true
}

/// The pod label or annotation `sidecar.istio.io/inject: "false"`: Istio's webhook selectors see
/// only the label, its injector also honours the annotation.
fn opted_out(pod: &Value) -> bool {
    meta::label(pod, "sidecar.istio.io/inject") == Some("false")
        || meta::annotation(pod, "sidecar.istio.io/inject") == Some("false")
}

/// The name of a revision's injector ConfigMap in the Istio namespace.
pub fn injector_configmap(revision: &str) -> String {
    match revision {
        "default" | "" => "istio-sidecar-injector".to_string(),
        rev => format!("istio-sidecar-injector-{rev}"),
    }
}

/// A ConfigMap's parsed `data.values` (an empty object when it is not JSON).
pub fn configmap_values(configmap: &Value) -> Value {
    let values = configmap["data"]["values"].as_str().unwrap_or("{}");
    serde_json::from_str(values).unwrap_or_else(|_| json!({}))
}

/// Whether the pod already has a proxy container (or native sidecar).
pub fn has_proxy(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|list| {
        pod["spec"][list]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"))
    })
}

/// The parsed `data.values` of the injector ConfigMap of a revision.
fn injector_values(store: &Store, revision: &str) -> Option<Value> {
    let configmaps = resource_for_plural("", "configmaps")?;
    let cm = store.get(
        configmaps,
        Some(ISTIO_NAMESPACE),
        &injector_configmap(revision),
    )?;
    Some(configmap_values(&cm))
}

/// The proxy image the injector values name: `{hub}/{proxy.image}:{tag}` (with `-{variant}` when
/// set), or `proxy.image` itself when it is a full reference.
pub fn proxy_image(values: &Value) -> String {
    let global = &values["global"];
    let image = global["proxy"]["image"].as_str().unwrap_or("proxyv2");
    if image.contains('/') || image.contains(':') {
        return image.to_string();
    }
    let hub = global["hub"].as_str().unwrap_or("docker.io/istio");
    let tag = match &global["tag"] {
        Value::String(tag) => tag.clone(),
        Value::Null => "latest".to_string(),
        other => other.to_string(),
    };
    match global["variant"].as_str().filter(|v| !v.is_empty()) {
        Some(variant) => format!("{hub}/{image}:{tag}-{variant}"),
        None => format!("{hub}/{image}:{tag}"),
    }
}

/// Whether the injector runs the proxy as a native sidecar (an init container with
/// `restartPolicy: Always`).
fn native_sidecars(values: &Value) -> bool {
    let truthy = |v: &Value| v == &json!(true) || v == &json!("true");
    truthy(&values["global"]["nativeSidecars"])
        || truthy(&values["pilot"]["env"]["ENABLE_NATIVE_SIDECARS"])
}

const SIDECAR_VOLUMES: [&str; 6] = [
    "workload-socket",
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
];

/// Adds what Istio's injection template adds: the `istio-init` init container, the `istio-proxy`
/// container (or native sidecar), their volumes, and the status annotation and labels.
pub fn add_sidecar(pod: &mut Value, image: &str, revision: &str, native: bool) {
    let app = meta::label(pod, "app.kubernetes.io/name")
        .or_else(|| meta::label(pod, "app"))
        .unwrap_or_else(|| meta::name(pod))
        .to_string();
    let proxy = proxy_container(image, native);
    let init = init_container(image);
    let spec = meta::ensure_object(&mut pod["spec"]);
    let first_container = spec
        .get("containers")
        .and_then(|c| c[0]["name"].as_str())
        .unwrap_or("app")
        .to_string();
    let inits = meta::ensure_array(spec.entry("initContainers").or_insert(Value::Null));
    inits.insert(0, init);
    if native {
        inits.insert(1, proxy);
    } else {
        let containers = meta::ensure_array(spec.entry("containers").or_insert(Value::Null));
        containers.push(proxy);
    }
    let volumes = meta::ensure_array(spec.entry("volumes").or_insert(Value::Null));
    volumes.extend(sidecar_volumes());

    let status = json!({
        "initContainers": if native { json!(["istio-init", "istio-proxy"]) } else { json!(["istio-init"]) },
        "containers": if native { Value::Null } else { json!(["istio-proxy"]) },
        "volumes": SIDECAR_VOLUMES,
        "imagePullSecrets": null,
        "revision": revision,
    });
    let annotations = [
        ("sidecar.istio.io/status", status.to_string()),
        ("kubectl.kubernetes.io/default-container", first_container),
        ("prometheus.io/path", "/stats/prometheus".to_string()),
        ("prometheus.io/port", "15020".to_string()),
        ("prometheus.io/scrape", "true".to_string()),
    ];
    for (key, value) in annotations {
        meta::set_meta_entry(pod, "annotations", key, &value);
    }
    let labels = [
        ("security.istio.io/tlsMode", "istio".to_string()),
        ("service.istio.io/canonical-name", app),
        (
            "service.istio.io/canonical-revision",
            meta::label(pod, "app.kubernetes.io/version")
                .or_else(|| meta::label(pod, "version"))
                .unwrap_or("latest")
                .to_string(),
        ),
    ];
    for (key, value) in labels {
        meta::set_meta_entry(pod, "labels", key, &value);
    }
}

fn proxy_container(image: &str, native: bool) -> Value {
    let field =
        |path: &str| json!({"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}});
    let env_from = |name: &str, path: &str| {
        let mut e = field(path);
        e["name"] = json!(name);
        e
    };
    let mut container = json!({
        "name": "istio-proxy",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
            env_from("POD_NAME", "metadata.name"),
            env_from("POD_NAMESPACE", "metadata.namespace"),
            env_from("INSTANCE_IP", "status.podIP"),
            env_from("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
        ],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "failureThreshold": 4, "periodSeconds": 15, "successThreshold": 1, "timeoutSeconds": 3,
        },
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "privileged": false,
            "readOnlyRootFilesystem": true, "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/workload-spiffe-uds", "name": "workload-socket"},
            {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
            {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
            {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
            {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
            {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"},
        ],
    });
    if native {
        container["restartPolicy"] = json!("Always");
    }
    container
}

fn init_container(image: &str) -> Value {
    json!({
        "name": "istio-init",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                 "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "privileged": false, "readOnlyRootFilesystem": false, "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })
}

fn sidecar_volumes() -> Vec<Value> {
    vec![
        json!({"emptyDir": {}, "name": "workload-socket"}),
        json!({"emptyDir": {"medium": "Memory"}, "name": "istio-envoy"}),
        json!({"emptyDir": {}, "name": "istio-data"}),
        json!({"downwardAPI": {"defaultMode": 420, "items": [
            {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}, "path": "labels"},
            {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations"}, "path": "annotations"},
        ]}, "name": "istio-podinfo"}),
        json!({"name": "istio-token", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}},
        ]}}),
        json!({"configMap": {"defaultMode": 420, "name": "istio-ca-root-cert"}, "name": "istiod-ca-cert"}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(namespace_labels: Value, values: Option<Value>) -> std::sync::Arc<Store> {
        let mut items = vec![json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": namespace_labels}})];
        if let Some(values) = values {
            items.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
                "data": {"values": values.to_string()}}));
        }
        let store = Store::new();
        store
            .load_list(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
            .unwrap();
        store
    }

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop", "labels": labels},
               "spec": {"containers": [{"name": "app", "image": "shop:1"}]}})
    }

    fn values() -> Value {
        json!({"global": {"hub": "europe-docker.pkg.dev/kyma-project/prod/external/istio", "tag": "1.24.1",
                          "variant": "distroless", "proxy": {"image": "proxyv2"}}})
    }

    #[test]
    fn injects_in_enabled_namespace_with_the_configmap_image() {
        let store = store_with(json!({"istio-injection": "enabled"}), Some(values()));
        let mut p = pod(json!({"app": "orders"}));
        inject(&store, &mut p, None);
        let containers = p["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers[1]["name"], "istio-proxy");
        assert_eq!(
            containers[1]["image"],
            "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless"
        );
        assert_eq!(p["spec"]["initContainers"][0]["name"], "istio-init");
        let status: Value = serde_json::from_str(
            p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["containers"], json!(["istio-proxy"]));
        assert_eq!(status["revision"], "default");
        // Injecting again changes nothing.
        let before = p.clone();
        inject(&store, &mut p, None);
        assert_eq!(p, before);
    }

    #[test]
    fn opt_out_and_opt_in() {
        let store = store_with(json!({"istio-injection": "enabled"}), Some(values()));
        let mut p = pod(json!({"sidecar.istio.io/inject": "false"}));
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p));

        let store = store_with(json!({}), Some(values()));
        let mut p = pod(json!({}));
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p));
        let mut p = pod(json!({"sidecar.istio.io/inject": "true"}));
        inject(
            &store,
            &mut p,
            Some("mirror.example.com/istio/proxyv2:1.24.1"),
        );
        assert_eq!(
            p["spec"]["containers"][1]["image"],
            "mirror.example.com/istio/proxyv2:1.24.1"
        );
    }

    #[test]
    fn native_sidecar_mode() {
        let mut v = values();
        v["global"]["nativeSidecars"] = json!(true);
        v["global"]["proxy"]["image"] = json!("registry.local/istio/proxyv2:1.24.1");
        let store = store_with(json!({"istio-injection": "enabled"}), Some(v));
        let mut p = pod(json!({}));
        inject(&store, &mut p, None);
        assert_eq!(p["spec"]["containers"].as_array().unwrap().len(), 1);
        let proxy = &p["spec"]["initContainers"][1];
        assert_eq!(proxy["name"], "istio-proxy");
        assert_eq!(proxy["restartPolicy"], "Always");
        assert_eq!(proxy["image"], "registry.local/istio/proxyv2:1.24.1");
    }

    #[test]
    fn no_injector_no_injection() {
        let store = store_with(json!({"istio-injection": "enabled"}), None);
        let mut p = pod(json!({}));
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p));
    }
}
