//! What the cluster holds, reduced to the records the decision rules need.
//!
//! Objects arrive one at a time (a snapshot item, a list page's item) and are folded into an
//! [`Inventory`] by [`InventoryBuilder::add`]; nothing keeps the objects themselves. Pods without
//! a proxy are only counted, so memory grows with proxies and workloads, not with pod bytes.

pub mod live;
pub mod model;
pub mod snapshot;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use model::{Body, Container, Metadata, Object, OwnerReference};

use crate::{Error, Result};

/// The label or annotation that keeps a pod, workload or namespace out of every restart.
pub const SKIP_KEY: &str = "istio-proxy-reset.kyma-project.io/skip";
/// The annotation Istio writes on injected pods, naming what it injected and for which revision.
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
/// The templates a pod asks Istio's injector for (`gateway`, custom ones; `sidecar` unless set).
pub const TEMPLATES_ANNOTATION: &str = "inject.istio.io/templates";
/// Per-pod proxy image override: such a pod is never the control plane's to update.
pub const PROXY_IMAGE_ANNOTATION: &str = "sidecar.istio.io/proxyImage";
pub const REVISION_LABEL: &str = "istio.io/rev";
pub const MODULE_LABEL: &str = "kyma-project.io/module";
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// Init containers Istio injects that are not proxies.
const NOT_PROXIES: [&str; 2] = ["istio-init", "istio-validation"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    fn parse(phase: Option<&str>) -> PodPhase {
        match phase {
            Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Unknown,
        }
    }
}

/// A controller reference: what the decision rules follow from a pod upward. Interned: the
/// pods of one ReplicaSet share one copy of each string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerRef {
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    pub name: Arc<str>,
}

/// A pod the rules judge: every pod that carries an Istio proxy, and every Running pod without
/// one (a webhook may want to inject it, DESIGN §2.1). One is kept per such pod until the plan
/// is made, so it is kept small: shared strings are interned, rare ones boxed.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub namespace: Arc<str>,
    /// Shared with the plan and the report, which list the pod by name.
    pub name: Arc<str>,
    pub phase: PodPhase,
    /// Why the pod is in its phase (`status.reason`, e.g. `Evicted`), for the report.
    pub phase_reason: Option<Box<str>>,
    pub ready: bool,
    pub terminating: bool,
    pub controller: Option<Arc<OwnerRef>>,
    /// The proxy, when the pod carries one.
    pub proxy: Option<Box<Proxy>>,
    /// The proxy container's image as the pod spec names it; `None` when it names none.
    pub proxy_image: Option<Arc<str>>,
    /// The revision the pod names: its `istio.io/rev` label, else its sidecar status's.
    pub revision: Option<Arc<str>>,
    pub skip: bool,
    /// Labelled `kyma-project.io/module`: a bare pod of a Kyma module is in the `kyma` phase.
    pub module_label: bool,
    pub custom_proxy_image: Option<Box<str>>,
    /// What the injector reads of the pod: its kept labels and Istio's annotations.
    pub injection: Box<InjectionFacts>,
}

impl PodRecord {
    pub fn has_proxy(&self) -> bool {
        self.proxy.is_some()
    }

    /// One of the annotations the injector reads.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.injection
            .annotations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v)
    }
}

/// The proxy a pod carries, as far as the drift rules look (DESIGN §2.3a).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    /// The revision that injected it: the sidecar status's, else the `istio.io/rev` annotation
    /// or label.
    pub revision: Option<Arc<str>>,
    /// An init container with `restartPolicy: Always`.
    pub native: bool,
    pub resources: istio_injection::proxy::Resources,
    /// The pod has the `istio-init` init container (traffic set up without Istio CNI).
    pub istio_init: bool,
    /// The pod has the `istio-validation` init container (with Istio CNI).
    pub istio_validation: bool,
    pub origin: ProxyOrigin,
}

/// How a pod came by its proxy, as its `sidecar.istio.io/status` annotation says. Only what
/// the `sidecar` template injected is what the revision's values say it should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyOrigin {
    /// Injected by Istio's `sidecar` template (`inject.istio.io/templates` unset, or just that).
    #[default]
    Sidecar,
    /// Injected with other templates (`inject.istio.io/templates: gateway`, a custom one): the
    /// template, not the values, decides its resources, CNI and placement.
    OtherTemplate,
    /// No status annotation: the container is part of the workload's own template (a gateway
    /// Deployment Istio installs with `sidecar.istio.io/inject: "false"`), never injected.
    Own,
}

/// The pod's labels a selector may read (the kept keys) and the annotations Istio's injector
/// reads, besides `hostNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectionFacts {
    pub labels: Box<[(Arc<str>, Arc<str>)]>,
    pub annotations: Box<[(&'static str, Box<str>)]>,
    pub host_network: bool,
}

/// The pod annotations the injector reads.
const INJECTOR_ANNOTATIONS: [&str; 6] = [
    istio_injection::policy::INJECT_KEY,
    istio_injection::proxy::NATIVE_SIDECAR_ANNOTATION,
    "sidecar.istio.io/proxyCPU",
    "sidecar.istio.io/proxyMemory",
    "sidecar.istio.io/proxyCPULimit",
    "sidecar.istio.io/proxyMemoryLimit",
];

impl InjectionFacts {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v)
    }
}

