//! Doing what the plan says (DESIGN §2.5, §2.7): restart or evict, phase by phase with at most
//! `--concurrency` workloads in flight, wait for each rollout with watches, then check that the
//! workload's pods carry the expected proxy.
//!
//! Restarting is idempotent: the patch that restarts a workload also records the target version
//! on it, in one request, and every attempt first reads the workload back. So a retried request,
//! a second run or a run after a crash never restarts a workload twice for one version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::classify::{PodContext, classify};
use crate::cluster::{backoff, is_transient, list_pages, retry, retry_budget, status_code};
use crate::controlplane::ControlPlane;
use crate::drift::{self, Reasons};
use crate::inventory::live::PODS;
use crate::inventory::{InventoryBuilder, PodPhase};
use crate::plan::{
    Action, Phase, Plan, RESTARTED_AT_ANNOTATION, TARGET_ANNOTATION, WorkloadPlan, ordinal,
    ordinals_not_ready, runbook,
};
use crate::report::Status;

/// The annotation `kubectl rollout restart` sets; operators that own workloads tend to keep it.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    pub rollout_timeout: Duration,
    pub no_wait: bool,
    /// `--drift`: the reasons a restarted pod must be rid of.
    pub drift: Reasons,
}

/// How one workload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub runbook: Option<&'static str>,
}

impl Outcome {
    fn ended(status: Status) -> Outcome {
        Outcome {
            status,
            reason: None,
            runbook: None,
        }
    }

    /// Nothing was left to act on; not a failure of the run.
    fn skipped(reason: String) -> Outcome {
        Outcome {
            status: Status::Skipped,
            reason: Some(reason),
            runbook: None,
        }
    }

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
    result.unwrap_or_else(Outcome::failed)
}

