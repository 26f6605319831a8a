//! `run` after an Istio upgrade, on both backends (DESIGN §5.1): each scenario is written once
//! and runs on kube-sim and on the upstream control plane (`NAME::sim`, `NAME::upstream`).
//! Observed with kubectl and each backend's request log (kube-sim's, kube-apiserver's audit log).

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
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

/// Every pod of the every-action scenario but the manual ones (`debug-shell`, the paused
/// `catalog`) runs the new proxy.
fn assert_restartable_renewed(scenario: &Scenario, what: &str) {
    for namespace in ["kyma-system", "shop", "monitoring"] {
        for (pod, (_, proxy)) in pods(scenario, namespace) {
            if pod != "debug-shell" && !pod.starts_with("catalog-") {
                assert_eq!(proxy, Some(new_proxy()), "{what}: {namespace}/{pod}");
            }
        }
    }
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
    let scenario = Scenario::every_action_upgraded(backend).await;
    let shop_before = pods(&scenario, "shop");
    for (pod, (_, proxy)) in &shop_before {
        assert_eq!(
            proxy,
            &Some(old_proxy()),
            "{backend:?}: {pod} injected at the old version"
        );
    }
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

/// A namespace `shop` with injection and `workloads` (YAML documents), created at the old version
/// with `pods` pods Ready.
async fn shop_upgraded(backend: Backend, workloads: &str, pods: usize) -> Scenario {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop, labels: {{istio-injection: enabled}}}}\n---\n{workloads}"
    ));
    scenario.await_pods_ready("shop", pods).await;
    scenario.install_istio(NEW).await;
    scenario
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: {name}, image: shop/{name}:1.0.0}}]\n---\n"
    )
}

async fn a_rollout_that_never_gets_ready_fails_at_its_timeout_and_the_run_goes_on(
    backend: Backend,
) {
    let workloads = deployment("orders", 2) + &deployment("cart", 1);
    let scenario = Scenario::start(backend).await;
    scenario.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop, labels: {{istio-injection: enabled}}}}\n---\n{workloads}"
    ));
    scenario.await_pods_ready("shop", 3).await;
    // A rollout already stuck before the upgrade: its new pods never get Ready, the old serve.
    scenario.kubectl_ok(&[
        "patch", "deployment", "orders", "-n", "shop", "--type", "merge", "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"kube-sim.kyma-project.io/never-ready":"true"}}}}}"#,
    ]);
    scenario
        .await_condition(
            std::time::Duration::from_secs(60),
            "a pod that never gets Ready",
            || pods(&scenario, "shop").len() == 4,
        )
        .await;
    scenario.install_istio(NEW).await;

    let (code, report, stderr) = scenario.run(&["--rollout-timeout", "20s"]).await;
    assert_eq!(code, Some(3), "{backend:?}: {stderr}");
    let orders = workload(&report, "Deployment", "shop", "orders");
    assert_eq!(orders["status"], "failed", "{backend:?}: {orders}");
    let reason = orders["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not finish within 20s") || reason.contains("ProgressDeadlineExceeded"),
        "{backend:?}: {reason}"
    );
    assert_eq!(
        orders["runbook"],
        "runbooks/recovery.md#a-rollout-failed-or-timed-out"
    );
    assert_eq!(
        workload(&report, "Deployment", "shop", "cart")["status"],
        "completed"
    );
}

on_both_backends!(a_rollout_that_never_gets_ready_fails_at_its_timeout_and_the_run_goes_on);

const REDIS_ON_DELETE: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis, namespace: shop}
spec:
  replicas: 3
  serviceName: redis
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers: [{name: redis, image: redis:7.2}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: redis, namespace: shop}
spec:
  minAvailable: 3
  selector: {matchLabels: {app: redis}}
";

