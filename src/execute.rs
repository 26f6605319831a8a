//! Doing what the plan says (DESIGN §2.5, §2.7): restart or evict, phase by phase with at most
//! `--concurrency` workloads in flight, wait for each rollout with watches, then check that the
//! workload's pods carry the expected proxy.
//!
//! Restarting is idempotent: the patch that restarts a workload also records the target version
//! on it, in one request, and every attempt first reads the workload back. So a retried request,
//! a second run or a run after a crash never restarts a workload twice for one version.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, EvictParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::{backoff, is_transient, list_pages, retry, status_code};
use crate::controlplane::ControlPlane;
use crate::image::{Comparison, ImageRef, compare};
use crate::inventory::live::PODS;
use crate::inventory::{InventoryBuilder, PodPhase};
use crate::plan::{
    Action, Phase, Plan, RESTARTED_AT_ANNOTATION, TARGET_ANNOTATION, WorkloadPlan, runbook,
};
use crate::report::Status;

/// The annotation `kubectl rollout restart` sets; operators that own workloads tend to keep it.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    pub rollout_timeout: Duration,
    pub no_wait: bool,
}

/// How one workload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub runbook: Option<&'static str>,
}

impl Outcome {
    fn failed(failure: Failure) -> Outcome {
        Outcome {
            status: Status::Failed,
            reason: Some(failure.reason),
            runbook: Some(failure.runbook),
        }
    }
}

/// Why a workload failed, and where a person reads on.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    runbook: &'static str,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            runbook: runbook::ROLLOUT_FAILED,
        }
    }

    fn api(action: &str, error: &kube::Error) -> Failure {
        Failure::new(format!("{action}: {}", crate::describe_kube_error(error)))
    }
}

/// Where each workload of the plan stands; shared with whoever reports progress or an
/// interrupted run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Waiting,
    InFlight,
    Done(Outcome),
}

pub type Board = Arc<Mutex<Vec<Progress>>>;

/// Something told of each state change: the terminal's progress bar or the Job's log.
pub trait Observer: Sync {
    fn started(&self, workload: &WorkloadPlan);
    fn finished(&self, workload: &WorkloadPlan, outcome: &Outcome);
}

/// Runs every automatic action of `plan`; `board` says where each workload stands (one entry
/// per `plan.workloads`, manual ones stay `Waiting`).
pub async fn execute(
    client: &Client,
    plan: &Plan,
    control_plane: &ControlPlane,
    settings: &Settings,
    board: &Board,
    observer: &dyn Observer,
) {
    for phase in [Phase::Kyma, Phase::Customer] {
        let mut work: Vec<usize> = plan
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| w.phase == phase && w.action.is_automatic())
            .map(|(i, _)| i)
            .collect();
        work.sort_by_key(|&i| plan.workloads[i].order);
        // In order, never more than `concurrency` at once; the phase completes before the next.
        futures::stream::iter(work)
            .map(|index| async move {
                let workload = &plan.workloads[index];
                board.lock().expect("board")[index] = Progress::InFlight;
                observer.started(workload);
                let outcome = handle(client, workload, control_plane, settings).await;
                observer.finished(workload, &outcome);
                board.lock().expect("board")[index] = Progress::Done(outcome);
            })
            .buffer_unordered(settings.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
    }
}

/// How long past `--rollout-timeout` a workload's last API calls (the check of its pods after
/// a rollout that finished just in time) may take. Every call retries for up to
/// `--api-retry-timeout` on its own; this keeps one workload from running minutes over.
const SETTLE: Duration = Duration::from_secs(5);

