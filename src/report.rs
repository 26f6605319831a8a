//! The report, version 1 (DESIGN §4): one JSON document; the table and markdown are derived
//! from it, so `report FILE` renders a saved report exactly as the run printed it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::Verdict;
use crate::controlplane::{ControlPlane, Gate};
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub phase: Phase,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Shared with the pod list: a name is stored once however often the report names it.
    pub pods: Vec<Arc<str>>,
    pub from_versions: Vec<String>,
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
    /// ones `skipped`.
    pub fn from_plan(
        mode: Mode,
        started_at: DateTime<Utc>,
        plan: &Plan,
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
            .iter()
            .map(|w| WorkloadReport {
                kind: w.kind.clone(),
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                phase: w.phase,
                action: w.action,
                order: w.order,
                pods: w.pods.clone(),
                from_versions: w.from_versions.clone(),
                status: if w.action.is_automatic() {
                    Status::Planned
                } else {
                    Status::Skipped
                },
                reason: w.reason.clone(),
                runbook: w.runbook.clone(),
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
                ..Summary::default()
            },
            workloads,
            pods: plan
                .pods
                .iter()
                .map(|p| PodReport {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    verdict: p.verdict,
                    action: p.action,
                    proxy_image: p.proxy_image.clone(),
                    proxy_version: p.proxy_version.clone(),
                    workload: WorkloadRef {
                        kind: p.workload_kind.clone(),
                        name: p.workload_name.clone(),
                    },
                    reason: p.reason.clone(),
                })
                .collect(),
            notes: Vec::new(),
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
        Report {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            mode,
            started_at,
            finished_at: Utc::now(),
            control_plane: ControlPlaneReport {
                version: None,
                image: None,
                source: "none found".into(),
                revisions: Vec::new(),
                gate: GateReport {
                    passed: false,
                    problems: vec![problem],
                },
            },
            summary: Summary {
                pods,
                proxies,
                ..Summary::default()
            },
            workloads: Vec::new(),
            pods: Vec::new(),
            notes: vec![
                "the proxies were not compared: there is no control plane to compare them with; \
                 nothing was planned or restarted"
                    .into(),
            ],
        }
    }

    /// Recomputes the workload counts of the summary from the workloads' statuses.
    pub fn recount(&mut self) {
        self.summary.restarted = self
            .workloads
            .iter()
            .filter(|w| matches!(w.status, Status::Restarted | Status::Completed))
            .count();
        self.summary.failed = self
            .workloads
            .iter()
            .filter(|w| w.status == Status::Failed)
            .count();
        self.summary.manual = self
            .workloads
            .iter()
            .filter(|w| w.action == Action::Manual)
            .count();
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

    /// For a terminal: what will happen, in order, and what a person must do.
    pub fn table(&self) -> String {
        let mut out = String::new();
        writeln!(out, "{}", self.title()).unwrap();
        writeln!(out, "Control plane: {}", self.control_plane_line()).unwrap();
        if self.control_plane.gate.passed {
            writeln!(out, "Gate: passed").unwrap();
        } else {
            writeln!(
                out,
                "Gate: FAILED, `run` restarts nothing until this is fixed:"
            )
            .unwrap();
            for problem in &self.control_plane.gate.problems {
                writeln!(out, "  - {problem}").unwrap();
            }
        }
        writeln!(out, "{}", self.summary_line()).unwrap();
        for note in &self.notes {
            writeln!(out, "Note: {note}").unwrap();
        }

        let automatic: Vec<_> = self
            .workloads
            .iter()
            .filter(|w| w.action.is_automatic())
            .collect();
        writeln!(out).unwrap();
        if automatic.is_empty() {
            writeln!(out, "Nothing to restart.").unwrap();
        } else {
            let rows: Vec<[String; 7]> = automatic
                .iter()
                .map(|w| {
                    [
                        w.order.map(|o| o.to_string()).unwrap_or_default(),
                        w.phase.as_str().into(),
                        w.action.as_str().into(),
                        w.status.as_str().into(),
                        format!("{} {}/{}", w.kind, w.namespace, w.name),
                        w.pods.len().to_string(),
                        w.from_versions.join(", ")
                            + &w.reason
                                .as_deref()
                                .map(|r| format!("  ({r})"))
                                .unwrap_or_default(),
                    ]
                })
                .collect();
            write_columns(
                &mut out,
                [
                    "ORDER", "PHASE", "ACTION", "STATUS", "WORKLOAD", "PODS", "FROM",
                ],
                &rows,
            );
        }

        let manual: Vec<_> = self
            .workloads
            .iter()
            .filter(|w| w.action == Action::Manual)
            .collect();
        if !manual.is_empty() {
            writeln!(out, "\nManual: a person must act on these").unwrap();
            for w in manual {
                writeln!(
                    out,
                    "  {} {}/{} ({} pod{}, {})",
                    w.kind,
                    w.namespace,
                    w.name,
                    w.pods.len(),
                    if w.pods.len() == 1 { "" } else { "s" },
                    w.from_versions.join(", ")
                )
                .unwrap();
                if let Some(reason) = &w.reason {
                    writeln!(out, "      {reason}").unwrap();
                }
                if let Some(runbook) = &w.runbook {
                    writeln!(out, "      see {runbook}").unwrap();
                }
            }
        }
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

    /// For a ConfigMap, a pull request or a ticket.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        writeln!(out, "# {}\n", self.title()).unwrap();
        writeln!(out, "- **Control plane**: {}", self.control_plane_line()).unwrap();
        if self.control_plane.gate.passed {
            writeln!(out, "- **Gate**: passed").unwrap();
        } else {
            writeln!(out, "- **Gate**: failed").unwrap();
            for problem in &self.control_plane.gate.problems {
                writeln!(out, "  - {}", escape(problem)).unwrap();
            }
        }
        writeln!(out, "- **Summary**: {}", self.summary_line()).unwrap();
        for note in &self.notes {
            writeln!(out, "- **Note**: {}", escape(note)).unwrap();
        }
        writeln!(out, "\n## Workloads\n").unwrap();
        if self.workloads.is_empty() {
            writeln!(out, "No proxy differs from the control plane.").unwrap();
        } else {
            writeln!(
                out,
                "| Order | Phase | Action | Status | Workload | Pods | From | Reason |\n|---|---|---|---|---|---|---|---|"
            )
            .unwrap();
            for w in &self.workloads {
                let reason = match (&w.reason, &w.runbook) {
                    (Some(r), Some(b)) => format!("{} ([runbook]({b}))", escape(r)),
                    (Some(r), None) => escape(r),
                    (None, Some(b)) => format!("[runbook]({b})"),
                    (None, None) => String::new(),
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} {}/{} | {} | {} | {} |",
                    w.order.map(|o| o.to_string()).unwrap_or_default(),
                    w.phase.as_str(),
                    w.action.as_str(),
                    w.status.as_str(),
                    w.kind,
                    w.namespace,
                    w.name,
                    w.pods.len(),
                    w.from_versions.join(", "),
                    reason
                )
                .unwrap();
            }
        }
        if !self.pods.is_empty() {
            writeln!(out, "\n## Pods\n").unwrap();
            writeln!(
                out,
                "| Pod | Verdict | Action | Proxy | Workload | Reason |\n|---|---|---|---|---|---|"
            )
            .unwrap();
            for p in &self.pods {
                writeln!(
                    out,
                    "| {}/{} | {} | {} | {} | {} {} | {} |",
                    p.namespace,
                    p.name,
                    p.verdict.as_str(),
                    p.action.as_str(),
                    p.proxy_version
                        .as_deref()
                        .or(p.proxy_image.as_deref())
                        .unwrap_or(""),
                    p.workload.kind,
                    p.workload.name,
                    escape(&p.reason)
                )
                .unwrap();
            }
        }
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
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
}
