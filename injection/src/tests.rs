//! One row per rule of DESIGN §2.2.2: Istio's default, revision and tag configurations against
//! namespace and pod labels, then the injector's own rules.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::policy::Policy;
use crate::selector::{Operator, Requirement};
use crate::webhooks::{deactivated, revision_configuration, tag_configuration};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What a pod in namespace `shop` gets, as a short word: a revision, `none` or `conflict`.
fn outcome(
    configurations: &[WebhookConfiguration],
    namespace: &[(&str, &str)],
    pod: &[(&str, &str)],
) -> String {
    let pod = PodFacts {
        namespace: "shop",
        labels: labels(pod),
        inject_annotation: None,
        host_network: false,
    };
    let namespace = NamespaceLabels {
        name: "shop",
        labels: labels(namespace),
    };
    match target(configurations, &namespace, &pod, |_| None) {
        Target::Revision { revision, .. } => revision,
        Target::NoProxy(_) => "none".into(),
        Target::Conflict(_) => "conflict".into(),
    }
}

/// A row: its name, the configurations, the namespace's and the pod's labels, and the outcome.
type WebhookRow<'a> = (
    &'a str,
    &'a [WebhookConfiguration],
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
    &'a str,
);

#[test]
fn webhook_configurations_against_namespace_and_pod_labels() {
    let default_and_canary = [
        revision_configuration("default"),
        revision_configuration("1-24"),
    ];
    let canary_only = [
        revision_configuration("1-23"),
        revision_configuration("1-24"),
    ];
    let default_tag = [
        deactivated(revision_configuration("default")),
        revision_configuration("1-23"),
        revision_configuration("1-24"),
        tag_configuration("default", "1-24"),
        tag_configuration("prod", "1-23"),
    ];
    let two_defaults = [
        revision_configuration("default"),
        tag_configuration("default", "1-24"),
    ];
    let inj = "istio-injection";
    let rev = "istio.io/rev";
    let inject = "sidecar.istio.io/inject";
    #[rustfmt::skip]
    let rows: &[WebhookRow] = &[
        ("enabled namespace", &default_and_canary, &[(inj, "enabled")], &[], "default"),
        ("disabled namespace", &default_and_canary, &[(inj, "disabled")], &[], "none"),
        ("disabled namespace, pod asks", &default_and_canary, &[(inj, "disabled")], &[(inject, "true")], "none"),
        ("revision namespace", &default_and_canary, &[(rev, "1-24")], &[], "1-24"),
        ("pod revision, plain namespace", &default_and_canary, &[], &[(rev, "1-24")], "1-24"),
        ("pod asks, plain namespace", &default_and_canary, &[], &[(inject, "true")], "default"),
        ("enabled namespace, pod opts out", &default_and_canary, &[(inj, "enabled")], &[(inject, "false")], "none"),
        ("revision namespace, pod opts out", &default_and_canary, &[(rev, "1-24")], &[(inject, "false")], "none"),
        ("plain namespace and pod", &default_and_canary, &[], &[], "none"),
        ("both namespace labels", &default_and_canary, &[(inj, "enabled"), (rev, "1-24")], &[], "default"),
        ("enabled namespace, pod revision", &default_and_canary, &[(inj, "enabled")], &[(rev, "1-24")], "default"),
        ("revision namespace, pod names another", &default_and_canary, &[(rev, "1-24")], &[(rev, "default")], "1-24"),
        ("canary upgrade relabelled", &canary_only, &[(rev, "1-24")], &[], "1-24"),
        ("canary upgrade not yet relabelled", &canary_only, &[(rev, "1-23")], &[], "1-23"),
        ("no default revision, enabled namespace", &canary_only, &[(inj, "enabled")], &[], "none"),
        ("unknown revision", &canary_only, &[(rev, "1-22")], &[], "none"),
        ("default tag takes istio-injection", &default_tag, &[(inj, "enabled")], &[], "1-24"),
        ("default tag takes the pod's ask", &default_tag, &[], &[(inject, "true")], "1-24"),
        ("tag on the namespace", &default_tag, &[(rev, "prod")], &[], "1-23"),
        ("tag on the pod", &default_tag, &[], &[(rev, "prod")], "1-23"),
        ("deactivated configuration selects nothing", &[deactivated(revision_configuration("default"))], &[(inj, "enabled")], &[], "none"),
        ("two revisions for one pod", &two_defaults, &[(inj, "enabled")], &[], "conflict"),
        ("no configurations", &[], &[(inj, "enabled")], &[], "none"),
    ];
    for (name, configurations, namespace, pod, expected) in rows {
        assert_eq!(
            outcome(configurations, namespace, pod),
            *expected,
            "{name}: namespace {namespace:?}, pod {pod:?}"
        );
    }
}