async fn handle(
    client: &Client,
    workload: &WorkloadPlan,
    control_plane: &ControlPlane,
    settings: &Settings,
) -> Outcome {
    let deadline = Instant::now() + settings.rollout_timeout;
    let action = async {
        match workload.action {
            Action::RolloutRestart => {
                restart_and_wait(client, workload, control_plane, settings, deadline).await
            }
            Action::Evict => {
                evict_one_by_one(client, workload, control_plane, settings, deadline).await
            }
            Action::Manual | Action::None => unreachable!("only automatic actions are executed"),
        }
    };
    // Dropping the action cancels the call in flight. A restart patch it cut off may or may
    // not have been applied; the target version it records keeps a re-run from repeating it.
    let result = tokio::time::timeout_at(deadline + SETTLE, action)
        .await
        .unwrap_or_else(|_| {
            Err(Failure::new(format!(
                "{} did not finish within {} (and {} more for its last API calls): the API \
                 server did not answer in time; the call then in flight may still have taken \
                 effect, which a re-run sees",
                describe(workload),
                humantime::format_duration(settings.rollout_timeout),
                humantime::format_duration(SETTLE)
            )))
        });
    match result {
        Ok(status) => Outcome {
            status,
            reason: None,
            runbook: None,
        },
        Err(failure) => Outcome::failed(failure),
    }
}

fn api_resource(workload: &WorkloadPlan) -> Result<ApiResource, Failure> {
    let (group, version, plural) = match workload.kind.as_str() {
        "Deployment" => ("apps", "v1", "deployments"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "DaemonSet" => ("apps", "v1", "daemonsets"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "ReplicationController" => ("", "v1", "replicationcontrollers"),
        "Rollout" => ("argoproj.io", "v1alpha1", "rollouts"),
        other => {
            return Err(Failure::new(format!(
                "{other} is not a kind this tool acts on"
            )));
        }
    };
    Ok(ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: workload.kind.clone(),
        plural: plural.into(),
    })
}

fn workload_api(client: &Client, workload: &WorkloadPlan) -> Result<Api<DynamicObject>, Failure> {
    Ok(Api::namespaced_with(
        client.clone(),
        &workload.namespace,
        &api_resource(workload)?,
    ))
}

async fn restart_and_wait(
    client: &Client,
    workload: &WorkloadPlan,
    control_plane: &ControlPlane,
    settings: &Settings,
    deadline: Instant,
) -> Result<Status, Failure> {
    let api = workload_api(client, workload)?;
    let patched = restart(&api, workload, deadline).await?;
    if patched {
        tracing::debug!(workload = %describe(workload), "restarted");
    } else {
        tracing::info!(workload = %describe(workload), target = %workload.target,
            "already restarted for this version; waiting for that rollout");
    }
    if settings.no_wait {
        return Ok(Status::Restarted);
    }
    let kind = workload.kind.clone();
    watch_until(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", workload.name)),
        deadline,
        |objects| match objects.values().next() {
            None => Check::Fail(format!("{} no longer exists", describe(workload))),
            Some(object) => match serde_json::to_value(object) {
                Ok(value) => rollout_state(&kind, &value),
                Err(e) => Check::Wait(e.to_string()),
            },
        },
    )
    .await
    .map_err(|e| e.into_failure(workload, settings.rollout_timeout))?;
    verify(client, workload, control_plane).await?;
    Ok(Status::Completed)
}

/// Restarts once: reads the workload; if it already records this target, does nothing;
/// otherwise patches the restart and the record together, guarded by the resourceVersion it
/// read, so that a conflict or an ambiguous failure is resolved by reading again.
async fn restart(
    api: &Api<DynamicObject>,
    workload: &WorkloadPlan,
    deadline: Instant,
) -> Result<bool, Failure> {
    let mut delays = backon::BackoffBuilder::build(backoff());
    loop {
        let object = retry(format_args!("reading {}", describe(workload)), || {
            api.get_opt(&workload.name)
        })
        .await
        .map_err(|e| Failure::api(&format!("reading {}", describe(workload)), &e))?
        .ok_or_else(|| {
            Failure::new(format!(
                "{} no longer exists (404 NotFound): deleted since the plan",
                describe(workload)
            ))
        })?;
        if object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TARGET_ANNOTATION))
            == Some(&workload.target)
        {
            return Ok(false);
        }
        let patch = restart_patch(
            &workload.kind,
            object.metadata.resource_version.as_deref(),
            &workload.target,
            &Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        let result = api
            .patch(&workload.name, &PatchParams::default(), &patch)
            .await;
        match result {
            Ok(_) => return Ok(true),
            Err(error) if status_code(&error) == Some(409) || is_transient(&error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                if Instant::now() + delay > deadline {
                    return Err(Failure::api(
                        &format!("restarting {} (gave up at the timeout)", describe(workload)),
                        &error,
                    ));
                }
                tracing::debug!(%error, "restart patch not applied; reading the workload again");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                return Err(Failure::api(
                    &format!("restarting {}", describe(workload)),
                    &error,
                ));
            }
        }
    }
}

