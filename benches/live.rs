//! Live `plan` against kube-sim with 20 ms of latency per request (DESIGN §6): the tool must
//! cost a constant number of paginated lists (no per-pod or per-owner requests), and its wall
//! time must stay within 1.5x of pages × latency.
//!
//! The sim runs in this process (`kube_sim::start`, controllers off: nothing changes) with the
//! state of `kube-sim generate --pods 5000`; the tool is the release binary, run as a process
//! and measured whole, best of `IPR_BENCH_REPS` (3). The same plan against a sim without latency
//! shows what the pages themselves cost (the sim serialising them, TLS, the tool parsing them).
//! `IPR_BENCH_LIVE_PODS` and `IPR_BENCH_LATENCY_MS` change the size and the latency.
//! Run: `cargo bench --bench live`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Measured, best_of, env_number, machine, measure, secs, verdict};
use kube_sim::{RequestRecord, SimConfig};
use serde_json::Value;

const SEED: u64 = 7;
const PAGE: usize = 500;

/// The lists the inventory must make for this state, and how many pages each takes.
fn expected_pages(state: &Value, istio_namespace: &str) -> BTreeMap<String, usize> {
    let items = state["items"].as_array().expect("items");
    let count = |kind: &str| items.iter().filter(|i| i["kind"] == kind).count();
    let pages = |n: usize| n.div_ceil(PAGE).max(1);
    let mut lists = BTreeMap::new();
    // The sim adds default, kube-system and kube-public: still one page.
    lists.insert("/api/v1/namespaces".into(), pages(count("Namespace") + 3));
    for (kind, path) in [
        ("ReplicaSet", "/apis/apps/v1/replicasets"),
        ("Deployment", "/apis/apps/v1/deployments"),
        ("StatefulSet", "/apis/apps/v1/statefulsets"),
        ("DaemonSet", "/apis/apps/v1/daemonsets"),
        ("ReplicationController", "/api/v1/replicationcontrollers"),
        ("Job", "/apis/batch/v1/jobs"),
        ("CronJob", "/apis/batch/v1/cronjobs"),
        ("Pod", "/api/v1/pods"),
    ] {
        lists.insert(path.into(), pages(count(kind)));
    }
    let names_rollout = items.iter().any(|i| {
        i["kind"] == "ReplicaSet"
            && i["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "Rollout"))
    });
    if names_rollout {
        lists.insert(
            "/apis/argoproj.io/v1alpha1/rollouts".into(),
            pages(count("Rollout")),
        );
    }
    let configmaps = items
        .iter()
        .filter(|i| i["kind"] == "ConfigMap" && i["metadata"]["namespace"] == istio_namespace)
        .count();
    lists.insert(
        format!("/api/v1/namespaces/{istio_namespace}/configmaps"),
        pages(configmaps),
    );
    lists
}

struct Trial {
    run: Measured,
    requests: Vec<RequestRecord>,
}

async fn trial(state: &Value, latency: Duration, reps: usize) -> Trial {
    let sim = kube_sim::start(SimConfig {
        state: state.clone(),
        latency,
        controllers: false,
        ..SimConfig::default()
    })
    .await
    .expect("kube-sim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path").to_string();
    let scratch = dir.path().to_path_buf();
    let mut requests = Vec::new();
    let mut all_ok = true;
    let tool = common::tool();
    let run = {
        let sim = &sim;
        let requests = &mut requests;
        let all_ok = &mut all_ok;
        // The measured process blocks this thread; the sim serves from the runtime's others.
        tokio::task::block_in_place(|| {
            best_of(reps, || {
                sim.clear_requests();
                let m = measure(
                    &tool,
                    &["plan", "--kubeconfig", &kubeconfig, "--format", "json"],
                    None,
                    &scratch,
                );
                *all_ok &= m.success;
                *requests = sim.requests();
                m
            })
        })
    };
    assert!(all_ok, "the live plan failed");
    sim.shutdown().await;
    Trial { run, requests }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench live`");
        return;
    }
    let pods = env_number("IPR_BENCH_LIVE_PODS", 5_000usize);
    let latency = Duration::from_millis(env_number("IPR_BENCH_LATENCY_MS", 20u64));
    let reps = env_number("IPR_BENCH_REPS", 3usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!("# live plan against kube-sim: requests and wall time");
    println!("machine: {}", machine());
    println!(
        "{pods} pods (kube-sim generate, seed {SEED}), {} ms per request, best of {reps} runs\n",
        latency.as_millis()
    );
    let state = kube_sim::generate::generate(pods, SEED);
    let expected = expected_pages(&state, "istio-system");
    let pages: usize = expected.values().sum();

    let (slow, fast) = runtime.block_on(async {
        let slow = trial(&state, latency, reps).await;
        let fast = trial(&state, Duration::ZERO, reps).await;
        (slow, fast)
    });

    let tool_requests: Vec<&RequestRecord> = slow
        .requests
        .iter()
        .filter(|r| !r.user_agent.starts_with("kubectl"))
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &tool_requests {
        *seen.entry(r.path.clone()).or_default() += 1;
    }
    let lists = tool_requests
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains(&format!("limit={PAGE}")))
        .count();
    let others: Vec<String> = tool_requests
        .iter()
        .filter(|r| !(r.method == "GET" && r.query.contains(&format!("limit={PAGE}"))))
        .map(|r| r.line())
        .collect();

    println!("| list | pages expected | requests made |");
    println!("|---|---:|---:|");
    let mut paths: Vec<&String> = expected.keys().chain(seen.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        println!(
            "| `{path}` | {} | {} |",
            expected.get(path).copied().unwrap_or(0),
            seen.get(path).copied().unwrap_or(0)
        );
    }
    let bound = latency.mul_f64(pages as f64);
    let ratio = slow.run.wall.as_secs_f64() / bound.as_secs_f64();
    println!();
    println!(
        "| pods | pages | requests | latency | pages × latency | plan wall time | ÷ pages × latency | peak RSS | same plan, no latency |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {pods} | {pages} | {} | {} ms | {} s | {} s | {ratio:.2}x | {:.1} MiB | {} s |",
        tool_requests.len(),
        latency.as_millis(),
        secs(bound),
        secs(slow.run.wall),
        slow.run.rss_mib(),
        secs(fast.run.wall),
    );
    println!();
    println!(
        "target: requests = pages ({} = {pages}, {} not a paginated list{}) {}",
        tool_requests.len(),
        others.len(),
        if others.is_empty() {
            String::new()
        } else {
            format!(": {others:?}")
        },
        verdict(tool_requests.len() == pages && lists == pages)
    );
    println!(
        "target: wall time within 1.5x of pages × latency: {ratio:.2}x {}",
        verdict(ratio <= 1.5)
    );
    let added = slow.run.wall.saturating_sub(fast.run.wall);
    println!(
        "        what the latency added (wall time − the same plan without latency): {} s = {:.2}x pages × latency",
        secs(added),
        added.as_secs_f64() / bound.as_secs_f64()
    );
    drop(fast.requests);
}
