//! One row per drift reason of DESIGN §2.3a, and each reason's absence when the inventory lacks
//! the evidence. Each row is a small cluster: the default revision (1.23.2) and a canary `1-24`
//! whose injector values the row chooses, Istio's webhook configurations for both, and one pod
//! in namespace `shop`.

use serde_json::{Value, json};

use super::*;
use crate::controlplane::Options;
use crate::inventory::{InventoryBuilder, model::Object};
use crate::plan::tests::merge;
use istio_injection::webhooks::{revision_configuration, tag_configuration};

const OLD: &str = "docker.io/istio/proxyv2:1.23.2";
const NEW: &str = "docker.io/istio/proxyv2:1.24.1";

/// Which webhook configurations the cluster has.
#[derive(Clone, Copy)]
enum Webhooks {
    DefaultAndCanary,
    /// As `DefaultAndCanary`, plus the tag `default` pointing at `1-24` while the default
    /// revision's configuration is still active: two revisions for `istio-injection=enabled`.
    OverlappingTag,
    /// An older snapshot: no configuration at all.
    None,
    /// A configuration whose selector reads a label the inventory does not keep.
    UnreadLabel,
}

fn configuration_json(configuration: &istio_injection::WebhookConfiguration) -> Value {
    let mut value = serde_json::to_value(configuration).unwrap();
    value["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    value["kind"] = json!("MutatingWebhookConfiguration");
    value
}

fn istio(revision: &str, version: &str, values: &Value) -> Vec<Value> {
    let suffix = if revision == "default" {
        String::new()
    } else {
        format!("-{revision}")
    };
    let mut all = json!({"global": {"hub": "docker.io/istio", "tag": version}});
    merge(&mut all, values.clone());
    vec![
        json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": format!("istio-sidecar-injector{suffix}"), "namespace": "istio-system",
                         "labels": {"istio.io/rev": revision}},
            "data": {"values": all.to_string()}}),
        json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": format!("istiod{suffix}-1"), "namespace": "istio-system",
                         "labels": {"app": "istiod", "istio.io/rev": revision}},
            "spec": {"containers": [{"name": "discovery", "image": format!("docker.io/istio/pilot:{version}")}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    ]
}

/// A Running, Ready pod `app` in `shop`, with `patch` merged in.
fn pod(patch: Value) -> Value {
    let mut pod = json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    merge(&mut pod, patch);
    pod
}

/// A pod with the proxy revision `revision` injected: `istio-init` and a regular `istio-proxy`.
fn proxied(revision: &str, image: &str, patch: Value) -> Value {
    let status = json!({"revision": revision, "initContainers": ["istio-init"], "containers": ["istio-proxy"]});
    let mut pod = pod(json!({
        "metadata": {"annotations": {"sidecar.istio.io/status": status.to_string()}},
        "spec": {
            "initContainers": [{"name": "istio-init", "image": image}],
            "containers": [{"name": "app", "image": "app:1"}, {"name": "istio-proxy", "image": image}]}}));
    merge(&mut pod, patch);
    pod
}

/// A `1-24` proxy with these resources on its `istio-proxy` container.
fn with_resources(resources: Value, annotations: Value) -> Value {
    let mut pod = proxied(
        "1-24",
        NEW,
        json!({"metadata": {"annotations": annotations}}),
    );
    pod["spec"]["containers"][1]["resources"] = resources;
    pod
}

struct Row {
    name: &'static str,
    webhooks: Webhooks,
    namespace: Value,
    canary_values: Value,
    pod: Value,
    reasons: &'static [Reason],
    /// The revision the pod is held to, `none` (no proxy wanted) or `conflict`.
    aim: &'static str,
}

