//! The Job's manifests in a cluster: `job/` rendered, its RBAC applied, a kubeconfig with a
//! token of its ServiceAccount (TokenRequest), on either backend.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::backend::Scenario;
use super::root;

pub const NAMESPACE: &str = "kyma-system";
pub const SA: &str = "istio-proxy-reset";

/// `kubectl kustomize DIR` as YAML, and as JSON objects (a local no-op patch converts them).
pub fn render(dir: &str) -> (String, Vec<Value>) {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join(dir))
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let mut to_json = Command::new("kubectl")
        .args([
            "patch", "--local", "--type", "merge", "-p", "{}", "-f", "-", "-o", "json",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    to_json
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = to_json.wait_with_output().unwrap();
    let objects = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    (yaml, objects)
}

/// The rendered objects but the Job, as a `kind: List`: what lets the Job's ServiceAccount act.
pub fn rbac_only(objects: &[Value]) -> String {
    let items: Vec<&Value> = objects.iter().filter(|o| o["kind"] != "Job").collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// A kubeconfig for the cluster that authenticates with a token of the ServiceAccount, issued
/// by the TokenRequest API (`kubectl create token`).
pub fn service_account_kubeconfig(scenario: &Scenario, sa: &str) -> PathBuf {
    let token = scenario.kubectl_ok(&["create", "token", sa, "-n", NAMESPACE, "--duration=1h"]);
    let path = scenario.dir.path().join(format!("{sa}.kubeconfig"));
    std::fs::copy(&scenario.kubeconfig, &path).unwrap();
    let config = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&path)
            .arg("config")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    config(&["set-credentials", sa, &format!("--token={}", token.trim())]);
    config(&[
        "set-context",
        sa,
        "--cluster=kube-sim",
        &format!("--user={sa}"),
    ]);
    config(&["use-context", sa]);
    path
}
