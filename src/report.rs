//! The report, version 1 (DESIGN §4): one JSON document; the table and markdown are derived
//! from it, so `report FILE` renders a saved report exactly as the run printed it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::Verdict;
use crate::controlplane::{ControlPlane, Gate};
use crate::drift::{Reason, Reasons};
use crate::plan::{Action, Phase, Plan};
use crate::{Error, Result};

pub const API_VERSION: &str = "istio-proxy-reset.kyma-project.io/v1";
pub const KIND: &str = "ProxyResetReport";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Plan,
    Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Planned,
    Restarted,
    Completed,
    Failed,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Restarted => "restarted",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: String,
    pub kind: String,
    pub mode: Mode,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub control_plane: ControlPlaneReport,
    pub summary: Summary,
    pub workloads: Vec<WorkloadReport>,
    pub pods: Vec<PodReport>,
    /// What a reader must know about the report itself (a trimmed pod list, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What a copy trimmed to fit a ConfigMap left out of its lists, counted, so that its
    /// summary is still the lists' count (`recount`). Absent from a whole report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<Omitted>,
}

/// Entries a trimmed report leaves out: how many, and how the summary counted them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Omitted {
    /// Entries left out of `pods`, and how many of them are drifted.
    pub pods: usize,
    pub drifted: usize,
    /// Entries left out of `workloads`, and how many of them are restarted, failed, manual.
    pub workloads: usize,
    pub restarted: usize,
    pub failed: usize,
    pub manual: usize,
}

impl Omitted {
    /// Counts `pod` as left out.
    pub fn pod(&mut self, pod: &PodReport) {
        self.pods += 1;
        self.drifted += usize::from(pod.verdict.is_drift());
    }