/// The one patch that restarts a workload and records why. Argo Rollouts restart through
/// `spec.restartAt` and, being custom resources, take a JSON merge patch.
pub fn restart_patch(
    kind: &str,
    resource_version: Option<&str>,
    target: &str,
    now: &str,
) -> Patch<Value> {
    let metadata = json!({
        "resourceVersion": resource_version,
        "annotations": { TARGET_ANNOTATION: target, RESTARTED_AT_ANNOTATION: now },
    });
    if kind == "Rollout" {
        Patch::Merge(json!({ "metadata": metadata, "spec": { "restartAt": now } }))
    } else {
        Patch::Strategic(json!({
            "metadata": metadata,
            "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: now } } } },
        }))
    }
}

/// What a wait condition says of the objects it watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Done,
    /// Not yet; the text says where it stands, for a timeout's reason.
    Wait(String),
    Fail(String),
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// DESIGN §2.7: has this workload's rollout completed?
pub fn rollout_state(kind: &str, object: &Value) -> Check {
    let generation = int(&object["metadata"]["generation"]);
    let status = &object["status"];
    let observed = int(&status["observedGeneration"]);
    if observed < generation {
        return Check::Wait(format!(
            "the controller has not seen generation {generation} yet (observed {observed})"
        ));
    }
    let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (done, state) = match kind {
        "Deployment" => {
            if let Some(condition) = status["conditions"].as_array().and_then(|c| {
                c.iter().find(|c| {
                    c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"
                })
            }) {
                return Check::Fail(format!(
                    "ProgressDeadlineExceeded: {}",
                    condition["message"]
                        .as_str()
                        .unwrap_or("new pods did not become available")
                ));
            }
            let updated = int(&status["updatedReplicas"]);
            let available = int(&status["availableReplicas"]);
            let total = int(&status["replicas"]);
            (
                updated >= want && available >= want && total == updated,
                format!("{updated} of {want} updated, {available} available, {total} in all"),
            )
        }
        "StatefulSet" => {
            let updated = int(&status["updatedReplicas"]);
            let ready = int(&status["readyReplicas"]);
            let same_revision = status["currentRevision"] == status["updateRevision"];
            (
                same_revision && updated >= want && ready >= want,
                format!(
                    "{updated} of {want} updated, {ready} ready, revision rolled: {same_revision}"
                ),
            )
        }
        "DaemonSet" => {
            let desired = int(&status["desiredNumberScheduled"]);
            let updated = int(&status["updatedNumberScheduled"]);
            let available = int(&status["numberAvailable"]);
            (
                updated >= desired && available >= desired,
                format!("{updated} of {desired} updated, {available} available"),
            )
        }
        "Rollout" => {
            let asked = object["spec"]["restartAt"].as_str().unwrap_or_default();
            let restarted = status["restartedAt"].as_str().unwrap_or_default();
            let updated = int(&status["updatedReplicas"]);
            let available = int(&status["availableReplicas"]);
            (
                !asked.is_empty() && restarted >= asked && updated >= want && available >= want,
                format!(
                    "restarted at {restarted:?} (asked {asked:?}), {updated} of {want} updated, {available} available"
                ),
            )
        }
        other => return Check::Fail(format!("no rollout status for kind {other}")),
    };
    if done {
        Check::Done
    } else {
        Check::Wait(state)
    }
}

/// Why a wait ended without success.
enum WaitError {
    TimedOut {
        last_state: String,
        last_error: Option<String>,
    },
    Failed(String),
}

