//! The Istio sidecar injector, applied to every pod on creation as Istio's mutating webhook would,
//! by the rules istio-proxy-reset judges pods by (`istio_injection`, DESIGN §2.2).
//!
//! Which revision injects a pod: the Istio MutatingWebhookConfigurations of the store, their
//! selectors evaluated against the pod's namespace and labels as the API server does; a store
//! without any has, for each revision with an injector ConfigMap in `istio-system`
//! (`istio-sidecar-injector[-<rev>]`), the configuration Istio installs for it. Then that
//! revision's injector rules (hostNetwork, the ignored namespaces, `sidecar.istio.io/inject`, the
//! ConfigMap's `config`). What it injects: [`inject_revision`], the same code the upstream
//! control plane's webhook runs: the image, resources, CNI and native-sidecar placement that the
//! revision's `data.values` (and istiod's `ENABLE_NATIVE_SIDECARS`) and the pod's annotations
//! give, or the override image. Without an injector ConfigMap and without an override, nothing
//! is injected.

use std::collections::{BTreeMap, HashMap};

use istio_injection::proxy::{self, PodProxy, Resources, RevisionProxy};
use istio_injection::webhooks::{self, NamespaceLabels, WebhookConfiguration};
use istio_injection::{DEFAULT_REVISION, InjectorConfig, PodFacts, REVISION_LABEL, Target};
use serde_json::{Value, json};

use crate::controllers::meta;
use crate::store::{Store, resource_for_plural};

/// The namespace Istio's control plane and injector ConfigMaps live in.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The env of istiod's `discovery` container that turns native sidecars on.
pub const NATIVE_SIDECARS_ENV: &str = "ENABLE_NATIVE_SIDECARS";

/// What one revision's injector reads: its ConfigMap's `data.values` and `data.config`, and the
/// `ENABLE_NATIVE_SIDECARS` env of its istiod when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevisionInjector {
    pub values: Value,
    pub config: Option<String>,
    pub istiod_native: Option<String>,
}

impl RevisionInjector {
    /// From an injector ConfigMap (values that are not JSON: an empty object).
    pub fn from_configmap(configmap: &Value, istiod_native: Option<String>) -> RevisionInjector {
        RevisionInjector {
            values: configmap_values(configmap),
            config: configmap["data"]["config"].as_str().map(str::to_string),
            istiod_native,
        }
    }

    /// `data.config` parsed; `Err` when the injector could not read it.
    pub fn config(&self) -> Result<InjectorConfig, String> {
        InjectorConfig::parse(self.config.as_deref())
    }
}

/// What the injector reads of a pod in `namespace`.
pub fn pod_facts<'a>(pod: &'a Value, namespace: &'a str) -> PodFacts<'a, &'a Value> {
    PodFacts {
        namespace,
        labels: &pod["metadata"]["labels"],
        inject_annotation: meta::annotation(pod, istio_injection::policy::INJECT_KEY),
        host_network: pod["spec"]["hostNetwork"].as_bool() == Some(true),
    }
}