async fn a_pod_disruption_budget_blocks_an_eviction_until_it_allows_it(backend: Backend) {
    let scenario = shop_upgraded(backend, REDIS_ON_DELETE, 3).await;
    // The disruption controller has counted the pods: no disruption allowed.
    scenario
        .await_condition(
            std::time::Duration::from_secs(30),
            "the PDB's status",
            || {
                let pdb = scenario.kubectl_json(&["get", "pdb", "-n", "shop", "redis"]);
                pdb["status"]["currentHealthy"] == 3 && pdb["status"]["disruptionsAllowed"] == 0
            },
        )
        .await;

    let (code, report, stderr) = scenario.run(&["--rollout-timeout", "3s"]).await;
    assert_eq!(code, Some(3), "{backend:?}: {stderr}");
    let redis = workload(&report, "StatefulSet", "shop", "redis");
    assert_eq!(redis["status"], "failed", "{backend:?}");
    assert_eq!(
        redis["runbook"],
        "runbooks/recovery.md#an-eviction-blocked-by-a-poddisruptionbudget"
    );
    let refused = |s: &Scenario| {
        s.tool_requests()
            .iter()
            .filter(|r| r.path.ends_with("/redis-2/eviction") && r.status == 429)
            .count()
    };
    assert!(
        refused(&scenario) > 0,
        "{backend:?}: {:?}",
        scenario.workload_writes()
    );
    assert_eq!(
        pods(&scenario, "shop").len(),
        3,
        "{backend:?}: nothing was evicted"
    );

    // Blocked, then the budget is relaxed while the run waits: it goes through.
    let mut command = scenario.command(&["run", "--format", "json", "--rollout-timeout", "90s"]);
    let run = tokio::spawn(async move { command.output().await.unwrap() });
    let blocked_before = refused(&scenario);
    scenario
        .await_condition(
            std::time::Duration::from_secs(30),
            "a refused eviction",
            || refused(&scenario) > blocked_before,
        )
        .await;
    scenario.kubectl_ok(&[
        "patch",
        "pdb",
        "-n",
        "shop",
        "redis",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"minAvailable":2}}"#,
    ]);
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{backend:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        workload(&report, "StatefulSet", "shop", "redis")["status"],
        "completed"
    );
    for (pod, (_, proxy)) in pods(&scenario, "shop") {
        assert_eq!(proxy, Some(new_proxy()), "{backend:?} {pod}");
    }
}

on_both_backends!(a_pod_disruption_budget_blocks_an_eviction_until_it_allows_it);

async fn a_failed_gate_restarts_nothing(backend: Backend) {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop, labels: {{istio-injection: enabled}}}}\n---\n{}",
        deployment("orders", 1)
    ));
    scenario.await_pods_ready("shop", 1).await;
    // An upgrade half done: the injector says the new version, istiod still runs the old one.
    scenario.apply(&support::backend::istio_injector(NEW));

    let (code, report, stderr) = scenario.run(&[]).await;
    assert_eq!(code, Some(2), "{backend:?}: {stderr}");
    assert_eq!(report["controlPlane"]["gate"]["passed"], false);
    assert!(
        scenario.workload_writes().is_empty(),
        "{backend:?}: {:?}",
        scenario.workload_writes()
    );
    let orders = workload(&report, "Deployment", "shop", "orders");
    assert_eq!(orders["status"], "skipped");
    assert_eq!(
        orders["runbook"],
        "runbooks/recovery.md#the-control-plane-gate-failed"
    );
}

on_both_backends!(a_failed_gate_restarts_nothing);

/// Successful restart patches per workload path.
fn successful_patches(scenario: &Scenario) -> BTreeMap<String, usize> {
    let mut patches = BTreeMap::new();
    for request in scenario.workload_writes() {
        if request.method == "PATCH" && request.status < 300 {
            *patches.entry(request.path).or_default() += 1;
        }
    }
    patches
}

async fn a_run_killed_midway_finishes_on_the_next_without_restarting_twice(backend: Backend) {
    let scenario = Scenario::every_action_upgraded(backend).await;
    let mut first = scenario
        .command(&[
            "run",
            "--format",
            "json",
            "--rollout-timeout",
            "60s",
            "--concurrency",
            "2",
        ])
        .spawn()
        .unwrap();
    scenario
        .await_condition(
            std::time::Duration::from_secs(60),
            "the first restarts",
            || successful_patches(&scenario).len() >= 2,
        )
        .await;
    first.kill().await.unwrap(); // SIGKILL: no chance to clean up
    let _ = first.wait().await;

    let (code, report, stderr) = scenario.run(&[]).await;
    assert_eq!(code, Some(0), "{backend:?}: {stderr}");
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["action"] == "manual" || w["status"] == "completed"),
        "{backend:?}: {report}"
    );
    let patches = successful_patches(&scenario);
    assert!(
        patches.values().all(|n| *n == 1),
        "{backend:?}: {patches:#?}"
    );
    let (_, last, _) = scenario.run(&[]).await;
    assert!(
        last["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["action"] == "manual"),
        "{backend:?}: {last}"
    );
}

