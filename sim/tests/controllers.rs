//! The controllers of a started simulation, observed through its store: workloads roll out,
//! restart, stall and clean up as on a real cluster, and a loaded state stays as it is.

mod common;

use std::time::{Duration, Instant};

use kube_sim::store::{ResourceType, Store, resource_for_plural};
use kube_sim::{Sim, SimConfig};
use serde_json::{Value, json};

const PROXY_IMAGE: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless";

fn resource(group: &str, plural: &str) -> &'static ResourceType {
    resource_for_plural(group, plural).expect("served resource")
}

fn pods() -> &'static ResourceType {
    resource("", "pods")
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

fn state(items: Vec<Value>) -> Value {
    common::injected_shop_state(items)
}

fn template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": format!("example.com/{app}:1.0"),
                                 "resources": {"requests": {"cpu": "10m"}}}]},
    })
}

fn workload(kind: &str, name: &str, replicas: i64, extra_spec: Value) -> Value {
    let api_version = match kind {
        "Rollout" => "argoproj.io/v1alpha1",
        "Job" => "batch/v1",
        _ => "apps/v1",
    };
    let mut obj = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)},
    });
    if kind != "DaemonSet" && kind != "Job" {
        obj["spec"]["replicas"] = json!(replicas);
    }
    if let (Some(spec), Some(extra)) = (obj["spec"].as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    obj
}

async fn start(items: Vec<Value>) -> Sim {
    kube_sim::start(SimConfig {
        state: state(items),
        plain_http: true,
        pod_start: Duration::from_millis(150),
        ..Default::default()
    })
    .await
    .expect("sim starts")
}

fn get(store: &Store, group: &str, plural: &str, name: &str) -> Value {
    store
        .get(resource(group, plural), Some("shop"), name)
        .unwrap_or(Value::Null)
}

/// The pods whose controller is the object named `owner`.
fn pods_of(store: &Store, owner: &str) -> Vec<Value> {
    store
        .list(pods(), Some("shop"))
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["name"] == owner && r["controller"] == true)
                })
        })
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn proxy_image(pod: &Value) -> Option<&str> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "istio-proxy")?["image"]
        .as_str()
}

use common::uids;

fn deployment_complete(store: &Store, name: &str, replicas: i64) -> Option<Value> {
    let d = get(store, "apps", "deployments", name);
    let status = &d["status"];
    let progressing = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Progressing")?;
    (status["observedGeneration"] == d["metadata"]["generation"]
        && status["updatedReplicas"] == replicas
        && status["replicas"] == replicas
        && status["availableReplicas"] == replicas
        && progressing["reason"] == "NewReplicaSetAvailable")
        .then_some(d)
}

