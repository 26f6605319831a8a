//! The command line (DESIGN §3). Every option is also an `ISTIO_PROXY_RESET_<NAME>` environment
//! variable, which is how the Job configures it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::controlplane::{self, ControlPlane, Gate};
use crate::drift::{Reason, Reasons};
use crate::execute::{self, Board, Progress as WorkState};
use crate::inventory::live::{self, Scope};
use crate::inventory::{Inventory, InventoryBuilder, snapshot};
use crate::plan::{self, Plan, PlanOptions, runbook};
use crate::report::{Format, Mode, Report, Status};
use crate::{Error, Result, cluster, exit, sinks};

#[derive(Debug, Parser)]
#[command(
    name = "istio-proxy-reset",
    version,
    about = "Restarts the workloads whose Istio proxy differs from the control plane, in a safe order, and reports what it did.",
    propagate_version = true,
    // A later option wins over an earlier one, as in kubectl: scripts append overrides.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A dry run: classify every proxy and print the plan. Never writes to the cluster.
    Plan(Box<PlanArgs>),
    /// Restart the workloads whose proxy is stale, wait for them, and report: what the Job runs.
    Run(Box<RunArgs>),
    /// Render a saved report (`--report-file`) as a table, markdown or JSON.
    Report(ReportArgs),
    /// Print the cluster's state as the `kind: List` that `plan --snapshot` reads (managedFields
    /// stripped, no Secrets), so that someone without access can plan.
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Which cluster, which part of it, and how patient to be with its API: every live command's.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file; without one, $KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "ISTIO_PROXY_RESET_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, env = "ISTIO_PROXY_RESET_CONTEXT")]
    pub context: Option<String>,
    /// Where istiod and the injector ConfigMap live.
    #[arg(
        long,
        env = "ISTIO_PROXY_RESET_ISTIO_NAMESPACE",
        default_value = "istio-system"
    )]
    pub istio_namespace: String,
    /// Only look at this namespace (repeatable); the control plane is read wherever it is.
    #[arg(
        long = "namespace",
        env = "ISTIO_PROXY_RESET_NAMESPACE",
        value_delimiter = ',',
        value_name = "NAMESPACE",
        value_parser = parse_namespace
    )]
    pub namespaces: Vec<String>,
    /// How long transient API errors (429, 5xx, timeouts, dropped connections) are retried, per call.
    #[arg(long, env = "ISTIO_PROXY_RESET_API_RETRY_TIMEOUT", default_value = "2m",
          value_parser = parse_duration, value_name = "DURATION")]
    pub api_retry_timeout: Duration,
}

impl ClusterArgs {
    fn scope(&self) -> Scope {
        Scope {
            namespaces: self.namespaces.clone(),
            istio_namespace: self.istio_namespace.clone(),
        }
    }

    async fn client(&self) -> Result<kube::Client> {
        cluster::set_retry_budget(self.api_retry_timeout);
        cluster::client(self.kubeconfig.as_deref(), self.context.as_deref()).await
    }
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
pub struct RunArgs {
    #[command(flatten)]
    pub options: Options,
    #[command(flatten)]
    pub execution: Execution,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report written by `--report-file`.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// The options `plan` and `run` share: what is judged, and where the report goes.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    /// Never restart anything in this namespace (repeatable; its stale proxies are reported `excluded`).
    #[arg(
        long = "exclude-namespace",
        env = "ISTIO_PROXY_RESET_EXCLUDE_NAMESPACE",
        value_delimiter = ',',
        value_name = "NAMESPACE",
        value_parser = parse_namespace
    )]
    pub exclude_namespaces: Vec<String>,
    /// What goes to stdout: `table` on a terminal, `json` otherwise.
    #[arg(long, env = "ISTIO_PROXY_RESET_FORMAT", value_enum)]
    pub format: Option<Format>,
    /// Also write the JSON report to this file.
    #[arg(long, env = "ISTIO_PROXY_RESET_REPORT_FILE", value_name = "PATH")]
    pub report_file: Option<PathBuf>,
    /// Exit 3 when manual items remain.
    #[arg(long, env = "ISTIO_PROXY_RESET_FAIL_ON_MANUAL")]
    pub fail_on_manual: bool,
    /// Only these drift reasons act (default: all): version, revision, resources, cni,
    /// native-sidecar, missing-proxy, unwanted-proxy.
    #[arg(
        long,
        env = "ISTIO_PROXY_RESET_DRIFT",
        value_delimiter = ',',
        value_name = "REASONS",
        value_parser = parse_drift_reason
    )]
    pub drift: Vec<Reason>,
}

