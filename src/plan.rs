//! From verdicts to workloads, actions and their order (DESIGN §2.5, §2.6). Pure: the same
//! inventory and control plane always give the same plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use istio_injection::proxy::PodProxy;
use serde::{Deserialize, Serialize};

use crate::classify::{PodContext, Verdict, classify};
use crate::controlplane::{ControlPlane, DEFAULT_REVISION};
use crate::drift::{self, Aim, Judgement, Reason, Reasons};
use crate::image::Expected;
use crate::inventory::{
    Interner, Inventory, PodPhase, PodRecord, ProxyOrigin, ResolvedWorkload, SKIP_KEY,
    WorkloadRecord,
};

/// The runbooks the report links to, one per situation a person has to handle.
pub mod runbook {
    pub const PODS_NOT_RUNNING: &str = "runbooks/pods-not-running.md";
    pub const BARE_PODS: &str = "runbooks/workloads-not-restartable.md#bare-pods";
    pub const JOBS: &str = "runbooks/workloads-not-restartable.md#jobs-and-cronjobs";
    pub const PAUSED: &str = "runbooks/workloads-not-restartable.md#paused-deployments";
    pub const UNKNOWN_OWNER: &str =
        "runbooks/workloads-not-restartable.md#unknown-or-missing-owners";
    pub const NO_CONTROL_PLANE: &str = "runbooks/recovery.md#a-revision-without-a-control-plane";
    pub const ROLLOUT_FAILED: &str = "runbooks/recovery.md#a-rollout-failed-or-timed-out";
    pub const EVICTION_BLOCKED: &str =
        "runbooks/recovery.md#an-eviction-blocked-by-a-poddisruptionbudget";
    pub const GATE_FAILED: &str = "runbooks/recovery.md#the-control-plane-gate-failed";
    pub const PARTITION: &str =
        "runbooks/workloads-not-restartable.md#statefulsets-held-by-a-partition";
    pub const ORDERED_READY: &str =
        "runbooks/workloads-not-restartable.md#ondelete-statefulsets-with-a-pod-not-ready";
    pub const ARGO_ROLLOUT: &str =
        "runbooks/workloads-not-restartable.md#paused-or-unavailable-argo-rollouts";
    pub const CANARY: &str = "runbooks/drift.md#a-canary-upgrade-half-done";
    pub const MISSING_PROXY: &str =
        "runbooks/drift.md#a-pod-missing-its-proxy-that-cannot-be-restarted";
    pub const UNWANTED_PROXY: &str = "runbooks/drift.md#a-proxy-no-webhook-would-inject";
    pub const TWO_REVISIONS: &str = "runbooks/drift.md#two-revisions-select-one-pod";
    pub const OWN_PROXY: &str = "runbooks/drift.md#a-proxy-in-its-workloads-own-template";

    /// Every runbook link the tool can emit (a test checks each file and heading exists).
    pub const ALL: &[&str] = &[
        PODS_NOT_RUNNING,
        BARE_PODS,
        JOBS,
        PAUSED,
        UNKNOWN_OWNER,
        NO_CONTROL_PLANE,
        ROLLOUT_FAILED,
        EVICTION_BLOCKED,
        GATE_FAILED,
        PARTITION,
        ORDERED_READY,
        ARGO_ROLLOUT,
        CANARY,
        MISSING_PROXY,
        UNWANTED_PROXY,
        TWO_REVISIONS,
        OWN_PROXY,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    RolloutRestart,
    Evict,
    Manual,
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RolloutRestart => "rollout-restart",
            Action::Evict => "evict",
            Action::Manual => "manual",
            Action::None => "none",
        }
    }
    pub fn is_automatic(self) -> bool {
        matches!(self, Action::RolloutRestart | Action::Evict)
    }
}

/// `kyma` workloads complete before `customer` ones start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Kyma,
    Customer,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Kyma => "kyma",
            Phase::Customer => "customer",
        }
    }
}

/// Recorded on a workload by the restart itself: the version it was restarted for. A re-run
/// that finds it waits for that rollout instead of restarting again.
pub const TARGET_ANNOTATION: &str = "istio-proxy-reset.kyma-project.io/target-version";
/// When the restart was made.
pub const RESTARTED_AT_ANNOTATION: &str = "istio-proxy-reset.kyma-project.io/restarted-at";