fn restart_template(store: &Store, group: &str, plural: &str, name: &str) {
    store
        .modify(resource(group, plural), Some("shop"), name, |obj| {
            obj["spec"]["template"]["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/restartedAt": chrono::Utc::now().to_rfc3339()});
        })
        .expect("workload exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rolls_out_and_restarts_with_the_injected_proxy() {
    let sim = start(vec![workload("Deployment", "orders", 3, json!({}))]).await;
    let store = sim.store();
    eventually("the first rollout", Duration::from_secs(10), || {
        deployment_complete(&store, "orders", 3)
    })
    .await;
    let first = pods_of(&store, "orders");
    assert_eq!(
        first.len(),
        0,
        "pods belong to the ReplicaSet, not the Deployment"
    );
    let replicasets = store.list(resource("apps", "replicasets"), Some("shop"));
    assert_eq!(replicasets.len(), 1);
    let rs = &replicasets[0];
    let rs_name = rs["metadata"]["name"].as_str().unwrap();
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs_name, format!("orders-{hash}"));
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let old_pods = pods_of(&store, rs_name);
    assert_eq!(old_pods.len(), 3);
    for pod in &old_pods {
        assert!(ready(pod), "{pod}");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], hash);
        assert_eq!(proxy_image(pod), Some(PROXY_IMAGE));
        assert!(
            pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| n.starts_with("sim-node-"))
        );
        assert!(pod["status"]["startTime"].is_string());
    }

    restart_template(&store, "apps", "deployments", "orders");
    let d = eventually("the restart", Duration::from_secs(15), || {
        deployment_complete(&store, "orders", 3)
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;
    assert_eq!(d["status"]["observedGeneration"], 2);
    let replicasets = store.list(resource("apps", "replicasets"), Some("shop"));
    assert_eq!(replicasets.len(), 2);
    let new_rs = replicasets
        .iter()
        .find(|rs| rs["metadata"]["name"] != rs_name)
        .unwrap();
    let old_rs = replicasets
        .iter()
        .find(|rs| rs["metadata"]["name"] == rs_name)
        .unwrap();
    assert_eq!(old_rs["spec"]["replicas"], 0);
    eventually("the old pods to go", Duration::from_secs(5), || {
        pods_of(&store, rs_name).is_empty().then_some(())
    })
    .await;
    let new_pods = pods_of(&store, new_rs["metadata"]["name"].as_str().unwrap());
    assert_eq!(new_pods.len(), 3);
    assert!(
        new_pods
            .iter()
            .all(|p| ready(p) && proxy_image(p) == Some(PROXY_IMAGE))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_and_paused_deployments() {
    let sim = start(vec![
        workload(
            "Deployment",
            "batch",
            2,
            json!({"strategy": {"type": "Recreate"}}),
        ),
        workload("Deployment", "frozen", 2, json!({})),
    ])
    .await;
    let store = sim.store();
    eventually("both rollouts", Duration::from_secs(10), || {
        deployment_complete(&store, "batch", 2).and(deployment_complete(&store, "frozen", 2))
    })
    .await;
    let frozen_pods = uids(
        &store
            .list(pods(), Some("shop"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "frozen")
            .collect::<Vec<_>>(),
    );

    store
        .modify(
            resource("apps", "deployments"),
            Some("shop"),
            "frozen",
            |d| d["spec"]["paused"] = json!(true),
        )
        .unwrap();
    restart_template(&store, "apps", "deployments", "frozen");
    restart_template(&store, "apps", "deployments", "batch");
    eventually("the recreate rollout", Duration::from_secs(10), || {
        deployment_complete(&store, "batch", 2)
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;
    // The paused Deployment has had as long to roll, and rolled nothing.
    let d = get(&store, "apps", "deployments", "frozen");
    let progressing = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "DeploymentPaused");
    let now_frozen: Vec<Value> = store
        .list(pods(), Some("shop"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "frozen")
        .collect();
    assert_eq!(uids(&now_frozen), frozen_pods);
    let frozen_sets = store
        .list(resource("apps", "replicasets"), Some("shop"))
        .into_iter()
        .filter(|rs| rs["metadata"]["labels"]["app"] == "frozen")
        .count();
    assert_eq!(frozen_sets, 1);

    // Resuming rolls it.
    store
        .modify(
            resource("apps", "deployments"),
            Some("shop"),
            "frozen",
            |d| d["spec"]["paused"] = json!(false),
        )
        .unwrap();
    eventually("the resumed rollout", Duration::from_secs(10), || {
        deployment_complete(&store, "frozen", 2)
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_pods_exceed_the_progress_deadline() {
    let mut d = workload(
        "Deployment",
        "broken",
        2,
        json!({"progressDeadlineSeconds": 2}),
    );
    let sim = start(vec![d.clone()]).await;
    let store = sim.store();
    eventually("the first rollout", Duration::from_secs(10), || {
        deployment_complete(&store, "broken", 2)
    })
    .await;
    d = get(&store, "apps", "deployments", "broken");
    d["metadata"]["annotations"] = json!({"kube-sim.kyma-project.io/new-pods": "crash-loop"});
    d["spec"]["template"]["metadata"]["annotations"] = json!({"restarted": "now"});
    store.update(resource("apps", "deployments"), d).unwrap();
    let d = eventually("ProgressDeadlineExceeded", Duration::from_secs(10), || {
        let d = get(&store, "apps", "deployments", "broken");
        let stalled = d["status"]["conditions"].as_array()?.iter().any(|c| {
            c["type"] == "Progressing"
                && c["status"] == "False"
                && c["reason"] == "ProgressDeadlineExceeded"
        });
        stalled.then_some(d)
    })
    .await;
    // The old pods keep the Deployment available.
    assert_eq!(d["status"]["availableReplicas"], 2);
    let crashing = store
        .list(pods(), Some("shop"))
        .into_iter()
        .filter(|p| {
            p["metadata"]["annotations"]["kube-sim.kyma-project.io/new-pods"] == "crash-loop"
        })
        .collect::<Vec<_>>();
    assert!(!crashing.is_empty());
    let pod = eventually("a restart counted", Duration::from_secs(5), || {
        let pod = store.get(
            pods(),
            Some("shop"),
            crashing[0]["metadata"]["name"].as_str()?,
        )?;
        let app = pod["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "broken")?
            .clone();
        (app["restartCount"].as_i64()? >= 1).then_some(pod)
    })
    .await;
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(!ready(&pod));
    let app = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "broken")
        .unwrap();
    assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_stay_pending() {
    let mut d = workload("Deployment", "huge", 1, json!({}));
    d["spec"]["template"]["metadata"]["annotations"] =
        json!({"kube-sim.kyma-project.io/new-pods": "unschedulable"});
    let sim = start(vec![d]).await;
    let store = sim.store();
    let pod = eventually("an unschedulable pod", Duration::from_secs(5), || {
        let pods: Vec<Value> = store.list(pods(), Some("shop"));
        let pod = pods.first()?.clone();
        (pod["status"]["conditions"][0]["reason"] == "Unschedulable").then_some(pod)
    })
    .await;
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
    assert_eq!(pod["status"]["conditions"][0]["status"], "False");
    assert!(pod["spec"]["nodeName"].is_null());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_roll_in_reverse_with_partition_and_on_delete() {
    let sim = start(vec![
        workload("StatefulSet", "db", 3, json!({"serviceName": "db"})),
        workload(
            "StatefulSet",
            "cache",
            2,
            json!({"updateStrategy": {"type": "OnDelete"}}),
        ),
    ])
    .await;
    let store = sim.store();
    let sts_done = |name: &str, replicas: i64| {
        let s = get(&store, "apps", "statefulsets", name);
        let st = &s["status"];
        (st["observedGeneration"] == s["metadata"]["generation"]
            && st["readyReplicas"] == replicas
            && st["updatedReplicas"] == replicas
            && st["currentRevision"] == st["updateRevision"])
            .then_some(s)
    };
    eventually("the StatefulSets", Duration::from_secs(10), || {
        sts_done("db", 3).and(sts_done("cache", 2))
    })
    .await;
    let names: Vec<String> = {
        let mut n: Vec<String> = pods_of(&store, "db")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names, ["db-0", "db-1", "db-2"]);

    restart_template(&store, "apps", "statefulsets", "db");
    let s = eventually("the rolling update", Duration::from_secs(15), || {
        sts_done("db", 3).filter(|s| s["status"]["observedGeneration"] == 2)
    })
    .await;
    let revision = s["status"]["updateRevision"].as_str().unwrap().to_string();
    assert!(
        pods_of(&store, "db")
            .iter()
            .all(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str())
    );

    // With a partition, only the ordinals at or above it move.
    store
        .modify(resource("apps", "statefulsets"), Some("shop"), "db", |s| {
            s["spec"]["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
            s["spec"]["template"]["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/restartedAt": "again"});
        })
        .unwrap();
    eventually("db-2 updated", Duration::from_secs(10), || {
        let s = get(&store, "apps", "statefulsets", "db");
        let update = s["status"]["updateRevision"].as_str()?.to_string();
        let pod = store.get(pods(), Some("shop"), "db-2")?;
        (update != revision
            && pod["metadata"]["labels"]["controller-revision-hash"] == update.as_str()
            && ready(&pod))
        .then_some(())
    })
    .await;
    for ordinal in 0..2 {
        let pod = store
            .get(pods(), Some("shop"), &format!("db-{ordinal}"))
            .unwrap();
        assert_eq!(
            pod["metadata"]["labels"]["controller-revision-hash"],
            revision.as_str(),
            "db-{ordinal} is below the partition"
        );
    }

    // OnDelete: a template change replaces nothing until a pod is deleted.
    let before = uids(&pods_of(&store, "cache"));
    restart_template(&store, "apps", "statefulsets", "cache");
    let s = eventually("the new revision observed", Duration::from_secs(5), || {
        let s = get(&store, "apps", "statefulsets", "cache");
        (s["status"]["observedGeneration"] == 2).then_some(s)
    })
    .await;
    assert_ne!(
        s["status"]["updateRevision"],
        s["status"]["currentRevision"]
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(uids(&pods_of(&store, "cache")), before);
    store.delete(pods(), Some("shop"), "cache-1").unwrap();
    let update = s["status"]["updateRevision"].clone();
    eventually(
        "cache-1 recreated on the new revision",
        Duration::from_secs(5),
        || {
            let pod = store.get(pods(), Some("shop"), "cache-1")?;
            (pod["metadata"]["labels"]["controller-revision-hash"] == update && ready(&pod))
                .then_some(())
        },
    )
    .await;
    let cache0 = store.get(pods(), Some("shop"), "cache-0").unwrap();
    assert_ne!(
        cache0["metadata"]["labels"]["controller-revision-hash"],
        update
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_runs_one_pod_per_node_and_rolls() {
    let sim = start(vec![workload("DaemonSet", "agent", 0, json!({}))]).await;
    let store = sim.store();
    let ds_done = |generation: i64| {
        let d = get(&store, "apps", "daemonsets", "agent");
        let st = &d["status"];
        (st["observedGeneration"] == generation
            && st["desiredNumberScheduled"] == 3
            && st["updatedNumberScheduled"] == 3
            && st["numberAvailable"] == 3)
            .then_some(d)
    };
    eventually("the DaemonSet", Duration::from_secs(10), || ds_done(1)).await;
    let mut nodes: Vec<String> = pods_of(&store, "agent")
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-node-1", "sim-node-2", "sim-node-3"]);
    let before = uids(&pods_of(&store, "agent"));
    restart_template(&store, "apps", "daemonsets", "agent");
    eventually("the rolling update", Duration::from_secs(15), || {
        ds_done(2).filter(|_| {
            let now = pods_of(&store, "agent");
            now.len() == 3 && uids(&now).iter().all(|u| !before.contains(u))
        })
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_completion() {
    let mut job = workload(
        "Job",
        "migrate",
        0,
        json!({"completions": 2, "parallelism": 1}),
    );
    job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    job["spec"].as_object_mut().unwrap().remove("selector");
    let sim = start(vec![job]).await;
    let store = sim.store();
    let job = eventually("the Job to complete", Duration::from_secs(10), || {
        let job = get(&store, "batch", "jobs", "migrate");
        job["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
            .then_some(job)
    })
    .await;
    assert_eq!(job["status"]["succeeded"], 2);
    assert!(job["status"]["completionTime"].is_string());
    let finished = pods_of(&store, "migrate");
    assert_eq!(finished.len(), 2);
    assert!(finished.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argo_rollout_restarts_through_restart_at() {
    let sim = start(vec![workload(
        "Rollout",
        "checkout",
        2,
        json!({"strategy": {"canary": {}}}),
    )])
    .await;
    let store = sim.store();
    let healthy = || {
        let r = get(&store, "argoproj.io", "rollouts", "checkout");
        (r["status"]["phase"] == "Healthy" && r["status"]["availableReplicas"] == 2).then_some(r)
    };
    let r = eventually("the Rollout", Duration::from_secs(10), healthy).await;
    assert_eq!(r["status"]["observedGeneration"], "1");
    let rs = store.list(resource("apps", "replicasets"), Some("shop"));
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["metadata"]["ownerReferences"][0]["kind"], "Rollout");
    let before = uids(&store.list(pods(), Some("shop")));

    // restartAt in whole seconds, later than the pods' creation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let restart_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    store
        .modify(
            resource("argoproj.io", "rollouts"),
            Some("shop"),
            "checkout",
            |r| r["spec"]["restartAt"] = json!(restart_at),
        )
        .unwrap();
    eventually("the restart", Duration::from_secs(15), || {
        healthy().filter(|r| r["status"]["restartedAt"] == restart_at.as_str())
    })
    .await;
    let after = store.list(pods(), Some("shop"));
    assert_eq!(after.len(), 2);
    assert!(uids(&after).iter().all(|u| !before.contains(u)));
    assert_eq!(
        store
            .list(resource("apps", "replicasets"), Some("shop"))
            .len(),
        1,
        "a restart keeps the ReplicaSet"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_owner_deletes_its_dependents() {
    let sim = start(vec![workload("Deployment", "gone", 2, json!({}))]).await;
    let store = sim.store();
    eventually("the rollout", Duration::from_secs(10), || {
        deployment_complete(&store, "gone", 2)
    })
    .await;
    store
        .delete(resource("apps", "deployments"), Some("shop"), "gone")
        .unwrap();
    eventually(
        "the ReplicaSet and pods to go",
        Duration::from_secs(5),
        || {
            (store
                .list(resource("apps", "replicasets"), Some("shop"))
                .is_empty()
                && store.list(pods(), Some("shop")).is_empty())
            .then_some(())
        },
    )
    .await;
    sim.shutdown().await;
}

/// A Deployment, ReplicaSet and pods as a real cluster stores them: the hash label is the real
/// controller's, and the pods are in every state a snapshot can catch them in.
fn loaded_deployment() -> Vec<Value> {
    let mut tmpl = template("legacy");
    let d_uid = "11111111-1111-1111-1111-111111111111";
    let rs_uid = "22222222-2222-2222-2222-222222222222";
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "legacy", "namespace": "shop", "uid": d_uid, "generation": 4,
                     "annotations": {"deployment.kubernetes.io/revision": "4"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "legacy"}}, "template": tmpl.clone()},
        "status": {"observedGeneration": 4, "replicas": 4, "updatedReplicas": 4, "readyReplicas": 1, "availableReplicas": 1},
    });
    tmpl["metadata"]["labels"]["pod-template-hash"] = json!("6d4cf56db6");
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "legacy-6d4cf56db6", "namespace": "shop", "uid": rs_uid,
                     "labels": tmpl["metadata"]["labels"].clone(),
                     "annotations": {"deployment.kubernetes.io/revision": "4"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy", "uid": d_uid, "controller": true}]},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "legacy", "pod-template-hash": "6d4cf56db6"}}, "template": tmpl.clone()},
    });
    let pod = |suffix: &str, status: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("legacy-6d4cf56db6-{suffix}"), "namespace": "shop",
                         "labels": tmpl["metadata"]["labels"].clone(),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "legacy-6d4cf56db6", "uid": rs_uid, "controller": true}]},
            "spec": tmpl["spec"].clone(),
            "status": status,
        })
    };
    vec![
        d,
        rs,
        pod(
            "ready",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        ),
        pod(
            "pending",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
        ),
        pod(
            "crash",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                            "containerStatuses": [{"name": "legacy", "ready": false, "restartCount": 42,
                                                   "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        ),
        pod("failed", json!({"phase": "Failed", "reason": "Evicted"})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_state_starts_no_rollout() {
    let mut items = loaded_deployment();
    let state_pods: Vec<Value> = items
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .cloned()
        .collect();
    let generated = kube_sim::generate::generate(150, 3);
    items.extend(generated["items"].as_array().unwrap().iter().cloned());
    let sim = start(items).await;
    let store = sim.store();
    let all_pods = |store: &Store| store.list(pods(), None);
    let before = all_pods(&store);
    let sets_before = store.list(resource("apps", "replicasets"), None).len();
    assert!(before.len() > 150);
    // Give the controllers time to do whatever they would do, then check they did nothing to pods.
    eventually(
        "the controllers' first pass",
        Duration::from_secs(5),
        || {
            let rs = get(&store, "apps", "replicasets", "legacy-6d4cf56db6");
            (rs["status"]["observedGeneration"] == 1).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = all_pods(&store);
    assert_eq!(uids(&after), uids(&before));
    assert_eq!(
        store.list(resource("apps", "replicasets"), None).len(),
        sets_before
    );
    for pod in &state_pods {
        let now = store
            .get(
                pods(),
                Some("shop"),
                pod["metadata"]["name"].as_str().unwrap(),
            )
            .unwrap();
        assert_eq!(
            now["status"], pod["status"],
            "a loaded pod keeps its status"
        );
    }
    for pod in &before {
        let now = after
            .iter()
            .find(|p| p["metadata"]["uid"] == pod["metadata"]["uid"])
            .unwrap();
        assert_eq!(
            now["status"], pod["status"],
            "{} keeps its status",
            pod["metadata"]["name"]
        );
    }
    let rs = get(&store, "apps", "replicasets", "legacy-6d4cf56db6");
    assert_eq!(rs["status"]["replicas"], 4);
    assert_eq!(rs["status"]["readyReplicas"], 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_pod_created_through_the_store_starts() {
    let sim = start(vec![]).await;
    let store = sim.store();
    store
        .create(pods(), json!({"metadata": {"name": "solo", "namespace": "shop"},
                              "spec": {"containers": [{"name": "solo", "image": "example.com/solo:1"}]}}))
        .unwrap();
    let pod = eventually("the pod to be Ready", Duration::from_secs(5), || {
        let pod = store.get(pods(), Some("shop"), "solo")?;
        ready(&pod).then_some(pod)
    })
    .await;
    assert!(pod["status"]["containerStatuses"][0]["state"]["running"].is_object());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_a_generated_state_writes_nothing() {
    let sim = kube_sim::start(SimConfig {
        state: kube_sim::generate::generate(600, 21),
        plain_http: true,
        controllers: false,
        ..Default::default()
    })
    .await
    .expect("sim starts");
    let store = sim.store();
    let mut events = store.subscribe();
    let controllers = kube_sim::controllers::spawn(store.clone(), Default::default());
    // The first pass over 600 pods takes well under a second; give it ample time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut written = Vec::new();
    while let Ok(event) = events.try_recv() {
        written.push(format!(
            "{:?} {} {}",
            event.kind, event.resource.kind, event.object["metadata"]["name"]
        ));
    }
    assert!(written.is_empty(), "the controllers wrote: {written:?}");
    controllers.abort();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_objects_do_not_stop_the_controllers() {
    let odd = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "odd", "namespace": "shop"},
               "spec": {"replicas": "three", "template": "not a template", "strategy": {"rollingUpdate": {"maxSurge": "lots"}}}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "odd", "namespace": "shop"}, "spec": null}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "odd", "namespace": "shop"},
               "spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "x%"}}}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "odd", "namespace": "shop"},
               "spec": {"completions": -1, "parallelism": 1000000000000i64}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "odd", "namespace": "shop"},
               "spec": {"restartAt": "yesterday"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "namespace": "shop",
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "nope", "controller": true}]}}),
        workload("Deployment", "fine", 2, json!({})),
    ];
    let sim = start(odd).await;
    let store = sim.store();
    eventually(
        "the well-formed Deployment",
        Duration::from_secs(10),
        || deployment_complete(&store, "fine", 2),
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_of_a_state_without_nodes_stays_on_its_nodes() {
    let uid = "da3e0000-0000-4000-8000-000000000001";
    let mut ds = workload("DaemonSet", "agent", 0, json!({}));
    ds["metadata"]["uid"] = json!(uid);
    let pod = |name: &str, node: &str, owned: bool| {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "agent", "controller-revision-hash": "5d8f9c7b6"}},
            "spec": {"nodeName": node, "containers": [{"name": "agent", "image": "example.com/agent:1.0"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        if owned {
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": uid, "controller": true}]);
        }
        pod
    };
    let sim = start(vec![
        ds,
        pod("agent-x", "node-x", true),
        pod("agent-y", "node-y", true),
        pod("other", "node-z", false),
    ])
    .await;
    let store = sim.store();
    let status = eventually("the DaemonSet status", Duration::from_secs(5), || {
        let d = get(&store, "apps", "daemonsets", "agent");
        (d["status"]["observedGeneration"] == 1).then_some(d["status"].clone())
    })
    .await;
    assert_eq!(status["desiredNumberScheduled"], 2);
    assert_eq!(status["updatedNumberScheduled"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pods_of(&store, "agent").len(),
        2,
        "nothing created on node-z"
    );

    store.delete(pods(), Some("shop"), "agent-x").unwrap();
    let back = eventually("a pod back on node-x", Duration::from_secs(5), || {
        pods_of(&store, "agent")
            .into_iter()
            .find(|p| p["spec"]["nodeName"] == "node-x" && ready(p))
    })
    .await;
    assert_eq!(
        back["metadata"]["labels"]["controller-revision-hash"],
        "5d8f9c7b6"
    );
    assert_eq!(pods_of(&store, "agent").len(), 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_new_pods_crash_loop_is_degraded() {
    let rollout = workload(
        "Rollout",
        "flaky",
        2,
        json!({"progressDeadlineSeconds": 2, "strategy": {"canary": {}}}),
    );
    let sim = start(vec![rollout]).await;
    let store = sim.store();
    eventually("the Rollout", Duration::from_secs(10), || {
        let r = get(&store, "argoproj.io", "rollouts", "flaky");
        (r["status"]["phase"] == "Healthy").then_some(r)
    })
    .await;
    // restartAt in whole seconds, later than the pods' creation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store
        .modify(
            resource("argoproj.io", "rollouts"),
            Some("shop"),
            "flaky",
            |r| {
                r["metadata"]["annotations"] =
                    json!({"kube-sim.kyma-project.io/new-pods": "crash-loop"});
                r["spec"]["restartAt"] =
                    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            },
        )
        .unwrap();
    let r = eventually("Degraded", Duration::from_secs(15), || {
        let r = get(&store, "argoproj.io", "rollouts", "flaky");
        (r["status"]["phase"] == "Degraded").then_some(r)
    })
    .await;
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("ProgressDeadlineExceeded")
    );
    assert!(
        r["status"]["restartedAt"].is_null(),
        "the restart did not finish"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_revisions_beyond_the_history_limit_are_deleted() {
    let sim = start(vec![workload(
        "Deployment",
        "short",
        1,
        json!({"revisionHistoryLimit": 1}),
    )])
    .await;
    let store = sim.store();
    for revision in 1..=3 {
        if revision > 1 {
            store
                .modify(
                    resource("apps", "deployments"),
                    Some("shop"),
                    "short",
                    |d| {
                        d["spec"]["template"]["metadata"]["annotations"] =
                            json!({"rev": revision.to_string()});
                    },
                )
                .unwrap();
        }
        eventually(
            &format!("revision {revision}"),
            Duration::from_secs(10),
            || {
                deployment_complete(&store, "short", 1).filter(|d| {
                    d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .and_then(|r| r.parse::<i32>().ok())
                        == Some(revision)
                })
            },
        )
        .await;
    }
    let sets = eventually("two ReplicaSets left", Duration::from_secs(5), || {
        let sets = store.list(resource("apps", "replicasets"), Some("shop"));
        (sets.len() == 2).then_some(sets)
    })
    .await;
    let mut revisions: Vec<&str> = sets
        .iter()
        .map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap()
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["2", "3"]);
    sim.shutdown().await;
}

/// The ControllerRevisions in the store whose controller has this uid.
fn controller_revisions_of(store: &Store, owner_uid: &Value) -> Vec<Value> {
    store
        .list(resource("apps", "controllerrevisions"), None)
        .into_iter()
        .filter(|r| {
            let owner = &r["metadata"]["ownerReferences"][0];
            owner["uid"] == *owner_uid && owner["controller"] == true
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_workloads_get_their_first_controller_revision_when_their_template_changes() {
    let generated = kube_sim::generate::generate(150, 3);
    let first_of = |kind: &str| {
        generated["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("the generated state has a {kind}"))
    };
    let (sts, ds) = (first_of("StatefulSet"), first_of("DaemonSet"));
    let sim = start(generated["items"].as_array().unwrap().clone()).await;
    let store = sim.store();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let revisions = resource("apps", "controllerrevisions");
    assert!(
        store.list(revisions, None).is_empty(),
        "loading writes no ControllerRevision"
    );

    for workload in [&sts, &ds] {
        let plural = if workload["kind"] == "StatefulSet" {
            "statefulsets"
        } else {
            "daemonsets"
        };
        let ns = workload["metadata"]["namespace"].as_str();
        let name = workload["metadata"]["name"].as_str().unwrap();
        store
            .modify(resource("apps", plural), ns, name, |obj| {
                obj["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                    json!("2026-01-01T00:00:00Z");
            })
            .unwrap();
        let uid = &workload["metadata"]["uid"];
        let created = eventually("a ControllerRevision", Duration::from_secs(5), || {
            let found = controller_revisions_of(&store, uid);
            (!found.is_empty()).then_some(found)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(controller_revisions_of(&store, uid), created);
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!(created[0]["revision"], 1);
        let now = store.get(resource("apps", plural), ns, name).unwrap();
        if plural == "statefulsets" {
            assert_eq!(
                created[0]["metadata"]["name"],
                now["status"]["updateRevision"]
            );
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_is_limited_and_a_rollback_renumbers_its_revision() {
    let sts = workload(
        "StatefulSet",
        "db",
        1,
        json!({"revisionHistoryLimit": 1, "updateStrategy": {"type": "RollingUpdate"}}),
    );
    let sim = start(vec![sts]).await;
    let store = sim.store();
    let statefulsets = resource("apps", "statefulsets");
    let set_template = |restarted: &str| {
        store
            .modify(statefulsets, Some("shop"), "db", |s| {
                s["spec"]["template"]["metadata"]["annotations"] =
                    json!({"kubectl.kubernetes.io/restartedAt": restarted});
            })
            .unwrap();
    };
    // (name, revision) of each ControllerRevision once the rollout to the template is done.
    let settled = |expected: usize| {
        let s = get(&store, "apps", "statefulsets", "db");
        let uid = s["metadata"]["uid"].clone();
        let mut found: Vec<(String, i64)> = controller_revisions_of(&store, &uid)
            .iter()
            .map(|r| {
                (
                    r["metadata"]["name"].as_str().unwrap().to_string(),
                    r["revision"].as_i64().unwrap(),
                )
            })
            .collect();
        found.sort_by_key(|(_, n)| *n);
        let done = s["status"]["observedGeneration"] == s["metadata"]["generation"]
            && s["status"]["currentRevision"] == s["status"]["updateRevision"]
            && s["status"]["readyReplicas"] == 1;
        (done && found.len() == expected).then_some((found, s))
    };
    eventually("the first revision", Duration::from_secs(10), || settled(1)).await;
    for restarted in ["one", "two", "three"] {
        set_template(restarted);
        eventually("the rollout", Duration::from_secs(10), || {
            settled(2).filter(|(_, s)| s["status"]["updateRevision"] != Value::Null)
        })
        .await;
    }
    let (kept, _) = eventually("pruned", Duration::from_secs(5), || settled(2)).await;
    assert_eq!(kept.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [3, 4]);

    set_template("two");
    let (after, s) = eventually("the rollback", Duration::from_secs(10), || {
        settled(2).filter(|(found, _)| found.last().is_some_and(|(_, n)| *n == 5))
    })
    .await;
    assert_eq!(after, [(kept[1].0.clone(), 4), (kept[0].0.clone(), 5)]);
    assert_eq!(s["status"]["updateRevision"], kept[0].0.as_str());
    sim.shutdown().await;
}
