//! Controllers that make the simulated cluster behave like a real one: the workload controllers
//! of kube-controller-manager (Deployment, ReplicaSet, ReplicationController, StatefulSet,
//! DaemonSet, Job), Argo Rollouts, the garbage collector, and the scheduler and kubelet that move
//! created pods from Pending to Ready.
//!
//! They run as one task, level-triggered: every store event marks the object and its controller
//! dirty, and a dirty object is reconciled against the store. Timed transitions (a pod becoming
//! Ready, a progress deadline) are timers that mark objects dirty again. Objects loaded from the
//! state are reconciled once at start; a consistent state yields no writes that change pods.

mod daemonset;
mod deployment;
mod gc;
mod index;
mod job;
mod kubelet;
pub mod meta;
mod pods;
mod replicaset;
mod revision;
mod rollout;
mod statefulset;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::store::{ResourceType, Store, StoreEvent, WatchEventType, resource_for_plural};
use index::OwnerIndex;

pub use meta::template_hash;

/// Annotation on a workload (or its pod template, or a pod) that makes the pods the simulation
/// creates for it misbehave: `crash-loop` (Running, never Ready, restarts counting up) or
/// `unschedulable` (Pending for ever). Pods loaded from the state are never affected.
pub const NEW_PODS_ANNOTATION: &str = "kube-sim.kyma-project.io/new-pods";

/// How many pods a controller creates in one reconcile, as the real controllers create in bursts;
/// the rest follow in the next reconciles.
pub(crate) const CREATE_BURST: i64 = 500;

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// How long a created pod takes from Pending to Ready.
    pub pod_start: Duration,
    /// Proxy image injected into new pods instead of the injector ConfigMap's.
    pub proxy_image: Option<String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            pod_start: Duration::from_millis(300),
            proxy_image: None,
        }
    }
}

/// Runs all controllers until the returned task is aborted.
pub fn spawn(store: Arc<Store>, cfg: ControllerConfig) -> tokio::task::JoinHandle<()> {
    // Subscribe before the first listing, so that nothing written in between is missed.
    let events = store.subscribe();
    tokio::spawn(Controllers::new(store, cfg).run(events))
}

/// The kinds of object the controllers read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Pod,
    ReplicaSet,
    ReplicationController,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Rollout,
    Node,
    ControllerRevision,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::Node,
        Kind::ControllerRevision,
        Kind::Deployment,
        Kind::Rollout,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::CronJob,
        Kind::Job,
        Kind::ReplicationController,
        Kind::ReplicaSet,
        Kind::Pod,
    ];

    fn group_and_plural(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pod => ("", "pods"),
            Kind::ReplicaSet => ("apps", "replicasets"),
            Kind::ReplicationController => ("", "replicationcontrollers"),
            Kind::Deployment => ("apps", "deployments"),
            Kind::StatefulSet => ("apps", "statefulsets"),
            Kind::DaemonSet => ("apps", "daemonsets"),
            Kind::Job => ("batch", "jobs"),
            Kind::CronJob => ("batch", "cronjobs"),
            Kind::Rollout => ("argoproj.io", "rollouts"),
            Kind::Node => ("", "nodes"),
            Kind::ControllerRevision => ("apps", "controllerrevisions"),
        }
    }

    /// The store's resource type of this kind, when the store serves it.
    pub fn resource(self) -> Option<&'static ResourceType> {
        let (group, plural) = self.group_and_plural();
        resource_for_plural(group, plural)
    }

    fn of(resource: &ResourceType) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group_and_plural() == (resource.group, resource.plural))
    }

    /// The kind an owner reference names.
    fn of_reference(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::ALL
            .into_iter()
            .find(|k| k.group_and_plural().0 == group && format!("{k:?}") == kind)
    }
}

