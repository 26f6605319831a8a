use super::*;

use istio_injection::webhooks::{deactivated, revision_configuration, tag_configuration};
use istio_injection::{NamespaceLabels, WebhookConfiguration};

const HUB: &str = "europe-docker.pkg.dev/kyma-project/prod/external/istio";

fn review(pod: Value) -> Value {
    json!({"request": {"uid": "u-1", "namespace": "shop", "object": pod}})
}

fn values() -> Value {
    json!({"global": {"hub": HUB, "tag": "1.24.1", "variant": "distroless"}})
}

fn injector_of(values: Value) -> RevisionInjector {
    RevisionInjector {
        values,
        config: None,
        istiod_native: None,
    }
}

fn decode(response: &Value) -> json_patch::Patch {
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&patch).unwrap()
}

#[test]
fn a_pod_is_patched_with_the_revisions_proxy() {
    let pod = json!({"metadata": {"generateName": "orders-"},
                     "spec": {"containers": [{"name": "app", "image": "orders:1"}]}});
    let response = admit(
        &review(pod.clone()),
        "default",
        Some(&injector_of(values())),
    );
    assert_eq!(response["allowed"], true);
    assert_eq!(response["uid"], "u-1");
    let mut patched = pod;
    json_patch::patch(&mut patched, &decode(&response)).unwrap();
    let proxy = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap();
    assert_eq!(
        proxy["image"],
        format!("{HUB}/proxyv2:1.24.1-distroless").as_str()
    );
    assert!(
        patched["metadata"]["namespace"].is_null(),
        "the namespace is not patched in"
    );
}

#[test]
fn no_configmap_an_opt_out_or_an_unreadable_config_patches_nothing() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}});
    let response = admit(&review(pod), "default", None);
    assert_eq!(response["allowed"], true);
    assert!(response["patch"].is_null());
    let opted_out = json!({"metadata": {"name": "p", "annotations": {"sidecar.istio.io/inject": "false"}},
                           "spec": {"containers": [{"name": "app"}]}});
    let injector = injector_of(values());
    assert!(admit(&review(opted_out), "default", Some(&injector))["patch"].is_null());
    let unreadable = RevisionInjector {
        config: Some("policy: sometimes".into()),
        ..injector
    };
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}});
    let response = admit(&review(pod), "default", Some(&unreadable));
    assert_eq!(response["allowed"], true);
    assert!(response["patch"].is_null());
}

#[test]
fn the_default_revision_has_four_webhooks_a_canary_two_a_tag_its_revisions_path() {
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
    assert_eq!(canary["webhooks"][0]["sideEffects"], "None");
    let tag = istio_tag_configuration("prod", "1-24", "https://127.0.0.1:1", "ca");
    assert_eq!(tag["metadata"]["name"], "istio-revision-tag-prod");
    assert_eq!(tag["metadata"]["labels"]["istio.io/tag"], "prod");
    assert_eq!(
        tag["webhooks"][1]["clientConfig"]["url"],
        "https://127.0.0.1:1/inject/1-24"
    );
    // What the API server is given reads back as the configuration it was made from.
    for (json, configuration) in [
        (default, revision_configuration("default")),
        (canary, revision_configuration("1-24")),
        (tag, tag_configuration("prod", "1-24")),
    ] {
        let read: WebhookConfiguration = serde_json::from_value(json).unwrap();
        assert_eq!(read, configuration);
    }
}

/// One row of the parity table: a control plane (webhook configurations, each revision's
/// injector ConfigMap, istiod's env), a namespace and a pod; what both injectors must give.
struct Row {
    name: &'static str,
    configurations: Vec<WebhookConfiguration>,
    /// Revision, `data.values`, `data.config`.
    injectors: Vec<(&'static str, Value, Option<&'static str>)>,
    /// A revision's istiod with `ENABLE_NATIVE_SIDECARS`.
    istiod_native: Option<(&'static str, &'static str)>,
    namespace: &'static str,
    namespace_labels: Value,
    pod_labels: Value,
    pod_annotations: Value,
    host_network: bool,
    /// `null`: nothing injected; else the fields of [`summary`] that must be so.
    want: Value,
}