/// Injects the Istio sidecar into `pod` when a webhook and its revision's injector would.
pub fn inject(store: &Store, pod: &mut Value, proxy_image_override: Option<&str>) {
    if has_proxy(pod) {
        return;
    }
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let injectors = revision_injectors(store);
    let mut configurations = webhook_configurations(store);
    if configurations.is_empty() {
        let mut revisions: Vec<&str> = injectors.keys().map(String::as_str).collect();
        if revisions.is_empty() && proxy_image_override.is_some() {
            revisions.push(DEFAULT_REVISION);
        }
        configurations = revisions
            .into_iter()
            .map(webhooks::revision_configuration)
            .collect();
    }
    let mut configs = HashMap::new();
    let mut unreadable = HashMap::new();
    for (revision, injector) in &injectors {
        match injector.config() {
            Ok(config) => {
                configs.insert(revision.as_str(), config);
            }
            Err(e) => {
                unreadable.insert(revision.as_str(), e);
            }
        }
    }
    let ns = resource_for_plural("", "namespaces").and_then(|r| store.get(r, None, &namespace));
    let ns_labels = ns.map_or(Value::Null, |ns| ns["metadata"]["labels"].clone());
    let ns_labels = NamespaceLabels {
        name: &namespace,
        labels: &ns_labels,
    };
    let facts = pod_facts(pod, &namespace);
    let target = istio_injection::target(&configurations, &ns_labels, &facts, |revision| {
        configs.get(revision)
    });
    let revision = match target {
        Target::Revision { revision, .. } => revision,
        Target::NoProxy(_) => return,
        Target::Conflict(why) => {
            // The API server calls the configurations in the order of their names; the first
            // revision whose injector takes the pod injects it, the later ones find the proxy.
            let called = configurations
                .iter()
                .filter(|c| c.selects(&ns_labels, &pod_labels(pod)));
            let default = InjectorConfig::default();
            let first = called.map(WebhookConfiguration::revision).find(|revision| {
                let config = configs.get(revision.as_str()).unwrap_or(&default);
                istio_injection::policy::decide(&facts, config).injects()
            });
            tracing::warn!(pod = meta::name(pod), %namespace, "{why}");
            match first {
                Some(revision) => revision,
                None => return,
            }
        }
    };
    if let Some(why) = unreadable.get(revision.as_str()) {
        tracing::warn!(
            pod = meta::name(pod),
            %namespace,
            %revision,
            "the injector ConfigMap's config cannot be read, nothing injected: {why}"
        );
        return;
    }
    inject_revision(
        pod,
        &revision,
        injectors.get(&revision),
        proxy_image_override,
    );
}

fn pod_labels(pod: &Value) -> &Value {
    &pod["metadata"]["labels"]
}

/// The Istio injector configurations of the store, in the order the API server calls them
/// (by name). Those that do not parse are left out, with a warning.
pub fn webhook_configurations(store: &Store) -> Vec<WebhookConfiguration> {
    let Some(resource) = resource_for_plural(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ) else {
        return Vec::new();
    };
    let mut configurations: Vec<WebhookConfiguration> = store
        .list_shared(resource, None)
        .iter()
        .filter_map(|object| {
            serde_json::from_value::<WebhookConfiguration>(Value::clone(object))
                .inspect_err(|e| {
                    tracing::warn!(
                        name = meta::name(object),
                        "a MutatingWebhookConfiguration the injector cannot read: {e}"
                    )
                })
                .ok()
        })
        .filter(WebhookConfiguration::is_istio_injector)
        .collect();
    configurations.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    configurations
}

/// Each revision that has an injector ConfigMap in the Istio namespace, with what its injector
/// reads.
pub fn revision_injectors(store: &Store) -> BTreeMap<String, RevisionInjector> {
    let (Some(configmaps), Some(deployments)) = (
        resource_for_plural("", "configmaps"),
        resource_for_plural("apps", "deployments"),
    ) else {
        return BTreeMap::new();
    };
    let istiods = store.list_shared(deployments, Some(ISTIO_NAMESPACE));
    let istiods: Vec<&Value> = istiods.iter().map(|d| &**d).collect();
    store
        .list_shared(configmaps, Some(ISTIO_NAMESPACE))
        .iter()
        .filter_map(|cm| {
            let revision = configmap_revision(meta::name(cm))?;
            let native = istiod_native_env(&istiods, &revision);
            Some((revision, RevisionInjector::from_configmap(cm, native)))
        })
        .collect()
}

/// The revision whose injector ConfigMap this is, by its name.
pub fn configmap_revision(name: &str) -> Option<String> {
    match name.strip_prefix("istio-sidecar-injector")? {
        "" => Some(DEFAULT_REVISION.to_string()),
        rest => rest
            .strip_prefix('-')
            .filter(|rev| !rev.is_empty())
            .map(str::to_string),
    }
}

