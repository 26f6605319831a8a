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
use crate::report::{Format, Report, Status, WorkloadReport};
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

/// The ConfigMap's data: the JSON report and its markdown, trimmed to fit. Pods are dropped from
/// the end of the list (workloads, the summary and every failure stay), and a note says so.
pub fn configmap_data(report: &Report) -> Result<BTreeMap<String, String>> {
    let mut fitted = report.clone();
    let total = report.pods.len();
    loop {
        let json = serde_json::to_string(&fitted)?;
        let markdown = fitted.render(Format::Markdown)?;
        if json.len() + markdown.len() <= CONFIGMAP_BUDGET {
            return Ok(BTreeMap::from([
                (REPORT_KEY.to_string(), json),
                (MARKDOWN_KEY.to_string(), markdown),
            ]));
        }
        if fitted.pods.is_empty() {
            // Then the workloads' own pod lists: the counts stay in the summary, and every
            // workload, its status and its reason stay listed.
            let longest = fitted
                .workloads
                .iter()
                .map(|w| w.pods.len())
                .max()
                .unwrap_or(0);
            if longest > WORKLOAD_PODS_KEPT {
                for workload in &mut fitted.workloads {
                    workload.pods.truncate(WORKLOAD_PODS_KEPT);
                }
                fitted.notes.push(format!(
                    "each workload's pod list is trimmed to {WORKLOAD_PODS_KEPT} names to fit the ConfigMap"
                ));
                continue;
            }
            // Last, the markdown.
            let json = serde_json::to_string(&fitted)?;
            return Ok(BTreeMap::from([(REPORT_KEY.to_string(), json)]));
        }
        let keep = fitted.pods.len() * 3 / 4;
        fitted.pods.truncate(keep);
        fitted
            .notes
            .retain(|n| !n.starts_with("the pod list is trimmed"));
        fitted.notes.push(format!(
            "the pod list is trimmed to {keep} of {total} pods to fit the ConfigMap's 1 MiB; the full report is in --report-file and the Job's log"
        ));
    }
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
            tracing::warn!(workload = %describe(plan), %error, "could not record an Event");
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
    let name = format!(
        "{}.{}.{:08x}",
        entry.name.chars().take(200).collect::<String>(),
        reason.to_ascii_lowercase(),
        fnv1a(&[entry.kind.as_str(), plan.target.as_str()]) as u32
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(entry.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(plan.api_version.clone()),
            kind: Some(entry.kind.clone()),
            name: Some(entry.name.clone()),
            namespace: Some(entry.namespace.clone()),
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
    let action = format!("recording an Event on {}", describe(plan));
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

/// A stable short hash (FNV-1a) for names that must be the same run after run.
fn fnv1a(parts: &[&str]) -> u64 {
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
                f.insert(describe(workload));
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
                    f.remove(&describe(workload));
                }));
                bar.inc(1);
                bar.println(format!(
                    "{:>9}  {}{}",
                    outcome.status.as_str(),
                    describe(workload),
                    outcome
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
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
