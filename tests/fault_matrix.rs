//! The fault matrix (DESIGN §7): each stage of a run (list, get, patch, evict, watch, the report
//! ConfigMap, Events) under each fault, aimed by a proxy between the tool and kube-sim. Transient
//! faults are retried and the run finishes; permanent ones are reported at once, not retried.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::faultproxy::{Fault, FaultProxy, Rule, kubeconfig};
use support::{Cluster, example_state, workload};

struct Outcome {
    code: Option<i32>,
    report: Option<Value>,
    stderr: String,
    proxy: FaultProxy,
    cluster: Cluster,
}

/// Runs `args` against the example cluster through a proxy applying `rules`.
async fn through_proxy(rules: Vec<Rule>, args: &[&str]) -> Outcome {
    let cluster = Cluster::start(example_state(), |c| c.plain_http = true).await;
    let proxy = FaultProxy::start(cluster.sim.url(), rules).await;
    let path = cluster.dir.path().join("through-proxy");
    std::fs::write(&path, kubeconfig(&proxy.url, cluster.sim.token())).unwrap();
    // The defaults go before the test's own options, which win.
    let mut all = args[..1].to_vec();
    all.extend([
        "--format",
        "json",
        "--rollout-timeout",
        "30s",
        "--api-retry-timeout",
        "20s",
    ]);
    all.extend_from_slice(&args[1..]);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        cluster.command_with(&all, &path).output(),
    )
    .await
    .expect("the tool finishes")
    .unwrap();
    Outcome {
        code: output.status.code(),
        report: serde_json::from_slice(&output.stdout).ok(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        proxy,
        cluster,
    }
}

const RUN_PAYMENTS: &[&str] = &[
    "run",
    "--namespace",
    "payments",
    "--report-configmap",
    "kyma-system/istio-proxy-reset-report",
];
const RUN_MONITORING: &[&str] = &["run", "--namespace", "monitoring"];
const BILLING: &str = "/apis/apps/v1/namespaces/payments/deployments/billing";

/// A transient fault: the run retries, finishes with exit 0, and every fault was met.
async fn survives(rule: Rule, args: &[&str], check: impl FnOnce(&Outcome)) {
    let label = format!("{} {} {:?}", rule.method, rule.path, rule.fault);
    let outcome = through_proxy(vec![rule], args).await;
    assert_eq!(outcome.code, Some(0), "{label}: {}", outcome.stderr);
    assert_eq!(
        outcome.proxy.rules_left(),
        0,
        "{label}: the fault never struck"
    );
    let report = outcome
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("{label}: no report"));
    assert_eq!(report["summary"]["failed"], 0, "{label}: {report}");
    check(&outcome);
}

