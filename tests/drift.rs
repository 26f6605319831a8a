//! Drift beyond the version (DESIGN §2.3a), restarted away and verified, on both backends: a
//! canary upgrade, a resources change, a CNI switch, a native-sidecar switch, a missing proxy
//! added and an unwanted one removed. Each ends with every pod matching what the webhook
//! injects now, and a second run that restarts nothing.

mod support;

use serde_json::Value;
use support::backend::{Backend, HUB, NEW, OLD, Scenario};
use support::{injected_revision, proxy_container, workload};

/// What a pod carries, as the drift rules look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proxy {
    image: String,
    revision: String,
    cpu_request: Option<String>,
    init: &'static str,
    native: bool,
}

/// The live (not terminating) pods of a namespace: name → its proxy, if any.
fn proxies(scenario: &Scenario, namespace: &str) -> Vec<(String, Option<Proxy>)> {
    let pods = scenario.kubectl_json(&["get", "pods", "-n", namespace]);
    let mut found: Vec<(String, Option<Proxy>)> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            (name, proxy_of(p))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn proxy_of(pod: &Value) -> Option<Proxy> {
    let (proxy, native) = proxy_container(pod)?;
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named = |name: &str| inits.iter().any(|c| c["name"] == name);
    let init = if named("istio-validation") {
        "istio-validation"
    } else if named("istio-init") {
        "istio-init"
    } else {
        "none"
    };
    Some(Proxy {
        image: proxy["image"].as_str().unwrap_or_default().to_string(),
        revision: injected_revision(pod).unwrap_or_else(|| "none".into()),
        cpu_request: proxy["resources"]["requests"]["cpu"]
            .as_str()
            .map(str::to_string),
        init,
        native,
    })
}

fn image(version: &str) -> String {
    format!("{HUB}/proxyv2:{version}-distroless")
}

/// A revision's injector ConfigMap injecting `version`, with `values` merged into its
/// `global` values (JSON, no single quotes), and its istiod.
fn revision(revision: &str, version: &str, extra: &str) -> String {
    let suffix = if revision == "default" {
        String::new()
    } else {
        format!("-{revision}")
    };
    let values = format!(
        r#"{{"global": {{"hub": "{HUB}", "tag": "{version}-distroless", "proxy": {{"image": "proxyv2"}}}}{extra}}}"#
    );
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-sidecar-injector{suffix}
  namespace: istio-system
  labels: {{app: sidecar-injector, istio.io/rev: {revision}}}
data:
  values: '{values}'
  config: 'policy: enabled'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod{suffix}
  namespace: istio-system
  labels: {{app: istiod, istio.io/rev: {revision}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: istiod, istio.io/rev: {revision}}}}}
  template:
    metadata:
      labels: {{app: istiod, istio.io/rev: {revision}, istio: pilot}}
      annotations: {{sidecar.istio.io/inject: "false"}}
    spec:
      containers:
      - name: discovery
        image: {HUB}/pilot:{version}-distroless
"#
    )
}

/// A namespace with `labels` (flow-style YAML) and a Deployment `app` of `replicas` in it.
fn namespace_with_app(namespace: &str, labels: &str, replicas: usize) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}, labels: {labels}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers: [{{name: app, image: shop/app:1.0.0}}]
"#
    )
}

/// Runs the tool, asserting it exits 0 with nothing failed; the report.
async fn run_ok(scenario: &Scenario, what: &str) -> Value {
    let (code, report, stderr) = scenario.run(&[]).await;
    assert_eq!(code, Some(0), "{:?} {what}: {stderr}", scenario.backend);
    assert_eq!(report["summary"]["failed"], 0, "{what}: {report:#}");
    report
}

/// A second run finds nothing left to do.
async fn assert_settled(scenario: &Scenario, what: &str) {
    let report = run_ok(scenario, what).await;
    assert_eq!(
        report["summary"]["drifted"], 0,
        "{:?} {what}: a second run still finds drift: {report:#}",
        scenario.backend
    );
    assert_eq!(report["summary"]["restarted"], 0, "{what}");
}