    /// Counts `workload` as left out.
    pub fn workload(&mut self, workload: &WorkloadReport) {
        self.workloads += 1;
        self.restarted += usize::from(workload.is_restarted());
        self.failed += usize::from(workload.status == Status::Failed);
        self.manual += usize::from(workload.action == Action::Manual);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneReport {
    pub version: Option<String>,
    pub image: Option<String>,
    pub source: String,
    /// One entry per revision, when the cluster has more than the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionReport>,
    pub gate: GateReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionReport {
    pub name: String,
    pub version: Option<String>,
    pub image: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Pod counts, then workload counts: `restarted`, `failed` and `manual` count workloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub pods: usize,
    pub proxies: usize,
    pub up_to_date: usize,
    pub drifted: usize,
    pub restarted: usize,
    pub failed: usize,
    pub manual: usize,
    /// Listed pods per drift reason (DESIGN §2.3a).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drift: BTreeMap<Reason, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub phase: Phase,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Shared with the pod list: a name is stored once however often the report names it.
    pub pods: Vec<Arc<str>>,
    pub from_versions: Vec<Arc<str>>,
    /// The union of its pods' drift reasons.
    #[serde(default, skip_serializing_if = "Reasons::is_empty")]
    pub drift: Reasons,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

/// One pod of the report. There is one per drifted pod of the cluster, so the strings many
/// pods repeat (namespace, image, version, workload, reason) are shared, not copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub verdict: Verdict,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_image: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_version: Option<Arc<str>>,
    pub workload: WorkloadRef,
    #[serde(default, skip_serializing_if = "str_is_empty")]
    pub reason: Arc<str>,
    #[serde(default, skip_serializing_if = "Reasons::is_empty")]
    pub drift: Reasons,
    /// The revision that would inject the pod now; absent when none would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<Arc<str>>,
}

/// A copy of `value` for an automatic action, which execution still reads; for a manual one,
/// the value itself.
fn keep_or_take<T: Clone + Default>(action: Action, value: &mut T) -> T {
    if action.is_automatic() {
        value.clone()
    } else {
        std::mem::take(value)
    }
}

impl WorkloadReport {
    /// `Kind namespace/name`, as logs and messages name a workload.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    fn is_restarted(&self) -> bool {
        matches!(self.status, Status::Restarted | Status::Completed)
    }
}

fn str_is_empty(text: &Arc<str>) -> bool {
    text.is_empty()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
    Markdown,
}

impl Report {
    /// The report of a plan, before anything has run: automatic actions `planned`, manual
    /// ones `skipped`. What only the report needs is moved out of the plan, not copied (its
    /// pods, each workload's reason, runbook and versions, a manual workload's pod names), so
    /// that the two are not held twice; the plan keeps what execution and Events read.
    pub fn from_plan(
        mode: Mode,
        started_at: DateTime<Utc>,
        plan: &mut Plan,
        control_plane: &ControlPlane,
        gate: &Gate,
    ) -> Report {
        let headline = control_plane.headline();
        let revisions = if control_plane.revisions.len() > 1 {
            control_plane
                .revisions
                .values()
                .map(|r| RevisionReport {
                    name: r.name.clone(),
                    version: r.expected.version.as_ref().map(ToString::to_string),
                    image: r.expected.image.as_ref().map(ToString::to_string),
                })
                .collect()
        } else {
            Vec::new()
        };
        let workloads: Vec<WorkloadReport> = plan
            .workloads
            .iter_mut()
            .map(|w| WorkloadReport {
                // Execution needs an automatic workload's names and pods; a manual workload is
                // never executed, and its Event is named from the report.
                kind: keep_or_take(w.action, &mut w.kind),
                namespace: keep_or_take(w.action, &mut w.namespace),
                name: keep_or_take(w.action, &mut w.name),
                phase: w.phase,
                action: w.action,
                order: w.order,
                pods: keep_or_take(w.action, &mut w.pods),
                from_versions: std::mem::take(&mut w.from_versions),
                drift: w.drift,
                status: if w.action.is_automatic() {
                    Status::Planned
                } else {
                    Status::Skipped
                },
                reason: w.reason.take(),
                runbook: w.runbook.map(str::to_string),
            })
            .collect();
        let mut report = Report {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            mode,
            started_at,
            finished_at: started_at,
            control_plane: ControlPlaneReport {
                version: headline.and_then(|e| e.version.as_ref().map(ToString::to_string)),
                image: headline.and_then(|e| e.image.as_ref().map(ToString::to_string)),
                source: control_plane.source.clone(),
                revisions,
                gate: GateReport {
                    passed: gate.passed,
                    problems: gate.problems.clone(),
                },
            },
            summary: Summary {
                pods: plan.pods_total,
                proxies: plan.proxies,
                up_to_date: plan.up_to_date,
                drifted: plan.drifted,
                drift: plan.drift_counts.clone(),
                ..Summary::default()
            },
            workloads,
            pods: std::mem::take(&mut plan.pods)
                .into_iter()
                .map(|p| PodReport {
                    namespace: p.namespace,
                    name: p.name,
                    verdict: p.verdict,
                    action: p.action,
                    proxy_image: p.proxy_image,
                    proxy_version: p.proxy_version,
                    workload: WorkloadRef {
                        kind: p.workload_kind,
                        name: p.workload_name,
                    },
                    reason: p.reason,
                    drift: p.drift,
                    target_revision: p.target_revision,
                })
                .collect(),
            notes: Vec::new(),
            omitted: None,
        };
        report.recount();
        report
    }

    /// The report of a cluster whose proxies could not be compared (no control plane was found):
    /// what was counted, the problem as the failed gate, and nothing planned.
    pub fn uncompared(
        mode: Mode,
        started_at: DateTime<Utc>,
        pods: usize,
        proxies: usize,
        problem: String,
    ) -> Report {
        let mut report = Report::nothing_done(mode, started_at, "none found", problem);
        report.summary.pods = pods;
        report.summary.proxies = proxies;
        report.notes.push(
            "the proxies were not compared: there is no control plane to compare them with; \
             nothing was planned or restarted"
                .into(),
        );
        report
    }

    /// The report of a run stopped (SIGTERM, Ctrl-C) while it was still listing the cluster:
    /// what was listed by then, and that nothing was compared.
    pub fn stopped_while_listing(
        mode: Mode,
        started_at: DateTime<Utc>,
        listed: &BTreeMap<String, usize>,
    ) -> Report {
        let problem = "stopped while listing the cluster: the control plane was not read".into();
        let mut report = Report::nothing_done(mode, started_at, "not read", problem);
        report.summary.pods = listed.get("Pod").copied().unwrap_or(0);
        let so_far: Vec<String> = listed.iter().map(|(k, n)| format!("{k} {n}")).collect();
        report.notes.push(format!(
            "stopped while listing the cluster (listed so far: {}); `pods` counts the pods listed by then, proxies were not counted; nothing was compared, planned or restarted",
            if so_far.is_empty() { "nothing".into() } else { so_far.join(", ") }
        ));
        report
    }

    /// A report with no plan: the problem as the failed gate, every count zero.
    fn nothing_done(
        mode: Mode,
        started_at: DateTime<Utc>,
        source: &str,
        problem: String,
    ) -> Report {
        Report {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            mode,
            started_at,
            finished_at: Utc::now(),
            control_plane: ControlPlaneReport {
                version: None,
                image: None,
                source: source.into(),
                revisions: Vec::new(),
                gate: GateReport {
                    passed: false,
                    problems: vec![problem],
                },
            },
            summary: Summary::default(),
            workloads: Vec::new(),
            pods: Vec::new(),
            notes: Vec::new(),
            omitted: None,
        }
    }

    /// Recomputes the counts the lists determine: `drifted` from the pods, `restarted`,
    /// `failed` and `manual` from the workloads, each with what a trimmed copy left out.
    /// (`pods`, `proxies` and `upToDate` count pods the lists never name.)
    pub fn recount(&mut self) {
        let omitted = self.omitted.clone().unwrap_or_default();
        let workloads = &self.workloads;
        let count =
            |keep: fn(&WorkloadReport) -> bool| workloads.iter().filter(|w| keep(w)).count();
        self.summary.restarted = count(WorkloadReport::is_restarted) + omitted.restarted;
        self.summary.failed = count(|w| w.status == Status::Failed) + omitted.failed;
        self.summary.manual = count(|w| w.action == Action::Manual) + omitted.manual;
        self.summary.drifted =
            self.pods.iter().filter(|p| p.verdict.is_drift()).count() + omitted.drifted;
    }

    /// Recounts a report read from a file, and says which stored counts the lists contradict
    /// (an edited or damaged file): the lists are what the run did.
    pub fn recount_stored(&mut self) -> Vec<String> {
        let stored = self.summary.clone();
        self.recount();
        // A copy trimmed before `omitted` existed dropped pods without counting them: its
        // stored `drifted` is the only count of them there is.
        let uncounted_pods = self.omitted.is_none()
            && self
                .notes
                .iter()
                .any(|n| n.starts_with("the pod list is trimmed"));
        if uncounted_pods {
            self.summary.drifted = stored.drifted;
        }
        let recounted = &self.summary;
        let mut problems: Vec<String> = [
            ("drifted", stored.drifted, recounted.drifted),
            ("restarted", stored.restarted, recounted.restarted),
            ("failed", stored.failed, recounted.failed),
            ("manual", stored.manual, recounted.manual),
        ]
        .into_iter()
        .filter(|(_, stored, recounted)| stored != recounted)
        .map(|(field, stored, recounted)| {
            format!("summary.{field} is {stored} in the file, but its lists give {recounted}: shown as {recounted}")
        })
        .collect();
        let listed = self.pods.len() + self.omitted.as_ref().map_or(0, |o| o.pods);
        let s = &self.summary;
        // Pods missing their proxy are listed but are not proxies.
        let missing = self
            .pods
            .iter()
            .filter(|p| p.drift.contains(Reason::MissingProxy))
            .count()
            .max(s.drift.get(&Reason::MissingProxy).copied().unwrap_or(0));
        if s.up_to_date + listed > s.proxies + missing || s.proxies > s.pods {
            problems.push(format!(
                "the pod counts disagree with each other: upToDate {} plus {listed} listed pods, proxies {}, pods {}",
                s.up_to_date, s.proxies, s.pods
            ));
        }
        problems
    }

    /// Reads a saved report, checking that it is one.
    pub fn read(path: &std::path::Path) -> Result<Report> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let report: Report = serde_json::from_slice(&text).map_err(|e| Error::InvalidReport {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        if report.api_version != API_VERSION || report.kind != KIND {
            return Err(Error::InvalidReport {
                path: path.display().to_string(),
                problem: format!(
                    "apiVersion {:?} kind {:?} is not {API_VERSION} {KIND}",
                    report.api_version, report.kind
                ),
            });
        }
        Ok(report)
    }

    pub fn render(&self, format: Format) -> Result<String> {
        Ok(match format {
            Format::Json => {
                let mut text = serde_json::to_string_pretty(self)?;
                text.push('\n');
                text
            }
            Format::Table => self.table(),
            Format::Markdown => self.markdown(),
        })
    }

    fn title(&self) -> String {
        let mode = match self.mode {
            Mode::Plan => "plan (dry run: nothing was changed)",
            Mode::Run => "run",
        };
        format!(
            "istio-proxy-reset {mode}, {}",
            self.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    fn control_plane_line(&self) -> String {
        let cp = &self.control_plane;
        let mut line = format!(
            "{}{}",
            cp.version.as_deref().unwrap_or("no version"),
            cp.image
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        );
        if !cp.source.is_empty() {
            write!(line, ", from {}", cp.source).unwrap();
        }
        for r in &cp.revisions {
            write!(
                line,
                "; revision {}: {}",
                r.name,
                r.version.as_deref().or(r.image.as_deref()).unwrap_or("?")
            )
            .unwrap();
        }
        line
    }

    fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "pods {} · proxies {} · up to date {} · drifted {} · restarted {} · failed {} · manual {}",
            s.pods, s.proxies, s.up_to_date, s.drifted, s.restarted, s.failed, s.manual
        )
    }

    /// Verdicts of listed pods that are not the plan's business, counted.
    fn other_verdicts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for pod in self.pods.iter().filter(|p| !p.verdict.is_drift()) {
            *counts.entry(pod.verdict.as_str()).or_default() += 1;
        }
        counts
    }

    /// For a terminal: what will happen, in order, and what a person must do. Every piece of
    /// cluster data goes through `plain` (and table cells through `cell`).
    pub fn table(&self) -> String {
        let mut out = String::new();
        writeln!(out, "{}", self.title()).unwrap();
        writeln!(out, "Control plane: {}", plain(&self.control_plane_line())).unwrap();
        if self.control_plane.gate.passed {
            writeln!(out, "Gate: passed").unwrap();
        } else {
            writeln!(
                out,
                "Gate: FAILED, `run` restarts nothing until this is fixed:"
            )
            .unwrap();
            for problem in &self.control_plane.gate.problems {
                writeln!(out, "  - {}", plain(problem)).unwrap();
            }
        }
        writeln!(out, "{}", self.summary_line()).unwrap();
        for note in &self.notes {
            writeln!(out, "Note: {}", plain(note)).unwrap();
        }
        self.automatic_table(&mut out);
        self.manual_list(&mut out);
        let others = self.other_verdicts();
        if !others.is_empty() {
            let listed: Vec<String> = others.iter().map(|(v, n)| format!("{v} {n}")).collect();
            writeln!(
                out,
                "\nLeft alone: {} (pods listed in the JSON report)",
                listed.join(", ")
            )
            .unwrap();
        }
        out
    }

    fn automatic_table(&self, out: &mut String) {
        let automatic: Vec<_> = self
            .workloads
            .iter()
            .filter(|w| w.action.is_automatic())
            .collect();
        writeln!(out).unwrap();
        if automatic.is_empty() {
            writeln!(out, "Nothing to restart.").unwrap();
            return;
        }
        let rows: Vec<[String; 7]> = automatic
            .iter()
            .map(|w| {
                [
                    w.order.map(|o| o.to_string()).unwrap_or_default(),
                    w.phase.as_str().into(),
                    w.action.as_str().into(),
                    w.status.as_str().into(),
                    cell(&format!("{} {}/{}", w.kind, w.namespace, w.name)),
                    w.pods.len().to_string(),
                    // The last column is not padded: it may be as long as it is.
                    plain(
                        &(w.from_versions.join(", ")
                            + &drift_note(w.drift)
                            + &w.reason
                                .as_deref()
                                .map(|r| format!("  ({r})"))
                                .unwrap_or_default()),
                    )
                    .into_owned(),
                ]
            })
            .collect();
        write_columns(
            out,
            [
                "ORDER", "PHASE", "ACTION", "STATUS", "WORKLOAD", "PODS", "FROM",
            ],
            &rows,
        );
    }

    fn manual_list(&self, out: &mut String) {
        let manual: Vec<_> = self
            .workloads
            .iter()
            .filter(|w| w.action == Action::Manual)
            .collect();
        if manual.is_empty() {
            return;
        }
        writeln!(out, "\nManual: a person must act on these").unwrap();
        for w in manual {
            // Whole names here: this is what a person acts on.
            writeln!(
                out,
                "  {} ({} pod{}, {}{})",
                plain(&format!("{} {}/{}", w.kind, w.namespace, w.name)),
                w.pods.len(),
                if w.pods.len() == 1 { "" } else { "s" },
                plain(&w.from_versions.join(", ")),
                drift_note(w.drift)
            )
            .unwrap();
            if let Some(reason) = &w.reason {
                writeln!(out, "      {}", plain(reason)).unwrap();
            }
            if let Some(runbook) = &w.runbook {
                writeln!(out, "      see {}", plain(runbook)).unwrap();
            }
        }
    }

    /// For a ConfigMap, a pull request or a ticket. Every piece of cluster data goes through
    /// `md`, so that no name can end a table cell, start a line or become markup.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        writeln!(out, "# {}\n", self.title()).unwrap();
        writeln!(
            out,
            "- **Control plane**: {}",
            md(&self.control_plane_line())
        )
        .unwrap();
        if self.control_plane.gate.passed {
            writeln!(out, "- **Gate**: passed").unwrap();
        } else {
            writeln!(out, "- **Gate**: failed").unwrap();
            for problem in &self.control_plane.gate.problems {
                writeln!(out, "  - {}", md(problem)).unwrap();
            }
        }
        writeln!(out, "- **Summary**: {}", self.summary_line()).unwrap();
        for note in &self.notes {
            writeln!(out, "- **Note**: {}", md(note)).unwrap();
        }
        self.markdown_workloads(&mut out);
        self.markdown_pods(&mut out);
        out
    }

    fn markdown_workloads(&self, out: &mut String) {
        writeln!(out, "\n## Workloads\n").unwrap();
        if self.workloads.is_empty() {
            writeln!(out, "No proxy differs from the control plane.").unwrap();
            return;
        }
        writeln!(
            out,
            "| Order | Phase | Action | Status | Workload | Pods | From | Drift | Reason |\n|---|---|---|---|---|---|---|---|---|"
        )
        .unwrap();
        for w in &self.workloads {
            let reason = match (&w.reason, &w.runbook) {
                (Some(r), Some(b)) => format!("{} ([runbook]({}))", md(r), link(b)),
                (Some(r), None) => md(r),
                (None, Some(b)) => format!("[runbook]({})", link(b)),
                (None, None) => String::new(),
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.order.map(|o| o.to_string()).unwrap_or_default(),
                w.phase.as_str(),
                w.action.as_str(),
                w.status.as_str(),
                md(&format!("{} {}/{}", w.kind, w.namespace, w.name)),
                w.pods.len(),
                md(&w.from_versions.join(", ")),
                w.drift.join(),
                reason
            )
            .unwrap();
        }
    }

    fn markdown_pods(&self, out: &mut String) {
        if self.pods.is_empty() {
            return;
        }
        writeln!(out, "\n## Pods\n").unwrap();
        writeln!(
            out,
            "| Pod | Verdict | Action | Proxy | Workload | Reason |\n|---|---|---|---|---|---|"
        )
        .unwrap();
        for p in &self.pods {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&format!("{}/{}", p.namespace, p.name)),
                p.verdict.as_str(),
                p.action.as_str(),
                md(p.proxy_version
                    .as_deref()
                    .or(p.proxy_image.as_deref())
                    .unwrap_or("")),
                md(&format!("{} {}", p.workload.kind, p.workload.name)),
                md(&p.reason)
            )
            .unwrap();
        }
    }
}