#[test]
fn a_conflict_names_both_configurations() {
    let two = [
        revision_configuration("default"),
        tag_configuration("default", "1-24"),
    ];
    let pod = PodFacts {
        namespace: "shop",
        labels: labels(&[]),
        inject_annotation: None,
        host_network: false,
    };
    let namespace = labels(&[("istio-injection", "enabled")]);
    let Target::Conflict(why) = target(&two, &namespace, &pod, |_| None) else {
        panic!("a conflict")
    };
    assert!(why.contains("istio-sidecar-injector)"), "{why}");
    assert!(why.contains("istio-revision-tag-default"), "{why}");
}

#[test]
fn the_namespace_name_label_is_there_even_when_not_kept() {
    let mut configuration = revision_configuration("default");
    configuration.webhooks[0].namespace_selector = Some(LabelSelector::of(vec![
        Requirement::new("istio-injection", Operator::In, &["enabled"]),
        Requirement::new(
            webhooks::NAMESPACE_NAME_LABEL,
            Operator::NotIn,
            &["kube-system"],
        ),
    ]));
    let ns = |name| NamespaceLabels {
        name,
        labels: labels(&[("istio-injection", "enabled")]),
    };
    let pod = labels(&[]);
    assert!(configuration.selects(&ns("shop"), &pod));
    assert!(
        !configuration.webhooks[0]
            .clone()
            .namespace_selector
            .unwrap()
            .matches(&ns("kube-system"))
    );
}

