//! The `evict` path of istio-proxy-reset against the controllers: evicting the pods of an OnDelete
//! StatefulSet or of a ReplicationController one at a time, under a PodDisruptionBudget, brings each
//! back with the injector's proxy, and the budget holds the next eviction until the replacement is
//! Ready.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, EvictParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{Sim, SimConfig};
use serde_json::{Value, json};

const CURRENT: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless";
const STALE: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.23.2-distroless";

async fn start(items: Vec<Value>) -> (Sim, kube::Client) {
    let sim = kube_sim::start(SimConfig {
        state: common::injected_shop_state(items),
        pod_start: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .expect("sim starts");
    let kubeconfig = Kubeconfig::from_yaml(sim.kubeconfig()).expect("kubeconfig parses");
    let options = KubeConfigOptions {
        context: Some("kube-sim".into()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("usable kubeconfig");
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client builds");
    (sim, client)
}

/// Waits until `check` yields a value, polling; fails the test after `timeout`.
async fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Pods of a workload as loaded from a cluster before the Istio upgrade: Ready, with the old proxy.
fn stale_pod(name: &str, app: &str, owner: (&str, &str, &str), labels: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": labels,
                     "ownerReferences": [{"apiVersion": owner.0, "kind": owner.1, "name": app, "uid": owner.2, "controller": true}]},
        "spec": {"containers": [{"name": app, "image": format!("example.com/{app}:1")}], "nodeName": "node-a"},
    });
    kube_sim::injector::add_sidecar(
        &mut pod,
        STALE,
        "default",
        &istio_injection::proxy::PodProxy::default(),
    );
    pod["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    pod
}

fn pdb(app: &str, min_available: i64) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app, "namespace": "shop"},
           "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}})
}

fn proxy_image(pod: &Value) -> Option<&str> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "istio-proxy")?["image"]
        .as_str()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Evicts `name`, retrying while the budget blocks it (429), as the tool does.
async fn evict(pods: &Api<Pod>, name: &str, timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    let mut blocked = 0;
    loop {
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => return blocked,
            Err(kube::Error::Api(status)) if status.code == 429 => blocked += 1,
            Err(other) => panic!("evicting {name}: {other}"),
        }
        assert!(
            Instant::now() < deadline,
            "{name} could not be evicted within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicting_an_on_delete_statefulset_highest_ordinal_first() {
    let uid = "5ec0ffee-0000-4000-8000-000000000001";
    let template = json!({"metadata": {"labels": {"app": "db"}},
                          "spec": {"containers": [{"name": "db", "image": "example.com/db:1"}]}});
    let mut items = vec![json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop", "uid": uid, "generation": 1},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "updateStrategy": {"type": "OnDelete"}, "template": template},
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3,
                   "currentRevision": "db-5d8f9c7b6", "updateRevision": "db-5d8f9c7b6"},
    })];
    for ordinal in 0..3 {
        let name = format!("db-{ordinal}");
        let labels = json!({"app": "db", "controller-revision-hash": "db-5d8f9c7b6", "statefulset.kubernetes.io/pod-name": name});
        items.push(stale_pod(
            &name,
            "db",
            ("apps/v1", "StatefulSet", uid),
            labels,
        ));
    }
    items.push(pdb("db", 2));
    let (sim, client) = start(items).await;
    let store = sim.store();
    let pods_resource = kube_sim::store::resource_for_plural("", "pods").unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "shop");

    // Loaded as it is: nothing replaced, the revision of the state kept.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ordinal in 0..3 {
        let pod = store
            .get(pods_resource, Some("shop"), &format!("db-{ordinal}"))
            .unwrap();
        assert_eq!(proxy_image(&pod), Some(STALE));
    }

    for ordinal in (0..3).rev() {
        let name = format!("db-{ordinal}");
        evict(&pods, &name, Duration::from_secs(15)).await;
        let pod = eventually(
            &format!("{name} back and Ready"),
            Duration::from_secs(10),
            || {
                let pod = store.get(pods_resource, Some("shop"), &name)?;
                (ready(&pod) && proxy_image(&pod) == Some(CURRENT)).then_some(pod)
            },
        )
        .await;
        assert_eq!(
            pod["metadata"]["labels"]["controller-revision-hash"], "db-5d8f9c7b6",
            "the template did not change"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_the_next_eviction_until_the_replacement_is_ready() {
    let uid = "5ec0ffee-0000-4000-8000-000000000002";
    let template = json!({"metadata": {"labels": {"app": "legacy"}},
                          "spec": {"containers": [{"name": "legacy", "image": "example.com/legacy:1"}]}});
    let mut items = vec![json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy", "namespace": "shop", "uid": uid, "generation": 1},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": template},
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 1},
    })];
    for i in 0..2 {
        items.push(stale_pod(
            &format!("legacy-old{i}"),
            "legacy",
            ("v1", "ReplicationController", uid),
            json!({"app": "legacy"}),
        ));
    }
    items.push(pdb("legacy", 1));
    let (sim, client) = start(items).await;
    let store = sim.store();
    let pods_resource = kube_sim::store::resource_for_plural("", "pods").unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    eventually(
        "the budget to allow one disruption",
        Duration::from_secs(5),
        || {
            let budget = store.get(
                kube_sim::store::resource_for_plural("policy", "poddisruptionbudgets")?,
                Some("shop"),
                "legacy",
            )?;
            (budget["status"]["disruptionsAllowed"] == 1).then_some(())
        },
    )
    .await;

    evict(&pods, "legacy-old0", Duration::from_secs(5)).await;
    // The replacement starts at once, but until it is Ready the budget allows nothing more.
    let blocked = evict(&pods, "legacy-old1", Duration::from_secs(15)).await;
    assert!(
        blocked > 0,
        "the second eviction had to wait for the replacement"
    );
    let replaced = eventually(
        "two Ready pods with the new proxy",
        Duration::from_secs(10),
        || {
            let pods = store.list(pods_resource, Some("shop"));
            (pods.len() == 2
                && pods
                    .iter()
                    .all(|p| ready(p) && proxy_image(p) == Some(CURRENT)))
            .then_some(pods)
        },
    )
    .await;
    assert!(replaced.iter().all(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("legacy-")
    }));
    sim.shutdown().await;
}