/// A workload or intermediate owner (ReplicaSet, Deployment, StatefulSet, …).
#[derive(Debug, Clone, Default)]
pub struct WorkloadRecord {
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub controller: Option<Arc<OwnerRef>>,
    pub skip: bool,
    pub module_label: bool,
    pub paused: bool,
    /// `spec.updateStrategy.type` of StatefulSets and DaemonSets.
    pub update_strategy: Option<Arc<str>>,
    /// `spec.updateStrategy.rollingUpdate.partition` of StatefulSets.
    pub partition: Option<i64>,
    /// `spec.ordinals.start` of StatefulSets: the first pod's ordinal.
    pub ordinal_start: u64,
    /// `spec.podManagementPolicy` of StatefulSets is `Parallel` (not `OrderedReady`).
    pub parallel_pods: bool,
    /// Argo Rollouts: `status.pauseConditions` or `status.controllerPause`.
    pub paused_by_controller: bool,
    pub available_replicas: Option<i64>,
    /// Annotations the run writes (target version) and reads back on a re-run.
    pub annotations: Box<[(String, String)]>,
    /// Image of the `discovery` container, for istiod Deployments.
    pub discovery_image: Option<Box<str>>,
    /// `ENABLE_NATIVE_SIDECARS` of the `discovery` container, for istiod Deployments.
    pub discovery_native_sidecars: Option<Box<str>>,
    /// The `app` label (`istiod` for the control plane).
    pub app: Option<Arc<str>>,
    /// The `istio.io/rev` label.
    pub revision: Option<Arc<str>>,
    pub replicas: Option<i64>,
    pub ready_replicas: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct NamespaceRecord {
    pub skip: bool,
    pub revision: Option<String>,
    /// The kept labels, for webhooks' `namespaceSelector`s.
    pub labels: Box<[(String, String)]>,
}

/// An istiod pod, for the control-plane gate.
#[derive(Debug, Clone)]
pub struct IstiodPod {
    pub namespace: String,
    pub name: String,
    pub revision: Option<String>,
    pub image: Option<String>,
    pub phase: PodPhase,
    pub ready: bool,
    pub terminating: bool,
}

/// An `istio-sidecar-injector[-<rev>]` ConfigMap.
#[derive(Debug, Clone)]
pub struct InjectorConfigMap {
    pub namespace: String,
    pub name: String,
    pub revision: Option<String>,
    pub values: Option<String>,
    /// `data.config` (YAML): the injector's policy and selectors.
    pub config: Option<String>,
}

/// How many pods an [`InventoryBuilder`] held at some point.
#[derive(Debug, Clone, Copy)]
pub struct PodsCheckpoint {
    pods_total: usize,
    seen_pods: usize,
    pod_records: usize,
    istiod_pods: usize,
}

/// Identifies an owner: `(kind, namespace, name)`. Group is not part of it: two kinds of the
/// same name from different groups never meet in one namespace's owner chain in practice,
/// and owner references often omit nothing but the group version.
#[derive(Debug, Clone)]
pub struct ObjectKey {
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// An owner's key as three borrowed strings, so that a lookup (one per pod and step of its
/// owner chain) allocates nothing. The map hashes and compares keys only through this view.
trait KeyView {
    fn parts(&self) -> (&str, &str, &str);
}

impl KeyView for ObjectKey {
    fn parts(&self) -> (&str, &str, &str) {
        (&self.kind, &self.namespace, &self.name)
    }
}

impl KeyView for (&str, &str, &str) {
    fn parts(&self) -> (&str, &str, &str) {
        *self
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for ObjectKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for ObjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyView).hash(state);
    }
}

impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for ObjectKey {}

#[derive(Debug, Default)]
pub struct Inventory {
    pub pods_total: usize,
    pub pod_records: Vec<PodRecord>,
    /// Boxed: a big cluster has tens of thousands of owners (old ReplicaSets included), and the
    /// table's spare capacity then costs a key and a pointer per slot, not a whole record.
    pub workloads: HashMap<ObjectKey, Box<WorkloadRecord>>,
    pub namespaces: HashMap<String, NamespaceRecord>,
    pub istiod_pods: Vec<IstiodPod>,
    pub injectors: Vec<InjectorConfigMap>,
    /// Istio's MutatingWebhookConfigurations (those with a `…sidecar-injector.istio.io` webhook).
    pub webhook_configurations: Vec<istio_injection::WebhookConfiguration>,
    /// Objects (pods and owners) with two controller references, naming both. Rare, so kept
    /// aside rather than in every record.
    pub controller_conflicts: HashMap<ObjectKey, Box<str>>,
    /// Kinds seen and not used, with counts, for the debug log.
    pub ignored_kinds: BTreeMap<String, usize>,
}

/// One shared copy of each distinct string: the pods of a cluster repeat a few namespaces,
/// images, owners and reasons thousands of times.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(existing) = self.0.get(text) {
            return existing.clone();
        }
        let interned: Arc<str> = Arc::from(text);
        self.0.insert(interned.clone());
        interned
    }
}

/// Folds objects into an [`Inventory`], interning the strings many pods share.
#[derive(Default)]
pub struct InventoryBuilder {
    inventory: Inventory,
    strings: Interner,
    owners: HashSet<Arc<OwnerRef>>,
    /// A 64-bit hash of every pod's namespace and name, to refuse a pod listed twice without
    /// keeping a copy of every name (pods without a proxy are not kept at all). Two different
    /// pods share a hash with a probability of about n²/2⁶⁵ (10⁻¹⁰ at 50,000 pods).
    seen_pods: HashSet<u64>,
    /// The same hashes in the order they were added, to forget those after a checkpoint.
    seen_order: Vec<u64>,
    /// Keys drawn at random per process (`RandomState::default`): nobody can choose two pod
    /// names that collide.
    seen_keys: std::hash::RandomState,
    scope: Option<HashSet<String>>,
}