fn drift_of<'a>(report: &'a Value, namespace: &str) -> &'a Value {
    &workload(report, "Deployment", namespace, "app")["drift"]
}

async fn a_canary_upgrade_moves_every_pod_to_the_new_revision(backend: Backend) {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&revision("1-23", OLD, ""));
    scenario.apply(&revision("1-24", NEW, ""));
    scenario.install_revision_webhooks("1-23").await;
    scenario.install_revision_webhooks("1-24").await;
    for rev in ["1-23", "1-24"] {
        scenario
            .rollout_status("istio-system", &format!("deployment/istiod-{rev}"))
            .await;
    }
    scenario.apply(&namespace_with_app("canary", "{istio.io/rev: 1-23}", 2));
    scenario.await_pods_ready("canary", 2).await;
    for (pod, proxy) in proxies(&scenario, "canary") {
        let proxy = proxy.unwrap_or_else(|| panic!("{backend:?}: {pod} has no proxy"));
        assert_eq!((proxy.image, proxy.revision), (image(OLD), "1-23".into()));
    }

    // Both istiods run; the namespace moves to the new revision.
    scenario.kubectl_ok(&[
        "label",
        "namespace",
        "canary",
        "istio.io/rev=1-24",
        "--overwrite",
    ]);
    let report = run_ok(&scenario, "after the relabel").await;
    assert_eq!(
        drift_of(&report, "canary"),
        &serde_json::json!(["version", "revision"]),
        "{report:#}"
    );
    let pod = &report["pods"][0];
    assert_eq!(pod["targetRevision"], "1-24", "{report:#}");
    assert_eq!(
        workload(&report, "Deployment", "canary", "app")["status"],
        "completed"
    );
    let after = proxies(&scenario, "canary");
    assert_eq!(after.len(), 2, "{backend:?}: {after:?}");
    for (pod, proxy) in after {
        let proxy = proxy.unwrap_or_else(|| panic!("{backend:?}: {pod} has no proxy"));
        assert_eq!(
            (proxy.image, proxy.revision),
            (image(NEW), "1-24".into()),
            "{backend:?}: {pod}"
        );
    }
    assert_settled(&scenario, "after the canary upgrade").await;
}
on_both_backends!(a_canary_upgrade_moves_every_pod_to_the_new_revision);

/// A change of the injector's values: the drift reason it makes, the values added to `global`'s
/// siblings, and what every restarted pod must then show.
type Step = (&'static str, &'static str, fn(&Proxy) -> bool);

async fn resources_cni_and_native_switches_each_end_with_every_pod_matching(backend: Backend) {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&namespace_with_app("mesh", "{istio-injection: enabled}", 2));
    scenario.await_pods_ready("mesh", 2).await;
    // Each step changes one thing of the default revision's values; the earlier ones stay.
    let steps: [Step; 3] = [
        ("resources", "", |p| {
            p.cpu_request.as_deref() == Some("250m")
        }),
        ("cni", r#", "pilot": {"cni": {"enabled": true}}"#, |p| {
            p.init == "istio-validation" && p.cpu_request.as_deref() == Some("250m")
        }),
        (
            "native-sidecar",
            r#", "pilot": {"cni": {"enabled": true}, "env": {"ENABLE_NATIVE_SIDECARS": "true"}}"#,
            |p| p.native && p.init == "istio-validation",
        ),
    ];
    for (reason, extra, matches) in steps {
        let manifest = revision("default", OLD, extra).replace(
            r#""proxy": {"image": "proxyv2"}"#,
            r#""proxy": {"image": "proxyv2", "resources": {"requests": {"cpu": "250m"}}}"#,
        );
        scenario.apply(&manifest);
        let report = run_ok(&scenario, reason).await;
        assert_eq!(
            drift_of(&report, "mesh"),
            &serde_json::json!([reason]),
            "{backend:?} {reason}: {report:#}"
        );
        assert_eq!(report["summary"]["drift"][reason], 2, "{report:#}");
        let after = proxies(&scenario, "mesh");
        assert_eq!(after.len(), 2, "{backend:?} {reason}: {after:?}");
        for (pod, proxy) in after {
            let proxy = proxy.unwrap_or_else(|| panic!("{backend:?} {reason}: {pod}: no proxy"));
            assert!(matches(&proxy), "{backend:?} {reason}: {pod}: {proxy:?}");
        }
        assert_settled(&scenario, reason).await;
    }
}
on_both_backends!(resources_cni_and_native_switches_each_end_with_every_pod_matching);