/// Names one object: its kind, namespace (empty for cluster-scoped objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    pub fn of(kind: Kind, obj: &Value) -> Key {
        Key::new(
            kind,
            meta::namespace(obj).unwrap_or_default(),
            meta::name(obj),
        )
    }

    fn ns(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

/// The state of the controllers: the store, what is dirty, what is due when, and the few things
/// a real controller keeps in memory.
pub(crate) struct Controllers {
    pub store: Arc<Store>,
    pub cfg: ControllerConfig,
    index: OwnerIndex,
    dirty: BTreeSet<Key>,
    timers: HashMap<Key, Instant>,
    pub kubelet: kubelet::Kubelet,
    /// Revision names of StatefulSet and DaemonSet templates, by workload uid and template hash.
    /// Objects loaded from the state carry revision names computed by a real cluster; the first
    /// template seen keeps the name the state gave it, so that loading starts no rollout.
    pub revisions: HashMap<(String, String), String>,
    /// Templates by revision name, so that pods recreated below a StatefulSet partition get the
    /// template of the current revision (the real controller reads it from the ControllerRevision,
    /// which a loaded workload may not have).
    pub revision_templates: HashMap<(String, String), Value>,
    /// The template hash of each StatefulSet and DaemonSet (by uid) whose template is still the
    /// one it was loaded with, under the revision name the state gave it: such a workload gets
    /// no ControllerRevision written until its template changes.
    loaded_templates: HashMap<String, String>,
    /// The nodes the pods of the loaded state run on, for a state without Node objects.
    loaded_nodes: BTreeSet<String>,
    /// The nodes of each DaemonSet (by uid) in a state without Node objects.
    pub daemonset_nodes: HashMap<String, Vec<String>>,
}

impl Controllers {
    fn new(store: Arc<Store>, cfg: ControllerConfig) -> Controllers {
        Controllers {
            store,
            cfg,
            index: OwnerIndex::default(),
            dirty: BTreeSet::new(),
            timers: HashMap::new(),
            kubelet: kubelet::Kubelet::default(),
            revisions: HashMap::new(),
            revision_templates: HashMap::new(),
            loaded_templates: HashMap::new(),
            loaded_nodes: BTreeSet::new(),
            daemonset_nodes: HashMap::new(),
        }
    }

    async fn run(mut self, mut events: tokio::sync::broadcast::Receiver<StoreEvent>) {
        self.resync(true);
        loop {
            self.reconcile_dirty();
            let wake = if self.dirty.is_empty() {
                let next_timer = self.timers.values().min().copied();
                next_timer.unwrap_or_else(|| Instant::now() + Duration::from_secs(5))
            } else {
                // More to do: only take in the events that arrived meanwhile.
                Instant::now()
            };
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.observe(event),
                    Err(RecvError::Lagged(_)) => self.resync(false),
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            loop {
                match events.try_recv() {
                    Ok(event) => self.observe(event),
                    Err(TryRecvError::Lagged(_)) => self.resync(false),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return,
                }
            }
            self.fire_timers();
        }
    }

    /// Rebuilds the owner index from the store and marks every workload dirty: at start, and
    /// whenever events were missed. After missed events, pods created meanwhile (Pending, no
    /// conditions yet) are started as if their creation had been seen.
    fn resync(&mut self, initial: bool) {
        // Objects are read in place, through a list filter that takes none of them: copying
        // every pod of a large state would cost seconds and gigabytes.
        let index = RefCell::new(OwnerIndex::default());
        let dirty = RefCell::new(Vec::new());
        let nodes = RefCell::new(BTreeSet::new());
        let kubelet = RefCell::new(std::mem::take(&mut self.kubelet));
        for kind in Kind::ALL {
            let Some(resource) = kind.resource() else {
                continue;
            };
            let visit = |obj: &Value| {
                let key = Key::of(kind, obj);
                index.borrow_mut().upsert(&key, obj);
                if let Some(node) = obj["spec"]["nodeName"]
                    .as_str()
                    .filter(|_| kind == Kind::Pod)
                {
                    nodes.borrow_mut().insert(node.to_string());
                }
                if kind != Kind::Pod {
                    dirty.borrow_mut().push(key);
                } else if !initial {
                    kubelet.borrow_mut().adopt_if_new(&key, obj);
                }
                false
            };
            let _ = self.store.list_page(resource, None, &visit, 0, None);
        }
        self.index = index.into_inner();
        self.kubelet = kubelet.into_inner();
        self.dirty.extend(dirty.into_inner());
        self.loaded_nodes.extend(nodes.into_inner());
        for key in self.kubelet.keys() {
            self.dirty.insert(key);
        }
    }

    /// Takes in one store event: updates the index, collects garbage, marks what to reconcile.
    fn observe(&mut self, event: StoreEvent) {
        let Some(kind) = Kind::of(event.resource) else {
            return;
        };
        let obj = &event.object;
        let key = Key::of(kind, obj);
        match event.kind {
            WatchEventType::Deleted => {
                self.index.remove(&key, meta::uid(obj));
                self.kubelet.forget(&key, meta::uid(obj));
                gc::collect_dependents_of(self, meta::uid(obj));
            }
            WatchEventType::Added | WatchEventType::Modified => {
                if !self.index.upsert(&key, obj) {
                    return; // a late event of an object already deleted
                }
                if kind == Kind::Pod && matches!(event.kind, WatchEventType::Added) {
                    self.kubelet.adopt_if_new(&key, obj);
                }
            }
        }
        if let Some((api_version, owner_kind, owner_name, _)) = meta::controller_of(obj)
            && let Some(owner_kind) = Kind::of_reference(api_version, owner_kind)
        {
            self.dirty
                .insert(Key::new(owner_kind, &key.namespace, owner_name));
        }
        if kind == Kind::Node {
            let daemonsets: Vec<Key> = self.index.keys_of(Kind::DaemonSet).cloned().collect();
            self.dirty.extend(daemonsets);
        }
        self.dirty.insert(key);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.timers.remove(&key);
            self.dirty.insert(key);
        }
    }

    fn reconcile_dirty(&mut self) {
        // Reconciling writes, and writes come back as events that mark objects dirty again; the
        // bound lets events in between, so that the index stays fresh during a long pass.
        for _ in 0..1_000 {
            let Some(key) = self.dirty.pop_first() else {
                return;
            };
            // An object no controller can make sense of must not stop the others: a panic while
            // reconciling it is reported and the object left as it is.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match key.kind {
                Kind::Pod => kubelet::sync(self, &key),
                Kind::ReplicaSet | Kind::ReplicationController => replicaset::sync(self, &key),
                Kind::Deployment => deployment::sync(self, &key),
                Kind::Rollout => rollout::sync(self, &key),
                Kind::StatefulSet => statefulset::sync(self, &key),
                Kind::DaemonSet => daemonset::sync(self, &key),
                Kind::Job => job::sync(self, &key),
                Kind::CronJob | Kind::Node | Kind::ControllerRevision => None,
            }));
            match outcome {
                Ok(Some(after)) => self.requeue_after(key, after),
                Ok(None) => {}
                Err(_) => tracing::error!(
                    ?key,
                    "a controller failed on this object; it is left as it is"
                ),
            }
        }
    }

    /// Reconciles `key` again after `after`, or sooner if already due sooner.
    pub fn requeue_after(&mut self, key: Key, after: Duration) {
        let at = Instant::now() + after;
        let slot = self.timers.entry(key).or_insert(at);
        if at < *slot {
            *slot = at;
        }
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.store.get(key.kind.resource()?, key.ns(), &key.name)
    }

    /// The pods that `owner_uid` controls, as last seen.
    pub fn pods_of(&self, owner_uid: &str) -> Vec<pods::PodInfo> {
        self.index.pods_of(owner_uid)
    }

    /// The objects of `kind` that `owner_uid` owns, as the store has them now.
    pub fn dependents(&self, owner_uid: &str, kind: Kind) -> Vec<Value> {
        let keys: Vec<Key> = self
            .index
            .dependents(owner_uid)
            .filter(|k| k.kind == kind)
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|key| self.get(key))
            .filter(|obj| meta::owner_uids(obj).iter().any(|u| u == owner_uid))
            .collect()
    }

    /// Creates an object, and indexes it at once so that the next reconcile counts it even
    /// before its event arrives.
    pub fn create(&mut self, kind: Kind, obj: Value) -> Option<Value> {
        let resource = kind.resource()?;
        match self.store.create(resource, obj) {
            Ok(created) => {
                self.index.upsert(&Key::of(kind, &created), &created);
                Some(created)
            }
            Err(err) => {
                tracing::debug!(?kind, %err, "controller could not create an object");
                None
            }
        }
    }

    /// Creates a pod as the API server would take it from a controller: defaulted, with the
    /// sidecar the admission webhook injects, and the status a new pod starts with.
    pub fn create_pod(&mut self, mut pod: Value) -> Option<Value> {
        let resource = Kind::Pod.resource()?;
        if meta::annotation(&pod, NEW_PODS_ANNOTATION).is_none()
            && let Some(behaviour) = self.scenario_of_owners(&pod)
        {
            meta::set_meta_entry(&mut pod, "annotations", NEW_PODS_ANNOTATION, &behaviour);
        }
        crate::injector::inject(&self.store, &mut pod, self.cfg.proxy_image.as_deref());
        crate::admission::apply_defaults(resource, &mut pod);
        crate::admission::initial_status(resource, &mut pod);
        self.create(Kind::Pod, pod)
    }

    /// The [`NEW_PODS_ANNOTATION`] scenario of a new pod's controller, or of that controller's
    /// controller (a ReplicaSet's Deployment or Rollout), so that annotating the workload reaches
    /// pods its existing ReplicaSet creates too.
    fn scenario_of_owners(&self, pod: &Value) -> Option<String> {
        let namespace = meta::namespace(pod).unwrap_or_default().to_string();
        let mut child = pod.clone();
        for _ in 0..2 {
            let (api_version, kind, name, _) = meta::controller_of(&child)?;
            let owner = self.get(&Key::new(
                Kind::of_reference(api_version, kind)?,
                &namespace,
                name,
            ))?;
            if let Some(behaviour) = meta::annotation(&owner, NEW_PODS_ANNOTATION) {
                return Some(behaviour.to_string());
            }
            child = owner;
        }
        None
    }

    /// Records a core/v1 Event about `obj`, as the real controllers do for what they change, so
    /// that `kubectl describe` tells the story of a rollout.
    pub fn record_event(&self, obj: &Value, reason: &str, message: &str, component: &str) {
        let Some(events) = crate::store::resource_for_plural("", "events") else {
            return;
        };
        let now = meta::now();
        let namespace = meta::namespace(obj).unwrap_or("default");
        let event = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{}.", meta::name(obj)), "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta::name(obj),
                "namespace": namespace, "uid": meta::uid(obj),
                "resourceVersion": obj["metadata"]["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        if let Err(err) = self.store.create(events, event) {
            tracing::debug!(%err, "controller could not record an event");
        }
    }

    /// Deletes an object, and forgets it at once so that the next reconcile no longer counts it.
    pub fn delete(&mut self, key: &Key) {
        let Some(resource) = key.kind.resource() else {
            return;
        };
        match self.store.delete(resource, key.ns(), &key.name) {
            Ok(deleted) => {
                if meta::is_terminating(&deleted) {
                    self.index.upsert(key, &deleted);
                } else {
                    self.index.remove(key, meta::uid(&deleted));
                }
            }
            Err(err) => tracing::debug!(?key, %err, "controller could not delete an object"),
        }
    }

    /// Changes an object in place; nothing is written when `change` changes nothing. The write is
    /// an update of the version the change was computed from: a concurrent write wins (409), and
    /// its event has the object reconciled again.
    pub fn modify(&mut self, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let resource = key.kind.resource()?;
        let current = self.store.get(resource, key.ns(), &key.name)?;
        let mut changed = current.clone();
        change(&mut changed);
        if changed == current {
            return Some(current);
        }
        let status_changed = changed["status"] != current["status"];
        let mut written = current.clone();
        written["status"] = Value::Null;
        let mut rest = changed.clone();
        rest["status"] = Value::Null;
        let mut result = Ok(current);
        if rest != written {
            result = self.store.update(resource, changed.clone());
        }
        if status_changed && let Ok(updated) = &result {
            let mut with_status = updated.clone();
            with_status["status"] = changed["status"].clone();
            result = self.store.update_status(resource, with_status);
        }
        match result {
            Ok(obj) => {
                self.index.upsert(key, &obj);
                Some(obj)
            }
            Err(err) => {
                tracing::debug!(?key, %err, "controller could not modify an object");
                None
            }
        }
    }

    /// The revision name of a StatefulSet's or DaemonSet's current template. The first time a
    /// workload is seen, its template keeps the revision the state gave it (`loaded`), so that
    /// pods labelled by a real cluster count as up to date; later templates are named by
    /// `name(hash)`.
    pub fn revision_name(
        &mut self,
        workload: &Value,
        loaded: Option<String>,
        name: impl FnOnce(&str) -> String,
    ) -> String {
        let uid = meta::uid(workload).to_string();
        let template = &workload["spec"]["template"];
        let hash = meta::template_hash(template, 0);
        let seen_before = self.revisions.keys().any(|(u, _)| *u == uid);
        if self.loaded_templates.get(&uid).is_some_and(|h| *h != hash) {
            self.loaded_templates.remove(&uid);
        }
        let revision = self
            .revisions
            .entry((uid.clone(), hash.clone()))
            .or_insert_with(|| match loaded.filter(|_| !seen_before) {
                Some(loaded) => {
                    self.loaded_templates.insert(uid.clone(), hash);
                    loaded
                }
                None => name(&hash),
            })
            .clone();
        self.revision_templates
            .entry((uid, revision.clone()))
            .or_insert_with(|| template.clone());
        revision
    }

    /// Whether the workload's template is still the one of the loaded state (see
    /// [`Controllers::revision_name`]).
    pub fn template_as_loaded(&self, uid: &str) -> bool {
        self.loaded_templates.contains_key(uid)
    }

    /// Whether the cluster has Node objects (or only the nodes its pods name).
    pub fn has_node_objects(&self) -> bool {
        self.index.keys_of(Kind::Node).next().is_some()
    }

    /// The names of the nodes pods are scheduled on: the Nodes of the state; for a state without
    /// Nodes, the nodes its pods run on, or three simulated ones when no pod runs anywhere.
    pub fn node_names(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .index
            .keys_of(Kind::Node)
            .map(|k| k.name.clone())
            .collect();
        if nodes.is_empty() {
            nodes = self.loaded_nodes.iter().cloned().collect();
        }
        if nodes.is_empty() {
            nodes = (1..=3).map(|i| format!("sim-node-{i}")).collect();
        }
        nodes.sort();
        nodes
    }
}