fn judge_row(row: &Row) -> (Judgement, ControlPlane) {
    let mut items = istio("default", "1.23.2", &json!({}));
    items.extend(istio("1-24", "1.24.1", &row.canary_values));
    let mut configurations = vec![];
    match row.webhooks {
        Webhooks::None => {}
        Webhooks::DefaultAndCanary => {
            configurations.push(revision_configuration("default"));
            configurations.push(revision_configuration("1-24"));
        }
        Webhooks::OverlappingTag => {
            configurations.push(revision_configuration("default"));
            configurations.push(revision_configuration("1-24"));
            configurations.push(tag_configuration("default", "1-24"));
        }
        Webhooks::UnreadLabel => {
            let mut odd = revision_configuration("1-24");
            let mut value = configuration_json(&odd);
            value["webhooks"][0]["objectSelector"]["matchLabels"] = json!({"team": "a"});
            odd = serde_json::from_value(value).unwrap();
            configurations.push(revision_configuration("default"));
            configurations.push(odd);
        }
    }
    items.extend(configurations.iter().map(configuration_json));
    items.push(json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": "shop", "labels": row.namespace}}));
    items.push(row.pod.clone());
    let mut builder = InventoryBuilder::new();
    for (i, item) in items.into_iter().enumerate() {
        let object: Object = serde_json::from_value(item).unwrap();
        builder.add(object, format_args!("item {i}")).unwrap();
    }
    let inventory = builder.finish();
    let options = Options {
        istio_namespace: "istio-system".into(),
        ..Options::default()
    };
    let control_plane = ControlPlane::resolve(&inventory, &options).unwrap();
    let pod = inventory
        .pod_records
        .iter()
        .find(|p| &*p.name == "app")
        .unwrap_or_else(|| panic!("{}: the pod has no record", row.name));
    (judge(pod, &control_plane), control_plane)
}

#[test]
fn one_row_per_reason_and_its_absence_without_evidence() {
    let enabled = json!({"istio-injection": "enabled"});
    let canary = json!({"istio.io/rev": "1-24"});
    let resources = json!({"global": {"proxy": {"resources": {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}}}});
    let rows = vec![
        Row {
            name: "current: nothing",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: enabled.clone(),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[],
            aim: "default",
        },
        Row {
            name: "canary relabel: revision",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[Reason::Revision],
            aim: "1-24",
        },
        Row {
            name: "on the canary already",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: proxied("1-24", NEW, json!({})),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "without webhooks the pod keeps its own revision",
            webhooks: Webhooks::None,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[],
            aim: "default",
        },
        Row {
            name: "injection off: unwanted-proxy",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: json!({"istio-injection": "disabled"}),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[Reason::UnwantedProxy],
            aim: "none",
        },
        Row {
            name: "unlabelled namespace: unwanted-proxy",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: json!({}),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[Reason::UnwantedProxy],
            aim: "none",
        },
        Row {
            name: "without webhooks no proxy is unwanted",
            webhooks: Webhooks::None,
            namespace: json!({}),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[],
            aim: "default",
        },
        Row {
            name: "a namespace asking for a revision no configuration serves",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: json!({"istio.io/rev": "1-22"}),
            canary_values: json!({}),
            pod: proxied("1-22", OLD, json!({})),
            reasons: &[],
            aim: "unserved 1-22",
        },
        Row {
            name: "missing-proxy",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: pod(json!({})),
            reasons: &[Reason::MissingProxy],
            aim: "1-24",
        },
        Row {
            name: "no proxy wanted: hostNetwork",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: pod(json!({"spec": {"hostNetwork": true}})),
            reasons: &[],
            aim: "none",
        },
        Row {
            name: "no proxy wanted: the annotation opts out (an istiod of a removed revision)",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: json!({}),
            canary_values: json!({}),
            pod: pod(json!({"metadata": {"labels": {"istio.io/rev": "1-22"},
                "annotations": {"sidecar.istio.io/inject": "false"}}})),
            reasons: &[],
            aim: "none",
        },
        Row {
            name: "without webhooks no proxy is missing",
            webhooks: Webhooks::None,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: pod(json!({})),
            reasons: &[],
            aim: "default",
        },
        Row {
            name: "a Pending pod without a proxy is not judged",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: pod(json!({"status": {"phase": "Pending"}})),
            reasons: &[],
            aim: "record",
        },
        Row {
            name: "resources equal as quantities",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: resources.clone(),
            pod: with_resources(
                json!({"requests": {"cpu": "0.1", "memory": "131072Ki"}, "limits": {"memory": "1024Mi"}}),
                json!({}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "resources differ",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: resources.clone(),
            pod: with_resources(
                json!({"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}),
                json!({}),
            ),
            reasons: &[Reason::Resources],
            aim: "1-24",
        },
        Row {
            name: "annotations replace the values, no merge",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: resources.clone(),
            pod: with_resources(
                json!({"requests": {"cpu": "0.2"}}),
                json!({"sidecar.istio.io/proxyCPU": "200m"}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "values without resources: not judged",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: with_resources(json!({"requests": {"cpu": "3"}}), json!({})),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "CNI on, istio-init: cni",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"pilot": {"cni": {"enabled": true}}}),
            pod: proxied("1-24", NEW, json!({})),
            reasons: &[Reason::Cni],
            aim: "1-24",
        },
        Row {
            name: "CNI off, istio-validation: cni",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"istio_cni": {"enabled": false}}),
            pod: proxied(
                "1-24",
                NEW,
                json!({"spec": {"initContainers": [{"name": "istio-validation"}]}}),
            ),
            reasons: &[Reason::Cni],
            aim: "1-24",
        },
        Row {
            name: "CNI not stated: not judged",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({}),
            pod: proxied(
                "1-24",
                NEW,
                json!({"spec": {"initContainers": [{"name": "istio-validation"}]}}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "native on, regular proxy: native-sidecar",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": "true"}}}),
            pod: proxied("1-24", NEW, json!({})),
            reasons: &[Reason::NativeSidecar],
            aim: "1-24",
        },
        Row {
            name: "native on, but the pod's annotation says no",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": true}}}),
            pod: proxied(
                "1-24",
                NEW,
                json!({"metadata": {"annotations": {
                "sidecar.istio.io/nativeSidecar": "false"}}}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "native auto: not judged",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": "auto"}}}),
            pod: proxied("1-24", NEW, json!({})),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "a gateway's own proxy, never injected: its version alone",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: enabled.clone(),
            canary_values: json!({}),
            pod: pod(json!({
                "metadata": {"labels": {"sidecar.istio.io/inject": "false", "istio.io/rev": "1-24"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": OLD,
                                         "resources": {"requests": {"cpu": "2"}}}]}})),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "the gateway template: revision judged, not the values' resources or CNI",
            webhooks: Webhooks::DefaultAndCanary,
            namespace: canary.clone(),
            canary_values: json!({"global": {"proxy": {"resources": {"requests": {"cpu": "1"}}}},
                                  "pilot": {"cni": {"enabled": true}}}),
            pod: proxied(
                "default",
                OLD,
                json!({"metadata": {"annotations": {
                "inject.istio.io/templates": "gateway"}}}),
            ),
            reasons: &[Reason::Revision],
            aim: "1-24",
        },
        Row {
            name: "without webhooks the istio.io/rev label comes before the status",
            webhooks: Webhooks::None,
            namespace: json!({}),
            canary_values: json!({}),
            pod: proxied(
                "default",
                OLD,
                json!({"metadata": {"labels": {"istio.io/rev": "1-24"}}}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "without webhooks a label naming a tag gives way to the status's revision",
            webhooks: Webhooks::None,
            namespace: json!({}),
            canary_values: json!({}),
            pod: proxied(
                "1-24",
                NEW,
                json!({"metadata": {"labels": {"istio.io/rev": "prod"}}}),
            ),
            reasons: &[],
            aim: "1-24",
        },
        Row {
            name: "two revisions select the pod",
            webhooks: Webhooks::OverlappingTag,
            namespace: enabled.clone(),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[],
            aim: "conflict",
        },
        Row {
            name: "a selector the inventory cannot read: held to its own revision",
            webhooks: Webhooks::UnreadLabel,
            namespace: json!({}),
            canary_values: json!({}),
            pod: proxied("default", OLD, json!({})),
            reasons: &[],
            aim: "default",
        },
    ];
    for row in &rows {
        if row.aim == "record" {
            // Only Running pods without a proxy are kept: nothing to judge.
            let mut builder = InventoryBuilder::new();
            let object: Object = serde_json::from_value(row.pod.clone()).unwrap();
            builder.add(object, "pod").unwrap();
            assert!(builder.finish().pod_records.is_empty(), "{}", row.name);
            continue;
        }
        let (judgement, control_plane) = judge_row(row);
        let wanted: Reasons = row.reasons.iter().copied().collect();
        assert_eq!(judgement.reasons, wanted, "{}: {judgement:?}", row.name);
        assert_eq!(
            judgement.details.len(),
            row.reasons.len(),
            "{}: one sentence per reason",
            row.name
        );
        let aim = match &judgement.aim {
            Aim::Revision(revision) => revision.as_str(),
            Aim::NoProxy(_) => "none",
            Aim::Conflict(_) => "conflict",
            Aim::Unserved(revision) => &format!("unserved {revision}"),
        };
        assert_eq!(aim, row.aim, "{}: {judgement:?}", row.name);
        let unread = matches!(row.webhooks, Webhooks::UnreadLabel);
        assert_eq!(
            control_plane
                .warnings
                .iter()
                .any(|w| w.contains("label team")),
            unread,
            "{}: {:?}",
            row.name,
            control_plane.warnings
        );
    }
}

#[test]
fn a_fingerprint_changes_with_what_is_injected() {
    let proxy = |cni| PodProxy {
        resources: None,
        cni,
        native_sidecar: None,
    };
    let on = fingerprint("1-24", &proxy(Some(true)));
    assert_eq!(on, fingerprint("1-24", &proxy(Some(true))));
    assert_ne!(on, fingerprint("1-24", &proxy(Some(false))));
    assert_ne!(on, fingerprint("1-25", &proxy(Some(true))));
    assert!(on.starts_with("1-24/"), "{on}");
}

#[test]
fn reasons_parse_print_and_serialise_as_designed() {
    for reason in Reason::ALL {
        assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
        let json = serde_json::to_value(reason).unwrap();
        assert_eq!(json, json!(reason.as_str()));
    }
    let set: Reasons = [Reason::UnwantedProxy, Reason::Version]
        .into_iter()
        .collect();
    assert_eq!(
        serde_json::to_value(set).unwrap(),
        json!(["version", "unwanted-proxy"])
    );
    let back: Reasons = serde_json::from_value(json!(["unwanted-proxy", "version"])).unwrap();
    assert_eq!(back, set);
    assert!("Version".parse::<Reason>().is_err());
}