/// The uids of the gateway's pods in `meshed`.
fn gateway_uids(scenario: &Scenario) -> Vec<String> {
    let pods = scenario.kubectl_json(&["get", "pods", "-n", "meshed", "-l", "app=gateway"]);
    let mut uids: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    uids.sort();
    uids
}

async fn a_missing_proxy_is_added_and_an_unwanted_one_removed(backend: Backend) {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&namespace_with_app("plain", "{}", 1));
    scenario.apply(&namespace_with_app(
        "meshed",
        "{istio-injection: enabled}",
        1,
    ));
    // A gateway as Istio installs it: its own istio-proxy container, never injected.
    scenario.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: gateway, namespace: meshed}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: gateway}}}}
  template:
    metadata: {{labels: {{app: gateway, sidecar.istio.io/inject: "false", istio.io/rev: default}}}}
    spec:
      containers: [{{name: istio-proxy, image: "{}"}}]
"#,
        image(OLD)
    ));
    scenario.await_pods_ready("plain", 1).await;
    scenario.await_pods_ready("meshed", 2).await;
    let gateway_before = gateway_uids(&scenario);
    assert!(proxies(&scenario, "plain")[0].1.is_none(), "{backend:?}");
    assert!(
        proxies(&scenario, "meshed")
            .iter()
            .all(|(_, p)| p.is_some()),
        "{backend:?}"
    );

    // Injection is turned on for one namespace and off for the other.
    scenario.kubectl_ok(&["label", "namespace", "plain", "istio-injection=enabled"]);
    scenario.kubectl_ok(&[
        "label",
        "namespace",
        "meshed",
        "istio-injection=disabled",
        "--overwrite",
    ]);
    let report = run_ok(&scenario, "after relabelling").await;
    assert_eq!(
        drift_of(&report, "plain"),
        &serde_json::json!(["missing-proxy"]),
        "{report:#}"
    );
    assert_eq!(
        drift_of(&report, "meshed"),
        &serde_json::json!(["unwanted-proxy"]),
        "{report:#}"
    );
    for namespace in ["plain", "meshed"] {
        assert_eq!(
            workload(&report, "Deployment", namespace, "app")["status"],
            "completed",
            "{backend:?} {namespace}: {report:#}"
        );
    }
    let added = proxies(&scenario, "plain");
    assert_eq!(added.len(), 1, "{backend:?}: {added:?}");
    assert_eq!(
        added[0].1.as_ref().map(|p| p.image.clone()),
        Some(image(OLD)),
        "{backend:?}: the missing proxy is added"
    );
    // The gateway's own proxy is not unwanted: neither listed nor restarted.
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["name"] != "gateway"),
        "{backend:?}: {report:#}"
    );
    assert_eq!(gateway_uids(&scenario), gateway_before, "{backend:?}");
    let removed: Vec<_> = proxies(&scenario, "meshed")
        .into_iter()
        .filter(|(name, _)| name.starts_with("app-"))
        .collect();
    assert_eq!(removed.len(), 1, "{backend:?}: {removed:?}");
    assert_eq!(
        removed[0].1, None,
        "{backend:?}: the unwanted proxy is removed"
    );
    assert_settled(&scenario, "after the proxies were added and removed").await;
}
on_both_backends!(a_missing_proxy_is_added_and_an_unwanted_one_removed);