/// A workload's drift reasons after its versions: ` [version, cni]`; nothing when none are
/// known (a report written before they were).
fn drift_note(drift: Reasons) -> String {
    if drift.is_empty() {
        String::new()
    } else {
        format!(" [{}]", drift.join())
    }
}

/// What may not reach a terminal from cluster data: control characters (escape sequences can
/// move the cursor, clear the screen or forge a line; a newline or `\r` starts a false one) and
/// the bidirectional overrides that make text read other than it is.
fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` without what `is_unprintable` refuses; borrowed when there is nothing to remove.
pub(crate) fn plain(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(is_unprintable) {
        text.replace(is_unprintable, "").into()
    } else {
        text.into()
    }
}

/// The widest a padded table cell gets: a longer name is cut, so that one 200-character name
/// does not push every row off the screen (the JSON report has it whole).
const CELL_WIDTH: usize = 60;

/// A padded table cell: `plain`, and cut to `CELL_WIDTH` characters with `…`.
fn cell(text: &str) -> String {
    let text = plain(text);
    if text.chars().count() <= CELL_WIDTH {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(CELL_WIDTH - 1).collect();
    cut.push('…');
    cut
}

/// Text for a markdown table cell or list item: one line, every character markdown could read
/// as markup escaped, nothing unprintable.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if is_unprintable(c) => {}
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A runbook path as a link target: nothing that could end the link or the cell.
fn link(target: &str) -> String {
    target
        .chars()
        .filter(|c| {
            !is_unprintable(*c) && !c.is_whitespace() && !matches!(c, '(' | ')' | '|' | '<' | '>')
        })
        .collect()
}

fn write_columns<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                write!(text, "{cell:<width$}  ", width = widths[i]).unwrap();
            }
        }
        writeln!(out, "{}", text.trim_end()).unwrap();
    };
    line(out, &header);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let text = r#"{
          "apiVersion": "istio-proxy-reset.kyma-project.io/v1", "kind": "ProxyResetReport", "mode": "plan",
          "startedAt": "2026-11-26T10:00:00Z", "finishedAt": "2026-11-26T10:00:01Z",
          "controlPlane": {"version": "1.24.1", "image": "docker.io/istio/proxyv2:1.24.1", "source": "x", "gate": {"passed": true}},
          "summary": {"pods": 3, "proxies": 3, "upToDate": 1, "drifted": 2, "restarted": 0, "failed": 0, "manual": 1},
          "workloads": [
            {"kind": "Deployment", "namespace": "shop", "name": "orders", "phase": "customer", "action": "rollout-restart",
             "order": 1, "pods": ["orders-1"], "fromVersions": ["1.23.2"], "status": "planned"},
            {"kind": "Pod", "namespace": "shop", "name": "bare", "phase": "customer", "action": "manual",
             "pods": ["bare"], "fromVersions": ["1.23.2"], "status": "skipped", "reason": "no | controller", "runbook": "runbooks/x.md"}],
          "pods": [
            {"namespace": "shop", "name": "bare", "verdict": "outdated", "action": "manual", "proxyVersion": "1.23.2",
             "workload": {"kind": "Pod", "name": "bare"}, "reason": "old"},
            {"namespace": "shop", "name": "orders-1", "verdict": "outdated", "action": "rollout-restart", "proxyVersion": "1.23.2",
             "workload": {"kind": "Deployment", "name": "orders"}, "reason": "old"}]
        }"#;
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn json_round_trips_in_camel_case() {
        let report = sample();
        let json = report.render(Format::Json).unwrap();
        assert!(json.contains("\"upToDate\": 1") && json.contains("\"rollout-restart\""));
        assert!(
            !json.contains("\"order\": null"),
            "order only on automatic actions"
        );
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn table_and_markdown_show_order_and_manual_items() {
        let report = sample();
        let table = report.table();
        assert!(
            table.contains("1      customer  rollout-restart  planned  Deployment shop/orders"),
            "{table}"
        );
        assert!(table.contains("Manual: a person must act on these"));
        assert!(table.contains("see runbooks/x.md"));
        let md = report.markdown();
        assert!(md.contains("| 1 | customer | rollout-restart | planned | Deployment shop/orders | 1 | 1.23.2 |  |"), "{md}");
        assert!(
            md.contains("no \\| controller ([runbook](runbooks/x.md))"),
            "{md}"
        );
    }

    #[test]
    fn recount_counts_workloads_by_status() {
        let mut report = sample();
        report.workloads[0].status = Status::Failed;
        report.recount();
        assert_eq!(
            (
                report.summary.restarted,
                report.summary.failed,
                report.summary.manual
            ),
            (0, 1, 1)
        );
    }

    /// A report whose cluster data is hostile: markup, line breaks, escape sequences, a
    /// bidirectional override, and a name far wider than a column.
    fn hostile() -> Report {
        let mut report = sample();
        let long = "a".repeat(200);
        report.workloads[0].kind = "Deploy|ment".into();
        report.workloads[0].name =
            format!("orders\n| 9 | kyma | forged | row |\x1b[2J\r{long}").into();
        report.workloads[1].name = "bare\u{202e}gnp.exe\x1b]0;title\x07".into();
        report.workloads[1].reason = Some("line one\r\nline two | `code` *bold* [x](y)".into());
        report.pods[0].name = "bare|<script>".into();
        report.control_plane.image = Some("docker.io/istio/proxyv2:1.24.1\x1b[31m".into());
        report.notes.push("note\nwith a break".into());
        report
    }

    #[test]
    fn terminal_output_carries_no_control_characters_and_cuts_wide_cells() {
        let table = hostile().table();
        let unprintable: Vec<char> = table
            .chars()
            .filter(|c| *c != '\n' && is_unprintable(*c))
            .collect();
        assert!(unprintable.is_empty(), "{unprintable:?} in\n{table}");
        // The forged row stays inside its own line, which is cut to the column's width.
        let row = table
            .lines()
            .find(|l| l.contains("Deploy|ment"))
            .expect("the workload's row");
        assert!(row.contains('…'), "{row}");
        assert!(row.contains("forged"), "{row}");
        assert!(
            !table.lines().any(|l| l.starts_with("| 9 |")),
            "a name started a line:\n{table}"
        );
        let widest_cell = CELL_WIDTH + "1      customer  rollout-restart  planned  ".len();
        assert!(
            row.chars().count() < widest_cell + 40,
            "{} characters: {row}",
            row.chars().count()
        );
        // The manual list names the workload whole, but harmless.
        assert!(table.contains("Pod shop/baregnp.exe]0;title"), "{table}");
        assert!(table.contains("line oneline two"), "{table}");
    }

    #[test]
    fn markdown_cells_are_escaped_one_line_each() {
        let md = hostile().markdown();
        assert!(!md.chars().any(|c| c != '\n' && is_unprintable(c)), "{md}");
        let unescaped_pipes = |line: &str| {
            line.char_indices()
                .filter(|(i, c)| *c == '|' && (*i == 0 || line.as_bytes()[i - 1] != b'\\'))
                .count()
        };
        let table_rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        // Two header rows, two workloads; two header rows, two pods.
        assert_eq!(table_rows.len(), 8, "{md}");
        for row in &table_rows[..4] {
            assert_eq!(unescaped_pipes(row), 10, "{row}");
        }
        for row in &table_rows[4..] {
            assert_eq!(unescaped_pipes(row), 7, "{row}");
        }
        assert!(md.contains(r"bare\|\<script\>"), "{md}");
        assert!(
            md.contains(r"line one  line two \| \`code\` \*bold\* \[x\](y)"),
            "{md}"
        );
        assert!(md.contains("- **Note**: note with a break"), "{md}");
    }

    #[test]
    fn a_stored_report_is_recounted_from_its_lists() {
        let mut report = sample();
        report.summary.failed = 7;
        report.summary.drifted = 0;
        let problems = report.recount_stored();
        assert_eq!(
            (
                report.summary.failed,
                report.summary.drifted,
                report.summary.manual
            ),
            (0, 2, 1)
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("summary.drifted is 0 in the file, but its lists give 2"));
        // A trimmed copy counts what it left out.
        let mut trimmed = sample();
        let left_out = trimmed.workloads.remove(1);
        let mut omitted = Omitted::default();
        omitted.workload(&left_out);
        trimmed.omitted = Some(omitted);
        assert!(trimmed.recount_stored().is_empty());
        assert_eq!(trimmed.summary.manual, 1);
        // A copy trimmed before `omitted` existed keeps its stored drifted count.
        let mut older = sample();
        older.pods.pop();
        older
            .notes
            .push("the pod list is trimmed to 1 of 2 pods to fit the ConfigMap's 1 MiB".into());
        assert!(older.recount_stored().is_empty());
        assert_eq!(older.summary.drifted, 2);
        // Counts no list can give are checked against each other.
        let mut odd = sample();
        odd.summary.proxies = 2;
        assert!(odd.recount_stored()[0].contains("pod counts disagree"));
    }
}