fn api_resource(workload: &WorkloadPlan) -> Result<ApiResource, Failure> {
    let (group, version, plural) = match &*workload.kind {
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
        kind: workload.kind.to_string(),
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
) -> Result<Outcome, Failure> {
    let api = workload_api(client, workload)?;
    match restart(&api, workload, deadline).await? {
        Restart::Patched => tracing::debug!(workload = %describe(workload), "restarted"),
        Restart::Recorded => {
            tracing::info!(workload = %describe(workload), target = %workload.target,
                "already restarted for this version; waiting for that rollout")
        }
        Restart::Gone(reason) => return Ok(Outcome::skipped(reason)),
    }
    if settings.no_wait {
        return Ok(Outcome::ended(Status::Restarted));
    }
    let kind = workload.kind.clone();
    watch_until(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", workload.name)),
        deadline,
        &describe(workload),
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
    verify(client, workload, control_plane, settings.drift).await?;
    Ok(Outcome::ended(Status::Completed))
}

/// What [`restart`] found and did.
enum Restart {
    Patched,
    /// The workload already records this target: its rollout is waited for.
    Recorded,
    /// Deleted since the plan (404): nothing is left to renew.
    Gone(String),
}

/// Why a workload of the plan is not there any more.
fn gone(workload: &WorkloadPlan) -> String {
    format!(
        "{} no longer exists (404 NotFound): deleted since the plan, nothing left to renew",
        describe(workload)
    )
}

/// Restarts once: reads the workload; if it already records this target, does nothing;
/// otherwise patches the restart and the record together, guarded by the resourceVersion it
/// read, so that a conflict or an ambiguous failure is resolved by reading again.
async fn restart(
    api: &Api<DynamicObject>,
    workload: &WorkloadPlan,
    deadline: Instant,
) -> Result<Restart, Failure> {
    let mut delays = backon::BackoffBuilder::build(backoff());
    loop {
        let Some(object) = retry(format_args!("reading {}", describe(workload)), || {
            api.get_opt(&workload.name)
        })
        .await
        .map_err(|e| Failure::api(&format!("reading {}", describe(workload)), &e))?
        else {
            return Ok(Restart::Gone(gone(workload)));
        };
        if object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TARGET_ANNOTATION))
            .map(String::as_str)
            == Some(&*workload.target)
        {
            return Ok(Restart::Recorded);
        }
        let patch = restart_patch(
            &workload.kind,
            object.metadata.resource_version.as_deref(),
            &workload.target,
            Utc::now(),
        );
        let result = api
            .patch(&workload.name, &PatchParams::default(), &patch)
            .await;
        match result {
            Ok(_) => return Ok(Restart::Patched),
            Err(error) if status_code(&error) == Some(404) => {
                return Ok(Restart::Gone(gone(workload)));
            }
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
///
/// The pod-template stamp carries milliseconds: `kubectl rollout restart` writes whole seconds,
/// and a second restart within the same second would leave the template as it was, so nothing
/// would roll and the old pods would be verified against the new target. `spec.restartAt` keeps
/// whole seconds, because Argo writes `status.restartedAt` back in seconds and the wait compares
/// the two.
pub fn restart_patch(
    kind: &str,
    resource_version: Option<&str>,
    target: &str,
    now: DateTime<Utc>,
) -> Patch<Value> {
    let seconds = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let millis = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    if kind == "Rollout" {
        let metadata = json!({
            "resourceVersion": resource_version,
            "annotations": { TARGET_ANNOTATION: target, RESTARTED_AT_ANNOTATION: seconds },
        });
        Patch::Merge(json!({ "metadata": metadata, "spec": { "restartAt": seconds } }))
    } else {
        let metadata = json!({
            "resourceVersion": resource_version,
            "annotations": { TARGET_ANNOTATION: target, RESTARTED_AT_ANNOTATION: millis },
        });
        Patch::Strategic(json!({
            "metadata": metadata,
            "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: millis } } } },
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
    let progress = match kind {
        "Deployment" => deployment_progress(status, want),
        "StatefulSet" => statefulset_progress(object, want),
        "DaemonSet" => {
            let desired = int(&status["desiredNumberScheduled"]);
            let updated = int(&status["updatedNumberScheduled"]);
            let available = int(&status["numberAvailable"]);
            Ok((
                updated >= desired && available >= desired,
                format!("{updated} of {desired} updated, {available} available"),
            ))
        }
        "Rollout" => argo_rollout_progress(object, want),
        other => Err(format!("no rollout status for kind {other}")),
    };
    match progress {
        Ok((true, _)) => Check::Done,
        Ok((false, state)) => Check::Wait(state),
        Err(reason) => Check::Fail(reason),
    }
}

/// Whether a rollout is done and where it stands, or why it cannot finish.
type RolloutProgress = Result<(bool, String), String>;

/// The `Progressing` condition that says a rollout gave up, if there is one.
fn progress_deadline_exceeded(status: &Value) -> Option<&Value> {
    status["conditions"].as_array().and_then(|c| {
        c.iter()
            .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
    })
}

fn deployment_progress(status: &Value, want: i64) -> RolloutProgress {
    if let Some(condition) = progress_deadline_exceeded(status) {
        return Err(format!(
            "ProgressDeadlineExceeded: {}",
            condition["message"]
                .as_str()
                .unwrap_or("new pods did not become available")
        ));
    }
    let updated = int(&status["updatedReplicas"]);
    let available = int(&status["availableReplicas"]);
    let total = int(&status["replicas"]);
    Ok((
        updated >= want && available >= want && total == updated,
        format!("{updated} of {want} updated, {available} available, {total} in all"),
    ))
}

/// `spec.updateStrategy.rollingUpdate.partition` of a `RollingUpdate` StatefulSet: ordinals
/// below it keep their revision (0 when there is none).
pub fn statefulset_partition(object: &Value) -> i64 {
    let strategy = &object["spec"]["updateStrategy"];
    if strategy["type"] == "OnDelete" {
        return 0;
    }
    strategy["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0)
        .max(0)
}

/// As `kubectl rollout status` decides: with a partition, done once every pod is Ready and the
/// ordinals at or above it are updated; without one, once the revision has rolled.
fn statefulset_progress(object: &Value, want: i64) -> RolloutProgress {
    let status = &object["status"];
    let updated = int(&status["updatedReplicas"]);
    let ready = int(&status["readyReplicas"]);
    let partition = statefulset_partition(object);
    if partition > 0 {
        let due = (want - partition).max(0);
        return Ok((
            ready >= want && updated >= due,
            format!(
                "{updated} of {due} updated above partition {partition}, {ready} of {want} ready"
            ),
        ));
    }
    let same_revision = status["currentRevision"] == status["updateRevision"];
    Ok((
        same_revision && updated >= want && ready >= want,
        format!("{updated} of {want} updated, {ready} ready, revision rolled: {same_revision}"),
    ))
}

/// An Argo Rollout is done once it records the restart asked for and its pods are available;
/// a Degraded one (aborted, or past its progress deadline) will not get there.
fn argo_rollout_progress(object: &Value, want: i64) -> RolloutProgress {
    let status = &object["status"];
    if status["phase"] == "Degraded" || progress_deadline_exceeded(status).is_some() {
        let message = status["message"]
            .as_str()
            .filter(|m| !m.is_empty())
            .or_else(|| progress_deadline_exceeded(status).and_then(|c| c["message"].as_str()))
            .unwrap_or("its pods did not become available");
        return Err(format!("the Rollout is Degraded: {message}"));
    }
    let asked = object["spec"]["restartAt"].as_str().unwrap_or_default();
    let restarted = status["restartedAt"].as_str().unwrap_or_default();
    let updated = int(&status["updatedReplicas"]);
    let available = int(&status["availableReplicas"]);
    Ok((
        !asked.is_empty() && restarted >= asked && updated >= want && available >= want,
        format!(
            "restarted at {restarted:?} (asked {asked:?}), {updated} of {want} updated, {available} available"
        ),
    ))
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
/// The watcher re-lists after a cut stream or a 410, so no change is missed. A watch refused
/// with 403 or 404 fails at once (no permission, or no such resource: waiting heals neither);
/// other errors are retried for the API retry budget (`--api-retry-timeout`), counted from the
/// first of an unbroken run of errors.
async fn watch_until<K>(
    api: Api<K>,
    config: watcher::Config,
    deadline: Instant,
    what: &str,
    mut check: impl FnMut(&BTreeMap<String, K>) -> Check,
) -> Result<(), WaitError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut objects: BTreeMap<String, K> = BTreeMap::new();
    let mut fresh: BTreeMap<String, K> = BTreeMap::new();
    let mut last_state = String::from("no answer from the API server yet");
    let mut last_error = None;
    let mut failing_since: Option<Instant> = None;
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
                let described = describe_watch_error(&error);
                if matches!(watch_error_code(&error), Some(403 | 404)) {
                    return Err(WaitError::Failed(format!("watching {what}: {described}")));
                }
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= retry_budget() {
                    return Err(WaitError::Failed(format!(
                        "watching {what} kept failing for {} (--api-retry-timeout): {described}",
                        humantime::format_duration(retry_budget())
                    )));
                }
                tracing::debug!(error = %described, "watch failed; the watcher retries");
                last_error = Some(described);
                continue;
            }
        };
        failing_since = None;
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

/// The HTTP status of a failed watch, when the server answered one.
fn watch_error_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => status_code(e),
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::NoResourceVersion => None,
    }
}

/// A failed watch as a person reads it: the code, the reason and the server's message.
fn describe_watch_error(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => crate::describe_kube_error(e),
        watcher::Error::WatchError(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        watcher::Error::NoResourceVersion => error.to_string(),
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
) -> Result<Outcome, Failure> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &workload.namespace);
    let owner_api = workload_api(client, workload)?;
    for name in eviction_order(&workload.kind, &workload.pods) {
        let Some(pod) = retry(format_args!("reading pod {name}"), || pods.get_opt(&name))
            .await
            .map_err(|e| Failure::api(&format!("reading pod {}/{name}", workload.namespace), &e))?
        else {
            continue; // gone already: its replacement is checked at the end
        };
        if pod_is_current(&pod, control_plane, settings.drift) {
            continue; // replaced by an earlier run
        }
        let Some(owner) = retry("reading the owner", || owner_api.get_opt(&workload.name))
            .await
            .map_err(|e| Failure::api(&format!("reading {}", describe(workload)), &e))?
        else {
            return Ok(Outcome::skipped(gone(workload)));
        };
        let selector = match_labels(&owner.data["spec"]["selector"]);
        let siblings = list_pods(&pods, selector.as_deref(), workload).await?;
        if &*workload.kind == "StatefulSet"
            && ordered_ready(&owner.data)
            && let Some(why) = blocked_by_lower_ordinals(
                &workload.name,
                ordinal_start(&owner.data),
                &name,
                &siblings,
            )
        {
            return Err(Failure {
                reason: format!("{why}; {name} was not evicted"),
                runbook: runbook::ORDERED_READY,
            });
        }
        let replaced = Replaced {
            name: &name,
            old_uid: pod.metadata.uid.as_deref().unwrap_or_default(),
            // A pod that was not Ready (crash-looping, say) is waited for to come back, not to
            // become Ready in its new form.
            was_ready: running_and_ready(&pod),
            before: siblings
                .iter()
                .filter_map(|p| p.metadata.uid.clone())
                .collect(),
            selector,
        };
        if pod.metadata.deletion_timestamp.is_none() {
            evict(&pods, workload, &name, deadline).await?;
        }
        // Even with --no-wait, each replacement comes back before the next eviction: evicting
        // every pod at once could take a StatefulSet's quorum. Only the final check is skipped.
        wait_for_replacement(&pods, workload, &replaced, deadline)
            .await
            .map_err(|e| e.into_failure(workload, settings.rollout_timeout))?;
    }
    if settings.no_wait {
        return Ok(Outcome::ended(Status::Restarted));
    }
    verify(client, workload, control_plane, settings.drift).await?;
    Ok(Outcome::ended(Status::Completed))
}

/// The live pods the workload controls, listed by its selector.
async fn list_pods(
    pods: &Api<Pod>,
    selector: Option<&str>,
    workload: &WorkloadPlan,
) -> Result<Vec<Pod>, Failure> {
    let params = match selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    let what = format!("listing the pods of {}", describe(workload));
    let list = retry(&what, || pods.list(&params))
        .await
        .map_err(|e| Failure::api(&what, &e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| controlled_by(p, workload))
        .collect())
}

/// Whether a StatefulSet creates its pods in order (`podManagementPolicy` `OrderedReady`, the
/// default): then pod N is recreated only once pods 0…N-1 are Running and Ready.
pub fn ordered_ready(statefulset: &Value) -> bool {
    statefulset["spec"]["podManagementPolicy"] != "Parallel"
}

/// Why evicting `pod` of an `OrderedReady` StatefulSet could lose it for good: a lower ordinal
/// that is missing or not Running and Ready keeps the controller from recreating it.
pub fn blocked_by_lower_ordinals(
    statefulset: &str,
    start: u64,
    pod: &str,
    pods: &[Pod],
) -> Option<String> {
    let evicted = ordinal(statefulset, pod)?;
    let healthy: std::collections::BTreeSet<u64> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && running_and_ready(p))
        .filter_map(|p| ordinal(statefulset, p.metadata.name.as_deref()?))
        .collect();
    let not_ready = ordinals_not_ready(statefulset, start, evicted, &healthy)?;
    Some(format!(
        "{not_ready} not Running and Ready: the StatefulSet (podManagementPolicy OrderedReady) \
         would not recreate {pod} until every lower ordinal is"
    ))
}

/// `spec.ordinals.start` of a StatefulSet: the first pod's ordinal (0 when absent).
pub fn ordinal_start(statefulset: &Value) -> u64 {
    statefulset["spec"]["ordinals"]["start"]
        .as_u64()
        .unwrap_or(0)
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

/// What the API server answers (500) when a pod is covered by more than one budget: no retry
/// lets such an eviction through.
const SEVERAL_BUDGETS: &str = "more than one PodDisruptionBudget";

/// Evicts one pod; a PodDisruptionBudget's 429 is waited out until the deadline.
async fn evict(
    pods: &Api<Pod>,
    workload: &WorkloadPlan,
    name: &str,
    deadline: Instant,
) -> Result<(), Failure> {
    let mut delays = backon::BackoffBuilder::build(backoff());
    let pod = format!("{}/{name}", workload.namespace);
    loop {
        match pods.evict(name, &EvictParams::default()).await {
            Ok(_) => return Ok(()),
            Err(error) if status_code(&error) == Some(404) => return Ok(()),
            Err(kube::Error::Api(status)) if status.message.contains(SEVERAL_BUDGETS) => {
                return Err(Failure {
                    reason: format!(
                        "evicting pod {pod}: {} {}: {} (the API server refuses every eviction \
                         of a pod that two budgets select; make them select disjoint pods)",
                        status.code, status.reason, status.message
                    ),
                    runbook: runbook::EVICTION_BLOCKED,
                });
            }
            Err(error) if status_code(&error) == Some(429) || is_transient(&error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                if Instant::now() + delay > deadline {
                    return Err(eviction_gave_up(&pod, &error));
                }
                tracing::debug!(pod = name, %error, "eviction refused for now; trying again");
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(Failure::api(&format!("evicting pod {pod}"), &error)),
        }
    }
}

fn eviction_gave_up(pod: &str, error: &kube::Error) -> Failure {
    let blocked = status_code(error) == Some(429);
    Failure {
        reason: format!(
            "evicting pod {pod}{}: {}",
            if blocked {
                " was refused until the timeout (a PodDisruptionBudget allows no disruption)"
            } else {
                " kept failing until the timeout"
            },
            crate::describe_kube_error(error)
        ),
        runbook: if blocked {
            runbook::EVICTION_BLOCKED
        } else {
            runbook::ROLLOUT_FAILED
        },
    }
}

/// An evicted pod, and what its workload had before the eviction.
struct Replaced<'a> {
    name: &'a str,
    old_uid: &'a str,
    was_ready: bool,
    /// The uids of the workload's pods before the eviction: a replacement is none of them.
    before: BTreeSet<String>,
    selector: Option<String>,
}

/// Whether the workload is the pod's controller.
fn controlled_by(pod: &Pod, workload: &WorkloadPlan) -> bool {
    pod.metadata.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true) && *o.kind == *workload.kind && *o.name == *workload.name
    })
}

/// Waits until the evicted pod is gone and its replacement is there: a StatefulSet's pod of the
/// same name, others a new pod of the workload; Running and Ready when the evicted one was.
/// The replacement's own state decides, not the owner's status, which a controller may not
/// have brought up to date yet.
async fn wait_for_replacement(
    pods: &Api<Pod>,
    workload: &WorkloadPlan,
    replaced: &Replaced<'_>,
    deadline: Instant,
) -> Result<(), WaitError> {
    let Replaced {
        name,
        old_uid,
        was_ready,
        ..
    } = *replaced;
    let config = if &*workload.kind == "StatefulSet" {
        watcher::Config::default().fields(&format!("metadata.name={name}"))
    } else {
        match &replaced.selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        }
    };
    let what = format!("the pods of {}", describe(workload));
    watch_until(pods.clone(), config, deadline, &what, |found| {
        if found
            .values()
            .any(|p| p.metadata.uid.as_deref() == Some(old_uid))
        {
            return Check::Wait(format!("pod {name} still terminating"));
        }
        let replacement = found.values().find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && controlled_by(p, workload)
                && if &*workload.kind == "StatefulSet" {
                    p.metadata.name.as_deref() == Some(name)
                } else {
                    p.metadata
                        .uid
                        .as_ref()
                        .is_some_and(|uid| !replaced.before.contains(uid))
                }
        });
        match replacement {
            None => Check::Wait(format!("pod {name} not replaced yet")),
            Some(pod) if running_and_ready(pod) || !was_ready => Check::Done,
            Some(pod) => Check::Wait(format!(
                "pod {name} replaced by {}, not Running and Ready yet",
                pod.metadata.name.as_deref().unwrap_or_default()
            )),
        }
    })
    .await
}