impl WaitError {
    fn into_failure(self, workload: &WorkloadPlan, timeout: Duration) -> Failure {
        match self {
            WaitError::TimedOut {
                last_state,
                last_error,
            } => Failure::new(format!(
                "{} did not finish within {}: {last_state}{}",
                describe(workload),
                humantime::format_duration(timeout),
                last_error
                    .map(|e| format!(" (last API error: {e})"))
                    .unwrap_or_default()
            )),
            WaitError::Failed(reason) => Failure::new(reason),
        }
    }
}

/// Watches the objects `config` selects until `check` says done or fail, or the deadline.
/// The watcher re-lists after a cut stream or a 410, so no change is missed.
async fn watch_until<K>(
    api: Api<K>,
    config: watcher::Config,
    deadline: Instant,
    mut check: impl FnMut(&BTreeMap<String, K>) -> Check,
) -> Result<(), WaitError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut objects: BTreeMap<String, K> = BTreeMap::new();
    let mut fresh: BTreeMap<String, K> = BTreeMap::new();
    let mut last_state = String::from("no answer from the API server yet");
    let mut last_error = None;
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let key = |object: &K| object.meta().name.clone().unwrap_or_default();
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Err(_) => {
                return Err(WaitError::TimedOut {
                    last_state,
                    last_error,
                });
            }
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => continue,
            Ok(Err(error)) => {
                tracing::debug!(%error, "watch failed; the watcher retries");
                last_error = Some(error.to_string());
                continue;
            }
        };
        match event {
            Event::Init => {
                fresh.clear();
                continue;
            }
            Event::InitApply(object) => {
                fresh.insert(key(&object), object);
                continue;
            }
            Event::InitDone => objects = std::mem::take(&mut fresh),
            Event::Apply(object) => {
                objects.insert(key(&object), object);
            }
            Event::Delete(object) => {
                objects.remove(&key(&object));
            }
        }
        match check(&objects) {
            Check::Done => return Ok(()),
            Check::Wait(state) => last_state = state,
            Check::Fail(reason) => return Err(WaitError::Failed(reason)),
        }
    }
}

/// Evicts the workload's stale pods one at a time (a StatefulSet's highest ordinal first),
/// each replacement Ready before the next, so that PodDisruptionBudgets hold and capacity stays.
async fn evict_one_by_one(
    client: &Client,
    workload: &WorkloadPlan,
    control_plane: &ControlPlane,
    settings: &Settings,
    deadline: Instant,
) -> Result<Status, Failure> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &workload.namespace);
    let owner_api = workload_api(client, workload)?;
    for name in eviction_order(&workload.kind, &workload.pods) {
        let Some(pod) = retry(format_args!("reading pod {name}"), || pods.get_opt(&name))
            .await
            .map_err(|e| Failure::api(&format!("reading pod {}/{name}", workload.namespace), &e))?
        else {
            continue; // gone already: its replacement is checked at the end
        };
        if pod_is_current(&pod, control_plane) {
            continue; // replaced by an earlier run
        }
        let old_uid = pod.metadata.uid.clone().unwrap_or_default();
        // What "whole again" means is what the workload had before this eviction: a pod that
        // was not Ready (crash-looping, say) is not waited for to become Ready in its new form.
        let was_ready = pod_ready(&pod);
        let ready_before =
            match retry("reading the owner", || owner_api.get_opt(&workload.name)).await {
                Ok(Some(owner)) => ready_count(&workload.kind, &owner).1,
                Ok(None) => {
                    return Err(Failure::new(format!(
                        "{} no longer exists",
                        describe(workload)
                    )));
                }
                Err(error) => {
                    return Err(Failure::api(
                        &format!("reading {}", describe(workload)),
                        &error,
                    ));
                }
            };
        if pod.metadata.deletion_timestamp.is_none() {
            evict(&pods, workload, &name, deadline).await?;
        }
        // Even with --no-wait, each replacement comes back before the next eviction: evicting
        // every pod at once could take a StatefulSet's quorum. Only the final check is skipped.
        let replaced = Replaced {
            name: &name,
            old_uid: &old_uid,
            was_ready,
            ready_before,
        };
        wait_for_replacement(&pods, &owner_api, workload, &replaced, deadline)
            .await
            .map_err(|e| e.into_failure(workload, settings.rollout_timeout))?;
    }
    if settings.no_wait {
        return Ok(Status::Restarted);
    }
    verify(client, workload, control_plane).await?;
    Ok(Status::Completed)
}