impl InventoryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps only the pods of these namespaces (`--namespace`); the control plane's objects
    /// are kept wherever they are.
    pub fn with_scope(namespaces: &[String]) -> Self {
        InventoryBuilder {
            scope: (!namespaces.is_empty()).then(|| namespaces.iter().cloned().collect()),
            ..Self::default()
        }
    }

    fn in_scope(&self, namespace: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(namespace))
    }

    /// One shared copy per owner: a ReplicaSet's pods all point at the same reference.
    fn owner_ref(&mut self, owner: &OwnerReference) -> Arc<OwnerRef> {
        let owner = OwnerRef {
            api_version: self.intern(&owner.api_version),
            kind: self.intern(&owner.kind),
            name: self.intern(&owner.name),
        };
        if let Some(existing) = self.owners.get(&owner) {
            return existing.clone();
        }
        let owner = Arc::new(owner);
        self.owners.insert(owner.clone());
        owner
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        self.strings.intern(text)
    }

    /// Adds one object. `origin` names where it came from (`item 17`) for error messages; it
    /// is only formatted when there is an error.
    pub fn add(&mut self, object: Object, origin: impl std::fmt::Display) -> Result<()> {
        let Object {
            api_version,
            kind,
            metadata,
            body,
        } = object;
        let name = metadata.name.clone().ok_or_else(|| Error::InvalidObject {
            object: format!("{origin} ({kind})"),
            field: "metadata.name".into(),
            problem: "missing".into(),
        })?;
        // Only the kinds the rules read need a namespace; Nodes and the like have none.
        let namespaced = kind == "Pod" || kind == "ConfigMap" || model::is_workload_kind(&kind);
        let namespace = match (&metadata.namespace, namespaced) {
            (Some(ns), true) if !ns.is_empty() => ns.clone(),
            (_, true) => {
                return Err(Error::InvalidObject {
                    object: format!("{origin} ({kind} {name})"),
                    field: "metadata.namespace".into(),
                    problem: "missing".into(),
                });
            }
            (_, false) => String::new(),
        };
        let added = match (kind.as_str(), body) {
            ("Pod", Body::Pod { spec, status }) => {
                return self.add_pod(namespace, name, metadata, spec, status, &origin);
            }
            (_, Body::Workload { spec, status }) => self.add_workload(
                api_version,
                &kind,
                &namespace,
                &name,
                metadata,
                spec,
                status,
            ),
            ("Namespace", _) => self.add_namespace(&name, &metadata),
            ("ConfigMap", Body::ConfigMap { data }) => {
                self.add_injector(namespace.clone(), name.clone(), data)
            }
            (model::WEBHOOK_CONFIGURATION, Body::Webhooks { webhooks }) => {
                self.add_webhook_configuration(&name, metadata, webhooks)
            }
            (_, _) => {
                *self.inventory.ignored_kinds.entry(kind).or_default() += 1;
                return Ok(());
            }
        };
        match added {
            Added::New => Ok(()),
            Added::Twice => Err(listed_twice(&kind, &namespace, &name, origin)),
        }
    }

    #[allow(clippy::too_many_arguments)] // the parts of one object, taken apart once by `add`
    fn add_workload(
        &mut self,
        api_version: String,
        kind: &str,
        namespace: &str,
        name: &str,
        metadata: Metadata,
        spec: model::WorkloadSpec,
        status: model::WorkloadStatus,
    ) -> Added {
        let discovery = spec
            .template
            .as_ref()
            .and_then(|t| t.spec.containers.iter().find(|c| c.name == "discovery"));
        let discovery_image = discovery.and_then(|c| c.image.clone());
        let discovery_native_sidecars = discovery.and_then(|c| c.native_sidecars_env.clone());
        let controller = self.controller_of(kind, namespace, name, &metadata);
        let record = WorkloadRecord {
            api_version: self.intern(&api_version),
            kind: self.intern(kind),
            namespace: self.intern(namespace),
            // Interned: the same name is its pods' or ReplicaSets' owner reference
            // (when the same builder read them, as a snapshot does).
            name: self.intern(name),
            controller,
            skip: carries_skip(&metadata, kind, namespace, name),
            module_label: metadata.labels.get(MODULE_LABEL).is_some(),
            paused: spec.paused.unwrap_or(false),
            partition: spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition),
            update_strategy: spec
                .update_strategy
                .and_then(|s| s.type_)
                .map(|s| self.intern(&s)),
            parallel_pods: spec.pod_management_policy.as_deref() == Some("Parallel"),
            ordinal_start: spec
                .ordinals
                .as_ref()
                .and_then(|o| o.start)
                .map_or(0, |s| s.max(0) as u64),
            paused_by_controller: !status.pause_conditions.is_empty()
                || status.controller_pause == Some(true),
            available_replicas: status.available_replicas,
            annotations: metadata.annotations.0.into_boxed_slice(),
            discovery_image: discovery_image.map(String::into_boxed_str),
            discovery_native_sidecars,
            app: metadata.labels.get("app").map(|a| self.intern(a)),
            revision: metadata.labels.get(REVISION_LABEL).map(|r| self.intern(r)),
            replicas: spec.replicas,
            ready_replicas: status.ready_replicas,
        };
        let key = ObjectKey {
            kind: record.kind.clone(),
            namespace: record.namespace.clone(),
            name: record.name.clone(),
        };
        match self.inventory.workloads.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => Added::Twice,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Box::new(record));
                Added::New
            }
        }
    }

    fn add_namespace(&mut self, name: &str, metadata: &Metadata) -> Added {
        if self.inventory.namespaces.contains_key(name) {
            return Added::Twice;
        }
        let record = NamespaceRecord {
            skip: carries_skip(metadata, "Namespace", "", name),
            revision: metadata.labels.get(REVISION_LABEL).map(str::to_string),
            labels: metadata.labels.0.clone().into_boxed_slice(),
        };
        self.inventory.namespaces.insert(name.to_string(), record);
        Added::New
    }

    /// Keeps `istio-sidecar-injector[-<rev>]`; other ConfigMaps are not the rules' business.
    fn add_injector(
        &mut self,
        namespace: String,
        name: String,
        data: model::InjectorData,
    ) -> Added {
        let Some(revision) = name.strip_prefix("istio-sidecar-injector") else {
            return Added::New;
        };
        let revision = revision.strip_prefix('-').map(str::to_string);
        let injectors = &mut self.inventory.injectors;
        if injectors
            .iter()
            .any(|c| c.namespace == namespace && c.name == name)
        {
            return Added::Twice;
        }
        injectors.push(InjectorConfigMap {
            namespace,
            name,
            revision,
            values: data.values,
            config: data.config,
        });
        Added::New
    }

    /// Keeps Istio's injection webhook configurations; others are not the rules' business.
    fn add_webhook_configuration(
        &mut self,
        name: &str,
        metadata: Metadata,
        webhooks: Vec<istio_injection::webhooks::Webhook>,
    ) -> Added {
        let configuration = istio_injection::WebhookConfiguration {
            metadata: istio_injection::webhooks::Metadata {
                name: name.to_string(),
                labels: metadata.labels.0.into_iter().collect(),
            },
            webhooks,
        };
        if !configuration.is_istio_injector() {
            return Added::New;
        }
        let configurations = &mut self.inventory.webhook_configurations;
        if configurations.iter().any(|c| c.metadata.name == name) {
            return Added::Twice;
        }
        configurations.push(configuration);
        Added::New
    }

    /// The object's controller reference, interned. One that names two controllers (only one
    /// can own it) is remembered, so that the owner walk stops there with the reason.
    fn controller_of(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        metadata: &Metadata,
    ) -> Option<Arc<OwnerRef>> {
        let mut controllers = metadata
            .owner_references
            .iter()
            .filter(|o| o.controller == Some(true));
        let first = controllers.next()?;
        if let Some(second) = controllers.next() {
            let key = ObjectKey {
                kind: self.intern(kind),
                namespace: self.intern(namespace),
                name: Arc::from(name),
            };
            let both = format!(
                "{} {} and {} {}",
                first.kind, first.name, second.kind, second.name
            );
            self.inventory
                .controller_conflicts
                .insert(key, both.into_boxed_str());
        }
        Some(self.owner_ref(first))
    }

    fn add_pod(
        &mut self,
        namespace: String,
        name: String,
        metadata: Metadata,
        spec: model::PodSpec,
        status: model::PodStatus,
        origin: &dyn std::fmt::Display,
    ) -> Result<()> {
        let in_scope = self.in_scope(&namespace);
        let namespace = self.intern(&namespace);
        let seen = self.seen_keys.hash_one((namespace.as_ref(), name.as_str()));
        if !self.seen_pods.insert(seen) {
            return Err(listed_twice("Pod", &namespace, &name, origin));
        }
        self.seen_order.push(seen);
        if in_scope {
            self.inventory.pods_total += 1;
        }
        let phase = PodPhase::parse(status.phase.as_deref());
        let ready = status.ready;
        let terminating = metadata.deleting;
        let revision = pod_revision(&metadata).map(|r| self.intern(&r));

        if metadata.labels.get("app") == Some("istiod") {
            let image = spec
                .containers
                .iter()
                .find(|c| c.name == "discovery")
                .and_then(|c| c.image.clone());
            self.inventory.istiod_pods.push(IstiodPod {
                namespace: namespace.to_string(),
                name: name.clone(),
                revision: revision.as_deref().map(str::to_string),
                image,
                phase,
                ready,
                terminating,
            });
        }

        if !in_scope {
            return Ok(());
        }
        let proxy = find_proxy(&metadata, &spec);
        // A pod without a proxy matters only while it runs: a webhook may want to inject it.
        if proxy.is_none() && (phase != PodPhase::Running || terminating) {
            return Ok(());
        }
        let proxy_image = proxy
            .and_then(|p| p.image.as_deref())
            .map(|i| self.intern(i));
        let proxy = proxy.map(|container| Box::new(proxy_of(&metadata, &spec, container, self)));
        let controller = self.controller_of("Pod", &namespace, &name, &metadata);
        let skip = carries_skip(&metadata, "Pod", &namespace, &name);
        let injection = Box::new(self.injection_facts(&metadata, spec.host_network));
        self.inventory.pod_records.push(PodRecord {
            namespace,
            name: Arc::from(name),
            phase,
            phase_reason: status.reason.map(String::into_boxed_str),
            ready,
            terminating,
            controller,
            proxy,
            proxy_image,
            revision,
            skip,
            module_label: metadata.labels.get(MODULE_LABEL).is_some(),
            custom_proxy_image: metadata
                .annotations
                .get(PROXY_IMAGE_ANNOTATION)
                .map(Box::from),
            injection,
        });
        Ok(())
    }

    /// The kept labels, interned (a ReplicaSet's pods share them), and the injector's annotations.
    fn injection_facts(&mut self, metadata: &Metadata, host_network: bool) -> InjectionFacts {
        let labels = metadata
            .labels
            .0
            .iter()
            .map(|(k, v)| (self.intern(k), self.intern(v)))
            .collect();
        let annotations = INJECTOR_ANNOTATIONS
            .iter()
            .filter_map(|key| metadata.annotations.get(key).map(|v| (*key, Box::from(v))))
            .collect();
        InjectionFacts {
            labels,
            annotations,
            host_network,
        }
    }

    /// Where the pods stand now, to [`rewind_pods`](Self::rewind_pods) to.
    pub fn pods_checkpoint(&self) -> PodsCheckpoint {
        PodsCheckpoint {
            pods_total: self.inventory.pods_total,
            seen_pods: self.seen_order.len(),
            pod_records: self.inventory.pod_records.len(),
            istiod_pods: self.inventory.istiod_pods.len(),
        }
    }

    /// Forgets the pods added since `checkpoint`: a list that restarts after its continue token
    /// expired lists them again.
    pub fn rewind_pods(&mut self, checkpoint: PodsCheckpoint) {
        self.inventory.pods_total = checkpoint.pods_total;
        self.inventory.pod_records.truncate(checkpoint.pod_records);
        self.inventory.istiod_pods.truncate(checkpoint.istiod_pods);
        for seen in self.seen_order.drain(checkpoint.seen_pods..) {
            self.seen_pods.remove(&seen);
        }
    }

    /// Takes in the owners another builder read (listed alongside the pods).
    pub fn merge_owners(&mut self, owners: InventoryBuilder) {
        let owners = owners.inventory;
        self.inventory.workloads.extend(owners.workloads);
        self.inventory.namespaces.extend(owners.namespaces);
        self.inventory.injectors.extend(owners.injectors);
        self.inventory
            .webhook_configurations
            .extend(owners.webhook_configurations);
        self.inventory
            .controller_conflicts
            .extend(owners.controller_conflicts);
        for (kind, count) in owners.ignored_kinds {
            *self.inventory.ignored_kinds.entry(kind).or_default() += count;
        }
    }

    /// Forgets the objects of `kind` in `namespace` (everywhere when `None`) that one list
    /// gave: it starts over after its continue token expired. (The one list limited by a label
    /// selector, istiod's Deployments, is the only list of Deployments in its namespace.)
    pub fn forget_listed(&mut self, kind: &str, namespace: Option<&str>) {
        let listed = |ns: &str| namespace.is_none_or(|n| n == ns);
        let inventory = &mut self.inventory;
        match kind {
            "Namespace" => inventory.namespaces.clear(),
            "ConfigMap" => inventory.injectors.retain(|c| !listed(&c.namespace)),
            model::WEBHOOK_CONFIGURATION => inventory.webhook_configurations.clear(),
            _ => inventory
                .workloads
                .retain(|key, _| !(&*key.kind == kind && listed(&key.namespace))),
        }
    }

    /// Some ReplicaSet is controlled by an Argo Rollout: Rollouts need listing too.
    pub fn names_a_rollout(&self) -> bool {
        self.inventory.workloads.values().any(|w| {
            &*w.kind == "ReplicaSet"
                && w.controller.as_ref().is_some_and(|c| {
                    &*c.kind == "Rollout" && c.api_version.starts_with("argoproj.io/")
                })
        })
    }

    pub fn finish(mut self) -> Inventory {
        // The pods' vector grew by doubling; what it holds is all the plan needs.
        self.inventory.pod_records.shrink_to_fit();
        self.inventory
    }
}

