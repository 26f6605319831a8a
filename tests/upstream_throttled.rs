//! Upstream only: kube-apiserver throttling requests itself (`--max-requests-inflight`), as a
//! busy API server does during an upgrade. Its 429s (with Retry-After) slow the run; they never
//! fail it. kube-sim has no in-flight limits (its chaos simulates 429s: `tests/faults.rs`).

mod support;

use support::backend::{Backend, Scenario, configure_upstream, upstream_available};
use support::job::{NAMESPACE, SA, rbac_only, render, service_account_kubeconfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_api_server_slows_the_run_and_never_fails_it() {
    if !upstream_available() {
        return;
    }
    // Priority and fairness off, so that the plain in-flight limits apply: four reads and two
    // writes at a time for the whole cluster (watches are exempt).
    configure_upstream(&[
        "--enable-priority-and-fairness=false",
        "--max-requests-inflight=4",
        "--max-mutating-requests-inflight=2",
    ]);
    let scenario = Scenario::every_action_upgraded(Backend::Upstream).await;
    // As the Job's ServiceAccount: the in-flight limits exempt system:masters, the admin's group.
    scenario.apply(&rbac_only(&render("job").1));
    let kubeconfig = service_account_kubeconfig(&scenario, SA);
    let mut command = scenario.command_with(
        &["run", "--format", "json", "--rollout-timeout", "120s"],
        &kubeconfig,
    );
    let output = tokio::time::timeout(std::time::Duration::from_secs(600), command.output())
        .await
        .expect("the throttled run finishes within ten minutes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["summary"]["restarted"], 8, "{}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    let user = format!("system:serviceaccount:{NAMESPACE}:{SA}");
    let throttled = scenario
        .tool_requests_as(&user)
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(
        throttled > 0,
        "the server throttled the tool (else this proves nothing)"
    );
}