/// What only `run` does: restart, wait, and write the report to the cluster.
#[derive(Debug, Clone, Args)]
pub struct Execution {
    /// Also write the report to this ConfigMap.
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
}

/// A namespace name is an RFC 1123 label: at most 63 lower-case letters, digits and `-`,
/// starting and ending with a letter or digit. Anything else names no namespace, so a typo
/// would silently look at (or spare) nothing. Space around it (`a, b` in a variable) is not
/// part of it.
fn parse_namespace(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a namespace name (at most 63 lower-case letters, digits and '-', \
             starting and ending with a letter or digit)"
        ))
    }
}

/// One `--drift` item: a drift reason's name, space around it ignored.
fn parse_drift_reason(text: &str) -> std::result::Result<Reason, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!(
            "an empty item names no drift reason (valid: {})",
            Reasons::all().join()
        ));
    }
    text.parse::<Reason>()
        .map_err(|problem| format!("{problem} (valid: {})", Reasons::all().join()))
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
            istio_namespace: self.cluster.istio_namespace.clone(),
            expected_version: self.expected_version.clone(),
            expected_image: self.expected_image.clone(),
        }
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            exclude_namespaces: self.exclude_namespaces.clone(),
            drift: (!self.drift.is_empty()).then(|| self.drift.iter().copied().collect()),
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

impl Execution {
    fn settings(&self) -> execute::Settings {
        execute::Settings {
            concurrency: usize::from(self.concurrency),
            rollout_timeout: self.rollout_timeout,
            no_wait: self.no_wait,
            drift: Reasons::all(),
        }
    }
}

/// Runs a parsed command line; the process's exit code.
pub fn main(cli: Cli) -> i32 {
    let outcome = match cli.command {
        Command::Plan(args) if args.snapshot.is_some() => plan_command(*args, None),
        Command::Plan(args) => with_runtime(async move {
            let started = Utc::now();
            let client = args.options.cluster.client().await?;
            let mut stop = stop_signal();
            match list_cluster(&client, &args.options.cluster.scope(), &mut stop).await? {
                Listing::Done(inventory) => plan_command(*args, Some(*inventory)),
                Listing::Stopped(listed) => {
                    let report = Report::stopped_while_listing(Mode::Plan, started, &listed);
                    emit(&report, &args.options)?;
                    Ok(exit::ERROR)
                }
            }
        }),
        Command::Run(args) => with_runtime(run_command(*args)),
        Command::Report(args) => report_command(args),
        Command::Snapshot(args) => with_runtime(snapshot_command(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error}");
            error.exit_code()
        }
    }
}

fn with_runtime(work: impl std::future::Future<Output = Result<i32>>) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "the async runtime".into(),
            source,
        })?;
    runtime.block_on(work)
}

/// What listing the cluster gave: the inventory, or, when a stop signal came first, how many
/// objects of each kind had been listed.
enum Listing {
    Done(Box<Inventory>),
    Stopped(std::collections::BTreeMap<String, usize>),
}