/// Whether `add` kept a new object or met one it already holds.
enum Added {
    New,
    Twice,
}

/// The error for an object listed twice: a merged or corrupted snapshot. Which copy is right
/// cannot be told, and taking either silently could lose a skip mark or a pause.
fn listed_twice(kind: &str, namespace: &str, name: &str, origin: impl std::fmt::Display) -> Error {
    let object = if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    };
    Error::InvalidObject {
        object: format!("{object} (again at {origin})"),
        field: "metadata.name".into(),
        problem: "listed twice; a snapshot lists each object once".into(),
    }
}

/// DESIGN §2.4's opt-out, on the label or the annotation. An opt-out must never be lost, so any
/// value but `false` (in any case, space around it aside) skips. A value other than `true` or
/// `false` is logged, naming the object: its author should see how it was read.
fn carries_skip(metadata: &Metadata, kind: &str, namespace: &str, name: &str) -> bool {
    let mut skip = false;
    for (place, value) in [
        ("label", metadata.labels.get(SKIP_KEY)),
        ("annotation", metadata.annotations.get(SKIP_KEY)),
    ] {
        let Some(value) = value else { continue };
        let skips = skip_value_skips(value);
        if value != "true" && value != "false" {
            let object = if namespace.is_empty() {
                format!("{kind} {name}")
            } else {
                format!("{kind} {namespace}/{name}")
            };
            tracing::warn!(
                "{object}: the {place} {SKIP_KEY} is {value:?}, read as {}; write \"true\" or \"false\"",
                if skips { "skip" } else { "do not skip" }
            );
        }
        skip |= skips;
    }
    skip
}

