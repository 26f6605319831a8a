//! Helpers shared by the kube-sim integration tests: a sim in-process or as a child process,
//! `kube` clients for its contexts, `kubectl`, and waiting for a condition with a timeout.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub async fn await_condition<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A `kube` client for a kubeconfig, in the given context.
pub async fn client_for(kubeconfig: &str, context: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kubeconfig is usable");
    // The client's own retries of 429/503/504 would hide the answers these tests check.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client builds")
}

/// The `kube` client of the kubeconfig's current context (the configured user).
pub async fn client(sim: &kube_sim::Sim) -> kube::Client {
    client_for(sim.kubeconfig(), "kube-sim").await
}

/// The `kube` client of the admin context (never subject to RBAC).
pub async fn admin_client(sim: &kube_sim::Sim) -> kube::Client {
    client_for(sim.kubeconfig(), "kube-sim-admin").await
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A Running and Ready pod.
pub fn ready_pod(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}], "nodeName": "node-1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "registry.example/app:1",
                                          "imageID": "", "state": {"running": {}}}]}
    })
}

pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// A state with `count` ready pods in namespace `shop`, labelled `app=shop` and `index=<i>`.
pub fn shop_state(count: usize) -> Value {
    let mut items = vec![namespace("shop")];
    items.extend((0..count).map(|i| {
        ready_pod(
            "shop",
            &format!("pod-{i:04}"),
            json!({"app": "shop", "index": i.to_string()}),
        )
    }));
    list(items)
}

/// `kube-sim serve` as a child process, killed on drop.
pub struct SimProcess {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl SimProcess {
    /// Starts the binary with `state` and extra arguments, and waits for its `ready` line.
    pub fn start(state: &Value, extra_args: &[&str]) -> SimProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_path = dir.path().join("state.json");
        std::fs::write(&state_path, state.to_string()).expect("state written");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
            .arg("serve")
            .arg("--state")
            .arg(&state_path)
            .arg("--kubeconfig-out")
            .arg(dir.path().join("kubeconfig"))
            .arg("--request-log")
            .arg(dir.path().join("requests.log"))
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kube-sim starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("kube-sim printed no ready line within 20 s");
            }
        };
        let url = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        SimProcess { child, url, dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn request_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Runs `kubectl` against this sim with a time limit.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig(), args)
    }

    /// Starts `kubectl` in the background (for `--watch`).
    pub fn kubectl_spawn(&self, args: &[&str]) -> KillOnDrop {
        KillOnDrop(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(self.kubeconfig())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kubectl starts"),
        )
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `kubectl --kubeconfig … ARGS`, killed after 30 s.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("kubectl status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("kubectl output")
}

/// The stdout of a `kubectl` run that must succeed.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "kubectl failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `kind: List` with the namespace `shop` (injection enabled), the default injector ConfigMap
/// (proxy 1.24.1, distroless) and `items`: the base of the controller tests.
pub fn injected_shop_state(items: Vec<Value>) -> Value {
    let mut all = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
               "data": {"values": json!({"global": {
                   "hub": "europe-docker.pkg.dev/kyma-project/prod/external/istio",
                   "tag": "1.24.1", "variant": "distroless", "proxy": {"image": "proxyv2"}}}).to_string()}}),
    ];
    all.extend(items);
    list(all)
}

/// The pods' uids, sorted: equal before and after means no pod was replaced.
pub fn uids(pods: &[Value]) -> Vec<String> {
    let mut uids: Vec<String> = pods
        .iter()
        .map(|p| {
            p["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    uids.sort();
    uids
}
