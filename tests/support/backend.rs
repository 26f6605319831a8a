//! One scenario, two backends: kube-sim, or the upstream control plane (real kube-apiserver,
//! controllers, scheduler, kwok; DESIGN §5.1). A test is written once against [`Scenario`] and
//! run on both with [`on_both_backends!`].
//!
//! A scenario is set up as it happens in a cluster: Istio's control plane installed at the old
//! version ([`OLD`]), the workloads created (their pods injected by the webhook at that
//! version), then the control plane upgraded ([`NEW`]), then the tool run.
//!
//! kube-sim starts in milliseconds, so each scenario gets its own. The upstream control plane
//! takes seconds, so a test binary starts one and its scenarios take turns on it (they share
//! `istio-system`); each turn begins by deleting the namespaces the last one left.

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use istio_injection::webhooks;
use kube_sim::upstream::{Upstream, UpstreamConfig};
use kube_sim::{RequestRecord, Sim, SimConfig};
use serde_json::Value;

use super::root;

pub const OLD: &str = "1.23.2";
pub const NEW: &str = "1.24.1";
pub const HUB: &str = "europe-docker.pkg.dev/kyma-project/prod/external/istio";
/// The default revision's webhook configuration, which every scenario starts with.
const DEFAULT_CONFIGURATION: &str = "istio-sidecar-injector";

/// How long a scenario's setup may wait for pods and rollouts: generous, since it only matters
/// when something is wrong, and a loaded 2-core machine (or a throttling API server) is slow.
const SETUP: Duration = Duration::from_secs(240);

/// Which API server a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sim,
    Upstream,
}

/// Runs `async fn NAME(backend: Backend)` as two tests, `NAME::sim` and `NAME::upstream`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim() {
                super::$name($crate::support::backend::Backend::Sim).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn upstream() {
                if $crate::support::backend::upstream_available() {
                    super::$name($crate::support::backend::Backend::Upstream).await
                }
            }
        }
    )*};
}

/// The namespaces every cluster has, which a scenario never deletes.
const SYSTEM_NAMESPACES: [&str; 5] = [
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
];

/// The test binary's upstream control plane and the lock its scenarios take turns with.
struct ControlPlane {
    upstream: Arc<Upstream>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// More kube-apiserver flags for this test binary's control plane (throttling, compaction).
static APISERVER_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// Gives this test binary's control plane more kube-apiserver flags; call before any scenario
/// starts. Each test binary has its own control plane, so each can have its own flags.
pub fn configure_upstream(apiserver_args: &[&str]) {
    let args = apiserver_args.iter().map(|a| a.to_string()).collect();
    let set = APISERVER_ARGS.get_or_init(|| args);
    assert_eq!(
        set,
        &apiserver_args.to_vec(),
        "one set of flags per test binary"
    );
}

/// Stops the shared control plane when the test binary exits (statics are never dropped);
/// its processes also die with the binary if it is killed (`PR_SET_PDEATHSIG`).
extern "C" fn stop_control_plane() {
    if let Some(Ok(plane)) = CONTROL_PLANE.get() {
        plane.upstream.kill();
    }
}

fn control_plane() -> &'static ControlPlane {
    let plane = CONTROL_PLANE.get_or_init(|| {
        let bin = kube_sim::upstream::bin_dir().map_err(|e| e.to_string())?;
        let (send, receive) = std::sync::mpsc::channel();
        // Its own runtime, for as long as the binary runs: the webhook serves every test.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            runtime.block_on(async move {
                let mut config = UpstreamConfig::new(bin);
                config.apiserver_args = APISERVER_ARGS.get().cloned().unwrap_or_default();
                // A free port found at start may be taken before its server binds it: try again.
                let mut started = kube_sim::upstream::start(config.clone()).await;
                for _ in 0..2 {
                    if started.is_ok() {
                        break;
                    }
                    started = kube_sim::upstream::start(config.clone()).await;
                }
                let _ = send.send(started.map(Arc::new).map_err(|e| e.to_string()));
                std::future::pending::<()>().await;
            });
        });
        let upstream = receive
            .recv()
            .map_err(|_| "the control plane's thread ended".to_string())??;
        // SAFETY: registers a function without arguments that only signals children.
        unsafe { libc::atexit(stop_control_plane) };
        Ok(ControlPlane {
            upstream,
            turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    });
    match plane {
        Ok(plane) => plane,
        Err(e) => panic!("the upstream control plane did not start: {e}"),
    }
}

/// Whether upstream scenarios can run here (see `kube_sim::upstream::available_for_tests`).
pub fn upstream_available() -> bool {
    kube_sim::upstream::available_for_tests()
}