/// The skip mark's value: anything but `false` skips.
pub fn skip_value_skips(value: &str) -> bool {
    !value.trim().eq_ignore_ascii_case("false")
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SidecarStatus {
    containers: Option<Vec<String>>,
    init_containers: Option<Vec<String>>,
    revision: Option<String>,
}

fn sidecar_status(metadata: &Metadata) -> Option<SidecarStatus> {
    metadata
        .annotations
        .get(SIDECAR_STATUS)
        .and_then(|text| serde_json::from_str(text).ok())
}

/// DESIGN §2.2: the `istio.io/rev` label, else the revision in the sidecar status annotation.
fn pod_revision(metadata: &Metadata) -> Option<String> {
    metadata
        .labels
        .get(REVISION_LABEL)
        .map(str::to_string)
        .or_else(|| {
            metadata
                .annotations
                .get(SIDECAR_STATUS)
                .and_then(status_revision)
        })
        .filter(|r| !r.is_empty())
}

/// The `revision` of a sidecar status annotation. Istio writes it compactly, so a look for
/// `"revision":"…"` finds it without parsing the JSON (the common case, once per pod); anything
/// else is parsed properly.
fn status_revision(text: &str) -> Option<String> {
    const KEY: &str = "\"revision\":\"";
    if let Some(start) = text.find(KEY) {
        let rest = &text[start + KEY.len()..];
        if let Some(end) = rest.find('"')
            && !rest[..end].contains('\\')
        {
            return Some(rest[..end].to_string());
        }
    }
    serde_json::from_str::<SidecarStatus>(text)
        .ok()
        .and_then(|s| s.revision)
}

/// DESIGN §2.1: a container or native-sidecar init container named `istio-proxy`, or named by
/// the sidecar status annotation (never `istio-init` / `istio-validation`).
fn find_proxy<'a>(metadata: &Metadata, spec: &'a model::PodSpec) -> Option<&'a Container> {
    // Nearly every proxy is a container named `istio-proxy`: found without parsing the status.
    if let Some(proxy) = spec.containers.iter().find(|c| c.name == PROXY_CONTAINER) {
        return Some(proxy);
    }
    let status = sidecar_status(metadata);
    let named = |list: Option<&Vec<String>>, c: &Container| {
        list.is_some_and(|names| names.contains(&c.name))
    };
    let is_proxy = |c: &&Container, listed: Option<&Vec<String>>| {
        !NOT_PROXIES.contains(&c.name.as_str()) && (c.name == PROXY_CONTAINER || named(listed, c))
    };
    spec.containers
        .iter()
        .find(|c| is_proxy(c, status.as_ref().and_then(|s| s.containers.as_ref())))
        .or_else(|| {
            spec.init_containers.iter().find(|c| {
                is_proxy(c, status.as_ref().and_then(|s| s.init_containers.as_ref()))
                    && (c.restart_always || c.name == PROXY_CONTAINER)
            })
        })
}

/// What the drift rules read of a pod's proxy.
fn proxy_of(
    metadata: &Metadata,
    spec: &model::PodSpec,
    container: &Container,
    builder: &mut InventoryBuilder,
) -> Proxy {
    let revision = metadata
        .annotations
        .get(SIDECAR_STATUS)
        .and_then(status_revision)
        .or_else(|| metadata.annotations.get(REVISION_LABEL).map(str::to_string))
        .or_else(|| metadata.labels.get(REVISION_LABEL).map(str::to_string))
        .filter(|r| !r.is_empty());
    let has_init = |name: &str| spec.init_containers.iter().any(|c| c.name == name);
    Proxy {
        revision: revision.map(|r| builder.intern(&r)),
        native: spec
            .init_containers
            .iter()
            .any(|c| std::ptr::eq(c, container)),
        resources: container.resources.as_deref().cloned().unwrap_or_default(),
        istio_init: has_init(istio_injection::proxy::INIT_CONTAINER),
        istio_validation: has_init(istio_injection::proxy::VALIDATION_CONTAINER),
        origin: proxy_origin(metadata),
    }
}

/// How the proxy came to be: no status annotation, never injected; else by the templates the
/// pod asks for with `inject.istio.io/templates` (Istio's `sidecar` when it names none).
fn proxy_origin(metadata: &Metadata) -> ProxyOrigin {
    if metadata.annotations.get(SIDECAR_STATUS).is_none() {
        return ProxyOrigin::Own;
    }
    match metadata.annotations.get(TEMPLATES_ANNOTATION) {
        Some(templates) if !templates.trim().is_empty() && templates.trim() != "sidecar" => {
            ProxyOrigin::OtherTemplate
        }
        _ => ProxyOrigin::Sidecar,
    }
}

/// Where a pod's controller chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWorkload {
    /// The top controller, or the pod itself (kind `Pod`) when it has none.
    pub kind: Arc<str>,
    pub api_version: Arc<str>,
    pub name: Arc<str>,
    /// The top controller's record, when the inventory holds it.
    pub found: bool,
    /// Some object of the chain carries the skip label or annotation.
    pub skip: bool,
    /// The workload is labelled `kyma-project.io/module` (a bare pod: the pod is).
    pub module_label: bool,
    /// Something odd about the chain (an owner that points nowhere, a cycle), for the report.
    pub problem: Option<String>,
}

const MAX_OWNER_DEPTH: usize = 8;

impl Inventory {
    pub fn workload(&self, kind: &str, namespace: &str, name: &str) -> Option<&WorkloadRecord> {
        self.workloads
            .get(&(kind, namespace, name) as &dyn KeyView)
            .map(Box::as_ref)
    }

    /// Both controllers, when the object names two.
    fn controller_conflict(&self, kind: &str, namespace: &str, name: &str) -> Option<&str> {
        if self.controller_conflicts.is_empty() {
            return None;
        }
        self.controller_conflicts
            .get(&(kind, namespace, name) as &dyn KeyView)
            .map(Box::as_ref)
    }