fn running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod already matches its target (the proxy it would get now, or none).
fn pod_is_current(pod: &Pod, control_plane: &ControlPlane, selected: Reasons) -> bool {
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
        .pod_records
        .first()
        .is_some_and(|p| stale_reason(p, control_plane, selected).is_none())
}

/// Why a pod does not match its target (DESIGN §2.7): a selected drift reason is left, or
/// there is nothing to compare it with. `None` when it matches.
fn stale_reason(
    pod: &crate::inventory::PodRecord,
    control_plane: &ControlPlane,
    selected: Reasons,
) -> Option<String> {
    let judgement = drift::judge(pod, control_plane);
    let context = PodContext {
        excluded_by: None,
        expected: control_plane.expected_for(judgement.target_revision()),
        judgement: &judgement,
        selected,
    };
    let classified = classify(pod, &context);
    classified.verdict.is_drift().then_some(classified.reason)
}

/// After a rollout: every live pod of the workload carries the expected proxy, or the workload
/// failed (a controller may be reverting the template, or the injector may not have run).
async fn verify(
    client: &Client,
    workload: &WorkloadPlan,
    control_plane: &ControlPlane,
    selected: Reasons,
) -> Result<(), Failure> {
    // Only the pods the workload selects are listed: in a namespace of thousands of pods, a
    // workload's check stays one small list. Ownership is checked on each pod all the same.
    let object = workload_api(client, workload)?
        .get_opt(&workload.name)
        .await
        .ok()
        .flatten();
    let selector = object
        .as_ref()
        .and_then(|o| match_labels(&o.data["spec"]["selector"]));
    // A partition keeps the ordinals below it at their revision: they are not this restart's.
    let (partition, start) = match &object {
        Some(o) if &*workload.kind == "StatefulSet" => {
            (statefulset_partition(&o.data), ordinal_start(&o.data))
        }
        _ => (0, 0),
    };
    let held = |object: &crate::inventory::model::Object| {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        // By position from the first ordinal, as the StatefulSet controller counts.
        ordinal(&workload.name, name).is_some_and(|o| (o.saturating_sub(start) as i64) < partition)
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
            for object in items
                .into_iter()
                .filter(|o| owned_by(o, workload) && !held(o))
            {
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
    // A set, so that a workload of thousands of pods is checked in linear time.
    let with_proxy: std::collections::HashSet<&str> = inventory
        .pod_records
        .iter()
        .filter(|p| p.has_proxy())
        .map(|p| &*p.name)
        .collect();
    let without_proxy: Vec<String> = live
        .into_inner()
        .into_iter()
        .filter(|name| !with_proxy.contains(name.as_str()))
        .collect();
    // With the webhook configurations known, a pod without a proxy is judged like any other
    // (no proxy may be its target); without them, every pod must come back with one.
    if control_plane.injection.is_none() && !without_proxy.is_empty() {
        return Err(Failure::new(format!(
            "the rollout finished but {} pod{} came back without an Istio proxy: {}; injection did \
             not run (is the namespace still labelled for injection, is the injector's webhook up?)",
            without_proxy.len(),
            if without_proxy.len() == 1 { "" } else { "s" },
            without_proxy.join(", ")
        )));
    }
    let stale: Vec<String> = inventory
        .pod_records
        .iter()
        // Terminating, completed and failed (evicted, shut down) pods are leftovers the
        // controller never replaces; only live pods must carry the new proxy.
        .filter(|p| !p.terminating && !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed))
        .filter_map(|p| {
            stale_reason(p, control_plane, selected).map(|why| format!("{} ({why})", p.name))
        })
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "the rollout finished but {} pod{} still differ{} from {} target: {}; a controller may \
             be reverting the template, or injection did not run",
            stale.len(),
            if stale.len() == 1 { "" } else { "s" },
            if stale.len() == 1 { "s" } else { "" },
            if stale.len() == 1 { "its" } else { "their" },
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
    match &*workload.kind {
        "Deployment" | "Rollout" => {
            controller.kind == "ReplicaSet"
                && controller
                    .name
                    .strip_prefix(&*workload.name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    // `<name>-<hash>`: `orders` does not claim `orders-api-6d4f9c7b8`'s pods.
                    .is_some_and(|hash| !hash.is_empty() && !hash.contains('-'))
        }
        kind => controller.kind == kind && *controller.name == *workload.name,
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
    fn a_partitioned_statefulset_is_done_once_the_ordinals_above_it_are_updated() {
        let sts = |updated: i64, ready: i64| {
            json!({"metadata": {"generation": 3},
                   "spec": {"replicas": 4, "updateStrategy": {"type": "RollingUpdate",
                            "rollingUpdate": {"partition": 2}}},
                   "status": {"observedGeneration": 3, "updatedReplicas": updated,
                              "readyReplicas": ready, "currentRevision": "db-1",
                              "updateRevision": "db-2"}})
        };
        assert_eq!(rollout_state("StatefulSet", &sts(2, 4)), Check::Done);
        assert!(matches!(
            rollout_state("StatefulSet", &sts(1, 4)),
            Check::Wait(_)
        ));
        assert!(matches!(
            rollout_state("StatefulSet", &sts(2, 3)),
            Check::Wait(_)
        ));
        assert_eq!(statefulset_partition(&sts(0, 0)), 2);
        let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete",
            "rollingUpdate": {"partition": 2}}}});
        assert_eq!(statefulset_partition(&on_delete), 0);
    }

    #[test]
    fn a_degraded_rollout_fails_at_once() {
        let rollout = json!({"metadata": {"generation": 4},
            "spec": {"replicas": 2, "restartAt": "2026-11-26T10:00:00Z"},
            "status": {"observedGeneration": "4", "phase": "Degraded",
                       "message": "ProgressDeadlineExceeded: ReplicaSet \"c-1\" has timed out progressing.",
                       "updatedReplicas": 2, "availableReplicas": 1}});
        assert!(
            matches!(rollout_state("Rollout", &rollout), Check::Fail(ref m) if m.contains("Degraded: ProgressDeadlineExceeded")),
            "{:?}",
            rollout_state("Rollout", &rollout)
        );
        let mut past_deadline = rollout.clone();
        past_deadline["status"]["phase"] = json!("Progressing");
        past_deadline["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "timed out"}]);
        assert!(matches!(
            rollout_state("Rollout", &past_deadline),
            Check::Fail(_)
        ));
    }

    #[test]
    fn an_ordered_statefulset_pod_waits_for_every_lower_ordinal() {
        let pod = |name: &str, phase: &str, ready: &str, leaving: bool| -> Pod {
            let mut pod = json!({"metadata": {"name": name},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}});
            if leaving {
                pod["metadata"]["deletionTimestamp"] = json!("2026-11-26T10:00:00Z");
            }
            serde_json::from_value(pod).unwrap()
        };
        let healthy = [
            pod("db-0", "Running", "True", false),
            pod("db-1", "Running", "True", false),
            pod("db-2", "Running", "True", false),
        ];
        assert_eq!(blocked_by_lower_ordinals("db", 0, "db-2", &healthy), None);
        let broken = [
            pod("db-0", "Running", "False", false),
            pod("db-2", "Running", "True", false),
        ];
        let why = blocked_by_lower_ordinals("db", 0, "db-2", &broken).unwrap();
        assert!(
            why.starts_with("2 lower ordinals (db-0, db-1) not Running and Ready"),
            "{why}"
        );
        // Numbered from spec.ordinals.start: db-0 and db-1 are not the StatefulSet's.
        let from_two = [pod("db-2", "Running", "True", false)];
        assert_eq!(blocked_by_lower_ordinals("db", 2, "db-3", &from_two), None);
        // A hostile ordinal is counted, not enumerated.
        let far = blocked_by_lower_ordinals("db", 0, "db-4294967295", &healthy).unwrap();
        assert!(
            far.starts_with("4294967292 lower ordinals (db-3, db-4, db-5, db-6, db-7, …)"),
            "{far}"
        );
        let leaving = [
            pod("db-0", "Running", "True", true),
            pod("db-1", "Pending", "True", false),
        ];
        assert!(blocked_by_lower_ordinals("db", 0, "db-1", &leaving).is_some());
        assert_eq!(blocked_by_lower_ordinals("db", 0, "db-0", &broken), None);
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
            drift: Reasons::default(),
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
        let now = |ms: i64| DateTime::from_timestamp_millis(1_795_000_000_000 + ms).unwrap();
        let stamp = |patch: &Patch<Value>| match patch {
            Patch::Strategic(p) => p["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
                .as_str()
                .unwrap()
                .to_string(),
            _ => panic!("a strategic merge patch for apps workloads"),
        };
        let first = restart_patch("Deployment", Some("41"), "1.24.1", now(100));
        let Patch::Strategic(patch) = &first else {
            unreachable!()
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "41");
        assert_eq!(
            patch["metadata"]["annotations"][TARGET_ANNOTATION],
            "1.24.1"
        );
        assert_eq!(stamp(&first), "2026-11-18T11:06:40.100Z");
        // Two restarts within one second still change the template.
        let second = restart_patch("Deployment", Some("42"), "1.24.1 default/1a2b", now(900));
        assert_ne!(stamp(&first), stamp(&second));
        let Patch::Merge(patch) = restart_patch("Rollout", None, "1.24.1", now(100)) else {
            panic!("a merge patch for Rollouts");
        };
        assert_eq!(patch["spec"]["restartAt"], "2026-11-18T11:06:40Z");
    }
}
