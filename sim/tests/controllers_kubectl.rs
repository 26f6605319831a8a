//! The controllers as `kubectl` sees them: `rollout restart` and `rollout status` behave as on a
//! real cluster for Deployments, StatefulSets and DaemonSets, OnDelete and paused workloads roll
//! nothing, a crash-looping rollout exceeds its progress deadline, an Argo Rollout restarts
//! through `spec.restartAt`, a loaded state is left as it is, and `rollout history` lists the
//! ControllerRevisions of StatefulSets and DaemonSets.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube_sim::{Sim, SimConfig};
use serde_json::{Value, json};

const CURRENT: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless";
const STALE: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.23.2-distroless";

struct Cluster {
    sim: Sim,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(items: Vec<Value>) -> Cluster {
        let sim = kube_sim::start(SimConfig {
            state: common::injected_shop_state(items),
            pod_start: Duration::from_millis(150),
            ..Default::default()
        })
        .await
        .expect("sim starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        Cluster {
            sim,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Runs kubectl (killed if it outlives 90 s); returns (success, stdout, stderr).
    async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let child = tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl runs");
        let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .expect("kubectl finishes")
            .expect("kubectl output");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}{out}");
        out
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&args).await).expect("kubectl prints JSON")
    }

    async fn pods(&self, selector: &str) -> Vec<Value> {
        let list = self
            .json(&["get", "pods", "-n", "shop", "-l", selector])
            .await;
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `kubectl get <what> -o json` until `check` holds; fails the test after `timeout`.
    async fn wait_for(
        &self,
        what: &[&str],
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let obj = self.json(what).await;
            if check(&obj) {
                return obj;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what:?}: {obj}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

use common::uids;

fn proxy_images(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .flat_map(|p| {
            p["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["name"] == "istio-proxy")
        .map(|c| c["image"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": app, "image": format!("example.com/{app}:1.0")}]}})
}

fn workload(kind: &str, name: &str, replicas: i64, extra_spec: Value) -> Value {
    let mut obj = json!({
        "apiVersion": if kind == "Rollout" { "argoproj.io/v1alpha1" } else { "apps/v1" },
        "kind": kind,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)},
    });
    if kind != "DaemonSet" {
        obj["spec"]["replicas"] = json!(replicas);
    }
    if let (Some(spec), Some(extra)) = (obj["spec"].as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    obj
}

/// A Deployment as loaded from a cluster before the Istio upgrade: its ReplicaSet (hash label as
/// a real controller computed it) and Ready pods with the old proxy.
fn stale_deployment(name: &str, replicas: usize) -> Vec<Value> {
    let d_uid = format!("{name}-0000-0000-0000-d0000000000d");
    let rs_uid = format!("{name}-0000-0000-0000-500000000005");
    let rs_name = format!("{name}-7b9d5c6f4d");
    let mut pod_template = template(name);
    pod_template["metadata"]["labels"]["pod-template-hash"] = json!("7b9d5c6f4d");
    let mut items = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "shop", "uid": d_uid, "generation": 1,
                            "annotations": {"deployment.kubernetes.io/revision": "1"}},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name)},
               "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                          "readyReplicas": replicas, "availableReplicas": replicas}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": rs_name, "namespace": "shop", "uid": rs_uid, "labels": pod_template["metadata"]["labels"],
                            "annotations": {"deployment.kubernetes.io/revision": "1"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": d_uid, "controller": true}]},
               "spec": {"replicas": replicas, "selector": {"matchLabels": pod_template["metadata"]["labels"]}, "template": pod_template},
               "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "observedGeneration": 1}}),
    ];
    for i in 0..replicas {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{rs_name}-old{i:02}"), "namespace": "shop", "labels": pod_template["metadata"]["labels"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid, "controller": true}]},
            "spec": pod_template["spec"].clone(),
        });
        kube_sim::injector::add_sidecar(
            &mut pod,
            STALE,
            "default",
            &istio_injection::proxy::PodProxy::default(),
        );
        pod["spec"]["nodeName"] = json!("node-a");
        pod["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        items.push(pod);
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_of_a_deployment_brings_the_injector_image() {
    let cluster = Cluster::start(stale_deployment("orders", 3)).await;
    let before = cluster.pods("app=orders").await;
    assert_eq!(proxy_images(&before), [STALE; 3]);
    // Loaded as a consistent state: the rollout is complete already.
    cluster
        .ok(&[
            "rollout",
            "status",
            "deployment/orders",
            "-n",
            "shop",
            "--timeout=20s",
        ])
        .await;
    assert_eq!(uids(&cluster.pods("app=orders").await), uids(&before));

    cluster
        .ok(&["rollout", "restart", "deployment/orders", "-n", "shop"])
        .await;
    let status = cluster
        .ok(&[
            "rollout",
            "status",
            "deployment/orders",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    assert!(status.contains("successfully rolled out"), "{status}");
    let after = cluster
        .wait_for(
            &["get", "pods", "-n", "shop", "-l", "app=orders"],
            Duration::from_secs(10),
            |l| l["items"].as_array().is_some_and(|i| i.len() == 3),
        )
        .await;
    let after = after["items"].as_array().unwrap().clone();
    assert!(uids(&after).iter().all(|u| !uids(&before).contains(u)));
    assert_eq!(proxy_images(&after), [CURRENT; 3]);
    let history = cluster
        .ok(&["rollout", "history", "deployment/orders", "-n", "shop"])
        .await;
    assert!(history.contains('2'), "{history}");
    // The story of the rollout, as `kubectl describe` shows it.
    let events = cluster.json(&["get", "events", "-n", "shop"]).await;
    let scaled: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "orders" && e["reason"] == "ScalingReplicaSet")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        scaled
            .iter()
            .any(|m| m.starts_with("Scaled up replica set orders-")),
        "{scaled:?}"
    );
    assert!(
        scaled
            .iter()
            .any(|m| m.starts_with("Scaled down replica set orders-7b9d5c6f4d")),
        "{scaled:?}"
    );
    let describe = cluster
        .ok(&["describe", "deployment/orders", "-n", "shop"])
        .await;
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_of_a_statefulset_and_a_daemonset() {
    let cluster = Cluster::start(vec![
        workload("StatefulSet", "db", 3, json!({"serviceName": "db", "updateStrategy": {"type": "RollingUpdate"}})),
        workload("DaemonSet", "agent", 0, json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}})),
    ])
    .await;
    cluster
        .ok(&[
            "rollout",
            "status",
            "statefulset/db",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    cluster
        .ok(&[
            "rollout",
            "status",
            "daemonset/agent",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    let sts_before = uids(&cluster.pods("app=db").await);
    let ds_before = uids(&cluster.pods("app=agent").await);
    assert_eq!((sts_before.len(), ds_before.len()), (3, 3));

    cluster
        .ok(&["rollout", "restart", "statefulset/db", "-n", "shop"])
        .await;
    cluster
        .ok(&["rollout", "restart", "daemonset/agent", "-n", "shop"])
        .await;
    let sts = cluster
        .ok(&[
            "rollout",
            "status",
            "statefulset/db",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    assert!(sts.contains("rolling update complete"), "{sts}");
    let ds = cluster
        .ok(&[
            "rollout",
            "status",
            "daemonset/agent",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    assert!(ds.contains("successfully rolled out"), "{ds}");
    let sts_after = cluster.pods("app=db").await;
    assert_eq!(sts_after.len(), 3);
    assert!(uids(&sts_after).iter().all(|u| !sts_before.contains(u)));
    assert_eq!(proxy_images(&sts_after), [CURRENT; 3]);
    let ds_after = cluster
        .wait_for(
            &["get", "pods", "-n", "shop", "-l", "app=agent"],
            Duration::from_secs(10),
            |l| l["items"].as_array().is_some_and(|i| i.len() == 3),
        )
        .await;
    assert!(
        uids(ds_after["items"].as_array().unwrap())
            .iter()
            .all(|u| !ds_before.contains(u))
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_and_paused_workloads_roll_nothing_until_asked() {
    let mut items = stale_deployment("frozen", 2);
    items[0]["spec"]["paused"] = json!(true);
    items.push(workload(
        "StatefulSet",
        "cache",
        2,
        json!({"updateStrategy": {"type": "OnDelete"}}),
    ));
    let cluster = Cluster::start(items).await;
    cluster
        .wait_for(
            &["get", "statefulset", "cache", "-n", "shop"],
            Duration::from_secs(10),
            |s| s["status"]["readyReplicas"] == 2,
        )
        .await;
    let cache_before = uids(&cluster.pods("app=cache").await);
    let frozen_before = uids(&cluster.pods("app=frozen").await);

    // kubectl refuses to restart a paused Deployment; a template change made otherwise rolls nothing.
    let (ok, _, err) = cluster
        .kubectl(&["rollout", "restart", "deployment/frozen", "-n", "shop"])
        .await;
    assert!(!ok && err.contains("paused"), "{err}");
    let patch = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-26T16:00:00Z"}}}}}"#;
    cluster
        .ok(&[
            "patch",
            "deployment/frozen",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            patch,
        ])
        .await;
    cluster
        .ok(&["rollout", "restart", "statefulset/cache", "-n", "shop"])
        .await;
    let sts = cluster
        .wait_for(
            &["get", "statefulset", "cache", "-n", "shop"],
            Duration::from_secs(10),
            |s| s["status"]["observedGeneration"] == 2,
        )
        .await;
    let update_revision = sts["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        sts["status"]["currentRevision"],
        sts["status"]["updateRevision"]
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(uids(&cluster.pods("app=cache").await), cache_before);
    assert_eq!(uids(&cluster.pods("app=frozen").await), frozen_before);
    let sets = cluster
        .json(&["get", "replicasets", "-n", "shop", "-l", "app=frozen"])
        .await;
    assert_eq!(sets["items"].as_array().unwrap().len(), 1);

    // Deleting an OnDelete pod brings it back on the new revision.
    cluster
        .ok(&["delete", "pod", "cache-1", "-n", "shop", "--wait=false"])
        .await;
    let pod = cluster
        .wait_for(
            &["get", "pod", "cache-1", "-n", "shop"],
            Duration::from_secs(10),
            |p| p["metadata"]["labels"]["controller-revision-hash"] == update_revision.as_str(),
        )
        .await;
    assert_eq!(proxy_images(&[pod]), [CURRENT]);
    let cache0 = cluster.json(&["get", "pod", "cache-0", "-n", "shop"]).await;
    assert_ne!(
        cache0["metadata"]["labels"]["controller-revision-hash"],
        update_revision.as_str()
    );

    // Resuming the Deployment rolls it.
    cluster
        .ok(&["rollout", "resume", "deployment/frozen", "-n", "shop"])
        .await;
    cluster
        .ok(&[
            "rollout",
            "status",
            "deployment/frozen",
            "-n",
            "shop",
            "--timeout=60s",
        ])
        .await;
    let after = cluster
        .wait_for(
            &["get", "pods", "-n", "shop", "-l", "app=frozen"],
            Duration::from_secs(10),
            |l| l["items"].as_array().is_some_and(|i| i.len() == 2),
        )
        .await;
    assert_eq!(
        proxy_images(after["items"].as_array().unwrap()),
        [CURRENT; 2]
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_rollout_exceeds_its_progress_deadline() {
    let mut items = stale_deployment("broken", 2);
    items[0]["spec"]["progressDeadlineSeconds"] = json!(3);
    let cluster = Cluster::start(items).await;
    cluster
        .ok(&[
            "annotate",
            "deployment/broken",
            "-n",
            "shop",
            "kube-sim.kyma-project.io/new-pods=crash-loop",
        ])
        .await;
    cluster
        .ok(&["rollout", "restart", "deployment/broken", "-n", "shop"])
        .await;
    let started = Instant::now();
    let (ok, out, err) = cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/broken",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    assert!(!ok, "{out}");
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let d = cluster
        .json(&["get", "deployment", "broken", "-n", "shop"])
        .await;
    assert_eq!(
        d["status"]["availableReplicas"], 2,
        "the old pods keep serving"
    );
    let crashing: Vec<Value> = cluster
        .pods("app=broken")
        .await
        .into_iter()
        .filter(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["state"]["waiting"]["reason"] == "CrashLoopBackOff")
                })
        })
        .collect();
    assert!(!crashing.is_empty());
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argo_rollout_restarts_through_restart_at() {
    let cluster = Cluster::start(vec![workload(
        "Rollout",
        "checkout",
        2,
        json!({"strategy": {"canary": {"maxSurge": 1, "maxUnavailable": 0}}}),
    )])
    .await;
    cluster
        .wait_for(
            &["get", "rollouts.argoproj.io", "checkout", "-n", "shop"],
            Duration::from_secs(10),
            |r| r["status"]["phase"] == "Healthy",
        )
        .await;
    let before = uids(&cluster.pods("app=checkout").await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let restart_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"spec": {"restartAt": restart_at}}).to_string();
    cluster
        .ok(&[
            "patch",
            "rollouts.argoproj.io/checkout",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            &patch,
        ])
        .await;
    let rollout = cluster
        .wait_for(
            &["get", "rollouts.argoproj.io", "checkout", "-n", "shop"],
            Duration::from_secs(20),
            |r| {
                r["status"]["restartedAt"] == restart_at.as_str()
                    && r["status"]["phase"] == "Healthy"
            },
        )
        .await;
    assert_eq!(rollout["status"]["observedGeneration"], "2");
    let after = cluster.pods("app=checkout").await;
    assert_eq!(after.len(), 2);
    assert!(uids(&after).iter().all(|u| !before.contains(u)));
    assert_eq!(proxy_images(&after), [CURRENT; 2]);
    cluster.sim.shutdown().await;
}

async fn all_pods(cluster: &Cluster) -> Vec<Value> {
    cluster.json(&["get", "pods", "-A"]).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_state_is_left_as_it_is() {
    let generated = kube_sim::generate::generate(400, 11);
    let items = generated["items"].as_array().unwrap().clone();
    let cluster = Cluster::start(items).await;
    let before = all_pods(&cluster).await;
    assert_eq!(before.len(), 400);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = all_pods(&cluster).await;
    assert_eq!(uids(&after), uids(&before));
    let phases = |pods: &[Value]| {
        pods.iter()
            .map(|p| p["status"]["phase"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(phases(&after), phases(&before));
    // Every Deployment reports its rollout as it was.
    let deployments = cluster.json(&["get", "deployments", "-A"]).await;
    for d in deployments["items"].as_array().unwrap() {
        assert_eq!(
            d["status"]["observedGeneration"], d["metadata"]["generation"],
            "{}",
            d["metadata"]["name"]
        );
        assert_eq!(
            d["status"]["updatedReplicas"], d["spec"]["replicas"],
            "{}",
            d["metadata"]["name"]
        );
    }
    cluster.sim.shutdown().await;
}

/// The ControllerRevisions the workload `owner` controls, oldest revision first.
async fn revisions_of(cluster: &Cluster, owner: &str) -> Vec<Value> {
    let list = cluster
        .json(&[
            "get",
            "controllerrevisions",
            "-n",
            "shop",
            "-l",
            &format!("app={owner}"),
        ])
        .await;
    let mut revisions: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            let owner_ref = &r["metadata"]["ownerReferences"][0];
            owner_ref["name"] == owner && owner_ref["controller"] == true
        })
        .cloned()
        .collect();
    revisions.sort_by_key(|r| r["revision"].as_i64());
    revisions
}

fn hash_label(obj: &Value) -> &str {
    obj["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or_default()
}

async fn rolled_out(cluster: &Cluster, workload: &str) {
    let args = ["rollout", "status", workload, "-n", "shop", "--timeout=60s"];
    cluster.ok(&args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_lists_a_controller_revision_per_template() {
    let cluster = Cluster::start(vec![
        workload(
            "StatefulSet",
            "db",
            2,
            json!({"serviceName": "db", "updateStrategy": {"type": "RollingUpdate"}}),
        ),
        workload(
            "DaemonSet",
            "agent",
            0,
            json!({"updateStrategy": {"type": "RollingUpdate"}}),
        ),
    ])
    .await;
    rolled_out(&cluster, "statefulset/db").await;
    rolled_out(&cluster, "daemonset/agent").await;
    let first = revisions_of(&cluster, "db").await;
    assert_eq!(first.len(), 1, "{first:?}");
    let sts = cluster
        .json(&["get", "statefulset", "db", "-n", "shop"])
        .await;
    assert_eq!(
        first[0]["metadata"]["name"],
        sts["status"]["updateRevision"]
    );
    assert_eq!(first[0]["revision"], 1);
    assert_eq!(first[0]["metadata"]["labels"]["app"], "db");
    assert_eq!(
        format!("db-{}", hash_label(&first[0])),
        first[0]["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        first[0]["metadata"]["ownerReferences"][0]["kind"],
        "StatefulSet"
    );
    let agent_first = revisions_of(&cluster, "agent").await;
    assert_eq!(agent_first.len(), 1, "{agent_first:?}");
    let agent_pods = cluster.pods("app=agent").await;
    assert!(
        agent_pods
            .iter()
            .all(|p| hash_label(p) == hash_label(&agent_first[0]))
    );

    for workload in ["statefulset/db", "daemonset/agent"] {
        cluster
            .ok(&["rollout", "restart", workload, "-n", "shop"])
            .await;
        rolled_out(&cluster, workload).await;
    }
    let after = revisions_of(&cluster, "db").await;
    assert_eq!(after.len(), 2, "exactly one new revision: {after:?}");
    assert_eq!(after[0], first[0]);
    assert_eq!(after[1]["revision"], 2);
    let sts = cluster
        .json(&["get", "statefulset", "db", "-n", "shop"])
        .await;
    assert_eq!(
        after[1]["metadata"]["name"],
        sts["status"]["updateRevision"]
    );
    assert_eq!(
        sts["status"]["currentRevision"],
        sts["status"]["updateRevision"]
    );
    let db_pods = cluster.pods("app=db").await;
    assert!(
        db_pods
            .iter()
            .all(|p| hash_label(p) == sts["status"]["updateRevision"])
    );
    let agent_after = revisions_of(&cluster, "agent").await;
    assert_eq!(
        agent_after.len(),
        2,
        "exactly one new revision: {agent_after:?}"
    );
    assert_eq!(agent_after[1]["revision"], 2);

    for workload in ["statefulset/db", "daemonset/agent"] {
        let history = cluster
            .ok(&["rollout", "history", workload, "-n", "shop"])
            .await;
        let revisions: Vec<&str> = history
            .lines()
            .skip_while(|l| !l.starts_with("REVISION"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(revisions, ["1", "2"], "{history}");
        let second = cluster
            .ok(&["rollout", "history", workload, "-n", "shop", "--revision=2"])
            .await;
        assert!(
            second.contains("kubectl.kubernetes.io/restartedAt"),
            "{second}"
        );
    }
    cluster.sim.shutdown().await;
}
