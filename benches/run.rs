//! `run --concurrency C` keeps C rollouts in flight (DESIGN §2.7): W workloads whose rollout
//! takes T finish in about ceil(W / C) × T.
//!
//! The state is `kube-sim generate`'s cluster cut down to its control plane and W single-replica
//! Deployments of customer namespaces whose proxies are stale (so one phase, and each rollout is
//! one new pod that takes the sim's `pod_start` = T to become Ready). For C = 1, 2, 4 a fresh sim
//! (in this process, controllers on) is started and `istio-proxy-reset run` is measured whole.
//! `IPR_BENCH_RUN_WORKLOADS` (8) and `IPR_BENCH_POD_START_MS` (1000) change W and T.
//! Run: `cargo bench --bench run`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Measured, env_list, env_number, machine, measure, secs, verdict};
use kube_sim::SimConfig;
use serde_json::{Value, json};

const SEED: u64 = 7;

fn controller_uid(item: &Value) -> Option<&str> {
    item["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

fn proxy_image(pod: &Value) -> Option<&str> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "istio-proxy")?["image"]
        .as_str()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The control plane and `workloads` single-replica customer Deployments with a stale proxy.
fn state(workloads: usize) -> Value {
    let full = kube_sim::generate::generate(2_000, SEED);
    let items = full["items"].as_array().expect("items");
    let is = |i: &Value, kind: &str| i["kind"] == kind;
    let namespace = |i: &Value| {
        i["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let uid = |i: &Value| i["metadata"]["uid"].as_str().unwrap_or("").to_string();

    // Pods by the uid of their controller.
    let pods_of = |owner: &str| -> Vec<&Value> {
        items
            .iter()
            .filter(|i| is(i, "Pod") && controller_uid(i) == Some(owner))
            .collect()
    };
    let mut chosen: HashSet<String> = HashSet::new();
    for deployment in items.iter().filter(|i| is(i, "Deployment")) {
        if chosen.len() == workloads {
            break;
        }
        let ns = namespace(deployment);
        if ns == "kyma-system" || ns == "istio-system" || deployment["spec"]["replicas"] != 1 {
            continue;
        }
        let sets: Vec<&Value> = items
            .iter()
            .filter(|i| is(i, "ReplicaSet") && controller_uid(i) == Some(&uid(deployment)))
            .collect();
        let pods: Vec<&Value> = sets.iter().flat_map(|rs| pods_of(&uid(rs))).collect();
        let stale = pods.len() == 1
            && pods.iter().all(|p| {
                ready(p)
                    && proxy_image(p).is_some_and(|image| {
                        !image.contains(&format!(":{}", kube_sim::generate::CURRENT_VERSION))
                    })
            });
        if stale {
            chosen.insert(uid(deployment));
        }
    }
    assert_eq!(
        chosen.len(),
        workloads,
        "the generated cluster has too few single-replica stale Deployments"
    );
    let sets: HashSet<String> = items
        .iter()
        .filter(|i| is(i, "ReplicaSet") && controller_uid(i).is_some_and(|u| chosen.contains(u)))
        .map(uid)
        .collect();
    let istiod =
        |i: &Value| namespace(i) == "istio-system" && i["metadata"]["labels"]["app"] == "istiod";
    let kept: Vec<Value> = items
        .iter()
        .filter(|i| {
            is(i, "Namespace")
                || is(i, "Node")
                || (is(i, "ConfigMap") && namespace(i) == "istio-system")
                || istiod(i)
                || chosen.contains(&uid(i))
                || sets.contains(&uid(i))
                || (is(i, "Pod") && controller_uid(i).is_some_and(|u| sets.contains(u)))
        })
        .cloned()
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": kept})
}

async fn trial(state: &Value, pod_start: Duration, concurrency: usize) -> (Measured, Value) {
    let sim = kube_sim::start(SimConfig {
        state: state.clone(),
        pod_start,
        ..SimConfig::default()
    })
    .await
    .expect("kube-sim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let report = dir.path().join("report.json");
    let c = concurrency.to_string();
    let args = [
        "run",
        "--kubeconfig",
        kubeconfig.to_str().expect("utf-8 path"),
        "--concurrency",
        &c,
        "--rollout-timeout",
        "5m",
        "--format",
        "json",
    ];
    let tool = common::tool();
    let measured = tokio::task::block_in_place(|| measure(&tool, &args, Some(&report), dir.path()));
    let report: Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap_or_default()).unwrap_or(Value::Null);
    sim.shutdown().await;
    (measured, report)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench run`");
        return;
    }
    let workloads = env_number("IPR_BENCH_RUN_WORKLOADS", 8usize);
    let pod_start = Duration::from_millis(env_number("IPR_BENCH_POD_START_MS", 1_000u64));
    let concurrencies = env_list("IPR_BENCH_CONCURRENCY", &[1, 2, 4]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!("# run: rollouts in flight");
    println!("machine: {}", machine());
    println!(
        "W = {workloads} single-replica Deployments, T = {} ms (pod start in kube-sim)\n",
        pod_start.as_millis()
    );
    let state = state(workloads);
    println!("| C | ceil(W / C) × T | run wall time | ÷ ceil(W / C) × T | completed |");
    println!("|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for &c in &concurrencies {
        let (measured, report) = runtime.block_on(trial(&state, pod_start, c));
        let completed = report["workloads"].as_array().map_or(0, |w| {
            w.iter().filter(|w| w["status"] == "completed").count()
        });
        let ideal = pod_start * workloads.div_ceil(c) as u32;
        let ratio = measured.wall.as_secs_f64() / ideal.as_secs_f64();
        println!(
            "| {c} | {} s | {} s | {ratio:.2}x | {completed}/{workloads} |",
            secs(ideal),
            secs(measured.wall)
        );
        results.push((c, measured, ratio, completed));
    }
    println!();
    for (c, measured, ratio, completed) in &results {
        let speedup = results.first().map_or(1.0, |(_, first, _, _)| {
            first.wall.as_secs_f64() / measured.wall.as_secs_f64()
        });
        println!(
            "C = {c}: {ratio:.2}x of ceil(W / C) × T, {speedup:.2}x faster than C = {}; all completed: {}",
            results[0].0,
            verdict(*completed == workloads)
        );
    }
}