/// The `ENABLE_NATIVE_SIDECARS` env of the `discovery` container of `revision`'s istiod: the
/// Deployment labelled `istio.io/rev=<revision>` (and `app=istiod`, when several are), else
/// the one named `istiod` (default) or `istiod-<revision>`.
pub fn istiod_native_env(deployments: &[&Value], revision: &str) -> Option<String> {
    let named = if revision == DEFAULT_REVISION {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    };
    let labelled = |d: &&&Value| meta::label(d, REVISION_LABEL) == Some(revision);
    let istiod = deployments
        .iter()
        .filter(labelled)
        .find(|d| meta::label(d, "app") == Some("istiod"))
        .or_else(|| deployments.iter().find(labelled))
        .or_else(|| deployments.iter().find(|d| meta::name(d) == named))?;
    let containers = istiod["spec"]["template"]["spec"]["containers"].as_array()?;
    let discovery = containers
        .iter()
        .find(|c| c["name"] == "discovery")
        .or(containers.first())?;
    discovery["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == NATIVE_SIDECARS_ENV)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

/// Injects what `revision`'s injector injects, once the decision that this revision injects the
/// pod is made: by `istio_injection`'s rules in kube-sim, by the API server's webhook selectors
/// and [`istio_injection::policy::decide`] upstream. Returns whether anything was injected (not
/// without an injector and without an override, nor with values that name no image).
pub fn inject_revision(
    pod: &mut Value,
    revision: &str,
    injector: Option<&RevisionInjector>,
    proxy_image_override: Option<&str>,
) -> bool {
    if has_proxy(pod) {
        return false;
    }
    let image = match (proxy_image_override, injector) {
        (Some(image), _) => image.to_string(),
        (None, Some(injector)) => match proxy::image(&injector.values) {
            Ok(image) => image,
            Err(e) => {
                tracing::warn!(
                    pod = meta::name(pod),
                    %revision,
                    "the injector cannot name the proxy image, nothing injected: {e}"
                );
                return false;
            }
        },
        (None, None) => return false,
    };
    let empty = json!({});
    let revision_proxy = RevisionProxy::from_values(
        injector.map_or(&empty, |i| &i.values),
        injector.and_then(|i| i.istiod_native.as_deref()),
    );
    let proxy = revision_proxy.for_pod(|key| meta::annotation(pod, key));
    add_sidecar(pod, &image, revision, &proxy);
    true
}

/// The name of a revision's injector ConfigMap in the Istio namespace.
pub fn injector_configmap(revision: &str) -> String {
    webhooks::configuration_name(revision)
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

const SIDECAR_VOLUMES: [&str; 6] = [
    "workload-socket",
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
];

/// Adds what Istio's injection template adds: the `istio-init` init container (`istio-validation`
/// with Istio CNI), the `istio-proxy` container (a native sidecar, an init container with
/// `restartPolicy: Always`, when `proxy.native_sidecar` is `Some(true)`) with `proxy`'s resources
/// (the fields it gives; Istio's defaults when it gives none), their volumes, and the status
/// annotation and labels.
pub fn add_sidecar(pod: &mut Value, image: &str, revision: &str, proxy: &PodProxy) {
    let native = proxy.native_sidecar == Some(true);
    let init_name = proxy.init_container();
    let app = meta::label(pod, "app.kubernetes.io/name")
        .or_else(|| meta::label(pod, "app"))
        .unwrap_or_else(|| meta::name(pod))
        .to_string();
    let init = init_container(image, init_name);
    let proxy = proxy_container(image, native, proxy.resources.as_ref());
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
        "initContainers": if native { json!([init_name, "istio-proxy"]) } else { json!([init_name]) },
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

fn proxy_container(image: &str, native: bool, resources: Option<&Resources>) -> Value {
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
    if let Some(resources) = resources {
        container["resources"] = resources.to_json();
    }
    if native {
        container["restartPolicy"] = json!("Always");
    }
    container
}

/// `istio-init` sets up the redirection; `istio-validation` (Istio CNI) only checks it.
fn init_container(image: &str, name: &str) -> Value {
    let mut args = vec![
        "istio-iptables",
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-m",
        "REDIRECT",
        "-i",
        "*",
        "-x",
        "",
        "-b",
        "*",
        "-d",
        "15090,15021,15020",
    ];
    let capabilities = if name == proxy::VALIDATION_CONTAINER {
        args.extend(["--run-validation", "--skip-rule-apply"]);
        json!({"drop": ["ALL"]})
    } else {
        json!({"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]})
    };
    let validation = name == proxy::VALIDATION_CONTAINER;
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": capabilities,
            "privileged": false, "readOnlyRootFilesystem": validation,
            "runAsGroup": if validation { 1337 } else { 0 }, "runAsNonRoot": validation,
            "runAsUser": if validation { 1337 } else { 0 },
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
        v["pilot"]["env"]["ENABLE_NATIVE_SIDECARS"] = json!("true");
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

    #[test]
    fn injector_configmaps_name_their_revisions() {
        assert_eq!(
            configmap_revision("istio-sidecar-injector").as_deref(),
            Some("default")
        );
        assert_eq!(
            configmap_revision("istio-sidecar-injector-1-24").as_deref(),
            Some("1-24")
        );
        assert_eq!(configmap_revision("istio-sidecar-injector-"), None);
        assert_eq!(configmap_revision("istio-sidecar-injectorx"), None);
        assert_eq!(configmap_revision("istio-ca-root-cert"), None);
        assert_eq!(injector_configmap("1-24"), "istio-sidecar-injector-1-24");
    }

    #[test]
    fn istiods_native_sidecar_env_by_label_then_name() {
        let istiod = |name: &str, rev: Option<&str>, value: &str| {
            let mut d = json!({"metadata": {"name": name, "labels": {"app": "istiod"}},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "sidecar", "env": [{"name": NATIVE_SIDECARS_ENV, "value": "x"}]},
                    {"name": "discovery", "env": [{"name": NATIVE_SIDECARS_ENV, "value": value}]}]}}}});
            if let Some(rev) = rev {
                d["metadata"]["labels"]["istio.io/rev"] = json!(rev);
            }
            d
        };
        let (a, b, c) = (
            istiod("istiod", None, "false"),
            istiod("istiod-canary", Some("1-24"), "true"),
            istiod("istiod-1-23", None, "auto"),
        );
        let all = [&a, &b, &c];
        assert_eq!(istiod_native_env(&all, "default").as_deref(), Some("false"));
        assert_eq!(istiod_native_env(&all, "1-24").as_deref(), Some("true"));
        assert_eq!(istiod_native_env(&all, "1-23").as_deref(), Some("auto"));
        assert_eq!(istiod_native_env(&all, "1-25"), None);
    }

    #[test]
    fn stored_configurations_decide_not_the_configmaps() {
        let store = store_with(json!({"istio-injection": "enabled"}), Some(values()));
        let mwc = |configuration: &WebhookConfiguration| {
            crate::upstream::webhook::configuration_json(configuration, "https://127.0.0.1:9", "")
        };
        let deactivated = webhooks::deactivated(webhooks::revision_configuration("default"));
        let mut list = json!({"apiVersion": "v1", "kind": "List", "items": [mwc(&deactivated)]});
        store.load_list(&list).unwrap();
        let mut p = pod(json!({}));
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p), "the only configuration selects nothing");
        // A configuration that is not Istio's does not count: the deactivated one still decides.
        list["items"][0] = json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration", "metadata": {"name": "other"},
            "webhooks": [{"name": "other.example.com"}]});
        store.load_list(&list).unwrap();
        assert_eq!(webhook_configurations(&store).len(), 1);
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p));
    }

    #[test]
    fn an_unreadable_config_or_values_without_an_image_inject_nothing() {
        let store = store_with(json!({"istio-injection": "enabled"}), Some(values()));
        let cm = resource_for_plural("", "configmaps").unwrap();
        let mut injector = store
            .get(cm, Some(ISTIO_NAMESPACE), "istio-sidecar-injector")
            .unwrap();
        injector["data"]["config"] = json!("policy: [enabled");
        store.update(cm, injector.clone()).unwrap();
        let mut p = pod(json!({}));
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p), "unreadable config");
        let mut injector = store
            .get(cm, Some(ISTIO_NAMESPACE), "istio-sidecar-injector")
            .unwrap();
        injector["data"] = json!({"values": "{\"global\": {\"tag\": \"1.24.1\"}}"});
        store.update(cm, injector).unwrap();
        inject(&store, &mut p, None);
        assert!(!has_proxy(&p), "no hub");
        inject(
            &store,
            &mut p,
            Some("mirror.example.com/istio/proxyv2:1.24.1"),
        );
        assert!(has_proxy(&p), "the override names the image");
    }
}