/// One test's cluster, on either backend.
pub struct Scenario {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// Contexts `kube-sim` (the tool's) and `kube-sim-admin` (observing), on both backends.
    pub kubeconfig: PathBuf,
    sim: Option<Sim>,
    upstream: Option<Arc<Upstream>>,
    audit_offset: u64,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Scenario {
    /// A cluster with Istio's control plane at [`OLD`]: istiod Ready and the injector
    /// ConfigMap, and (upstream) nothing left of an earlier scenario.
    pub async fn start(backend: Backend) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut scenario = match backend {
            Backend::Sim => {
                let sim = kube_sim::start(SimConfig {
                    pod_start: Duration::from_millis(100),
                    ..SimConfig::default()
                })
                .await
                .expect("kube-sim starts");
                sim.write_kubeconfig(&kubeconfig).unwrap();
                Scenario {
                    backend,
                    dir,
                    kubeconfig,
                    sim: Some(sim),
                    upstream: None,
                    audit_offset: 0,
                    _turn: None,
                }
            }
            Backend::Upstream => {
                let plane = tokio::task::spawn_blocking(control_plane).await.unwrap();
                let turn = plane.turn.clone().lock_owned().await;
                plane.upstream.write_kubeconfig(&kubeconfig).unwrap();
                Scenario {
                    backend,
                    dir,
                    kubeconfig,
                    sim: None,
                    upstream: Some(plane.upstream.clone()),
                    audit_offset: 0,
                    _turn: Some(turn),
                }
            }
        };
        scenario.delete_leftovers().await;
        // Istio's webhook configuration of the default revision, as the upstream control plane
        // installs it at start (there, an earlier scenario's changes to them are undone).
        scenario.reset_webhooks().await;
        scenario.install_istio(OLD).await;
        scenario.forget_requests();
        scenario
    }

    /// `tests/scenarios/every-action.yaml` created at the old version with every pod Ready,
    /// `shop/catalog` paused, then the control plane upgraded to [`NEW`].
    pub async fn every_action_upgraded(backend: Backend) -> Scenario {
        let scenario = Scenario::start(backend).await;
        scenario.apply_file("every-action.yaml");
        // eventing-manager 1; orders 2, catalog 1, search 2, redis 3, mailer 1, importer 1,
        // debug-shell 1; two DaemonSets on three Nodes.
        for (namespace, pods) in [("kyma-system", 1), ("shop", 11), ("monitoring", 6)] {
            scenario.await_pods_ready(namespace, pods).await;
        }
        scenario.kubectl_ok(&["rollout", "pause", "-n", "shop", "deployment/catalog"]);
        scenario.install_istio(NEW).await;
        scenario
    }

    /// Deletes every namespace an earlier scenario made and waits until they are gone.
    async fn delete_leftovers(&self) {
        let leftovers: Vec<String> = self
            .names("namespaces", None)
            .into_iter()
            .filter(|n| !SYSTEM_NAMESPACES.contains(&n.as_str()))
            .collect();
        if leftovers.is_empty() {
            return;
        }
        let mut args = vec!["delete", "namespace", "--wait=false"];
        args.extend(leftovers.iter().map(String::as_str));
        self.kubectl_ok(&args);
        self.await_condition(
            Duration::from_secs(120),
            "earlier scenarios' namespaces to go",
            || {
                let names = self.names("namespaces", None);
                !leftovers.iter().any(|l| names.contains(l))
            },
        )
        .await;
    }