on_both_backends!(a_run_killed_midway_finishes_on_the_next_without_restarting_twice);

/// The items of a kind in a namespace.
fn items(scenario: &Scenario, resource: &str, namespace: &str) -> Vec<Value> {
    scenario.kubectl_json(&["get", resource, "-n", namespace])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Upstream only (kube-sim has no process to kill): kube-apiserver killed with SIGKILL and
/// started again twice while rollouts are in flight. The run finishes, renews every restartable
/// workload, and restarts none twice: each Deployment has exactly one new ReplicaSet, each rolled
/// StatefulSet and DaemonSet one new ControllerRevision; the report is whole in file and ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_kube_apiserver_restarts() {
    if !support::backend::upstream_available() {
        return;
    }
    let scenario = Scenario::start(Backend::Upstream).await;
    scenario.apply_file("every-action.yaml");
    let web: String = (0..6).map(|i| deployment(&format!("web-{i}"), 1)).collect();
    scenario.apply(&web);
    for (namespace, pods) in [("kyma-system", 1), ("shop", 17), ("monitoring", 6)] {
        scenario.await_pods_ready(namespace, pods).await;
    }
    scenario.kubectl_ok(&["rollout", "pause", "-n", "shop", "deployment/catalog"]);
    scenario.install_istio(NEW).await;
    let report_file = scenario.dir.path().join("report.json");

    let mut command = scenario.command(&[
        "run",
        "--format",
        "json",
        "--rollout-timeout",
        "120s",
        "--concurrency",
        "1",
        "--report-file",
        report_file.to_str().unwrap(),
        "--report-configmap",
        "kyma-system/istio-proxy-reset-report",
    ]);
    let run = tokio::spawn(async move { command.output().await.unwrap() });
    let upstream = scenario.upstream().unwrap();
    for restarted in 1..=2 {
        scenario
            .await_condition(std::time::Duration::from_secs(60), "more restarts", || {
                successful_patches(&scenario).len() >= 2 * restarted
            })
            .await;
        upstream
            .restart_apiserver()
            .await
            .expect("kube-apiserver starts again");
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["summary"]["restarted"], 14, "{}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    let saved: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(saved, report);
    let stored = scenario.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "kyma-system",
        "istio-proxy-reset-report",
        "-o",
        "jsonpath={.data.report\\.json}",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap()["summary"],
        report["summary"]
    );

    assert_restartable_renewed(&scenario, "after the restarts");
    // Exactly one new ReplicaSet per restarted Deployment (the old and the new one), one new
    // revision per rolled StatefulSet and DaemonSet.
    let replica_sets = items(&scenario, "replicasets", "shop");
    for name in [
        "orders", "web-0", "web-1", "web-2", "web-3", "web-4", "web-5",
    ] {
        let owned = replica_sets
            .iter()
            .filter(|rs| rs["metadata"]["ownerReferences"][0]["name"] == name)
            .count();
        assert_eq!(owned, 2, "ReplicaSets of {name}");
    }
    for (namespace, owner) in [("shop", "search"), ("monitoring", "log-agent")] {
        let revisions = items(&scenario, "controllerrevisions", namespace)
            .into_iter()
            .filter(|r| r["metadata"]["ownerReferences"][0]["name"] == owner)
            .count();
        assert_eq!(revisions, 2, "ControllerRevisions of {owner}");
    }
    let patches = successful_patches(&scenario);
    assert!(patches.values().all(|n| *n == 1), "{patches:#?}");
}

