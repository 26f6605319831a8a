//! `plan --snapshot` on clusters where every pod is a workload of its own (DESIGN §6): pods
//! without a controller (`bare`), and pods each owned by a custom resource the inventory never
//! lists (`custom`: a Tekton TaskRun or an Argo Workflow per pod). Every pod carries a stale
//! proxy, so each is a drifted pod and its own `manual` workload: the plan and the report are
//! as large as they get per pod.
//!
//! For each shape (`IPR_BENCH_OWNER_SHAPES`, default bare,custom) and size
//! (`IPR_BENCH_OWNER_PODS`, default 10000,50000) a snapshot is written into a temporary
//! directory and planned, best of `IPR_BENCH_REPS` (3): wall time, and peak RSS from
//! `/usr/bin/time`. The targets: 50,000 pods within 64 MB, and time that grows with the pods,
//! not with their square (the time per pod at the largest size within twice that at the
//! smallest). Run: `cargo bench --bench owners`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{best_of, env_list, env_number, machine, measure, secs, verdict};

const PODS_PER_NAMESPACE: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Bare,
    Custom,
}

impl Shape {
    fn parse(text: &str) -> Shape {
        match text.trim() {
            "bare" => Shape::Bare,
            "custom" => Shape::Custom,
            other => panic!("IPR_BENCH_OWNER_SHAPES: bare or custom, not {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Shape::Bare => "bare",
            Shape::Custom => "custom",
        }
    }
}

/// One pod of about 1.3 KB of JSON, Running and Ready, with a stale proxy.
fn pod(shape: Shape, namespace: &str, index: usize) -> serde_json::Value {
    let name = format!("task-{index:06}-pod");
    let mut metadata = serde_json::json!({
        "name": name,
        "namespace": namespace,
        "uid": format!("00000000-0000-0000-0000-{index:012}"),
        "labels": {"app": "task", "security.istio.io/tlsMode": "istio"},
        "annotations": {
            "sidecar.istio.io/status": r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"revision":"default"}"#
        }
    });
    if shape == Shape::Custom {
        metadata["ownerReferences"] = serde_json::json!([{
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": format!("task-{index:06}"),
            "uid": format!("10000000-0000-0000-0000-{index:012}"), "controller": true,
            "blockOwnerDeletion": true
        }]);
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [
                {"name": "step", "image": "registry.example.com/build/step:2.1.0",
                 "args": ["--run", "the-task", "--workspace", "/workspace"],
                 "env": [{"name": "HOME", "value": "/tekton/home"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23.2",
                 "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                 "resources": {"requests": {"cpu": "10m", "memory": "40Mi"},
                               "limits": {"cpu": "2", "memory": "1Gi"}}}
            ],
            "initContainers": [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.23.2"}],
            "nodeName": format!("node-{}", index % 7),
            "serviceAccountName": "default"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"},
                           {"type": "Ready", "status": "True"},
                           {"type": "ContainersReady", "status": "True"},
                           {"type": "PodScheduled", "status": "True"}],
            "podIP": format!("10.{}.{}.{}", index >> 16 & 255, index >> 8 & 255, index & 255),
            "startTime": "2026-11-26T10:00:00Z"
        }
    })
}

/// Writes a `kind: List` of `pods` pods of `shape` (and their Namespaces) to `dir`.
fn write_snapshot(dir: &Path, shape: Shape, pods: usize) -> PathBuf {
    let path = dir.join(format!("owners-{}-{pods}.json", shape.name()));
    let file = std::fs::File::create(&path).expect("snapshot file");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(br#"{"apiVersion":"v1","kind":"List","items":["#)
        .unwrap();
    let namespaces = pods.div_ceil(PODS_PER_NAMESPACE);
    for n in 0..namespaces {
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("ci-{n:03}"), "labels": {"istio-injection": "enabled"}}});
        if n > 0 {
            out.write_all(b",\n").unwrap();
        }
        serde_json::to_writer(&mut out, &namespace).unwrap();
    }
    for index in 0..pods {
        out.write_all(b",\n").unwrap();
        let namespace = format!("ci-{:03}", index / PODS_PER_NAMESPACE);
        serde_json::to_writer(&mut out, &pod(shape, &namespace, index)).unwrap();
    }
    out.write_all(b"\n]}\n").unwrap();
    out.flush().unwrap();
    path
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: nothing to measure then.
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench owners`");
        return;
    }
    let sizes = env_list("IPR_BENCH_OWNER_PODS", &[10_000, 50_000]);
    let shapes: Vec<Shape> = std::env::var("IPR_BENCH_OWNER_SHAPES")
        .unwrap_or_else(|_| "bare,custom".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Shape::parse)
        .collect();
    let reps = env_number("IPR_BENCH_REPS", 3usize);
    let tool = common::tool();
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = dir.path();

    println!("# plan --snapshot with a workload per pod");
    println!("machine: {}", machine());
    println!("best of {reps} runs\n");
    println!(
        "| shape | pods | JSON | plan --snapshot | per 1,000 pods | peak RSS | within 64 MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for &shape in &shapes {
        let mut first_per_pod: Option<f64> = None;
        for &pods in &sizes {
            let file = write_snapshot(scratch, shape, pods);
            let bytes = std::fs::metadata(&file).expect("snapshot").len();
            let file_str = file.to_str().expect("utf-8 path");
            let run = best_of(reps, || {
                measure(
                    &tool,
                    &[
                        "plan",
                        "--snapshot",
                        file_str,
                        "--expected-version",
                        common::EXPECTED,
                        "--format",
                        "json",
                    ],
                    None,
                    scratch,
                )
            });
            assert!(run.success, "plan failed on {pods} {} pods", shape.name());
            std::fs::remove_file(&file).ok();
            let per_pod = run.wall.as_secs_f64() / pods as f64;
            let linear = first_per_pod.is_none_or(|first| per_pod <= 2.0 * first);
            first_per_pod.get_or_insert(per_pod);
            println!(
                "| {} | {pods} | {:.0} MB | {} s{} | {:.1} ms | {:.1} MiB | {} |",
                shape.name(),
                bytes as f64 / 1e6,
                secs(run.wall),
                if linear {
                    ""
                } else {
                    " (grows faster than the pods)"
                },
                per_pod * 1e6,
                run.rss_mib(),
                verdict(run.rss_kib <= 64 * 1024),
            );
        }
    }
}
