//! Live `plan` against the upstream control plane (DESIGN §6): no slower than
//! `kubectl get <the same kinds> -A -o json --chunk-size=500` listing the same objects, in at most
//! a tenth of its memory, and requests = pages.
//!
//! For each size (`IPR_BENCH_UPSTREAM_PODS`, default 1000,5000) a fresh control plane
//! (`kube_sim::upstream::start`) gets Istio at the old version and Deployments of 10 replicas in
//! namespaces of 200 pods, every pod injected by the webhook and Running on kwok's Nodes; then the
//! injector is upgraded. Then the tool and kubectl run side by side, `IPR_BENCH_REPS` (3) times
//! each, alternating; wall time is the best run, memory the highest peak (`/usr/bin/time`).
//! Run: `cargo bench --bench upstream` (builds the components first if `build.sh` has not).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Measured, env_list, env_number, machine, measure, secs, verdict};
use kube_sim::upstream::{Upstream, UpstreamConfig};

const HUB: &str = "europe-docker.pkg.dev/kyma-project/prod/external/istio";
const KINDS: &str = "pods,replicasets,deployments,statefulsets,daemonsets,replicationcontrollers,jobs,cronjobs,namespaces";

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn apply(kubeconfig: &Path, dir: &Path, manifest: &str) {
    let path = dir.join("manifest.yaml");
    std::fs::write(&path, manifest).unwrap();
    // A namespace's default ServiceAccount comes a moment after the namespace: apply again.
    for _ in 0..100 {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["apply", "-f", path.to_str().unwrap()])
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("kubectl apply did not succeed");
}

fn injector(version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio-sidecar-injector, namespace: istio-system}}\n\
         data:\n  values: '{{\"global\": {{\"hub\": \"{HUB}\", \"tag\": \"{version}-distroless\"}}}}'\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: istiod, namespace: istio-system, labels: {{app: istiod}}}}\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: istiod}}}}\n  template:\n    metadata: {{labels: {{app: istiod}}}}\n\
         \x20   spec:\n      containers: [{{name: discovery, image: {HUB}/pilot:{version}-distroless}}]\n"
    )
}

/// Namespaces of 200 pods, Deployments of 10 replicas, until `pods`.
fn workloads(pods: usize) -> String {
    let mut manifest = String::new();
    for n in 0..pods.div_ceil(200) {
        manifest += &format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: shop-{n}, labels: {{istio-injection: enabled}}}}\n"
        );
        for d in 0..(pods - n * 200).min(200).div_ceil(10) {
            manifest += &format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{d}, namespace: shop-{n}}}\n\
                 spec:\n  replicas: 10\n  selector: {{matchLabels: {{app: app-{d}}}}}\n  template:\n    metadata: {{labels: {{app: app-{d}}}}}\n\
                 \x20   spec:\n      containers: [{{name: app, image: shop/app:1.0.0}}]\n"
            );
        }
    }
    manifest
}

fn running_pods(kubeconfig: &Path) -> usize {
    kubectl(
        kubeconfig,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
            "--chunk-size=500",
        ],
    )
    .lines()
    .count()
}

/// Pages the tool listed in its last run (the audit log after `offset`): (requests, lists).
fn tool_requests(upstream: &Upstream, offset: u64) -> (usize, usize) {
    let log = std::fs::read(upstream.audit_log()).unwrap();
    let events: Vec<serde_json::Value> = log[offset as usize..]
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .filter(|e: &serde_json::Value| {
            e["user"]["username"] == "kube-sim:admin"
                && !e["userAgent"].as_str().unwrap_or("").starts_with("kubectl")
        })
        .collect();
    let lists = events.iter().filter(|e| e["verb"] == "list").count();
    (events.len(), lists)
}

fn bench(pods: usize, reps: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bin = kube_sim::upstream::bin_dir().expect("the upstream binaries");
    let mut config = UpstreamConfig::new(bin);
    config.nodes = 5;
    let upstream = runtime
        .block_on(kube_sim::upstream::start(config))
        .expect("a control plane");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    upstream.write_kubeconfig(&kubeconfig).unwrap();

    let started = Instant::now();
    apply(&kubeconfig, dir.path(), &injector("1.23.2"));
    apply(&kubeconfig, dir.path(), &workloads(pods));
    let deadline = Instant::now() + Duration::from_secs(1800);
    while running_pods(&kubeconfig) < pods + 1 {
        assert!(Instant::now() < deadline, "the pods did not all start");
        std::thread::sleep(Duration::from_secs(2));
    }
    apply(&kubeconfig, dir.path(), &injector("1.24.1"));
    kubectl(
        &kubeconfig,
        &[
            "rollout",
            "status",
            "-n",
            "istio-system",
            "deployment/istiod",
            "--timeout=120s",
        ],
    );
    let built = started.elapsed();

    let scratch = dir.path();
    let kc = kubeconfig.to_str().unwrap();
    let (mut tool, mut list) = (Vec::new(), Vec::new());
    let mut requests = (0, 0);
    for _ in 0..reps {
        let offset = std::fs::metadata(upstream.audit_log()).unwrap().len();
        tool.push(measure(
            &common::tool(),
            &["plan", "--kubeconfig", kc, "--format", "json"],
            None,
            scratch,
        ));
        requests = tool_requests(&upstream, offset);
        let kubectl = Path::new("kubectl");
        list.push(measure(
            kubectl,
            &[
                "--kubeconfig",
                kc,
                "get",
                KINDS,
                "-A",
                "-o",
                "json",
                "--chunk-size=500",
            ],
            None,
            scratch,
        ));
    }
    assert!(tool.iter().chain(&list).all(|m| m.success), "a run failed");
    let best = |runs: &[Measured]| runs.iter().map(|m| m.wall).min().unwrap();
    let peak = |runs: &[Measured]| runs.iter().map(|m| m.rss_mib()).fold(0.0, f64::max);
    let (tool_wall, list_wall) = (best(&tool), best(&list));
    let (tool_mem, list_mem) = (peak(&tool), peak(&list));
    let all = |runs: &[Measured]| {
        runs.iter()
            .map(|m| secs(m.wall))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| {pods} | {} s | {} s ({}) | {:.1} MiB | {} s ({}) | {:.1} MiB | {:.2}x {} | {:.1}x {} | {} = {} pages |",
        built.as_secs(),
        secs(tool_wall),
        all(&tool),
        tool_mem,
        secs(list_wall),
        all(&list),
        list_mem,
        tool_wall.as_secs_f64() / list_wall.as_secs_f64(),
        verdict(tool_wall <= list_wall),
        list_mem / tool_mem,
        verdict(list_mem >= 10.0 * tool_mem),
        requests.0,
        requests.1,
    );
    runtime.block_on(upstream.shutdown());
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench upstream`");
        return;
    }
    let sizes = env_list("IPR_BENCH_UPSTREAM_PODS", &[1000, 5000]);
    let reps = env_number("IPR_BENCH_REPS", 3);
    println!("machine: {}", machine());
    println!(
        "| pods | building the state | plan (runs) | plan peak RSS | kubectl get (runs) | kubectl peak RSS | plan ÷ kubectl | kubectl ÷ plan memory | requests = pages |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for pods in sizes {
        bench(pods, reps);
    }
}