    /// Istio's webhook configurations back to the default revision's alone, and (upstream,
    /// where `istio-system` outlives a scenario) the istiods and injector ConfigMaps of other
    /// revisions an earlier scenario installed gone.
    async fn reset_webhooks(&self) {
        if let Some(upstream) = &self.upstream {
            self.kubectl_ok(&[
                "delete",
                "deployments,configmaps",
                "-n",
                "istio-system",
                "-l",
                "istio.io/rev,istio.io/rev notin (default)",
            ]);
            for name in self.names("mutatingwebhookconfigurations", None) {
                if name != DEFAULT_CONFIGURATION {
                    upstream
                        .delete_webhook_configuration(&name)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        self.install_revision_webhooks(istio_injection::DEFAULT_REVISION)
            .await;
    }

    /// Installs (or replaces) Istio's MutatingWebhookConfiguration of `revision`
    /// (`istio-sidecar-injector[-<revision>]`, `istio_injection::webhooks::revision_configuration`),
    /// on either backend.
    pub async fn install_revision_webhooks(&self, revision: &str) {
        self.install_webhook_configuration(&webhooks::revision_configuration(revision))
            .await;
    }

    /// Installs (or replaces) the configuration of the revision tag `tag` pointing at `revision`
    /// (`istio-revision-tag-<tag>`), as `istioctl tag set <tag> --revision <revision>` does.
    pub async fn install_tag_webhooks(&self, tag: &str, revision: &str) {
        self.install_webhook_configuration(&webhooks::tag_configuration(tag, revision))
            .await;
    }

    /// Installs (or replaces) a webhook configuration (say, `webhooks::deactivated` of the
    /// default revision's). kube-sim reads its selectors; upstream, kube-apiserver calls the
    /// injector webhook for the configuration's revision.
    pub async fn install_webhook_configuration(
        &self,
        configuration: &istio_injection::WebhookConfiguration,
    ) {
        match &self.upstream {
            Some(upstream) => upstream
                .put_webhook_configuration(configuration)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
            // Nothing calls the URL on kube-sim: its own admission evaluates the selectors.
            None => self.apply(
                &kube_sim::upstream::webhook::configuration_json(
                    configuration,
                    "https://127.0.0.1:9",
                    "",
                )
                .to_string(),
            ),
        }
    }

    /// Installs (or upgrades to) `version`: the injector ConfigMap, and istiod, waited for.
    pub async fn install_istio(&self, version: &str) {
        self.apply(&istio_control_plane(version));
        self.rollout_status("istio-system", "deployment/istiod")
            .await;
    }

    /// `kubectl apply -f` of a manifest (YAML, several documents).
    pub fn apply(&self, manifest: &str) {
        static APPLIED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = APPLIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.path().join(format!("manifest-{count}.yaml"));
        std::fs::write(&path, manifest).unwrap();
        let args = ["apply", "-f", path.to_str().unwrap()];
        // A pod created with its namespace is refused (ServiceAccount admission) until the
        // controller manager has made the namespace's `default` ServiceAccount; apply again.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let output = self.kubectl(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let too_early = stderr.contains("serviceaccount \"default\" not found");
            if output.status.success() || !too_early || std::time::Instant::now() > deadline {
                assert!(
                    output.status.success(),
                    "{:?}: kubectl {args:?}: {stderr}",
                    self.backend
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A manifest of `tests/scenarios/`.
    pub fn apply_file(&self, name: &str) {
        let manifest = std::fs::read_to_string(root().join("tests/scenarios").join(name)).unwrap();
        self.apply(&manifest);
    }

    /// Waits for `kubectl rollout status` of a workload to succeed.
    pub async fn rollout_status(&self, namespace: &str, workload: &str) {
        self.await_condition(
            SETUP,
            &format!("{namespace} {workload} to roll out"),
            || {
                self.kubectl(&[
                    "rollout",
                    "status",
                    "-n",
                    namespace,
                    workload,
                    "--timeout=5s",
                ])
                .status
                .success()
            },
        )
        .await;
    }

    /// Waits until the namespace has `count` pods, none terminating, every one Running and Ready
    /// (what a workload's pods are before the upgrade).
    pub async fn await_pods_ready(&self, namespace: &str, count: usize) {
        self.await_condition(SETUP, &format!("{count} Ready pods in {namespace}"), || {
            let pods = self.kubectl_json(&["get", "pods", "-n", namespace]);
            let pods = pods["items"].as_array().cloned().unwrap_or_default();
            pods.len() == count && pods.iter().all(is_ready)
        })
        .await;
    }

    /// Polls `condition` every 100 ms until it holds; panics after `timeout`.
    pub async fn await_condition(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut() -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}: timed out after {timeout:?} waiting for {what}",
                self.backend
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// kubectl as the admin (never subject to the RBAC a test sets up).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(kube_sim::kubeconfig::ADMIN_CONTEXT)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "{:?}: kubectl {args:?}: {}",
            self.backend,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).unwrap()
    }

    /// The names of the objects of a resource.
    pub fn names(&self, resource: &str, namespace: Option<&str>) -> Vec<String> {
        let mut args = vec!["get", resource];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        let list = self.kubectl_json(&args);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The tool, with the scenario's kubeconfig, never left running.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_with(args, &self.kubeconfig)
    }

    /// The tool with another kubeconfig (a ServiceAccount's, say).
    pub fn command_with(&self, args: &[&str], kubeconfig: &Path) -> tokio::process::Command {
        super::tool_command(args, kubeconfig)
    }

    pub async fn tool(&self, args: &[&str]) -> Output {
        let output = self.command(args).output();
        tokio::time::timeout(Duration::from_secs(180), output)
            .await
            .expect("the tool finishes within three minutes")
            .expect("the tool runs")
    }

    /// `run` with the report as JSON on stdout: (exit code, report, stderr).
    pub async fn run(&self, extra: &[&str]) -> (Option<i32>, Value, String) {
        let mut args = vec!["run", "--format", "json", "--rollout-timeout", "60s"];
        args.extend_from_slice(extra);
        let output = self.tool(&args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{:?}: no JSON report ({e}); stderr: {stderr}", self.backend)
        });
        (output.status.code(), report, stderr)
    }

    /// From now on, [`Scenario::tool_requests`] lists only later requests.
    pub fn forget_requests(&mut self) {
        match (&self.sim, &self.upstream) {
            (Some(sim), _) => sim.clear_requests(),
            (None, Some(upstream)) => {
                self.audit_offset = std::fs::metadata(upstream.audit_log()).map_or(0, |m| m.len())
            }
            (None, None) => unreachable!("a scenario has a backend"),
        }
    }

    /// The requests the tool made since the scenario was set up (kubectl's and the
    /// controllers' left out): kube-sim's request log, or kube-apiserver's audit log.
    pub fn tool_requests(&self) -> Vec<RequestRecord> {
        self.tool_requests_as("kube-sim:admin")
    }

    /// The same for a tool authenticated as `user` (upstream; kube-sim logs no user).
    pub fn tool_requests_as(&self, user: &str) -> Vec<RequestRecord> {
        self.requests_as(user)
            .into_iter()
            .filter(|r| !r.user_agent.starts_with("kubectl"))
            .collect()
    }

    /// Every request of `user` (upstream) or of any client (kube-sim), kubectl's included,
    /// since the scenario was set up.
    pub fn requests_as(&self, user: &str) -> Vec<RequestRecord> {
        match (&self.sim, &self.upstream) {
            (Some(sim), _) => sim.requests(),
            (None, Some(upstream)) => {
                audited_requests(upstream.audit_log(), self.audit_offset, user)
            }
            (None, None) => unreachable!("a scenario has a backend"),
        }
    }

    /// The tool's requests that change a workload or a pod: restarts and evictions.
    pub fn workload_writes(&self) -> Vec<RequestRecord> {
        self.tool_requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .filter(|r| !r.path.contains("/events") && !r.path.contains("/configmaps"))
            .collect()
    }

    /// The API server's URL, the CA that signed it, and the token the tool acts with: what a
    /// proxy in front of the server needs.
    pub fn server(&self) -> (String, Option<String>, String) {
        match (&self.sim, &self.upstream) {
            (Some(sim), _) => (
                sim.url().to_string(),
                sim.ca_pem().map(str::to_string),
                sim.token().to_string(),
            ),
            (None, Some(upstream)) => (
                upstream.url().to_string(),
                Some(upstream.ca_pem().to_string()),
                upstream.admin_token().to_string(),
            ),
            (None, None) => unreachable!("a scenario has a backend"),
        }
    }

    /// The upstream control plane, for what only it has (restarting kube-apiserver).
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_deref()
    }
}

pub fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The requests in kube-apiserver's audit log after `offset` bytes that `user` made, in
/// kube-sim's request-log form.
fn audited_requests(log: &Path, offset: u64, user: &str) -> Vec<RequestRecord> {
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    file.seek(std::io::SeekFrom::Start(offset)).unwrap();
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|event| event["user"]["username"] == user)
        .filter(|event| {
            !event["userAgent"]
                .as_str()
                .unwrap_or("")
                .starts_with("kubectl")
        })
        .map(|event| {
            let uri = event["requestURI"].as_str().unwrap_or("");
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            let method = match event["verb"].as_str().unwrap_or("") {
                "get" | "list" | "watch" => "GET",
                "create" => "POST",
                "update" => "PUT",
                "patch" => "PATCH",
                "delete" | "deletecollection" => "DELETE",
                other => other,
            };
            RequestRecord {
                method: method.to_string(),
                path: path.to_string(),
                query: query.to_string(),
                status: event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                user_agent: event["userAgent"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// Istio's control plane at `version` as Kyma installs it: the default revision's injector
/// ConfigMap and one istiod (`app=istiod`, container `discovery`).
pub fn istio_control_plane(version: &str) -> String {
    format!("{}---\n{}", istio_injector(version), istiod(version))
}

/// The default revision's injector ConfigMap, injecting `version` (and the `istio-system`
/// namespace, which kube-sim does not have until it is made).
pub fn istio_injector(version: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-sidecar-injector
  namespace: istio-system
  labels: {{app: sidecar-injector, istio.io/rev: default}}
data:
  values: '{{"global": {{"hub": "{HUB}", "tag": "{version}-distroless", "proxy": {{"image": "proxyv2"}}}}}}'
  config: 'policy: enabled'
"#
    )
}

/// istiod of the default revision at `version`.
pub fn istiod(version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod
  namespace: istio-system
  labels: {{app: istiod, istio.io/rev: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: istiod, istio.io/rev: default}}}}
  template:
    metadata:
      labels: {{app: istiod, istio.io/rev: default, istio: pilot}}
      annotations: {{sidecar.istio.io/inject: "false"}}
    spec:
      containers:
      - name: discovery
        image: {HUB}/pilot:{version}-distroless
"#
    )
}