/// Namespaces whose workloads belong to the `kyma` phase.
pub const KYMA_NAMESPACES: [&str; 2] = ["kyma-system", "istio-system"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPlan {
    // Shared with the inventory and the report: one workload per pod is 50,000 of them.
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub phase: Phase,
    pub action: Action,
    /// 1, 2, 3, … over automatic actions across both phases.
    pub order: Option<u32>,
    /// The drifted pods the action covers (or that need a person), sorted.
    pub pods: Vec<Arc<str>>,
    pub from_versions: Vec<Arc<str>>,
    /// The version (or image, when no version) the restarted pods must carry; with drift beyond
    /// the version also the target revision and a fingerprint of its proxy, and `no proxy`
    /// for pods that must come back without one. Recorded with a restart, so a re-run can tell
    /// its own restart under way from a new one.
    pub target: Arc<str>,
    /// The union of its pods' drift reasons.
    pub drift: Reasons,
    /// `spec.updateStrategy.type` for StatefulSets and DaemonSets.
    pub update_strategy: Option<Arc<str>>,
    pub reason: Option<String>,
    pub runbook: Option<&'static str>,
}

/// A pod of the plan. The strings are the inventory's, shared; `reason` and `proxy_version`
/// are interned, as thousands of pods give the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub verdict: Verdict,
    pub action: Action,
    pub proxy_image: Option<Arc<str>>,
    pub proxy_version: Option<Arc<str>>,
    pub workload_kind: Arc<str>,
    pub workload_name: Arc<str>,
    pub reason: Arc<str>,
    pub drift: Reasons,
    /// The revision that would inject the pod now; `None` when none would.
    pub target_revision: Option<Arc<str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub pods_total: usize,
    pub proxies: usize,
    pub up_to_date: usize,
    pub drifted: usize,
    /// Listed pods per drift reason.
    pub drift_counts: BTreeMap<Reason, usize>,
    /// The revisions some pod is held to: the ones the gate must cover.
    pub target_revisions: BTreeSet<String>,
    /// Every proxy-carrying pod whose verdict is not `up-to-date`, and every pod without a
    /// proxy that has drifted, sorted by namespace/name.
    pub pods: Vec<PodPlan>,
    /// Every workload with a drifted pod: automatic actions in order, then manual ones.
    pub workloads: Vec<WorkloadPlan>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--exclude-namespace`: proxies there are reported `excluded`, never restarted.
    pub exclude_namespaces: Vec<String>,
    /// `--drift`: the reasons that act; `None` is all of them.
    pub drift: Option<Reasons>,
}

type WorkloadKey = (Arc<str>, Arc<str>, Arc<str>); // namespace, kind, name

struct Group {
    api_version: Arc<str>,
    pods: Vec<usize>,
    target: Arc<str>,
    drift: Reasons,
    manual_reason: Option<(String, &'static str)>,
    module_label: bool,
}

/// Why a workload is left to a person, and the runbook that says what to do.
type Manual = (String, &'static str);

/// What the workload pass needs beyond the groups: facts about a workload's other objects.
#[derive(Default)]
struct Facts {
    /// Each StatefulSet's proxy pods by ordinal, drifted or not: Running and Ready, and not
    /// terminating. An `OrderedReady` StatefulSet recreates a pod only once all lower ones are.
    statefulset_pods: HashMap<(Arc<str>, Arc<str>), BTreeMap<u64, bool>>,
    /// Each Argo Rollout's ReplicaSets that are not fully available: Argo ignores `restartAt`
    /// until they are.
    unavailable_rollout_sets: HashMap<(Arc<str>, Arc<str>), Vec<String>>,
}

pub fn plan(inventory: &Inventory, control_plane: &ControlPlane, options: &PlanOptions) -> Plan {
    let mut result = Plan {
        pods_total: inventory.pods_total,
        proxies: inventory
            .pod_records
            .iter()
            .filter(|p| p.has_proxy())
            .count(),
        ..Plan::default()
    };
    let mut facts = Facts {
        unavailable_rollout_sets: unavailable_rollout_sets(inventory),
        ..Facts::default()
    };
    let groups = group_pods(inventory, control_plane, options, &mut result, &mut facts);
    let mut workloads: Vec<WorkloadPlan> = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        plan_workload(
            inventory,
            &facts,
            key,
            group,
            &mut result.pods,
            &mut workloads,
        );
    }
    number(&mut workloads);
    result.workloads = workloads;
    result
}

/// Classifies every proxy pod (by namespace and name), counts them, lists those the report
/// names, and groups the drifted ones by workload.
fn group_pods(
    inventory: &Inventory,
    control_plane: &ControlPlane,
    options: &PlanOptions,
    result: &mut Plan,
    facts: &mut Facts,
) -> BTreeMap<WorkloadKey, Group> {
    let mut groups: BTreeMap<WorkloadKey, Group> = BTreeMap::new();
    let mut strings = Interner::default();
    let mut order: Vec<usize> = (0..inventory.pod_records.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&inventory.pod_records[a], &inventory.pod_records[b]);
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });

    for index in order {
        let pod = &inventory.pod_records[index];
        let workload = inventory.resolve_workload(pod);
        if &*workload.kind == "StatefulSet"
            && let Some(ordinal) = ordinal(&workload.name, &pod.name)
        {
            let healthy = pod.phase == PodPhase::Running && pod.ready && !pod.terminating;
            facts
                .statefulset_pods
                .entry((pod.namespace.clone(), workload.name.clone()))
                .or_default()
                .insert(ordinal, healthy);
        }
        let judgement = drift::judge(pod, control_plane);
        if !pod.has_proxy() && !judgement.reasons.contains(Reason::MissingProxy) {
            continue;
        }
        let target_revision = judgement.target_revision();
        if let Some(revision) = target_revision {
            result.target_revisions.insert(revision.to_string());
        }
        let expected = control_plane.expected_for(target_revision);
        let classified = classify(
            pod,
            &PodContext {
                excluded_by: excluded_by(inventory, options, pod, &workload),
                expected: expected.clone(),
                judgement: &judgement,
                selected: options.drift.unwrap_or_else(Reasons::all),
            },
        );

        match classified.verdict {
            Verdict::UpToDate => {
                result.up_to_date += 1;
                continue;
            }
            v if v.is_drift() => result.drifted += 1,
            _ => {}
        }
        for reason in classified.drift.iter() {
            *result.drift_counts.entry(reason).or_default() += 1;
        }
        let pod_index = result.pods.len();
        result.pods.push(PodPlan {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            verdict: classified.verdict,
            action: Action::None,
            proxy_image: pod.proxy_image.clone(),
            proxy_version: classified.proxy_version.map(|v| strings.intern(&v)),
            workload_kind: workload.kind.clone(),
            workload_name: workload.name.clone(),
            reason: strings.intern(&classified.reason),
            drift: classified.drift,
            target_revision: target_revision.map(|r| strings.intern(r)),
        });
        if !classified.verdict.is_drift() {
            continue;
        }

        let target = restart_target(pod, control_plane, &judgement, &expected);
        add_to_group(
            &mut groups,
            (pod, &workload),
            (strings.intern(&target), classified.drift),
            (
                &judgement,
                &expected,
                unreadable_config(control_plane, target_revision),
            ),
            pod_index,
        );
    }
    groups
}

/// What a restart must give the pod, as recorded with the restart: the version (or image)
/// alone when the target is the default revision and its values state nothing else, as
/// before drift beyond the version was judged; else also the target revision and a
/// fingerprint of its proxy; `no proxy` when none would be injected. It depends on the target
/// alone, never on the pod's reasons: a re-run after some pods were replaced must compute the
/// same target, or it would restart the workload again.
fn restart_target(
    pod: &PodRecord,
    control_plane: &ControlPlane,
    judgement: &Judgement,
    expected: &Result<&Expected, String>,
) -> String {
    let Some(revision) = judgement.target_revision() else {
        return NO_PROXY_TARGET.to_string();
    };
    let version = match expected {
        Ok(e) => e
            .version
            .as_ref()
            .map(|v| v.to_string())
            .or_else(|| e.image.as_ref().map(|i| i.to_string()))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let wanted = drift::wanted_proxy(pod, control_plane, revision);
    if revision == DEFAULT_REVISION && wanted == PodProxy::default() {
        return version;
    }
    format!("{version} {}", drift::fingerprint(revision, &wanted))
}

/// Why the target revision's injector `config` cannot be read, when it cannot.
fn unreadable_config<'c>(
    control_plane: &'c ControlPlane,
    revision: Option<&str>,
) -> Option<&'c str> {
    control_plane
        .revisions
        .get(revision?)?
        .config_error
        .as_deref()
}

/// The target of a restart that must remove the proxy.
pub const NO_PROXY_TARGET: &str = "no proxy";

/// Adds a drifted pod to its workload's group; an odd owner chain, two revisions selecting the
/// pod or a revision without a control plane leaves the whole group to a person.
fn add_to_group(
    groups: &mut BTreeMap<WorkloadKey, Group>,
    (pod, workload): (&PodRecord, &ResolvedWorkload),
    (target, drift): (Arc<str>, Reasons),
    (judgement, expected, unreadable_config): (
        &Judgement,
        &Result<&Expected, String>,
        Option<&str>,
    ),
    pod_index: usize,
) {
    let key = (
        pod.namespace.clone(),
        workload.kind.clone(),
        workload.name.clone(),
    );
    let group = groups.entry(key).or_insert_with(|| Group {
        api_version: workload.api_version.clone(),
        pods: Vec::new(),
        target,
        drift: Reasons::default(),
        manual_reason: None,
        module_label: workload.module_label,
    });
    group.pods.push(pod_index);
    group.drift = group.drift.union(drift);
    if group.manual_reason.is_some() {
        return;
    }
    if let Some(problem) = &workload.problem {
        group.manual_reason = Some((
            format!("{problem}; restart or delete the pods by hand once the owner is understood"),
            runbook::UNKNOWN_OWNER,
        ));
    } else if let Aim::Conflict(why) = &judgement.aim {
        group.manual_reason = Some((
            format!(
                "{why}: a new pod would get a proxy from either; make one revision select it \
                 (namespace labels, revision tags), then restart it"
            ),
            runbook::TWO_REVISIONS,
        ));
    } else if let Aim::Unserved(revision) = &judgement.aim {
        group.manual_reason = Some((
            format!(
                "{}: install that revision's webhooks or relabel the namespace, then restart it",
                crate::classify::unserved(revision)
            ),
            runbook::NO_CONTROL_PLANE,
        ));
    } else if let Some(why) = unreadable_config {
        group.manual_reason = Some((
            format!(
                "{why}: which pods it injects is not known; fix the ConfigMap, then plan again"
            ),
            runbook::GATE_FAILED,
        ));
    } else if let (Aim::Revision(_), Err(why)) = (&judgement.aim, expected) {
        group.manual_reason = Some((
            format!("{why}: there is nothing a restart could inject"),
            runbook::NO_CONTROL_PLANE,
        ));
    } else if pod
        .proxy
        .as_deref()
        .is_some_and(|p| p.origin == ProxyOrigin::Own)
    {
        group.manual_reason = Some((
            "the proxy is part of the workload's own template (no webhook injected it): a \
             restart brings back the same image; the template must change"
                .to_string(),
            runbook::OWN_PROXY,
        ));
    }
}

/// Why a pod is kept out of every action: an excluded namespace, or the skip key on its
/// namespace or on an owner.
fn excluded_by(
    inventory: &Inventory,
    options: &PlanOptions,
    pod: &PodRecord,
    workload: &ResolvedWorkload,
) -> Option<String> {
    let namespace_record = inventory.namespaces.get(pod.namespace.as_ref());
    if options
        .exclude_namespaces
        .iter()
        .any(|n| n.as_str() == pod.namespace.as_ref())
    {
        Some(format!(
            "namespace {} is excluded by --exclude-namespace",
            pod.namespace
        ))
    } else if namespace_record.is_some_and(|n| n.skip) {
        Some(format!("namespace {} carries {SKIP_KEY}", pod.namespace))
    } else if workload.skip {
        Some(format!(
            "{} {}/{} (or an owner on the way) carries {SKIP_KEY}",
            workload.kind, pod.namespace, workload.name
        ))
    } else {
        None
    }
}

/// The ReplicaSets of each Argo Rollout with fewer available pods than they want.
fn unavailable_rollout_sets(inventory: &Inventory) -> HashMap<(Arc<str>, Arc<str>), Vec<String>> {
    let mut sets: HashMap<(Arc<str>, Arc<str>), Vec<String>> = HashMap::new();
    for record in inventory.workloads.values() {
        let Some(owner) = record.controller.as_ref() else {
            continue;
        };
        // Without the number of pods wanted there is nothing to judge by. The API server
        // leaves a count of 0 out of the status: no count is none available.
        let Some(want) = record.replicas else {
            continue;
        };
        let available = record
            .available_replicas
            .or(record.ready_replicas)
            .unwrap_or(0);
        if &*record.kind == "ReplicaSet" && &*owner.kind == "Rollout" && available < want {
            sets.entry((record.namespace.clone(), owner.name.clone()))
                .or_default()
                .push(format!("{} ({available} of {want} available)", record.name));
        }
    }
    for names in sets.values_mut() {
        names.sort();
    }
    sets
}

/// Decides one workload's action and adds its entry (two, when a StatefulSet's partition holds
/// some of its pods: those are a manual entry of their own).
fn plan_workload(
    inventory: &Inventory,
    facts: &Facts,
    (namespace, kind, name): WorkloadKey,
    mut group: Group,
    pods: &mut [PodPlan],
    workloads: &mut Vec<WorkloadPlan>,
) {
    let record = inventory.workload(&kind, &namespace, &name);
    let entry = |group: &Group, pods: &mut [PodPlan], decided: Result<Action, Manual>| {
        let phase = phase_of(&namespace, group.module_label);
        workload_plan(
            (&namespace, &kind, &name),
            phase,
            record,
            group,
            pods,
            decided,
        )
    };
    // What keeps the whole StatefulSet from a restart (no control plane for its revision, an
    // odd owner) is every pod's reason, held or not: lowering the partition would not help.
    let partition = record
        .and_then(rolling_partition)
        .filter(|_| group.manual_reason.is_none());
    if let Some(partition) = partition {
        let (held, rolling): (Vec<usize>, Vec<usize>) = group
            .pods
            .iter()
            .partition(|&&i| held_by_partition(&name, &pods[i].name, record, partition));
        if !held.is_empty() {
            let held = Group {
                api_version: group.api_version.clone(),
                pods: held,
                target: group.target.clone(),
                drift: group.drift,
                manual_reason: None,
                module_label: group.module_label,
            };
            let reason = format!(
                "StatefulSet {namespace}/{name} has partition {partition}: a restart renews only \
                 the ordinals from {partition} up, and the partition holds these pods at their \
                 revision until it is lowered"
            );
            workloads.push(entry(&held, pods, Err((reason, runbook::PARTITION))));
        }
        if rolling.is_empty() {
            return;
        }
        group.pods = rolling;
    }
    let decided = decide(facts, (&namespace, &kind, &name), &group, record, pods);
    workloads.push(entry(&group, pods, decided));
}

/// The ordinal of a StatefulSet's pod `<statefulset>-<ordinal>`.
pub fn ordinal(statefulset: &str, pod: &str) -> Option<u64> {
    pod.strip_prefix(statefulset)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// Whether `pod` is below the partition. The partition counts pods by position, from the first
/// ordinal (`spec.ordinals.start`), as the StatefulSet controller does.
fn held_by_partition(
    statefulset: &str,
    pod: &str,
    record: Option<&WorkloadRecord>,
    partition: i64,
) -> bool {
    let start = record.map_or(0, |r| r.ordinal_start);
    ordinal(statefulset, pod).is_some_and(|o| (o.saturating_sub(start) as i64) < partition)
}

/// A `RollingUpdate` StatefulSet's partition, when it holds any ordinal.
fn rolling_partition(record: &WorkloadRecord) -> Option<i64> {
    let rolling = &*record.kind == "StatefulSet"
        && record.update_strategy.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
    record.partition.filter(|&p| rolling && p > 0)
}

/// Kyma's own namespaces, and workloads of a Kyma module (the label on the workload or, for a
/// bare pod, on the pod), go first.
fn phase_of(namespace: &str, module_label: bool) -> Phase {
    if KYMA_NAMESPACES.contains(&namespace) || module_label {
        Phase::Kyma
    } else {
        Phase::Customer
    }
}

/// The action for a workload's drifted pods: automatic only with an `outdated` pod (or a
/// restart of ours under way) and when nothing keeps the restart from happening.
fn decide(
    facts: &Facts,
    (namespace, kind, name): (&Arc<str>, &Arc<str>, &Arc<str>),
    group: &Group,
    record: Option<&WorkloadRecord>,
    pods: &[PodPlan],
) -> Result<Action, Manual> {
    if let Some(manual) = &group.manual_reason {
        return Err(manual.clone());
    }
    let verdicts: Vec<Verdict> = group.pods.iter().map(|&i| pods[i].verdict).collect();
    // A rollout this tool started for the same target is still under way: its old pods
    // may all be leaving or not Ready by now, and it is waited for, not left to a person.
    let restart_recorded = record.is_some_and(|r| {
        r.annotations
            .iter()
            .any(|(k, v)| k == TARGET_ANNOTATION && **v == *group.target)
    });
    if !verdicts.contains(&Verdict::Outdated) && !restart_recorded {
        return Err((not_running_reason(&verdicts), runbook::PODS_NOT_RUNNING));
    }
    let action = automatic_action(kind, &group.api_version, record, namespace, name)?;
    match (&**kind, action) {
        ("StatefulSet", Action::Evict) if !record.is_some_and(|r| r.parallel_pods) => {
            let highest = group
                .pods
                .iter()
                .filter_map(|&i| ordinal(name, &pods[i].name))
                .max();
            let healthy: BTreeSet<u64> = facts
                .statefulset_pods
                .get(&(namespace.clone(), name.clone()))
                .into_iter()
                .flat_map(|pods| pods.iter().filter(|(_, ready)| **ready).map(|(o, _)| *o))
                .collect();
            let start = record.map_or(0, |r| r.ordinal_start);
            let blocking = |h| lower_ordinals_blocking(name, start, h, &healthy);
            match highest.and_then(blocking) {
                Some(reason) => Err((reason, runbook::ORDERED_READY)),
                None => Ok(action),
            }
        }
        ("Rollout", _) => match argo_blocker(facts, namespace, name, record, restart_recorded) {
            Some(reason) => Err((reason, runbook::ARGO_ROLLOUT)),
            None => Ok(action),
        },
        _ => Ok(action),
    }
}

/// An `OrderedReady` StatefulSet recreates an evicted pod only once every lower ordinal is
/// Running and Ready: which of them are not (or are not listed), as the reason, if any.
fn lower_ordinals_blocking(
    name: &str,
    start: u64,
    highest: u64,
    healthy: &BTreeSet<u64>,
) -> Option<String> {
    let not_ready = ordinals_not_ready(name, start, highest, healthy)?;
    Some(format!(
        "{not_ready} not Running and Ready (or not listed): with podManagementPolicy \
         OrderedReady the StatefulSet would not recreate an evicted {name}-{highest} until every \
         lower ordinal is, so evicting it could lose the pod for good"
    ))
}

/// The ordinals from `start` below `highest` that are not in `healthy`, as text: how many, and
/// the first few by name. Counted, not enumerated: a pod named `db-4294967295` (or a start of
/// two billion) costs nothing.
pub fn ordinals_not_ready(
    name: &str,
    start: u64,
    highest: u64,
    healthy: &BTreeSet<u64>,
) -> Option<String> {
    const NAMED: usize = 5;
    let lower = highest.saturating_sub(start);
    let count = lower - healthy.range(start..highest).count() as u64;
    if count == 0 {
        return None;
    }
    // Each step skips a healthy ordinal or names one: at most |healthy| + NAMED steps.
    let named: Vec<String> = (start..highest)
        .filter(|o| !healthy.contains(o))
        .take(NAMED)
        .map(|o| format!("{name}-{o}"))
        .collect();
    let more = if count > named.len() as u64 {
        ", …"
    } else {
        ""
    };
    Some(format!(
        "{count} lower ordinal{} ({}{more})",
        if count == 1 { "" } else { "s" },
        named.join(", ")
    ))
}

/// Argo's own rule: a paused Rollout, or one whose ReplicaSets are not all fully available,
/// ignores `restartAt`. Availability is not asked of a restart of ours under way (its pods
/// being replaced are what makes a ReplicaSet short).
fn argo_blocker(
    facts: &Facts,
    namespace: &Arc<str>,
    name: &Arc<str>,
    record: Option<&WorkloadRecord>,
    restart_recorded: bool,
) -> Option<String> {
    if record.is_some_and(|r| r.paused || r.paused_by_controller) {
        return Some(format!(
            "Rollout {namespace}/{name} is paused: Argo Rollouts does not restart a paused \
             Rollout, so a restart would not happen until it is promoted or resumed"
        ));
    }
    let short = facts
        .unavailable_rollout_sets
        .get(&(namespace.clone(), name.clone()))
        .filter(|_| !restart_recorded)?;
    Some(format!(
        "Rollout {namespace}/{name} has ReplicaSets that are not fully available ({}): Argo \
         Rollouts restarts pods only once every ReplicaSet is, so a restart would not happen",
        short.join(", ")
    ))
}

/// One workload's entry; its pods take its action.
fn workload_plan(
    (namespace, kind, name): (&Arc<str>, &Arc<str>, &Arc<str>),
    phase: Phase,
    record: Option<&WorkloadRecord>,
    group: &Group,
    pods: &mut [PodPlan],
    decided: Result<Action, Manual>,
) -> WorkloadPlan {
    let (action, reason, runbook) = match decided {
        Ok(action) => (action, None, None),
        Err((reason, runbook)) => (
            Action::Manual,
            Some(reason),
            Some(drift_runbook(group.drift, runbook)),
        ),
    };
    let mut from_versions: BTreeSet<Arc<str>> = BTreeSet::new();
    let mut names = Vec::with_capacity(group.pods.len());
    for &i in &group.pods {
        let pod = &mut pods[i];
        pod.action = action;
        names.push(pod.name.clone());
        let version = pod.proxy_version.as_ref().or(pod.proxy_image.as_ref());
        from_versions.insert(version.cloned().unwrap_or_else(|| Arc::from("none")));
    }
    WorkloadPlan {
        api_version: group.api_version.clone(),
        update_strategy: record.and_then(|r| r.update_strategy.clone()),
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
        phase,
        action,
        order: None,
        pods: names,
        from_versions: from_versions.into_iter().collect(),
        target: group.target.clone(),
        drift: group.drift,
        reason,
        runbook,
    }
}

/// A workload that cannot be restarted, with drift beyond the version: the runbook of that
/// drift, which leads on to the one of what keeps the restart from happening. A problem with
/// the control plane or the owners keeps its own runbook.
fn drift_runbook(drift: Reasons, runbook: &'static str) -> &'static str {
    let only = |reason| drift == [reason].into_iter().collect();
    if [
        runbook::NO_CONTROL_PLANE,
        runbook::UNKNOWN_OWNER,
        runbook::TWO_REVISIONS,
        runbook::GATE_FAILED,
        runbook::OWN_PROXY,
    ]
    .contains(&runbook)
    {
        runbook
    } else if only(Reason::MissingProxy) {
        runbook::MISSING_PROXY
    } else if only(Reason::UnwantedProxy) {
        runbook::UNWANTED_PROXY
    } else if drift.contains(Reason::Revision) {
        runbook::CANARY
    } else {
        runbook
    }
}

/// The order: kyma before customer; within a phase by namespace, then name, then kind, so
/// the same cluster always gives the same order and an operator can find a workload in it.
/// Manual items follow, in the same order, without numbers.
fn number(workloads: &mut [WorkloadPlan]) {
    // Only a partition's two entries can share a key, and they differ in being automatic; an
    // unstable sort is deterministic all the same, and spares the stable sort's copy of the list.
    workloads.sort_unstable_by(|a, b| {
        (
            !a.action.is_automatic(),
            a.phase,
            &a.namespace,
            &a.name,
            &a.kind,
        )
            .cmp(&(
                !b.action.is_automatic(),
                b.phase,
                &b.namespace,
                &b.name,
                &b.kind,
            ))
    });
    let automatic = workloads.iter_mut().filter(|w| w.action.is_automatic());
    for (order, workload) in (1..).zip(automatic) {
        workload.order = Some(order);
    }
}

fn not_running_reason(verdicts: &[Verdict]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in verdicts {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let listed: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    format!(
        "no pod with the old proxy is Running and Ready ({}): a restart would not fix what keeps \
         them from running; fix that first, then delete the pods",
        listed.join(", ")
    )
}

/// The actions table of DESIGN §2.5, for a workload with at least one `outdated` pod.
fn automatic_action(
    kind: &str,
    api_version: &str,
    record: Option<&crate::inventory::WorkloadRecord>,
    namespace: &str,
    name: &str,
) -> Result<Action, (String, &'static str)> {
    let group = api_version.split('/').next().unwrap_or_default();
    let strategy = record.and_then(|r| r.update_strategy.as_deref());
    match kind {
        "Deployment" if record.is_some_and(|r| r.paused) => Err((
            format!(
                "Deployment {namespace}/{name} is paused: a restart would not roll out until it is resumed"
            ),
            runbook::PAUSED,
        )),
        "Deployment" => Ok(Action::RolloutRestart),
        "StatefulSet" | "DaemonSet" if strategy == Some("OnDelete") => Ok(Action::Evict),
        "StatefulSet" | "DaemonSet" => Ok(Action::RolloutRestart),
        "ReplicaSet" | "ReplicationController" => Ok(Action::Evict),
        "Rollout" if group == "argoproj.io" || api_version.is_empty() => Ok(Action::RolloutRestart),
        "Job" | "CronJob" => Err((
            format!(
                "{kind} {namespace}/{name} runs to completion: restarting would kill work in progress; \
                 its next pods get the new proxy"
            ),
            runbook::JOBS,
        )),
        "Pod" => Err((
            format!(
                "pod {namespace}/{name} has no controller: deleting it would not bring it back"
            ),
            runbook::BARE_PODS,
        )),
        other => Err((
            format!(
                "{other} {namespace}/{name} ({}) is not a kind this tool restarts",
                if api_version.is_empty() {
                    "no apiVersion"
                } else {
                    api_version
                }
            ),
            runbook::UNKNOWN_OWNER,
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controlplane::Options;
    use crate::inventory::InventoryBuilder;
    use crate::inventory::model::Object;
    use serde_json::{Value, json};

    const OLD: &str = "docker.io/istio/proxyv2:1.23.2";
    const NEW: &str = "docker.io/istio/proxyv2:1.24.1";

    /// A small cluster builder for table-driven tests.
    #[derive(Default)]
    struct Cluster {
        items: Vec<Value>,
    }

    impl Cluster {
        fn new() -> Self {
            let mut c = Cluster::default();
            c.items.push(json!({"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
                "data": {"values": r#"{"global":{"hub":"docker.io/istio","tag":"1.24.1","proxy":{"image":"proxyv2"}}}"#}}));
            c.items.push(json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "istiod-1", "namespace": "istio-system", "labels": {"app": "istiod"}},
                "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.1"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
            c
        }
        fn object(
            mut self,
            kind: &str,
            ns: &str,
            name: &str,
            owner: Option<(&str, &str)>,
            extra: Value,
        ) -> Self {
            let api = match kind {
                "Job" | "CronJob" => "batch/v1",
                "Rollout" => "argoproj.io/v1alpha1",
                "Namespace" | "ReplicationController" => "v1",
                _ => "apps/v1",
            };
            let mut item = json!({"kind": kind, "apiVersion": api, "metadata": {"name": name, "namespace": ns}, "spec": {}});
            if let Some((okind, oname)) = owner {
                let oapi = if okind == "Rollout" {
                    "argoproj.io/v1alpha1"
                } else {
                    "apps/v1"
                };
                item["metadata"]["ownerReferences"] =
                    json!([{"apiVersion": oapi, "kind": okind, "name": oname, "controller": true}]);
            }
            merge(&mut item, extra);
            self.items.push(item);
            self
        }
        fn pod(
            self,
            ns: &str,
            name: &str,
            owner: Option<(&str, &str)>,
            image: &str,
            phase: &str,
            ready: bool,
        ) -> Self {
            // Injected, as its status annotation says; the revision comes from elsewhere.
            let status = r#"{"containers":["istio-proxy"]}"#;
            let extra = json!({"metadata": {"annotations": {"sidecar.istio.io/status": status}},
                "spec": {"containers": [{"name": "istio-proxy", "image": image}]},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
            self.object("Pod", ns, name, owner, extra)
        }
        fn deployment(self, ns: &str, name: &str, extra: Value) -> Self {
            self.object("Deployment", ns, name, None, extra).object(
                "ReplicaSet",
                ns,
                &format!("{name}-rs"),
                Some(("Deployment", name)),
                json!({}),
            )
        }
        fn plan(self, options: &PlanOptions) -> Plan {
            let mut builder = InventoryBuilder::new();
            for (i, item) in self.items.into_iter().enumerate() {
                let object: Object = serde_json::from_value(item).unwrap();
                builder.add(object, format_args!("item {i}")).unwrap();
            }
            let inventory = builder.finish();
            let cp = ControlPlane::resolve(
                &inventory,
                &Options {
                    istio_namespace: "istio-system".into(),
                    ..Options::default()
                },
            )
            .unwrap();
            plan(&inventory, &cp, options)
        }
    }

    /// Merges `patch` into `target`, objects key by key; anything else replaces.
    pub(crate) fn merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
            (t, p) => *t = p,
        }
    }

    fn find<'a>(plan: &'a Plan, kind: &str, name: &str) -> &'a WorkloadPlan {
        plan.workloads
            .iter()
            .find(|w| &*w.kind == kind && &*w.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {:#?}", plan.workloads))
    }

    #[test]
    fn one_row_per_action() {
        let ondelete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        let rolling = json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}});
        let plan = Cluster::new()
            .deployment("shop", "web", json!({}))
            .pod(
                "shop",
                "web-1",
                Some(("ReplicaSet", "web-rs")),
                OLD,
                "Running",
                true,
            )
            .deployment("shop", "frozen", json!({"spec": {"paused": true}}))
            .pod(
                "shop",
                "frozen-1",
                Some(("ReplicaSet", "frozen-rs")),
                OLD,
                "Running",
                true,
            )
            .object("StatefulSet", "shop", "db", None, rolling.clone())
            .pod(
                "shop",
                "db-0",
                Some(("StatefulSet", "db")),
                OLD,
                "Running",
                true,
            )
            .object("StatefulSet", "shop", "legacy-db", None, ondelete.clone())
            .pod(
                "shop",
                "legacy-db-0",
                Some(("StatefulSet", "legacy-db")),
                OLD,
                "Running",
                true,
            )
            .object("DaemonSet", "shop", "agent", None, json!({}))
            .pod(
                "shop",
                "agent-x",
                Some(("DaemonSet", "agent")),
                OLD,
                "Running",
                true,
            )
            .object("DaemonSet", "shop", "old-agent", None, ondelete)
            .pod(
                "shop",
                "old-agent-x",
                Some(("DaemonSet", "old-agent")),
                OLD,
                "Running",
                true,
            )
            .object("ReplicaSet", "shop", "lonely", None, json!({}))
            .pod(
                "shop",
                "lonely-1",
                Some(("ReplicaSet", "lonely")),
                OLD,
                "Running",
                true,
            )
            .object("ReplicationController", "shop", "ancient", None, json!({}))
            .pod(
                "shop",
                "ancient-1",
                Some(("ReplicationController", "ancient")),
                OLD,
                "Running",
                true,
            )
            .object("Rollout", "shop", "canary", None, json!({}))
            .object(
                "ReplicaSet",
                "shop",
                "canary-rs",
                Some(("Rollout", "canary")),
                json!({}),
            )
            .pod(
                "shop",
                "canary-1",
                Some(("ReplicaSet", "canary-rs")),
                OLD,
                "Running",
                true,
            )
            .object("CronJob", "shop", "nightly", None, json!({}))
            .object(
                "Job",
                "shop",
                "nightly-1",
                Some(("CronJob", "nightly")),
                json!({}),
            )
            .pod(
                "shop",
                "nightly-1-x",
                Some(("Job", "nightly-1")),
                OLD,
                "Running",
                true,
            )
            .object("Job", "shop", "once", None, json!({}))
            .pod(
                "shop",
                "once-x",
                Some(("Job", "once")),
                OLD,
                "Running",
                true,
            )
            .pod("shop", "bare", None, OLD, "Running", true)
            .pod(
                "shop",
                "wf-1",
                Some(("Workflow", "wf")),
                OLD,
                "Running",
                true,
            )
            .plan(&PlanOptions::default());

        let expect = [
            ("Deployment", "web", Action::RolloutRestart, None),
            (
                "Deployment",
                "frozen",
                Action::Manual,
                Some(runbook::PAUSED),
            ),
            ("StatefulSet", "db", Action::RolloutRestart, None),
            ("StatefulSet", "legacy-db", Action::Evict, None),
            ("DaemonSet", "agent", Action::RolloutRestart, None),
            ("DaemonSet", "old-agent", Action::Evict, None),
            ("ReplicaSet", "lonely", Action::Evict, None),
            ("ReplicationController", "ancient", Action::Evict, None),
            ("Rollout", "canary", Action::RolloutRestart, None),
            ("CronJob", "nightly", Action::Manual, Some(runbook::JOBS)),
            ("Job", "once", Action::Manual, Some(runbook::JOBS)),
            ("Pod", "bare", Action::Manual, Some(runbook::BARE_PODS)),
            (
                "Workflow",
                "wf",
                Action::Manual,
                Some(runbook::UNKNOWN_OWNER),
            ),
        ];
        for (kind, name, action, book) in expect {
            let w = find(&plan, kind, name);
            assert_eq!(w.action, action, "{kind} {name}");
            assert_eq!(w.runbook, book, "{kind} {name}");
            assert_eq!(
                w.reason.is_some(),
                action == Action::Manual,
                "{kind} {name}"
            );
            assert_eq!(w.order.is_some(), action.is_automatic(), "{kind} {name}");
            assert_eq!(w.from_versions, [Arc::from("1.23.2")]);
            assert_eq!(&*w.target, "1.24.1");
        }
        assert_eq!(plan.workloads.len(), expect.len());
        // every drifted pod carries its workload's action
        for pod in &plan.pods {
            let w = find(&plan, &pod.workload_kind, &pod.workload_name);
            assert_eq!(pod.action, w.action, "{}", pod.name);
        }
    }

    #[test]
    fn only_running_and_ready_pods_earn_an_automatic_action() {
        let plan = Cluster::new()
            .deployment("shop", "mixed", json!({}))
            .pod(
                "shop",
                "mixed-1",
                Some(("ReplicaSet", "mixed-rs")),
                OLD,
                "Running",
                true,
            )
            .pod(
                "shop",
                "mixed-2",
                Some(("ReplicaSet", "mixed-rs")),
                OLD,
                "Pending",
                false,
            )
            .pod(
                "shop",
                "mixed-3",
                Some(("ReplicaSet", "mixed-rs")),
                OLD,
                "Running",
                false,
            )
            .deployment("shop", "stuck", json!({}))
            .pod(
                "shop",
                "stuck-1",
                Some(("ReplicaSet", "stuck-rs")),
                OLD,
                "Pending",
                false,
            )
            .pod(
                "shop",
                "stuck-2",
                Some(("ReplicaSet", "stuck-rs")),
                OLD,
                "Failed",
                false,
            )
            .pod(
                "shop",
                "stuck-3",
                Some(("ReplicaSet", "stuck-rs")),
                OLD,
                "Unknown",
                false,
            )
            .plan(&PlanOptions::default());
        let mixed = find(&plan, "Deployment", "mixed");
        assert_eq!(mixed.action, Action::RolloutRestart);
        assert_eq!(mixed.pods, ["mixed-1", "mixed-2", "mixed-3"].map(Arc::from));
        let stuck = find(&plan, "Deployment", "stuck");
        assert_eq!(stuck.action, Action::Manual);
        assert_eq!(stuck.runbook, Some(runbook::PODS_NOT_RUNNING));
        assert!(
            stuck
                .reason
                .as_ref()
                .unwrap()
                .contains("1 failed, 1 pending, 1 unknown")
        );
        assert_eq!(plan.drifted, 6);
    }

    #[test]
    fn a_recorded_restart_is_waited_for_not_left_to_a_person() {
        let recorded = json!({"metadata": {"annotations": {TARGET_ANNOTATION: "1.24.1"}}});
        let other = json!({"metadata": {"annotations": {TARGET_ANNOTATION: "1.23.2"}}});
        let plan = Cluster::new()
            .deployment("shop", "rolling", recorded)
            .pod(
                "shop",
                "rolling-1",
                Some(("ReplicaSet", "rolling-rs")),
                OLD,
                "Running",
                false,
            )
            .deployment("shop", "older", other)
            .pod(
                "shop",
                "older-1",
                Some(("ReplicaSet", "older-rs")),
                OLD,
                "Running",
                false,
            )
            .plan(&PlanOptions::default());
        assert_eq!(
            find(&plan, "Deployment", "rolling").action,
            Action::RolloutRestart
        );
        assert_eq!(find(&plan, "Deployment", "older").action, Action::Manual);
    }

    #[test]
    fn counts_and_lists_as_the_report_wants() {
        let plan = Cluster::new()
            .deployment("shop", "web", json!({}))
            .pod(
                "shop",
                "web-1",
                Some(("ReplicaSet", "web-rs")),
                OLD,
                "Running",
                true,
            )
            .pod(
                "shop",
                "web-2",
                Some(("ReplicaSet", "web-rs")),
                NEW,
                "Running",
                true,
            )
            .pod(
                "shop",
                "web-3",
                Some(("ReplicaSet", "web-rs")),
                "mirror.io/istio/proxyv2:1.24.1-distroless",
                "Running",
                true,
            )
            .pod("shop", "done", None, OLD, "Succeeded", false)
            .object(
                "Pod",
                "shop",
                "plain",
                None,
                json!({"spec": {"containers": [{"name": "app", "image": "app:1"}]}}),
            )
            .plan(&PlanOptions::default());
        assert_eq!(plan.pods_total, 6); // istiod counts as a pod
        assert_eq!(plan.proxies, 4);
        assert_eq!(plan.up_to_date, 2);
        assert_eq!(plan.drifted, 1);
        let listed: Vec<_> = plan.pods.iter().map(|p| (&*p.name, p.verdict)).collect();
        assert_eq!(
            listed,
            [("done", Verdict::Completed), ("web-1", Verdict::Outdated)]
        );
        assert_eq!(plan.workloads.len(), 1);
    }

    #[test]
    fn phases_then_a_stable_order() {
        let build = |reverse: bool| {
            let mut c = Cluster::new();
            let mut entries = vec![
                ("zoo", "a", false),
                ("shop", "web", false),
                ("shop", "api", false),
                ("kyma-system", "eventing", false),
                ("istio-system", "ingressgateway", false),
                ("team", "module-operator", true),
            ];
            if reverse {
                entries.reverse();
            }
            for (ns, name, module) in entries {
                let labels = if module {
                    json!({"metadata": {"labels": {"kyma-project.io/module": "x"}}})
                } else {
                    json!({})
                };
                c = c.deployment(ns, name, labels).pod(
                    ns,
                    &format!("{name}-1"),
                    Some(("ReplicaSet", &format!("{name}-rs"))),
                    OLD,
                    "Running",
                    true,
                );
            }
            c.pod("shop", "bare", None, OLD, "Running", true)
                .plan(&PlanOptions::default())
        };
        let plan = build(false);
        assert_eq!(
            plan,
            build(true),
            "the order must not depend on the input order"
        );
        let order: Vec<_> = plan
            .workloads
            .iter()
            .map(|w| (w.order, w.phase, &*w.namespace, &*w.name))
            .collect();
        assert_eq!(
            order,
            [
                (Some(1), Phase::Kyma, "istio-system", "ingressgateway"),
                (Some(2), Phase::Kyma, "kyma-system", "eventing"),
                (Some(3), Phase::Kyma, "team", "module-operator"),
                (Some(4), Phase::Customer, "shop", "api"),
                (Some(5), Phase::Customer, "shop", "web"),
                (Some(6), Phase::Customer, "zoo", "a"),
                (None, Phase::Customer, "shop", "bare"),
            ]
        );
    }

    #[test]
    fn skip_on_pod_workload_namespace_and_option() {
        let skip = json!({"metadata": {"annotations": {SKIP_KEY: "true"}}});
        let plan = Cluster::new()
            .object("Namespace", "", "quiet", None, json!({"metadata": {"labels": {SKIP_KEY: "true"}}}))
            .pod("quiet", "q-1", None, OLD, "Running", true)
            .deployment("shop", "web", skip.clone())
            .pod("shop", "web-1", Some(("ReplicaSet", "web-rs")), OLD, "Running", true)
            .object("Pod", "shop", "self", None, json!({"metadata": {"labels": {SKIP_KEY: "true"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": OLD}]}, "status": {"phase": "Running"}}))
            .pod("legacy", "l-1", None, OLD, "Running", true)
            .plan(&PlanOptions {
                exclude_namespaces: vec!["legacy".into()],
                drift: None,
            });
        assert!(plan.workloads.is_empty(), "{:#?}", plan.workloads);
        assert_eq!(plan.pods.len(), 4);
        assert!(
            plan.pods
                .iter()
                .all(|p| p.verdict == Verdict::Excluded && p.action == Action::None)
        );
        assert_eq!(plan.drifted, 0);
    }

    #[test]
    fn revisions_missing_owners_and_mirrors() {
        let plan = Cluster::new()
            // a pod of a revision that has no control plane
            .deployment("shop", "canary", json!({}))
            .object("Pod", "shop", "canary-1", Some(("ReplicaSet", "canary-rs")), json!({
                "metadata": {"labels": {"istio.io/rev": "1-22"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": OLD}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))
            // its ReplicaSet vanished
            .pod("shop", "orphan-1", Some(("ReplicaSet", "gone")), OLD, "Running", true)
            // newer than the control plane: drift too
            .deployment("shop", "ahead", json!({}))
            .pod("shop", "ahead-1", Some(("ReplicaSet", "ahead-rs")), "docker.io/istio/proxyv2:1.25.0", "Running", true)
            // a mirror at the same version: current
            .deployment("shop", "mirrored", json!({}))
            .pod("shop", "mirrored-1", Some(("ReplicaSet", "mirrored-rs")), "registry.corp:5000/istio/proxyv2:1.24.1", "Running", true)
            .plan(&PlanOptions::default());
        let canary = find(&plan, "Deployment", "canary");
        assert_eq!(canary.action, Action::Manual);
        assert_eq!(canary.runbook, Some(runbook::NO_CONTROL_PLANE));
        let orphan = find(&plan, "ReplicaSet", "gone");
        assert_eq!(orphan.action, Action::Manual);
        assert!(
            orphan
                .reason
                .as_ref()
                .unwrap()
                .contains("not in the inventory")
        );
        assert_eq!(
            find(&plan, "Deployment", "ahead").action,
            Action::RolloutRestart
        );
        assert_eq!(
            find(&plan, "Deployment", "ahead").from_versions,
            [Arc::from("1.25.0")]
        );
        assert!(plan.workloads.iter().all(|w| &*w.name != "mirrored"));
        assert_eq!(plan.up_to_date, 1);
    }

    /// Istio's webhook configuration of `revision`, as the inventory reads it.
    fn webhooks(c: Cluster, revision: &str, tag: Option<&str>) -> Cluster {
        use istio_injection::webhooks::{revision_configuration, tag_configuration};
        let configuration = match tag {
            Some(tag) => tag_configuration(tag, revision),
            None => revision_configuration(revision),
        };
        let mut value = serde_json::to_value(configuration).unwrap();
        value["apiVersion"] = json!("admissionregistration.k8s.io/v1");
        value["kind"] = json!("MutatingWebhookConfiguration");
        let mut c = c;
        c.items.push(value);
        c
    }

    /// A gateway as Istio installs it, its proxy written in its own template: a restart brings
    /// back the same image, so a stale one is a person's, never restarted.
    #[test]
    fn a_proxy_in_the_workloads_own_template_is_never_restarted() {
        let c = webhooks(Cluster::new(), "default", None)
            .deployment("istio-system", "istio-ingressgateway", json!({}))
            .object("Pod", "istio-system", "istio-ingressgateway-1",
                Some(("ReplicaSet", "istio-ingressgateway-rs")), json!({
                "metadata": {"labels": {"sidecar.istio.io/inject": "false", "istio.io/rev": "default"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": OLD}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        let plan = c.plan(&PlanOptions::default());
        let gateway = find(&plan, "Deployment", "istio-ingressgateway");
        assert_eq!(gateway.action, Action::Manual, "{gateway:#?}");
        assert_eq!(gateway.runbook, Some(runbook::OWN_PROXY));
        assert_eq!(gateway.drift, [Reason::Version].into_iter().collect());
    }

    /// A namespace asking for a revision whose istiod runs but whose webhooks are not (or no
    /// longer) installed: a restart would come back without a proxy, so it is a person's.
    #[test]
    fn a_revision_no_webhook_serves_is_never_restarted_into() {
        let c = webhooks(Cluster::new(), "1-24", None)
            .object(
                "Namespace",
                "",
                "shop",
                None,
                json!({"metadata": {"labels": {"istio.io/rev": "default"}}}),
            )
            .deployment("shop", "web", json!({}))
            .pod(
                "shop",
                "web-1",
                Some(("ReplicaSet", "web-rs")),
                OLD,
                "Running",
                true,
            );
        let plan = c.plan(&PlanOptions::default());
        let web = find(&plan, "Deployment", "web");
        assert_eq!(web.action, Action::Manual, "{web:#?}");
        assert_eq!(web.runbook, Some(runbook::NO_CONTROL_PLANE));
        assert!(
            web.reason
                .as_deref()
                .unwrap_or_default()
                .contains("revision default")
        );
        assert_eq!(
            plan.pods[0].target_revision, None,
            "nothing would inject it"
        );
    }

    /// An injector `config` that cannot be read: which pods the revision injects is not known,
    /// so its pods, with a proxy or without, are a person's, never judged by Istio's defaults.
    #[test]
    fn an_unreadable_injector_config_leaves_its_pods_to_a_person() {
        let mut c = webhooks(Cluster::new(), "default", None)
            .object("Namespace", "", "shop", None, json!({"metadata": {"labels": {"istio-injection": "enabled"}}}))
            .deployment("shop", "web", json!({}))
            .pod("shop", "web-1", Some(("ReplicaSet", "web-rs")), OLD, "Running", true)
            .deployment("shop", "late", json!({}))
            .object("Pod", "shop", "late-1", Some(("ReplicaSet", "late-rs")), json!({
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
        let injector = c
            .items
            .iter_mut()
            .find(|i| i["metadata"]["name"] == "istio-sidecar-injector")
            .unwrap();
        injector["data"]["config"] = json!("policy: [disabled");
        let plan = c.plan(&PlanOptions::default());
        for name in ["web", "late"] {
            let workload = find(&plan, "Deployment", name);
            assert_eq!(workload.action, Action::Manual, "{name}: {workload:#?}");
            assert_eq!(workload.runbook, Some(runbook::GATE_FAILED), "{name}");
            let reason = workload.reason.as_deref().unwrap_or_default();
            assert!(reason.contains("data.config"), "{name}: {reason}");
        }
    }

    /// The recorded target depends on the target, never on which pods still drift: a re-run
    /// after some pods were replaced computes the one the first run recorded.
    #[test]
    fn a_workloads_target_does_not_depend_on_which_pods_drift() {
        let cluster = |pods: &[&str]| {
            let c = webhooks(Cluster::new(), "default", None)
                .object(
                    "Namespace",
                    "",
                    "shop",
                    None,
                    json!({"metadata": {"labels": {"istio-injection": "enabled"}}}),
                )
                .deployment("shop", "web", json!({}));
            pods.iter().fold(c, |c, &pod| match pod {
                "stale" => c.pod("shop", "web-stale", Some(("ReplicaSet", "web-rs")), OLD, "Running", true),
                _ => c.object("Pod", "shop", "web-bare", Some(("ReplicaSet", "web-rs")), json!({
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})),
            })
        };
        let target = |pods: &[&str]| {
            let plan = cluster(pods).plan(&PlanOptions::default());
            find(&plan, "Deployment", "web").target.to_string()
        };
        let both = target(&["stale", "bare"]);
        assert_eq!(target(&["bare", "stale"]), both);
        assert_eq!(target(&["stale"]), both);
        assert_eq!(target(&["bare"]), both);
    }

    #[test]
    fn drift_beyond_the_version_sets_targets_counts_and_runbooks() {
        let namespace = |c: Cluster, name: &str, labels: Value| {
            c.object(
                "Namespace",
                "",
                name,
                None,
                json!({"metadata": {"labels": labels}}),
            )
        };
        let no_proxy = |c: Cluster, ns: &str, name: &str, owner: Option<(&str, &str)>| {
            c.object("Pod", ns, name, owner, json!({
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))
        };
        let c = webhooks(Cluster::new(), "default", None);
        let c = namespace(c, "shop", json!({"istio-injection": "enabled"}));
        let c = namespace(c, "off", json!({"istio-injection": "disabled"}));
        let c = namespace(c, "plain", json!({}));
        // missing-proxy: restarted; a bare pod missing its proxy is a person's
        let c = no_proxy(
            c.deployment("shop", "late", json!({})),
            "shop",
            "late-1",
            Some(("ReplicaSet", "late-rs")),
        );
        let c = no_proxy(c, "shop", "lonely", None);
        // unwanted-proxy: restarted to no proxy
        let c = c.deployment("off", "leaving", json!({})).pod(
            "off",
            "leaving-1",
            Some(("ReplicaSet", "leaving-rs")),
            NEW,
            "Running",
            true,
        );
        // nothing wanted, nothing there: not listed, not a proxy
        let c = no_proxy(c, "plain", "quiet", None);
        // current: counted only
        let c = c.deployment("shop", "fine", json!({})).pod(
            "shop",
            "fine-1",
            Some(("ReplicaSet", "fine-rs")),
            NEW,
            "Running",
            true,
        );
        let plan = c.plan(&PlanOptions::default());

        assert_eq!(plan.proxies, 2, "{plan:#?}");
        assert_eq!(plan.up_to_date, 1);
        assert_eq!(plan.drifted, 3);
        assert_eq!(plan.drift_counts.get(&Reason::MissingProxy), Some(&2));
        assert_eq!(plan.drift_counts.get(&Reason::UnwantedProxy), Some(&1));
        assert!(plan.pods.iter().all(|p| &*p.name != "quiet"));
        let late = find(&plan, "Deployment", "late");
        assert_eq!(late.action, Action::RolloutRestart);
        assert_eq!(late.drift, [Reason::MissingProxy].into_iter().collect());
        // The default revision, whose values state nothing beyond the image: the version alone.
        assert_eq!(&*late.target, "1.24.1");
        let lonely = find(&plan, "Pod", "lonely");
        assert_eq!(lonely.action, Action::Manual);
        assert_eq!(lonely.runbook, Some(runbook::MISSING_PROXY));
        let leaving = find(&plan, "Deployment", "leaving");
        assert_eq!(leaving.action, Action::RolloutRestart);
        assert_eq!(&*leaving.target, NO_PROXY_TARGET);
        let pod = plan.pods.iter().find(|p| &*p.name == "leaving-1").unwrap();
        assert_eq!(pod.target_revision, None);
        assert_eq!(plan.target_revisions, ["default".to_string()].into());

        // A tag `default` pointing at 1-24 beside the default revision's own configuration:
        // two revisions for every `istio-injection=enabled` pod.
        let c = webhooks(
            webhooks(Cluster::new(), "default", None),
            "1-24",
            Some("default"),
        );
        let c = namespace(c, "shop", json!({"istio-injection": "enabled"}));
        let plan = c
            .deployment("shop", "torn", json!({}))
            .pod(
                "shop",
                "torn-1",
                Some(("ReplicaSet", "torn-rs")),
                NEW,
                "Running",
                true,
            )
            .plan(&PlanOptions::default());
        let torn = find(&plan, "Deployment", "torn");
        assert_eq!(torn.action, Action::Manual);
        assert_eq!(torn.runbook, Some(runbook::TWO_REVISIONS));
        let reason = torn.reason.as_deref().unwrap();
        assert!(reason.contains("istio-revision-tag-default"), "{reason}");
        assert!(reason.contains("istio-sidecar-injector"), "{reason}");
    }

    fn statefulset_pods(mut c: Cluster, name: &str, ready: &[bool]) -> Cluster {
        for (ordinal, &ready) in ready.iter().enumerate() {
            c = c.pod(
                "shop",
                &format!("{name}-{ordinal}"),
                Some(("StatefulSet", name)),
                OLD,
                "Running",
                ready,
            );
        }
        c
    }

    fn entries<'a>(plan: &'a Plan, kind: &str, name: &str) -> Vec<&'a WorkloadPlan> {
        plan.workloads
            .iter()
            .filter(|w| &*w.kind == kind && &*w.name == name)
            .collect()
    }

    #[test]
    fn a_partition_holds_the_ordinals_below_it_for_a_person() {
        let partitioned = |partition: i64| {
            json!({"spec": {"replicas": 4, "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"partition": partition}}}})
        };
        let c = Cluster::new()
            .object("StatefulSet", "shop", "db", None, partitioned(2))
            .object("StatefulSet", "shop", "all-held", None, partitioned(9));
        let c = statefulset_pods(c, "db", &[true; 4]);
        let plan = statefulset_pods(c, "all-held", &[true; 2]).plan(&PlanOptions::default());

        let db = entries(&plan, "StatefulSet", "db");
        assert_eq!(db.len(), 2, "{db:#?}");
        assert_eq!(db[0].action, Action::RolloutRestart);
        assert_eq!(db[0].pods, ["db-2", "db-3"].map(Arc::from));
        assert_eq!(db[1].action, Action::Manual);
        assert_eq!(db[1].pods, ["db-0", "db-1"].map(Arc::from));
        assert_eq!(db[1].runbook, Some(runbook::PARTITION));
        assert!(db[1].reason.as_ref().unwrap().contains("partition 2"));
        for pod in plan.pods.iter().filter(|p| &*p.workload_name == "db") {
            let held = matches!(&*pod.name, "db-0" | "db-1");
            let want = if held {
                Action::Manual
            } else {
                Action::RolloutRestart
            };
            assert_eq!(pod.action, want, "{}", pod.name);
        }
        let held = entries(&plan, "StatefulSet", "all-held");
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].action, Action::Manual);
        assert_eq!(held[0].runbook, Some(runbook::PARTITION));
    }

    #[test]
    fn an_ordered_on_delete_statefulset_with_a_lower_pod_not_ready_is_manual() {
        let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        let parallel = json!({"spec": {"updateStrategy": {"type": "OnDelete"},
            "podManagementPolicy": "Parallel"}});
        let c = Cluster::new()
            .object("StatefulSet", "shop", "db", None, on_delete.clone())
            .object("StatefulSet", "shop", "fine", None, on_delete.clone())
            .object("StatefulSet", "shop", "gap", None, on_delete)
            .object("StatefulSet", "shop", "par", None, parallel);
        let c = statefulset_pods(c, "db", &[false, true, true]);
        let c = statefulset_pods(c, "fine", &[true, true, true]);
        let c = statefulset_pods(c, "par", &[false, true, true]);
        // gap-1 is not listed at all (missing, or not carrying a proxy)
        let plan = c
            .pod(
                "shop",
                "gap-0",
                Some(("StatefulSet", "gap")),
                OLD,
                "Running",
                true,
            )
            .pod(
                "shop",
                "gap-2",
                Some(("StatefulSet", "gap")),
                OLD,
                "Running",
                true,
            )
            .plan(&PlanOptions::default());

        let db = find(&plan, "StatefulSet", "db");
        assert_eq!(db.action, Action::Manual);
        assert_eq!(db.runbook, Some(runbook::ORDERED_READY));
        assert!(
            db.reason
                .as_ref()
                .unwrap()
                .starts_with("1 lower ordinal (db-0) not Running and Ready")
        );
        let gap = find(&plan, "StatefulSet", "gap");
        assert_eq!(gap.action, Action::Manual);
        assert!(
            gap.reason
                .as_ref()
                .unwrap()
                .starts_with("1 lower ordinal (gap-1) not")
        );
        assert_eq!(find(&plan, "StatefulSet", "fine").action, Action::Evict);
        assert_eq!(find(&plan, "StatefulSet", "par").action, Action::Evict);
    }

    #[test]
    fn ordinals_count_from_the_statefulsets_start() {
        let mut c = Cluster::new()
            .object(
                "StatefulSet",
                "shop",
                "db",
                None,
                json!({"spec": {"replicas": 2,
                "ordinals": {"start": 3}, "updateStrategy": {"type": "OnDelete"}}}),
            )
            .object(
                "StatefulSet",
                "shop",
                "part",
                None,
                json!({"spec": {"replicas": 2,
                "ordinals": {"start": 3}, "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"partition": 1}}}}),
            );
        for name in ["db-3", "db-4", "part-3", "part-4"] {
            let owner = name.split('-').next().unwrap();
            c = c.pod(
                "shop",
                name,
                Some(("StatefulSet", owner)),
                OLD,
                "Running",
                true,
            );
        }
        // A hostile ordinal: counted, not enumerated, and left to a person.
        let plan = c
            .object(
                "StatefulSet",
                "shop",
                "odd",
                None,
                json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
            )
            .pod(
                "shop",
                "odd-4294967295",
                Some(("StatefulSet", "odd")),
                OLD,
                "Running",
                true,
            )
            .plan(&PlanOptions::default());
        // db-3 is the first pod: nothing below it keeps db-4 from coming back.
        assert_eq!(find(&plan, "StatefulSet", "db").action, Action::Evict);
        // The partition counts positions: part-3 (position 0) is held, part-4 is restarted.
        let part = entries(&plan, "StatefulSet", "part");
        assert_eq!(part[0].pods, [Arc::from("part-4")]);
        assert_eq!(part[1].pods, [Arc::from("part-3")]);
        let odd = find(&plan, "StatefulSet", "odd");
        assert_eq!(odd.action, Action::Manual);
        assert!(
            odd.reason
                .as_ref()
                .unwrap()
                .starts_with("4294967295 lower ordinals (odd-0")
        );
    }

    #[test]
    fn a_partitioned_statefulset_without_a_control_plane_is_one_manual_entry() {
        let c = Cluster::new().object("StatefulSet", "shop", "db", None, json!({"spec": {
            "replicas": 2, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}));
        let c = statefulset_pods(c, "db", &[true; 2]);
        let mut plan_input = c;
        for item in plan_input.items.iter_mut().filter(|i| {
            i["kind"] == "Pod"
                && i["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("db-"))
        }) {
            item["metadata"]["labels"] = json!({"istio.io/rev": "gone"});
        }
        let plan = plan_input.plan(&PlanOptions::default());
        let db = entries(&plan, "StatefulSet", "db");
        assert_eq!(db.len(), 1, "{db:#?}");
        assert_eq!(db[0].runbook, Some(runbook::NO_CONTROL_PLANE));
    }

    #[test]
    fn argo_rollouts_that_would_ignore_a_restart_are_manual() {
        let rollout = |c: Cluster, name: &str, extra: Value, available: Option<i64>| {
            // No count at all is how the API server writes none available.
            let mut rs = json!({"spec": {"replicas": 2}, "status": {"replicas": 2}});
            if let Some(available) = available {
                rs["status"]["availableReplicas"] = json!(available);
            }
            c.object("Rollout", "shop", name, None, extra)
                .object(
                    "ReplicaSet",
                    "shop",
                    &format!("{name}-rs"),
                    Some(("Rollout", name)),
                    rs,
                )
                .pod(
                    "shop",
                    &format!("{name}-1"),
                    Some(("ReplicaSet", &format!("{name}-rs"))),
                    OLD,
                    "Running",
                    true,
                )
        };
        let c = rollout(Cluster::new(), "fine", json!({}), Some(2));
        let c = rollout(c, "paused", json!({"spec": {"paused": true}}), Some(2));
        let c = rollout(
            c,
            "stepping",
            json!({"status": {"pauseConditions": [
            {"reason": "CanaryPauseStep", "startTime": "2026-11-26T10:00:00Z"}]}}),
            Some(2),
        );
        let c = rollout(
            c,
            "held",
            json!({"status": {"controllerPause": true}}),
            Some(2),
        );
        let c = rollout(c, "short", json!({}), Some(1));
        let c = rollout(c, "none-available", json!({}), None);
        let recorded = json!({"metadata": {"annotations": {TARGET_ANNOTATION: "1.24.1"}}});
        let plan = rollout(c, "restarting", recorded, Some(1)).plan(&PlanOptions::default());

        for name in ["fine", "restarting"] {
            assert_eq!(
                find(&plan, "Rollout", name).action,
                Action::RolloutRestart,
                "{name}"
            );
        }
        for (name, says) in [
            ("paused", "is paused"),
            ("stepping", "is paused"),
            ("held", "is paused"),
            ("short", "short-rs (1 of 2 available)"),
            ("none-available", "none-available-rs (0 of 2 available)"),
        ] {
            let w = find(&plan, "Rollout", name);
            assert_eq!(w.action, Action::Manual, "{name}");
            assert_eq!(w.runbook, Some(runbook::ARGO_ROLLOUT), "{name}");
            assert!(
                w.reason.as_ref().unwrap().contains(says),
                "{name}: {:?}",
                w.reason
            );
        }
    }

    #[test]
    fn runbook_links_are_all_listed() {
        for link in runbook::ALL {
            assert!(link.starts_with("runbooks/"));
        }
    }
}