/// A StatefulSet's pods from the highest ordinal down, as its own controller would; others by name.
pub fn eviction_order(kind: &str, pods: &[Arc<str>]) -> Vec<Arc<str>> {
    let mut ordered = pods.to_vec();
    if kind == "StatefulSet" {
        let ordinal = |name: &Arc<str>| {
            name.rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ordered.sort_by(|a, b| ordinal(b).cmp(&ordinal(a)).then(a.cmp(b)));
    } else {
        ordered.sort();
    }
    ordered
}

/// Evicts one pod; a PodDisruptionBudget's 429 is waited out until the deadline.
async fn evict(
    pods: &Api<Pod>,
    workload: &WorkloadPlan,
    name: &str,
    deadline: Instant,
) -> Result<(), Failure> {
    let mut delays = backon::BackoffBuilder::build(backoff());
    loop {
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => return Ok(()),
            Err(error) if status_code(&error) == Some(404) => return Ok(()),
            Err(error) if status_code(&error) == Some(429) || is_transient(&error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                if Instant::now() + delay > deadline {
                    let blocked = status_code(&error) == Some(429);
                    return Err(Failure {
                        reason: format!(
                            "evicting pod {}/{name}{}: {}",
                            workload.namespace,
                            if blocked {
                                " was refused until the timeout (a PodDisruptionBudget allows no disruption)"
                            } else {
                                " kept failing until the timeout"
                            },
                            crate::describe_kube_error(&error)
                        ),
                        runbook: if blocked {
                            runbook::EVICTION_BLOCKED
                        } else {
                            runbook::ROLLOUT_FAILED
                        },
                    });
                }
                tracing::debug!(pod = name, %error, "eviction refused for now; trying again");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                return Err(Failure::api(
                    &format!("evicting pod {}/{name}", workload.namespace),
                    &error,
                ));
            }
        }
    }
}

/// An evicted pod, and the state of its workload before the eviction.
struct Replaced<'a> {
    name: &'a str,
    old_uid: &'a str,
    was_ready: bool,
    ready_before: i64,
}

/// `(wanted, ready)` pods of an evicted pod's owner.
fn ready_count(kind: &str, owner: &DynamicObject) -> (i64, i64) {
    let status = &owner.data["status"];
    if kind == "DaemonSet" {
        (
            int(&status["desiredNumberScheduled"]),
            int(&status["numberReady"]),
        )
    } else {
        (
            owner.data["spec"]["replicas"].as_i64().unwrap_or(1),
            int(&status["readyReplicas"]),
        )
    }
}

