//! `run` and live `plan` on kube-sim alone: the real binary against the example state (loaded
//! with its status, which only kube-sim takes), observed with kubectl and the simulator's
//! request log. What runs on both backends is in `tests/upgrade.rs`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, edit_item, example_state, pod_uids, workload};

const NEW: &str =
    "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless";

/// Every pod's proxy image in a namespace, by pod name.
fn proxies(cluster: &Cluster, namespace: &str) -> Vec<(String, String)> {
    let pods = cluster.kubectl_json(&["get", "pods", "-n", namespace]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| {
            let containers = p["spec"]["containers"].as_array().into_iter().flatten();
            let inits = p["spec"]["initContainers"].as_array().into_iter().flatten();
            containers
                .chain(inits)
                .find(|c| c["name"] == "istio-proxy")
                .map(|c| {
                    (
                        p["metadata"]["name"].as_str().unwrap().to_string(),
                        c["image"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_renews_every_restartable_proxy_and_leaves_the_rest() {
    let cluster = Cluster::start(example_state(), |_| {}).await;
    let manual_before = pod_uids(&cluster, "batch");
    let shop_before = pod_uids(&cluster, "shop");
    let report_file = cluster.dir.path().join("report.json");

    let (code, report, stderr) = cluster
        .run(&[
            "--report-file",
            report_file.to_str().unwrap(),
            "--report-configmap",
            "kyma-system/istio-proxy-reset-report",
        ])
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["mode"], "run");
    for w in report["workloads"].as_array().unwrap() {
        if w["action"] == "manual" {
            assert_eq!(w["status"], "skipped", "{w}");
        } else {
            assert_eq!(w["status"], "completed", "{w}");
        }
    }
    assert_eq!(report["summary"]["restarted"], 15);
    assert_eq!(report["summary"]["failed"], 0);

    // The restartable workloads now run the new proxy, every pod of them.
    for (namespace, prefixes) in [
        (
            "kyma-system",
            vec![
                "api-gateway-controller-manager",
                "eventing-manager",
                "telemetry-self-monitor",
            ],
        ),
        ("monitoring", vec!["log-agent", "node-probe"]),
        ("payments", vec!["billing"]),
        (
            "shop",
            vec![
                "cart",
                "checkout",
                "importer",
                "mailer",
                "newsletter",
                "orders",
                "redis",
                "search",
            ],
        ),
    ] {
        for (pod, image) in proxies(&cluster, namespace) {
            if prefixes.iter().any(|p| pod.starts_with(p)) {
                assert_eq!(image, NEW, "{namespace}/{pod}");
            }
        }
    }
    // Drift beyond the version is gone too: the missing proxy added (checked above), the
    // unwanted one removed, the annotated CPU request injected.
    let newsletter = proxies(&cluster, "shop");
    assert!(
        newsletter
            .iter()
            .any(|(pod, _)| pod.starts_with("newsletter-")),
        "{newsletter:?}"
    );
    assert_eq!(proxies(&cluster, "sandbox"), []);
    let sandbox = cluster.kubectl_json(&["get", "pods", "-n", "sandbox"]);
    let running = sandbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .count();
    assert_eq!(
        running, 1,
        "the playground runs on, without a proxy: {sandbox:#}"
    );
    let gateway = cluster.kubectl_json(&[
        "get",
        "pods",
        "-n",
        "kyma-system",
        "-l",
        "app=api-gateway-controller-manager",
    ]);
    let live: Vec<&Value> = gateway["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "{gateway:#}");
    let proxy = live[0]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("the gateway keeps its proxy");
    assert_eq!(proxy["resources"]["requests"]["cpu"], "250m", "{proxy:#}");

    // Manual items are untouched: same pods, same uids.
    assert_eq!(pod_uids(&cluster, "batch"), manual_before);
    let shop_after = pod_uids(&cluster, "shop");
    for kept in ["debug-shell", "nightly-sync-wf-2931"] {
        assert_eq!(shop_after.get(kept), shop_before.get(kept), "{kept}");
    }
    let catalog = cluster.kubectl_json(&["get", "deployment", "-n", "shop", "catalog"]);
    assert_eq!(
        catalog["metadata"]["generation"], 1,
        "a paused Deployment is not patched"
    );

    // An OnDelete StatefulSet is evicted highest ordinal first.
    let evictions: Vec<String> = cluster
        .workload_writes()
        .into_iter()
        .filter(|r| r.path.ends_with("/eviction") && r.path.contains("/pods/redis-"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        evictions,
        ["2", "1", "0"].map(|o| format!("/api/v1/namespaces/shop/pods/redis-{o}/eviction"))
    );

    // The report, in the file and in the ConfigMap, and Events on the workloads.
    let saved: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(saved, report);
    let configmap = cluster.kubectl_json(&[
        "get",
        "configmap",
        "-n",
        "kyma-system",
        "istio-proxy-reset-report",
    ]);
    let stored: Value =
        serde_json::from_str(configmap["data"]["report.json"].as_str().unwrap()).unwrap();
    assert_eq!(stored["summary"], report["summary"]);
    assert!(
        configmap["data"]["report.md"]
            .as_str()
            .unwrap()
            .contains("| completed |")
    );
    let events = cluster.kubectl_json(&["get", "events", "-A"]);
    let reasons: Vec<(String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["involvedObject"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("ProxyRestarted".into(), "orders".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("ProxyManualActionRequired".into(), "catalog".into())),
        "{reasons:?}"
    );

    // A second run finds nothing to restart and restarts nothing.
    let writes = cluster.workload_writes().len();
    let events_before = events["items"].as_array().unwrap().len();
    let (code, again, stderr) = cluster.run(&[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        cluster.workload_writes().len(),
        writes,
        "the second run wrote to workloads"
    );
    assert!(
        again["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["action"] == "manual")
    );
    // Its Events about the same manual items count up instead of piling up.
    let events = cluster.kubectl_json(&["get", "events", "-A"]);
    assert_eq!(events["items"].as_array().unwrap().len(), events_before);
    let catalog = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["involvedObject"]["name"] == "catalog")
        .unwrap();
    assert_eq!(catalog["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_plan_never_writes_and_lists_a_constant_number_of_pages() {
    let cluster = Cluster::start(example_state(), |_| {}).await;
    let output = cluster.tool(&["plan", "--format", "json"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["mode"], "plan");
    assert_eq!(
        workload(&report, "Deployment", "shop", "orders")["status"],
        "planned"
    );
    let requests = cluster.tool_requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
    // namespaces, 7 owner kinds, rollouts (a ReplicaSet names one), istio configmaps, Istio's
    // webhook configurations, pods
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.query.contains("limit=500"))
        .collect();
    assert_eq!(lists.len(), 12, "{lists:?}");
    assert!(requests.iter().all(|r| !r.path.contains("/secrets")));

    let output = cluster
        .tool(&["plan", "--report-configmap", "kyma-system/x"])
        .await;
    assert_eq!(output.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_control_plane_the_run_reports_and_touches_nothing() {
    let cluster = Cluster::start(example_state(), |_| {}).await;
    let (code, report, stderr) = cluster
        .run(&[
            "--istio-namespace",
            "elsewhere",
            "--report-configmap",
            "kyma-system/istio-proxy-reset-report",
        ])
        .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no istiod"), "{stderr}");
    assert_eq!(report["controlPlane"]["gate"]["passed"], false);
    assert!(report["summary"]["proxies"].as_u64().unwrap() > 0);
    assert!(report["workloads"].as_array().unwrap().is_empty());
    assert!(
        cluster.workload_writes().is_empty(),
        "{:?}",
        cluster.workload_writes()
    );
    let events: Vec<_> = cluster
        .tool_requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path.contains("/events"))
        .collect();
    assert!(events.is_empty(), "{events:?}");
    let saved = cluster
        .object("v1", "ConfigMap", "kyma-system", "istio-proxy-reset-report")
        .expect("the report ConfigMap");
    let saved: Value =
        serde_json::from_str(saved["data"]["report.json"].as_str().unwrap()).unwrap();
    assert_eq!(saved["summary"], report["summary"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_plan_matches_the_live_plan() {
    let cluster = Cluster::start(example_state(), |_| {}).await;
    let output = cluster.tool(&["snapshot"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot: Value =
        serde_json::from_slice(&output.stdout).expect("the snapshot is one JSON document");
    assert_eq!(snapshot["kind"], "List");
    let items = snapshot["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["metadata"].get("managedFields").is_none())
    );
    assert!(items.iter().all(|i| i["kind"] != "Secret"));
    let file = cluster.dir.path().join("cluster.json");
    std::fs::write(&file, &output.stdout).unwrap();

    let live = cluster.tool(&["plan", "--format", "json"]).await;
    let offline = std::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"))
        .args([
            "plan",
            "--format",
            "json",
            "--snapshot",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let live: Value = serde_json::from_slice(&live.stdout).unwrap();
    let offline: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(live["workloads"], offline["workloads"]);
    assert_eq!(live["summary"], offline["summary"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_restarts_and_reports_without_waiting() {
    let cluster = Cluster::start(example_state(), |c| c.pod_start = Duration::from_secs(30)).await;
    let started = std::time::Instant::now();
    let (code, report, stderr) = cluster.run(&["--no-wait", "--namespace", "payments"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it did not wait for 30 s pods"
    );
    let billing = workload(&report, "Deployment", "payments", "billing");
    assert_eq!(billing["status"], "restarted");
    assert_eq!(report["summary"]["restarted"], 1);
    let deployment = cluster.kubectl_json(&["get", "deployment", "-n", "payments", "billing"]);
    assert_eq!(
        deployment["metadata"]["annotations"]["istio-proxy-reset.kyma-project.io/target-version"],
        "1.24.1"
    );
    assert!(deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyma_goes_first_and_concurrency_is_bounded() {
    let cluster = Cluster::start(example_state(), |c| {
        c.pod_start = Duration::from_millis(300)
    })
    .await;
    let output = cluster
        .tool(&[
            "run",
            "--format",
            "json",
            "--concurrency",
            "2",
            "--rollout-timeout",
            "60s",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    // One JSON log line per state change (stderr is not a terminal).
    let mut in_flight: Vec<(String, String)> = Vec::new();
    let mut most = 0;
    let mut customer_started = false;
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let workload = event["workload"].as_str().unwrap_or_default().to_string();
        match event["message"].as_str() {
            Some("started") => {
                let phase = event["phase"].as_str().unwrap().to_string();
                if phase == "customer" {
                    customer_started = true;
                    assert!(
                        in_flight.iter().all(|(_, p)| p == "customer"),
                        "a customer workload started while kyma ones were in flight: {in_flight:?}"
                    );
                } else {
                    assert!(
                        !customer_started,
                        "a kyma workload started after the customer phase"
                    );
                }
                in_flight.push((workload, phase));
                most = most.max(in_flight.len());
            }
            Some("finished") => in_flight.retain(|(w, _)| *w != workload),
            _ => {}
        }
    }
    assert!(customer_started);
    assert_eq!(
        most, 2,
        "at most --concurrency workloads at once, and that many when there is work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_waits_for_what_the_workload_had_not_more() {
    // A ReplicationController with a Ready pod and a crash-looping one, both on the old proxy:
    // after each eviction the run waits for as many Ready pods as there were, not for all.
    let mut state = example_state();
    let items = state["items"].as_array_mut().unwrap();
    let mut crashing = items
        .iter()
        .find(|i| i["kind"] == "Pod" && i["metadata"]["name"] == "mailer-8xk2d")
        .unwrap()
        .clone();
    crashing["metadata"]["name"] = json!("mailer-crash");
    crashing["metadata"]["uid"] = json!("00000000-0000-0000-0000-00000000c4a5");
    crashing["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    crashing["status"]["containerStatuses"][0]["ready"] = json!(false);
    crashing["status"]["containerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff"}});
    items.push(crashing);
    edit_item(
        &mut state,
        "ReplicationController",
        "shop",
        "mailer",
        |rc| {
            rc["spec"]["replicas"] = json!(2);
            rc["status"]["replicas"] = json!(2);
            rc["status"]["readyReplicas"] = json!(1);
        },
    );
    let cluster = Cluster::start(state, |_| {}).await;
    let (code, report, stderr) = cluster
        .run(&["--namespace", "shop", "--rollout-timeout", "20s"])
        .await;
    let mailer = workload(&report, "ReplicationController", "shop", "mailer");
    assert_eq!(mailer["pods"], json!(["mailer-8xk2d", "mailer-crash"]));
    assert_eq!(mailer["status"], "completed", "{mailer}");
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_come_back_without_a_proxy_fail_the_workload() {
    // Someone removed the namespace's injection label: restarted pods get no sidecar.
    let mut state = example_state();
    let namespace = state["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["kind"] == "Namespace" && i["metadata"]["name"] == "payments")
        .unwrap();
    namespace["metadata"]["labels"] = json!({});
    let cluster = Cluster::start(state, |_| {}).await;
    let (code, report, stderr) = cluster.run(&["--namespace", "payments"]).await;
    assert_eq!(code, Some(3), "{stderr}");
    let billing = workload(&report, "Deployment", "payments", "billing");
    assert_eq!(billing["status"], "failed");
    assert!(
        billing["reason"]
            .as_str()
            .unwrap()
            .contains("without an Istio proxy"),
        "{billing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_larger_than_a_configmap_is_trimmed_to_fit_and_kept() {
    // 6,000 pods and a gate that fails (no injector injects the version asked for): every
    // drifted pod and workload is in the report, more than a ConfigMap's 1 MiB.
    let cluster = Cluster::start(kube_sim::generate::generate(6_000, 11), |_| {}).await;
    let (code, report, stderr) = cluster
        .run(&[
            "--expected-version",
            "1.99.0",
            "--report-configmap",
            "kyma-system/istio-proxy-reset-report",
        ])
        .await;
    assert_eq!(
        code,
        Some(2),
        "the gate fails, and the report is kept: {stderr}"
    );
    let whole = serde_json::to_string(&report).unwrap().len();
    assert!(whole > 1_048_576, "the whole report is {whole} bytes");
    let saved = cluster
        .object("v1", "ConfigMap", "kyma-system", "istio-proxy-reset-report")
        .expect("the report ConfigMap, which kube-sim refuses over 1 MiB as kube-apiserver does");
    let data = saved["data"].as_object().unwrap();
    let size: usize = data.values().map(|v| v.as_str().unwrap().len()).sum();
    assert!(size <= 1_048_576, "{size} bytes");
    let kept: Value = serde_json::from_str(data["report.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        kept["summary"], report["summary"],
        "the summary counts everything"
    );
    let notes = kept["notes"].to_string();
    assert!(
        notes.contains("trimmed") || notes.contains("left out"),
        "{notes}"
    );
    // `report` reads the trimmed copy and recounts it to the same summary, without a warning.
    let file = cluster.dir.path().join("kept.json");
    std::fs::write(&file, data["report.json"].as_str().unwrap()).unwrap();
    let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"))
        .args(["report", file.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let recounted: Value = serde_json::from_slice(&rendered.stdout).unwrap();
    assert_eq!(recounted["summary"], report["summary"]);
    assert!(
        !String::from_utf8_lossy(&rendered.stderr).contains("in the file, but"),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_while_listing_still_writes_its_report() {
    // Slow answers, so that the listing is still going when the Job's deadline comes.
    let cluster = Cluster::start(kube_sim::generate::generate(1_800, 3), |c| {
        c.latency = Duration::from_millis(400);
    })
    .await;
    let child = cluster
        .command(&[
            "run",
            "--format",
            "json",
            "--report-configmap",
            "kyma-system/istio-proxy-reset-report",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let listing_pods = || {
        cluster
            .tool_requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/pods"))
    };
    support::await_condition(
        Duration::from_secs(30),
        "the pods being listed",
        listing_pods,
    )
    .await;
    let pid = child.id().expect("the run is running") as libc::pid_t;
    // SAFETY: a signal to the child this test started and still holds.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the run ends after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no report on stdout ({e}): {stderr}"));
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("stopped while listing the cluster"),
        "{notes}"
    );
    assert_eq!(report["controlPlane"]["gate"]["passed"], false);
    assert!(report["workloads"].as_array().unwrap().is_empty());
    assert!(
        cluster.workload_writes().is_empty(),
        "{:?}",
        cluster.workload_writes()
    );
    let saved = cluster
        .object("v1", "ConfigMap", "kyma-system", "istio-proxy-reset-report")
        .expect("the report ConfigMap");
    let saved: Value =
        serde_json::from_str(saved["data"]["report.json"].as_str().unwrap()).unwrap();
    assert_eq!(saved["notes"], report["notes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_statefulset_with_a_lower_pod_not_ready_is_left_to_a_person() {
    // redis is OnDelete and OrderedReady: with redis-0 not Ready, an evicted redis-2 would not
    // come back until redis-0 is. Nothing of it may be evicted.
    let mut state = example_state();
    edit_item(&mut state, "Pod", "shop", "redis-0", |pod| {
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    });
    edit_item(&mut state, "StatefulSet", "shop", "redis", |sts| {
        sts["status"]["readyReplicas"] = json!(2);
    });
    let cluster = Cluster::start(state, |_| {}).await;
    let before = pod_uids(&cluster, "shop");
    let (code, report, stderr) = cluster
        .run(&["--namespace", "shop", "--rollout-timeout", "20s"])
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    let redis = workload(&report, "StatefulSet", "shop", "redis");
    assert_eq!(redis["action"], "manual", "{redis}");
    assert_eq!(
        redis["runbook"],
        "runbooks/workloads-not-restartable.md#ondelete-statefulsets-with-a-pod-not-ready"
    );
    assert!(
        redis["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 lower ordinal (redis-0) not Running and Ready"),
        "{redis}"
    );
    assert!(
        !cluster
            .workload_writes()
            .iter()
            .any(|r| r.path.contains("/pods/redis-")),
        "nothing of redis is evicted"
    );
    let after = pod_uids(&cluster, "shop");
    for pod in ["redis-0", "redis-1", "redis-2"] {
        assert_eq!(after.get(pod), before.get(pod), "{pod}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_past_its_progress_deadline_fails_at_once() {
    // checkout's new pods never get Ready: Argo marks it Degraded once its progress deadline
    // passes, and the run must not wait out the rollout timeout for it.
    let never_ready = json!({"kube-sim.kyma-project.io/never-ready": "true"});
    let mut state = example_state();
    edit_item(&mut state, "Rollout", "shop", "checkout", |rollout| {
        rollout["spec"]["progressDeadlineSeconds"] = json!(2);
        rollout["spec"]["template"]["metadata"]["annotations"] = never_ready.clone();
    });
    edit_item(
        &mut state,
        "ReplicaSet",
        "shop",
        "checkout-7c079a06e",
        |rs| {
            rs["spec"]["template"]["metadata"]["annotations"] = never_ready.clone();
        },
    );
    let cluster = Cluster::start(state, |_| {}).await;
    let started = std::time::Instant::now();
    let (code, report, stderr) = cluster
        .run(&["--namespace", "shop", "--rollout-timeout", "60s"])
        .await;
    assert_eq!(code, Some(3), "{stderr}");
    let checkout = workload(&report, "Rollout", "shop", "checkout");
    assert_eq!(checkout["status"], "failed", "{checkout}");
    let reason = checkout["reason"].as_str().unwrap();
    assert!(
        reason.contains("Degraded") && reason.contains("ProgressDeadlineExceeded"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the run took {:?}: it waited for the rollout timeout",
        started.elapsed()
    );
}
