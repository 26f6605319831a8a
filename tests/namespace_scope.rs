//! `--namespace` for an operator whose rights end at a namespace: a dry run against kube-sim
//! enforcing RBAC that grants reads in `payments` (its own Namespace object included) and in
//! `istio-system`, and nothing cluster-wide.

use std::path::PathBuf;

use serde_json::Value;

const USER: &str = "jane";

/// Roles in `payments` and `istio-system`, bound to `jane`: no ClusterRole at all.
const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read, namespace: payments}
rules:
- apiGroups: [""]
  resources: [pods, replicationcontrollers]
  verbs: [get, list]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  verbs: [get, list]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list]
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read, namespace: payments}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-istio, namespace: istio-system}
rules:
- apiGroups: [""]
  resources: [pods, configmaps]
  verbs: [list]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-istio, namespace: istio-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-istio}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// kube-sim on the example, authorizing as `jane` under [`RBAC`] when `scoped`, else as its admin.
async fn start(scoped: bool) -> kube_sim::Sim {
    let state: Value =
        serde_json::from_slice(&std::fs::read(root().join("examples/kyma-upgrade.json")).unwrap())
            .unwrap();
    kube_sim::start(kube_sim::SimConfig {
        state,
        rbac: scoped.then(|| (RBAC.to_string(), USER.to_string())),
        controllers: false,
        ..kube_sim::SimConfig::default()
    })
    .await
    .expect("kube-sim starts")
}

/// `plan --format json ARGS` against `sim`.
async fn plan(sim: &kube_sim::Sim, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    for (name, _) in std::env::vars() {
        if name.starts_with("ISTIO_PROXY_RESET_") || name == "KUBECONFIG" {
            command.env_remove(name);
        }
    }
    command
        .args(["plan", "--format", "json", "--api-retry-timeout", "5s"])
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("the plan finishes within a minute")
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_scoped_operator_can_plan_its_namespace() {
    let sim = start(true).await;
    let output = plan(&sim, &["--namespace", "payments"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);

    let requests = sim.requests();
    let forbidden: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 403)
        .map(|r| r.line())
        .collect();
    assert!(forbidden.is_empty(), "refused: {forbidden:?}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let namespace_lists: Vec<String> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces")
        .map(|r| r.line())
        .collect();
    assert!(
        namespace_lists.is_empty(),
        "Namespaces were listed: {namespace_lists:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/namespaces/payments"),
        "the named Namespace is read by name"
    );
    assert!(!stderr.contains("no such namespace"), "{stderr}");

    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["summary"]["pods"], 6, "{report}");
    let workloads = report["workloads"].as_array().unwrap();
    assert!(!workloads.is_empty());
    assert!(workloads.iter().all(|w| w["namespace"] == "payments"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_namespace_that_does_not_exist_is_warned_about() {
    let sim = start(false).await;
    let output = plan(&sim, &["--namespace", "payments", "--namespace", "paymnts"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("--namespace paymnts: the inventory has no such namespace"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["summary"]["pods"], 6, "{report}");
    sim.shutdown().await;
}
