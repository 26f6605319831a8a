//! Where a run's report goes besides stdout and the report file: a ConfigMap that outlives the
//! Job's pod, Events on the workloads, and the Job's termination message (DESIGN §4).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::api::core::v1::{ConfigMap, Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cluster::{retry, status_code};
use crate::execute::{Observer, Outcome, describe};
use crate::plan::WorkloadPlan;
use crate::report::{Format, Report, Status, WorkloadReport, plain};
use crate::{Error, Result};

/// ConfigMaps hold at most 1 MiB; keep a margin for keys and metadata.
pub const CONFIGMAP_BUDGET: usize = 1_000_000;
pub const REPORT_KEY: &str = "report.json";
/// Pod names kept per workload when even an empty pod list does not make the report fit.
const WORKLOAD_PODS_KEPT: usize = 10;
pub const MARKDOWN_KEY: &str = "report.md";
const TERMINATION_LOG: &str = "/dev/termination-log";
const COMPONENT: &str = "istio-proxy-reset";

/// Parses `NAMESPACE/NAME`.
pub fn configmap_target(text: &str) -> Result<(String, String)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(Error::Usage {
            option: "--report-configmap".into(),
            problem: format!("{text:?} is not NAMESPACE/NAME"),
        }),
    }
}

/// The ConfigMap's data: the JSON report and its markdown, trimmed to fit 1 MiB, which a real
/// API server enforces. What goes first is what a reader misses least, and a note says what went:
/// pods from the end of the list, then each workload's pod names beyond the first few, then the
/// markdown (`report` renders it from the JSON), then workloads, completed ones before skipped,
/// manual and failed ones. The summary keeps counting everything (`Report::omitted`), and the
/// final size is always checked.
pub fn configmap_data(report: &Report) -> Result<BTreeMap<String, String>> {
    let mut fitted = report.clone();
    if let Some(data) = fitting_data(&fitted, true)? {
        return Ok(data);
    }
    drop_pods(&mut fitted, true)?;
    if let Some(data) = fitting_data(&fitted, true)? {
        return Ok(data);
    }
    if cut_workload_pod_lists(&mut fitted)
        && let Some(data) = fitting_data(&fitted, true)?
    {
        return Ok(data);
    }
    fitted.notes.push(
        "the markdown is left out to fit the ConfigMap's 1 MiB; `istio-proxy-reset report FILE --format markdown` renders it from report.json".into(),
    );
    if let Some(data) = fitting_data(&fitted, false)? {
        return Ok(data);
    }
    drop_pods(&mut fitted, false)?;
    drop_workloads(&mut fitted)?;
    match fitting_data(&fitted, false)? {
        Some(data) => Ok(data),
        None => Err(Error::ReportTooLarge {
            bytes: serde_json::to_string(&fitted)?.len(),
        }),
    }
}

