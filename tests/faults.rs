//! Faults: an API server that throttles, fails and drops connections, a run killed at random
//! points, and what must never leak (DESIGN §7).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::{Cluster, example_state, pod_uids};

/// The workloads whose restart is a PATCH, by request path, with how many PATCHes succeeded.
fn successful_patches(cluster: &Cluster) -> BTreeMap<String, usize> {
    let mut patches = BTreeMap::new();
    for request in cluster.workload_writes() {
        if request.method == "PATCH" && request.status == 200 {
            *patches.entry(request.path).or_default() += 1;
        }
    }
    patches
}

/// After everything: only manual workloads remain in a fresh plan.
async fn assert_only_manual_left(cluster: &Cluster) {
    let output = cluster.tool(&["plan", "--format", "json"]).await;
    assert_eq!(output.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let automatic: Vec<&Value> = plan["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] != "manual")
        .collect();
    assert!(automatic.is_empty(), "still to restart: {automatic:#?}");
    assert_eq!(plan["summary"]["manual"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_over_several_seeds_renews_everything_once() {
    for seed in [1_u64, 7, 42] {
        let cluster = Cluster::start(example_state(), |c| {
            c.chaos = Some((0.1, seed));
            c.latency = Duration::from_millis(20);
        })
        .await;
        let manual_pods = pod_uids(&cluster, "batch");
        let (code, report, stderr) = cluster.run(&["--rollout-timeout", "60s"]).await;
        assert_eq!(code, Some(0), "seed {seed}: {stderr}");
        let faults = cluster
            .sim
            .requests()
            .iter()
            .filter(|r| r.status != 200 && r.status != 201)
            .count();
        assert!(
            faults > 5,
            "seed {seed}: chaos must have struck ({faults} faults)"
        );

        // The report is complete and true.
        assert_eq!(report["summary"]["restarted"], 15, "seed {seed}");
        assert_eq!(report["summary"]["failed"], 0, "seed {seed}");
        assert_eq!(report["summary"]["manual"], 6, "seed {seed}");
        assert_eq!(
            report["workloads"].as_array().unwrap().len(),
            21,
            "seed {seed}"
        );
        // At most one restart per workload for the target version.
        let patches = successful_patches(&cluster);
        assert_eq!(patches.len(), 11, "seed {seed}: {patches:#?}");
        assert!(
            patches.values().all(|n| *n == 1),
            "seed {seed}: {patches:#?}"
        );
        // Manual pods untouched, the rest renewed.
        assert_eq!(pod_uids(&cluster, "batch"), manual_pods, "seed {seed}");
        assert_only_manual_left(&cluster).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_and_resumed_it_restarts_nothing_twice() {
    let cluster = Cluster::start(example_state(), |c| {
        c.pod_start = Duration::from_millis(500)
    })
    .await;
    // Reproducible "random" kill points: a small linear congruential sequence.
    let mut state: u64 = 0x5eed;
    for round in 0..4 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = Duration::from_millis(150 + (state >> 33) % 900);
        let mut child = cluster
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
        let finished = tokio::time::timeout(after, child.wait()).await;
        if finished.is_err() {
            child.kill().await.unwrap(); // SIGKILL, at whatever point it had reached
            let _ = child.wait().await;
        }
        eprintln!(
            "round {round}: killed after {after:?}: {}",
            finished.is_err()
        );
    }
    let (code, report, stderr) = cluster.run(&["--rollout-timeout", "60s"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["action"] == "manual" || w["status"] == "completed"),
        "{report}"
    );
    let patches = successful_patches(&cluster);
    assert!(patches.values().all(|n| *n == 1), "{patches:#?}");
    // Each OnDelete pod was evicted at most once for real (a 201), whichever run did it.
    let mut evictions = BTreeMap::<String, usize>::new();
    for r in cluster
        .workload_writes()
        .into_iter()
        .filter(|r| r.path.ends_with("/eviction") && r.status == 201)
    {
        *evictions.entry(r.path).or_default() += 1;
    }
    assert!(evictions.values().all(|n| *n == 1), "{evictions:#?}");
    assert_only_manual_left(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_read_and_the_token_never_leaks() {
    let mut state = example_state();
    state["items"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
            "data": {"ca-key.pem": "c2VjcmV0"}
        }));
    let cluster = Cluster::start(state, |_| {}).await;
    let token = cluster.sim.token().to_string();
    let report_file = cluster.dir.path().join("report.json");

    let mut outputs = Vec::new();
    for args in [
        vec!["plan", "--format", "json"],
        vec!["snapshot"],
        vec![
            "run",
            "--format",
            "markdown",
            "--report-file",
            report_file.to_str().unwrap(),
            "--report-configmap",
            "kyma-system/report",
        ],
    ] {
        let output = cluster
            .command(&args)
            .env("ISTIO_PROXY_RESET_LOG", "debug")
            .output()
            .await
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(output);
    }
    for output in &outputs {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(&token), "the bearer token leaked");
            assert!(!text.contains("c2VjcmV0"), "a Secret's data leaked");
        }
    }
    let saved = std::fs::read_to_string(&report_file).unwrap();
    assert!(!saved.contains(&token));
    let requests = cluster.tool_requests();
    assert!(
        requests.iter().all(|r| !r.path.contains("secrets")),
        "a Secret was requested"
    );
    // The snapshot holds no Secret either.
    let snapshot: Value = serde_json::from_slice(&outputs[1].stdout).unwrap();
    assert!(
        snapshot["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "Secret")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_or_refused_credentials_exit_1_with_a_clear_error() {
    let cluster = Cluster::start(example_state(), |_| {}).await;
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).unwrap();

    // A wrong token: 401, reported at once, not retried for minutes.
    let wrong = cluster.dir.path().join("wrong-token");
    std::fs::write(
        &wrong,
        kubeconfig.replace(cluster.sim.token(), "not-the-token"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = cluster
        .command(&["plan"])
        .arg("--kubeconfig")
        .arg(&wrong)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a permanent error is not retried"
    );

    // Nothing listens: the run gives up (bounded) and says so.
    let url = cluster.sim.url().to_string();
    drop(cluster);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead");
    std::fs::write(&dead, kubeconfig.replace(&url, "https://127.0.0.1:9")).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"))
        .args([
            "plan",
            "--kubeconfig",
            dead.to_str().unwrap(),
            "--api-retry-timeout",
            "3s",
        ])
        .env("ISTIO_PROXY_RESET_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("listing"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