fn billing_generation(outcome: &Outcome) -> i64 {
    let deployment = outcome
        .cluster
        .object("apps/v1", "Deployment", "payments", "billing")
        .unwrap();
    deployment["metadata"]["generation"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_and_watch_faults_are_retried() {
    let transient = [
        Fault::Status(429),
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(504),
        Fault::DropBefore,
        Fault::Slow(Duration::from_millis(1500)),
    ];
    for fault in transient {
        // A slow answer is still an answer: it strikes once.
        let times = if matches!(fault, Fault::Slow(_)) {
            1
        } else {
            2
        };
        // Listing pods.
        survives(
            Rule::new("GET", "/api/v1/namespaces/payments/pods", fault, times).query("limit=500"),
            RUN_PAYMENTS,
            |o| assert_eq!(o.report.as_ref().unwrap()["summary"]["restarted"], 1),
        )
        .await;
        // Reading the workload before restarting it.
        survives(
            Rule::new("GET", BILLING, fault, times).query(""),
            RUN_PAYMENTS,
            |o| assert_eq!(billing_generation(o), 2, "restarted exactly once"),
        )
        .await;
    }
    // Watches: cut mid-stream, failing, or expired (410): the watcher lists again.
    for fault in [
        Fault::CutAfter(Duration::from_millis(100)),
        Fault::Status(500),
        Fault::Status(410),
    ] {
        survives(
            Rule::new(
                "GET",
                "/apis/apps/v1/namespaces/payments/deployments",
                fault,
                3,
            )
            .query("watch=true"),
            RUN_PAYMENTS,
            |o| {
                let billing = workload(
                    o.report.as_ref().unwrap(),
                    "Deployment",
                    "payments",
                    "billing",
                );
                assert_eq!(billing["status"], "completed");
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_faults_never_restart_twice() {
    for fault in [
        Fault::Status(409),
        Fault::Status(429),
        Fault::Status(500),
        Fault::Status(503),
        Fault::DropBefore,
        // The server applied the restart but the answer was lost: the retry reads the workload,
        // finds the recorded target and does not patch again.
        Fault::DropAfter,
    ] {
        // After a lost answer the restart is found done: there is no second PATCH to fail.
        let times = if fault == Fault::DropAfter { 1 } else { 2 };
        survives(
            Rule::new("PATCH", BILLING, fault, times),
            RUN_PAYMENTS,
            |o| {
                assert_eq!(
                    billing_generation(o),
                    2,
                    "{fault:?}: restarted exactly once"
                );
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_and_report_sink_faults_are_retried() {
    for fault in [
        Fault::Status(429),
        Fault::Status(500),
        Fault::DropBefore,
        Fault::DropAfter,
    ] {
        let times = if fault == Fault::DropAfter { 1 } else { 2 };
        survives(
            Rule::new("POST", "/eviction", fault, times),
            RUN_MONITORING,
            |o| {
                let probe = workload(
                    o.report.as_ref().unwrap(),
                    "DaemonSet",
                    "monitoring",
                    "node-probe",
                );
                assert_eq!(probe["status"], "completed", "{fault:?}");
            },
        )
        .await;
    }
    for fault in [Fault::Status(500), Fault::Status(503), Fault::DropBefore] {
        survives(
            Rule::new("PATCH", "/configmaps/istio-proxy-reset-report", fault, 2),
            RUN_PAYMENTS,
            |o| {
                let configmap = o
                    .cluster
                    .object("v1", "ConfigMap", "kyma-system", "istio-proxy-reset-report")
                    .unwrap();
                assert!(configmap["data"]["report.json"].is_string());
            },
        )
        .await;
        survives(Rule::new("POST", "/events", fault, 2), RUN_PAYMENTS, |o| {
            assert!(!o.cluster.objects("v1", "Event", "payments").is_empty());
        })
        .await;
    }
    // The report ConfigMap is made (there is none yet), but the answer is lost: the retried
    // create finds it there (409) and the report is written into it instead.
    survives(
        Rule::new(
            "POST",
            "/namespaces/kyma-system/configmaps",
            Fault::DropAfter,
            1,
        ),
        RUN_PAYMENTS,
        |o| {
            let configmap = o
                .cluster
                .object("v1", "ConfigMap", "kyma-system", "istio-proxy-reset-report")
                .unwrap();
            let stored: Value =
                serde_json::from_str(configmap["data"]["report.json"].as_str().unwrap()).unwrap();
            assert_eq!(stored["mode"], "run");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_restarts_the_list() {
    // More pods, and more ReplicaSets, than one page holds.
    let state = kube_sim::generate::generate(1800, 3);
    let cluster = Cluster::start(state, |c| {
        c.plain_http = true;
        c.controllers = false;
    })
    .await;
    let clean = cluster.tool(&["plan", "--format", "json"]).await;
    let clean: Value = serde_json::from_slice(&clean.stdout).unwrap();
    let proxy = FaultProxy::start(
        cluster.sim.url(),
        vec![
            Rule::new("GET", "/api/v1/pods", Fault::Status(410), 1).query("continue="),
            Rule::new("GET", "/apis/apps/v1/replicasets", Fault::Status(410), 1).query("continue="),
        ],
    )
    .await;
    let path = cluster.dir.path().join("through-proxy");
    std::fs::write(&path, kubeconfig(&proxy.url, cluster.sim.token())).unwrap();
    let output = cluster
        .command_with(&["plan", "--format", "json"], &path)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let faulted: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(proxy.rules_left(), 0);
    let first_pages = proxy
        .seen()
        .iter()
        .filter(|s| s.1 == "/api/v1/pods" && !s.2.contains("continue="))
        .count();
    assert_eq!(first_pages, 2, "the pod list started over once");
    let first_pages = proxy
        .seen()
        .iter()
        .filter(|s| s.1 == "/apis/apps/v1/replicasets" && !s.2.contains("continue="))
        .count();
    assert_eq!(first_pages, 2, "the ReplicaSet list started over once");
    assert_eq!(
        faulted["summary"], clean["summary"],
        "nothing counted twice"
    );
    assert_eq!(faulted["workloads"], clean["workloads"]);
}

/// `code` for the workload billing's `method` request: the GET of the object itself (not a
/// list or a watch, which carry a query), or its patch.
fn billing_fault(method: &'static str, code: u16) -> Rule {
    let rule = Rule::new(method, BILLING, Fault::Status(code), 5);
    if method == "GET" {
        rule.query("")
    } else {
        rule
    }
}

/// A permanent fault: reported with its code, and the request is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_faults_are_reported_not_retried() {
    // Reading or patching the workload: it fails with the reason; the run goes on.
    for (method, code) in [("GET", 403), ("PATCH", 422), ("PATCH", 403)] {
        let outcome = through_proxy(vec![billing_fault(method, code)], RUN_PAYMENTS).await;
        assert_eq!(outcome.code, Some(3), "{method} {code}: {}", outcome.stderr);
        let report = outcome.report.as_ref().unwrap();
        let billing = workload(report, "Deployment", "payments", "billing");
        assert_eq!(billing["status"], "failed");
        assert!(
            billing["reason"]
                .as_str()
                .unwrap()
                .contains(&code.to_string()),
            "{billing}"
        );
        let attempts = outcome
            .proxy
            .seen()
            .iter()
            .filter(|s| s.0 == method && s.1 == BILLING && s.2.is_empty())
            .count();
        assert_eq!(attempts, 1, "{method} {code} was retried");
    }

    // Deleted since the plan (404 on reading or on patching it): nothing is left to renew, so
    // it is skipped with the reason, not failed, and the run succeeds.
    for method in ["GET", "PATCH"] {
        let outcome = through_proxy(vec![billing_fault(method, 404)], RUN_PAYMENTS).await;
        assert_eq!(outcome.code, Some(0), "{method} 404: {}", outcome.stderr);
        let report = outcome.report.as_ref().unwrap();
        let billing = workload(report, "Deployment", "payments", "billing");
        assert_eq!(billing["status"], "skipped", "{method} 404: {billing}");
        let reason = billing["reason"].as_str().unwrap();
        assert!(
            reason.contains("404") && reason.contains("deleted since the plan"),
            "{reason}"
        );
        assert_eq!(report["summary"]["failed"], 0);
        assert_eq!(
            outcome.proxy.count(method, BILLING),
            1,
            "{method} 404 was retried"
        );
    }

    // Evicting: refused by RBAC.
    let outcome = through_proxy(
        vec![Rule::new("POST", "/eviction", Fault::Status(403), 9)],
        RUN_MONITORING,
    )
    .await;
    assert_eq!(outcome.code, Some(3));
    let probe = workload(
        outcome.report.as_ref().unwrap(),
        "DaemonSet",
        "monitoring",
        "node-probe",
    );
    assert!(probe["reason"].as_str().unwrap().contains("403"), "{probe}");
    assert_eq!(outcome.proxy.count("POST", "/eviction"), 1);

    // Listing: no inventory, no report, exit 1 and the reason.
    let outcome = through_proxy(
        vec![
            Rule::new(
                "GET",
                "/api/v1/namespaces/payments/pods",
                Fault::Status(403),
                9,
            )
            .query("limit=500"),
        ],
        RUN_PAYMENTS,
    )
    .await;
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.contains("403"), "{}", outcome.stderr);
    assert_eq!(
        outcome
            .proxy
            .count("GET", "/api/v1/namespaces/payments/pods"),
        1
    );
    assert!(outcome.report.is_none());

    // The report ConfigMap refused: the restarts happened, the report still reaches stdout, exit 1.
    let outcome = through_proxy(
        vec![Rule::new(
            "PATCH",
            "/configmaps/istio-proxy-reset-report",
            Fault::Status(403),
            9,
        )],
        RUN_PAYMENTS,
    )
    .await;
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    assert_eq!(outcome.report.as_ref().unwrap()["summary"]["restarted"], 1);

    // Events refused: a courtesy, so the run still succeeds.
    let outcome = through_proxy(
        vec![Rule::new("POST", "/events", Fault::Status(403), 99)],
        RUN_PAYMENTS,
    )
    .await;
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("could not record an Event"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollout_timeout_bounds_a_workload_whose_api_calls_keep_failing() {
    // The rollout finishes, but checking its pods meets nothing but 503s: each call would retry
    // for the whole API budget (a minute here); the workload must end at its rollout timeout.
    let started = std::time::Instant::now();
    let rule = Rule::new(
        "GET",
        "/api/v1/namespaces/payments/pods",
        Fault::Status(503),
        usize::MAX,
    )
    .query("labelSelector");
    let mut args = RUN_PAYMENTS.to_vec();
    args.extend(["--rollout-timeout", "3s", "--api-retry-timeout", "60s"]);
    let outcome = through_proxy(vec![rule], &args).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.code, Some(3), "{}", outcome.stderr);
    let report = outcome.report.as_ref().expect("a report");
    let billing = workload(report, "Deployment", "payments", "billing");
    assert_eq!(billing["status"], "failed", "{billing}");
    let reason = billing["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not finish within 3s (and 5s more for its last API calls)"),
        "{reason}"
    );
    assert!(
        elapsed < Duration::from_secs(45),
        "the run took {elapsed:?}, as if bounded by the API budget, not the rollout timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_refused_fails_at_once_and_a_failing_one_within_the_retry_budget() {
    const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/payments/deployments";
    // RBAC without `watch` (403), or no such resource (404): waiting heals neither.
    for code in [403, 404] {
        let started = std::time::Instant::now();
        let rule =
            Rule::new("GET", DEPLOYMENTS, Fault::Status(code), usize::MAX).query("watch=true");
        let outcome = through_proxy(vec![rule], RUN_PAYMENTS).await;
        assert_eq!(outcome.code, Some(3), "{code}: {}", outcome.stderr);
        let report = outcome.report.as_ref().unwrap();
        let billing = workload(report, "Deployment", "payments", "billing");
        assert_eq!(billing["status"], "failed", "{billing}");
        let reason = billing["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("watching Deployment payments/billing: ")
                && reason.contains(&code.to_string()),
            "{code}: {reason}"
        );
        assert!(!reason.contains("did not finish"), "{code}: {reason}");
        assert_eq!(
            outcome
                .proxy
                .seen()
                .iter()
                .filter(|s| s.1 == DEPLOYMENTS && s.2.contains("watch=true"))
                .count(),
            1,
            "{code}: a refused watch is not retried"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{code}: {:?}",
            started.elapsed()
        );
    }

    // A watch that keeps failing with a transient error is retried for the API retry budget
    // (3 s here), not for the whole rollout timeout (60 s).
    let started = std::time::Instant::now();
    let rule = Rule::new("GET", DEPLOYMENTS, Fault::Status(503), usize::MAX).query("watch=true");
    let mut args = RUN_PAYMENTS.to_vec();
    args.extend(["--rollout-timeout", "60s", "--api-retry-timeout", "3s"]);
    let outcome = through_proxy(vec![rule], &args).await;
    assert_eq!(outcome.code, Some(3), "{}", outcome.stderr);
    let report = outcome.report.as_ref().unwrap();
    let billing = workload(report, "Deployment", "payments", "billing");
    let reason = billing["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("watching Deployment payments/billing kept failing for 3s")
            && reason.contains("503"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the run took {:?}, as if bounded by the rollout timeout",
        started.elapsed()
    );
}
