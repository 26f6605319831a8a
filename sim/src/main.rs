//! `kube-sim`: serve a simulated cluster, or generate a large snapshot.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube_sim::{Error, SimConfig};

#[derive(Parser)]
#[command(
    name = "kube-sim",
    version,
    about = "A simulated Kubernetes API server with controllers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API with the state of a snapshot until SIGTERM or SIGINT.
    Serve(Box<ServeArgs>),
    /// Run the real upstream control plane (etcd, kube-apiserver, kube-controller-manager,
    /// kube-scheduler, kwok) with kube-sim's injector as Istio's webhook, until SIGTERM or SIGINT.
    /// SIGUSR1 kills kube-apiserver with SIGKILL and starts it again.
    Upstream(UpstreamArgs),
    /// Print a realistic large cluster snapshot (`kind: List`) as JSON.
    Generate {
        /// About how many pods.
        #[arg(long)]
        pods: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The cluster's shape: `kyma` (pods of about 11 KB, Deployments with old revisions) or
        /// `lean` (pods of about 6 KB, one ReplicaSet per Deployment, many small Deployments).
        #[arg(long, default_value_t = kube_sim::generate::Shape::Kyma)]
        shape: kube_sim::generate::Shape,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The initial state: a `kind: List` (JSON or YAML).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Where to write the kubeconfig for clients.
    #[arg(long)]
    kubeconfig_out: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: std::net::SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Append `METHOD PATH?QUERY STATUS` per request to this file.
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// Inject this proxy image instead of the injector ConfigMap's.
    #[arg(long)]
    proxy_image: Option<String>,
    /// Delay every request by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fail each request with this probability (0..1), reproducibly from --seed.
    #[arg(long)]
    chaos: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Authorize requests against the Roles and bindings of this rendered YAML.
    #[arg(long, requires = "user")]
    rbac: Option<PathBuf>,
    /// The user the kubeconfig's current context acts as (with --rbac).
    #[arg(long = "as", id = "user")]
    user: Option<String>,
    /// Milliseconds a new pod takes from Pending to Ready.
    #[arg(long)]
    pod_start_ms: Option<u64>,
    /// How many changes are kept for watch resumption and continue tokens.
    #[arg(long)]
    history: Option<usize>,
}

#[derive(clap::Args)]
struct UpstreamArgs {
    /// Where to write the cluster-admin kubeconfig.
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// The binaries of sim/upstream/build.sh (default: the directory it prints).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// How many fake Nodes kwok keeps Ready.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Milliseconds a scheduled pod takes to become Running and Ready.
    #[arg(long, default_value_t = 300)]
    pod_start_ms: u64,
    /// A further kube-apiserver flag (repeatable), e.g. --apiserver-arg=--max-requests-inflight=5.
    #[arg(long = "apiserver-arg", allow_hyphen_values = true)]
    apiserver_args: Vec<String>,
}

async fn upstream(args: UpstreamArgs) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    // Signals are taken before anything starts (the build included), so none is lost to the
    // default action and leaves a child behind.
    let signal_error = |e| Error::io("cannot handle signals", e);
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(signal_error)?;
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => tokio::select! {
            built = tokio::task::spawn_blocking(kube_sim::upstream::bin_dir) => {
                built.map_err(|e| Error::Upstream(e.to_string()))??
            }
            _ = term.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        },
    };
    let mut cfg = kube_sim::upstream::UpstreamConfig::new(bin_dir);
    cfg.nodes = args.nodes;
    cfg.pod_start = Duration::from_millis(args.pod_start_ms);
    cfg.apiserver_args = args.apiserver_args;
    let started = std::time::Instant::now();
    let cluster = tokio::select! {
        started = kube_sim::upstream::start(cfg) => started?,
        _ = term.recv() => return Ok(()),
        _ = interrupt.recv() => return Ok(()),
    };
    cluster.write_kubeconfig(&args.kubeconfig_out)?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), dir = %cluster.dir().display(), "ready");
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "ready {}", cluster.url());
        let _ = stdout.flush();
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
            _ = usr1.recv() => {
                if let Err(e) = cluster.restart_apiserver().await {
                    eprintln!("kube-sim: {e}");
                }
            }
        }
    }
    cluster.shutdown().await;
    Ok(())
}

fn read_state(path: &PathBuf) -> Result<serde_json::Value, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    match serde_json::from_str(&text) {
        Ok(state) => Ok(state),
        Err(json_error) => serde_saphyr::from_str(&text).map_err(|_| Error::Json {
            context: format!("cannot parse {}", path.display()),
            source: json_error,
        }),
    }
}

async fn serve(args: ServeArgs) -> Result<(), Error> {
    let defaults = SimConfig::default();
    let rbac = match (&args.rbac, &args.user) {
        (Some(path), Some(user)) => {
            let yaml = std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            Some((yaml, user.clone()))
        }
        _ => None,
    };
    let cfg = SimConfig {
        state: match &args.state {
            Some(path) => read_state(path)?,
            None => defaults.state.clone(),
        },
        addr: args.addr,
        plain_http: args.plain_http,
        proxy_image: args.proxy_image,
        latency: Duration::from_millis(args.latency_ms),
        chaos: args.chaos.map(|rate| (rate, args.seed)),
        rbac,
        pod_start: args
            .pod_start_ms
            .map_or(defaults.pod_start, Duration::from_millis),
        request_log: args.request_log,
        history_limit: args.history.unwrap_or(defaults.history_limit),
        ..defaults
    };
    let sim = kube_sim::start(cfg).await?;
    sim.write_kubeconfig(&args.kubeconfig_out)?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "ready {}", sim.url());
        let _ = stdout.flush();
    }
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBE_SIM_LOG")
                .unwrap_or_else(|_| "warn,kube_client=off".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate { pods, seed, shape } => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            kube_sim::generate::generate_to_shaped(&mut stdout, pods, seed, shape)
                .and_then(|()| stdout.flush())
                .map_err(|e| Error::io("cannot write the snapshot", e))
        }
        Command::Serve(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(serve(*args)),
            Err(e) => Err(Error::io("cannot start the runtime", e)),
        },
        Command::Upstream(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(upstream(args)),
            Err(e) => Err(Error::io("cannot start the runtime", e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