/// A tenth of the tool's requests failed by the fault proxy in front of the server (429 with
/// Retry-After, 500, 503, connections dropped before or after the server acted, watches cut),
/// over three seeds: every workload renewed, each by exactly one successful restart patch, the
/// report whole in the ConfigMap.
async fn a_tenth_of_requests_failing_renews_everything_once(backend: Backend) {
    for seed in [1, 2, 3] {
        let scenario = Scenario::every_action_upgraded(backend).await;
        let (url, ca, token) = scenario.server();
        let proxy = support::faultproxy::FaultProxy::start_with(
            &url,
            ca.as_deref(),
            vec![],
            Some((0.1, seed)),
        )
        .await;
        let kubeconfig = scenario.dir.path().join("through-the-proxy");
        std::fs::write(
            &kubeconfig,
            support::faultproxy::kubeconfig(&proxy.url, &token),
        )
        .unwrap();
        let args = [
            "run",
            "--format",
            "json",
            "--rollout-timeout",
            "90s",
            "--report-configmap",
            "kyma-system/istio-proxy-reset-report",
        ];
        let mut command = scenario.command_with(&args, &kubeconfig);
        let output = tokio::time::timeout(std::time::Duration::from_secs(400), command.output())
            .await
            .expect("the run finishes")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{backend:?} seed {seed}: {stderr}"
        );
        assert!(
            proxy.faults_applied() > 0,
            "{backend:?} seed {seed}: no fault fell"
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["summary"]["restarted"], 8, "{backend:?} seed {seed}");
        assert_eq!(report["summary"]["failed"], 0, "{backend:?} seed {seed}");
        let stored = scenario.kubectl_ok(&[
            "get",
            "configmap",
            "-n",
            "kyma-system",
            "istio-proxy-reset-report",
            "-o",
            "jsonpath={.data.report\\.json}",
        ]);
        assert_eq!(
            serde_json::from_str::<Value>(&stored).unwrap()["summary"],
            report["summary"]
        );
        let patches = successful_patches(&scenario);
        assert_eq!(patches.len(), 4, "{backend:?} seed {seed}: {patches:#?}");
        assert!(
            patches.values().all(|n| *n == 1),
            "{backend:?} seed {seed}: {patches:#?}"
        );
        assert_restartable_renewed(&scenario, &format!("{backend:?} seed {seed}"));
    }
}

on_both_backends!(a_tenth_of_requests_failing_renews_everything_once);

/// The report's entries for one workload (a partitioned StatefulSet has two).
fn entries<'a>(report: &'a Value, kind: &str, name: &str) -> Vec<&'a Value> {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == kind && w["name"] == name)
        .collect()
}

const DB_PARTITIONED: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 3
  serviceName: db
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: shop/db:1.0.0}]
";

async fn a_statefulset_partition_is_restarted_above_it_and_held_below_it(backend: Backend) {
    let scenario = shop_upgraded(backend, DB_PARTITIONED, 3).await;
    let before = pods(&scenario, "shop");

    let (code, report, stderr) = scenario.run(&["--rollout-timeout", "60s"]).await;
    assert_eq!(code, Some(0), "{backend:?}: {stderr}");
    let db = entries(&report, "StatefulSet", "db");
    assert_eq!(db.len(), 2, "{backend:?}: {db:?}");
    let (restart, held) = (db[0], db[1]);
    assert_eq!(
        restart["action"], "rollout-restart",
        "{backend:?}: {restart}"
    );
    assert_eq!(restart["status"], "completed", "{backend:?}: {restart}");
    assert_eq!(restart["pods"], serde_json::json!(["db-1", "db-2"]));
    assert_eq!(held["action"], "manual", "{backend:?}: {held}");
    assert_eq!(held["pods"], serde_json::json!(["db-0"]));
    assert_eq!(
        held["runbook"],
        "runbooks/workloads-not-restartable.md#statefulsets-held-by-a-partition"
    );
    assert!(
        held["reason"].as_str().unwrap().contains("partition 1"),
        "{held}"
    );
    let after = pods(&scenario, "shop");
    assert_eq!(
        after["db-0"], before["db-0"],
        "{backend:?}: the partition holds db-0"
    );
    for pod in ["db-1", "db-2"] {
        assert_eq!(after[pod].1, Some(new_proxy()), "{backend:?}: {pod}");
    }
}

on_both_backends!(a_statefulset_partition_is_restarted_above_it_and_held_below_it);

async fn a_pod_under_two_budgets_fails_at_once_with_the_budget_runbook(backend: Backend) {
    let two_budgets = REDIS_ON_DELETE.replace("minAvailable: 3", "maxUnavailable: 1")
        + "---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: redis-too, namespace: shop}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: redis}}
";
    let scenario = shop_upgraded(backend, &two_budgets, 3).await;
    let before = pods(&scenario, "shop");
    let started = std::time::Instant::now();
    let (code, report, stderr) = scenario.run(&["--rollout-timeout", "60s"]).await;
    assert_eq!(code, Some(3), "{backend:?}: {stderr}");
    let redis = workload(&report, "StatefulSet", "shop", "redis");
    assert_eq!(redis["status"], "failed", "{backend:?}: {redis}");
    assert_eq!(
        redis["runbook"],
        "runbooks/recovery.md#an-eviction-blocked-by-a-poddisruptionbudget"
    );
    assert!(
        redis["reason"]
            .as_str()
            .unwrap()
            .contains("more than one PodDisruptionBudget"),
        "{backend:?}: {redis}"
    );
    let evictions = scenario
        .tool_requests()
        .iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .count();
    assert_eq!(
        evictions, 1,
        "{backend:?}: a permanent refusal is not retried"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{backend:?}: it waited {:?}",
        started.elapsed()
    );
    assert_eq!(pods(&scenario, "shop"), before, "{backend:?}");
}