/// The injector's rules after a webhook called it: one row each, in Istio's order.
#[test]
fn the_injectors_own_rules() {
    let config = |yaml: &str| InjectorConfig::parse(Some(yaml)).unwrap();
    let enabled = InjectorConfig::default();
    let disabled = config("policy: disabled\n");
    let never = config(
        "policy: enabled\nneverInjectSelector:\n- matchExpressions:\n  - {key: app, operator: In, values: [batch]}\n",
    );
    let always = config("policy: disabled\nalwaysInjectSelector:\n- matchLabels: {app: web}\n");
    let never_empty = config("policy: enabled\nneverInjectSelector:\n- {}\n");
    let always_empty = config("policy: disabled\nalwaysInjectSelector:\n- {}\n");
    struct Row {
        name: &'static str,
        namespace: &'static str,
        labels: &'static [(&'static str, &'static str)],
        annotation: Option<&'static str>,
        host_network: bool,
        expected: Decision,
    }
    let pod = |name, labels, annotation, expected| Row {
        name,
        namespace: "shop",
        labels,
        annotation,
        host_network: false,
        expected,
    };
    let rows: Vec<(Row, &InjectorConfig)> = vec![
        (pod("plain pod", &[], None, Decision::Inject), &enabled),
        (
            Row {
                host_network: true,
                ..pod(
                    "hostNetwork",
                    &[("sidecar.istio.io/inject", "true")],
                    None,
                    Decision::HostNetwork,
                )
            },
            &enabled,
        ),
        (
            Row {
                namespace: "kube-system",
                ..pod(
                    "ignored namespace",
                    &[],
                    Some("true"),
                    Decision::IgnoredNamespace,
                )
            },
            &enabled,
        ),
        (
            pod(
                "label false",
                &[("sidecar.istio.io/inject", "false")],
                None,
                Decision::OptedOut,
            ),
            &enabled,
        ),
        (
            pod("annotation false", &[], Some("false"), Decision::OptedOut),
            &enabled,
        ),
        (
            pod(
                "label wins over annotation",
                &[("sidecar.istio.io/inject", "true")],
                Some("false"),
                Decision::Inject,
            ),
            &disabled,
        ),
        (
            pod(
                "annotation true beats disabled",
                &[],
                Some("true"),
                Decision::Inject,
            ),
            &disabled,
        ),
        (
            pod("annotation yes", &[], Some("yes"), Decision::Inject),
            &disabled,
        ),
        (
            pod("policy disabled", &[], None, Decision::PolicyDisabled),
            &disabled,
        ),
        (
            pod(
                "neverInjectSelector",
                &[("app", "batch")],
                None,
                Decision::NeverInjectSelector,
            ),
            &never,
        ),
        (
            pod(
                "neverInjectSelector misses",
                &[("app", "web")],
                None,
                Decision::Inject,
            ),
            &never,
        ),
        (
            pod(
                "ask beats neverInjectSelector",
                &[("app", "batch")],
                Some("true"),
                Decision::Inject,
            ),
            &never,
        ),
        (
            pod(
                "alwaysInjectSelector",
                &[("app", "web")],
                None,
                Decision::Inject,
            ),
            &always,
        ),
        (
            pod(
                "an empty neverInjectSelector matches nothing",
                &[("app", "batch")],
                None,
                Decision::Inject,
            ),
            &never_empty,
        ),
        (
            pod(
                "an empty alwaysInjectSelector matches nothing",
                &[("app", "web")],
                None,
                Decision::PolicyDisabled,
            ),
            &always_empty,
        ),
        (
            pod(
                "alwaysInjectSelector misses",
                &[("app", "db")],
                None,
                Decision::PolicyDisabled,
            ),
            &always,
        ),
    ];
    for (row, config) in rows {
        let facts = PodFacts {
            namespace: row.namespace,
            labels: labels(row.labels),
            inject_annotation: row.annotation,
            host_network: row.host_network,
        };
        assert_eq!(policy::decide(&facts, config), row.expected, "{}", row.name);
    }
}

#[test]
fn the_injector_config_is_read_from_yaml_and_checked() {
    assert_eq!(InjectorConfig::parse(None).unwrap().policy, Policy::Enabled);
    let full = "policy: disabled\nalwaysInjectSelector: []\nneverInjectSelector: []\ntemplates:\n  sidecar: |\n    {{ .Values }}\n";
    assert_eq!(
        InjectorConfig::parse(Some(full)).unwrap().policy,
        Policy::Disabled
    );
    let odd = InjectorConfig::parse(Some("policy: sometimes\n")).unwrap_err();
    assert!(odd.contains("sometimes"), "{odd}");
    // An invalid selector is skipped, as Istio does, and named; the valid ones stay.
    let bad = InjectorConfig::parse(Some(
        "neverInjectSelector:\n- matchExpressions:\n  - {key: app, operator: In}\n- matchLabels: {app: batch}\n",
    ))
    .unwrap();
    assert_eq!(bad.never_inject_selector.len(), 1);
    assert_eq!(bad.skipped.len(), 1);
    assert!(
        bad.skipped[0].starts_with("neverInjectSelector[0]"),
        "{:?}",
        bad.skipped
    );
}

