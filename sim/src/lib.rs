//! kube-sim: a simulated Kubernetes API server with controllers, for tests.
//!
//! Start one in-process with [`start`] and talk to it through the kubeconfig it writes, with the
//! `kube` client or `kubectl`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::Error> {
//! let state = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": []});
//! let sim = kube_sim::start(kube_sim::SimConfig { state, ..Default::default() }).await?;
//! sim.write_kubeconfig("/tmp/kubeconfig")?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod chaos;
pub mod controllers;
pub mod disruption;
pub mod error;
pub mod generate;
pub mod injector;
pub mod kubeconfig;
pub mod patch;
pub mod rbac;
pub mod selector;
mod server;
pub mod store;
pub mod tls;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

pub use error::{ApiError, Error};
pub use server::RequestRecord;
pub use store::Store;

/// How to start a simulated cluster. `SimConfig::default()` is an empty cluster on a free
/// loopback port over HTTPS, with controllers, no faults and no RBAC.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The initial state: a `kind: List`, as `kubectl get -o json` or `kube-sim generate` print it.
    pub state: Value,
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// The proxy image the injector uses instead of the state's injector ConfigMap's.
    pub proxy_image: Option<String>,
    /// A delay added to every request.
    pub latency: Duration,
    /// `(rate, seed)`: each request fails with probability `rate`, reproducibly from `seed`.
    pub chaos: Option<(f64, u64)>,
    /// `(rendered RBAC YAML, user)`: the kubeconfig's user is `user`, authorized by the YAML.
    pub rbac: Option<(String, String)>,
    /// How long a new pod takes from Pending to Ready.
    pub pod_start: Duration,
    /// Run the controllers (Deployments, ReplicaSets, …, the kubelet, PDB status).
    pub controllers: bool,
    /// Append one line per request (`METHOD PATH?QUERY STATUS`) to this file.
    pub request_log: Option<PathBuf>,
    /// How many changes are kept for watch resumption and `continue` tokens (older ones: 410).
    pub history_limit: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            state: json!({"apiVersion": "v1", "kind": "List", "items": []}),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            plain_http: false,
            proxy_image: None,
            latency: Duration::ZERO,
            chaos: None,
            rbac: None,
            pod_start: controllers::ControllerConfig::default().pod_start,
            controllers: true,
            request_log: None,
            history_limit: store::DEFAULT_HISTORY_LIMIT,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// A running simulated cluster. Dropping it stops it.
pub struct Sim {
    url: String,
    kubeconfig: String,
    ca_pem: Option<String>,
    user_token: String,
    admin_token: String,
    store: Arc<Store>,
    shared: Arc<server::Shared>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn random_token() -> String {
    (0..40).map(|_| fastrand::alphanumeric()).collect()
}

/// The namespaces every cluster has, and those the state's objects live in.
fn ensure_namespaces(store: &Store) {
    let namespaces = store::resource_for_kind("v1", "Namespace").expect("namespaces are served");
    let mut wanted: std::collections::BTreeSet<String> = ["default", "kube-system", "kube-public"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wanted.extend(store.namespaces_in_use());
    for ns in wanted {
        if store.get(namespaces, None, &ns).is_none() {
            let _ = store.create(
                namespaces,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                       "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            );
        }
    }
}

/// Starts a simulated cluster: loads the state, starts the controllers and serves the API.
/// Must be called inside a Tokio runtime.
pub async fn start(cfg: SimConfig) -> Result<Sim, Error> {
    let store = Store::new();
    store.set_history_limit(cfg.history_limit);
    store.load_owned_list(cfg.state)?;
    ensure_namespaces(&store);

    let (rbac, user) = match &cfg.rbac {
        Some((yaml, user)) => (Some(rbac::Rbac::from_yaml(yaml)?), user.clone()),
        None => (None, server::ADMIN_USER.to_string()),
    };
    let user_token = random_token();
    let admin_token = random_token();
    let log = server::RequestLog::new(cfg.request_log.as_ref()).map_err(|e| {
        Error::io(
            format!("cannot open the request log {:?}", cfg.request_log),
            e,
        )
    })?;
    let shared = Arc::new(server::Shared {
        store: store.clone(),
        tokens: server::Tokens {
            user: (user_token.clone(), user),
            admin: admin_token.clone(),
            issued: server::IssuedTokens::default(),
        },
        rbac,
        chaos: cfg.chaos.map(|(rate, seed)| chaos::Chaos::new(rate, seed)),
        latency: cfg.latency,
        proxy_image: cfg.proxy_image.clone(),
        log,
        evictions: disruption::Evictions::default(),
        bookmark_interval: cfg.bookmark_interval,
    });

    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {}", cfg.addr), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the listening address", e))?;
    let (tls, ca_pem, scheme) = if cfg.plain_http {
        (None, None, "http")
    } else {
        let cluster_tls = tls::ClusterTls::generate()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(cluster_tls.server_config.clone());
        (Some(acceptor), Some(cluster_tls.ca_pem), "https")
    };
    let url = format!("{scheme}://{addr}");
    let kubeconfig = kubeconfig::render(&url, ca_pem.as_deref(), &user_token, &admin_token);

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut tasks = vec![tokio::spawn(server::serve(
        listener,
        tls,
        shared.clone(),
        shutdown_rx,
    ))];
    tasks.push(disruption::spawn_status_updater(store.clone()));
    if cfg.controllers {
        let controller_cfg = controllers::ControllerConfig {
            pod_start: cfg.pod_start,
            proxy_image: cfg.proxy_image.clone(),
        };
        tasks.push(controllers::spawn(store.clone(), controller_cfg));
    }
    Ok(Sim {
        url,
        kubeconfig,
        ca_pem,
        user_token,
        admin_token,
        store,
        shared,
        shutdown,
        tasks,
    })
}

impl Sim {
    /// The server's URL, e.g. `https://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig (YAML): context `kube-sim` (current, the configured user) and
    /// `kube-sim-admin` (never subject to RBAC).
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Writes [`Sim::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, &self.kubeconfig)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    /// The CA certificate (PEM) clients must trust; `None` with plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The bearer token of the configured user.
    pub fn token(&self) -> &str {
        &self.user_token
    }

    /// The bearer token that is never subject to RBAC.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The cluster state, to arrange or inspect it directly.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.records()
    }

    /// Forgets the requests recorded so far (the request log file keeps them).
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// Stops serving (open watches are cut) and stops the controllers.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}