on_both_backends!(a_pod_under_two_budgets_fails_at_once_with_the_budget_runbook);

const PACED: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: shop/agent:1.0.0}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: pool, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: pool}}
  template:
    metadata: {labels: {app: pool}}
    spec:
      containers: [{name: pool, image: shop/pool:1.0.0}]
";

/// `kubectl get pods --watch` of a namespace, running until dropped: every change to its pods,
/// in the API server's order.
struct PodWatch {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl PodWatch {
    fn start(scenario: &Scenario, namespace: &str) -> PodWatch {
        let out = scenario.dir.path().join(format!("watch-{namespace}.json"));
        let child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&scenario.kubeconfig)
            .args(["--context", kube_sim::kubeconfig::ADMIN_CONTEXT])
            .args([
                "get",
                "pods",
                "-n",
                namespace,
                "--watch",
                "--output-watch-events",
            ])
            .args(["-o", "json"])
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .expect("kubectl runs");
        PodWatch { child, out }
    }

    /// The events seen so far, in order: `ADDED`, `MODIFIED` or `DELETED`, and the pod.
    fn seen(&self) -> Vec<(String, Value)> {
        let text = std::fs::read(&self.out).unwrap();
        serde_json::Deserializer::from_slice(&text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|event| {
                let kind = event["type"].as_str().unwrap_or_default().to_string();
                (kind, event["object"].clone())
            })
            .collect()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For each pod that began terminating: how many other pods of its owner were Running and
/// Ready at that moment, replaying the watch in order.
fn ready_at_each_eviction(seen: &[(String, Value)]) -> Vec<(String, String, usize)> {
    let owner = |pod: &Value| {
        pod["metadata"]["ownerReferences"][0]["name"]
            .as_str()
            .map(str::to_string)
    };
    let leaving = |event: &str, pod: &Value| {
        event == "DELETED" || !pod["metadata"]["deletionTimestamp"].is_null()
    };
    let mut state: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let mut evictions = Vec::new();
    for (event, pod) in seen {
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let was_leaving = state.get(&name).is_some_and(|(e, p)| leaving(e, p));
        let leaving_now = leaving(event, pod);
        if leaving_now
            && !was_leaving
            && let Some(evicted_owner) = owner(pod)
        {
            let ready = state
                .iter()
                .filter(|(other, (e, p))| **other != name && !leaving(e, p))
                .filter(|(_, (_, p))| owner(p).as_deref() == Some(evicted_owner.as_str()))
                .filter(|(_, (_, p))| support::backend::is_ready(p))
                .count();
            evictions.push((evicted_owner, name.clone(), ready));
        }
        state.insert(name, (event.clone(), pod.clone()));
    }
    evictions
}

async fn evictions_are_paced_on_each_replacement_pod_being_ready(backend: Backend) {
    let scenario = shop_upgraded(backend, PACED, 6).await;
    let watch = PodWatch::start(&scenario, "shop");
    scenario
        .await_condition(
            std::time::Duration::from_secs(30),
            "the watch's first list",
            || watch.seen().len() >= 6,
        )
        .await;

    let (code, report, stderr) = scenario.run(&["--rollout-timeout", "120s"]).await;
    assert_eq!(code, Some(0), "{backend:?}: {stderr}");
    for (kind, name) in [("DaemonSet", "agent"), ("ReplicaSet", "pool")] {
        let entry = workload(&report, kind, "shop", name);
        assert_eq!(entry["status"], "completed", "{backend:?}: {entry}");
    }
    let evictions = ready_at_each_eviction(&watch.seen());
    assert_eq!(evictions.len(), 6, "{backend:?}: {evictions:?}");
    for (owner, pod, ready) in &evictions {
        assert_eq!(
            *ready, 2,
            "{backend:?}: when {pod} of {owner} was evicted, only {ready} of its other pods were \
             Running and Ready: the previous replacement was not yet ({evictions:?})"
        );
    }
}

on_both_backends!(evictions_are_paced_on_each_replacement_pod_being_ready);