    /// DESIGN §2.5: walk controller references upward. An intermediate owner that is missing
    /// ends the walk at it (named by the reference); so does a cycle, a chain deeper than
    /// [`MAX_OWNER_DEPTH`], and an object with two controllers (which one owns it is unknown).
    pub fn resolve_workload(&self, pod: &PodRecord) -> ResolvedWorkload {
        let itself = || ResolvedWorkload {
            kind: Arc::from("Pod"),
            api_version: Arc::from("v1"),
            name: pod.name.clone(),
            found: true,
            skip: false,
            module_label: pod.module_label,
            problem: None,
        };
        if let Some(both) = self.controller_conflict("Pod", &pod.namespace, &pod.name) {
            return ResolvedWorkload {
                problem: Some(two_controllers("pod", &pod.namespace, &pod.name, both)),
                ..itself()
            };
        }
        let Some(first) = &pod.controller else {
            return itself();
        };
        let mut current = first;
        let mut skip = false;
        // On the stack: a walk is at most MAX_OWNER_DEPTH steps, and there is one per pod.
        let mut visited: [(&str, &str); MAX_OWNER_DEPTH] = [("", ""); MAX_OWNER_DEPTH];
        visited[0] = (&current.kind, &current.name);
        let mut steps = 1;
        loop {
            let ends_here =
                |found: bool, skip: bool, module_label: bool, problem| ResolvedWorkload {
                    kind: current.kind.clone(),
                    api_version: current.api_version.clone(),
                    name: current.name.clone(),
                    found,
                    skip,
                    module_label,
                    problem,
                };
            let Some(record) = self.workload(&current.kind, &pod.namespace, &current.name) else {
                let problem = is_known_kind(&current.kind).then(|| {
                    format!(
                        "owner {} {}/{} is not in the inventory",
                        current.kind, pod.namespace, current.name
                    )
                });
                return ends_here(false, skip, false, problem);
            };
            skip |= record.skip;
            let chain_problem = |why: String| {
                let chain = format!("{} {}/{}", current.kind, pod.namespace, current.name);
                Some(format!("the owner chain of {chain} {why}"))
            };
            if let Some(both) =
                self.controller_conflict(&current.kind, &pod.namespace, &current.name)
            {
                let problem = two_controllers(&current.kind, &pod.namespace, &current.name, both);
                return ends_here(true, skip, record.module_label, Some(problem));
            }
            let Some(next) = &record.controller else {
                let mut top = ends_here(true, skip, record.module_label, None);
                if !record.api_version.is_empty() {
                    top.api_version = record.api_version.clone();
                }
                return top;
            };
            let step = (next.kind.as_ref(), next.name.as_ref());
            if visited[..steps].contains(&step) {
                let why = format!("loops back to {} {}", next.kind, next.name);
                return ends_here(true, skip, record.module_label, chain_problem(why));
            }
            if steps >= MAX_OWNER_DEPTH {
                let why = format!("is deeper than {MAX_OWNER_DEPTH} owners");
                return ends_here(true, skip, record.module_label, chain_problem(why));
            }
            visited[steps] = step;
            steps += 1;
            current = next;
        }
    }
}

fn two_controllers(kind: &str, namespace: &str, name: &str, both: &str) -> String {
    format!(
        "{kind} {namespace}/{name} has two controller owner references ({both}): which one owns it is unclear"
    )
}

