//! The upstream control plane: real etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, with kwok as the kubelet of fake Nodes and kube-sim's injector as Istio's
//! webhook, all on loopback (DESIGN §5.1). The same scenarios run here and on kube-sim; where
//! they differ, `sim/README.md`'s parity matrix says why.
//!
//! `start` needs the binaries `sim/upstream/build.sh` builds. Every process is a child of a
//! supervisor thread that lives as long as the process, started with `PR_SET_PDEATHSIG`, so that
//! none outlives its parent even when that is killed; [`Upstream::shutdown`] (or dropping the
//! handle) stops them all and removes the control plane's directory.

mod binaries;
mod pki;
pub mod webhook;

pub use binaries::{available_for_tests, bin_dir};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::Error;
use crate::injector::{self, ISTIO_NAMESPACE};
use crate::kubeconfig;

/// How to start an upstream control plane.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Where `build.sh` put etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.
    pub bin_dir: PathBuf,
    /// How many fake Nodes kwok keeps Ready.
    pub nodes: usize,
    /// How long a scheduled pod takes to become Running and Ready (kwok's Stage delay).
    pub pod_start: Duration,
    /// More kube-apiserver flags (`--etcd-compaction-interval=10s`, `--max-requests-inflight=5`).
    pub apiserver_args: Vec<String>,
}

impl UpstreamConfig {
    pub fn new(bin_dir: impl Into<PathBuf>) -> UpstreamConfig {
        UpstreamConfig {
            bin_dir: bin_dir.into(),
            nodes: 3,
            pod_start: Duration::from_millis(300),
            apiserver_args: Vec::new(),
        }
    }
}

/// A running upstream control plane. Dropping it stops every process and removes its directory.
pub struct Upstream {
    url: String,
    kubeconfig: String,
    supervisor_kubeconfig: String,
    admin_token: String,
    ca_pem: String,
    /// Where Istio's webhook configurations point: `https://127.0.0.1:PORT`.
    webhook_url: String,
    audit_log: PathBuf,
    processes: Arc<Mutex<Processes>>,
    webhook: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

/// The children, in start order, and how to start kube-apiserver again.
struct Processes {
    spawner: Spawner,
    children: Vec<(&'static str, Child)>,
    apiserver: Vec<String>,
    bin_dir: PathBuf,
    logs: PathBuf,
}

/// Spawns children from one thread that never ends: `PR_SET_PDEATHSIG` fires when the thread
/// that forked a child exits, so a short-lived thread (tokio's blocking pool) would kill them early.
#[derive(Clone)]
struct Spawner(mpsc::Sender<(Command, mpsc::Sender<std::io::Result<Child>>)>);

impl Spawner {
    fn get() -> Spawner {
        static SPAWNER: std::sync::OnceLock<Spawner> = std::sync::OnceLock::new();
        SPAWNER
            .get_or_init(|| {
                let (send, receive) =
                    mpsc::channel::<(Command, mpsc::Sender<std::io::Result<Child>>)>();
                std::thread::Builder::new()
                    .name("upstream-spawner".into())
                    .spawn(move || {
                        for (mut command, reply) in receive {
                            let _ = reply.send(command.spawn());
                        }
                    })
                    .expect("a thread can be started");
                Spawner(send)
            })
            .clone()
    }