/// Waits until the evicted pod is gone and the workload is as whole as it was: a StatefulSet's
/// pod of the same name back (and Ready, if it was); for others, as many Ready pods as before.
async fn wait_for_replacement(
    pods: &Api<Pod>,
    owner_api: &Api<DynamicObject>,
    workload: &WorkloadPlan,
    replaced: &Replaced<'_>,
    deadline: Instant,
) -> Result<(), WaitError> {
    let Replaced {
        name,
        old_uid,
        was_ready,
        ready_before,
    } = *replaced;
    if workload.kind == "StatefulSet" {
        return watch_until(
            pods.clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            deadline,
            |found| match found.values().next() {
                None => Check::Wait(format!("pod {name} not recreated yet")),
                Some(pod) if pod.metadata.uid.as_deref() == Some(old_uid) => {
                    Check::Wait(format!("pod {name} still terminating"))
                }
                Some(pod)
                    if pod.metadata.deletion_timestamp.is_none()
                        && (pod_ready(pod) || !was_ready) =>
                {
                    Check::Done
                }
                Some(_) => Check::Wait(format!("pod {name} recreated, not Ready yet")),
            },
        )
        .await;
    }

    // The old pod must be gone first, or the owner's counts may still include it.
    watch_until(
        pods.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
        deadline,
        |found| match found.values().next() {
            Some(pod) if pod.metadata.uid.as_deref() == Some(old_uid) => {
                Check::Wait(format!("pod {name} still terminating"))
            }
            _ => Check::Done,
        },
    )
    .await?;
    let kind = workload.kind.clone();
    watch_until(
        owner_api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={}", workload.name)),
        deadline,
        |found| match found.values().next() {
            None => Check::Fail(format!("{} no longer exists", describe(workload))),
            Some(owner) => {
                let (want, ready) = ready_count(&kind, owner);
                if ready >= want.min(ready_before) {
                    Check::Done
                } else {
                    Check::Wait(format!(
                        "{ready} of {want} pods Ready ({ready_before} were before the eviction)"
                    ))
                }
            }
        },
    )
    .await
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod already runs the proxy its revision expects.
fn pod_is_current(pod: &Pod, control_plane: &ControlPlane) -> bool {
    let Ok(value) = serde_json::to_value(pod) else {
        return false;
    };
    let Ok(object) = serde_json::from_value::<crate::inventory::model::Object>(
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": value["metadata"], "spec": value["spec"], "status": value["status"]}),
    ) else {
        return false;
    };
    let mut builder = InventoryBuilder::new();
    if builder.add(object, "pod").is_err() {
        return false;
    }
    let inventory = builder.finish();
    inventory
        .proxy_pods
        .first()
        .is_some_and(|p| stale_reason(p, control_plane).is_none())
}

/// Why a pod's proxy is not the expected one, or `None` when it is.
fn stale_reason(pod: &crate::inventory::ProxyPod, control_plane: &ControlPlane) -> Option<String> {
    let expected = match control_plane.expected_for(pod.revision.as_deref()) {
        Ok(expected) => expected,
        Err(why) => return Some(why),
    };
    let image = pod.proxy_image.as_deref()?;
    match ImageRef::parse(image) {
        Ok(image) => match compare(&image, expected) {
            Comparison::Current => None,
            Comparison::Drift(why) => Some(why),
        },
        Err(error) => Some(error.to_string()),
    }
}

/// After a rollout: every live pod of the workload carries the expected proxy, or the workload
/// failed (a controller may be reverting the template, or the injector may not have run).
async fn verify(
    client: &Client,
    workload: &WorkloadPlan,
    control_plane: &ControlPlane,
) -> Result<(), Failure> {
    // Only the pods the workload selects are listed: in a namespace of thousands of pods, a
    // workload's check stays one small list. Ownership is checked on each pod all the same.
    let selector = match workload_api(client, workload)?
        .get_opt(&workload.name)
        .await
    {
        Ok(Some(object)) => match_labels(&object.data["spec"]["selector"]),
        _ => None,
    };
    let builder = std::cell::RefCell::new(InventoryBuilder::new());
    // Live pods, proxy or not: one that came back without a proxy was not injected.
    let live = std::cell::RefCell::new(Vec::new());
    list_pages(
        client,
        &PODS.path(Some(&workload.namespace)),
        PODS.kind,
        PODS.api_version,
        selector.as_deref(),
        |items| {
            let mut builder = builder.borrow_mut();
            for object in items.into_iter().filter(|o| owned_by(o, workload)) {
                if is_live(&object) {
                    live.borrow_mut()
                        .push(object.metadata.name.clone().unwrap_or_default());
                }
                builder.add(object, "pod")?;
            }
            Ok(())
        },
        || {
            *builder.borrow_mut() = InventoryBuilder::new();
            live.borrow_mut().clear();
        },
    )
    .await
    .map_err(|e| Failure::new(format!("checking the pods of {}: {e}", describe(workload))))?;
    let inventory = builder.into_inner().finish();
    let without_proxy: Vec<String> = live
        .into_inner()
        .into_iter()
        .filter(|name| !inventory.proxy_pods.iter().any(|p| *p.name == **name))
        .collect();
    if !without_proxy.is_empty() {
        return Err(Failure::new(format!(
            "the rollout finished but {} pod{} came back without an Istio proxy: {}; injection did \
             not run (is the namespace still labelled for injection, is the injector's webhook up?)",
            without_proxy.len(),
            if without_proxy.len() == 1 { "" } else { "s" },
            without_proxy.join(", ")
        )));
    }
    let stale: Vec<String> = inventory
        .proxy_pods
        .iter()
        // Terminating, completed and failed (evicted, shut down) pods are leftovers the
        // controller never replaces; only live pods must carry the new proxy.
        .filter(|p| !p.terminating && !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed))
        .filter_map(|p| stale_reason(p, control_plane).map(|why| format!("{} ({why})", p.name)))
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "the rollout finished but {} pod{} still carr{} an old proxy: {}; a controller may be \
             reverting the template, or injection did not run",
            stale.len(),
            if stale.len() == 1 { "" } else { "s" },
            if stale.len() == 1 { "ies" } else { "y" },
            stale.join(", ")
        )))
    }
}

