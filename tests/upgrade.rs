//! `run` after an Istio upgrade, on both backends (DESIGN §5.1): each scenario is written once
//! and runs on kube-sim and on the upstream control plane (`NAME::sim`, `NAME::upstream`).
//! Observed with kubectl and each backend's request log (kube-sim's, kube-apiserver's audit log).

mod support;

use std::collections::BTreeMap;

use support::backend::{Backend, HUB, NEW, OLD, Scenario};
use support::workload;

fn new_proxy() -> String {
    format!("{HUB}/proxyv2:{NEW}-distroless")
}

fn old_proxy() -> String {
    format!("{HUB}/proxyv2:{OLD}-distroless")
}

/// The pods of a namespace that are not terminating: name → (uid, proxy image).
fn pods(scenario: &Scenario, namespace: &str) -> BTreeMap<String, (String, Option<String>)> {
    let pods = scenario.kubectl_json(&["get", "pods", "-n", namespace]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let containers = p["spec"]["containers"].as_array().into_iter().flatten();
            let inits = p["spec"]["initContainers"].as_array().into_iter().flatten();
            let proxy = containers
                .chain(inits)
                .find(|c| c["name"] == "istio-proxy")
                .and_then(|c| c["image"].as_str().map(str::to_string));
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
            (name, (uid, proxy))
        })
        .collect()
}

/// `tests/scenarios/every-action.yaml` created at the old version, every pod Ready, `catalog`
/// paused, then the control plane upgraded.
async fn every_action_upgraded(backend: Backend) -> Scenario {
    let scenario = Scenario::start(backend).await;
    scenario.apply_file("every-action.yaml");
    scenario.await_pods_ready("kyma-system", 1).await;
    // orders 2, catalog 1, search 2, redis 3, mailer 1, importer 1, debug-shell 1
    scenario.await_pods_ready("shop", 11).await;
    // two DaemonSets on three Nodes
    scenario.await_pods_ready("monitoring", 6).await;
    for (_, (_, proxy)) in pods(&scenario, "shop") {
        assert_eq!(
            proxy,
            Some(old_proxy()),
            "{backend:?}: injected at the old version"
        );
    }
    scenario.kubectl_ok(&["rollout", "pause", "-n", "shop", "deployment/catalog"]);
    scenario.install_istio(NEW).await;
    scenario
}

const RESTARTED: [(&str, &str, &str); 8] = [
    ("Deployment", "kyma-system", "eventing-manager"),
    ("Deployment", "shop", "orders"),
    ("StatefulSet", "shop", "search"),
    ("StatefulSet", "shop", "redis"),
    ("ReplicaSet", "shop", "mailer"),
    ("ReplicationController", "shop", "importer"),
    ("DaemonSet", "monitoring", "log-agent"),
    ("DaemonSet", "monitoring", "node-probe"),
];

async fn run_renews_every_restartable_proxy_once(backend: Backend) {
    let scenario = every_action_upgraded(backend).await;
    let shop_before = pods(&scenario, "shop");
    let catalog_before = scenario.kubectl_json(&["get", "deployment", "-n", "shop", "catalog"]);

    let (code, report, stderr) = scenario.run(&[]).await;
    assert_eq!(code, Some(0), "{backend:?}: {stderr}");
    for (kind, namespace, name) in RESTARTED {
        assert_eq!(
            workload(&report, kind, namespace, name)["status"],
            "completed",
            "{backend:?} {kind} {namespace}/{name}"
        );
    }
    assert_eq!(report["summary"]["restarted"], 8, "{backend:?}");
    assert_eq!(report["summary"]["failed"], 0, "{backend:?}");
    let catalog = workload(&report, "Deployment", "shop", "catalog");
    assert_eq!(
        (&catalog["action"], &catalog["status"]),
        (&"manual".into(), &"skipped".into())
    );
    assert_eq!(
        workload(&report, "Pod", "shop", "debug-shell")["action"],
        "manual"
    );
    // The kyma phase first.
    assert_eq!(
        workload(&report, "Deployment", "kyma-system", "eventing-manager")["order"],
        1
    );

    // Every pod of a restarted workload runs the new proxy; the manual ones are untouched.
    for namespace in ["kyma-system", "shop", "monitoring"] {
        for (pod, (uid, proxy)) in pods(&scenario, namespace) {
            if pod == "debug-shell" || pod.starts_with("catalog-") {
                assert_eq!(
                    Some(&uid),
                    shop_before.get(&pod).map(|p| &p.0),
                    "{backend:?} {pod}"
                );
                assert_eq!(proxy, Some(old_proxy()), "{backend:?} {pod}");
            } else {
                assert_eq!(proxy, Some(new_proxy()), "{backend:?} {namespace}/{pod}");
            }
        }
    }
    let catalog_after = scenario.kubectl_json(&["get", "deployment", "-n", "shop", "catalog"]);
    assert_eq!(
        catalog_after["metadata"]["generation"], catalog_before["metadata"]["generation"],
        "{backend:?}: a paused Deployment is not patched"
    );

    // One restart patch per rolled workload; OnDelete StatefulSets evicted highest ordinal first.
    let writes = scenario.workload_writes();
    let patches: Vec<&str> = writes
        .iter()
        .filter(|w| w.method == "PATCH" && w.status < 300)
        .map(|w| w.path.as_str())
        .collect();
    for path in [
        "/apis/apps/v1/namespaces/kyma-system/deployments/eventing-manager",
        "/apis/apps/v1/namespaces/shop/deployments/orders",
        "/apis/apps/v1/namespaces/shop/statefulsets/search",
        "/apis/apps/v1/namespaces/monitoring/daemonsets/log-agent",
    ] {
        assert_eq!(
            patches.iter().filter(|p| **p == path).count(),
            1,
            "{backend:?}: {path} in {patches:?}"
        );
    }
    let redis: Vec<&str> = writes
        .iter()
        .filter(|w| w.path.ends_with("/eviction") && w.path.contains("/pods/redis-"))
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(
        redis,
        ["2", "1", "0"].map(|o| format!("/api/v1/namespaces/shop/pods/redis-{o}/eviction")),
        "{backend:?}"
    );

    // A second run finds nothing to restart and writes to no workload.
    let before = scenario.workload_writes().len();
    let (code, again, stderr) = scenario.run(&[]).await;
    assert_eq!(code, Some(0), "{backend:?}: {stderr}");
    assert_eq!(
        scenario.workload_writes().len(),
        before,
        "{backend:?}: the second run wrote"
    );
    assert!(
        again["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["action"] == "manual"),
        "{backend:?}: {again}"
    );
}

on_both_backends!(run_renews_every_restartable_proxy_once);