    fn spawn(&self, mut command: Command) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe, and nothing here allocates: nothing
        // else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would end this child.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let (reply, answer) = mpsc::channel();
        self.0
            .send((command, reply))
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
    }
}

impl Processes {
    fn start(&mut self, name: &'static str, bin: &Path, args: &[String]) -> Result<(), Error> {
        let log_path = self.logs.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("cannot open {}", log_path.display()), e))?;
        let err = log
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate a log file", e))?;
        let mut command = Command::new(bin);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = self
            .spawner
            .spawn(command)
            .map_err(|e| Error::io(format!("cannot start {}", bin.display()), e))?;
        self.children.push((name, child));
        Ok(())
    }

    /// A child that has exited, with the end of its log: why the control plane is not ready.
    fn exited(&mut self) -> Option<String> {
        let (name, status) = self
            .children
            .iter_mut()
            .find_map(|(name, child)| child.try_wait().ok().flatten().map(|s| (*name, s)))?;
        Some(format!("{name} exited ({status}):\n{}", self.tail(name)))
    }

    /// The last lines of a child's log (the directory goes with the handle, so errors carry them).
    fn tail(&self, name: &str) -> String {
        let log =
            std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM to every child still running; SIGKILL to those still there after `grace`.
    fn stop_all(&mut self, grace: Duration) {
        for (_, child) in self.children.iter_mut() {
            // A child already reaped has given up its pid, which another process may now hold.
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: a signal to our own child, not yet reaped.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + grace;
        for (_, child) in self.children.iter_mut().rev() {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }

    /// kube-apiserver killed with SIGKILL and started again with the same flags and port.
    fn restart_apiserver(&mut self) -> Result<(), Error> {
        if let Some(index) = self
            .children
            .iter()
            .position(|(n, _)| *n == "kube-apiserver")
        {
            let (_, mut child) = self.children.remove(index);
            let _ = child.kill();
            let _ = child.wait();
        }
        let (args, bin) = (self.apiserver.clone(), self.bin_dir.join("kube-apiserver"));
        self.start("kube-apiserver", &bin, &args)
    }
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("cannot find a free loopback port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("cannot read a port", e))
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn random_token() -> String {
    (0..40).map(|_| fastrand::alphanumeric()).collect()
}

/// A kubeconfig with one user: the token of a component.
fn component_kubeconfig(url: &str, ca_pem: &str, token: &str) -> String {
    kubeconfig::render(url, Some(ca_pem), token, token)
}

/// Static bearer tokens: the admin's (tests and the tool), the supervisor's (readiness,
/// installing, the webhook's ConfigMap reads: a user of its own, so that the admin's requests in
/// the audit log are only the tests' and the tool's), and one per component, each a user the
/// bootstrap RBAC knows.
struct Tokens {
    admin: String,
    supervisor: String,
    controller_manager: String,
    scheduler: String,
    kwok: String,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            admin: random_token(),
            supervisor: random_token(),
            controller_manager: random_token(),
            scheduler: random_token(),
            kwok: random_token(),
        }
    }

    /// `--token-auth-file`: token, user, uid, groups.
    fn csv(&self) -> String {
        format!(
            "{},kube-sim:admin,kube-sim:admin,system:masters\n\
             {},kube-sim:supervisor,kube-sim:supervisor,system:masters\n\
             {},system:kube-controller-manager,system:kube-controller-manager,\n\
             {},system:kube-scheduler,system:kube-scheduler,\n\
             {},kwok,kwok,system:masters\n",
            self.admin, self.supervisor, self.controller_manager, self.scheduler, self.kwok
        )
    }
}

/// Where a control plane's files are, its ports, and its keys: everything its flags name.
struct Layout {
    root: PathBuf,
    pki: pki::Pki,
    etcd_port: u16,
    peer_port: u16,
    apiserver_port: u16,
    url: String,
}

impl Layout {
    fn new(root: &Path) -> Result<Layout, Error> {
        let apiserver_port = free_port()?;
        Ok(Layout {
            root: root.to_path_buf(),
            pki: pki::Pki::generate(root)?,
            etcd_port: free_port()?,
            peer_port: free_port()?,
            apiserver_port,
            url: format!("https://127.0.0.1:{apiserver_port}"),
        })
    }

    fn at(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    /// tokens.csv, the components' kubeconfigs, the audit policy and kwok's configuration.
    fn write_files(&self, cfg: &UpstreamConfig, tokens: &Tokens) -> Result<(), Error> {
        write(&self.root.join("tokens.csv"), &tokens.csv())?;
        for (name, token) in [
            ("controller-manager", &tokens.controller_manager),
            ("scheduler", &tokens.scheduler),
            ("kwok", &tokens.kwok),
        ] {
            write(
                &self.root.join(format!("{name}.kubeconfig")),
                &component_kubeconfig(&self.url, &self.pki.ca_pem, token),
            )?;
        }
        write(&self.root.join("audit-policy.yaml"), AUDIT_POLICY)?;
        let pod_start_ms = cfg.pod_start.as_millis().to_string();
        write(
            &self.root.join("kwok.yaml"),
            &include_str!("kwok.yaml").replace("POD_START_MS", &pod_start_ms),
        )
    }
}

/// What the injector webhook reads for a revision, at the time of the request: its ConfigMap's
/// values and config, and its istiod's `ENABLE_NATIVE_SIDECARS`.
fn injector_values(client: kube::Client) -> webhook::ValuesSource {
    Arc::new(move |revision: String| {
        let client = client.clone();
        Box::pin(async move {
            let name = injector::injector_configmap(&revision);
            let path = format!("/api/v1/namespaces/{ISTIO_NAMESPACE}/configmaps/{name}");
            let configmap = match request(&client, "GET", &path, None).await {
                Ok(configmap) => configmap,
                Err(RequestError::Status(404, _)) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let path = format!("/apis/apps/v1/namespaces/{ISTIO_NAMESPACE}/deployments");
            let deployments = request(&client, "GET", &path, None)
                .await
                .map_err(|e| e.to_string())?;
            let deployments: Vec<&Value> = deployments["items"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let native = injector::istiod_native_env(&deployments, &revision);
            Ok(Some(injector::RevisionInjector::from_configmap(
                &configmap, native,
            )))
        })
    })
}

const WEBHOOK_CONFIGURATIONS: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the injector
/// webhook; creates the Nodes, the `istio-system` namespace and Istio's webhook configuration of
/// the default revision; returns once the Nodes are Ready and the controllers run. Must be
/// called inside a Tokio runtime.
pub async fn start(cfg: UpstreamConfig) -> Result<Upstream, Error> {
    for bin in BINARIES {
        let path = cfg.bin_dir.join(bin);
        if !path.is_file() {
            return Err(Error::io(
                format!("no {} (run sim/upstream/build.sh)", path.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("kube-sim-upstream-")
        .tempdir()
        .map_err(|e| Error::io("cannot make the control plane's directory", e))?;
    let layout = Layout::new(dir.path())?;
    let tokens = Tokens::new();
    layout.write_files(&cfg, &tokens)?;
    let apiserver = apiserver_args(&cfg, &layout);
    let processes = Arc::new(Mutex::new(Processes {
        spawner: Spawner::get(),
        children: Vec::new(),
        apiserver: apiserver.clone(),
        bin_dir: cfg.bin_dir.clone(),
        logs: layout.root.clone(),
    }));
    let supervisor_kubeconfig =
        component_kubeconfig(&layout.url, &layout.pki.ca_pem, &tokens.supervisor);
    let client = admin_client(&supervisor_kubeconfig).await?;
    let (webhook_addr, webhook) = webhook::serve(
        &layout.pki.webhook_cert_pem,
        &layout.pki.webhook_key_pem,
        injector_values(client.clone()),
    )
    .await?;
    let upstream = Upstream {
        url: layout.url.clone(),
        kubeconfig: kubeconfig::render(
            &layout.url,
            Some(&layout.pki.ca_pem),
            &tokens.admin,
            &tokens.admin,
        ),
        supervisor_kubeconfig,
        admin_token: tokens.admin.clone(),
        ca_pem: layout.pki.ca_pem.clone(),
        webhook_url: format!("https://{webhook_addr}"),
        audit_log: layout.root.join("audit.log"),
        processes: processes.clone(),
        webhook,
        dir,
    };

    let bin = |name: &str| cfg.bin_dir.join(name);
    {
        let mut p = processes.lock().expect("not poisoned");
        p.start("etcd", &bin("etcd"), &etcd_args(&layout))?;
        p.start("kube-apiserver", &bin("kube-apiserver"), &apiserver)?;
    }
    upstream
        .wait_ready(&client, Duration::from_secs(90))
        .await?;
    {
        let mut p = processes.lock().expect("not poisoned");
        let controller_manager = controller_manager_args(&layout);
        p.start(
            "kube-controller-manager",
            &bin("kube-controller-manager"),
            &controller_manager,
        )?;
        p.start(
            "kube-scheduler",
            &bin("kube-scheduler"),
            &scheduler_args(&layout),
        )?;
        p.start("kwok", &bin("kwok"), &kwok_args(&layout))?;
    }
    upstream.install(&client, &cfg).await?;
    Ok(upstream)
}

fn etcd_args(layout: &Layout) -> Vec<String> {
    let (client, peer) = (layout.etcd_port, layout.peer_port);
    vec![
        format!("--data-dir={}", layout.at("etcd")),
        format!("--listen-client-urls=http://127.0.0.1:{client}"),
        format!("--advertise-client-urls=http://127.0.0.1:{client}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-cluster=default=http://127.0.0.1:{peer}"),
        // A test cluster's data is thrown away: no fsync, which makes etcd far faster on a shared disk.
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ]
}

/// kube-apiserver's flags, each needed for what DESIGN §5.1 asks of it.
fn apiserver_args(cfg: &UpstreamConfig, layout: &Layout) -> Vec<String> {
    let pki = &layout.pki;
    let path = |p: &Path| p.display().to_string();
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{}", layout.etcd_port),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={}", layout.apiserver_port),
        format!("--tls-cert-file={}", path(&pki.apiserver_cert)),
        format!("--tls-private-key-file={}", path(&pki.apiserver_key)),
        // Clients authenticate with the static tokens of tokens.csv, or ServiceAccount tokens.
        format!("--token-auth-file={}", layout.at("tokens.csv")),
        format!("--client-ca-file={}", path(&pki.ca_cert)),
        format!(
            "--service-account-key-file={}",
            path(&pki.service_account_pub)
        ),
        format!(
            "--service-account-signing-key-file={}",
            path(&pki.service_account_key)
        ),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        // As a real cluster: Node and RBAC authorization; the default admission plugins
        // (PodSecurity, ServiceAccount, the webhooks among them) are on without a flag.
        "--authorization-mode=Node,RBAC".into(),
        // The request log of the upstream backend: one JSON line per request, written as it is answered.
        format!("--audit-policy-file={}", layout.at("audit-policy.yaml")),
        format!("--audit-log-path={}", layout.at("audit.log")),
        "--audit-log-format=json".into(),
        "--audit-log-mode=blocking".into(),
        // Never rotated while a test binary runs (lumberjack's default is 100 MB).
        "--audit-log-maxsize=100000".into(),
        "--profiling=false".into(),
    ];
    args.extend(cfg.apiserver_args.iter().cloned());
    args
}

fn controller_manager_args(layout: &Layout) -> Vec<String> {
    let pki = &layout.pki;
    vec![
        format!(
            "--kubeconfig={}",
            layout.at("controller-manager.kubeconfig")
        ),
        // Token controller and kube-root-ca.crt publisher: ServiceAccount tokens work in pods.
        format!(
            "--service-account-private-key-file={}",
            pki.service_account_key.display()
        ),
        format!("--root-ca-file={}", pki.ca_cert.display()),
        // Every controller acts as its own ServiceAccount, as in a real cluster's RBAC.
        "--use-service-account-credentials=true".into(),
        // A test cluster is not throttled by its own controller manager.
        "--kube-api-qps=500".into(),
        "--kube-api-burst=1000".into(),
        "--leader-elect=false".into(),
        // No serving port: nothing scrapes it, and two control planes must not collide.
        "--secure-port=0".into(),
        // kwok renews Node leases; a kube-apiserver restart on a loaded machine must not make
        // the Nodes NotReady (and their pods with them) before it is back.
        "--node-monitor-grace-period=5m".into(),
    ]
}

fn scheduler_args(layout: &Layout) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", layout.at("scheduler.kubeconfig")),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
        // Binding thousands of pods at its default 50 requests a second takes minutes.
        "--kube-api-qps=500".into(),
        "--kube-api-burst=1000".into(),
    ]
}

fn kwok_args(layout: &Layout) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", layout.at("kwok.kubeconfig")),
        format!("--config={}", layout.at("kwok.yaml")),
    ]
}

/// Every request of a client (the tests, the tool, a ServiceAccount it runs as) at Metadata level
/// (no bodies: Secrets never reach the log), once answered; the control plane's own are left out.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: [system:apiserver, system:kube-controller-manager, system:kube-scheduler, kwok, kube-sim:supervisor]
- level: None
  userGroups: [system:serviceaccounts:kube-system, system:nodes]
- level: Metadata
";

/// An answer other than 2xx, or no answer.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("{0}: {1}")]
    Status(u16, String),
    #[error("{0}")]
    Transport(String),
}

async fn admin_client(kubeconfig: &str) -> Result<kube::Client, Error> {
    let config = kube::config::Kubeconfig::from_yaml(kubeconfig)
        .map_err(|e| Error::Upstream(format!("the admin kubeconfig: {e}")))?;
    let options = kube::config::KubeConfigOptions::default();
    let mut config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .map_err(|e| Error::Upstream(format!("the admin kubeconfig: {e}")))?;
    config.read_timeout = Some(Duration::from_secs(10));
    kube::Client::try_from(config).map_err(|e| Error::Upstream(format!("a client: {e}")))
}

async fn request(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, RequestError> {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| RequestError::Transport(e.to_string()))?;
    match client.request_text(request).await {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap_or(Value::String(text))),
        Err(kube::Error::Api(status)) => Err(RequestError::Status(status.code, status.message)),
        Err(e) => Err(RequestError::Transport(e.to_string())),
    }
}

impl Upstream {
    /// kube-apiserver's URL, e.g. `https://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A cluster-admin kubeconfig (YAML), with the contexts of kube-sim's
    /// (`kube-sim` and `kube-sim-admin`), so the same tests address either backend.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        write(path.as_ref(), &self.kubeconfig)
    }

    /// The cluster-admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The CA that signed kube-apiserver's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// kube-apiserver's audit log: one JSON object per answered request (`verb`, `requestURI`,
    /// `responseStatus.code`, `userAgent`, `user.username`), the request log of this backend.
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// The control plane's directory (certificates, kubeconfigs, each process's log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills kube-apiserver with SIGKILL and starts it again with the same flags and port; returns
    /// once it is ready again.
    pub async fn restart_apiserver(&self) -> Result<(), Error> {
        self.processes
            .lock()
            .expect("not poisoned")
            .restart_apiserver()?;
        let client = admin_client(&self.supervisor_kubeconfig).await?;
        self.wait_ready(&client, Duration::from_secs(90)).await
    }

    async fn wait_ready(&self, client: &kube::Client, limit: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(why) = self.processes.lock().expect("not poisoned").exited() {
                return Err(Error::Upstream(format!(
                    "the control plane did not start: {why}"
                )));
            }
            if let Ok(Value::String(ok)) = request(client, "GET", "/readyz", None).await
                && ok.trim() == "ok"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = self
                    .processes
                    .lock()
                    .expect("not poisoned")
                    .tail("kube-apiserver");
                return Err(Error::Upstream(format!(
                    "kube-apiserver was not ready within {limit:?}; its log ends:\n{tail}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Nodes, `istio-system` and the default revision's webhooks; then waits for the Nodes to be
    /// Ready and the controller manager to have made the `default` ServiceAccount.
    async fn install(&self, client: &kube::Client, cfg: &UpstreamConfig) -> Result<(), Error> {
        let fail =
            |what: &str, e: RequestError| Error::Upstream(format!("cannot create {what}: {e}"));
        for index in 0..cfg.nodes {
            let node = json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": format!("kwok-node-{index}"),
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"kubernetes.io/hostname": format!("kwok-node-{index}"),
                               "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
                },
            });
            request(client, "POST", "/api/v1/nodes", Some(&node))
                .await
                .map_err(|e| fail("a Node", e))?;
        }
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE}});
        request(client, "POST", "/api/v1/namespaces", Some(&namespace))
            .await
            .map_err(|e| fail("istio-system", e))?;
        let webhooks =
            webhook::istio_webhook_configuration("default", &self.webhook_url, &self.ca_pem);
        self.put_webhook_configuration_with(client, &webhooks)
            .await?;

        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(why) = self.processes.lock().expect("not poisoned").exited() {
                return Err(Error::Upstream(format!(
                    "the control plane did not start: {why}"
                )));
            }
            let nodes = request(client, "GET", "/api/v1/nodes", None).await;
            let ready = nodes.as_ref().map_or(0, |n| {
                n["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|node| {
                        node["status"]["conditions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                    .count()
            });
            let service_account = request(
                client,
                "GET",
                "/api/v1/namespaces/default/serviceaccounts/default",
                None,
            )
            .await;
            if ready == cfg.nodes && service_account.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Upstream(format!(
                    "{ready} of {} Nodes Ready, the default ServiceAccount {}, after 90 s (logs in {})",
                    cfg.nodes,
                    if service_account.is_ok() {
                        "made"
                    } else {
                        "not made"
                    },
                    self.dir().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Where Istio's webhook configurations point (`https://127.0.0.1:PORT`); a revision's
    /// injector is at `/inject/<revision>`.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// Installs (or replaces) the webhook configuration Istio installs for `revision`
    /// (`istio-sidecar-injector[-<revision>]`), pointing at the injector's path for it.
    pub async fn add_revision_webhooks(&self, revision: &str) -> Result<(), Error> {
        self.put_webhook_configuration(&istio_injection::webhooks::revision_configuration(revision))
            .await
    }

    /// Installs (or replaces) the configuration of the revision tag `tag` pointing at
    /// `revision` (`istio-revision-tag-<tag>`), as `istioctl tag set` does.
    pub async fn add_tag_webhooks(&self, tag: &str, revision: &str) -> Result<(), Error> {
        self.put_webhook_configuration(&istio_injection::webhooks::tag_configuration(tag, revision))
            .await
    }

    /// Creates `configuration` (one of `istio_injection::webhooks`', or one made from it, say
    /// `deactivated`), or replaces the one of its name, its webhooks calling the injector's
    /// path for the configuration's revision.
    pub async fn put_webhook_configuration(
        &self,
        configuration: &istio_injection::WebhookConfiguration,
    ) -> Result<(), Error> {
        let client = admin_client(&self.supervisor_kubeconfig).await?;
        let json = webhook::configuration_json(configuration, &self.webhook_url, &self.ca_pem);
        self.put_webhook_configuration_with(&client, &json).await
    }

    /// Deletes the webhook configuration `name`; one that is not there is no error.
    pub async fn delete_webhook_configuration(&self, name: &str) -> Result<(), Error> {
        let client = admin_client(&self.supervisor_kubeconfig).await?;
        match request(
            &client,
            "DELETE",
            &format!("{WEBHOOK_CONFIGURATIONS}/{name}"),
            None,
        )
        .await
        {
            Ok(_) | Err(RequestError::Status(404, _)) => Ok(()),
            Err(e) => Err(Error::Upstream(format!(
                "cannot delete the webhook configuration {name}: {e}"
            ))),
        }
    }

    /// Creates the configuration, or replaces the one of its name.
    async fn put_webhook_configuration_with(
        &self,
        client: &kube::Client,
        configuration: &Value,
    ) -> Result<(), Error> {
        let name = configuration["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let fail = |e: RequestError| {
            Error::Upstream(format!(
                "cannot write the webhook configuration {name}: {e}"
            ))
        };
        let path = format!("{WEBHOOK_CONFIGURATIONS}/{name}");
        match request(client, "GET", &path, None).await {
            Ok(existing) => {
                let mut replacement = configuration.clone();
                replacement["metadata"]["resourceVersion"] =
                    existing["metadata"]["resourceVersion"].clone();
                request(client, "PUT", &path, Some(&replacement))
                    .await
                    .map_err(fail)?;
            }
            Err(RequestError::Status(404, _)) => {
                request(client, "POST", WEBHOOK_CONFIGURATIONS, Some(configuration))
                    .await
                    .map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
        }
        Ok(())
    }

    /// Kills every process at once and removes the directory, for a handle that is never dropped
    /// (a test binary's shared control plane, stopped at exit).
    pub fn kill(&self) {
        self.stop(Duration::ZERO);
    }

    /// Stops every process (SIGTERM, then SIGKILL after 5 s) and removes the directory.
    pub async fn shutdown(self) {
        let _ = tokio::task::spawn_blocking(move || self.stop(Duration::from_secs(5))).await;
    }

    /// The webhook, then every process (SIGTERM, SIGKILL after `grace`), then the directory.
    fn stop(&self, grace: Duration) {
        self.webhook.abort();
        if let Ok(mut processes) = self.processes.lock() {
            processes.stop_all(grace);
        }
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}
