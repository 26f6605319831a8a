//! Helpers for the integration tests: a simulated cluster on loopback, the real binary run
//! against it, and waiting on conditions with a timeout instead of sleeping.
#![allow(dead_code)] // each test file uses its own subset

pub mod backend;
pub mod binary;
pub mod faultproxy;
pub mod job;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use kube_sim::{RequestRecord, Sim, SimConfig};
use serde_json::Value;

pub const EXAMPLE: &str = "examples/kyma-upgrade.json";

pub use binary::root;

pub fn example_state() -> Value {
    serde_json::from_slice(&std::fs::read(root().join(EXAMPLE)).unwrap()).unwrap()
}

/// The example state with `edit` applied to the item `kind` `namespace/name`.
pub fn edit_item(
    state: &mut Value,
    kind: &str,
    namespace: &str,
    name: &str,
    edit: impl FnOnce(&mut Value),
) {
    let item = state["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| {
            i["kind"] == kind
                && i["metadata"]["namespace"] == namespace
                && i["metadata"]["name"] == name
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in the state"));
    edit(item);
}

pub struct Cluster {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// A simulated cluster loaded with `state`, pods starting in 100 ms.
    pub async fn start(state: Value, tweak: impl FnOnce(&mut SimConfig)) -> Cluster {
        let mut config = SimConfig {
            state,
            pod_start: Duration::from_millis(100),
            ..SimConfig::default()
        };
        tweak(&mut config);
        let sim = kube_sim::start(config).await.expect("kube-sim starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        Cluster {
            sim,
            dir,
            kubeconfig,
        }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_with(args, &self.kubeconfig)
    }

    /// The tool with another kubeconfig (one that points at a fault proxy, say).
    pub fn command_with(&self, args: &[&str], kubeconfig: &Path) -> tokio::process::Command {
        tool_command(args, kubeconfig)
    }

    /// Runs the tool to its end (bounded by `limit`).
    pub async fn tool(&self, args: &[&str]) -> Output {
        let output = self.command(args).output();
        tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .expect("the tool finishes within two minutes")
            .expect("the tool runs")
    }

    /// `run` with the report as JSON on stdout.
    pub async fn run(&self, extra: &[&str]) -> (Option<i32>, Value, String) {
        let mut args = vec!["run", "--format", "json", "--rollout-timeout", "30s"];
        args.extend_from_slice(extra);
        let output = self.tool(&args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let report = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
        (output.status.code(), report, stderr)
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let output = self.kubectl(&all);
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// An object as the simulated cluster holds it (no request, no fault proxy in between).
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let resource =
            kube_sim::store::resource_for_kind(api_version, kind).expect("a served kind");
        self.sim.store().get(resource, Some(namespace), name)
    }

    /// The objects of a kind in a namespace, as the simulated cluster holds them.
    pub fn objects(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value> {
        let resource =
            kube_sim::store::resource_for_kind(api_version, kind).expect("a served kind");
        self.sim.store().list(resource, Some(namespace))
    }

    /// Requests the tool made (kubectl's are left out).
    pub fn tool_requests(&self) -> Vec<RequestRecord> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| !r.user_agent.starts_with("kubectl"))
            .collect()
    }

    /// Requests that change a workload or a pod: restarts and evictions (not Events or the
    /// report ConfigMap).
    pub fn workload_writes(&self) -> Vec<RequestRecord> {
        self.tool_requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .filter(|r| !r.path.contains("/events") && !r.path.contains("/configmaps"))
            .collect()
    }
}

/// The tool's binary with `args` and `--kubeconfig`, from the repository root, without the
/// environment's own settings, killed if the test drops it.
pub fn tool_command(args: &[&str], kubeconfig: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    command.current_dir(root()).kill_on_drop(true);
    for key in binary::tool_settings_in_environment() {
        command.env_remove(key);
    }
    command.args(args).arg("--kubeconfig").arg(kubeconfig);
    command
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn await_condition(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pod's `istio-proxy` container and whether it is a native sidecar (an init container).
pub fn proxy_container(pod: &Value) -> Option<(&Value, bool)> {
    let named = |list: &str| {
        pod["spec"][list]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "istio-proxy"))
    };
    named("containers")
        .map(|c| (c, false))
        .or_else(|| named("initContainers").map(|c| (c, true)))
}

/// The revision a pod's `sidecar.istio.io/status` annotation says injected it.
pub fn injected_revision(pod: &Value) -> Option<String> {
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()?;
    let status: Value = serde_json::from_str(status).ok()?;
    status["revision"].as_str().map(str::to_string)
}

pub fn workload<'a>(report: &'a Value, kind: &str, namespace: &str, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == kind && w["namespace"] == namespace && w["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in {report}"))
}

/// Pod name → uid, for the pods of a namespace.
pub fn pod_uids(cluster: &Cluster, namespace: &str) -> std::collections::BTreeMap<String, String> {
    let pods = cluster.kubectl_json(&["get", "pods", "-n", namespace]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn path_exists(path: &Path) -> bool {
    path.exists()
}