/// A pod that is neither leaving nor done: terminating, completed and failed (evicted, shut
/// down) pods are leftovers a controller never replaces.
fn is_live(object: &crate::inventory::model::Object) -> bool {
    let phase = match &object.body {
        crate::inventory::model::Body::Pod { status, .. } => status.phase.as_deref(),
        _ => None,
    };
    !object.metadata.deleting && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// A label selector for `spec.selector`'s `matchLabels` (a ReplicationController's selector is
/// the map itself); `None` when it has none, and then every pod is listed.
pub fn match_labels(selector: &Value) -> Option<String> {
    let labels = selector
        .get("matchLabels")
        .unwrap_or(selector)
        .as_object()?;
    let terms: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// Whether a pod belongs to the workload: its controller is the workload, or (Deployments,
/// Rollouts) one of the workload's ReplicaSets, named `<workload>-<hash>`.
fn owned_by(object: &crate::inventory::model::Object, workload: &WorkloadPlan) -> bool {
    let Some(controller) = object.metadata.controller() else {
        return false;
    };
    match workload.kind.as_str() {
        "Deployment" | "Rollout" => {
            controller.kind == "ReplicaSet"
                && controller
                    .name
                    .strip_prefix(&workload.name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    // `<name>-<hash>`: `orders` does not claim `orders-api-6d4f9c7b8`'s pods.
                    .is_some_and(|hash| !hash.is_empty() && !hash.contains('-'))
        }
        kind => controller.kind == kind && controller.name == workload.name,
    }
}

pub fn describe(workload: &WorkloadPlan) -> String {
    format!("{} {}/{}", workload.kind, workload.namespace, workload.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_completion_per_kind() {
        let deployment = |generation, observed, updated, available, total| {
            json!({"metadata": {"generation": generation}, "spec": {"replicas": 3},
                   "status": {"observedGeneration": observed, "updatedReplicas": updated,
                              "availableReplicas": available, "replicas": total}})
        };
        assert_eq!(
            rollout_state("Deployment", &deployment(2, 2, 3, 3, 3)),
            Check::Done
        );
        assert!(matches!(
            rollout_state("Deployment", &deployment(2, 1, 3, 3, 3)),
            Check::Wait(_)
        ));
        assert!(
            matches!(
                rollout_state("Deployment", &deployment(2, 2, 3, 3, 4)),
                Check::Wait(_)
            ),
            "an old pod remains"
        );
        assert!(matches!(
            rollout_state("Deployment", &deployment(2, 2, 2, 3, 3)),
            Check::Wait(_)
        ));
        let mut stuck = deployment(2, 2, 1, 2, 3);
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."}]);
        assert!(
            matches!(rollout_state("Deployment", &stuck), Check::Fail(ref m) if m.contains("timed out"))
        );

        let sts = |current: &str, update: &str| {
            json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 2,
                              "currentRevision": current, "updateRevision": update}})
        };
        assert_eq!(
            rollout_state("StatefulSet", &sts("db-2", "db-2")),
            Check::Done
        );
        assert!(matches!(
            rollout_state("StatefulSet", &sts("db-1", "db-2")),
            Check::Wait(_)
        ));

        let ds = |updated, available| {
            json!({"metadata": {"generation": 1}, "spec": {},
                   "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                              "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert_eq!(rollout_state("DaemonSet", &ds(3, 3)), Check::Done);
        assert!(matches!(
            rollout_state("DaemonSet", &ds(3, 2)),
            Check::Wait(_)
        ));

        let rollout = |restarted: &str| {
            json!({"metadata": {"generation": 4}, "spec": {"replicas": 2, "restartAt": "2026-11-26T10:00:00Z"},
                   "status": {"observedGeneration": "4", "restartedAt": restarted,
                              "updatedReplicas": 2, "availableReplicas": 2}})
        };
        assert_eq!(
            rollout_state("Rollout", &rollout("2026-11-26T10:00:00Z")),
            Check::Done
        );
        assert!(matches!(
            rollout_state("Rollout", &rollout("2026-11-25T10:00:00Z")),
            Check::Wait(_)
        ));
    }

    #[test]
    fn a_deployment_owns_only_its_own_replica_sets_pods() {
        let workload = |kind: &str, name: &str| WorkloadPlan {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            phase: Phase::Customer,
            action: Action::RolloutRestart,
            order: Some(1),
            pods: vec![],
            from_versions: vec![],
            target: "1.24.1".into(),
            update_strategy: None,
            reason: None,
            runbook: None,
        };
        let pod = |owner_kind: &str, owner: &str| -> crate::inventory::model::Object {
            serde_json::from_value(json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": true}]}}))
            .unwrap()
        };
        let orders = workload("Deployment", "orders");
        assert!(owned_by(&pod("ReplicaSet", "orders-6d4f9c7b8"), &orders));
        assert!(!owned_by(
            &pod("ReplicaSet", "orders-api-6d4f9c7b8"),
            &orders
        ));
        assert!(!owned_by(&pod("ReplicaSet", "orders"), &orders));
        assert!(!owned_by(&pod("StatefulSet", "orders"), &orders));
        assert!(owned_by(
            &pod("StatefulSet", "db"),
            &workload("StatefulSet", "db")
        ));
    }

    #[test]
    fn selectors_from_match_labels() {
        assert_eq!(
            match_labels(&json!({"matchLabels": {"app": "orders", "tier": "web"}})).as_deref(),
            Some("app=orders,tier=web")
        );
        assert_eq!(
            match_labels(&json!({"app": "mailer"})).as_deref(),
            Some("app=mailer")
        );
        assert_eq!(match_labels(&json!({"matchExpressions": []})), None);
        assert_eq!(match_labels(&Value::Null), None);
    }

    #[test]
    fn statefulsets_are_evicted_from_the_highest_ordinal() {
        let pods: Vec<Arc<str>> = ["redis-0", "redis-10", "redis-2"].map(Arc::from).to_vec();
        let names = |kind| -> Vec<String> {
            eviction_order(kind, &pods)
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        assert_eq!(names("StatefulSet"), ["redis-10", "redis-2", "redis-0"]);
        assert_eq!(names("ReplicaSet"), ["redis-0", "redis-10", "redis-2"]);
    }

    #[test]
    fn the_restart_patch_records_the_target_with_the_restart() {
        let Patch::Strategic(patch) =
            restart_patch("Deployment", Some("41"), "1.24.1", "2026-11-26T10:00:00Z")
        else {
            panic!("a strategic merge patch for apps workloads");
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "41");
        assert_eq!(
            patch["metadata"]["annotations"][TARGET_ANNOTATION],
            "1.24.1"
        );
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
            "2026-11-26T10:00:00Z"
        );
        let Patch::Merge(patch) = restart_patch("Rollout", None, "1.24.1", "2026-11-26T10:00:00Z")
        else {
            panic!("a merge patch for Rollouts");
        };
        assert_eq!(patch["spec"]["restartAt"], "2026-11-26T10:00:00Z");
    }
}
