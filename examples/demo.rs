//! The quick start: the real `istio-proxy-reset run` against a simulated Kyma cluster in the
//! middle of an Istio upgrade, with nothing to set up.
//!
//! ```sh
//! cargo run --release --example demo                   # run on examples/kyma-upgrade.json
//! cargo run --release --example demo -- --concurrency 2 --format markdown
//! ```
//!
//! It starts kube-sim on 127.0.0.1 with `examples/kyma-upgrade.json` as the cluster's state,
//! points the tool at it over HTTPS with a kubeconfig, runs it, and stops the simulator.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use istio_proxy_reset::{cli, telemetry};

fn main() -> std::process::ExitCode {
    let state_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/kyma-upgrade.json");
    let state: serde_json::Value = match std::fs::read(&state_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(state) => state,
        Err(error) => {
            eprintln!("{}: {error}", state_path.display());
            return std::process::ExitCode::from(1);
        }
    };
    let workdir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = workdir.path().join("kubeconfig");

    // The simulated cluster runs on its own thread and runtime; the tool builds its own.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let kubeconfig_for_sim = kubeconfig.clone();
    let simulator = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let config = kube_sim::SimConfig {
                state,
                // Slow enough to watch the rollouts happen, quick enough not to wait long.
                pod_start: Duration::from_millis(400),
                ..kube_sim::SimConfig::default()
            };
            match kube_sim::start(config).await {
                Ok(sim) => {
                    let written = sim
                        .write_kubeconfig(&kubeconfig_for_sim)
                        .map(|_| sim.url().to_string());
                    let _ = ready_tx.send(written.map_err(|e| e.to_string()));
                    let _ = stop_rx.await;
                    sim.shutdown().await;
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error.to_string()));
                }
            }
        });
    });
    let url = match ready_rx.recv() {
        Ok(Ok(url)) => url,
        Ok(Err(error)) => {
            eprintln!("kube-sim did not start: {error}");
            return std::process::ExitCode::from(1);
        }
        Err(_) => {
            eprintln!("kube-sim stopped before it was ready");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!("kube-sim is serving {} at {url}", state_path.display());

    let report_file = workdir.path().join("report.json");
    let mut args: Vec<String> = vec![
        "istio-proxy-reset".into(),
        "run".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--format".into(),
        "table".into(),
        "--report-file".into(),
        report_file.display().to_string(),
        "--report-configmap".into(),
        "kyma-system/istio-proxy-reset-report".into(),
    ];
    args.extend(std::env::args().skip(1));
    let code = match cli::Cli::try_parse_from(&args) {
        Ok(parsed) => {
            telemetry::init();
            cli::main(parsed)
        }
        Err(error) => {
            let _ = error.print();
            1
        }
    };
    let _ = stop_tx.send(());
    let _ = simulator.join();
    std::process::ExitCode::from(code as u8)
}
