//! The Job in a cluster, on both backends: `job/`'s RBAC applied with kubectl, the tool run as
//! the Job runs it with a ServiceAccount token from the TokenRequest API, no request refused;
//! what the RBAC does not grant refused by the cluster's authorizer. Upstream only: the Job's
//! pod admitted by real PodSecurity admission at the `restricted` level (kube-sim has no
//! PodSecurity admission; `sim/README.md`).

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::backend::{Backend, Scenario, upstream_available};
use support::job::{NAMESPACE, SA, rbac_only, render, service_account_kubeconfig};
use support::root;

/// The Job's container command: its arguments and environment, with `kubeconfig`.
async fn run_as_the_job(job: &Value, kubeconfig: &PathBuf) -> std::process::Output {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    for (name, _) in std::env::vars() {
        if name.starts_with("ISTIO_PROXY_RESET_") || name == "KUBECONFIG" {
            command.env_remove(name);
        }
    }
    for arg in container["args"].as_array().unwrap() {
        command.arg(arg.as_str().unwrap());
    }
    for env in container["env"].as_array().unwrap() {
        command.env(
            env["name"].as_str().unwrap(),
            env["value"].as_str().unwrap(),
        );
    }
    command
        .env("ISTIO_PROXY_RESET_KUBECONFIG", kubeconfig)
        .env("ISTIO_PROXY_RESET_ROLLOUT_TIMEOUT", "60s")
        .current_dir(root())
        .kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the Job's command finishes within three minutes")
        .unwrap()
}

async fn the_job_runs_with_its_service_accounts_token_and_no_more(backend: Backend) {
    let scenario = Scenario::every_action_upgraded(backend).await;
    let (_, objects) = render("job");
    let job = objects.iter().find(|o| o["kind"] == "Job").unwrap();
    scenario.apply(&rbac_only(&objects));
    let kubeconfig = service_account_kubeconfig(&scenario, SA);
    let user = format!("system:serviceaccount:{NAMESPACE}:{SA}");

    let out = run_as_the_job(job, &kubeconfig).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = scenario.tool_requests_as(&user);
    assert!(
        !requests.is_empty(),
        "{backend:?}: the tool's requests as {user} are logged"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 403)
        .map(|r| r.line())
        .collect();
    assert!(
        refused.is_empty(),
        "{backend:?}: refused {refused:?}; stderr {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{backend:?}: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["summary"]["restarted"], 8,
        "{backend:?}: {}",
        report["summary"]
    );
    let stored = scenario.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        NAMESPACE,
        "istio-proxy-reset-report",
        "-o",
        "jsonpath={.data.report\\.json}",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap()["mode"],
        "run"
    );

    // What the RBAC does not grant, the cluster refuses.
    for args in [
        &["get", "secrets", "-n", NAMESPACE][..],
        &["get", "secrets", "-A"][..],
        &["-n", "shop", "delete", "pod", "debug-shell"][..],
        &["-n", "shop", "get", "configmaps"][..],
    ] {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.to_lowercase().contains("forbidden"),
            "{backend:?}: kubectl {args:?} as the Job must be forbidden; got {} {stderr}",
            out.status
        );
    }
}

on_both_backends!(the_job_runs_with_its_service_accounts_token_and_no_more);

/// Upstream only: kube-sim has no PodSecurity admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_pod_is_admitted_at_the_restricted_pod_security_level() {
    if !upstream_available() {
        return;
    }
    let scenario = Scenario::start(Backend::Upstream).await;
    scenario.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n"
    ));
    let (yaml, _) = render("job");
    scenario.apply(&yaml);
    scenario
        .await_condition(std::time::Duration::from_secs(60), "the Job's pod", || {
            !scenario.names("pods", Some(NAMESPACE)).is_empty()
        })
        .await;
    // The level has teeth: a pod without the restricted settings is refused in that namespace.
    let path = scenario.dir.path().join("loose.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: loose, namespace: {NAMESPACE}}}\nspec:\n  containers: [{{name: c, image: busybox}}]\n"),
    )
    .unwrap();
    let refused = scenario.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("violates PodSecurity \"restricted"),
        "{stderr}"
    );
}