#[test]
fn a_revisions_proxy_from_its_values_and_a_pods_annotations() {
    use crate::proxy::{Resources, RevisionProxy};
    let values = json!({
        "global": {"proxy": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                             "limits": {"cpu": 2, "memory": "1Gi"}}}},
        "pilot": {"cni": {"enabled": true}, "env": {"ENABLE_NATIVE_SIDECARS": "true"}},
    });
    let revision = RevisionProxy::from_values(&values, None);
    assert_eq!(revision.cni, Some(true));
    assert_eq!(revision.native_sidecars, Some(true));
    let resources = revision.resources.clone().unwrap();
    assert_eq!(resources.limits_cpu.as_deref(), Some("2"));

    let plain = revision.for_pod(|_| None);
    assert_eq!(plain.resources, Some(resources));
    assert_eq!(plain.init_container(), "istio-validation");
    // The resource annotations replace the values: only what they give is set.
    let annotated = revision.for_pod(|key| match key {
        "sidecar.istio.io/proxyCPU" => Some("50m"),
        "sidecar.istio.io/nativeSidecar" => Some("false"),
        _ => None,
    });
    assert_eq!(
        annotated.resources,
        Some(Resources {
            requests_cpu: Some("50m".into()),
            ..Resources::default()
        })
    );
    assert_eq!(annotated.native_sidecar, Some(false));
    // A limit alone: the API server sets the request to it. An annotation other than exactly
    // `false` means native, as Istio's template reads it.
    let limited = revision.for_pod(|key| match key {
        "sidecar.istio.io/proxyMemoryLimit" => Some("512Mi"),
        "sidecar.istio.io/nativeSidecar" => Some("False"),
        _ => None,
    });
    assert_eq!(
        limited.resources,
        Some(Resources {
            requests_memory: Some("512Mi".into()),
            limits_memory: Some("512Mi".into()),
            ..Resources::default()
        })
    );
    assert_eq!(limited.native_sidecar, Some(true));

    // Older values: `istio_cni`; istiod's env for native sidecars; `auto` says nothing.
    let older = json!({"istio_cni": {"enabled": false}});
    let older = RevisionProxy::from_values(&older, Some("false"));
    assert_eq!(
        (older.cni, older.native_sidecars, older.resources),
        (Some(false), Some(false), None)
    );
    // `pilot.cni` wins over a leftover `istio_cni`.
    let both = json!({"pilot": {"cni": {"enabled": false}}, "istio_cni": {"enabled": true}});
    assert_eq!(RevisionProxy::from_values(&both, None).cni, Some(false));
    let auto = json!({"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": "auto"}}});
    assert_eq!(
        RevisionProxy::from_values(&auto, Some("true")).native_sidecars,
        None
    );
    assert_eq!(
        RevisionProxy::from_values(&json!({}), None),
        RevisionProxy::default()
    );
}

#[test]
fn resources_differ_by_amount_not_by_notation() {
    use crate::proxy::Resources;
    let pod = Resources::from_json(&json!({"requests": {"cpu": "0.1", "memory": "1024Mi"}}));
    let same = Resources::from_json(&json!({"requests": {"cpu": "100m", "memory": "1Gi"}}));
    assert!(pod.differences(&same).is_empty());
    let other = Resources::from_json(
        &json!({"requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"cpu": "1"}}),
    );
    assert_eq!(
        pod.differences(&other),
        ["requests.cpu 0.1 → 200m", "limits.cpu unset → 1"]
    );
}

#[test]
fn the_image_as_istios_template_builds_it() {
    let values = |global| json!({ "global": global });
    let rows = [
        (
            json!({"hub": "docker.io/istio", "tag": "1.24.1"}),
            Ok("docker.io/istio/proxyv2:1.24.1"),
        ),
        (
            json!({"hub": "r.io/istio/", "tag": "1.24.1", "variant": "distroless"}),
            Ok("r.io/istio/proxyv2:1.24.1-distroless"),
        ),
        (
            json!({"hub": "r.io", "tag": "1.24.1-distroless", "variant": "distroless"}),
            Ok("r.io/proxyv2:1.24.1-distroless"),
        ),
        (
            json!({"proxy": {"image": "m.io/p/proxyv2:1.24.1"}}),
            Ok("m.io/p/proxyv2:1.24.1"),
        ),
        (
            json!({"tag": "1.24.1"}),
            Err("data.values: global.hub: missing"),
        ),
        (
            json!({"hub": "r.io"}),
            Err("data.values: global.tag: missing"),
        ),
    ];
    for (global, expected) in rows {
        assert_eq!(
            proxy::image(&values(global.clone())).as_deref(),
            expected.map_err(|e| e.to_string()).as_deref(),
            "{global}"
        );
    }
}
