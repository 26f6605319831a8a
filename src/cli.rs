//! The command line (DESIGN §3). Every option is also an `ISTIO_PROXY_RESET_<NAME>` environment
//! variable, which is how the Job configures it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Parser, Subcommand};

use crate::controlplane::{self, ControlPlane};
use crate::inventory::{InventoryBuilder, snapshot};
use crate::plan::{self, PlanOptions};
use crate::report::{Format, Mode, Report};
use crate::{Error, Result, exit};

#[derive(Debug, Parser)]
#[command(
    name = "istio-proxy-reset",
    version,
    about = "Restarts the workloads whose Istio proxy differs from the control plane, in a safe order, and reports what it did.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A dry run: classify every proxy and print the plan. Never writes to the cluster.
    Plan(Box<PlanArgs>),
    /// Render a saved report (`--report-file`) as a table, markdown or JSON.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan from a snapshot file (`kind: List`) instead of a live cluster.
    #[arg(long, env = "ISTIO_PROXY_RESET_SNAPSHOT", value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report written by `--report-file`.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// The options `plan` and `run` share.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Kubeconfig file; without one, the in-cluster service account (or $KUBECONFIG).
    #[arg(long, env = "ISTIO_PROXY_RESET_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, env = "ISTIO_PROXY_RESET_CONTEXT")]
    pub context: Option<String>,
    /// The proxy version every pod must run, instead of the one the control plane says.
    #[arg(
        long,
        env = "ISTIO_PROXY_RESET_EXPECTED_VERSION",
        value_name = "VERSION"
    )]
    pub expected_version: Option<String>,
    /// The proxy image every pod must run, instead of the one the injector says.
    #[arg(long, env = "ISTIO_PROXY_RESET_EXPECTED_IMAGE", value_name = "IMAGE")]
    pub expected_image: Option<String>,
    /// Where istiod and the injector ConfigMap live.
    #[arg(
        long,
        env = "ISTIO_PROXY_RESET_ISTIO_NAMESPACE",
        default_value = "istio-system"
    )]
    pub istio_namespace: String,
    /// Never restart anything in this namespace (repeatable; its stale proxies are reported `excluded`).
    #[arg(
        long = "exclude-namespace",
        env = "ISTIO_PROXY_RESET_EXCLUDE_NAMESPACE",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    pub exclude_namespaces: Vec<String>,
    /// Only look at this namespace (repeatable).
    #[arg(
        long = "namespace",
        env = "ISTIO_PROXY_RESET_NAMESPACE",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    pub namespaces: Vec<String>,
    /// What goes to stdout: `table` on a terminal, `json` otherwise.
    #[arg(long, env = "ISTIO_PROXY_RESET_FORMAT", value_enum)]
    pub format: Option<Format>,
    /// Also write the JSON report to this file.
    #[arg(long, env = "ISTIO_PROXY_RESET_REPORT_FILE", value_name = "PATH")]
    pub report_file: Option<PathBuf>,
    /// Also write the report to this ConfigMap (`run` only).
    #[arg(
        long,
        env = "ISTIO_PROXY_RESET_REPORT_CONFIGMAP",
        value_name = "NAMESPACE/NAME"
    )]
    pub report_configmap: Option<String>,
    /// How many workloads restart at once.
    #[arg(long, env = "ISTIO_PROXY_RESET_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// How long one workload's rollout may take before it counts as failed.
    #[arg(long, env = "ISTIO_PROXY_RESET_ROLLOUT_TIMEOUT", default_value = "10m",
          value_parser = parse_duration, value_name = "DURATION")]
    pub rollout_timeout: Duration,
    /// Restart and report without waiting for rollouts to finish.
    #[arg(long, env = "ISTIO_PROXY_RESET_NO_WAIT")]
    pub no_wait: bool,
    /// Exit 3 when manual items remain.
    #[arg(long, env = "ISTIO_PROXY_RESET_FAIL_ON_MANUAL")]
    pub fail_on_manual: bool,
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 90s, 10m or 1h: {e}"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

impl Options {
    fn control_plane_options(&self) -> controlplane::Options {
        controlplane::Options {
            istio_namespace: self.istio_namespace.clone(),
            expected_version: self.expected_version.clone(),
            expected_image: self.expected_image.clone(),
        }
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            exclude_namespaces: self.exclude_namespaces.clone(),
        }
    }

    fn stdout_format(&self) -> Format {
        self.format.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        })
    }
}

/// Runs a parsed command line; the process's exit code.
pub fn main(cli: Cli) -> i32 {
    let outcome = match cli.command {
        Command::Plan(args) => plan_command(*args),
        Command::Report(args) => report_command(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error}");
            error.exit_code()
        }
    }
}

fn plan_command(args: PlanArgs) -> Result<i32> {
    let started = Utc::now();
    let options = &args.options;
    if options.report_configmap.is_some() {
        return Err(Error::Usage {
            option: "--report-configmap".into(),
            problem: "`plan` never writes to the cluster; use --report-file, or `run`".into(),
        });
    }
    let Some(path) = &args.snapshot else {
        return Err(Error::Usage {
            option: "--snapshot".into(),
            problem: "planning against a live cluster is not available in this build; give --snapshot FILE".into(),
        });
    };
    let inventory = snapshot::read_file(path, InventoryBuilder::with_scope(&options.namespaces))?;
    tracing::debug!(ignored = ?inventory.ignored_kinds, "kinds in the snapshot the plan does not use");
    let control_plane = ControlPlane::resolve(&inventory, &options.control_plane_options())?;
    let gate = control_plane.gate();
    if !gate.passed {
        tracing::warn!(
            problems = ?gate.problems,
            "the control-plane gate fails: `run` would restart nothing (exit 2)"
        );
    }
    let plan = plan::plan(&inventory, &control_plane, &options.plan_options());
    let mut report = Report::from_plan(Mode::Plan, started, &plan, &control_plane, &gate);
    report.finished_at = Utc::now();
    emit(&report, options)?;
    tracing::info!(
        proxies = report.summary.proxies,
        drifted = report.summary.drifted,
        workloads = report.workloads.len(),
        manual = report.summary.manual,
        "plan ready"
    );
    Ok(if options.fail_on_manual && report.summary.manual > 0 {
        exit::FAILED
    } else {
        exit::DONE
    })
}

fn report_command(args: ReportArgs) -> Result<i32> {
    let report = Report::read(&args.file)?;
    write_stdout(&report.render(args.format)?)?;
    Ok(exit::DONE)
}

/// Sends the report where the options say: stdout and the report file.
fn emit(report: &Report, options: &Options) -> Result<()> {
    if let Some(path) = &options.report_file {
        let json = report.render(Format::Json)?;
        std::fs::write(path, json).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    write_stdout(&report.render(options.stdout_format())?)
}

fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|source| Error::Io {
            path: "stdout".into(),
            source,
        }),
    }
}
