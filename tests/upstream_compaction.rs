//! Upstream only: etcd compacted every five seconds and kube-apiserver without its watch
//! cache, so that a list's continue token and a watch's resourceVersion really expire (410 from
//! the server, not from a proxy; kube-sim's expiry is `tests/fault_matrix.rs`). A page held back
//! long enough for two compactions expires the list: the plan is the same as without, and a run
//! finishes.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::backend::{Backend, Scenario, configure_upstream, upstream_available};
use support::faultproxy::{Fault, FaultProxy, Rule, kubeconfig};

/// More ReplicaSets than one page (500) holds: bare, scaled to zero, so they cost no pods.
fn idle_replica_sets(count: usize) -> String {
    let items: Vec<Value> = (0..count)
        .map(|i| {
            let name = format!("idle-{i:04}");
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": name, "namespace": "idle"},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": [{"name": "c", "image": "idle:1"}]}}}})
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// What a plan says, without times.
fn decisions(report: &Value) -> Value {
    json!({"summary": report["summary"], "workloads": report["workloads"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_continue_tokens_and_watches_change_nothing() {
    if !upstream_available() {
        return;
    }
    configure_upstream(&["--etcd-compaction-interval=5s", "--watch-cache=false"]);
    let scenario = Scenario::every_action_upgraded(Backend::Upstream).await;
    scenario.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: idle}\n");
    scenario.apply(&idle_replica_sets(600));

    let clean = scenario.tool(&["plan", "--format", "json"]).await;
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let clean: Value = serde_json::from_slice(&clean.stdout).unwrap();

    // The second page of ReplicaSets waits 12 s, long enough for writes and two compactions;
    // a list started again expires only if its pages are more than a compaction apart.
    let (url, ca, token) = scenario.server();
    let held = Rule::new(
        "GET",
        "/apis/apps/v1/replicasets",
        Fault::Slow(Duration::from_secs(12)),
        1,
    )
    .query("continue=");
    let proxy = FaultProxy::start_with(&url, ca.as_deref(), vec![held], None).await;
    let through = scenario.dir.path().join("through-the-proxy");
    std::fs::write(&through, kubeconfig(&proxy.url, &token)).unwrap();
    let mut plan = scenario.command_with(&["plan", "--format", "json"], &through);
    let plan = tokio::spawn(async move { plan.output().await.unwrap() });
    for i in 0..25 {
        // Writes move etcd's revision past the page's, so the compaction removes it.
        scenario.kubectl_ok(&["create", "configmap", &format!("tick-{i}"), "-n", "idle"]);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let plan = tokio::time::timeout(Duration::from_secs(120), plan)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let expired: Vec<_> = scenario
        .tool_requests()
        .into_iter()
        .filter(|r| {
            r.path.contains("/replicasets") && r.query.contains("continue=") && r.status == 410
        })
        .collect();
    assert!(!expired.is_empty(), "the server expired the held page");
    let compacted: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(decisions(&compacted), decisions(&clean));

    // A run whose watch of a rollout is held back as long: it starts from a compacted version,
    // the server ends it with 410 Expired, and the watcher lists again.
    let held = Rule::new(
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments",
        Fault::Slow(Duration::from_secs(12)),
        1,
    )
    .query("watch=");
    let proxy = FaultProxy::start_with(&url, ca.as_deref(), vec![held], None).await;
    std::fs::write(&through, kubeconfig(&proxy.url, &token)).unwrap();
    let mut run = scenario.command_with(
        &["run", "--format", "json", "--rollout-timeout", "90s"],
        &through,
    );
    let run = tokio::spawn(async move { run.output().await.unwrap() });
    for i in 0..25 {
        scenario.kubectl_ok(&["create", "configmap", &format!("tock-{i}"), "-n", "idle"]);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let run = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["summary"]["restarted"], 8, "{}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    // The held watch ended at once (a watch ends by itself only after its timeoutSeconds, 290),
    // and the watcher listed the Deployment again: its recovery from an expired version.
    let orders_lists = proxy
        .seen()
        .iter()
        .filter(|(method, path, query, _)| {
            method == "GET"
                && path == "/apis/apps/v1/namespaces/shop/deployments"
                && !query.contains("watch=")
        })
        .count();
    assert!(
        orders_lists >= 2,
        "the watcher listed again after the expired watch"
    );
}