/// The ConfigMap's data when it fits the budget.
fn fitting_data(report: &Report, with_markdown: bool) -> Result<Option<BTreeMap<String, String>>> {
    let json = serde_json::to_string(report)?;
    let mut data = BTreeMap::from([(REPORT_KEY.to_string(), json)]);
    if with_markdown {
        data.insert(MARKDOWN_KEY.to_string(), report.render(Format::Markdown)?);
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    Ok((size <= CONFIGMAP_BUDGET).then_some(data))
}

/// What `report` would take in the ConfigMap: its JSON, and its markdown when kept.
fn data_size(report: &Report, with_markdown: bool) -> Result<usize> {
    let json = serde_json::to_string(report)?.len();
    let markdown = if with_markdown {
        report.render(Format::Markdown)?.len()
    } else {
        0
    };
    Ok(json + markdown)
}

/// Bytes kept free for the notes and the omitted counts a trimming step adds.
const NOTE_ROOM: usize = 2_000;

/// Drops pods from the end of the list until the rest fits (or none is left). Each round drops
/// what its estimate says is too much, and the real size is measured again.
fn drop_pods(report: &mut Report, with_markdown: bool) -> Result<()> {
    let total = report.pods.len() + report.omitted.as_ref().map_or(0, |o| o.pods);
    loop {
        let mut excess = data_size(report, with_markdown)? + NOTE_ROOM;
        if excess <= CONFIGMAP_BUDGET || report.pods.is_empty() {
            break;
        }
        while excess > CONFIGMAP_BUDGET {
            let Some(pod) = report.pods.pop() else { break };
            // A pod's markdown row is shorter than its JSON: twice the JSON is the most a pod
            // can free, so a round never drops more than it must.
            let json = serde_json::to_string(&pod)?.len() + 1;
            let freed = if with_markdown { 2 * json } else { json };
            excess -= freed.min(excess);
            report
                .omitted
                .get_or_insert_with(Default::default)
                .pod(&pod);
        }
    }
    let kept = report.pods.len();
    report
        .notes
        .retain(|n| !n.starts_with("the pod list is trimmed"));
    if kept < total {
        report.notes.push(format!(
            "the pod list is trimmed to {kept} of {total} pods to fit the ConfigMap's 1 MiB; the full report is in --report-file and the Job's log"
        ));
    }
    Ok(())
}

/// Cuts every workload's pod names to the first few; `false` when none was longer.
fn cut_workload_pod_lists(report: &mut Report) -> bool {
    let longest = report.workloads.iter().map(|w| w.pods.len()).max();
    if longest.is_none_or(|n| n <= WORKLOAD_PODS_KEPT) {
        return false;
    }
    for workload in &mut report.workloads {
        workload.pods.truncate(WORKLOAD_PODS_KEPT);
    }
    report.notes.push(format!(
        "each workload's pod list is trimmed to {WORKLOAD_PODS_KEPT} names to fit the ConfigMap"
    ));
    true
}

/// How much a reader needs a workload's entry, least first: a completed restart is in the
/// counts, a failure is what the report is read for.
fn keep_rank(workload: &WorkloadReport) -> u8 {
    match workload.status {
        Status::Failed => 3,
        _ if workload.action == crate::plan::Action::Manual => 2,
        Status::Skipped => 1,
        Status::Planned | Status::Restarted | Status::Completed => 0,
    }
}

/// Leaves out workloads, least needed first and from the end, until the JSON fits.
fn drop_workloads(report: &mut Report) -> Result<()> {
    let total = report.workloads.len() + report.omitted.as_ref().map_or(0, |o| o.workloads);
    let mut excess = data_size(report, false)? + NOTE_ROOM;
    if excess <= CONFIGMAP_BUDGET {
        return Ok(());
    }
    let listed = report.workloads.len();
    let mut by_need: Vec<usize> = (0..listed).collect();
    by_need.sort_by_key(|&i| (keep_rank(&report.workloads[i]), std::cmp::Reverse(i)));
    let mut left_out = vec![false; listed];
    for i in by_need {
        if excess <= CONFIGMAP_BUDGET {
            break;
        }
        excess = excess.saturating_sub(serde_json::to_string(&report.workloads[i])?.len() + 1);
        left_out[i] = true;
    }
    let mut omitted = report.omitted.take().unwrap_or_default();
    let mut index = 0;
    report.workloads.retain(|workload| {
        let keep = !left_out[index];
        index += 1;
        if !keep {
            omitted.workload(workload);
        }
        keep
    });
    report.notes.push(format!(
        "{} of {total} workloads are left out to fit the ConfigMap's 1 MiB ({} restarted, {} failed, {} manual; failed and manual ones are kept first); the full report is in --report-file and the Job's log",
        omitted.workloads, omitted.restarted, omitted.failed, omitted.manual
    ));
    report.omitted = Some(omitted);
    Ok(())
}

/// Creates or updates the report ConfigMap.
pub async fn write_configmap(client: &Client, target: &str, report: &Report) -> Result<()> {
    let (namespace, name) = configmap_target(target)?;
    let data = configmap_data(report)?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let action = format!("writing the report to ConfigMap {namespace}/{name}");
    // A key this report does not have is removed, so a reader never sees an older run's one.
    let mut patched_data = serde_json::Map::new();
    for key in [REPORT_KEY, MARKDOWN_KEY] {
        patched_data.insert(key.to_string(), json!(data.get(key)));
    }
    let body = json!({
        "metadata": {"labels": {"app.kubernetes.io/name": COMPONENT}},
        "data": patched_data,
    });
    let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
    let update = || retry(&action, || api.patch(&name, &params, &patch));
    let kube_error = |source| Error::Kube {
        action: action.clone(),
        source,
    };
    match update().await {
        Ok(_) => Ok(()),
        Err(error) if status_code(&error) == Some(404) => {
            let configmap = report_configmap(&namespace, &name, data);
            let params = PostParams::default();
            match retry(&action, || api.create(&params, &configmap)).await {
                Ok(_) => Ok(()),
                // Made in the meantime, by this create itself when its answer was lost on the
                // way back, or by another run: write into it.
                Err(error) if status_code(&error) == Some(409) => {
                    update().await.map(|_| ()).map_err(kube_error)
                }
                Err(source) => Err(kube_error(source)),
            }
        }
        Err(source) => Err(kube_error(source)),
    }
}

/// A new report ConfigMap holding `data`.
fn report_configmap(namespace: &str, name: &str, data: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                COMPONENT.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// An Event on each workload restarted, failed or needing a person. Events are a courtesy:
/// failing to write one is logged, never fatal.
pub async fn record_events(client: &Client, report: &Report, workloads: &[WorkloadPlan]) {
    for (plan, entry) in workloads.iter().zip(&report.workloads) {
        let (type_, reason, message) = match entry.status {
            Status::Restarted | Status::Completed => (
                "Normal",
                "ProxyRestarted",
                format!(
                    "istio-proxy-reset restarted the workload to renew its Istio proxy ({} → {})",
                    entry.from_versions.join(", "),
                    plan.target
                ),
            ),
            Status::Failed => (
                "Warning",
                "ProxyRestartFailed",
                format!(
                    "istio-proxy-reset could not renew the Istio proxy: {}",
                    entry.reason.as_deref().unwrap_or("unknown reason")
                ),
            ),
            _ if entry.action == crate::plan::Action::Manual => (
                "Warning",
                "ProxyManualActionRequired",
                format!(
                    "the Istio proxy is stale and needs a person: {} (see {})",
                    entry.reason.as_deref().unwrap_or(""),
                    entry.runbook.as_deref().unwrap_or("runbooks/")
                ),
            ),
            _ => continue,
        };
        if let Err(error) = create_event(client, plan, entry, type_, reason, &message).await {
            tracing::warn!(workload = %entry.describe(), %error, "could not record an Event");
        }
    }
}

async fn create_event(
    client: &Client,
    plan: &WorkloadPlan,
    entry: &WorkloadReport,
    type_: &str,
    reason: &str,
    message: &str,
) -> Result<()> {
    // One Event per workload, reason and target: a re-run counts up instead of piling up.
    let name = event_name(
        &entry.name,
        reason,
        fnv1a(&[&entry.kind, &plan.target]) as u32,
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(entry.namespace.to_string()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(plan.api_version.to_string()),
            kind: Some(entry.kind.to_string()),
            name: Some(entry.name.to_string()),
            namespace: Some(entry.namespace.to_string()),
            ..ObjectReference::default()
        },
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        message: Some(message.chars().take(1024).collect()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        first_timestamp: Some(Time(Timestamp::now())),
        last_timestamp: Some(Time(Timestamp::now())),
        count: Some(1),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &entry.namespace);
    let action = format!("recording an Event on {}", entry.describe());
    let params = PostParams::default();
    match retry(&action, || api.create(&params, &event)).await {
        Ok(_) => Ok(()),
        Err(error) if status_code(&error) == Some(409) => {
            let existing =
                retry(&action, || api.get(&name))
                    .await
                    .map_err(|source| Error::Kube {
                        action: action.clone(),
                        source,
                    })?;
            let body = json!({
                "count": existing.count.unwrap_or(1) + 1,
                "lastTimestamp": Time(Timestamp::now()),
                "message": event.message,
            });
            let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
            retry(&action, || api.patch(&name, &params, &patch))
                .await
                .map(|_| ())
                .map_err(|source| Error::Kube { action, source })
        }
        Err(source) => Err(Error::Kube { action, source }),
    }
}

/// The longest part of an Event's name taken from the workload's, leaving room for the rest.
const EVENT_NAME_PREFIX: usize = 200;

/// `<workload>.<reason>.<hash>` as a DNS subdomain, whatever the workload's name: cut to fit,
/// every dot-separated part beginning and ending with a letter or digit. (kube-apiserver takes
/// any name for a core/v1 Event today; events.k8s.io and its readers want a subdomain.)
fn event_name(workload: &str, reason: &str, hash: u32) -> String {
    let mut prefix = String::with_capacity(workload.len().min(EVENT_NAME_PREFIX));
    for part in workload.split('.') {
        let part: String = part
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9') => c,
                _ => '-',
            })
            .collect();
        let part = part.trim_matches('-');
        if part.is_empty() {
            continue;
        }
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
    }
    prefix.truncate(EVENT_NAME_PREFIX); // ASCII only by now
    let prefix = prefix.trim_end_matches(['-', '.']);
    let prefix = if prefix.is_empty() {
        "workload"
    } else {
        prefix
    };
    format!("{prefix}.{}.{hash:08x}", reason.to_ascii_lowercase())
}

/// A stable short hash (FNV-1a) for names that must be the same run after run.
pub(crate) fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A short summary in the Job's termination message, when the file exists (in a pod).
pub fn write_termination_log(report: &Report, exit_code: i32) {
    let path = std::path::Path::new(TERMINATION_LOG);
    if !path.exists() {
        return;
    }
    let s = &report.summary;
    let text = format!(
        "istio-proxy-reset {}: exit {exit_code}; gate {}; proxies {}, drifted {}, restarted {}, failed {}, manual {}",
        match report.mode {
            crate::report::Mode::Plan => "plan",
            crate::report::Mode::Run => "run",
        },
        if report.control_plane.gate.passed {
            "passed"
        } else {
            "failed"
        },
        s.proxies,
        s.drifted,
        s.restarted,
        s.failed,
        s.manual
    );
    if let Err(error) = std::fs::write(path, text) {
        tracing::debug!(%error, "could not write the termination message");
    }
}

/// Progress while the cluster is listed: a spinner with counts on a terminal, a debug line
/// per page otherwise.
pub struct ListingProgress {
    spinner: Option<ProgressBar>,
    counts: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl ListingProgress {
    pub fn new() -> ListingProgress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} listing the cluster: {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        ListingProgress {
            spinner,
            counts: Default::default(),
        }
    }

    /// One page of `kind` with `items` objects was read.
    pub fn page(&self, kind: &str, items: usize) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(kind.to_string()).or_default() += items;
        match &self.spinner {
            Some(spinner) => {
                let listed: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
                spinner.set_message(listed.join(", "));
            }
            None => tracing::debug!(kind, items, "listed a page"),
        }
    }

    /// What was listed so far, by kind.
    pub fn listed(&self) -> BTreeMap<String, usize> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

impl Default for ListingProgress {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress for people: a bar on a terminal; in a Job, one log line per state change.
pub struct Progress {
    bar: Option<ProgressBar>,
    in_flight: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = (std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} workloads done  {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            in_flight: Default::default(),
        }
    }

    /// `2 in flight: Deployment shop/orders, StatefulSet shop/cart`
    fn in_flight_message(
        &self,
        change: impl FnOnce(&mut std::collections::BTreeSet<String>),
    ) -> String {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut in_flight);
        let names: Vec<&str> = in_flight.iter().map(String::as_str).collect();
        format!("{} in flight: {}", names.len(), names.join(", "))
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn started(&self, workload: &WorkloadPlan) {
        match &self.bar {
            Some(bar) => bar.set_message(self.in_flight_message(|f| {
                f.insert(plain(&describe(workload)).into_owned());
            })),
            None => tracing::info!(
                workload = %describe(workload),
                action = workload.action.as_str(),
                order = workload.order,
                phase = workload.phase.as_str(),
                "started"
            ),
        }
    }

    fn finished(&self, workload: &WorkloadPlan, outcome: &Outcome) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(self.in_flight_message(|f| {
                    f.remove(plain(&describe(workload)).as_ref());
                }));
                bar.inc(1);
                // Cluster data on a terminal: nothing that moves the cursor or forges a line.
                bar.println(plain(&format!(
                    "{:>9}  {}{}",
                    outcome.status.as_str(),
                    describe(workload),
                    outcome
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )));
            }
            None if outcome.status == Status::Failed => tracing::warn!(
                workload = %describe(workload),
                status = outcome.status.as_str(),
                reason = outcome.reason.as_deref().unwrap_or(""),
                "finished"
            ),
            None => tracing::info!(
                workload = %describe(workload),
                status = outcome.status.as_str(),
                "finished"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_too_big_for_a_configmap_is_trimmed_and_says_so() {
        let pod = |i: usize| {
            serde_json::json!({"namespace": "shop", "name": format!("orders-{i:06}-{}", "x".repeat(40)),
                "verdict": "excluded", "action": "none", "proxyImage": "docker.io/istio/proxyv2:1.23.2",
                "workload": {"kind": "Deployment", "name": "orders"}, "reason": "namespace shop carries the skip label"})
        };
        let report: Report = serde_json::from_value(serde_json::json!({
            "apiVersion": crate::report::API_VERSION, "kind": crate::report::KIND, "mode": "run",
            "startedAt": "2026-11-26T10:00:00Z", "finishedAt": "2026-11-26T10:00:01Z",
            "controlPlane": {"version": "1.24.1", "image": null, "source": "x", "gate": {"passed": true}},
            "summary": {"pods": 8000, "proxies": 8000, "upToDate": 0, "drifted": 0, "restarted": 0, "failed": 0, "manual": 0},
            "workloads": [], "pods": (0..8000).map(pod).collect::<Vec<_>>()
        }))
        .unwrap();
        let data = configmap_data(&report).unwrap();
        let size: usize = data.values().map(String::len).sum();
        assert!(size <= CONFIGMAP_BUDGET, "{size}");
        let trimmed: Report = serde_json::from_str(&data[REPORT_KEY]).unwrap();
        assert!(trimmed.pods.len() < 8000 && !trimmed.pods.is_empty());
        assert_eq!(
            trimmed.summary, report.summary,
            "the summary still counts every pod"
        );
        assert!(trimmed.notes.iter().any(|n| n.contains("of 8000 pods")));
        assert!(data[MARKDOWN_KEY].contains("trimmed"));

        // Even without any pod entry, workloads naming thousands of pods are trimmed to fit.
        let mut crowded = report.clone();
        crowded.pods.clear();
        crowded.workloads = serde_json::from_value(serde_json::json!([{
            "kind": "Deployment", "namespace": "shop", "name": "orders", "phase": "customer",
            "action": "rollout-restart", "order": 1, "status": "completed",
            "pods": (0..60000).map(|i| format!("orders-7b9d5c6f4d-{i:06}")).collect::<Vec<_>>(),
            "fromVersions": ["1.23.2"]}]))
        .unwrap();
        let data = configmap_data(&crowded).unwrap();
        assert!(data.values().map(String::len).sum::<usize>() <= CONFIGMAP_BUDGET);
        let fitted: Report = serde_json::from_str(&data[REPORT_KEY]).unwrap();
        assert_eq!(fitted.workloads[0].pods.len(), WORKLOAD_PODS_KEPT);
        assert!(
            fitted
                .notes
                .iter()
                .any(|n| n.contains("each workload's pod list"))
        );

        let small = Report {
            pods: report.pods[..10].to_vec(),
            ..report
        };
        let data = configmap_data(&small).unwrap();
        let whole: Report = serde_json::from_str(&data[REPORT_KEY]).unwrap();
        assert_eq!(whole, small);
    }

    /// 20,000 workloads with a failed gate: every entry is skipped with a reason, and the
    /// pods' list alone is larger than a ConfigMap.
    fn gate_failed_report(workloads: usize) -> Report {
        let status = |i: usize| match i % 200 {
            0 => ("failed", "rollout-restart"),
            1..=9 => ("skipped", "manual"),
            _ => ("skipped", "rollout-restart"),
        };
        let entries: Vec<_> = (0..workloads).map(|i| {
            let (status, action) = status(i);
            serde_json::json!({"kind": "Deployment", "namespace": format!("team-{:03}", i % 300),
                "name": format!("service-{i:05}"), "phase": "customer", "action": action,
                "pods": [format!("service-{i:05}-7b9d5c6f4d-x2k9p")], "fromVersions": ["1.23.2"],
                "status": status, "reason": "not run: the control-plane gate failed",
                "runbook": "runbooks/gate.md#the-control-plane-gate-failed"})
        }).collect();
        let pods: Vec<_> = (0..workloads).map(|i| serde_json::json!({
            "namespace": format!("team-{:03}", i % 300), "name": format!("service-{i:05}-7b9d5c6f4d-x2k9p"),
            "verdict": "outdated", "action": status(i).1, "proxyImage": "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.23.2-distroless",
            "proxyVersion": "1.23.2", "workload": {"kind": "Deployment", "name": format!("service-{i:05}")},
            "reason": "proxy 1.23.2, control plane 1.24.1"})).collect();
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "apiVersion": crate::report::API_VERSION, "kind": crate::report::KIND, "mode": "run",
            "startedAt": "2026-11-26T10:00:00Z", "finishedAt": "2026-11-26T10:00:01Z",
            "controlPlane": {"version": "1.24.1", "image": null, "source": "x",
                             "gate": {"passed": false, "problems": ["istiod is not ready"]}},
            "summary": {"pods": workloads, "proxies": workloads, "upToDate": 0, "drifted": 0, "restarted": 0, "failed": 0, "manual": 0},
            "workloads": entries, "pods": pods
        }))
        .unwrap();
        report.recount();
        report
    }

    #[test]
    fn workloads_beyond_what_fits_are_summarised_failed_and_manual_ones_kept() {
        let report = gate_failed_report(20_000);
        assert!(serde_json::to_string(&report).unwrap().len() > 2 * CONFIGMAP_BUDGET);
        let data = configmap_data(&report).unwrap();
        let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= CONFIGMAP_BUDGET, "{size} bytes");
        let mut fitted: Report = serde_json::from_str(&data[REPORT_KEY]).unwrap();
        let omitted = fitted
            .omitted
            .clone()
            .expect("what was left out is counted");
        assert!(
            omitted.workloads > 0 && omitted.pods == 20_000,
            "{omitted:?}"
        );
        assert_eq!(fitted.workloads.len() + omitted.workloads, 20_000);
        let kept = |status: Status| {
            fitted
                .workloads
                .iter()
                .filter(|w| w.status == status)
                .count()
        };
        assert_eq!(kept(Status::Failed), 100, "every failure is kept");
        let manual = fitted
            .workloads
            .iter()
            .filter(|w| w.action == crate::plan::Action::Manual);
        assert_eq!(manual.count(), 900, "every manual item is kept");
        assert!(
            fitted
                .notes
                .iter()
                .any(|n| n.contains("of 20000 workloads are left out")),
            "{:?}",
            fitted.notes
        );
        let summary = fitted.summary.clone();
        fitted.recount();
        assert_eq!(
            fitted.summary, summary,
            "the summary is still its lists' count"
        );
        assert_eq!(summary, report.summary, "and still counts everything");
    }

    /// A DNS subdomain (RFC 1123), as Kubernetes validates object names.
    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && label.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    }

    #[test]
    fn event_names_are_subdomains_whatever_the_workload_is_called() {
        let cut_at_a_dash = format!("{}-tail", "a".repeat(EVENT_NAME_PREFIX - 1));
        let cut_at_a_dot = format!("{}.tail", "b".repeat(EVENT_NAME_PREFIX - 1));
        for workload in [
            "orders",
            cut_at_a_dash.as_str(),
            cut_at_a_dot.as_str(),
            &"c".repeat(253),
            "x.-y..z-",
            "Upper_Case:name",
            "---",
        ] {
            let name = event_name(workload, "ProxyRestarted", 0xabcd);
            assert!(is_dns_subdomain(&name), "{workload:?} gave {name:?}");
            assert!(name.ends_with(".proxyrestarted.0000abcd"), "{name}");
        }
        assert_eq!(
            event_name("orders", "ProxyRestarted", 1),
            "orders.proxyrestarted.00000001"
        );
    }

    #[test]
    fn configmap_targets_are_namespace_slash_name() {
        assert_eq!(
            configmap_target("kyma-system/report").unwrap(),
            ("kyma-system".to_string(), "report".to_string())
        );
        for bad in ["report", "/report", "ns/", "a/b/c"] {
            assert!(configmap_target(bad).is_err(), "{bad}");
        }
    }
}