/// Kinds the inventory lists, so a missing one is noteworthy (a custom resource is not).
fn is_known_kind(kind: &str) -> bool {
    model::is_workload_kind(kind) && kind != "Rollout"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: serde_json::Value) -> Object {
        serde_json::from_value(json).unwrap()
    }

    fn pod_json(name: &str, owner: Option<(&str, &str)>) -> serde_json::Value {
        let mut pod = serde_json::json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "app:1"},
                                    {"name": "istio-proxy", "image": "istio/proxyv2:1.23.2"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        if let Some((kind, owner)) = owner {
            pod["metadata"]["ownerReferences"] = serde_json::json!([
                {"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true}
            ]);
        }
        pod
    }

    fn workload_json(kind: &str, name: &str, owner: Option<(&str, &str)>) -> serde_json::Value {
        let mut w = serde_json::json!({
            "kind": kind, "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": "shop"}, "spec": {}
        });
        if let Some((kind, owner)) = owner {
            w["metadata"]["ownerReferences"] = serde_json::json!([
                {"apiVersion": "apps/v1", "kind": kind, "name": owner, "controller": true}
            ]);
        }
        w
    }

    fn build(items: Vec<serde_json::Value>) -> Inventory {
        let mut builder = InventoryBuilder::new();
        for (i, item) in items.into_iter().enumerate() {
            builder.add(object(item), format_args!("item {i}")).unwrap();
        }
        builder.finish()
    }

    #[test]
    fn finds_proxies_where_the_design_says() {
        let mut native = pod_json("native", None);
        native["spec"] = serde_json::json!({
            "initContainers": [{"name": "istio-init", "image": "istio/proxyv2:1.23.2"},
                               {"name": "istio-proxy", "image": "istio/proxyv2:1.23.2", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "app:1"}]});
        let mut renamed = pod_json("renamed", None);
        renamed["metadata"]["annotations"] = serde_json::json!({
            SIDECAR_STATUS: r#"{"containers":["mesh-proxy"],"initContainers":["istio-init"],"revision":"1-24"}"#});
        renamed["spec"]["containers"] = serde_json::json!([
            {"name": "app", "image": "app:1"}, {"name": "mesh-proxy", "image": "istio/proxyv2:1.24.1"}]);
        let mut only_init = pod_json("only-init", None);
        only_init["spec"] = serde_json::json!({
            "initContainers": [{"name": "istio-init", "image": "istio/proxyv2:1.23.2"},
                               {"name": "istio-validation", "image": "istio/proxyv2:1.23.2"}],
            "containers": [{"name": "app", "image": "app:1"}]});
        let mut plain = pod_json("plain", None);
        plain["spec"]["containers"] = serde_json::json!([{"name": "app", "image": "app:1"}]);

        let inventory = build(vec![
            pod_json("sidecar", None),
            native,
            renamed,
            only_init,
            plain,
        ]);
        let names: Vec<_> = inventory
            .pod_records
            .iter()
            .filter(|p| p.has_proxy())
            .map(|p| &*p.name)
            .collect();
        assert_eq!(names, ["sidecar", "native", "renamed"]);
        // Running pods without a proxy are kept too: a webhook may want to inject them.
        let records: Vec<_> = inventory.pod_records.iter().map(|p| &*p.name).collect();
        assert_eq!(
            records,
            ["sidecar", "native", "renamed", "only-init", "plain"]
        );
        assert_eq!(inventory.pods_total, 5);
        assert_eq!(inventory.pod_records[2].revision.as_deref(), Some("1-24"));
        assert_eq!(
            inventory.pod_records[2].proxy_image.as_deref(),
            Some("istio/proxyv2:1.24.1")
        );
    }

    #[test]
    fn reads_the_revision_from_the_status_annotation_however_it_is_written() {
        let cases = [
            (
                r#"{"initContainers":["istio-init"],"revision":"1-24"}"#,
                Some("1-24"),
            ),
            (
                r#"{"revision": "1-24", "containers": ["istio-proxy"]}"#,
                Some("1-24"),
            ),
            (r#"{"revision":"a\u002db"}"#, Some("a-b")),
            (r#"{"containers":["istio-proxy"]}"#, None),
            ("not json", None),
        ];
        for (text, revision) in cases {
            assert_eq!(status_revision(text).as_deref(), revision, "{text}");
        }
    }

    #[test]
    fn resolves_owner_chains() {
        let inventory = build(vec![
            pod_json("web-1", Some(("ReplicaSet", "web-abc"))),
            workload_json("ReplicaSet", "web-abc", Some(("Deployment", "web"))),
            workload_json("Deployment", "web", None),
            pod_json("job-1", Some(("Job", "nightly-1"))),
            workload_json("Job", "nightly-1", Some(("CronJob", "nightly"))),
            workload_json("CronJob", "nightly", None),
            pod_json("orphan-1", Some(("ReplicaSet", "gone"))),
            pod_json("half-1", Some(("ReplicaSet", "half-abc"))),
            workload_json("ReplicaSet", "half-abc", Some(("Deployment", "half"))),
            pod_json("custom-1", Some(("Workflow", "wf"))),
            pod_json("loop-1", Some(("ReplicaSet", "a"))),
            workload_json("ReplicaSet", "a", Some(("ReplicaSet", "b"))),
            workload_json("ReplicaSet", "b", Some(("ReplicaSet", "a"))),
            pod_json("bare", None),
        ]);
        let resolved: Vec<_> = inventory
            .pod_records
            .iter()
            .map(|p| {
                let w = inventory.resolve_workload(p);
                (
                    w.kind.to_string(),
                    w.name.to_string(),
                    w.found,
                    w.problem.is_some(),
                )
            })
            .collect();
        let expect =
            |k: &str, n: &str, found, problem| (k.to_string(), n.to_string(), found, problem);
        assert_eq!(
            resolved,
            vec![
                expect("Deployment", "web", true, false),
                expect("CronJob", "nightly", true, false),
                expect("ReplicaSet", "gone", false, true),
                expect("Deployment", "half", false, true),
                expect("Workflow", "wf", false, false),
                expect("ReplicaSet", "b", true, true),
                expect("Pod", "bare", true, false),
            ]
        );
    }

    #[test]
    fn skip_anywhere_in_the_chain_counts() {
        let mut rs = workload_json("ReplicaSet", "web-abc", Some(("Deployment", "web")));
        rs["metadata"]["labels"] = serde_json::json!({SKIP_KEY: "true"});
        let inventory = build(vec![
            pod_json("web-1", Some(("ReplicaSet", "web-abc"))),
            rs,
            workload_json("Deployment", "web", None),
        ]);
        assert!(inventory.resolve_workload(&inventory.pod_records[0]).skip);
    }

    #[test]
    fn a_pod_listed_twice_is_an_error() {
        let mut builder = InventoryBuilder::new();
        builder.add(object(pod_json("a", None)), "item 0").unwrap();
        let error = builder
            .add(object(pod_json("a", None)), "item 1")
            .unwrap_err();
        assert!(error.to_string().contains("shop/a"), "{error}");
    }

    #[test]
    fn a_rewound_list_may_list_its_pods_again() {
        let mut builder = InventoryBuilder::new();
        builder.add(object(pod_json("a", None)), "item 0").unwrap();
        let checkpoint = builder.pods_checkpoint();
        builder.add(object(pod_json("b", None)), "item 1").unwrap();
        builder.rewind_pods(checkpoint);
        builder.add(object(pod_json("b", None)), "item 1").unwrap();
        // What came before the checkpoint is still known.
        assert!(builder.add(object(pod_json("a", None)), "item 2").is_err());
        let inventory = builder.finish();
        let names: Vec<_> = inventory.pod_records.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(inventory.pods_total, 2);
    }

    #[test]
    fn a_restarted_owner_list_forgets_only_what_it_gave() {
        let mut owners = InventoryBuilder::new();
        let mut other = workload_json("ReplicaSet", "elsewhere-abc", None);
        other["metadata"]["namespace"] = serde_json::json!("other");
        for item in [
            workload_json("ReplicaSet", "web-abc", Some(("Deployment", "web"))),
            workload_json("Deployment", "web", None),
            other,
        ] {
            owners.add(object(item), "item").unwrap();
        }
        owners.forget_listed("ReplicaSet", Some("shop"));
        let mut builder = InventoryBuilder::new();
        builder
            .add(
                object(pod_json("web-1", Some(("ReplicaSet", "web-abc")))),
                "pod",
            )
            .unwrap();
        builder.merge_owners(owners);
        let inventory = builder.finish();
        assert!(
            inventory
                .workload("ReplicaSet", "shop", "web-abc")
                .is_none()
        );
        assert!(inventory.workload("Deployment", "shop", "web").is_some());
        assert!(
            inventory
                .workload("ReplicaSet", "other", "elsewhere-abc")
                .is_some()
        );
        let resolved = inventory.resolve_workload(&inventory.pod_records[0]);
        assert_eq!((&*resolved.kind, resolved.found), ("ReplicaSet", false));
    }

    #[test]
    fn pods_of_one_owner_share_its_reference() {
        let inventory = build(vec![
            pod_json("web-1", Some(("ReplicaSet", "web-abc"))),
            pod_json("web-2", Some(("ReplicaSet", "web-abc"))),
            workload_json("ReplicaSet", "web-abc", Some(("Deployment", "web"))),
        ]);
        let owners: Vec<_> = inventory
            .pod_records
            .iter()
            .map(|p| p.controller.clone().unwrap())
            .collect();
        assert!(Arc::ptr_eq(&owners[0], &owners[1]));
        let record = inventory.workload("ReplicaSet", "shop", "web-abc").unwrap();
        assert_eq!(&*record.controller.as_ref().unwrap().name, "web");
        assert!(
            inventory
                .workload("ReplicaSet", "other", "web-abc")
                .is_none()
        );
        assert!(
            inventory
                .workload("Deployment", "shop", "web-abc")
                .is_none()
        );
    }

    #[test]
    fn any_skip_value_but_false_skips() {
        let cases = [
            ("true", true),
            ("True", true),
            (" true", true),
            ("yes", true),
            ("1", true),
            ("", true),
            ("false", false),
            ("False", false),
            (" FALSE ", false),
        ];
        for (value, skips) in cases {
            for place in ["labels", "annotations"] {
                let mut ns = serde_json::json!({"kind": "Namespace", "apiVersion": "v1",
                    "metadata": {"name": "quiet"}});
                ns["metadata"][place] = serde_json::json!({SKIP_KEY: value});
                let mut pod = pod_json("a", Some(("ReplicaSet", "web-abc")));
                pod["metadata"][place] = serde_json::json!({SKIP_KEY: value});
                let mut rs = workload_json("ReplicaSet", "web-abc", None);
                rs["metadata"][place] = serde_json::json!({SKIP_KEY: value});
                let inventory = build(vec![ns, pod, rs]);
                assert_eq!(
                    inventory.namespaces["quiet"].skip, skips,
                    "{place} {value:?}"
                );
                assert_eq!(inventory.pod_records[0].skip, skips, "{place} {value:?}");
                let record = inventory.workload("ReplicaSet", "shop", "web-abc").unwrap();
                assert_eq!(record.skip, skips, "{place} {value:?}");
            }
        }
    }

    #[test]
    fn objects_listed_twice_are_refused_naming_them() {
        let namespace = |labels: serde_json::Value| {
            serde_json::json!({"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": "shop", "labels": labels}})
        };
        let injector = serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"values": "{}"}});
        let mut paused = workload_json("Deployment", "web", None);
        paused["spec"] = serde_json::json!({"paused": true});
        let cases = [
            (
                namespace(serde_json::json!({SKIP_KEY: "true"})),
                namespace(serde_json::json!({})),
                "Namespace shop (again at item 1)",
            ),
            (
                injector.clone(),
                injector,
                "ConfigMap istio-system/istio-sidecar-injector (again at item 1)",
            ),
            (
                paused,
                workload_json("Deployment", "web", None),
                "Deployment shop/web (again at item 1)",
            ),
            (
                pod_json("a", None),
                pod_json("a", None),
                "Pod shop/a (again at item 1)",
            ),
        ];
        for (first, second, named) in cases {
            let mut builder = InventoryBuilder::new();
            builder.add(object(first), "item 0").unwrap();
            let error = builder.add(object(second), "item 1").unwrap_err();
            assert!(error.to_string().contains(named), "{error}");
            assert!(error.to_string().contains("listed twice"), "{error}");
        }
        // The same name in another namespace, or of another kind, is another object.
        let mut elsewhere = workload_json("Deployment", "web", None);
        elsewhere["metadata"]["namespace"] = serde_json::json!("other");
        build(vec![
            workload_json("Deployment", "web", None),
            elsewhere,
            workload_json("StatefulSet", "web", None),
        ]);
    }

    #[test]
    fn two_controllers_end_the_walk_with_a_reason() {
        let mut pod = pod_json("torn", Some(("ReplicaSet", "web-abc")));
        pod["metadata"]["ownerReferences"]
            .as_array_mut()
            .unwrap()
            .push(
                serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "name": "db", "controller": true}),
            );
        let mut rs = workload_json("ReplicaSet", "shared-abc", Some(("Deployment", "web")));
        rs["metadata"]["ownerReferences"]
            .as_array_mut()
            .unwrap()
            .push(
                serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "name": "other", "controller": true}),
            );
        let inventory = build(vec![
            pod,
            pod_json("web-1", Some(("ReplicaSet", "shared-abc"))),
            rs,
            workload_json("Deployment", "web", None),
        ]);
        let torn = inventory.resolve_workload(&inventory.pod_records[0]);
        assert_eq!((&*torn.kind, &*torn.name), ("Pod", "torn"));
        assert_eq!(
            torn.problem.as_deref(),
            Some(
                "pod shop/torn has two controller owner references (ReplicaSet web-abc and \
                 StatefulSet db): which one owns it is unclear"
            )
        );
        let shared = inventory.resolve_workload(&inventory.pod_records[1]);
        assert_eq!((&*shared.kind, &*shared.name), ("ReplicaSet", "shared-abc"));
        assert!(
            shared
                .problem
                .as_deref()
                .unwrap()
                .contains("(Deployment web and Deployment other)"),
            "{shared:?}"
        );
    }

    #[test]
    fn an_owner_chain_says_whether_it_loops_or_is_too_deep() {
        let mut items = vec![
            pod_json("loop-1", Some(("ReplicaSet", "a"))),
            workload_json("ReplicaSet", "a", Some(("ReplicaSet", "b"))),
            workload_json("ReplicaSet", "b", Some(("ReplicaSet", "a"))),
            pod_json("deep-1", Some(("Job", "j0"))),
        ];
        for i in 0..12 {
            let next = format!("j{}", i + 1);
            items.push(workload_json("Job", &format!("j{i}"), Some(("Job", &next))));
        }
        let inventory = build(items);
        let problem = |i: usize| {
            inventory
                .resolve_workload(&inventory.pod_records[i])
                .problem
                .unwrap()
        };
        assert_eq!(
            problem(0),
            "the owner chain of ReplicaSet shop/b loops back to ReplicaSet a"
        );
        assert_eq!(
            problem(1),
            "the owner chain of Job shop/j7 is deeper than 8 owners"
        );
    }

    #[test]
    fn a_bare_pod_of_a_module_is_labelled_itself() {
        let mut module = pod_json("module-pod", None);
        module["metadata"]["labels"] = serde_json::json!({MODULE_LABEL: "x"});
        let inventory = build(vec![module, pod_json("plain", None)]);
        let labels: Vec<bool> = inventory
            .pod_records
            .iter()
            .map(|p| inventory.resolve_workload(p).module_label)
            .collect();
        assert_eq!(labels, [true, false]);
    }

    #[test]
    fn objects_without_name_or_namespace_are_errors() {
        let mut builder = InventoryBuilder::new();
        let mut pod = pod_json("a", None);
        pod["metadata"] = serde_json::json!({"namespace": "shop"});
        let error = builder.add(object(pod), "item 3").unwrap_err().to_string();
        assert!(
            error.contains("item 3") && error.contains("metadata.name"),
            "{error}"
        );
        let mut pod = pod_json("a", None);
        pod["metadata"] = serde_json::json!({"name": "a"});
        let error = builder.add(object(pod), "item 4").unwrap_err().to_string();
        assert!(error.contains("metadata.namespace"), "{error}");
    }
}