/// The live inventory, with progress while it is listed; a stop signal (the Job's deadline,
/// Ctrl-C) ends the listing, so that the caller can still write its report.
async fn list_cluster(
    client: &kube::Client,
    scope: &Scope,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Listing> {
    let progress = sinks::ListingProgress::new();
    let on_page = |kind: &str, items| progress.page(kind, items);
    let listing = tokio::select! {
        inventory = live::read(client, scope, &on_page) => {
            inventory.map(|i| Listing::Done(Box::new(i)))
        }
        () = stopped(stop) => Ok(Listing::Stopped(progress.listed())),
    };
    progress.finish();
    listing
}

/// Control plane, gate and plan: the pure half of every command.
fn decide(inventory: &Inventory, options: &Options) -> Result<(ControlPlane, Gate, Plan)> {
    tracing::debug!(ignored = ?inventory.ignored_kinds, "kinds the plan does not use");
    warn_of_missing_namespaces(inventory, options);
    let control_plane = ControlPlane::resolve(inventory, &options.control_plane_options())?;
    for warning in &control_plane.warnings {
        tracing::warn!("{warning}");
    }
    let plan = plan::plan(inventory, &control_plane, &options.plan_options());
    let gate = control_plane.gate_for(&plan.target_revisions);
    Ok((control_plane, gate, plan))
}

/// A `--namespace` or `--exclude-namespace` the inventory has no Namespace for is most likely a
/// typo: it looks at, or spares, nothing. With `--namespace`, only the named Namespaces are
/// read, so an excluded one outside them is not looked for.
fn warn_of_missing_namespaces(inventory: &Inventory, options: &Options) {
    let scope = &options.cluster.namespaces;
    let in_scope = |namespace: &String| scope.is_empty() || scope.contains(namespace);
    let named = [
        ("--namespace", scope.iter().collect::<Vec<_>>()),
        (
            "--exclude-namespace",
            options
                .exclude_namespaces
                .iter()
                .filter(|n| in_scope(n))
                .collect(),
        ),
    ];
    for (option, namespaces) in named {
        for namespace in namespaces {
            if !inventory.namespaces.contains_key(namespace) {
                tracing::warn!("{option} {namespace}: the inventory has no such namespace");
            }
        }
    }
}

/// The report when no control plane was found: the counts, and why nothing was compared.
fn uncompared(mode: Mode, started: DateTime<Utc>, inventory: &Inventory, error: &Error) -> Report {
    Report::uncompared(
        mode,
        started,
        inventory.pods_total,
        inventory
            .pod_records
            .iter()
            .filter(|p| p.has_proxy())
            .count(),
        error.to_string(),
    )
}

fn plan_command(args: PlanArgs, live_inventory: Option<Inventory>) -> Result<i32> {
    let started = Utc::now();
    let options = &args.options;
    let inventory = match (live_inventory, &args.snapshot) {
        (Some(inventory), _) => inventory,
        (None, Some(path)) => snapshot::read_file(
            path,
            InventoryBuilder::with_scope(&options.cluster.namespaces),
        )?,
        (None, None) => unreachable!("a live plan lists the cluster first"),
    };
    let (control_plane, gate, mut plan) = match decide(&inventory, options) {
        Ok(decided) => decided,
        Err(error @ Error::NoControlPlane { .. }) => {
            // What was read is reported (DESIGN §4), and the run still fails.
            let report = uncompared(Mode::Plan, started, &inventory, &error);
            emit(&report, options)?;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    // Each stage's data is let go once the next one holds what it needs: the peak is one of
    // them, not their sum.
    drop(inventory);
    if !gate.passed {
        tracing::warn!(
            problems = ?gate.problems,
            "the control-plane gate fails: `run` would restart nothing (exit 2)"
        );
    }
    let mut report = Report::from_plan(Mode::Plan, started, &mut plan, &control_plane, &gate);
    drop(plan);
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

async fn run_command(args: RunArgs) -> Result<i32> {
    let started = Utc::now();
    let options = &args.options;
    if let Some(target) = &args.execution.report_configmap {
        sinks::configmap_target(target)?;
    }
    let client = options.cluster.client().await?;
    // Listened for from here on: a signal between two stages (while the plan is made, say)
    // stops the run before anything is restarted, not only while listing or restarting.
    let mut stop = stop_signal();
    let inventory = match list_cluster(&client, &options.cluster.scope(), &mut stop).await? {
        Listing::Done(inventory) => *inventory,
        Listing::Stopped(listed) => {
            tracing::warn!(
                ?listed,
                "stopped while listing the cluster: nothing was compared or restarted"
            );
            let report = Report::stopped_while_listing(Mode::Run, started, &listed);
            report_without_events(&client, &report, &args).await;
            return Ok(exit::ERROR);
        }
    };
    let (control_plane, gate, mut plan) = match decide(&inventory, options) {
        Ok(decided) => decided,
        Err(error @ Error::NoControlPlane { .. }) => {
            let report = uncompared(Mode::Run, started, &inventory, &error);
            report_without_events(&client, &report, &args).await;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    drop(inventory);
    let mut report = Report::from_plan(Mode::Run, started, &mut plan, &control_plane, &gate);

    let mut code = if !gate.passed {
        tracing::error!(problems = ?gate.problems, "the control-plane gate failed: nothing is restarted");
        for workload in report
            .workloads
            .iter_mut()
            .filter(|w| w.action.is_automatic())
        {
            workload.status = Status::Skipped;
            workload.reason = Some("not run: the control-plane gate failed".into());
            workload.runbook = Some(runbook::GATE_FAILED.into());
        }
        exit::GATE
    } else {
        let settings = execute::Settings {
            drift: args
                .options
                .plan_options()
                .drift
                .unwrap_or_else(Reasons::all),
            ..args.execution.settings()
        };
        let board: Board = Arc::new(Mutex::new(vec![WorkState::Waiting; plan.workloads.len()]));
        let automatic = plan
            .workloads
            .iter()
            .filter(|w| w.action.is_automatic())
            .count();
        tracing::info!(
            workloads = automatic,
            manual = report.summary.manual,
            "restarting"
        );
        let progress = sinks::Progress::new(automatic);
        let interrupted = tokio::select! {
            // A stop that came before this point restarts nothing.
            biased;
            () = stopped(&mut stop) => true,
            () = execute::execute(&client, &plan, &control_plane, &settings, &board, &progress) => false,
        };
        progress.finish();
        apply_board(&mut report, &board, interrupted);
        if interrupted || report.summary.failed > 0 {
            exit::FAILED
        } else {
            exit::DONE
        }
    };
    if code == exit::DONE && options.fail_on_manual && report.summary.manual > 0 {
        code = exit::FAILED;
    }
    report.finished_at = Utc::now();

    // Whatever happened, the report goes everywhere it can: the local sinks first, so that a Job
    // stopped at its deadline still leaves its report in the log; Events last, and bounded.
    if let Err(error) = emit(&report, options) {
        tracing::error!("{error}");
        code = code.max(exit::ERROR);
    }
    if let Some(target) = &args.execution.report_configmap
        && let Err(error) = sinks::write_configmap(&client, target, &report).await
    {
        tracing::error!("{error}");
        code = code.max(exit::ERROR);
    }
    sinks::write_termination_log(&report, code);
    let events = sinks::record_events(&client, &report, &plan.workloads);
    if tokio::time::timeout(EVENTS_BUDGET, events).await.is_err() {
        tracing::warn!(
            "not every Event was recorded within {EVENTS_BUDGET:?}; the report has it all"
        );
    }
    tracing::info!(
        restarted = report.summary.restarted,
        failed = report.summary.failed,
        manual = report.summary.manual,
        exit_code = code,
        "run finished"
    );
    Ok(code)
}

/// The report of a run that touched nothing, wherever a report goes but without Events: there
/// is nothing to tell a workload. Its exit code is 1 (could not do the job) whatever a sink says.
async fn report_without_events(client: &kube::Client, report: &Report, args: &RunArgs) {
    if let Err(sink) = emit(report, &args.options) {
        tracing::error!("{sink}");
    }
    if let Some(target) = &args.execution.report_configmap
        && let Err(sink) = sinks::write_configmap(client, target, report).await
    {
        tracing::error!("{sink}");
    }
    sinks::write_termination_log(report, exit::ERROR);
}

/// How long recording Events may take at the end of a run: they are a courtesy, and an API
/// server that does not answer must not hold a finished Job.
const EVENTS_BUDGET: Duration = Duration::from_secs(30);

/// Copies each workload's outcome into the report; an interrupted run says what it left.
fn apply_board(report: &mut Report, board: &Board, interrupted: bool) {
    let board = board.lock().expect("board");
    for (entry, state) in report.workloads.iter_mut().zip(board.iter()) {
        if !entry.action.is_automatic() {
            continue;
        }
        match state {
            WorkState::Done(outcome) => {
                entry.status = outcome.status;
                entry.reason = outcome.reason.clone();
                entry.runbook = outcome.runbook.map(str::to_string);
            }
            WorkState::InFlight => {
                entry.status = Status::Failed;
                entry.reason = Some(
                    "the run was stopped while this workload was in progress; a re-run waits for its rollout".into(),
                );
                entry.runbook = Some(runbook::ROLLOUT_FAILED.into());
            }
            WorkState::Waiting if interrupted => {
                entry.status = Status::Skipped;
                entry.reason = Some("the run was stopped before this workload".into());
            }
            WorkState::Waiting => {}
        }
    }
    report.recount();
}

/// A flag set once SIGTERM or Ctrl-C arrives, listened for from the call on.
fn stop_signal() -> tokio::sync::watch::Receiver<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    stopped
}

/// Waits until `stop` is set (at once when it already is).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        // The listener could not be installed: nothing will ever stop the run this way.
        std::future::pending::<()>().await;
    }
}

/// SIGTERM (the Job's deadline, a deleted pod) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn snapshot_command(args: SnapshotArgs) -> Result<i32> {
    let client = args.cluster.client().await?;
    let scope = args.cluster.scope();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let count = live::write_snapshot(&client, &scope, &mut out).await?;
    out.flush().map_err(|source| Error::Io {
        path: "stdout".into(),
        source,
    })?;
    tracing::info!(objects = count, "snapshot written");
    Ok(exit::DONE)
}

fn report_command(args: ReportArgs) -> Result<i32> {
    let mut report = Report::read(&args.file)?;
    // The lists are what the run did; a summary that says otherwise was edited or damaged.
    for problem in report.recount_stored() {
        tracing::warn!(file = %args.file.display(), "{problem}");
        report.notes.push(problem);
    }
    write_stdout(&report.render(args.format)?)?;
    Ok(exit::DONE)
}

/// Sends the report where the options say: stdout and the report file.
fn emit(report: &Report, options: &Options) -> Result<()> {
    // stdout first: a report file that cannot be written must not cost the log its report.
    let printed = print(report, options.stdout_format());
    if let Some(path) = &options.report_file {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        serde_json::to_writer_pretty(&mut file, report)?;
        file.write_all(b"\n")
            .and_then(|_| file.flush())
            .map_err(io)?;
    }
    printed
}

fn print(report: &Report, format: Format) -> Result<()> {
    match format {
        // Large reports go out as they are serialised, never as one string in memory.
        Format::Json => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let written = serde_json::to_writer_pretty(&mut stdout, report)
                .map_err(std::io::Error::from)
                .and_then(|_| stdout.write_all(b"\n"))
                .and_then(|_| stdout.flush());
            match written {
                // A closed pipe (`| head`) is the reader's choice, not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(|source| Error::Io {
                    path: "stdout".into(),
                    source,
                }),
            }
        }
        format => write_stdout(&report.render(format)?),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_reasons_are_exactly_designs() {
        // The names themselves are DESIGN's (drift::tests, tests/help.rs).
        for reason in Reason::ALL {
            assert_eq!(parse_drift_reason(&format!(" {reason} ")), Ok(reason));
        }
        for bad in ["", " ", "Version", "sidecar", "all"] {
            let error = parse_drift_reason(bad).expect_err(bad);
            assert!(error.contains("valid: version, revision,"), "{error}");
        }
    }

    #[test]
    fn plan_has_no_run_only_options() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let longs = |name: &str| -> Vec<String> {
            let sub = cli.find_subcommand(name).expect(name);
            sub.get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        };
        let (plan, run) = (longs("plan"), longs("run"));
        for run_only in [
            "report-configmap",
            "concurrency",
            "rollout-timeout",
            "no-wait",
        ] {
            assert!(!plan.contains(&run_only.to_string()), "{plan:?}");
            assert!(run.contains(&run_only.to_string()), "{run:?}");
        }
    }
}