fn tagged_values(tag: &str) -> Value {
    json!({"global": {"hub": HUB, "tag": tag, "proxy": {"image": "proxyv2"}}})
}

/// Three revisions, each injecting its own version: `default` 1.22.3, `1-23`, `1-24`.
fn injectors() -> Vec<(&'static str, Value, Option<&'static str>)> {
    vec![
        ("default", tagged_values("1.22.3"), Some("policy: enabled")),
        ("1-23", tagged_values("1.23.2"), Some("policy: enabled")),
        ("1-24", tagged_values("1.24.1"), None),
    ]
}

fn row(
    name: &'static str,
    configurations: Vec<WebhookConfiguration>,
    namespace_labels: Value,
    want: Value,
) -> Row {
    Row {
        name,
        configurations,
        injectors: injectors(),
        istiod_native: None,
        namespace: "shop",
        namespace_labels,
        pod_labels: json!({"app": "orders"}),
        pod_annotations: json!({}),
        host_network: false,
        want,
    }
}

impl Row {
    fn pod(&self) -> Value {
        let mut pod = json!({
            "metadata": {"name": "orders-1", "namespace": self.namespace,
                         "labels": self.pod_labels, "annotations": self.pod_annotations},
            "spec": {"containers": [{"name": "app", "image": "orders:1"}]},
        });
        if self.host_network {
            pod["spec"]["hostNetwork"] = json!(true);
        }
        pod
    }

    fn configmaps(&self) -> Vec<Value> {
        self.injectors
            .iter()
            .map(|(revision, values, config)| {
                let mut data = json!({"values": values.to_string()});
                if let Some(config) = config {
                    data["config"] = json!(config);
                }
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": injector::injector_configmap(revision),
                                    "namespace": "istio-system"},
                       "data": data})
            })
            .collect()
    }

    fn istiods(&self) -> Vec<Value> {
        self.istiod_native
            .iter()
            .map(|(revision, value)| {
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": format!("istiod-{revision}"), "namespace": "istio-system",
                                "labels": {"app": "istiod", "istio.io/rev": revision}},
                   "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                            "template": {"metadata": {"labels": {"app": "istiod"}},
                                         "spec": {"containers": [{"name": "discovery", "image": "pilot",
                                                  "env": [{"name": "ENABLE_NATIVE_SIDECARS", "value": value}]}]}}}})
            })
            .collect()
    }

    /// kube-sim's own admission: the configurations, ConfigMaps and istiods stored as objects.
    fn injected_by_kube_sim(&self) -> Value {
        let mut items = vec![json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": self.namespace_labels}})];
        items.extend(self.configmaps());
        items.extend(self.istiods());
        items.extend(
            self.configurations
                .iter()
                .map(|c| configuration_json(c, "https://127.0.0.1:9", "")),
        );
        let store = crate::store::Store::new();
        store
            .load_list(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
            .unwrap();
        let mut pod = self.pod();
        injector::inject(&store, &mut pod, None);
        pod
    }

    /// The upstream webhook, called as kube-apiserver calls it: each configuration in the order
    /// of the names, when one of its webhooks selects the namespace and the pod, with the
    /// revision's injector as the webhook reads it, its patch applied before the next call.
    fn injected_by_the_webhook(&self) -> Value {
        let configmaps = self.configmaps();
        let istiods = self.istiods();
        let istiods: Vec<&Value> = istiods.iter().collect();
        let mut configurations = self.configurations.clone();
        configurations.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let namespace = NamespaceLabels {
            name: self.namespace,
            labels: &self.namespace_labels,
        };
        let mut pod = self.pod();
        for configuration in configurations {
            if !configuration.selects(&namespace, &pod["metadata"]["labels"]) {
                continue;
            }
            let revision = configuration.revision();
            let injector = configmaps
                .iter()
                .find(|cm| cm["metadata"]["name"] == injector::injector_configmap(&revision))
                .map(|cm| {
                    RevisionInjector::from_configmap(
                        cm,
                        injector::istiod_native_env(&istiods, &revision),
                    )
                });
            let review =
                json!({"request": {"uid": "u", "namespace": self.namespace, "object": pod}});
            let response = admit(&review, &revision, injector.as_ref());
            assert_eq!(response["allowed"], true, "{}", self.name);
            if !response["patch"].is_null() {
                json_patch::patch(&mut pod, &decode(&response)).unwrap();
            }
        }
        pod
    }
}

/// What a pod got: the revision, the proxy's image and resources, the init containers, and
/// whether the proxy is a native sidecar; `null` without a proxy.
fn summary(pod: &Value) -> Value {
    let Some(status) = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str() else {
        return Value::Null;
    };
    let status: Value = serde_json::from_str(status).unwrap();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let native = inits
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .filter(|c| c["restartPolicy"] == "Always");
    let proxy = native
        .or_else(|| containers.iter().find(|c| c["name"] == "istio-proxy"))
        .expect("a pod with a status annotation has a proxy");
    json!({
        "revision": status["revision"],
        "image": proxy["image"],
        "resources": proxy["resources"],
        "init": inits.iter().filter(|c| c["name"] != "istio-proxy").map(|c| c["name"].clone()).collect::<Vec<_>>(),
        "native": native.is_some(),
    })
}

fn image(tag: &str) -> String {
    format!("{HUB}/proxyv2:{tag}")
}

fn rows() -> Vec<Row> {
    let default = || revision_configuration("default");
    let canaries = || {
        vec![
            revision_configuration("default"),
            revision_configuration("1-23"),
            revision_configuration("1-24"),
        ]
    };
    let enabled = json!({"istio-injection": "enabled"});
    let mut rows = vec![
        row(
            "istio-injection=enabled: the default revision",
            vec![default()],
            enabled.clone(),
            json!({"revision": "default", "image": image("1.22.3"), "init": ["istio-init"], "native": false}),
        ),
        row(
            "namespace istio.io/rev=1-24, both canaries installed",
            canaries(),
            json!({"istio.io/rev": "1-24"}),
            json!({"revision": "1-24", "image": image("1.24.1")}),
        ),
        row(
            "namespace istio.io/rev=1-23, both canaries installed",
            canaries(),
            json!({"istio.io/rev": "1-23"}),
            json!({"revision": "1-23", "image": image("1.23.2")}),
        ),
        row(
            "istio-injection=disabled",
            vec![default()],
            json!({"istio-injection": "disabled"}),
            Value::Null,
        ),
        row("no labels anywhere", canaries(), json!({}), Value::Null),
        row(
            "istio-injection=enabled wins over istio.io/rev on the namespace",
            canaries(),
            json!({"istio-injection": "enabled", "istio.io/rev": "1-24"}),
            json!({"revision": "default"}),
        ),
        row(
            "a tag: namespace istio.io/rev=prod, tag prod on 1-24",
            vec![
                default(),
                revision_configuration("1-24"),
                tag_configuration("prod", "1-24"),
            ],
            json!({"istio.io/rev": "prod"}),
            json!({"revision": "1-24", "image": image("1.24.1")}),
        ),
        row(
            "the default tag on 1-24, the default revision's configuration deactivated",
            vec![
                deactivated(default()),
                revision_configuration("1-24"),
                tag_configuration("default", "1-24"),
            ],
            enabled.clone(),
            json!({"revision": "1-24", "image": image("1.24.1")}),
        ),
        row(
            "deactivated: nothing selects",
            vec![deactivated(default()), revision_configuration("1-24")],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "the default tag and the default revision both select: the first by name injects",
            vec![
                default(),
                revision_configuration("1-24"),
                tag_configuration("default", "1-24"),
            ],
            enabled.clone(),
            json!({"revision": "1-24"}),
        ),
        row(
            "kube-system is never injected",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row("hostNetwork", vec![default()], enabled.clone(), Value::Null),
        row(
            "neverInjectSelector matches",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "policy disabled; the annotation asks",
            vec![default()],
            enabled.clone(),
            json!({"revision": "default"}),
        ),
        row(
            "policy disabled; nothing asks",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "a config the injector cannot read",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "resources from values",
            vec![default()],
            enabled.clone(),
            json!({"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}}),
        ),
        row(
            "resource annotations replace values, only the fields they give",
            vec![default()],
            enabled.clone(),
            // The memory request is the limit's, as the API server would default it.
            json!({"resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}}),
        ),
        row(
            "Istio CNI: istio-validation",
            vec![default()],
            enabled.clone(),
            json!({"init": ["istio-validation"], "native": false}),
        ),
        row(
            "native sidecars by values",
            vec![default()],
            enabled.clone(),
            json!({"native": true, "init": ["istio-init"]}),
        ),
        row(
            "native sidecars by istiod's env",
            canaries(),
            json!({"istio.io/rev": "1-24"}),
            json!({"revision": "1-24", "native": true}),
        ),
        row(
            "native sidecars by the pod's annotation, over values",
            vec![default()],
            enabled.clone(),
            json!({"native": true}),
        ),
        row(
            "native off by the pod's annotation, over values",
            vec![default()],
            enabled.clone(),
            json!({"native": false}),
        ),
        row(
            "the pod opts out by label",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "the pod opts out by annotation",
            vec![default()],
            enabled.clone(),
            Value::Null,
        ),
        row(
            "the pod label sidecar.istio.io/inject=true in an unlabelled namespace",
            vec![default()],
            json!({}),
            json!({"revision": "default"}),
        ),
        row(
            "istio-injection=enabled over the pod's istio.io/rev",
            canaries(),
            enabled.clone(),
            json!({"revision": "default"}),
        ),
        row(
            "CNI and native by values in 1.23 (istio_cni.enabled)",
            canaries(),
            json!({"istio.io/rev": "1-23"}),
            json!({"revision": "1-23", "init": ["istio-validation"], "native": true}),
        ),
    ];
    // A pod label istio.io/rev in an unlabelled namespace: the object webhook of that revision.
    rows.push(Row {
        name: "pod label istio.io/rev=1-23 in an unlabelled namespace",
        pod_labels: json!({"istio.io/rev": "1-23"}),
        want: json!({"revision": "1-23", "image": image("1.23.2")}),
        ..row("", canaries(), json!({}), Value::Null)
    });
    let set_default = |row: &mut Row, values: Value, config: Option<&'static str>| {
        row.injectors[0] = ("default", values, config);
    };
    let mut edit = |name: &str, change: &dyn Fn(&mut Row)| {
        let row = rows
            .iter_mut()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        change(row);
    };
    edit(
        "namespace istio.io/rev=1-24, both canaries installed",
        &|r| r.pod_labels = json!({"app": "orders", "istio.io/rev": "1-23"}),
    );
    edit("istio-injection=disabled", &|r| {
        r.pod_labels = json!({"sidecar.istio.io/inject": "true"})
    });
    edit("kube-system is never injected", &|r| {
        r.namespace = "kube-system"
    });
    edit("hostNetwork", &|r| r.host_network = true);
    edit("neverInjectSelector matches", &|r| {
        set_default(
            r,
            tagged_values("1.22.3"),
            Some("policy: enabled\nneverInjectSelector:\n- matchLabels: {app: orders}\n"),
        )
    });
    edit("policy disabled; the annotation asks", &|r| {
        set_default(r, tagged_values("1.22.3"), Some("policy: disabled"));
        r.pod_annotations = json!({"sidecar.istio.io/inject": "true"});
    });
    edit("policy disabled; nothing asks", &|r| {
        set_default(
            r,
            tagged_values("1.22.3"),
            Some("policy: disabled\nalwaysInjectSelector:\n- matchLabels: {app: other}\n"),
        )
    });
    edit("a config the injector cannot read", &|r| {
        set_default(r, tagged_values("1.22.3"), Some("policy: [enabled"))
    });
    let with = |path: &[&str], value: Value| {
        let mut values = tagged_values("1.22.3");
        let mut slot = &mut values;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = value;
        values
    };
    let resources = json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "256Mi"}});
    edit("resources from values", &|r| {
        set_default(
            r,
            with(&["global", "proxy", "resources"], resources.clone()),
            None,
        )
    });
    edit(
        "resource annotations replace values, only the fields they give",
        &|r| {
            set_default(
                r,
                with(&["global", "proxy", "resources"], resources.clone()),
                None,
            );
            r.pod_annotations = json!({"sidecar.istio.io/proxyCPU": "200m",
                                       "sidecar.istio.io/proxyMemoryLimit": "512Mi"});
        },
    );
    edit("Istio CNI: istio-validation", &|r| {
        set_default(r, with(&["pilot", "cni", "enabled"], json!(true)), None)
    });
    edit("native sidecars by values", &|r| {
        set_default(
            r,
            with(&["pilot", "env", "ENABLE_NATIVE_SIDECARS"], json!("true")),
            None,
        )
    });
    edit("native sidecars by istiod's env", &|r| {
        r.istiod_native = Some(("1-24", "true"))
    });
    edit(
        "native sidecars by the pod's annotation, over values",
        &|r| {
            set_default(
                r,
                with(&["pilot", "env", "ENABLE_NATIVE_SIDECARS"], json!(false)),
                None,
            );
            r.pod_annotations = json!({"sidecar.istio.io/nativeSidecar": "true"});
        },
    );
    edit("native off by the pod's annotation, over values", &|r| {
        set_default(
            r,
            with(&["pilot", "env", "ENABLE_NATIVE_SIDECARS"], json!(true)),
            None,
        );
        r.pod_annotations = json!({"sidecar.istio.io/nativeSidecar": "false"});
    });
    edit("the pod opts out by label", &|r| {
        r.pod_labels = json!({"sidecar.istio.io/inject": "false"})
    });
    edit("the pod opts out by annotation", &|r| {
        r.pod_annotations = json!({"sidecar.istio.io/inject": "false"})
    });
    edit(
        "the pod label sidecar.istio.io/inject=true in an unlabelled namespace",
        &|r| r.pod_labels = json!({"sidecar.istio.io/inject": "true"}),
    );
    edit(
        "istio-injection=enabled over the pod's istio.io/rev",
        &|r| r.pod_labels = json!({"istio.io/rev": "1-24"}),
    );
    edit(
        "CNI and native by values in 1.23 (istio_cni.enabled)",
        &|r| {
            let mut values = tagged_values("1.23.2");
            values["istio_cni"]["enabled"] = json!(true);
            values["pilot"]["env"]["ENABLE_NATIVE_SIDECARS"] = json!(true);
            r.injectors[1] = ("1-23", values, None);
        },
    );
    rows
}

/// kube-sim's own admission (`injector::inject` on a store holding the configurations) and the
/// upstream webhook (`admit`, called as kube-apiserver calls it) inject the same revision and
/// the same proxy, row by row.
#[test]
fn kube_sims_admission_and_the_upstream_webhook_inject_alike() {
    let rows = rows();
    assert!(rows.len() >= 25);
    for row in rows {
        let by_kube_sim = row.injected_by_kube_sim();
        let by_webhook = row.injected_by_the_webhook();
        assert_eq!(
            by_kube_sim, by_webhook,
            "{}: kube-sim and the webhook differ",
            row.name
        );
        let got = summary(&by_kube_sim);
        if row.want.is_null() {
            assert!(got.is_null(), "{}: injected {got}", row.name);
            continue;
        }
        assert!(!got.is_null(), "{}: nothing injected", row.name);
        for (key, want) in row.want.as_object().unwrap() {
            assert_eq!(&got[key], want, "{}: {key} (got {got})", row.name);
        }
    }
}

/// Without any webhook configuration stored, kube-sim injects as if each revision with an
/// injector ConfigMap had the configuration Istio installs for it.
#[test]
fn without_configurations_each_injector_configmap_brings_its_revisions() {
    let mut row = row("", vec![], json!({"istio.io/rev": "1-24"}), Value::Null);
    assert_eq!(summary(&row.injected_by_kube_sim())["revision"], "1-24");
    row.namespace_labels = json!({"istio-injection": "enabled"});
    assert_eq!(summary(&row.injected_by_kube_sim())["revision"], "default");
    row.injectors.remove(0);
    assert!(summary(&row.injected_by_kube_sim()).is_null());
}
